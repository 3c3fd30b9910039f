//! The browser-facing defences: security headers on every response, and on every unsafe
//! request (POST and the rest) an Origin check and the CSRF token.
//!
//! The CSP allows nothing but the Back Office's own files: no inline script or style, no
//! frames, forms only to itself. The CSRF token is the session's (`operator_sessions.csrf_token`),
//! sent as the `_csrf` field of every form or the `X-CSRF-Token` header; the sign-in form,
//! before there is a session, carries the token of its own cookie (double submit). The Origin
//! check wants `Origin` (or, without it, `Referer`) to name the host the request was sent to.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use voltfleet_core::context::AppContext;
use voltfleet_core::credentials::constant_time_eq;

use crate::error::PageError;
use crate::session::{self, LOGIN_COOKIE, Signed};

/// The largest form body read.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
/// The header that carries it for script requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'self'";

/// Middleware: the security headers, and `no-store` on everything but the static files.
pub async fn headers(State(ctx): State<AppContext>, request: Request, next: Next) -> Response {
    let is_static = request.uri().path().starts_with("/backoffice/static/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, "content-security-policy", CSP);
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "same-origin");
    set(headers, "cross-origin-opener-policy", "same-origin");
    set(headers, "cross-origin-resource-policy", "same-origin");
    set(
        headers,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    if ctx.settings.backoffice_ui.cookie_secure {
        set(
            headers,
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        );
    }
    if !is_static {
        set(headers, "cache-control", "no-store");
    }
    response
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The `host[:port]` of an `Origin` or `Referer` value.
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|authority| !authority.is_empty())
}

/// Whether the request says it comes from a page of the host it was sent to.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let source = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .filter(|value| *value != "null")
        .or_else(|| {
            headers
                .get(header::REFERER)
                .and_then(|value| value.to_str().ok())
        });
    source
        .and_then(authority)
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

/// The `_csrf` field of a form body.
fn form_token(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value)
}

/// Middleware: refuses an unsafe request from another origin or without the right token.
pub async fn csrf(State(ctx): State<AppContext>, request: Request, next: Next) -> Response {
    if is_safe(request.method()) {
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    if !same_origin(request.headers()) {
        tracing::info!(
            path,
            "An unsafe request without a matching Origin or Referer was refused."
        );
        return PageError::Csrf(
            "The request did not come from a Back Office page (its Origin does not match). Open the page again and resend the form."
                .to_owned(),
        )
        .into_response();
    }
    let expected = if path == "/backoffice/login" {
        session::cookie(request.headers(), LOGIN_COOKIE).map(str::to_owned)
    } else {
        match request.extensions().get::<Signed>() {
            Some(signed) => Some(signed.csrf().to_owned()),
            None => return PageError::SignIn.into_response(),
        }
    };
    let header_token = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_FORM_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return PageError::TooLarge.into_response(),
    };
    let presented = header_token.or_else(|| form_token(&bytes));
    let valid = match (&expected, &presented) {
        (Some(expected), Some(presented)) => {
            constant_time_eq(expected.as_bytes(), presented.as_bytes())
        }
        _ => false,
    };
    if !valid {
        if let Some(signed) = parts.extensions.get::<Signed>() {
            crate::audit::record(
                &ctx,
                &signed.actor(),
                "csrf.refused",
                &path,
                serde_json::json!({ "token": if presented.is_some() { "wrong" } else { "missing" } }),
                voltfleet_core::domain::AuditOutcome::Denied,
            )
            .await;
        }
        tracing::info!(
            path,
            "An unsafe request without the right CSRF token was refused."
        );
        return PageError::Csrf(
            "The form has expired or was not sent by this Back Office (its security token does not match). Reload the page and try again."
                .to_owned(),
        )
        .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_name_the_host() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "ops.example.com"),
            (
                "referer",
                "https://ops.example.com/backoffice/charge-points?q=1"
            )
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "ops.example.com"),
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "ops.example.com"),
            ("origin", "https://ops.example.com.evil.example")
        ])));
        assert!(!same_origin(&headers(&[("host", "ops.example.com")])));
        assert!(!same_origin(&headers(&[
            ("host", "ops.example.com"),
            ("origin", "null")
        ])));
    }

    #[test]
    fn the_token_is_read_from_the_form() {
        assert_eq!(
            form_token(b"a=1&_csrf=abc%20d&b=2").as_deref(),
            Some("abc d")
        );
        assert_eq!(form_token(b"a=1"), None);
    }
}
