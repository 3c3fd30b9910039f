//! The API's OpenAPI 3.1 document, derived from the handlers' `#[utoipa::path]` attributes and
//! the request, response and problem types, served at `/api/v1/openapi.json`; and a browsable
//! page made from it at `/api/v1/docs` (plain HTML, no scripts, nothing fetched elsewhere).

use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::Response as ResponseDoc;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Object, PathItem, Ref, RefOr, Type};
use utoipa::{Modify, OpenApi};

use crate::error::{FieldError, PROBLEM_JSON, Problem};
use crate::{accounts, cards, charging, keys, locations};

/// The whole document; every route of the API is listed in `paths`.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "voltfleet API",
        description = "The public API for drivers, apps and the website. Errors are RFC 9457 problems (application/problem+json) naming each invalid field. Lists are paginated with an opaque `cursor` (the `next_cursor` of the previous page). GET answers carry an ETag and honour If-None-Match. Every answer carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset; 429 carries Retry-After."
    ),
    paths(
        accounts::sign_up,
        accounts::login,
        accounts::refresh,
        accounts::logout,
        accounts::change_password,
        accounts::me,
        keys::list,
        keys::create,
        keys::revoke,
        locations::search,
        locations::location,
        locations::charger,
        charging::start,
        charging::stop,
        charging::active,
        charging::history,
        charging::session,
        cards::list,
        cards::add,
        cards::block,
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&SecuritySchemes, &SharedAnswers),
    tags(
        (name = "accounts", description = "Drivers' accounts, sign-in and API keys"),
        (name = "locations", description = "Where to charge, with live availability"),
        (name = "charging", description = "Starting and stopping, and the driver's sessions"),
        (name = "cards", description = "The driver's RFID cards"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` and `api_key` schemes the authenticated routes refer to.
#[derive(Debug)]
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The access token from /api/v1/auth/login, or an API key (vfk_…)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "An API key (vfk_…) with the scopes the route needs",
            ))),
        );
    }
}

/// The answers an operation gives whatever its handler does, added to every operation that
/// can give them: a JSON body that is not JSON or not of the expected shape (400) or not sent
/// as `application/json` (415), from `ApiJson`, on every operation that takes a body; and 429
/// from the rate limits, which wrap every route. Every 429 carries `Retry-After`.
#[derive(Debug)]
struct SharedAnswers;

impl Modify for SharedAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                let responses = &mut operation.responses.responses;
                if operation.request_body.is_some() {
                    responses.entry("400".to_owned()).or_insert_with(|| {
                        problem_answer("The body is not JSON, or not JSON of the expected shape.")
                    });
                    responses.entry("415".to_owned()).or_insert_with(|| {
                        problem_answer("The body is not declared as application/json.")
                    });
                }
                let limited = responses
                    .entry("429".to_owned())
                    .or_insert_with(|| problem_answer("Rate limit used up; see Retry-After."));
                if let RefOr::T(limited) = limited {
                    limited
                        .headers
                        .entry("Retry-After".to_owned())
                        .or_insert_with(|| {
                            HeaderBuilder::new()
                                .schema(Object::with_type(Type::Integer))
                                .description(Some("Seconds until the next request may be sent."))
                                .build()
                        });
                }
            }
        }
    }
}

/// An answer whose body is a [`Problem`].
fn problem_answer(description: &str) -> RefOr<ResponseDoc> {
    let mut answer = ResponseDoc::new(description);
    answer.content.insert(
        PROBLEM_JSON.to_owned(),
        Content::new(Some(Ref::from_schema_name("Problem"))),
    );
    RefOr::T(answer)
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_json().unwrap_or_default());

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT.as_str(),
    )
        .into_response()
}

static DOCS_PAGE: LazyLock<String> = LazyLock::new(|| docs_page(&ApiDoc::openapi()));

/// `GET /api/v1/docs`: every operation with its parameters and answers.
pub async fn docs() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
            ),
        ],
        DOCS_PAGE.as_str(),
    )
        .into_response()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn docs_page(doc: &utoipa::openapi::OpenApi) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}}\
         code{{background:#f2f2f2;padding:0 .2em}}h2{{border-top:1px solid #ccc;padding-top:1rem}}\
         .m{{font-weight:bold;text-transform:uppercase;margin-right:.5em}}td,th{{text-align:left;padding:.2em .6em .2em 0;vertical-align:top}}</style>\
         </head><body><h1>{title}</h1><p>{description}</p>\
         <p>The machine-readable document: <a href=\"openapi.json\"><code>/api/v1/openapi.json</code></a> (OpenAPI 3.1).</p>",
        title = escape(&doc.info.title),
        description = escape(doc.info.description.as_deref().unwrap_or("")),
    );
    for (path, item) in &doc.paths.paths {
        for (method, operation) in operations(item) {
            let _ = write!(
                html,
                "<h2><span class=\"m\">{method}</span><code>{}</code></h2>",
                escape(path)
            );
            if let Some(text) = operation
                .description
                .as_deref()
                .or(operation.summary.as_deref())
            {
                let _ = write!(html, "<p>{}</p>", escape(text));
            }
            if operation.security.is_some() {
                html.push_str("<p>Needs credentials: a driver's access token or an API key.</p>");
            }
            if let Some(parameters) = &operation.parameters
                && !parameters.is_empty()
            {
                html.push_str("<table><tr><th>parameter</th><th>in</th><th>meaning</th></tr>");
                for parameter in parameters {
                    let _ = write!(
                        html,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                        escape(&parameter.name),
                        match parameter.parameter_in {
                            ParameterIn::Path => "path",
                            ParameterIn::Query => "query",
                            ParameterIn::Header => "header",
                            ParameterIn::Cookie => "cookie",
                        },
                        escape(parameter.description.as_deref().unwrap_or(""))
                    );
                }
                html.push_str("</table>");
            }
            if let Some(body) = &operation.request_body {
                for (media, content) in &body.content {
                    let _ = write!(
                        html,
                        "<p>Body ({}): {}</p>",
                        escape(media),
                        schema_name(&content.schema)
                    );
                }
            }
            html.push_str("<table><tr><th>status</th><th>answer</th></tr>");
            for (status, response) in &operation.responses.responses {
                let description = match response {
                    RefOr::T(response) => escape(&response.description),
                    RefOr::Ref(reference) => escape(&reference.ref_location),
                };
                let _ = write!(
                    html,
                    "<tr><td>{}</td><td>{description}</td></tr>",
                    escape(status)
                );
            }
            html.push_str("</table>");
        }
    }
    html.push_str("</body></html>");
    html
}

fn operations(item: &PathItem) -> Vec<(&'static str, &utoipa::openapi::path::Operation)> {
    [
        ("get", &item.get),
        ("post", &item.post),
        ("put", &item.put),
        ("patch", &item.patch),
        ("delete", &item.delete),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_ref().map(|operation| (method, operation)))
    .collect()
}

fn schema_name(schema: &Option<RefOr<utoipa::openapi::schema::Schema>>) -> String {
    match schema {
        Some(RefOr::Ref(reference)) => format!(
            "<code>{}</code>",
            escape(reference.ref_location.rsplit('/').next().unwrap_or(""))
        ),
        Some(RefOr::T(_)) => "an inline schema".to_owned(),
        None => "any".to_owned(),
    }
}
