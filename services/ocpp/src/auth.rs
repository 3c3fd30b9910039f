//! Who a connecting charger is, by the OCPP security profiles.
//!
//! - profile 0: no authentication (laboratories only);
//! - profile 1: HTTP Basic auth, user = charger id, password checked against its argon2id hash;
//! - profile 2: as 1, over TLS — which ends at the proxy or the load balancer, so it is seen in
//!   `X-Forwarded-Proto: https`;
//! - profile 3: TLS with a client certificate that the proxy verified; the common name of the
//!   subject it passes (`ocpp.client_cert_header`) must be the charger id.
//!
//! Checking an argon2id hash costs tens of milliseconds of CPU and 19 MiB of memory, and a whole
//! fleet reconnects at once after a network blip. So checks run on blocking threads, at most
//! `ocpp.max_concurrent_password_checks` at a time, and a password once verified against a
//! stored hash is remembered as its SHA-256 until that hash changes: a reconnecting charger
//! costs one fast hash, not an argon2 run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use voltfleet_core::credentials::{constant_time_eq, verify_password};
use voltfleet_core::domain::ChargePointId;

/// Remembered verifications at most; past that the memory is cleared and rebuilt as chargers
/// reconnect (far more than one process holds).
const MAX_REMEMBERED: usize = 200_000;

/// Why a handshake is refused; each is counted under its [`Refusal::reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    BadIdentity(String),
    NotWebSocket(String),
    UnknownCharger,
    MissingCredentials,
    WrongUser,
    WrongPassword,
    NoPasswordSet,
    NotTls,
    NoClientCertificate,
    CertificateMismatch(String),
    Unavailable(String),
}

impl Refusal {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::BadIdentity(_) => "bad_identity",
            Refusal::NotWebSocket(_) => "not_websocket",
            Refusal::UnknownCharger => "unknown_charger",
            Refusal::MissingCredentials => "missing_credentials",
            Refusal::WrongUser => "wrong_user",
            Refusal::WrongPassword => "wrong_password",
            Refusal::NoPasswordSet => "no_password_set",
            Refusal::NotTls => "not_tls",
            Refusal::NoClientCertificate => "no_client_certificate",
            Refusal::CertificateMismatch(_) => "certificate_mismatch",
            Refusal::Unavailable(_) => "unavailable",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadIdentity(_) | Refusal::NotWebSocket(_) => StatusCode::BAD_REQUEST,
            Refusal::UnknownCharger => StatusCode::NOT_FOUND,
            Refusal::MissingCredentials | Refusal::WrongUser | Refusal::WrongPassword => {
                StatusCode::UNAUTHORIZED
            }
            Refusal::NoPasswordSet
            | Refusal::NotTls
            | Refusal::NoClientCertificate
            | Refusal::CertificateMismatch(_) => StatusCode::FORBIDDEN,
            Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The body of the refusal: says what to fix, and never which of user or password was
    /// wrong.
    pub fn message(&self) -> String {
        match self {
            Refusal::BadIdentity(problem) => format!("{problem}\n"),
            Refusal::NotWebSocket(problem) => format!(
                "{problem}; chargers connect here with a WebSocket upgrade (subprotocol ocpp1.6)\n"
            ),
            Refusal::UnknownCharger => {
                "this charger is not registered; register it in the Back Office first\n".into()
            }
            Refusal::MissingCredentials | Refusal::WrongUser | Refusal::WrongPassword => {
                "authentication failed: send HTTP Basic auth with the charger id as user and its password\n".into()
            }
            Refusal::NoPasswordSet => {
                "this charger has no password yet; an operator sets one in the Back Office\n".into()
            }
            Refusal::NotTls => {
                "this charger's security profile needs TLS; connect with wss://\n".into()
            }
            Refusal::NoClientCertificate => {
                "this charger's security profile needs a TLS client certificate\n".into()
            }
            Refusal::CertificateMismatch(_) => {
                "the client certificate does not name this charger\n".into()
            }
            Refusal::Unavailable(_) => "the central system cannot check credentials right now; retry shortly\n".into(),
        }
    }
}

/// What the handshake request tells about the charger's credentials.
#[derive(Debug)]
pub struct Presented {
    basic: Option<(String, String)>,
    tls: bool,
    certificate_subject: Option<String>,
}

