//! Who is calling: a driver with an access token, an API key (a driver's own, or an
//! operator's for a partner or app), or nobody.
//!
//! Credentials travel as `Authorization: Bearer <token>` — a JWT access token or a `vfk_…` API
//! key — or as `X-Api-Key: vfk_…`. Presented credentials that do not hold are a 401 even on
//! routes anybody may call, so a client learns at once that its key was revoked instead of
//! silently getting anonymous answers. A key reaches only what its scopes allow; a driver's
//! access token reaches everything of that driver.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use chrono::Utc;
use voltfleet_core::context::AppContext;
use voltfleet_core::credentials::{API_KEY_MARKER, ApiKey};

use crate::error::ApiError;
use crate::tokens;

/// What an API key may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Search locations and read chargers.
    LocationsRead,
    /// Read the driver's charging sessions.
    SessionsRead,
    /// Start and stop charging for the driver.
    Charging,
    /// Read, add and block the driver's cards.
    Cards,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::LocationsRead,
        Scope::SessionsRead,
        Scope::Charging,
        Scope::Cards,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::LocationsRead => "locations:read",
            Scope::SessionsRead => "sessions:read",
            Scope::Charging => "charging",
            Scope::Cards => "cards",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == text)
    }
}

/// The identity behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credentials.
    Anonymous,
    /// A driver's access token.
    Driver { driver_id: i64, session_id: i64 },
    /// An API key, which may act for a driver.
    Key {
        key_id: i64,
        driver_id: Option<i64>,
        scopes: Vec<String>,
    },
}

impl Caller {
    /// The driver this caller acts for with `scope`: a driver's token always, a key of a
    /// driver only with the scope. Anonymous callers get 401, keys without the scope 403.
    pub fn driver_with(&self, scope: Scope) -> Result<i64, ApiError> {
        match self {
            Caller::Anonymous => Err(ApiError::Unauthorized),
            Caller::Driver { driver_id, .. } => Ok(*driver_id),
            Caller::Key {
                driver_id, scopes, ..
            } => match driver_id {
                Some(driver_id) if scopes.iter().any(|held| held == scope.as_str()) => {
                    Ok(*driver_id)
                }
                _ => Err(ApiError::MissingScope(scope.as_str())),
            },
        }
    }

    /// Whether this caller may use a route open to everyone that keys need `scope` for.
    pub fn allow_public(&self, scope: Scope) -> Result<(), ApiError> {
        match self {
            Caller::Key { scopes, .. } if !scopes.iter().any(|held| held == scope.as_str()) => {
                Err(ApiError::MissingScope(scope.as_str()))
            }
            _ => Ok(()),
        }
    }
}

/// The credentials of a request, before they are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented<'a> {
    None,
    AccessToken(&'a str),
    ApiKey(&'a str),
}

/// Reads (without checking) the credentials a request carries.
pub fn presented(headers: &HeaderMap) -> Presented<'_> {
    if let Some(key) = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
    {
        return Presented::ApiKey(key.trim());
    }
    let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    else {
        return Presented::None;
    };
    if bearer.starts_with(&format!("{API_KEY_MARKER}_")) {
        Presented::ApiKey(bearer)
    } else {
        Presented::AccessToken(bearer)
    }
}

impl FromRequestParts<AppContext> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let caller = authenticate(ctx, &parts.headers).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// Checks the credentials a request carries: `Unauthorized` when they do not hold.
pub async fn authenticate(ctx: &AppContext, headers: &HeaderMap) -> Result<Caller, ApiError> {
    match presented(headers) {
        Presented::None => Ok(Caller::Anonymous),
        Presented::AccessToken(token) => access_token_caller(ctx, token).await,
        Presented::ApiKey(key) => api_key_caller(ctx, key).await,
    }
}

async fn access_token_caller(ctx: &AppContext, token: &str) -> Result<Caller, ApiError> {
    let secret = tokens::secret(ctx.settings.api_accounts.token_secret.as_ref())?;
    let grant = tokens::verify_access_token(secret, token)?;
    // A revoked session (logout, password change, reuse) stops its access tokens at once.
    match ctx.db.drivers().find_session(grant.session_id).await? {
        Some(session) if session.driver_id == grant.driver_id && session.is_active(Utc::now()) => {
            Ok(Caller::Driver {
                driver_id: grant.driver_id,
                session_id: grant.session_id,
            })
        }
        _ => Err(ApiError::Unauthorized),
    }
}

async fn api_key_caller(ctx: &AppContext, presented: &str) -> Result<Caller, ApiError> {
    let key = ApiKey::parse(presented).map_err(|_| ApiError::Unauthorized)?;
    let keys = ctx.db.api_keys();
    let Some(record) = keys.find_by_prefix(key.prefix()).await? else {
        return Err(ApiError::Unauthorized);
    };
    if record.is_revoked() || !key.matches(&record.key_hash) {
        return Err(ApiError::Unauthorized);
    }
    let now = Utc::now();
    // Last use is for the owner's list; a minute's precision is enough, and it saves a write
    // per request.
    let stale = record
        .last_used_at
        .is_none_or(|used| now - used > chrono::Duration::minutes(1));
    if stale && let Err(err) = keys.touch_last_used(record.id, now).await {
        tracing::warn!(key_id = record.id, error = %err, "Could not note an API key's last use.");
    }
    Ok(Caller::Key {
        key_id: record.id,
        driver_id: record.driver_id,
        scopes: record
            .scopes
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    })
}
