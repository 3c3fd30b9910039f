//! The two tokens a driver holds: a short-lived signed access token and an opaque refresh
//! token.
//!
//! The access token is a JWT signed with HMAC-SHA256 under `api.token_secret`; it names the
//! driver and the session it came from, so that revoking a session also stops its access
//! tokens (the session is looked up on each request). The refresh token is 32 random bytes in
//! base64url; only its SHA-256 is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Who issued the token and for whom: a token of another system is refused even if it were
/// signed with the same secret.
const ISSUER: &str = "voltfleet";
const AUDIENCE: &str = "voltfleet-api";
/// Random bytes in a refresh token (256 bits).
const REFRESH_TOKEN_BYTES: usize = 32;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The driver's id, as text (JWT's `sub` is a string).
    pub sub: String,
    /// The session the token was issued for.
    pub sid: i64,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// The driver and session an access token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessGrant {
    pub driver_id: i64,
    pub session_id: i64,
}

/// The secret from configuration, or the problem that says it is missing.
pub fn secret(configured: Option<&SecretString>) -> Result<&SecretString, ApiError> {
    configured.ok_or(ApiError::NotConfigured(
        "The API cannot sign tokens: api.token_secret is not set.",
    ))
}

/// Signs an access token for `grant`, valid from `now` for `ttl_seconds`.
pub fn issue_access_token(
    secret: &SecretString,
    grant: AccessGrant,
    now: DateTime<Utc>,
    ttl_seconds: i64,
) -> Result<String, ApiError> {
    let claims = Claims {
        sub: grant.driver_id.to_string(),
        sid: grant.session_id,
        iat: now.timestamp(),
        exp: now.timestamp() + ttl_seconds,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
    .map_err(|err| ApiError::Internal(format!("signing an access token failed: {err}")))
}

/// Checks the signature, algorithm, issuer, audience and expiry of an access token (no
/// leeway: a token is refused from its `exp` on). Any failure is `Unauthorized`.
pub fn verify_access_token(secret: &SecretString, token: &str) -> Result<AccessGrant, ApiError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.expose_secret().as_bytes()),
        &validation,
    )
    .map_err(|_| ApiError::Unauthorized)?;
    let driver_id = data
        .claims
        .sub
        .parse::<i64>()
        .map_err(|_| ApiError::Unauthorized)?;
    Ok(AccessGrant {
        driver_id,
        session_id: data.claims.sid,
    })
}

/// A new refresh token: `(plain, sha256_hex)`. Give `plain` to the client once, store the hash.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
    // ThreadRng is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut bytes);
    let plain = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&plain);
    (plain, hash)
}

/// The stored form of a refresh token.
pub fn hash_refresh_token(plain: &str) -> String {
    hex::encode(Sha256::digest(plain.as_bytes()))
}

/// A new chain id for the sessions of one login (32 hex digits).
pub fn new_chain() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn access_tokens_verify_only_under_their_secret_and_before_expiry() {
        let key = secret("0123456789abcdef0123456789abcdef");
        let grant = AccessGrant {
            driver_id: 7,
            session_id: 9,
        };
        let token = issue_access_token(&key, grant, Utc::now(), 60).expect("signed");
        assert_eq!(verify_access_token(&key, &token).expect("valid"), grant);
        let other = secret("fedcba9876543210fedcba9876543210");
        assert!(verify_access_token(&other, &token).is_err());
        let old = issue_access_token(&key, grant, Utc::now() - chrono::Duration::hours(1), 60)
            .expect("signed");
        assert!(verify_access_token(&key, &old).is_err());
        for bad in ["", "abc", "a.b.c", &format!("{token}x")] {
            assert!(verify_access_token(&key, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let key = secret("0123456789abcdef0123456789abcdef");
        // {"alg":"none"} with valid-looking claims.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(
            format!(
                r#"{{"sub":"1","sid":1,"iat":0,"exp":{},"iss":"voltfleet","aud":"voltfleet-api"}}"#,
                Utc::now().timestamp() + 600
            )
            .as_bytes(),
        );
        assert!(verify_access_token(&key, &format!("{header}.{claims}.")).is_err());
    }

    #[test]
    fn refresh_tokens_are_random_base64url_and_stored_hashed() {
        let (a, hash_a) = new_refresh_token();
        let (b, _) = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).expect("base64url").len(), 32);
        assert_eq!(hash_a, hash_refresh_token(&a));
        assert_eq!(hash_a.len(), 64);
        assert_eq!(new_chain().len(), 32);
    }
}