impl Presented {
    pub fn from_headers(headers: &HeaderMap, client_cert_header: &str) -> Presented {
        let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        Presented {
            basic: text(header::AUTHORIZATION.as_str()).and_then(basic_credentials),
            tls: text("x-forwarded-proto")
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https")),
            certificate_subject: text(client_cert_header).map(str::to_owned),
        }
    }

    /// The Basic-auth password, when the user is `identity`.
    pub fn basic_password_of(&self, identity: &ChargePointId) -> Option<&str> {
        self.basic
            .as_ref()
            .filter(|(user, _)| user == identity.as_str())
            .map(|(_, password)| password.as_str())
    }

    /// Whether TLS carried the request (it ends at the proxy or the load balancer, which say
    /// so in `X-Forwarded-Proto`).
    pub fn over_tls(&self) -> bool {
        self.tls
    }

    /// Checks the credentials against what the charger's profile requires.
    pub async fn authenticate(
        &self,
        identity: &ChargePointId,
        security_profile: u8,
        password_hash: Option<&str>,
        passwords: &PasswordChecker,
    ) -> Result<(), Refusal> {
        if security_profile >= 2 && !self.tls {
            return Err(Refusal::NotTls);
        }
        match security_profile {
            0 => Ok(()),
            1 | 2 => {
                let Some((user, password)) = &self.basic else {
                    return Err(Refusal::MissingCredentials);
                };
                if user != identity.as_str() {
                    return Err(Refusal::WrongUser);
                }
                let Some(hash) = password_hash else {
                    return Err(Refusal::NoPasswordSet);
                };
                if passwords.check(identity, hash, password).await? {
                    Ok(())
                } else {
                    Err(Refusal::WrongPassword)
                }
            }
            _ => {
                let Some(subject) = &self.certificate_subject else {
                    return Err(Refusal::NoClientCertificate);
                };
                match common_name(subject) {
                    Some(name) if name == identity.as_str() => Ok(()),
                    _ => Err(Refusal::CertificateMismatch(subject.clone())),
                }
            }
        }
    }
}

/// `Basic base64(user:password)`; the password may itself contain `:`.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The last common name in an RFC 4514 subject such as `CN=CP-1,O=voltfleet`, unescaped.
fn common_name(subject: &str) -> Option<String> {
    let mut found = None;
    for attribute in split_unescaped(subject, &[',', '+']) {
        let Some((kind, value)) = attribute.split_once('=') else {
            continue;
        };
        let kind = kind.trim();
        if kind.eq_ignore_ascii_case("CN") || kind == "2.5.4.3" {
            found = Some(unescape(value));
        }
    }
    found
}

fn split_unescaped<'a>(text: &'a str, separators: &[char]) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (index, character) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if character == '\\' {
            escaped = true;
        } else if separators.contains(&character) {
            parts.push(&text[start..index]);
            start = index + 1;
        }
    }
    parts.push(&text[start..]);
    parts
}

/// RFC 4514 escapes: `\,` for a special character, `\XX` for a byte in hex.
fn unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' && index + 1 < bytes.len() {
            let hex = value
                .get(index + 1..index + 3)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok());
            match hex {
                Some(byte) => {
                    out.push(byte);
                    index += 3;
                }
                None => {
                    out.push(bytes[index + 1]);
                    index += 2;
                }
            }
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Verifies OCPP passwords, a bounded number at a time, remembering successes.
#[derive(Debug)]
pub struct PasswordChecker {
    permits: Arc<Semaphore>,
    verified: Mutex<HashMap<String, Verified>>,
}

#[derive(Debug)]
struct Verified {
    stored_hash: String,
    digest: [u8; 32],
}

