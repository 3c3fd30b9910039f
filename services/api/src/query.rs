//! Query strings: [`ApiQuery`] is `axum::extract::Query` whose rejection is a problem, and
//! the parsers here turn one parameter's text into a value or a field error naming it.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// A typed query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|err| {
                ApiError::Validation(vec![FieldError::new(
                    "query",
                    format!("the query string could not be read: {}", err.body_text()),
                )])
            })
    }
}

/// `true`/`false` (also `1`/`0`); absent is `false`.
pub fn flag(name: &str, raw: Option<&str>, errors: &mut Vec<FieldError>) -> bool {
    match raw.map(str::trim) {
        None => false,
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(_) => {
            errors.push(FieldError::new(name, "must be true or false"));
            false
        }
    }
}

/// A finite number within `min..=max`.
pub fn number(
    name: &str,
    raw: &str,
    min: f64,
    max: f64,
    errors: &mut Vec<FieldError>,
) -> Option<f64> {
    match raw.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && (min..=max).contains(&value) => Some(value),
        _ => {
            errors.push(FieldError::new(
                name,
                format!("must be a number from {min} to {max}"),
            ));
            None
        }
    }
}

/// A comma-separated list of exactly `count` finite numbers; `shape` says what is expected.
pub fn numbers(
    name: &str,
    raw: &str,
    count: usize,
    shape: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<f64>> {
    let values: Vec<Option<f64>> = raw
        .split(',')
        .map(|part| part.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect();
    if values.len() != count || values.iter().any(Option::is_none) {
        errors.push(FieldError::new(name, format!("must be {shape}")));
        return None;
    }
    Some(values.into_iter().flatten().collect())
}
