//! Who a verified client certificate names, and how a request finds it again.
//!
//! Pingora gives a request only its connection's [`Digest`], and the one place in it for our own
//! data, `SslDigest::extension`, can be set only by Pingora's own TLS code. So identities are
//! kept beside the connections, in a process-wide table: every TLS connection that presented a
//! certificate registers its identity under the address of its `Arc<SslDigest>`, which each of
//! its requests' `Digest`s shares, and removes it when the connection is dropped.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use pingora::protocols::Digest;
use pingora::protocols::tls::SslDigest;
use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::asn1_rs::ToDer;
use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

/// The identity in a verified client certificate.
///
/// `Display` writes the subject, which is what the upstream request header carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The subject distinguished name as an RFC 4514 string in printable ASCII (other characters
    /// escaped as `\XX`), e.g. `CN=CP-0042,O=voltfleet`, so it always fits an HTTP header.
    pub subject: String,
    /// The subject's common name; under OCPP security profile 3 the charger id.
    pub common_name: Option<String>,
    pub organization: Option<String>,
    /// The DNS names of the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// The serial number as colon-separated hex bytes, e.g. `01:a2:ff`.
    pub serial: String,
}

impl ClientIdentity {
    /// Reads the identity of a DER certificate that rustls has already verified.
    pub(crate) fn from_der(der: &[u8]) -> Result<ClientIdentity, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|err| err.to_string())?;
        let subject = cert.subject();
        Ok(ClientIdentity {
            subject: rfc4514(subject),
            // With several, the last is the most specific (RFC 6125 §2.3.1 and OpenSSL's choice).
            common_name: last_string(subject.iter_common_name()),
            organization: last_string(subject.iter_organization()),
            dns_names: dns_names(&cert)?,
            serial: cert.raw_serial_as_string(),
        })
    }
}

impl fmt::Display for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subject)
    }
}

/// The DNS names of a certificate's subjectAltName extension, as written.
pub(super) fn dns_names(cert: &X509Certificate<'_>) -> Result<Vec<String>, String> {
    let san = cert
        .subject_alternative_name()
        .map_err(|err| format!("subjectAltName: {err}"))?;
    Ok(san
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some(dns.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The verified client certificate identity of the connection a request arrived on, for the
/// proxy phase that passes it upstream in `TlsConfig::client_identity_header`.
///
/// `None` without TLS, without a client certificate, or once the connection has closed.
pub fn client_identity(digest: Option<&Digest>) -> Option<Arc<ClientIdentity>> {
    let ssl = digest?.ssl_digest.as_ref()?;
    // Only connections with a client certificate get a serial number in their digest, so the
    // others never take the lock.
    ssl.serial_number.as_ref()?;
    live().get(&key(ssl)).cloned()
}

/// Keeps a connection's identity findable while it lives.
#[derive(Debug)]
pub(crate) struct Registration {
    // Holding the digest keeps its address from being reused before `drop` removes the entry.
    digest: Arc<SslDigest>,
    identity: Arc<ClientIdentity>,
}

impl Registration {
    pub(crate) fn new(digest: Arc<SslDigest>, identity: ClientIdentity) -> Registration {
        let identity = Arc::new(identity);
        live().insert(key(&digest), identity.clone());
        Registration { digest, identity }
    }

    pub(crate) fn identity(&self) -> &ClientIdentity {
        &self.identity
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        live().remove(&key(&self.digest));
    }
}

type Live = HashMap<usize, Arc<ClientIdentity>>;

static LIVE: LazyLock<Mutex<Live>> = LazyLock::new(Mutex::default);

fn live() -> MutexGuard<'static, Live> {
    // The map is consistent after every single insert or remove, so a panic elsewhere while it
    // was held leaves nothing to repair.
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn key(digest: &Arc<SslDigest>) -> usize {
    Arc::as_ptr(digest).addr()
}

fn last_string<'a>(
    values: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> Option<String> {
    values
        .filter_map(|value| value.as_str().ok())
        .last()
        .map(str::to_string)
}

/// Writes a name the RFC 4514 way: last RDN first, `,` between RDNs, `+` inside one.
fn rfc4514(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attribute) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match oid2abbrev(attribute.attr_type(), oid_registry()) {
                Ok(abbrev) => out.push_str(abbrev),
                Err(_) => out.push_str(&attribute.attr_type().to_id_string()),
            }
            out.push('=');
            match attribute.as_str() {
                Ok(value) => escape_value(value, &mut out),
                // RFC 4514 §2.4: a value that is not a string is written as `#` and its DER in hex.
                Err(_) => {
                    out.push('#');
                    let der = attribute.attr_value().to_der_vec().unwrap_or_default();
                    for byte in der {
                        let _ = write!(out, "{byte:02x}");
                    }
                }
            }
        }
    }
    out
}

/// RFC 4514 §2.4 escaping, plus `\XX` for every byte outside printable ASCII so that the result
/// is a valid HTTP header value whatever the certificate holds.
fn escape_value(value: &str, out: &mut String) {
    let last = value.len().saturating_sub(1);
    for (i, c) in value.char_indices() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && matches!(c, ' ' | '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
            out.push(c);
        } else if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            let mut utf8 = [0; 4];
            for byte in c.encode_utf8(&mut utf8).bytes() {
                let _ = write!(out, "\\{byte:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(value: &str) -> String {
        let mut out = String::new();
        escape_value(value, &mut out);
        out
    }

    #[test]
    fn an_identity_is_found_while_its_connection_lives() {
        let identity = ClientIdentity {
            subject: "CN=CP-1".to_string(),
            common_name: Some("CP-1".to_string()),
            organization: None,
            dns_names: Vec::new(),
            serial: "01".to_string(),
        };
        let ssl = Arc::new(SslDigest::new(
            "TLS13_AES_128_GCM_SHA256",
            "TLSv1.3",
            None,
            Some("01".to_string()),
            Vec::new(),
        ));
        // What Pingora builds for each request: a new `Digest` sharing the connection's `Arc`.
        let request = Digest {
            ssl_digest: Some(ssl.clone()),
            ..Digest::default()
        };
        let registration = Registration::new(ssl, identity.clone());
        assert_eq!(client_identity(Some(&request)).as_deref(), Some(&identity));
        drop(registration);
        assert_eq!(client_identity(Some(&request)), None);
        // An equal digest of another connection is not the same connection.
        let other = Digest {
            ssl_digest: request.ssl_digest.as_deref().cloned().map(Arc::new),
            ..Digest::default()
        };
        let _registration = Registration::new(request.ssl_digest.clone().expect("set"), identity);
        assert_eq!(client_identity(Some(&other)), None);
        assert_eq!(client_identity(None), None);
    }

    #[test]
    fn escapes_what_rfc_4514_and_http_headers_need() {
        assert_eq!(escaped("CP-0042"), "CP-0042");
        assert_eq!(escaped("Volt, Fleet+Co"), "Volt\\, Fleet\\+Co");
        assert_eq!(escaped(" #x "), "\\ #x\\ ");
        assert_eq!(escaped("#x"), "\\#x");
        assert_eq!(escaped("Müller\n"), "M\\C3\\BCller\\0A");
    }
}
