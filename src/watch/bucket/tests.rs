//! Unit tests of the bucket source's pure parts: spec validation, key splitting, the selection
//! of listed objects by prefix and pattern. The listing itself is tested against a real S3
//! server in `tests/e2e_bucket.rs`.

use object_store::path::Path;
use proptest::prelude::*;

use super::*;

fn meta(key: &str, size: u64, etag: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        location: Path::parse(key).unwrap(),
        last_modified: Default::default(),
        size,
        e_tag: etag.map(str::to_string),
        version: None,
    }
}

fn select(prefix: &str, pattern: Option<&str>, keys: &[(&str, u64)]) -> Vec<String> {
    let prefix = normalize_prefix(prefix).unwrap();
    let mut selection = Selection::new(&prefix, pattern.map(|p| compile_pattern(p).unwrap()));
    for (key, size) in keys {
        selection.add(&meta(key, *size, Some("\"e\"")));
    }
    selection.finish().into_iter().map(|f| f.path).collect()
}

fn source(endpoint: &str, bucket: &str) -> BucketSource {
    BucketSource {
        endpoint: endpoint.into(),
        bucket: bucket.into(),
        prefix: None,
        pattern: None,
        credentials_secret: SecretRef { name: "s3".into() },
        region: None,
    }
}

fn creds() -> Credentials {
    Credentials {
        access_key_id: "AK".into(),
        secret_access_key: "SK".into(),
    }
}

#[test]
fn split_key_gives_dir_and_name() {
    assert_eq!(split_key("incoming/a/m31.fits"), ("incoming/a", "m31.fits"));
    assert_eq!(split_key("m31.fits"), ("", "m31.fits"));
    assert_eq!(split_key("a/b"), ("a", "b"));
}

#[test]
fn found_carries_key_parts_size_and_unquoted_etag() {
    let f = found_from(&meta("in/sub/x.fits", 42, Some("\"9e107d9d\"")));
    let want = Found {
        path: "in/sub/x.fits".into(),
        name: "x.fits".into(),
        dir: "in/sub".into(),
        size: 42,
        version: "9e107d9d".into(),
        etag: Some("9e107d9d".into()),
    };
    assert_eq!(f, want);
    // No etag: the version is the last-modified time.
    let f = found_from(&meta("x", 1, None));
    assert_eq!((f.etag, f.version.as_str()), (None, "1970-01-01T00:00:00+00:00"));
}

#[test]
fn selection_keeps_matching_names_under_the_prefix_in_key_order() {
    let keys = [
        ("in/b.fits", 1),
        ("in/a.fits", 1),
        ("in/deep/c.fits", 1),
        ("in/a.txt", 1),
        ("in/a.fits.part", 1),
        ("inbox/d.fits", 1),
        ("other/e.fits", 1),
        ("f.fits", 1),
    ];
    let got = select("in", Some("*.fits"), &keys);
    assert_eq!(got, ["in/a.fits", "in/b.fits", "in/deep/c.fits"]);
    assert_eq!(select("/in/", Some("*.fits"), &keys), got);
    assert_eq!(select("", Some("?.txt"), &keys), ["in/a.txt"]);
    assert_eq!(select("in/deep", None, &keys), ["in/deep/c.fits"]);
    assert_eq!(select("", Some("{a,b}.fits"), &keys), ["in/a.fits", "in/b.fits"]);
    assert_eq!(select("", Some("[ef].fits"), &keys).len(), 2);
}

#[test]
fn selection_drops_folder_markers_but_keeps_empty_files() {
    // `in/sub/` is listed as `in/sub`: empty, and the folder of `in/sub/x`.
    let keys = [("in/sub", 0), ("in/sub/x", 3), ("in/empty", 0), ("in/big", 5)];
    assert_eq!(select("in", None, &keys), ["in/big", "in/empty", "in/sub/x"]);
}

#[test]
fn prefix_is_a_folder() {
    assert_eq!(normalize_prefix("").unwrap(), "");
    assert_eq!(normalize_prefix("/").unwrap(), "");
    assert_eq!(normalize_prefix("in").unwrap(), "in/");
    assert_eq!(normalize_prefix("/in/a/").unwrap(), "in/a/");
    for bad in ["in//a", "in/../a", "./in"] {
        let e = normalize_prefix(bad).unwrap_err();
        assert!(e.to_string().contains("prefix"), "{e}");
        assert_eq!(e.reason(), "InvalidSpec");
    }
}

#[test]
fn bad_patterns_are_named() {
    let e = compile_pattern("in/*.fits").unwrap_err();
    assert!(e.to_string().contains("pattern \"in/*.fits\" is invalid"), "{e}");
    assert!(e.to_string().contains("put folders in prefix"), "{e}");
    let e = compile_pattern("[a-").unwrap_err();
    assert!(
        e.to_string().starts_with("bucket source: pattern \"[a-\" is invalid"),
        "{e}"
    );
}

