//! What only admins do: manage operators and their roles, and read the audit log.
//!
//! An admin cannot change their own role or disable themselves, so that the last admin cannot
//! lock everyone out by a slip. Disabling an operator ends their sessions at once.

use askama::Template;
use axum::Extension;
use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use voltfleet_core::context::AppContext;
use voltfleet_core::domain::{AuditOutcome, Role};
use voltfleet_core::storage::{AuditEntry, AuditFilter, NewOperator, Operator, StorageError};

use crate::audit;
use crate::error::PageError;
use crate::forms::{Fields, Problems, Reader};
use crate::login::PasswordHashing;
use crate::session::{Admin, Signed};
use crate::views::{self, Layout};

/// Shortest password for a new operator, in characters.
const MIN_OPERATOR_PASSWORD: usize = 12;

#[derive(Template)]
#[template(path = "operators.html")]
struct OperatorsPage {
    layout: Layout,
    csrf: String,
    me: i64,
    operators: Vec<Operator>,
    roles: Vec<&'static str>,
    new: Fields,
    problems: Problems,
}

async fn operators_page(
    ctx: &AppContext,
    signed: &Signed,
    status: StatusCode,
    new: Fields,
    problems: Problems,
    flash: Option<(&'static str, String)>,
) -> Result<Response, PageError> {
    let mut layout = Layout::new("Operators", Some(signed), "operators");
    if let Some((kind, text)) = flash {
        layout = layout.with_flash(kind, text);
    }
    Ok(views::render(
        status,
        &OperatorsPage {
            layout,
            csrf: signed.csrf().to_owned(),
            me: signed.operator.id,
            operators: ctx.db.overview().operators().await?,
            roles: Role::ALL.iter().map(|role| role.as_str()).collect(),
            new,
            problems,
        },
    ))
}

/// `GET /backoffice/operators`.
pub async fn operators(
    State(ctx): State<AppContext>,
    Admin(signed): Admin,
) -> Result<Response, PageError> {
    operators_page(
        &ctx,
        &signed,
        StatusCode::OK,
        Fields::default(),
        Problems::default(),
        None,
    )
    .await
}

fn email_problem(email: &str) -> Option<&'static str> {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Some("Enter an email address, such as ops@example.com.");
    };
    if local.is_empty()
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Some("Enter an email address, such as ops@example.com.");
    }
    None
}

