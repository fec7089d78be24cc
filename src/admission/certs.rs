//! Serving certificates of the webhook.
//!
//! Self-managed (default): a CA kept in a Secret (created once with create-if-absent, so every
//! replica shares it and the caBundle stays the same across restarts and replicas), and a
//! short-lived serving certificate issued from it in memory and re-issued before it expires.
//! Rotation therefore never changes what the API server trusts.
//! Mounted: `tls.crt`/`tls.key` from a directory (a Secret written by cert-manager or Helm),
//! re-read when they change; the caBundle is then injected by whoever issued them.

use std::path::PathBuf;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};

/// Lifetime of a serving certificate; it is re-issued when less than a third remains.
pub const SERVING_CERT_DAYS: i64 = 90;
const CA_YEARS: i64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("CA Secret {0}: missing or unreadable ca.crt/ca.key")]
    BadSecret(String),
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// A PEM certificate chain and key to serve with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingCert {
    pub cert_pem: String,
    pub key_pem: String,
    /// Unix seconds after which the certificate is invalid.
    pub not_after: i64,
}

/// The webhook's certificate authority.
pub struct Ca {
    pub cert_pem: String,
    key: KeyPair,
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, "kubedag-webhook-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

impl Ca {
    pub fn generate() -> Result<Ca, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = ca_params()?;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(365 * CA_YEARS);
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key,
        })
    }

    /// Issues a serving certificate for `dns_names` and 127.0.0.1.
    pub fn issue(&self, dns_names: &[String]) -> Result<ServingCert, rcgen::Error> {
        let issuer = Issuer::new(ca_params()?, &self.key);
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(dns_names.to_vec())?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        params.distinguished_name.push(
            DnType::CommonName,
            dns_names.first().map(String::as_str).unwrap_or("kubedag"),
        );
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(SERVING_CERT_DAYS);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(ServingCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after: params.not_after.unix_timestamp(),
        })
    }
}

/// True when less than a third of the certificate's lifetime remains.
pub fn needs_renewal(cert: &ServingCert, now_unix: i64) -> bool {
    cert.not_after - now_unix < SERVING_CERT_DAYS * 86_400 / 3
}

/// The CA from Secret `namespace/name`. An absent Secret is created and an empty one (as the
/// Helm chart installs it, so that uninstalling removes it) is filled, both with a new CA; replicas
/// racing to do so all end up with the one the API server accepted first.
pub async fn shared_ca(client: Client, namespace: &str, name: &str) -> Result<Ca, CertError> {
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    let existing = secrets.get_opt(name).await?;
    if let Some(secret) = &existing
        && secret.data.as_ref().is_some_and(|d| d.contains_key("ca.key"))
    {
        return ca_from_secret(secret, name);
    }
    let ca = Ca::generate()?;
    let mut secret = existing.unwrap_or_default();
    secret.metadata.name = Some(name.to_string());
    secret.metadata.managed_fields = None;
    secret.type_ = Some("Opaque".into());
    secret.data = Some(
        [
            ("ca.crt".to_string(), ByteString(ca.cert_pem.clone().into_bytes())),
            ("ca.key".to_string(), ByteString(ca.key.serialize_pem().into_bytes())),
        ]
        .into(),
    );
    // `replace` carries the resourceVersion read above, so of racing replicas only one fills it.
    let written = match secret.metadata.resource_version {
        Some(_) => secrets.replace(name, &PostParams::default(), &secret).await,
        None => secrets.create(&PostParams::default(), &secret).await,
    };
    match written {
        Ok(_) => Ok(ca),
        Err(kube::Error::Api(s)) if s.code == 409 => ca_from_secret(&secrets.get(name).await?, name),
        Err(err) => Err(err.into()),
    }
}

fn ca_from_secret(secret: &Secret, name: &str) -> Result<Ca, CertError> {
    let field = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .ok_or_else(|| CertError::BadSecret(name.to_string()))
    };
    let key = KeyPair::from_pem(&field("ca.key")?).map_err(|_| CertError::BadSecret(name.to_string()))?;
    Ok(Ca {
        cert_pem: field("ca.crt")?,
        key,
    })
}

/// Reads `tls.crt` and `tls.key` from a mounted directory.
pub fn read_mounted(dir: &std::path::Path) -> Result<(String, String), CertError> {
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read_to_string(&path).map_err(|source| CertError::Io { path, source })
    };
    Ok((read("tls.crt")?, read("tls.key")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certs_chain_to_the_same_ca_after_a_reload_from_pem() {
        let ca = Ca::generate().unwrap();
        let reloaded = Ca {
            cert_pem: ca.cert_pem.clone(),
            key: KeyPair::from_pem(&ca.key.serialize_pem()).unwrap(),
        };
        let cert = reloaded.issue(&["kubedag.kubedag-system.svc".into()]).unwrap();
        assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!(!needs_renewal(&cert, now));
        assert!(needs_renewal(&cert, now + 70 * 86_400));
        // The leaf must verify against the CA: check with rustls' webpki through a server config.
        let roots = {
            let mut store = rustls::RootCertStore::empty();
            let der = rustls_pemfile_cert(&ca.cert_pem);
            store.add(der).unwrap();
            store
        };
        use rustls::client::danger::ServerCertVerifier;
        let leaf = rustls_pemfile_cert(&cert.cert_pem);
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let name = rustls::pki_types::ServerName::try_from("kubedag.kubedag-system.svc").unwrap();
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], rustls::pki_types::UnixTime::now())
            .expect("the serving certificate chains to the CA");
    }

    fn rustls_pemfile_cert(pem: &str) -> rustls::pki_types::CertificateDer<'static> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }
}
