//! Hashing and checking of passwords and API keys.
//!
//! Passwords (operators, OCPP Basic auth) are stored as argon2id PHC strings with a random salt;
//! hashing is deliberately slow, so async callers run it on a blocking thread
//! (`tokio::task::spawn_blocking`). API keys are long random secrets, so a fast SHA-256 is
//! enough to store them: the database keeps only the key's public prefix, for lookup, and the
//! hash.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Hashing a password failed; only a broken argon2 configuration can cause it.
#[derive(Debug, thiserror::Error)]
#[error("hashing the password failed: {0}; this is a bug in the argon2 parameters, report it")]
pub struct HashError(String);

/// Hashes `password` with argon2id (the crate's recommended parameters, version 0x13) and a
/// fresh random salt, returning the PHC string to store.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|err| HashError(err.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| HashError(err.to_string()))
}

/// Whether `password` matches the stored PHC string. A malformed stored hash never matches.
/// The parameters come from the stored string, so hashes made with older parameters still
/// verify; argon2 compares the outputs in constant time.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// `bytes` random bytes from the operating system's CSPRNG, as lower-case hex: for secrets
/// that a machine generates for itself (the API's token secret under `voltfleet up`).
pub fn random_secret_hex(bytes: usize) -> String {
    let mut secret = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut secret);
    hex::encode(secret)
}

/// The fixed start of every voltfleet API key, so leaked keys are easy to recognise and scan for.
pub const API_KEY_MARKER: &str = "vfk";
/// Random bytes in the public prefix (48 bits): enough that two keys practically never share one.
const PREFIX_BYTES: usize = 6;
/// Random bytes in the secret part (192 bits).
const SECRET_BYTES: usize = 24;

/// An API key as presented by a client: `vfk_<prefix>_<secret>`.
///
/// Parsing checks only the shape; whether the key is real is decided by looking up its
/// [`prefix`](ApiKey::prefix) and comparing hashes with [`ApiKey::matches`].
pub struct ApiKey {
    prefix: String,
    plain: SecretString,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("prefix", &self.prefix)
            .field("plain", &"[REDACTED]")
            .finish()
    }
}

/// A presented API key does not have the shape of one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the API key is malformed; voltfleet API keys look like vfk_<12 hex digits>_<48 hex digits>, create one in the Back Office"
)]
pub struct MalformedApiKey;

impl ApiKey {
    /// Makes a new key. Returns `(plain_key, prefix, sha256_hex)`: show `plain_key` to its owner
    /// once, store `prefix` and `sha256_hex`.
    pub fn generate() -> (String, String, String) {
        let mut prefix = [0u8; PREFIX_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        // ThreadRng is a CSPRNG seeded from the operating system.
        let mut rng = rand::rng();
        rng.fill_bytes(&mut prefix);
        rng.fill_bytes(&mut secret);
        let prefix = hex::encode(prefix);
        let plain = format!("{API_KEY_MARKER}_{prefix}_{}", hex::encode(secret));
        let hash = hash_api_key(&plain);
        (plain, prefix, hash)
    }

    /// Checks the shape of a presented key.
    pub fn parse(presented: &str) -> Result<ApiKey, MalformedApiKey> {
        let mut parts = presented.splitn(3, '_');
        let (Some(marker), Some(prefix), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(MalformedApiKey);
        };
        let is_hex = |text: &str, bytes: usize| {
            text.len() == bytes * 2 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if marker != API_KEY_MARKER
            || !is_hex(prefix, PREFIX_BYTES)
            || !is_hex(secret, SECRET_BYTES)
        {
            return Err(MalformedApiKey);
        }
        Ok(ApiKey {
            prefix: prefix.to_string(),
            plain: SecretString::from(presented),
        })
    }

    /// The public part used to find the stored key.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this key hashes to `stored_hash` (hex SHA-256), compared in constant time.
    pub fn matches(&self, stored_hash: &str) -> bool {
        let hash = hash_api_key(self.plain.expose_secret());
        constant_time_eq(hash.as_bytes(), stored_hash.as_bytes())
    }
}

/// The stored form of an API key: SHA-256 of the whole plain key, lower-case hex.
pub fn hash_api_key(plain: &str) -> String {
    hex::encode(Sha256::digest(plain.as_bytes()))
}

/// Compares without an early exit, so the time taken does not reveal how many leading bytes
/// matched. Lengths are not secret (hashes have a fixed length).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let hash = hash_password("voltfleet-demo").expect("hashes");
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(verify_password("voltfleet-demo", &hash));
        assert!(!verify_password("voltfleet-dem0", &hash));
        assert!(!verify_password("", &hash));
    }

    #[test]
    fn each_hash_has_its_own_salt() {
        let a = hash_password("same").expect("hashes");
        let b = hash_password("same").expect("hashes");
        assert_ne!(a, b);
        assert!(verify_password("same", &a) && verify_password("same", &b));
    }

    #[test]
    fn malformed_stored_hashes_never_match() {
        for stored in ["", "plaintext", "$argon2id$v=19$garbage"] {
            assert!(!verify_password("plaintext", stored), "{stored}");
        }
    }

    #[test]
    fn generated_api_keys_parse_and_match_their_hash() {
        let (plain, prefix, hash) = ApiKey::generate();
        assert!(plain.starts_with(&format!("vfk_{prefix}_")), "{plain}");
        assert_eq!(prefix.len(), 12);
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, hash_api_key(&plain));

        let key = ApiKey::parse(&plain).expect("own format");
        assert_eq!(key.prefix(), prefix);
        assert!(key.matches(&hash));
        assert!(!key.matches(&hash_api_key("vfk_other")));
        assert!(
            !format!("{key:?}").contains(&plain[17..]),
            "secret in Debug"
        );
    }

    #[test]
    fn api_keys_carry_enough_entropy_to_differ() {
        let (a, prefix_a, _) = ApiKey::generate();
        let (b, prefix_b, _) = ApiKey::generate();
        assert_ne!(a, b);
        assert_ne!(prefix_a, prefix_b);
        // 24 secret bytes = 192 bits.
        assert_eq!(a.rsplit('_').next().map(str::len), Some(48));
    }

    #[test]
    fn malformed_api_keys_are_refused() {
        let (plain, _, _) = ApiKey::generate();
        for bad in [
            "",
            "vfk",
            "vfk__",
            &plain.replacen("vfk", "xyz", 1),
            &plain[..plain.len() - 1],
            &plain.to_uppercase(),
            &format!("{plain}_"),
        ] {
            assert_eq!(
                ApiKey::parse(bad).map(|_| ()),
                Err(MalformedApiKey),
                "{bad}"
            );
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
