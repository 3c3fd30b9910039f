//! Where a charger uploads the diagnostics file that GetDiagnostics asks for, as the services
//! that send GetDiagnostics see it.
//!
//! The OCPP service accepts uploads at `/ocpp/diagnostics/{chargePointId}/{fileName}` (PUT, or
//! POST with a raw or multipart body) and at `/ocpp/diagnostics/{chargePointId}/` (POST with a
//! multipart body that names the file). [`diagnostics_location`] builds the `location` of a
//! GetDiagnostics request: that directory under `ocpp.diagnostics.public_url`, with the charger
//! id as user and a fresh upload token as password, the way FTP locations carry credentials:
//! `https://CP-1:3f9c…@ocpp.example.com/ocpp/diagnostics/CP-1/`. HTTP clients send them as
//! HTTP Basic auth.
//!
//! The token exists because the central system keeps only a hash of a charger's OCPP password,
//! so it cannot put that password in the location, and many chargers' upload clients send only
//! the credentials their URL carries. A token is 128 random bits; the shared cache (Redis in a
//! fleet, so any OCPP node accepts the upload) keeps its SHA-256 with the charger it was made
//! for, for `ocpp.diagnostics.token_ttl`. It is good for that charger only, and is forgotten
//! once an upload with it has been stored. Should the cache lose it (an eviction under memory
//! pressure), the upload is refused, the charger reports `UploadFailed` and the operator asks
//! again; a charger may always authenticate with its own credentials instead.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::DiagnosticsSettings;
use crate::domain::ChargePointId;
use crate::shared::{Cache, SharedError};

/// Random bytes in an upload token.
const TOKEN_BYTES: usize = 16;

/// Makes a fresh upload token for `charge_point` and returns the `location` for a
/// GetDiagnostics request to it; `None` when `ocpp.diagnostics.public_url` is unset, as the
/// central system then does not know an address chargers can reach.
pub async fn diagnostics_location(
    settings: &DiagnosticsSettings,
    cache: &Cache,
    charge_point: &ChargePointId,
) -> Result<Option<String>, SharedError> {
    let Some(base) = settings.public_url.as_deref() else {
        return Ok(None);
    };
    let mut token = [0_u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut token);
    let token = hex::encode(token);
    cache
        .set(
            &token_key(&token),
            charge_point.as_str().as_bytes(),
            settings.token_ttl,
        )
        .await?;
    Ok(Some(location(base, charge_point, &token)))
}

/// Whether `token` was made for `charge_point` and is still valid.
pub async fn upload_token_is_valid(
    cache: &Cache,
    charge_point: &ChargePointId,
    token: &str,
) -> Result<bool, SharedError> {
    let owner = cache.get(&token_key(token)).await?;
    Ok(owner.as_deref() == Some(charge_point.as_str().as_bytes()))
}

/// Forgets `token` after the upload it allowed has been stored.
pub async fn forget_upload_token(cache: &Cache, token: &str) -> Result<(), SharedError> {
    cache.delete(&token_key(token)).await.map(|_| ())
}

/// The cache keeps a token's hash, not the token: whoever reads the cache cannot upload.
fn token_key(token: &str) -> String {
    format!(
        "ocpp.diagnostics.token.{}",
        hex::encode(Sha256::digest(token.as_bytes()))
    )
}

/// `{base}/ocpp/diagnostics/{charge_point}/` with the charger and token in the user part.
fn location(base: &str, charge_point: &ChargePointId, token: &str) -> String {
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let id = percent_encode(charge_point.as_str());
    format!("{scheme}://{id}:{token}@{rest}/ocpp/diagnostics/{id}/")
}

/// Escapes every byte but RFC 3986's unreserved characters, which is right both in the user
/// part of a URL and in a path segment (charger ids may hold `:`, `@`, `?`, `#` or `%`).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::DiagnosticsStore;

    fn id(text: &str) -> ChargePointId {
        text.parse().expect("valid id")
    }

    fn settings(public_url: Option<&str>) -> DiagnosticsSettings {
        DiagnosticsSettings {
            store: DiagnosticsStore::Local,
            max_size: 1024,
            public_url: public_url.map(str::to_owned),
            token_ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_location_carries_the_charger_and_token_escaped() {
        assert_eq!(
            location("https://ocpp.example.com", &id("CP-1"), "ab12"),
            "https://CP-1:ab12@ocpp.example.com/ocpp/diagnostics/CP-1/"
        );
        assert_eq!(
            location("http://10.0.0.1:8103/base", &id("CP#1:a@b%"), "ab12"),
            "http://CP%231%3Aa%40b%25:ab12@10.0.0.1:8103/base/ocpp/diagnostics/CP%231%3Aa%40b%25/"
        );
    }

    #[tokio::test]
    async fn a_token_is_good_for_its_charger_until_forgotten() -> Result<(), SharedError> {
        let cache = Cache::in_process(16);
        let charger = id("CP-1");
        assert_eq!(
            diagnostics_location(&settings(None), &cache, &charger).await?,
            None
        );
        let location = diagnostics_location(
            &settings(Some("https://ocpp.example.com")),
            &cache,
            &charger,
        )
        .await?
        .expect("a location");
        let token = location
            .strip_prefix("https://CP-1:")
            .and_then(|rest| rest.split_once('@'))
            .map(|(token, _)| token.to_owned())
            .expect("a token in the location");
        assert_eq!(token.len(), TOKEN_BYTES * 2);
        assert!(upload_token_is_valid(&cache, &charger, &token).await?);
        assert!(!upload_token_is_valid(&cache, &id("CP-2"), &token).await?);
        assert!(!upload_token_is_valid(&cache, &charger, "0000").await?);
        forget_upload_token(&cache, &token).await?;
        assert!(!upload_token_is_valid(&cache, &charger, &token).await?);
        Ok(())
    }
}
