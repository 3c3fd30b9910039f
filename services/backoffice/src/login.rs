//! Signing in and out.
//!
//! A wrong password, an unknown email and a disabled operator get the same answer, and an
//! unknown email is checked against a dummy argon2id hash so that it takes as long. Failed
//! sign-ins are counted per account and per client address in the shared counters
//! (`ctx.shared.locks`, Redis in the fleet); once either reaches its limit within
//! `backoffice.login_failure_window`, sign-in is refused (429) without checking the password.
//! Password checks run off the async workers, a bounded number at once.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use askama::Template;
use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use voltfleet_core::config::BackofficeSettings;
use voltfleet_core::context::AppContext;
use voltfleet_core::credentials::{hash_password, verify_password};
use voltfleet_core::domain::AuditOutcome;
use voltfleet_core::storage::NewOperatorSession;

use crate::audit;
use crate::error::PageError;
use crate::forms::{Fields, Problems};
use crate::session::{self, LOGIN_COOKIE, SESSION_COOKIE, Signed, Viewer};
use crate::views::{self, Layout};

/// Longest password read, in bytes: argon2 reads all of it.
const MAX_PASSWORD_BYTES: usize = 1024;
/// How long the sign-in form's cookie lives, in seconds.
const LOGIN_COOKIE_S: u64 = 3600;

static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("not the password of any operator").unwrap_or_default());

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    csrf: String,
    email: String,
    problems: Problems,
}

fn login_page(
    settings: &BackofficeSettings,
    status: StatusCode,
    email: &str,
    problems: Problems,
    flash: Option<(&'static str, String)>,
) -> Response {
    let csrf = session::random_token();
    let mut layout = Layout::new("Sign in", None, "");
    if let Some((kind, text)) = flash {
        layout = layout.with_flash(kind, text);
    }
    let mut response = views::render(
        status,
        &LoginPage {
            layout,
            csrf: csrf.clone(),
            email: email.to_owned(),
            problems,
        },
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(settings, LOGIN_COOKIE, &csrf, LOGIN_COOKIE_S),
    );
    response
}

/// `GET /backoffice/login`.
pub async fn form(State(ctx): State<AppContext>, signed: Option<Extension<Signed>>) -> Response {
    if signed.is_some() {
        return Redirect::to("/backoffice/").into_response();
    }
    login_page(
        &ctx.settings.backoffice_ui,
        StatusCode::OK,
        "",
        Problems::default(),
        None,
    )
}

/// `POST /backoffice/login` (the CSRF layer has checked the form's token against its cookie).
pub async fn submit(
    State(ctx): State<AppContext>,
    Extension(hashing): Extension<PasswordHashing>,
    request: Request,
) -> Result<Response, PageError> {
    let (mut parts, body) = request.into_parts();
    let client = crate::client::of(&parts, &ctx);
    let previous = parts.extensions.remove::<Signed>();
    let user_agent = user_agent(&parts.headers);
    let body = axum::body::to_bytes(body, crate::security::MAX_FORM_BYTES)
        .await
        .map_err(|_| PageError::TooLarge)?;
    let fields = Fields::from_pairs(serde_urlencoded::from_bytes(&body).unwrap_or_default());
    let settings = &ctx.settings.backoffice_ui;
    let email = fields.get("email").to_owned();
    let password = fields.0.get("password").cloned().unwrap_or_default();
    let mut problems = Problems::default();
    if email.is_empty() {
        problems.add("email", "Enter your email address.");
    } else if email.chars().count() > 255 {
        problems.add("email", "An email address has at most 255 characters.");
    }
    if password.is_empty() {
        problems.add("password", "Enter your password.");
    } else if password.len() > MAX_PASSWORD_BYTES {
        problems.add("password", "A password has at most 1024 bytes.");
    }
    if !problems.is_empty() {
        return Ok(login_page(
            settings,
            StatusCode::UNPROCESSABLE_ENTITY,
            &email,
            problems,
            None,
        ));
    }
    let account_key = format!(
        "backoffice:login:account:{}",
        hex::encode(Sha256::digest(email.to_lowercase().as_bytes()))
    );
    let ip_key = format!("backoffice:login:ip:{client}");
    let locks = &ctx.shared.locks;
    let (account_failures, ip_failures) =
        tokio::try_join!(locks.get_counter(&account_key), locks.get_counter(&ip_key))?;
    if account_failures >= i64::from(settings.login_failures_per_account)
        || ip_failures >= i64::from(settings.login_failures_per_ip)
    {
        audit::record(
            &ctx,
            "anonymous",
            "operator.login",
            &format!("operator:{}", email.to_lowercase()),
            serde_json::json!({ "client": client.to_string(), "reason": "throttled" }),
            AuditOutcome::Denied,
        )
        .await;
        tracing::info!(%client, "A Back Office sign-in was throttled after too many failures.");
        let minutes = settings.login_failure_window.as_secs().div_ceil(60).max(1);
        let mut response = login_page(
            settings,
            StatusCode::TOO_MANY_REQUESTS,
            &email,
            Problems::default(),
            Some((
                "error",
                format!(
                    "Too many failed sign-ins. Wait {minutes} minutes and try again, or ask an admin to check your account."
                ),
            )),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(settings.login_failure_window.as_secs().max(1)),
        );
        return Ok(response);
    }
    let operator = ctx.db.operators().find_by_email(&email).await?;
    let stored_hash = operator.as_ref().map_or_else(
        || DUMMY_HASH.clone(),
        |operator| operator.password_hash.clone(),
    );
    let matches = hashing.verify(password, stored_hash).await?;
    let Some(operator) = operator.filter(|operator| matches && !operator.disabled) else {
        let window = settings.login_failure_window;
        tokio::try_join!(
            locks.incr(&account_key, 1, window),
            locks.incr(&ip_key, 1, window)
        )?;
        audit::record(
            &ctx,
            "anonymous",
            "operator.login",
            &format!("operator:{}", email.to_lowercase()),
            serde_json::json!({ "client": client.to_string(), "reason": "wrong email or password" }),
            AuditOutcome::Denied,
        )
        .await;
        return Ok(login_page(
            settings,
            StatusCode::UNAUTHORIZED,
            &email,
            Problems::default(),
            Some(("error", "Wrong email or password.".to_owned())),
        ));
    };
    // A new id on every sign-in; the session the browser came with, if any, ends.
    let now = Utc::now();
    if let Some(previous) = previous {
        ctx.db
            .operator_sessions()
            .revoke(previous.session.id, now)
            .await?;
    }
    let token = session::random_token();
    let lifetime = chrono::Duration::from_std(settings.session_lifetime)
        .unwrap_or(chrono::Duration::hours(12));
    ctx.db
        .operator_sessions()
        .create(&NewOperatorSession {
            operator_id: operator.id,
            token_hash: session::token_hash(&token),
            csrf_token: session::random_token(),
            client_ip: Some(client.to_string()),
            user_agent,
            expires_at: now + lifetime,
        })
        .await?;
    audit::record(
        &ctx,
        &audit::actor(&operator.email),
        "operator.login",
        &format!("operator:{}", operator.email),
        serde_json::json!({ "client": client.to_string() }),
        AuditOutcome::Success,
    )
    .await;
    tracing::info!(operator = %operator.email, "An operator signed in to the Back Office.");
    let mut response = Redirect::to("/backoffice/").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        session::set_cookie(
            settings,
            SESSION_COOKIE,
            &token,
            settings.session_lifetime.as_secs(),
        ),
    );
    headers.append(
        header::SET_COOKIE,
        session::set_cookie(settings, LOGIN_COOKIE, "", 0),
    );
    Ok(response)
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|text| text.chars().filter(|c| !c.is_control()).take(255).collect())
}

