//! Why a bucket could not be listed: [`BucketError`], and [`classify`] turning an
//! `object_store` error into the cause it names (transport failure, or the S3 error reply's
//! code and status).

use object_store::client::{HttpError, HttpErrorKind};

/// Why a bucket could not be listed. Messages name the endpoint, bucket, Secret or field.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("bucket source: {field} {value:?} is invalid: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("bucket source: credentialsSecret {namespace}/{name} not found")]
    SecretNotFound { namespace: String, name: String },
    #[error("bucket source: credentialsSecret {namespace}/{name} has no key {key:?} ({problem})")]
    SecretKeyMissing {
        namespace: String,
        name: String,
        key: &'static str,
        problem: &'static str,
    },
    #[error("bucket source: cannot read credentialsSecret {namespace}/{name}: {source}")]
    SecretRead {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error("bucket source: endpoint {endpoint} is unreachable: {cause}")]
    Unreachable { endpoint: String, cause: String },
    #[error("bucket source: no bucket {bucket:?} at {endpoint}")]
    NoSuchBucket { endpoint: String, bucket: String },
    #[error("bucket source: {endpoint} rejected the credentials ({code}: {message})")]
    BadCredentials {
        endpoint: String,
        code: String,
        message: String,
    },
    #[error("bucket source: access to bucket {bucket:?} at {endpoint} denied ({code}: {message})")]
    AccessDenied {
        endpoint: String,
        bucket: String,
        code: String,
        message: String,
    },
    #[error("bucket source: listing bucket {bucket:?} at {endpoint} failed: {cause}")]
    Listing {
        endpoint: String,
        bucket: String,
        cause: String,
    },
    #[error(
        "bucket source: more than {limit} objects match in bucket {bucket:?} under prefix {prefix:?}; narrow the prefix or pattern"
    )]
    TooMany {
        bucket: String,
        prefix: String,
        limit: usize,
    },
}

impl BucketError {
    /// A short CamelCase reason for a status condition, e.g. `BucketUnreachable`.
    pub fn reason(&self) -> &'static str {
        match self {
            BucketError::Invalid { .. } => "InvalidSpec",
            BucketError::SecretNotFound { .. } | BucketError::SecretKeyMissing { .. } => "CredentialsSecretMissing",
            BucketError::SecretRead { .. } => "CredentialsSecretUnreadable",
            BucketError::Unreachable { .. } => "BucketUnreachable",
            BucketError::NoSuchBucket { .. } => "NoSuchBucket",
            BucketError::BadCredentials { .. } => "BadCredentials",
            BucketError::AccessDenied { .. } => "AccessDenied",
            BucketError::Listing { .. } => "ListFailed",
            BucketError::TooMany { .. } => "TooManyObjects",
        }
    }
}

/// The cause `err` (a failed list request to `endpoint`/`bucket`) names.
pub(super) fn classify(err: &object_store::Error, endpoint: &str, bucket: &str) -> BucketError {
    let (endpoint, bucket) = (endpoint.to_string(), bucket.to_string());
    if let Some(cause) = unreachable_cause(err) {
        return BucketError::Unreachable { endpoint, cause };
    }
    let text = err.to_string();
    let reply = S3Reply::parse(&text);
    let kind = reply.kind();
    let S3Reply { status, code, message } = reply;
    match kind {
        ReplyKind::NoSuchBucket => BucketError::NoSuchBucket { endpoint, bucket },
        ReplyKind::BadCredentials => BucketError::BadCredentials {
            endpoint,
            code,
            message,
        },
        ReplyKind::AccessDenied => BucketError::AccessDenied {
            endpoint,
            bucket,
            code,
            message,
        },
        ReplyKind::Other => {
            let cause = match status {
                Some(status) => format!("HTTP {status} {code}: {message}"),
                None => text,
            };
            BucketError::Listing {
                endpoint,
                bucket,
                cause,
            }
        }
    }
}

/// The innermost cause of a connect, timeout or transport failure, if `err` is one.
fn unreachable_cause(err: &object_store::Error) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(http) = e.downcast_ref::<HttpError>() {
            return match http.kind() {
                HttpErrorKind::Connect
                | HttpErrorKind::Timeout
                | HttpErrorKind::Request
                | HttpErrorKind::Interrupted => Some(innermost(http)),
                _ => None,
            };
        }
        cur = e.source();
    }
    None
}

fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// The parts of an S3 error reply found in a client error's text: the HTTP status (from
/// "status code: 404 ...") and the XML body's `<Code>` and `<Message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct S3Reply {
    pub(super) status: Option<u16>,
    pub(super) code: String,
    pub(super) message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReplyKind {
    NoSuchBucket,
    BadCredentials,
    AccessDenied,
    Other,
}

