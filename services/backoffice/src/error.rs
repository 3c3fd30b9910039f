//! What a request that cannot be served gets: an HTML page that says what happened and what
//! to do, with the fitting status; or, without a session, the way to the sign-in page.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use voltfleet_core::storage::StorageError;

use crate::views::{self, Layout};

/// Why a page is not shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// No valid session: sign in first.
    SignIn,
    /// The operator's role does not allow it.
    Forbidden(String),
    /// A form's CSRF token or the request's origin did not check out.
    Csrf(String),
    NotFound(String),
    /// The request body is larger than a form may be.
    TooLarge,
    /// A dependency is down; retrying later may work.
    Unavailable(String),
    Internal(String),
}

impl From<StorageError> for PageError {
    fn from(err: StorageError) -> PageError {
        match err {
            StorageError::NotFound { .. } => PageError::NotFound(err.to_string()),
            StorageError::Unavailable { .. } => PageError::Unavailable(err.to_string()),
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl From<voltfleet_core::shared::SharedError> for PageError {
    fn from(err: voltfleet_core::shared::SharedError) -> PageError {
        PageError::Unavailable(err.to_string())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            PageError::SignIn => return Redirect::to("/backoffice/login").into_response(),
            PageError::Forbidden(message) => (StatusCode::FORBIDDEN, "Not allowed", message),
            PageError::Csrf(message) => (StatusCode::FORBIDDEN, "Request refused", message),
            PageError::NotFound(message) => (StatusCode::NOT_FOUND, "Not found", message),
            PageError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The form is larger than the Back Office accepts (64 KiB).".to_owned(),
            ),
            PageError::Unavailable(message) => {
                tracing::warn!(%message, "A Back Office page could not be served.");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    format!("{message}. Try again in a moment."),
                )
            }
            PageError::Internal(message) => {
                tracing::error!(%message, "A Back Office page failed.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The Back Office failed on this request; the error is in its log.".to_owned(),
                )
            }
        };
        views::render(
            status,
            &ErrorPage {
                layout: Layout::new(heading, None, ""),
                heading: heading.to_owned(),
                message,
            },
        )
    }
}

/// Any path the Back Office does not have.
pub async fn not_found() -> PageError {
    PageError::NotFound("There is no such page in the Back Office.".to_owned())
}
