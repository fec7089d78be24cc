//! The bucket source of a `DagTrigger`: list the objects of an S3-compatible bucket under a
//! prefix whose names match a glob, as [`Found`] values.
//!
//! Use: [`read_credentials`] (from the Kubernetes Secret the spec names), then
//! [`Bucket::connect`] once, then [`Bucket::list`] on every scan.
//!
//! - Requests are path-style (`{endpoint}/{bucket}?list-type=2`), signed with SigV4 (ring).
//!   Plain `http://` endpoints are allowed (local and in-cluster servers); credentials then
//!   travel unencrypted, so use `https://` for anything else.
//! - The listing is paged (ListObjectsV2 continuation tokens, [`DEFAULT_PAGE_SIZE`] keys a page)
//!   and bounded ([`DEFAULT_MAX_OBJECTS`] matching objects, else [`BucketError::TooMany`]).
//! - Each failure names its cause: [`BucketError::reason`] gives a short CamelCase reason for
//!   status conditions, the message names the endpoint, bucket, Secret or field.
//! - Limits of the `object_store` client: a key with an empty segment (`a//b`) fails the listing;
//!   a "folder" marker object (`dir/`) is listed as `dir` and dropped when it has children.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use globset::{Glob, GlobMatcher};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::{ClientOptions, ObjectMeta, RetryConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Found;

mod error;
pub use error::BucketError;

/// Keys asked for per ListObjectsV2 page (S3's own maximum is 1,000).
pub const DEFAULT_PAGE_SIZE: usize = 1000;
/// The most matching objects one listing returns before failing with [`BucketError::TooMany`].
pub const DEFAULT_MAX_OBJECTS: usize = 100_000;
/// The Secret key holding the access key id.
pub const ACCESS_KEY_ID: &str = "accessKeyId";
/// The Secret key holding the secret access key.
pub const SECRET_ACCESS_KEY: &str = "secretAccessKey";
/// The region signed for when the spec names none (what MinIO and most S3 servers expect).
pub const DEFAULT_REGION: &str = "us-east-1";

/// `spec.bucket` of a `DagTrigger`: where to look for new objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketSource {
    /// The S3 endpoint URL, `http://` or `https://`, e.g. `https://s3.eu-west-1.amazonaws.com` or
    /// `http://minio.storage.svc:9000`. Requests are path-style: `{endpoint}/{bucket}`.
    pub endpoint: String,
    /// The bucket name.
    pub bucket: String,
    /// The folder to watch inside the bucket (`incoming` or `incoming/`: keys under
    /// `incoming/`, at any depth). Default: the whole bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// A glob matched against each object's name (its last key segment), e.g. `*.fits`.
    /// Default: every object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The Secret (same namespace) with keys `accessKeyId` and `secretAccessKey`.
    pub credentials_secret: SecretRef,
    /// The region requests are signed for. Default `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A reference to a Secret in the trigger's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    /// The Secret's name.
    pub name: String,
}

/// An access key pair. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Reads `accessKeyId` and `secretAccessKey` from Secret `namespace/secret.name`.
///
/// Errors: [`BucketError::SecretNotFound`], [`BucketError::SecretKeyMissing`] (absent, empty or
/// not UTF-8), [`BucketError::SecretRead`] (the API call failed, e.g. forbidden).
pub async fn read_credentials(client: Client, namespace: &str, secret: &SecretRef) -> Result<Credentials, BucketError> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let found = api
        .get_opt(&secret.name)
        .await
        .map_err(|source| BucketError::SecretRead {
            namespace: namespace.into(),
            name: secret.name.clone(),
            source,
        })?;
    let found = found.ok_or_else(|| BucketError::SecretNotFound {
        namespace: namespace.into(),
        name: secret.name.clone(),
    })?;
    let data = found.data.unwrap_or_default();
    let value = |key: &'static str| -> Result<String, BucketError> {
        let missing = |problem| BucketError::SecretKeyMissing {
            namespace: namespace.into(),
            name: secret.name.clone(),
            key,
            problem,
        };
        let bytes = data.get(key).ok_or_else(|| missing("absent"))?;
        let text = String::from_utf8(bytes.0.clone()).map_err(|_| missing("not UTF-8"))?;
        let text = text.trim().to_string();
        if text.is_empty() {
            return Err(missing("empty"));
        }
        Ok(text)
    };
    Ok(Credentials {
        access_key_id: value(ACCESS_KEY_ID)?,
        secret_access_key: value(SECRET_ACCESS_KEY)?,
    })
}

