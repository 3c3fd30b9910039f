//! ID tokens (RFID cards, app tokens): the list with its search and status filter, and for
//! operators adding a fleet card and changing a token's status (block, unblock), expiry and
//! group. The central system answers chargers with these terms from then on; chargers that
//! cached the token learn it at its next authorization (or with Clear cache).

use askama::Template;
use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use voltfleet_core::context::AppContext;
use voltfleet_core::domain::{AuditOutcome, IdTokenStatus, Role};
use voltfleet_core::storage::{IdToken, IdTokenFilter, NewIdToken, StorageError};

use crate::audit;
use crate::charge_points::encode_segment;
use crate::error::PageError;
use crate::forms::{Fields, Problems, Reader};
use crate::session::{Operating, Signed, Viewer};
use crate::views::{self, Layout};

/// OCPP 1.6 idTags are at most 20 characters.
const MAX_TOKEN: usize = 20;
const TOKEN_TYPES: &[&str] = &["RFID", "APP", "OTHER"];

/// A token as the list shows it.
#[derive(Debug, Clone)]
pub struct Row {
    pub token: IdToken,
    pub url: String,
    /// The status a charger is answered now (an accepted token past its expiry is Expired).
    pub effective: String,
}

fn row(token: IdToken) -> Row {
    Row {
        url: format!("/backoffice/id-tokens/{}", encode_segment(&token.token)),
        effective: token.status_at(Utc::now()).to_string(),
        token,
    }
}

#[derive(Template)]
#[template(path = "id_tokens.html")]
struct ListPage {
    layout: Layout,
    q: String,
    status: String,
    statuses: Vec<&'static str>,
    types: &'static [&'static str],
    problems: Problems,
    rows: Vec<Row>,
    total: u64,
    page: u64,
    pages: u64,
    previous_url: Option<String>,
    next_url: Option<String>,
    can_operate: bool,
    csrf: String,
    new: Fields,
    new_problems: Problems,
}

fn list_url(q: &str, status: &str, page: u64) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if !q.is_empty() {
        pairs.push(("q", q.to_owned()));
    }
    if !status.is_empty() {
        pairs.push(("status", status.to_owned()));
    }
    if page > 1 {
        pairs.push(("page", page.to_string()));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if query.is_empty() {
        "/backoffice/id-tokens".to_owned()
    } else {
        format!("/backoffice/id-tokens?{query}")
    }
}

async fn list_page(
    ctx: &AppContext,
    signed: &Signed,
    query: &str,
    new: Fields,
    new_problems: Problems,
    flash: Option<(&'static str, String)>,
) -> Result<Response, PageError> {
    let fields = Fields::from_pairs(serde_urlencoded::from_str(query).unwrap_or_default());
    let mut r = Reader::new(&fields);
    let text = r.text("q", 100, false);
    let status = r.choice::<IdTokenStatus>("status", false);
    let page = r.int("page", 1, 1_000_000, false).unwrap_or(1) as u64;
    let problems = r.problems;
    let page_size = u64::from(ctx.settings.backoffice_ui.page_size);
    let (tokens, total) = if problems.is_empty() {
        ctx.db
            .overview()
            .id_tokens(
                &IdTokenFilter { text, status },
                (page - 1) * page_size,
                page_size as u32,
            )
            .await?
    } else {
        (Vec::new(), 0)
    };
    let pages = total.div_ceil(page_size).max(1);
    let (q, status) = (fields.get("q").to_owned(), fields.get("status").to_owned());
    let mut layout = Layout::new("ID tokens", Some(signed), "id-tokens");
    if let Some((kind, text)) = flash {
        layout = layout.with_flash(kind, text);
    }
    let code = if !problems.is_empty() || !new_problems.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(views::render(
        code,
        &ListPage {
            layout,
            previous_url: (page > 1).then(|| list_url(&q, &status, page - 1)),
            next_url: (page < pages).then(|| list_url(&q, &status, page + 1)),
            q,
            status,
            statuses: IdTokenStatus::ALL.iter().map(|s| s.as_str()).collect(),
            types: TOKEN_TYPES,
            problems,
            rows: tokens.into_iter().map(row).collect(),
            total,
            page,
            pages,
            can_operate: signed.can(Role::Operator),
            csrf: signed.csrf().to_owned(),
            new,
            new_problems,
        },
    ))
}

/// `GET /backoffice/id-tokens?q=&status=&page=`.
pub async fn list(
    State(ctx): State<AppContext>,
    Viewer(signed): Viewer,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    list_page(
        &ctx,
        &signed,
        query.as_deref().unwrap_or_default(),
        Fields::default(),
        Problems::default(),
        None,
    )
    .await
}

fn token_problem(token: &str) -> Option<&'static str> {
    if token.is_empty() {
        Some("Enter the token, as the card or app presents it.")
    } else if token.chars().count() > MAX_TOKEN {
        Some("An OCPP 1.6 ID token has at most 20 characters.")
    } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
        Some("Use visible ASCII characters only, without spaces.")
    } else {
        None
    }
}

/// Reads status, expiry and group from a form.
fn terms(
    r: &mut Reader<'_>,
) -> (
    Option<IdTokenStatus>,
    Option<chrono::DateTime<Utc>>,
    Option<String>,
) {
    let status = r.choice::<IdTokenStatus>("status", true);
    let expires_at = r.instant("expires_at", false);
    let group = r.text("group_token", MAX_TOKEN, false);
    (status, expires_at, group)
}