impl PasswordChecker {
    pub fn new(max_concurrent: u32) -> PasswordChecker {
        PasswordChecker {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1) as usize)),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `password` matches `stored_hash`.
    async fn check(
        &self,
        identity: &ChargePointId,
        stored_hash: &str,
        password: &str,
    ) -> Result<bool, Refusal> {
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        {
            let verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(known) = verified.get(identity.as_str())
                && known.stored_hash == stored_hash
            {
                // A different password for the same hash still goes to argon2 below: it may be
                // right if the remembered one was not.
                if constant_time_eq(&known.digest, &digest) {
                    return Ok(true);
                }
            }
        }
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Refusal::Unavailable("the password checker is closed".into()))?;
        let (hash, presented) = (stored_hash.to_owned(), password.to_owned());
        let matches = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify_password(&presented, &hash)
        })
        .await
        .map_err(|err| Refusal::Unavailable(format!("the password check failed: {err}")))?;
        if matches {
            let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
            if verified.len() >= MAX_REMEMBERED {
                verified.clear();
            }
            verified.insert(
                identity.to_string(),
                Verified {
                    stored_hash: stored_hash.to_owned(),
                    digest,
                },
            );
        }
        Ok(matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> ChargePointId {
        text.parse().expect("valid id")
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    fn basic(user: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}")
    }

    #[test]
    fn basic_credentials_keep_colons_in_the_password() {
        assert_eq!(
            basic_credentials(&basic("CP-1", "a:b:c")),
            Some(("CP-1".into(), "a:b:c".into()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
    }

    #[test]
    fn the_common_name_is_read_through_escapes() {
        assert_eq!(common_name("CN=CP-1,O=voltfleet").as_deref(), Some("CP-1"));
        assert_eq!(common_name("O=x,CN=CP\\2C1").as_deref(), Some("CP,1"));
        assert_eq!(common_name("CN=a,CN=CP-2").as_deref(), Some("CP-2"));
        assert_eq!(
            common_name("O=voltfleet\\, Inc.,CN=CP-3").as_deref(),
            Some("CP-3")
        );
        assert_eq!(common_name("O=only"), None);
    }

    #[tokio::test]
    async fn each_profile_requires_its_credentials() {
        let checker = PasswordChecker::new(1);
        let hash = voltfleet_core::credentials::hash_password("secret-1").expect("hash");
        let cp = id("CP-1");
        let run = |presented: Presented, profile: u8| {
            let (checker, hash, cp) = (&checker, hash.clone(), cp.clone());
            async move {
                presented
                    .authenticate(&cp, profile, Some(&hash), checker)
                    .await
            }
        };
        let with = |pairs: &[(&'static str, String)]| {
            Presented::from_headers(&headers(pairs), "x-client-cert-subject")
        };

        assert_eq!(run(with(&[]), 0).await, Ok(()));
        assert_eq!(run(with(&[]), 1).await, Err(Refusal::MissingCredentials));
        assert_eq!(
            run(with(&[("authorization", basic("CP-1", "secret-1"))]), 1).await,
            Ok(())
        );
        assert_eq!(
            run(with(&[("authorization", basic("CP-1", "secret-2"))]), 1).await,
            Err(Refusal::WrongPassword)
        );
        assert_eq!(
            run(with(&[("authorization", basic("CP-9", "secret-1"))]), 1).await,
            Err(Refusal::WrongUser)
        );
        assert_eq!(
            run(with(&[("authorization", basic("CP-1", "secret-1"))]), 2).await,
            Err(Refusal::NotTls)
        );
        assert_eq!(
            run(
                with(&[
                    ("authorization", basic("CP-1", "secret-1")),
                    ("x-forwarded-proto", "https".into())
                ]),
                2
            )
            .await,
            Ok(())
        );
        let tls = ("x-forwarded-proto", "https".to_string());
        assert_eq!(
            run(with(std::slice::from_ref(&tls)), 3).await,
            Err(Refusal::NoClientCertificate)
        );
        assert_eq!(
            run(
                with(&[tls.clone(), ("x-client-cert-subject", "CN=CP-1,O=v".into())]),
                3
            )
            .await,
            Ok(())
        );
        assert!(matches!(
            run(
                with(&[tls, ("x-client-cert-subject", "CN=CP-2,O=v".into())]),
                3
            )
            .await,
            Err(Refusal::CertificateMismatch(_))
        ));
    }

    #[tokio::test]
    async fn a_remembered_password_is_forgotten_when_the_hash_changes() {
        let checker = PasswordChecker::new(2);
        let cp = id("CP-1");
        let first = voltfleet_core::credentials::hash_password("one").expect("hash");
        assert_eq!(checker.check(&cp, &first, "one").await, Ok(true));
        assert_eq!(checker.check(&cp, &first, "one").await, Ok(true));
        assert_eq!(checker.check(&cp, &first, "two").await, Ok(false));
        let second = voltfleet_core::credentials::hash_password("two").expect("hash");
        assert_eq!(checker.check(&cp, &second, "one").await, Ok(false));
        assert_eq!(checker.check(&cp, &second, "two").await, Ok(true));
    }
}