/// A connected bucket source: a validated spec, its S3 client and its compiled pattern.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<AmazonS3>,
    endpoint: String,
    bucket: String,
    /// `""` or a key prefix ending in `/`.
    prefix: String,
    pattern: Option<GlobMatcher>,
    page_size: usize,
    max_objects: usize,
}

impl Bucket {
    /// Validates `source` and builds its client (no request is made yet).
    ///
    /// Errors: [`BucketError::Invalid`] naming `endpoint`, `bucket`, `prefix` or `pattern`.
    pub fn connect(source: &BucketSource, credentials: &Credentials) -> Result<Bucket, BucketError> {
        let endpoint = validate_endpoint(&source.endpoint)?;
        validate_bucket(&source.bucket)?;
        let prefix = normalize_prefix(source.prefix.as_deref().unwrap_or(""))?;
        let pattern = source.pattern.as_deref().map(compile_pattern).transpose()?;
        // reqwest is built without a crypto provider of its own: it uses the process default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = ClientOptions::new()
            .with_allow_http(endpoint.starts_with("http://"))
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(30));
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(15),
            ..RetryConfig::default()
        };
        let store = AmazonS3Builder::new()
            .with_endpoint(&endpoint)
            .with_bucket_name(&source.bucket)
            .with_region(source.region.as_deref().unwrap_or(DEFAULT_REGION))
            .with_access_key_id(&credentials.access_key_id)
            .with_secret_access_key(&credentials.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_client_options(client)
            .with_retry(retry)
            .build()
            .map_err(|e| BucketError::Invalid {
                field: "endpoint",
                value: endpoint.clone(),
                reason: e.to_string(),
            })?;
        Ok(Bucket {
            store: Arc::new(store),
            endpoint,
            bucket: source.bucket.clone(),
            prefix,
            pattern,
            page_size: DEFAULT_PAGE_SIZE,
            max_objects: DEFAULT_MAX_OBJECTS,
        })
    }

    /// The same source asking for `page_size` keys per page (at least 1).
    pub fn with_page_size(mut self, page_size: usize) -> Bucket {
        self.page_size = page_size.max(1);
        self
    }

    /// The same source failing with [`BucketError::TooMany`] past `max_objects` matches.
    pub fn with_max_objects(mut self, max_objects: usize) -> Bucket {
        self.max_objects = max_objects;
        self
    }

    /// Every object under the prefix whose name matches the pattern, in key order.
    ///
    /// Errors: [`BucketError::Unreachable`], [`BucketError::NoSuchBucket`],
    /// [`BucketError::BadCredentials`], [`BucketError::AccessDenied`], [`BucketError::Listing`],
    /// [`BucketError::TooMany`].
    pub async fn list(&self) -> Result<Vec<Found>, BucketError> {
        let prefix = (!self.prefix.is_empty()).then_some(self.prefix.as_str());
        let mut selection = Selection::new(&self.prefix, self.pattern.clone());
        let mut token: Option<String> = None;
        loop {
            let opts = PaginatedListOptions {
                max_keys: Some(self.page_size),
                page_token: token.clone(),
                ..PaginatedListOptions::default()
            };
            let page = self
                .store
                .list_paginated(prefix, opts)
                .await
                .map_err(|e| error::classify(&e, &self.endpoint, &self.bucket))?;
            for meta in &page.result.objects {
                selection.add(meta);
            }
            if selection.found.len() > self.max_objects {
                return Err(BucketError::TooMany {
                    bucket: self.bucket.clone(),
                    prefix: self.prefix.clone(),
                    limit: self.max_objects,
                });
            }
            match page.page_token {
                Some(next) if token.as_ref() == Some(&next) => {
                    return Err(self.listing_error("the server repeated a continuation token"));
                }
                Some(next) => token = Some(next),
                None => break,
            }
        }
        Ok(selection.finish())
    }

    fn listing_error(&self, cause: impl Into<String>) -> BucketError {
        BucketError::Listing {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            cause: cause.into(),
        }
    }
}

/// The pure half of a listing: which listed objects are inputs.
struct Selection<'a> {
    prefix: &'a str,
    pattern: Option<GlobMatcher>,
    found: Vec<Found>,
    /// Every folder of every listed key, to tell "folder" marker objects.
    dirs: HashSet<String>,
}