/// `POST /backoffice/id-tokens`: a token operators manage (a fleet card).
pub async fn create(
    State(ctx): State<AppContext>,
    Operating(signed): Operating,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let mut fields = Fields::from_pairs(pairs);
    fields.0.remove(crate::security::CSRF_FIELD);
    let mut r = Reader::new(&fields);
    let token = fields.get("token").to_owned();
    if let Some(problem) = token_problem(&token) {
        r.problems.add("token", problem);
    }
    let token_type = fields.get("token_type").to_owned();
    if !TOKEN_TYPES.contains(&token_type.as_str()) {
        r.problems.add("token_type", "Choose RFID, APP or OTHER.");
    }
    let (status, expires_at, group) = terms(&mut r);
    let label = r.text("label", 100, false);
    let problems = r.problems;
    let Some(status) = status.filter(|_| problems.is_empty()) else {
        return list_page(&ctx, &signed, "", fields, problems, None).await;
    };
    let created = ctx
        .db
        .id_tokens()
        .create(&NewIdToken {
            token: token.clone(),
            token_type,
            status,
            expires_at,
            group_token: group.clone(),
            driver_id: None,
            label,
        })
        .await;
    match created {
        Ok(_) => {
            audit::record(
                &ctx,
                &signed.actor(),
                "id_token.create",
                &format!("id_token:{token}"),
                serde_json::json!({ "status": status.as_str(), "expires_at": expires_at, "group": group }),
                AuditOutcome::Success,
            )
            .await;
            list_page(
                &ctx,
                &signed,
                "",
                Fields::default(),
                Problems::default(),
                Some(("ok", format!("{token} is added as {status}."))),
            )
            .await
        }
        Err(StorageError::Conflict { .. }) => {
            let mut problems = Problems::default();
            problems.add(
                "token",
                "This token is known already (letter case does not count).",
            );
            list_page(&ctx, &signed, "", fields, problems, None).await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "id_token.html")]
struct DetailPage {
    layout: Layout,
    row: Row,
    statuses: Vec<&'static str>,
    can_operate: bool,
    csrf: String,
    values: Fields,
    problems: Problems,
}

async fn find(ctx: &AppContext, token: &str) -> Result<IdToken, PageError> {
    ctx.db.id_tokens().find(token).await?.ok_or_else(|| {
        PageError::NotFound(format!(
            "There is no ID token “{}”.",
            crate::forms::shorten(token)
        ))
    })
}

fn detail_page(
    signed: &Signed,
    token: IdToken,
    values: Option<Fields>,
    problems: Problems,
    flash: Option<(&'static str, String)>,
) -> Response {
    let values = values.unwrap_or_else(|| {
        let mut fields = Fields::default();
        fields.0.insert("status".into(), token.status.to_string());
        fields.0.insert(
            "expires_at".into(),
            token
                .expires_at
                .map(|at| at.format("%Y-%m-%dT%H:%M").to_string())
                .unwrap_or_default(),
        );
        fields.0.insert(
            "group_token".into(),
            token.group_token.clone().unwrap_or_default(),
        );
        fields
    });
    let mut layout = Layout::new(
        format!("ID token {}", token.token),
        Some(signed),
        "id-tokens",
    );
    if let Some((kind, text)) = flash {
        layout = layout.with_flash(kind, text);
    }
    views::render(
        if problems.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        },
        &DetailPage {
            layout,
            row: row(token),
            statuses: IdTokenStatus::ALL.iter().map(|s| s.as_str()).collect(),
            can_operate: signed.can(Role::Operator),
            csrf: signed.csrf().to_owned(),
            values,
            problems,
        },
    )
}

/// `GET /backoffice/id-tokens/{token}`.
pub async fn detail(
    State(ctx): State<AppContext>,
    Viewer(signed): Viewer,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let token = find(&ctx, &token).await?;
    Ok(detail_page(&signed, token, None, Problems::default(), None))
}

/// `POST /backoffice/id-tokens/{token}`: new status, expiry and group.
pub async fn update(
    State(ctx): State<AppContext>,
    Operating(signed): Operating,
    Path(token): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let found = find(&ctx, &token).await?;
    let mut fields = Fields::from_pairs(pairs);
    fields.0.remove(crate::security::CSRF_FIELD);
    let mut r = Reader::new(&fields);
    let (status, expires_at, group) = terms(&mut r);
    let problems = r.problems;
    let Some(status) = status.filter(|_| problems.is_empty()) else {
        return Ok(detail_page(&signed, found, Some(fields), problems, None));
    };
    ctx.db
        .overview()
        .set_id_token_terms(&found.token, status, expires_at, group.as_deref())
        .await?;
    audit::record(
        &ctx,
        &signed.actor(),
        "id_token.update",
        &format!("id_token:{}", found.token),
        serde_json::json!({
            "before": { "status": found.status.as_str(), "expires_at": found.expires_at, "group": found.group_token },
            "after": { "status": status.as_str(), "expires_at": expires_at, "group": group },
        }),
        AuditOutcome::Success,
    )
    .await;
    let token = find(&ctx, &found.token).await?;
    Ok(detail_page(
        &signed,
        token,
        None,
        Problems::default(),
        Some(("ok", format!("Saved: {status}."))),
    ))
}
