//! The charge points: the list with its search, filters and pages; one charger with its
//! connectors' live status, status history, configuration, firmware and diagnostics progress
//! and the command forms; approving a pending charger and setting its OCPP password.

use askama::Template;
use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use voltfleet_core::context::AppContext;
use voltfleet_core::domain::{AuditOutcome, ChargePointId, RegistrationStatus, Role};
use voltfleet_core::ocpp::commands::ChargerCommands;
use voltfleet_core::ocpp::v16::ChargePointStatus;
use voltfleet_core::storage::{
    ChargePoint, ChargePointFilter, Connector, Evse, OcppMessage, StatusHistoryEntry,
    StoredConfiguration,
};

use crate::audit;
use crate::commands::{self, CommandForm, CommandOutcome};
use crate::dashboard::connected;
use crate::error::PageError;
use crate::forms::{Fields, Problems};
use crate::session::{Admin, Operating, Signed, Viewer};
use crate::views::{self, Layout};

/// Rows fetched at most when the list is filtered by connection (which the database does not
/// know); the page is then cut from them.
const MAX_ONLINE_SCAN: u32 = 10_000;
/// Status reports shown on a charger's page.
const HISTORY_ROWS: u32 = 50;
/// OCPP messages shown on a charger's page at most (of the `ocpp.message_log` kept).
const MESSAGE_ROWS: u32 = 200;

/// A path segment with everything but unreserved characters percent-encoded.
pub fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The page of a charger.
pub fn url_of(identity: &str) -> String {
    format!("/backoffice/charge-points/{}", encode_segment(identity))
}

/// One row of the list.
#[derive(Debug, Clone)]
pub struct Row {
    pub identity: String,
    pub url: String,
    pub vendor: String,
    pub model: String,
    pub firmware: String,
    pub registration: String,
    pub status: String,
    pub online: bool,
}

/// The list's filters as the form shows them.
#[derive(Debug, Clone, Default)]
pub struct ListFilters {
    pub q: String,
    pub online: String,
    pub status: String,
    pub registration: String,
}

#[derive(Template)]
#[template(path = "charge_points.html")]
struct ListPage {
    layout: Layout,
    filters: ListFilters,
    problems: Problems,
    statuses: Vec<&'static str>,
    registrations: Vec<&'static str>,
    rows: Vec<Row>,
    total: u64,
    page: u64,
    pages: u64,
    previous_url: Option<String>,
    next_url: Option<String>,
}

fn list_url(filters: &ListFilters, page: u64) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        ("q", &filters.q),
        ("online", &filters.online),
        ("status", &filters.status),
        ("registration", &filters.registration),
    ] {
        if !value.is_empty() {
            pairs.push((name, value.clone()));
        }
    }
    if page > 1 {
        pairs.push(("page", page.to_string()));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if query.is_empty() {
        "/backoffice/charge-points".to_owned()
    } else {
        format!("/backoffice/charge-points?{query}")
    }
}

/// `GET /backoffice/charge-points?q=&online=&status=&registration=&page=`.
pub async fn list(
    State(ctx): State<AppContext>,
    Viewer(signed): Viewer,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let fields = Fields::from_pairs(
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default(),
    );
    let mut reader = crate::forms::Reader::new(&fields);
    let q = reader.text("q", 100, false);
    let page = reader.int("page", 1, 1_000_000, false).unwrap_or(1) as u64;
    let registration = reader.choice::<RegistrationStatus>("registration", false);
    let status = reader
        .choice::<ChargePointStatus>("status", false)
        .map(|status| status.as_str().to_owned());
    let online = match fields.get("online") {
        "" => None,
        "yes" => Some(true),
        "no" => Some(false),
        _ => {
            reader
                .problems
                .add("online", "Choose online, offline or any.");
            None
        }
    };
    let problems = reader.problems;
    let filters = ListFilters {
        q: fields.get("q").to_owned(),
        online: fields.get("online").to_owned(),
        status: fields.get("status").to_owned(),
        registration: fields.get("registration").to_owned(),
    };
    let page_size = u64::from(ctx.settings.backoffice_ui.page_size);
    let filter = ChargePointFilter {
        text: q,
        registration,
        status,
    };
    let (rows, total) = if !problems.is_empty() {
        (Vec::new(), 0)
    } else {
        let overview = ctx.db.overview();
        let offset = (page - 1) * page_size;
        match online {
            None => {
                let found = overview
                    .charge_points(&filter, offset, page_size as u32)
                    .await?;
                let identities: Vec<String> = found
                    .items
                    .iter()
                    .map(|cp| cp.identity.to_string())
                    .collect();
                let online = connected(&ctx, &identities).await?;
                let rows = found
                    .items
                    .into_iter()
                    .zip(online)
                    .map(|(cp, online)| row(cp, online))
                    .collect();
                (rows, found.total)
            }
            Some(wanted) => {
                let found = overview.charge_points(&filter, 0, MAX_ONLINE_SCAN).await?;
                let identities: Vec<String> = found
                    .items
                    .iter()
                    .map(|cp| cp.identity.to_string())
                    .collect();
                let online = connected(&ctx, &identities).await?;
                let matching: Vec<Row> = found
                    .items
                    .into_iter()
                    .zip(online)
                    .filter(|(_, online)| *online == wanted)
                    .map(|(cp, online)| row(cp, online))
                    .collect();
                let total = matching.len() as u64;
                let rows = matching
                    .into_iter()
                    .skip(offset as usize)
                    .take(page_size as usize)
                    .collect();
                (rows, total)
            }
        }
    };
    let pages = total.div_ceil(page_size).max(1);
    let status_code = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(views::render(
        status_code,
        &ListPage {
            layout: Layout::new("Charge points", Some(&signed), "charge-points"),
            previous_url: (page > 1).then(|| list_url(&filters, page - 1)),
            next_url: (page < pages).then(|| list_url(&filters, page + 1)),
            filters,
            problems,
            statuses: ChargePointStatus::ALL.iter().map(|s| s.as_str()).collect(),
            registrations: RegistrationStatus::ALL.iter().map(|s| s.as_str()).collect(),
            rows,
            total,
            page,
            pages,
        },
    ))
}

