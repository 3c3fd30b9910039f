//! A listener's rustls server configuration: its certificates chosen by SNI, client certificate
//! verification, TLS 1.2 and 1.3, and ALPN for HTTP/2.
//!
//! Pingora's `TlsSettings::build` panics on files it cannot load; here every file problem
//! becomes a [`TlsSetupError`] that names the file and what it should hold.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use super::identity;
use crate::config::{CertificateConfig, ClientAuth, TlsConfig};

/// A TLS setting that cannot be put to use; each names the file and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("the TLS settings list no certificate; add at least one with its cert and key files")]
    NoCertificates,
    #[error(
        "cannot read the {what} file {path}: {source}; check the path and that the proxy may \
         read it"
    )]
    Read {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("the {what} file {path} is not valid PEM ({detail}); it must hold {expected}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        detail: String,
        expected: &'static str,
    },
    #[error(
        "the certificate in {path} cannot be parsed as X.509 ({detail}); it must be the server \
         certificate in PEM, followed by its intermediates"
    )]
    Certificate { path: PathBuf, detail: String },
    #[error(
        "the key {key} cannot serve the certificate {cert} ({detail}); the key must be the \
         certificate's own, as RSA, ECDSA or Ed25519 in PEM"
    )]
    Key {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
    #[error(
        "the certificate {path} has no DNS name in its subjectAltName, so SNI can never choose \
         it; only the first (default) certificate may lack one"
    )]
    NoDnsNames { path: PathBuf },
    #[error(
        "client_auth is {mode} but no client_ca is set; set client_ca to the CA bundle that \
         signs the client certificates, or turn client_auth off"
    )]
    NoClientCa { mode: &'static str },
    #[error(
        "the client CA file {path} cannot be used ({detail}); it must hold the CA certificates, \
         in PEM, that client certificates chain to"
    )]
    ClientCa { path: PathBuf, detail: String },
    #[error("rustls refused the TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the rustls server configuration of a listener from its TLS settings.
