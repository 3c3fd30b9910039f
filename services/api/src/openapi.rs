//! The API's OpenAPI 3.1 document, derived from the handlers' `#[utoipa::path]` attributes and
//! the request, response and problem types, and served at `/api/v1/openapi.json`.

use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::accounts;
use crate::error::{FieldError, Problem};

/// The whole document; every route of the API is listed in `paths`.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "voltfleet API",
        description = "The public API for drivers, apps and the website. Errors are RFC 9457 problems (application/problem+json)."
    ),
    paths(
        accounts::sign_up,
        accounts::login,
        accounts::refresh,
        accounts::logout,
        accounts::change_password,
        accounts::me,
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerScheme),
    tags((name = "accounts", description = "Drivers' accounts and sign-in"))
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme the authenticated routes refer to.
#[derive(Debug)]
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The access token from /api/v1/auth/login"))
                    .build(),
            ),
        );
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> Response {
    axum::Json(ApiDoc::openapi()).into_response()
}
