//! What every page shares: the layout's data (title, navigation, the operator, flash
//! message, the asset URLs) and rendering a template into a response.
//!
//! Templates live in `templates/`; askama checks them when the crate is built and escapes
//! every value for HTML, so text from chargers (vendor, model, ids, payloads) is shown as text.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::assets;
use crate::session::Signed;

/// The signed-in operator, as the navigation shows them.
#[derive(Debug, Clone)]
pub struct Nav {
    pub name: String,
    pub email: String,
    pub role: String,
    /// Whether the admin pages are in the navigation.
    pub admin: bool,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: String,
}

/// A message at the top of a page.
#[derive(Debug, Clone)]
pub struct Flash {
    /// `ok`, `error` or `info`, the CSS class.
    pub kind: &'static str,
    pub text: String,
}

/// The layout's data.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub nav: Option<Nav>,
    /// Which navigation entry is current: `dashboard`, `charge-points`, or empty.
    pub section: &'static str,
    pub flash: Option<Flash>,
    pub css: &'static str,
    pub js: &'static str,
}

impl Layout {
    pub fn new(title: impl Into<String>, signed: Option<&Signed>, section: &'static str) -> Layout {
        Layout {
            title: title.into(),
            nav: signed.map(|signed| Nav {
                name: signed.operator.display_name.clone(),
                email: signed.operator.email.clone(),
                role: signed.operator.role.to_string(),
                admin: signed.can(voltfleet_core::domain::Role::Admin),
                csrf: signed.csrf().to_owned(),
            }),
            section,
            flash: None,
            css: assets::css_url(),
            js: assets::js_url(),
        }
    }

    pub fn with_flash(mut self, kind: &'static str, text: impl Into<String>) -> Layout {
        self.flash = Some(Flash {
            kind,
            text: text.into(),
        });
        self
    }
}

/// The page as an HTML response with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(%err, "A Back Office template failed to render.");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered; the error is in the log.",
            )
                .into_response()
        }
    }
}