/// `POST /backoffice/operators`: a new operator.
pub async fn create_operator(
    State(ctx): State<AppContext>,
    Admin(signed): Admin,
    Extension(hashing): Extension<PasswordHashing>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let mut fields = Fields::from_pairs(pairs);
    fields.0.remove(crate::security::CSRF_FIELD);
    let password = fields.0.remove("password").unwrap_or_default();
    let mut r = Reader::new(&fields);
    let email = r.text("email", 255, true);
    let name = r.text("display_name", 255, true);
    let role = r.choice::<Role>("role", true);
    let mut problems = r.problems;
    if let Some(problem) = email.as_deref().and_then(email_problem) {
        problems.add("email", problem);
    }
    if password.chars().count() < MIN_OPERATOR_PASSWORD {
        problems.add(
            "password",
            format!("Use at least {MIN_OPERATOR_PASSWORD} characters."),
        );
    } else if password.len() > 1024 {
        problems.add("password", "Use at most 1024 bytes.");
    } else if email
        .as_deref()
        .is_some_and(|email| password.trim().eq_ignore_ascii_case(email))
    {
        problems.add("password", "The password must not be the email address.");
    }
    let (Some(email), Some(name), Some(role), true) = (email, name, role, problems.is_empty())
    else {
        return operators_page(
            &ctx,
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            fields,
            problems,
            None,
        )
        .await;
    };
    let password_hash = hashing.hash(password).await?;
    let created = ctx
        .db
        .operators()
        .create(&NewOperator {
            email: email.clone(),
            display_name: name,
            password_hash,
            role,
        })
        .await;
    match created {
        Ok(id) => {
            audit::record(
                &ctx,
                &signed.actor(),
                "operator.create",
                &format!("operator:{}", email.to_lowercase()),
                serde_json::json!({ "id": id, "role": role.as_str() }),
                AuditOutcome::Success,
            )
            .await;
            operators_page(
                &ctx,
                &signed,
                StatusCode::OK,
                Fields::default(),
                Problems::default(),
                Some(("ok", format!("{email} can now sign in as {role}."))),
            )
            .await
        }
        Err(StorageError::Conflict { .. }) => {
            let mut problems = Problems::default();
            problems.add("email", "An operator with this email exists already.");
            operators_page(
                &ctx,
                &signed,
                StatusCode::UNPROCESSABLE_ENTITY,
                fields,
                problems,
                None,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

/// The role form.
#[derive(Debug, serde::Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    pub role: String,
}

async fn other_operator(
    ctx: &AppContext,
    signed: &Signed,
    id: &str,
) -> Result<Result<Operator, String>, PageError> {
    let not_found = || PageError::NotFound("There is no such operator.".to_owned());
    let id = id.parse::<i64>().map_err(|_| not_found())?;
    let operator = match ctx.db.operators().get(id).await {
        Ok(operator) => operator,
        Err(StorageError::NotFound { .. }) => return Err(not_found()),
        Err(other) => return Err(other.into()),
    };
    if operator.id == signed.operator.id {
        return Ok(Err(
            "You cannot change your own role or disable yourself; ask another admin.".to_owned(),
        ));
    }
    Ok(Ok(operator))
}

/// `POST /backoffice/operators/{id}/role`.
pub async fn set_role(
    State(ctx): State<AppContext>,
    Admin(signed): Admin,
    Path(id): Path<String>,
    Form(form): Form<RoleForm>,
) -> Result<Response, PageError> {
    let operator = match other_operator(&ctx, &signed, &id).await? {
        Ok(operator) => operator,
        Err(refusal) => {
            return operators_page(
                &ctx,
                &signed,
                StatusCode::CONFLICT,
                Fields::default(),
                Problems::default(),
                Some(("error", refusal)),
            )
            .await;
        }
    };
    let Ok(role) = form.role.parse::<Role>() else {
        return operators_page(
            &ctx,
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            Fields::default(),
            Problems::default(),
            Some(("error", "Choose admin, operator or viewer.".to_owned())),
        )
        .await;
    };
    ctx.db
        .overview()
        .set_operator_role(operator.id, role)
        .await?;
    audit::record(
        &ctx,
        &signed.actor(),
        "operator.set_role",
        &format!("operator:{}", operator.email),
        serde_json::json!({ "before": operator.role.as_str(), "after": role.as_str() }),
        AuditOutcome::Success,
    )
    .await;
    operators_page(
        &ctx,
        &signed,
        StatusCode::OK,
        Fields::default(),
        Problems::default(),
        Some(("ok", format!("{} is now {role}.", operator.email))),
    )
    .await
}

/// `POST /backoffice/operators/{id}/disable` and `…/enable`.
pub async fn set_disabled(
    State(ctx): State<AppContext>,
    Admin(signed): Admin,
    Path((id, change)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let disabled = match change.as_str() {
        "disable" => true,
        "enable" => false,
        _ => {
            return Err(PageError::NotFound(
                "There is no such page in the Back Office.".to_owned(),
            ));
        }
    };
    let operator = match other_operator(&ctx, &signed, &id).await? {
        Ok(operator) => operator,
        Err(refusal) => {
            return operators_page(
                &ctx,
                &signed,
                StatusCode::CONFLICT,
                Fields::default(),
                Problems::default(),
                Some(("error", refusal)),
            )
            .await;
        }
    };
    ctx.db
        .operators()
        .set_disabled(operator.id, disabled)
        .await?;
    let ended = if disabled {
        ctx.db
            .operator_sessions()
            .revoke_all_of(operator.id, Utc::now())
            .await?
    } else {
        0
    };
    audit::record(
        &ctx,
        &signed.actor(),
        if disabled {
            "operator.disable"
        } else {
            "operator.enable"
        },
        &format!("operator:{}", operator.email),
        serde_json::json!({ "sessions_ended": ended }),
        AuditOutcome::Success,
    )
    .await;
    let text = if disabled {
        format!(
            "{} can no longer sign in; {ended} session(s) ended.",
            operator.email
        )
    } else {
        format!("{} can sign in again.", operator.email)
    };
    operators_page(
        &ctx,
        &signed,
        StatusCode::OK,
        Fields::default(),
        Problems::default(),
        Some(("ok", text)),
    )
    .await
}

/// The audit log's filters as the form shows them.
#[derive(Debug, Clone, Default)]
pub struct AuditFilters {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
}

/// An audit entry as the page shows it.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub entry: AuditEntry,
    pub details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    filters: AuditFilters,
    problems: Problems,
    outcomes: Vec<&'static str>,
    rows: Vec<AuditRow>,
    total: u64,
    page: u64,
    pages: u64,
    previous_url: Option<String>,
    next_url: Option<String>,
}

fn audit_url(filters: &AuditFilters, page: u64) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        ("actor", &filters.actor),
        ("action", &filters.action),
        ("target", &filters.target),
        ("outcome", &filters.outcome),
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
        "/backoffice/audit".to_owned()
    } else {
        format!("/backoffice/audit?{query}")
    }
}

/// `GET /backoffice/audit?actor=&action=&target=&outcome=&page=`.
pub async fn audit_log(
    State(ctx): State<AppContext>,
    Admin(signed): Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let fields = Fields::from_pairs(
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default(),
    );
    let mut r = Reader::new(&fields);
    let actor = r.text("actor", 255, false);
    let action = r.text("action", 100, false);
    let target = r.text("target", 255, false);
    let outcome = r.choice::<AuditOutcome>("outcome", false);
    let page = r.int("page", 1, 1_000_000, false).unwrap_or(1) as u64;
    let problems = r.problems;
    let filters = AuditFilters {
        actor: fields.get("actor").to_owned(),
        action: fields.get("action").to_owned(),
        target: fields.get("target").to_owned(),
        outcome: fields.get("outcome").to_owned(),
    };
    let page_size = u64::from(ctx.settings.backoffice_ui.page_size);
    let (entries, total) = if problems.is_empty() {
        ctx.db
            .overview()
            .audit(
                &AuditFilter {
                    actor,
                    action,
                    target,
                    outcome,
                },
                (page - 1) * page_size,
                page_size as u32,
            )
            .await?
    } else {
        (Vec::new(), 0)
    };
    let pages = total.div_ceil(page_size).max(1);
    Ok(views::render(
        if problems.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        },
        &AuditPage {
            layout: Layout::new("Audit log", Some(&signed), "audit"),
            previous_url: (page > 1).then(|| audit_url(&filters, page - 1)),
            next_url: (page < pages).then(|| audit_url(&filters, page + 1)),
            filters,
            problems,
            outcomes: AuditOutcome::ALL.iter().map(|o| o.as_str()).collect(),
            rows: entries
                .into_iter()
                .map(|entry| AuditRow {
                    details: entry.details.0.to_string(),
                    entry,
                })
                .collect(),
            total,
            page,
            pages,
        },
    ))
}