fn row(cp: ChargePoint, online: bool) -> Row {
    Row {
        url: url_of(cp.identity.as_str()),
        identity: cp.identity.to_string(),
        vendor: cp.vendor.unwrap_or_default(),
        model: cp.model.unwrap_or_default(),
        firmware: cp.firmware_version.unwrap_or_default(),
        registration: cp.registration_status.to_string(),
        status: cp.status.unwrap_or_else(|| "Unknown".to_owned()),
        online,
    }
}

/// An EVSE with its connectors.
#[derive(Debug, Clone)]
pub struct EvseView {
    pub evse: Evse,
    pub connectors: Vec<Connector>,
}

#[derive(Template)]
#[template(path = "charge_point.html")]
struct DetailPage {
    layout: Layout,
    cp: ChargePoint,
    url: String,
    online: bool,
    node: String,
    can_operate: bool,
    can_admin: bool,
    csrf: String,
    evses: Vec<EvseView>,
    history: Vec<StatusHistoryEntry>,
    configuration: Vec<StoredConfiguration>,
    messages: Vec<OcppMessage>,
    outcome: Option<CommandOutcome>,
    forms: Vec<CommandForm>,
    password_problem: Option<String>,
}

/// What a command or form post shows on the charger's page.
#[derive(Debug, Default)]
pub struct Shown {
    pub status: Option<StatusCode>,
    pub outcome: Option<CommandOutcome>,
    /// The command form that was sent, with what was typed and its problems.
    pub form: Option<(String, Fields, Problems)>,
    pub flash: Option<(&'static str, String)>,
    pub password_problem: Option<String>,
}

/// The charger named in a path, or 404.
pub async fn find(ctx: &AppContext, identity: &str) -> Result<ChargePoint, PageError> {
    let not_found = || {
        PageError::NotFound(format!(
            "There is no charge point “{}”.",
            crate::forms::shorten(identity)
        ))
    };
    let id = identity.parse::<ChargePointId>().map_err(|_| not_found())?;
    ctx.db
        .charge_points()
        .find_by_identity(&id)
        .await?
        .ok_or_else(not_found)
}

/// The charger's page, with what a post wants shown.
pub async fn render_detail(
    ctx: &AppContext,
    signed: &Signed,
    cp: ChargePoint,
    shown: Shown,
) -> Result<Response, PageError> {
    let charge_points = ctx.db.charge_points();
    let commands =
        ChargerCommands::new(ctx.shared.clone(), ctx.settings.ocpp_protocol.call_timeout);
    let node = commands.node_of(&cp.identity).await.ok().flatten();
    let mut evses = Vec::new();
    for evse in charge_points.evses(cp.id).await? {
        let connectors = charge_points.connectors(evse.id).await?;
        evses.push(EvseView { evse, connectors });
    }
    let history = charge_points
        .status_history(cp.id, None, HISTORY_ROWS)
        .await?;
    let configuration = ctx.db.configuration().list(cp.id).await?;
    let messages = ctx
        .db
        .ocpp_messages()
        .recent(
            cp.id,
            ctx.settings.ocpp_protocol.message_log.min(MESSAGE_ROWS),
        )
        .await?;
    let mut layout = Layout::new(cp.identity.to_string(), Some(signed), "charge-points");
    if let Some((kind, text)) = shown.flash {
        layout = layout.with_flash(kind, text);
    }
    let forms = commands::forms(shown.form);
    Ok(views::render(
        shown.status.unwrap_or(StatusCode::OK),
        &DetailPage {
            layout,
            url: url_of(cp.identity.as_str()),
            online: node.is_some(),
            node: node.unwrap_or_default(),
            can_operate: signed.can(Role::Operator),
            can_admin: signed.can(Role::Admin),
            csrf: signed.csrf().to_owned(),
            cp,
            evses,
            history,
            configuration,
            messages,
            outcome: shown.outcome,
            forms,
            password_problem: shown.password_problem,
        },
    ))
}

/// `GET /backoffice/charge-points/{identity}`.
pub async fn detail(
    State(ctx): State<AppContext>,
    Viewer(signed): Viewer,
    Path(identity): Path<String>,
) -> Result<Response, PageError> {
    let cp = find(&ctx, &identity).await?;
    render_detail(&ctx, &signed, cp, Shown::default()).await
}

/// `POST /backoffice/charge-points/{identity}/approve`: accepts a pending or rejected charger.
pub async fn approve(
    State(ctx): State<AppContext>,
    Operating(signed): Operating,
    Path(identity): Path<String>,
) -> Result<Response, PageError> {
    let cp = find(&ctx, &identity).await?;
    let before = cp.registration_status;
    ctx.db
        .charge_points()
        .set_registration_status(cp.id, RegistrationStatus::Accepted)
        .await?;
    audit::record(
        &ctx,
        &signed.actor(),
        "charge_point.approve",
        &format!("charge_point:{}", cp.identity),
        serde_json::json!({ "before": before.as_str() }),
        AuditOutcome::Success,
    )
    .await;
    let cp = find(&ctx, &identity).await?;
    render_detail(
        &ctx,
        &signed,
        cp,
        Shown {
            flash: Some((
                "ok",
                "Accepted. The charger is told at its next BootNotification; trigger one to make it now.".to_owned(),
            )),
            ..Shown::default()
        },
    )
    .await
}

/// The set-password form.
#[derive(Debug, serde::Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub password: String,
}