pub fn server_tls_config(config: &TlsConfig) -> Result<Arc<ServerConfig>, TlsSetupError> {
    // Named rather than taken from the process default, so that nothing depends on who
    // installed which provider first.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut certificates = Vec::with_capacity(config.certificates.len());
    for (index, files) in config.certificates.iter().enumerate() {
        let certificate = SniCertificate::load(files, &provider)?;
        if index > 0 && certificate.names.is_empty() {
            return Err(TlsSetupError::NoDnsNames {
                path: files.cert.clone(),
            });
        }
        certificates.push(certificate);
    }
    if certificates.is_empty() {
        return Err(TlsSetupError::NoCertificates);
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_verifier(config, provider)? {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_cert_resolver(Arc::new(SniResolver { certificates }));
    // Pingora serves HTTP/2 on a TLS connection exactly when ALPN chose `h2`.
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

fn client_verifier(
    config: &TlsConfig,
    provider: Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, TlsSetupError> {
    let mode = match config.client_auth {
        ClientAuth::Off => return Ok(None),
        ClientAuth::Optional => "optional",
        ClientAuth::Required => "required",
    };
    let path = config
        .client_ca
        .as_deref()
        .ok_or(TlsSetupError::NoClientCa { mode })?;
    let pem = read(path, "client CA")?;
    let mut roots = RootCertStore::empty();
    for (index, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|err| pem_error(path, "client CA", err, "CA certificates"))?;
        roots.add(cert).map_err(|err| TlsSetupError::ClientCa {
            path: path.to_path_buf(),
            detail: format!("certificate {} of the bundle: {err}", index + 1),
        })?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = match config.client_auth {
        ClientAuth::Optional => builder.allow_unauthenticated(),
        _ => builder,
    };
    let verifier = builder.build().map_err(|err| TlsSetupError::ClientCa {
        path: path.to_path_buf(),
        detail: match err {
            rustls::server::VerifierBuilderError::NoRootAnchors => {
                "it holds no certificate".to_string()
            }
            other => other.to_string(),
        },
    })?;
    Ok(Some(verifier))
}

/// One certificate chain with its key, and the names SNI can choose it by.
struct SniCertificate {
    /// Lower case DNS names from the subjectAltName, wildcards as `*.example.com`.
    names: Vec<String>,
    key: Arc<CertifiedKey>,
}

impl SniCertificate {
    fn load(files: &CertificateConfig, provider: &CryptoProvider) -> Result<Self, TlsSetupError> {
        let chain_pem = read(&files.cert, "certificate")?;
        let chain = CertificateDer::pem_slice_iter(&chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| pem_error(&files.cert, "certificate", err, "a certificate chain"))?;
        let leaf = chain.first().ok_or_else(|| TlsSetupError::Pem {
            what: "certificate",
            path: files.cert.clone(),
            detail: "no CERTIFICATE block found".to_string(),
            expected: "a certificate chain",
        })?;
        let names = sni_names(leaf).map_err(|detail| TlsSetupError::Certificate {
            path: files.cert.clone(),
            detail,
        })?;
        let key_pem = read(&files.key, "private key")?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|err| pem_error(&files.key, "private key", err, "a private key"))?;
        let key =
            CertifiedKey::from_der(chain, key, provider).map_err(|err| TlsSetupError::Key {
                cert: files.cert.clone(),
                key: files.key.clone(),
                detail: err.to_string(),
            })?;
        Ok(SniCertificate {
            names,
            key: Arc::new(key),
        })
    }
}

impl fmt::Debug for SniCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniCertificate")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// The names SNI can choose a certificate by: lower case, without a trailing dot.
fn sni_names(der: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|err| err.to_string())?;
    Ok(identity::dns_names(&cert)?
        .into_iter()
        .map(|name| name.trim_end_matches('.').to_ascii_lowercase())
        .collect())
}

/// Chooses the certificate whose names match the SNI; the first one otherwise.
#[derive(Debug)]
struct SniResolver {
    certificates: Vec<SniCertificate>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = client_hello
            .server_name()
            .and_then(|server_name| {
                choose(
                    self.certificates.iter().map(|c| c.names.as_slice()),
                    server_name,
                )
            })
            .unwrap_or(0);
        self.certificates
            .get(chosen)
            .map(|certificate| certificate.key.clone())
    }
}

/// The index of the certificate for `server_name`: an exact name wins over a wildcard, and an
/// earlier certificate over a later one.
fn choose<'a>(
    certificates: impl Iterator<Item = &'a [String]> + Clone,
    server_name: &str,
) -> Option<usize> {
    let server_name = server_name.trim_end_matches('.').to_ascii_lowercase();
    let find = |matches: &dyn Fn(&str) -> bool| {
        certificates
            .clone()
            .position(|names| names.iter().any(|name| matches(name)))
    };
    find(&|name| name == server_name).or_else(|| find(&|name| wildcard_matches(name, &server_name)))
}

/// `*.example.com` covers exactly one more label: `a.example.com`, not `example.com` or
/// `a.b.example.com`.
fn wildcard_matches(pattern: &str, server_name: &str) -> bool {
    match (pattern.strip_prefix("*."), server_name.split_once('.')) {
        (Some(parent), Some((label, rest))) => !label.is_empty() && rest == parent,
        _ => false,
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(
    path: &Path,
    what: &'static str,
    err: rustls::pki_types::pem::Error,
    expected: &'static str,
) -> TlsSetupError {
    let detail = match err {
        rustls::pki_types::pem::Error::NoItemsFound => "no matching PEM block found".to_string(),
        other => other.to_string(),
    };
    TlsSetupError::Pem {
        what,
        path: path.to_path_buf(),
        detail,
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn chooses_exact_names_before_wildcards_and_earlier_before_later() {
        let certificates = [
            names(&["www.example.com"]),
            names(&["*.example.com"]),
            names(&["api.example.com", "ocpp.example.com"]),
        ];
        let check = |server_name: &str| choose(certificates.iter().map(Vec::as_slice), server_name);
        assert_eq!(check("www.example.com"), Some(0));
        assert_eq!(check("OCPP.Example.com."), Some(2));
        assert_eq!(check("api.example.com"), Some(2));
        assert_eq!(check("other.example.com"), Some(1));
        assert_eq!(check("a.b.example.com"), None);
        assert_eq!(check("example.com"), None);
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(wildcard_matches("*.example.com", "a.example.com"));
        assert!(!wildcard_matches("*.example.com", "example.com"));
        assert!(!wildcard_matches("*.example.com", ".example.com"));
        assert!(!wildcard_matches("*.example.com", "a.b.example.com"));
        assert!(!wildcard_matches("www.example.com", "www.example.com"));
    }
}