impl S3Reply {
    pub(super) fn parse(text: &str) -> S3Reply {
        let status = text.split_once("status code: ").and_then(|(_, rest)| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        });
        let tag = |name: &str| {
            let open = format!("<{name}>");
            let close = format!("</{name}>");
            text.split_once(&open)
                .and_then(|(_, rest)| rest.split_once(&close))
                .map(|(inner, _)| unescape_xml(inner))
                .unwrap_or_default()
        };
        S3Reply {
            status,
            code: tag("Code"),
            message: tag("Message"),
        }
    }

    /// Classifies by the S3 error code first (servers differ in statuses: versitygw answers an
    /// unknown access key with 404), then by the status.
    pub(super) fn kind(&self) -> ReplyKind {
        match self.code.as_str() {
            "NoSuchBucket" => ReplyKind::NoSuchBucket,
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "XAdminUserNotFound"
            | "InvalidToken"
            | "ExpiredToken"
            | "InvalidSecurity" => ReplyKind::BadCredentials,
            "AccessDenied" | "AllAccessDisabled" | "AccountProblem" => ReplyKind::AccessDenied,
            "" => match self.status {
                Some(404) => ReplyKind::NoSuchBucket,
                Some(401) => ReplyKind::BadCredentials,
                Some(403) => ReplyKind::AccessDenied,
                _ => ReplyKind::Other,
            },
            _ => ReplyKind::Other,
        }
    }
}

fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#xA;", "\n")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_BUCKET: &str = "Generic S3 error: Error performing list request: Error performing GET http://127.0.0.1:9/nope?list-type=2 in 2ms - Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist.</Message><BucketName>nope</BucketName></Error>";

    fn generic(source: Box<dyn std::error::Error + Send + Sync>) -> object_store::Error {
        object_store::Error::Generic { store: "S3", source }
    }

    fn reply(status: Option<u16>, code: &str) -> S3Reply {
        S3Reply {
            status,
            code: code.into(),
            message: String::new(),
        }
    }

    #[test]
    fn parses_status_code_and_message_of_an_s3_reply() {
        let r = S3Reply::parse(NO_BUCKET);
        assert_eq!(r.status, Some(404));
        assert_eq!(r.code, "NoSuchBucket");
        assert_eq!(r.message, "The specified bucket does not exist.");
        let escaped = S3Reply::parse("<Code>X</Code><Message>a &lt;b&gt; &amp; &quot;c&quot;</Message>");
        assert_eq!((escaped.status, escaped.message.as_str()), (None, "a <b> & \"c\""));
        assert_eq!(S3Reply::parse("no reply at all"), reply(None, ""));
    }

    #[test]
    fn the_code_decides_before_the_status() {
        // versitygw answers an unknown access key with 404, not 403.
        assert_eq!(reply(Some(404), "XAdminUserNotFound").kind(), ReplyKind::BadCredentials);
        assert_eq!(
            reply(Some(403), "SignatureDoesNotMatch").kind(),
            ReplyKind::BadCredentials
        );
        assert_eq!(reply(Some(403), "InvalidAccessKeyId").kind(), ReplyKind::BadCredentials);
        assert_eq!(reply(Some(403), "AccessDenied").kind(), ReplyKind::AccessDenied);
        assert_eq!(reply(Some(404), "NoSuchBucket").kind(), ReplyKind::NoSuchBucket);
        assert_eq!(reply(Some(404), "NoSuchKey").kind(), ReplyKind::Other);
        assert_eq!(reply(Some(404), "").kind(), ReplyKind::NoSuchBucket);
        assert_eq!(reply(Some(403), "").kind(), ReplyKind::AccessDenied);
        assert_eq!(reply(Some(401), "").kind(), ReplyKind::BadCredentials);
        assert_eq!(reply(Some(500), "").kind(), ReplyKind::Other);
    }

    #[test]
    fn classify_names_the_bucket_or_endpoint() {
        let e = classify(&generic(NO_BUCKET.into()), "http://s3.local", "nope");
        assert_eq!(e.reason(), "NoSuchBucket");
        assert_eq!(e.to_string(), "bucket source: no bucket \"nope\" at http://s3.local");

        let text = "Server returned non-2xx status code: 503 Service Unavailable: <Error><Code>SlowDown</Code><Message>busy</Message></Error>";
        let e = classify(&generic(text.into()), "http://s3.local", "b1");
        assert_eq!(e.reason(), "ListFailed");
        assert!(e.to_string().ends_with("failed: HTTP 503 SlowDown: busy"), "{e}");
    }

    #[test]
    fn a_refused_connection_is_unreachable_with_its_innermost_cause() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let http = HttpError::new(HttpErrorKind::Connect, refused);
        let e = classify(&generic(Box::new(http)), "http://127.0.0.1:9", "b1");
        assert_eq!(e.reason(), "BucketUnreachable");
        assert_eq!(
            e.to_string(),
            "bucket source: endpoint http://127.0.0.1:9 is unreachable: Connection refused"
        );
        let decode = HttpError::new(HttpErrorKind::Decode, std::io::Error::other("bad body"));
        let e = classify(&generic(Box::new(decode)), "http://127.0.0.1:9", "b1");
        assert_eq!(e.reason(), "ListFailed");
    }
}