/// OCPP 1.6 security profile 1 and 2 passwords (AuthorizationKey): 16 to 40 characters;
/// fewer are accepted from 8 for chargers that cannot store more, never below.
fn password_problem(password: &str) -> Option<&'static str> {
    let count = password.chars().count();
    if password.is_empty() {
        Some("Enter the password the charger will send.")
    } else if count < 8 {
        Some("Use at least 8 characters (16 or more is recommended).")
    } else if count > 40 {
        Some("Use at most 40 characters, the most an OCPP 1.6 charger keeps.")
    } else if !password.bytes().all(|b| b.is_ascii_graphic()) {
        Some("Use visible ASCII characters only, without spaces.")
    } else {
        None
    }
}

/// `POST /backoffice/charge-points/{identity}/password`: sets the charger's Basic-auth
/// password (stored as an argon2id hash).
pub async fn set_password(
    State(ctx): State<AppContext>,
    Admin(signed): Admin,
    axum::Extension(hashing): axum::Extension<crate::login::PasswordHashing>,
    Path(identity): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    let cp = find(&ctx, &identity).await?;
    if let Some(problem) = password_problem(&form.password) {
        audit::record(
            &ctx,
            &signed.actor(),
            "charge_point.set_password",
            &format!("charge_point:{}", cp.identity),
            serde_json::json!({ "problem": problem }),
            AuditOutcome::Denied,
        )
        .await;
        return render_detail(
            &ctx,
            &signed,
            cp,
            Shown {
                status: Some(StatusCode::UNPROCESSABLE_ENTITY),
                password_problem: Some(problem.to_owned()),
                ..Shown::default()
            },
        )
        .await;
    }
    let hash = hashing.hash(form.password).await?;
    ctx.db
        .charge_points()
        .set_ocpp_password_hash(cp.id, Some(&hash))
        .await?;
    audit::record(
        &ctx,
        &signed.actor(),
        "charge_point.set_password",
        &format!("charge_point:{}", cp.identity),
        serde_json::json!({}),
        AuditOutcome::Success,
    )
    .await;
    let cp = find(&ctx, &identity).await?;
    render_detail(
        &ctx,
        &signed,
        cp,
        Shown {
            flash: Some((
                "ok",
                "The OCPP password is set; the charger must send it from its next connection."
                    .to_owned(),
            )),
            ..Shown::default()
        },
    )
    .await
    .map(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_encoded_in_links() {
        assert_eq!(url_of("CP-1"), "/backoffice/charge-points/CP-1");
        assert_eq!(
            url_of("a?b#c%\"<"),
            "/backoffice/charge-points/a%3Fb%23c%25%22%3C"
        );
    }

    #[test]
    fn passwords_are_checked() {
        assert!(password_problem("voltfleet-demo").is_none());
        assert!(password_problem("short").is_some());
        assert!(password_problem("has a space in it").is_some());
        assert!(password_problem(&"x".repeat(41)).is_some());
    }
}
