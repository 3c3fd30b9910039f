//! What a file is (`Content-Type` from its extension), whether it is worth compressing, and
//! how long it may be cached (`Cache-Control` by path prefix).

use std::path::Path;

use http::HeaderValue;

/// Files smaller than this are sent as they are: the gzip or brotli framing and the lost
/// `Content-Length` cost more than the bytes saved.
pub const MIN_COMPRESS_SIZE: u64 = 1024;

/// The `Content-Type` of a file, with `charset=utf-8` on text so that browsers do not guess.
pub fn content_type(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let essence = mime.essence_str();
    if is_text(essence) {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_string()
    }
}

/// Text types: what gets a charset and what compression pays off on. Images other than SVG,
/// fonts, archives and `application/wasm` are left alone (binary or compressed already).
pub fn is_text(essence: &str) -> bool {
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    match kind {
        "text" => true,
        "application" => {
            matches!(subtype, "javascript" | "json" | "xml" | "xhtml+xml")
                || subtype.ends_with("+json")
                || subtype.ends_with("+xml")
        }
        "image" => subtype == "svg+xml",
        _ => false,
    }
}

/// Whether a `Content-Type` (as [`content_type`] builds it) is compressible text.
pub fn compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    is_text(essence)
}

/// The `Cache-Control` of the longest prefix of `path` in `rules` (sorted longest first), or
/// `default`.
pub fn cache_control<'a>(
    rules: &'a [(String, HeaderValue)],
    default: Option<&'a HeaderValue>,
    path: &str,
) -> Option<&'a HeaderValue> {
    rules
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix.as_str()))
        .map(|(_, value)| value)
        .or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_by_extension() {
        let cases = [
            ("index.html", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("module.mjs", "application/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("data.json", "application/json; charset=utf-8"),
            (
                "site.webmanifest",
                "application/manifest+json; charset=utf-8",
            ),
            ("logo.svg", "image/svg+xml; charset=utf-8"),
            ("feed.xml", "text/xml; charset=utf-8"),
            ("LOGO.PNG", "image/png"),
            ("photo.jpg", "image/jpeg"),
            ("font.woff2", "font/woff2"),
            ("app.wasm", "application/wasm"),
            ("archive.tar.gz", "application/gzip"),
            ("README", "application/octet-stream"),
            ("file.unknownext", "application/octet-stream"),
        ];
        for (name, expected) in cases {
            assert_eq!(content_type(Path::new(name)), expected, "{name}");
        }
    }

    #[test]
    fn only_text_is_compressible() {
        for yes in [
            "text/html; charset=utf-8",
            "text/css; charset=utf-8",
            "application/json; charset=utf-8",
            "application/javascript; charset=utf-8",
            "image/svg+xml; charset=utf-8",
            "application/rss+xml",
        ] {
            assert!(compressible(yes), "{yes}");
        }
        for no in [
            "image/png",
            "font/woff2",
            "application/wasm",
            "application/gzip",
            "application/octet-stream",
            "nonsense",
        ] {
            assert!(!compressible(no), "{no}");
        }
    }

    #[test]
    fn cache_control_takes_the_longest_prefix() {
        let value = |text: &'static str| HeaderValue::from_static(text);
        // As the configuration hands them over: longest first.
        let rules = vec![
            ("/assets/fonts/".to_string(), value("fonts")),
            ("/assets/".to_string(), value("assets")),
            ("/a".to_string(), value("a")),
        ];
        let default = value("default");
        let cases = [
            ("/assets/fonts/x.woff2", Some("fonts")),
            ("/assets/app.js", Some("assets")),
            ("/assets", Some("a")),
            ("/about.html", Some("a")),
            ("/index.html", Some("default")),
            ("/", Some("default")),
        ];
        for (path, expected) in cases {
            let got = cache_control(&rules, Some(&default), path);
            assert_eq!(got.and_then(|v| v.to_str().ok()), expected, "{path}");
        }
        assert_eq!(cache_control(&rules, None, "/index.html"), None);
    }
}
