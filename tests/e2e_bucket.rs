//! End-to-end: the bucket source (`kubedag::watch::bucket`) against a real S3-compatible server
//! (versitygw, started by `e2e/s3-up.sh`) and credentials in a real Secret.
//! Run with `cargo test --test e2e_bucket -- --ignored` against `make cluster-up`.

mod common;
mod s3_support;

use std::collections::BTreeMap;

use kubedag::watch::Found;
use kubedag::watch::bucket::{Bucket, BucketError, BucketSource, Credentials, SecretRef};
use s3_support::{secret, setup, upload};

fn by_path(found: &[Found]) -> BTreeMap<&str, &Found> {
    found.iter().map(|f| (f.path.as_str(), f)).collect()
}

/// 50 inputs (`incoming/`, two levels, `*.fits`) plus objects outside the prefix or the pattern:
/// the listing returns exactly the 50 with their sizes and etags, through several pages, and a
/// rewritten object comes back with a new etag.
#[tokio::test]
#[ignore]
async fn lists_exactly_the_matching_objects_and_sees_a_rewrite() {
    let (server, env, bucket) = setup("bucket").await;
    let store = server.writer(&bucket);

    let mut inputs = Vec::new();
    for i in 0..50 {
        let dir = if i % 5 == 0 { "incoming/night2" } else { "incoming" };
        inputs.push((format!("{dir}/img-{i:03}.fits"), vec![b'x'; 100 + i * 37]));
    }
    let outside = [
        "incoming/img-000.fits.part",
        "incoming/notes.txt",
        "incoming.fits",
        "incomingx/img-001.fits",
        "archive/img-002.fits",
    ];
    let mut all = inputs.clone();
    all.extend(outside.iter().map(|k| (k.to_string(), b"other".to_vec())));
    let etags = upload(&store, all).await;
    // A folder marker, as consoles make them (listed as `incoming/night2`, an empty object).
    server.put_empty(&format!("{bucket}/incoming/night2/"));

    secret(
        &env,
        "s3",
        &[
            ("accessKeyId", &server.root.access_key_id),
            ("secretAccessKey", &server.root.secret_access_key),
        ],
    )
    .await;
    let source = server.source(&bucket, "incoming", "*.fits");
    let creds = kubedag::watch::bucket::read_credentials(env.client.clone(), &env.ns, &source.credentials_secret)
        .await
        .expect("read the credentials Secret");
    assert_eq!(creds, server.root);

    // 7 keys a page: 57 listed keys under incoming/ take 9 pages.
    let paged = Bucket::connect(&source, &creds).unwrap().with_page_size(7);
    let found = paged.list().await.expect("list the bucket");
    let want: Vec<&str> = {
        let mut keys: Vec<&str> = inputs.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort();
        keys
    };
    assert_eq!(found.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), want);
    let listed = by_path(&found);
    for (key, body) in &inputs {
        let f = listed[key.as_str()];
        let (dir, name) = key.rsplit_once('/').unwrap();
        assert_eq!((f.dir.as_str(), f.name.as_str()), (dir, name));
        assert_eq!(f.size, body.len() as u64, "{key}");
        assert_eq!(f.etag.as_deref(), Some(etags[key].as_str()), "{key}");
        assert_eq!(f.version, etags[key], "{key}");
    }
    let unpaged = Bucket::connect(&source, &creds).unwrap().list().await.unwrap();
    assert_eq!(unpaged, found, "the page size changes nothing");

    // Without a pattern: everything under the folder, but not the folder marker.
    let mut every = source.clone();
    every.pattern = None;
    let everything = Bucket::connect(&every, &creds).unwrap().list().await.unwrap();
    let mut want_all = want.clone();
    want_all.extend(["incoming/img-000.fits.part", "incoming/notes.txt"]);
    want_all.sort();
    assert_eq!(everything.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), want_all);

    // A rewrite is new input: new etag and size; the other 49 are unchanged.
    let key = "incoming/img-007.fits";
    let new_etag = upload(&store, vec![(key.into(), b"rewritten".to_vec())]).await[key].clone();
    assert_ne!(new_etag, etags[key]);
    let again = paged.list().await.unwrap();
    let (before, after) = (by_path(&found), by_path(&again));
    assert_eq!(after[key].etag.as_deref(), Some(new_etag.as_str()));
    assert_eq!(after[key].size, 9);
    for (k, f) in before.iter().filter(|(k, _)| **k != key) {
        assert_eq!(*f, after[k], "{k} did not change");
    }
    assert_eq!(after.len(), 50);

    let err = paged.clone().with_max_objects(10).list().await.unwrap_err();
    assert!(matches!(err, BucketError::TooMany { limit: 10, .. }), "{err}");
}

/// Each failure names its cause: unreachable endpoint, missing bucket, rejected credentials,
/// missing Secret or key.
#[tokio::test]
#[ignore]
async fn failures_name_their_cause() {
    let (server, env, bucket) = setup("bucket-err").await;
    let source = server.source(&bucket, "", "*");
    let list = |source: BucketSource, creds: Credentials| async move {
        Bucket::connect(&source, &creds).unwrap().list().await.unwrap_err()
    };
    // Sanity: the right credentials list the (empty) bucket.
    let ok = Bucket::connect(&source, &server.root).unwrap().list().await.unwrap();
    assert!(ok.is_empty());

    let port = kubedag::testkit::http::free_port();
    let mut wrong = source.clone();
    wrong.endpoint = format!("http://127.0.0.1:{port}");
    let err = list(wrong, server.root.clone()).await;
    eprintln!("wrong endpoint: {err}");
    assert_eq!(err.reason(), "BucketUnreachable", "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("endpoint http://127.0.0.1:{port} is unreachable")),
        "{text}"
    );

    let mut missing = source.clone();
    missing.bucket = format!("{bucket}-none");
    let err = list(missing, server.root.clone()).await;
    assert_eq!(err.reason(), "NoSuchBucket", "{err}");
    assert!(
        err.to_string().contains(&format!("no bucket \"{bucket}-none\"")),
        "{err}"
    );

    let bad_secret = Credentials {
        access_key_id: server.root.access_key_id.clone(),
        secret_access_key: "not-the-secret".into(),
    };
    let err = list(source.clone(), bad_secret).await;
    eprintln!("bad secret: {err}");
    assert_eq!(err.reason(), "BadCredentials", "{err}");
    assert!(err.to_string().contains("SignatureDoesNotMatch"), "{err}");
    let unknown_key = Credentials {
        access_key_id: "nobody".into(),
        secret_access_key: "x".into(),
    };
    let err = list(source.clone(), unknown_key).await;
    eprintln!("unknown key: {err}");
    assert_eq!(err.reason(), "BadCredentials", "{err}");
    assert!(err.to_string().contains(&server.endpoint), "{err}");

    let read = |name: &str| {
        let secret = SecretRef { name: name.into() };
        let (client, ns) = (env.client.clone(), env.ns.clone());
        async move { kubedag::watch::bucket::read_credentials(client, &ns, &secret).await }
    };
    let err = read("absent").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("bucket source: credentialsSecret {}/absent not found", env.ns)
    );
    secret(&env, "half", &[("accessKeyId", "AK")]).await;
    let err = read("half").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "bucket source: credentialsSecret {}/half has no key \"secretAccessKey\" (absent)",
            env.ns
        )
    );
    assert_eq!(err.reason(), "CredentialsSecretMissing");
}
