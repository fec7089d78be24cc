//! The real S3-compatible server of the bucket tests (`e2e/s3-up.sh`): its address and root
//! credentials, a bucket per test, uploads, and the credentials Secret. Needs `mod common;`
//! beside this module.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::Command;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStoreExt, PutPayload};

use crate::common::TestEnv;
use kubedag::watch::bucket::{BucketSource, Credentials, SecretRef};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The server `e2e/s3-up.sh` started (or found running).
pub struct Server {
    pub endpoint: String,
    pub region: String,
    pub root: Credentials,
}

pub fn s3_up() -> Server {
    let out = Command::new(format!("{REPO}/e2e/s3-up.sh"))
        .output()
        .expect("run e2e/s3-up.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "e2e/s3-up.sh failed: {stderr}");
    let vars: BTreeMap<String, String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let var = |k: &str| {
        vars.get(k)
            .cloned()
            .unwrap_or_else(|| panic!("s3-up.sh printed no {k}"))
    };
    Server {
        endpoint: var("S3_ENDPOINT"),
        region: var("S3_REGION"),
        root: Credentials {
            access_key_id: var("S3_ACCESS_KEY_ID"),
            secret_access_key: var("S3_SECRET_ACCESS_KEY"),
        },
    }
}

impl Server {
    /// Creates `bucket` with a signed CreateBucket request (curl's SigV4; object_store has none).
    pub fn create_bucket(&self, bucket: &str) {
        self.put_empty(bucket);
    }

    /// An empty signed PUT of `path` (`bucket` or `bucket/key`), keeping the key's trailing `/`
    /// (object_store's paths drop it).
    pub fn put_empty(&self, path: &str) {
        let user = format!("{}:{}", self.root.access_key_id, self.root.secret_access_key);
        let out = Command::new("curl")
            .args(["-sS", "--fail-with-body", "-X", "PUT"])
            .args([
                "-H",
                "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ])
            .args(["--aws-sigv4", &format!("aws:amz:{}:s3", self.region)])
            .args(["--user", &user, &format!("{}/{path}", self.endpoint)])
            .output()
            .expect("run curl");
        let body = String::from_utf8_lossy(&out.stdout);
        let error = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "PUT {path} failed: {error} {body}");
    }

    /// A writer for `bucket` (object_store's own S3 client, root credentials).
    pub fn writer(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_region(&self.region)
            .with_bucket_name(bucket)
            .with_access_key_id(&self.root.access_key_id)
            .with_secret_access_key(&self.root.secret_access_key)
            .with_client_options(ClientOptions::new().with_allow_http(true))
            .build()
            .unwrap()
    }

    pub fn source(&self, bucket: &str, prefix: &str, pattern: &str) -> BucketSource {
        BucketSource {
            endpoint: self.endpoint.clone(),
            bucket: bucket.into(),
            prefix: Some(prefix.into()),
            pattern: Some(pattern.into()),
            credentials_secret: SecretRef { name: "s3".into() },
            region: Some(self.region.clone()),
        }
    }
}

/// Uploads every `(key, body)`, 8 at a time; returns key -> etag (unquoted) as the server said.
pub async fn upload(store: &AmazonS3, objects: Vec<(String, Vec<u8>)>) -> BTreeMap<String, String> {
    futures::stream::iter(objects)
        .map(|(key, body)| async move {
            let put = store.put(&Path::from(key.as_str()), PutPayload::from(body)).await?;
            let etag = put.e_tag.expect("PutObject returns an etag");
            Ok::<_, object_store::Error>((key, etag.trim_matches('"').to_string()))
        })
        .buffer_unordered(8)
        .try_collect()
        .await
        .expect("upload objects")
}

pub async fn secret(env: &TestEnv, name: &str, data: &[(&str, &str)]) {
    let string_data = data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let s = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(string_data),
        ..Default::default()
    };
    env.api::<Secret>().create(&PostParams::default(), &s).await.unwrap();
}

/// The server, a fresh namespace (for the Secret) and a fresh bucket named after it.
pub async fn setup(prefix: &str) -> (Server, TestEnv, String) {
    let server = s3_up();
    let env = TestEnv::without_operator(prefix).await;
    let bucket = format!("kd-{}", env.ns);
    server.create_bucket(&bucket);
    (server, env, bucket)
}