impl<'a> Selection<'a> {
    fn new(prefix: &'a str, pattern: Option<GlobMatcher>) -> Selection<'a> {
        Selection {
            prefix,
            pattern,
            found: Vec::new(),
            dirs: HashSet::new(),
        }
    }

    /// Keeps `meta` if its key is under the prefix (checked again here: the server filters
    /// too) and its name matches the pattern.
    fn add(&mut self, meta: &ObjectMeta) {
        let item = found_from(meta);
        if !item.path.starts_with(self.prefix) {
            return;
        }
        self.dirs.extend(ancestors(&item.path).map(str::to_string));
        let matches = self.pattern.as_ref().is_none_or(|p| p.is_match(&item.name));
        if !item.name.is_empty() && matches {
            self.found.push(item);
        }
    }

    /// The inputs in key order, without "folder" markers (`dir/` is listed as `dir`: an empty
    /// object that other keys have as folder).
    fn finish(self) -> Vec<Found> {
        let Selection { mut found, dirs, .. } = self;
        found.retain(|f| f.size != 0 || !dirs.contains(&f.path));
        found.sort_by(|a, b| a.path.cmp(&b.path));
        found
    }
}

/// An endpoint without trailing `/`. Error: not `http(s)://host[:port][/path]`.
fn validate_endpoint(endpoint: &str) -> Result<String, BucketError> {
    let invalid = |reason: &str| BucketError::Invalid {
        field: "endpoint",
        value: endpoint.into(),
        reason: reason.into(),
    };
    let trimmed = endpoint.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| invalid("must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains(['?', '#', '@', ' ']) {
        return Err(invalid("must name a host, e.g. https://s3.example.com:9000"));
    }
    Ok(trimmed.to_string())
}

/// S3's bucket naming rules: 3-63 characters of `a-z 0-9 . -`, starting and ending alphanumeric.
fn validate_bucket(bucket: &str) -> Result<(), BucketError> {
    let ok_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ok_ends = bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if (3..=63).contains(&bucket.len()) && ok_chars && ok_ends {
        return Ok(());
    }
    Err(BucketError::Invalid {
        field: "bucket",
        value: bucket.into(),
        reason: "a bucket name has 3-63 characters of a-z, 0-9, '.', '-', starting and ending with a letter or digit"
            .into(),
    })
}

/// `""` (whole bucket) or the prefix as a folder: no leading `/`, one trailing `/`.
/// Error: an empty segment (`a//b`), which no listed key can have.
fn normalize_prefix(prefix: &str) -> Result<String, BucketError> {
    let inner = prefix.trim_start_matches('/').trim_end_matches('/');
    if inner.is_empty() {
        return Ok(String::new());
    }
    if inner.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(BucketError::Invalid {
            field: "prefix",
            value: prefix.into(),
            reason: "a folder path must not have empty, '.' or '..' segments".into(),
        });
    }
    Ok(format!("{inner}/"))
}

/// Compiles a name glob (`*`, `?`, `[abc]`, `{a,b}`). Error: bad syntax, or a `/` (the pattern
/// matches names; folders go in `prefix`).
fn compile_pattern(pattern: &str) -> Result<GlobMatcher, BucketError> {
    let invalid = |reason: String| BucketError::Invalid {
        field: "pattern",
        value: pattern.into(),
        reason,
    };
    if pattern.contains('/') {
        return Err(invalid(
            "the pattern matches object names (the last key segment); put folders in prefix".into(),
        ));
    }
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .map_err(|e| invalid(e.kind().to_string()))
}

/// `(dir, name)` of a key: before and after its last `/` (`dir` is `""` at the top).
pub fn split_key(key: &str) -> (&str, &str) {
    key.rsplit_once('/').unwrap_or(("", key))
}

/// Every proper folder of a key: `a/b/c` -> `a/b`, `a`.
fn ancestors(key: &str) -> impl Iterator<Item = &str> {
    key.match_indices('/').map(move |(i, _)| &key[..i])
}

/// An etag without its quotes (S3 sends `"d41d8..."`).
fn clean_etag(etag: &str) -> String {
    etag.trim().trim_matches('"').to_string()
}

fn found_from(meta: &ObjectMeta) -> Found {
    let path = meta.location.as_ref().to_string();
    let (dir, name) = split_key(&path);
    let etag = meta.e_tag.as_deref().map(clean_etag).filter(|e| !e.is_empty());
    let version = etag.clone().unwrap_or_else(|| meta.last_modified.to_rfc3339());
    Found {
        dir: dir.to_string(),
        name: name.to_string(),
        size: meta.size,
        version,
        etag,
        path,
    }
}

#[cfg(test)]
mod tests;