#[test]
fn endpoints_must_be_http_urls_with_a_host() {
    assert_eq!(
        validate_endpoint("http://127.0.0.1:9000/").unwrap(),
        "http://127.0.0.1:9000"
    );
    assert_eq!(
        validate_endpoint("https://s3.example.com").unwrap(),
        "https://s3.example.com"
    );
    for bad in ["s3.example.com", "ftp://x", "http://", "https:///b", "http://u@h"] {
        let e = validate_endpoint(bad).unwrap_err();
        assert!(e.to_string().contains(&format!("endpoint {bad:?} is invalid")), "{e}");
    }
}

#[test]
fn bucket_names_follow_s3_rules() {
    for ok in ["abc", "my-bucket.2", &"a".repeat(63)] {
        validate_bucket(ok).unwrap();
    }
    for bad in ["ab", "Upper", "a_b", "-ab", "ab-", "a/b", &"a".repeat(64)] {
        let e = validate_bucket(bad).unwrap_err();
        assert!(e.to_string().contains(&format!("bucket {bad:?} is invalid")), "{e}");
    }
}

#[test]
fn connect_validates_every_field_before_any_request() {
    Bucket::connect(&source("http://127.0.0.1:9", "b12"), &creds()).unwrap();
    let e = Bucket::connect(&source("127.0.0.1:9", "b12"), &creds()).unwrap_err();
    assert!(e.to_string().contains("endpoint"), "{e}");
    let e = Bucket::connect(&source("http://127.0.0.1:9", "B"), &creds()).unwrap_err();
    assert!(e.to_string().contains("bucket \"B\""), "{e}");
    let mut s = source("http://127.0.0.1:9", "b12");
    s.pattern = Some("{".into());
    let e = Bucket::connect(&s, &creds()).unwrap_err();
    assert!(e.to_string().contains("pattern \"{\""), "{e}");
}

#[test]
fn spec_reads_and_writes_camel_case_with_optional_fields() {
    let yaml = "endpoint: http://minio:9000\nbucket: raw\nprefix: incoming\npattern: '*.fits'\ncredentialsSecret: {name: s3}\n";
    let s: BucketSource = serde_yaml::from_str(yaml).unwrap();
    assert_eq!(s.prefix.as_deref(), Some("incoming"));
    assert_eq!(s.credentials_secret.name, "s3");
    let minimal: BucketSource = serde_yaml::from_str("endpoint: e\nbucket: b\ncredentialsSecret: {name: s}\n").unwrap();
    assert_eq!((minimal.prefix, minimal.pattern, minimal.region), (None, None, None));
    let back = serde_json::to_value(&s).unwrap();
    assert_eq!(back["credentialsSecret"]["name"], "s3");
    assert!(back.get("region").is_none());
}

#[test]
fn schema_requires_endpoint_bucket_and_secret() {
    let schema = serde_json::to_value(schemars::schema_for!(BucketSource)).unwrap();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["endpoint", "bucket", "credentialsSecret"]);
    let props = schema["properties"].as_object().unwrap();
    let names: Vec<&str> = props.keys().map(String::as_str).collect();
    for field in ["endpoint", "bucket", "prefix", "pattern", "credentialsSecret", "region"] {
        assert!(names.contains(&field), "{field} missing from {names:?}");
    }
}

#[test]
fn credentials_debug_hides_the_secret() {
    let shown = format!("{:?}", creds());
    assert!(shown.contains("AK") && !shown.contains("SK"), "{shown}");
}

proptest! {
    #[test]
    fn split_key_rejoins_to_the_key(segments in prop::collection::vec("[a-z0-9._-]{1,8}", 1..5)) {
        let key = segments.join("/");
        let (dir, name) = split_key(&key);
        prop_assert!(!name.contains('/'));
        prop_assert_eq!(name, segments.last().unwrap().as_str());
        let rejoined = if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
        prop_assert_eq!(rejoined, key.clone());
        prop_assert_eq!(ancestors(&key).count(), segments.len() - 1);
    }

    #[test]
    fn selection_is_exactly_prefix_and_pattern(
        keys in prop::collection::btree_set("(in|out)/[ab]{1,3}\\.(fits|txt)", 0..40)
    ) {
        let listed: Vec<(&str, u64)> = keys.iter().map(|k| (k.as_str(), 1)).collect();
        let got = select("in", Some("*.fits"), &listed);
        let want: Vec<String> = keys
            .iter()
            .filter(|k| k.starts_with("in/") && k.ends_with(".fits"))
            .cloned()
            .collect();
        prop_assert_eq!(got, want);
    }
}