/// `POST /backoffice/logout`: the session is revoked and the cookie cleared.
pub async fn logout(
    State(ctx): State<AppContext>,
    Viewer(signed): Viewer,
) -> Result<Response, PageError> {
    ctx.db
        .operator_sessions()
        .revoke(signed.session.id, Utc::now())
        .await?;
    audit::record(
        &ctx,
        &signed.actor(),
        "operator.logout",
        &format!("operator:{}", signed.operator.email),
        serde_json::json!({}),
        AuditOutcome::Success,
    )
    .await;
    let mut response = Redirect::to("/backoffice/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(&ctx.settings.backoffice_ui, SESSION_COOKIE, "", 0),
    );
    Ok(response)
}

/// Runs argon2id off the async workers, at most `backoffice.password_hash_concurrency` at
/// once; a request waits at most `backoffice.password_hash_wait` for its turn.
#[derive(Debug, Clone)]
pub struct PasswordHashing {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl PasswordHashing {
    pub fn new(settings: &BackofficeSettings) -> PasswordHashing {
        PasswordHashing {
            permits: Arc::new(Semaphore::new(settings.password_hash_concurrency as usize)),
            wait: settings.password_hash_wait,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PageError> {
        let permit = match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(wait = ?self.wait, "Too many password checks at once; a Back Office request was turned away (backoffice.password_hash_concurrency).");
                return Err(PageError::Unavailable(
                    "Too many sign-ins are being checked at once".into(),
                ));
            }
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|err| PageError::Internal(format!("the password task failed: {err}")))
    }

    pub async fn verify(&self, password: String, hash: String) -> Result<bool, PageError> {
        self.run(move || verify_password(&password, &hash)).await
    }

    pub async fn hash(&self, password: String) -> Result<String, PageError> {
        self.run(move || hash_password(&password))
            .await?
            .map_err(|err| PageError::Internal(err.to_string()))
    }
}
