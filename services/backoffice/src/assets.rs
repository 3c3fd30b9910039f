//! The stylesheet and the script, served by the Back Office itself under
//! `/backoffice/static/` with their content hash in the name, so that they can be cached for
//! a year (`immutable`) and a new release is fetched at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::PageError;

struct Asset {
    url: String,
    name: String,
    body: &'static str,
    content_type: &'static str,
}

fn asset(stem: &str, extension: &str, body: &'static str, content_type: &'static str) -> Asset {
    let hash = hex::encode(&Sha256::digest(body.as_bytes())[..6]);
    let name = format!("{stem}.{hash}.{extension}");
    Asset {
        url: format!("/backoffice/static/{name}"),
        name,
        body,
        content_type,
    }
}

static CSS: LazyLock<Asset> = LazyLock::new(|| {
    asset(
        "backoffice",
        "css",
        include_str!("../static/backoffice.css"),
        "text/css; charset=utf-8",
    )
});
static JS: LazyLock<Asset> = LazyLock::new(|| {
    asset(
        "backoffice",
        "js",
        include_str!("../static/backoffice.js"),
        "text/javascript; charset=utf-8",
    )
});

pub fn css_url() -> &'static str {
    &CSS.url
}

pub fn js_url() -> &'static str {
    &JS.url
}

/// `GET /backoffice/static/{file}`: an asset by its hashed name.
pub async fn serve(Path(file): Path<String>) -> Result<Response, PageError> {
    let found = [&*CSS, &*JS].into_iter().find(|asset| asset.name == file);
    let Some(asset) = found else {
        return Err(PageError::NotFound(
            "No such file; the page that linked it may be from an older release, reload it."
                .to_owned(),
        ));
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.body,
    )
        .into_response())
}