/// Scopes an operator's key (one without a driver) can use: the public data.
pub const OPERATOR_KEY_SCOPES: &[&str] = &["locations:read"];

#[derive(Template)]
#[template(path = "api_keys.html")]
struct ApiKeysPage {
    layout: Layout,
    csrf: String,
    keys: Vec<voltfleet_core::storage::ApiKeyRecord>,
    scopes: &'static [&'static str],
    /// The plain key just made, shown this once.
    created: Option<String>,
    name: String,
    problems: Problems,
}

async fn api_keys_page(
    ctx: &AppContext,
    signed: &Signed,
    status: StatusCode,
    created: Option<String>,
    name: String,
    problems: Problems,
    flash: Option<(&'static str, String)>,
) -> Result<Response, PageError> {
    let mut layout = Layout::new("API keys", Some(signed), "api-keys");
    if let Some((kind, text)) = flash {
        layout = layout.with_flash(kind, text);
    }
    Ok(views::render(
        status,
        &ApiKeysPage {
            layout,
            csrf: signed.csrf().to_owned(),
            keys: ctx.db.overview().operator_api_keys().await?,
            scopes: OPERATOR_KEY_SCOPES,
            created,
            name,
            problems,
        },
    ))
}

/// `GET /backoffice/api-keys`.
pub async fn api_keys(
    State(ctx): State<AppContext>,
    Admin(signed): Admin,
) -> Result<Response, PageError> {
    api_keys_page(
        &ctx,
        &signed,
        StatusCode::OK,
        None,
        String::new(),
        Problems::default(),
        None,
    )
    .await
}

/// `POST /backoffice/api-keys`: a new key, shown once.
pub async fn create_api_key(
    State(ctx): State<AppContext>,
    Admin(signed): Admin,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let scopes: Vec<String> = pairs
        .iter()
        .filter(|(name, _)| name == "scope")
        .map(|(_, value)| value.clone())
        .collect();
    let fields = Fields::from_pairs(pairs);
    let mut r = Reader::new(&fields);
    let name = r.text("name", 100, true);
    let mut problems = r.problems;
    if scopes.is_empty() {
        problems.add("scope", "Choose at least one scope.");
    } else if let Some(unknown) = scopes
        .iter()
        .find(|scope| !OPERATOR_KEY_SCOPES.contains(&scope.as_str()))
    {
        problems.add(
            "scope",
            format!(
                "“{}” is not a scope an operator key can have.",
                crate::forms::shorten(unknown)
            ),
        );
    }
    let Some(name) = name.filter(|_| problems.is_empty()) else {
        return api_keys_page(
            &ctx,
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            fields.get("name").to_owned(),
            problems,
            None,
        )
        .await;
    };
    let (plain, prefix, key_hash) = voltfleet_core::credentials::ApiKey::generate();
    let id = ctx
        .db
        .api_keys()
        .create(&voltfleet_core::storage::NewApiKey {
            name: name.clone(),
            prefix: prefix.clone(),
            key_hash,
            scopes: scopes.clone(),
            operator_id: Some(signed.operator.id),
            driver_id: None,
        })
        .await?;
    audit::record(
        &ctx,
        &signed.actor(),
        "api_key.create",
        &format!("api_key:{prefix}"),
        serde_json::json!({ "id": id, "name": name, "scopes": scopes }),
        AuditOutcome::Success,
    )
    .await;
    api_keys_page(
        &ctx,
        &signed,
        StatusCode::OK,
        Some(plain),
        String::new(),
        Problems::default(),
        None,
    )
    .await
}

/// `POST /backoffice/api-keys/{id}/revoke`.
pub async fn revoke_api_key(
    State(ctx): State<AppContext>,
    Admin(signed): Admin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let not_found = || PageError::NotFound("There is no such API key.".to_owned());
    let id = id.parse::<i64>().map_err(|_| not_found())?;
    let key = ctx
        .db
        .overview()
        .operator_api_keys()
        .await?
        .into_iter()
        .find(|key| key.id == id)
        .ok_or_else(not_found)?;
    ctx.db.api_keys().revoke(id, Utc::now()).await?;
    audit::record(
        &ctx,
        &signed.actor(),
        "api_key.revoke",
        &format!("api_key:{}", key.prefix),
        serde_json::json!({ "id": id, "name": key.name }),
        AuditOutcome::Success,
    )
    .await;
    api_keys_page(
        &ctx,
        &signed,
        StatusCode::OK,
        None,
        String::new(),
        Problems::default(),
        Some(("ok", format!("The key “{}” no longer works.", key.name))),
    )
    .await
}
