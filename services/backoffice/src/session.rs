//! Operators' sessions: the cookie, the lookup on every request, and the role a route needs.
//!
//! The cookie `vf_bo_session` carries 32 random bytes (hex); the database holds only their
//! SHA-256 (`operator_sessions`). It is `HttpOnly`, `SameSite=Strict`, `Path=/backoffice` and
//! `Secure` unless `backoffice.cookie_secure` is off. A session ends on logout (revoked), when
//! idle longer than `backoffice.session_idle_timeout`, or `backoffice.session_lifetime` after
//! sign-in; a disabled operator's sessions stop at once. Every sign-in makes a new session id
//! and revokes the one the browser came with, so an id planted before sign-in is worth nothing.
//!
//! Routes name the role they need with an extractor: [`Viewer`] (any signed-in operator, read
//! only), [`Operating`] (operators and admins: commands, approvals), [`Admin`] (everything).
//! A refusal is audited and answered 403; no session is a redirect to the sign-in page.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use voltfleet_core::config::BackofficeSettings;
use voltfleet_core::context::AppContext;
use voltfleet_core::domain::{AuditOutcome, Role};
use voltfleet_core::storage::{Operator, OperatorSession};

use crate::audit;
use crate::error::PageError;

/// The session cookie.
pub const SESSION_COOKIE: &str = "vf_bo_session";
/// The sign-in form's own CSRF cookie (double submit), before there is a session.
pub const LOGIN_COOKIE: &str = "vf_bo_login";
/// Activity is written back at most this often (seconds), not on every request.
const TOUCH_EVERY_S: i64 = 60;

/// The signed-in operator of a request and their session.
#[derive(Clone)]
pub struct Signed {
    pub operator: Operator,
    pub session: OperatorSession,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed")
            .field("operator", &self.operator.email)
            .field("role", &self.operator.role)
            .field("session", &self.session.id)
            .finish()
    }
}

impl Signed {
    pub fn actor(&self) -> String {
        audit::actor(&self.operator.email)
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf_token
    }

    pub fn can(&self, needed: Role) -> bool {
        rank(self.operator.role) >= rank(needed)
    }
}

fn rank(role: Role) -> u8 {
    match role {
        Role::Viewer => 0,
        Role::Operator => 1,
        Role::Admin => 2,
    }
}

/// 32 random bytes as lower-case hex.
pub fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the database keeps of a session id.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The value of cookie `name` in the request, if it is there once or more (the first wins).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value under `/backoffice`; `max_age` 0 deletes it.
pub fn set_cookie(
    settings: &BackofficeSettings,
    name: &str,
    value: &str,
    max_age: u64,
) -> HeaderValue {
    let secure = if settings.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path=/backoffice; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    // Names are constants and values hex, so the text is always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Middleware: puts the [`Signed`] operator into the request's extensions when its session
/// cookie names an active session of an enabled operator.
pub async fn load(State(ctx): State<AppContext>, mut request: Request, next: Next) -> Response {
    // The static files are the same for everyone; they need no session lookup.
    if request.uri().path().starts_with("/backoffice/static/") {
        return next.run(request).await;
    }
    if let Some(token) = cookie(request.headers(), SESSION_COOKIE) {
        match lookup(&ctx, token, Utc::now()).await {
            Ok(Some(signed)) => {
                request.extensions_mut().insert(signed);
            }
            Ok(None) => {}
            Err(err) => return axum::response::IntoResponse::into_response(err),
        }
    }
    next.run(request).await
}

async fn lookup(
    ctx: &AppContext,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<Signed>, PageError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let settings = &ctx.settings.backoffice_ui;
    let sessions = ctx.db.operator_sessions();
    let Some(session) = sessions.find_by_token_hash(&token_hash(token)).await? else {
        return Ok(None);
    };
    if !session.is_active(now, settings.session_idle_timeout) {
        return Ok(None);
    }
    let operator = ctx.db.operators().get(session.operator_id).await?;
    if operator.disabled {
        return Ok(None);
    }
    if (now - session.last_seen_at).num_seconds() >= TOUCH_EVERY_S {
        sessions.touch(session.id, now).await?;
    }
    Ok(Some(Signed { operator, session }))
}

/// Any signed-in operator: the read-only pages.
#[derive(Debug, Clone)]
pub struct Viewer(pub Signed);
/// An operator or an admin: commands to chargers, approvals.
#[derive(Debug, Clone)]
pub struct Operating(pub Signed);
/// An admin: charger passwords, operators, API keys.
#[derive(Debug, Clone)]
pub struct Admin(pub Signed);

async fn require(parts: &Parts, ctx: &AppContext, needed: Role) -> Result<Signed, PageError> {
    let Some(signed) = parts.extensions.get::<Signed>().cloned() else {
        return Err(PageError::SignIn);
    };
    if signed.can(needed) {
        return Ok(signed);
    }
    audit::record(
        ctx,
        &signed.actor(),
        "access.denied",
        parts.uri.path(),
        serde_json::json!({
            "method": parts.method.as_str(),
            "role": signed.operator.role.as_str(),
            "needed": needed.as_str(),
        }),
        AuditOutcome::Denied,
    )
    .await;
    tracing::info!(operator = %signed.operator.email, path = parts.uri.path(), "An operator was refused a page their role does not allow.");
    Err(PageError::Forbidden(format!(
        "Your role ({}) may not {} here; this needs the {} role.",
        signed.operator.role,
        if parts.method == Method::GET {
            "see this"
        } else {
            "do this"
        },
        needed
    )))
}

impl FromRequestParts<AppContext> for Viewer {
    type Rejection = PageError;
    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, PageError> {
        require(parts, ctx, Role::Viewer).await.map(Viewer)
    }
}

impl FromRequestParts<AppContext> for Operating {
    type Rejection = PageError;
    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, PageError> {
        require(parts, ctx, Role::Operator).await.map(Operating)
    }
}

impl FromRequestParts<AppContext> for Admin {
    type Rejection = PageError;
    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, PageError> {
        require(parts, ctx, Role::Admin).await.map(Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; vf_bo_session_x=2; vf_bo_session=abc"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), None);
    }

    #[test]
    fn roles_are_ordered() {
        assert!(rank(Role::Admin) > rank(Role::Operator));
        assert!(rank(Role::Operator) > rank(Role::Viewer));
    }
}
