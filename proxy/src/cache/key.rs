//! Cache keys: which requests share a stored response.
//!
//! The primary key is built from a route's [`KeyTemplate`] — scheme, host, path and the query
//! parameters it names — normalised so that spellings of one URL meet: the host lowercased and
//! without its default port, percent-encodings of unreserved characters decoded and the rest
//! uppercased, query parameters sorted. The secondary key holds the request's values of the
//! response's `Vary` fields (RFC 9111 §4.1), with whitespace and letter case normalised where
//! they carry no meaning.

use http::{HeaderMap, HeaderName};

/// Which query parameters take part in the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryRule {
    /// Every parameter, sorted by name (then value): `?b=2&a=1` and `?a=1&b=2` meet.
    All,
    /// None: every query string of a path shares one entry.
    Ignore,
    /// Only these parameters, by exact name; the others (tracking parameters) are dropped.
    Only(Vec<String>),
}

/// What a route's cache key is made of (NGINX's `proxy_cache_key`, typed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    pub include_scheme: bool,
    pub include_host: bool,
    pub query: QueryRule,
    /// Request headers added to every key of the route, beyond what Vary asks.
    pub headers: Vec<HeaderName>,
}

impl Default for KeyTemplate {
    fn default() -> KeyTemplate {
        KeyTemplate {
            include_scheme: true,
            include_host: true,
            query: QueryRule::All,
            headers: Vec::new(),
        }
    }
}

/// The parts of a request a key is made of.
#[derive(Debug, Clone, Copy)]
pub struct RequestTarget<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The Host (or :authority), possibly with a port.
    pub host: &'a str,
    /// The path and query as received, such as `/a%7Eb?x=1`.
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
}

impl KeyTemplate {
    /// The primary key of `target`.
    pub fn primary(&self, target: &RequestTarget<'_>) -> String {
        let (path, query) = target
            .path_and_query
            .split_once('?')
            .unwrap_or((target.path_and_query, ""));
        let mut key = String::with_capacity(target.path_and_query.len() + 32);
        if self.include_scheme {
            key.push_str(&target.scheme.to_ascii_lowercase());
            key.push_str("://");
        }
        if self.include_host {
            key.push_str(&normal_host(target.scheme, target.host));
        }
        key.push_str(&normal_percent_encoding(if path.is_empty() {
            "/"
        } else {
            path
        }));
        let query = self.query_part(query);
        if !query.is_empty() {
            key.push('?');
            key.push_str(&query);
        }
        for name in &self.headers {
            key.push('\n');
            key.push_str(name.as_str());
            key.push(':');
            key.push_str(&field_value(target.headers, name));
        }
        key
    }

    fn query_part(&self, query: &str) -> String {
        if matches!(self.query, QueryRule::Ignore) || query.is_empty() {
            return String::new();
        }
        let mut pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (
                    normal_percent_encoding(name),
                    normal_percent_encoding(value),
                )
            })
            .filter(|(name, _)| match &self.query {
                QueryRule::Only(kept) => kept.iter().any(|kept| kept == name),
                _ => true,
            })
            .collect();
        pairs.sort();
        pairs
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// The secondary key: the request's values of each `vary` field, one line each.
pub fn variance(vary: &[HeaderName], headers: &HeaderMap) -> String {
    vary.iter()
        .map(|name| format!("{}:{}", name.as_str(), field_value(headers, name)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A field's lines joined as one list, whitespace around commas and at the ends removed;
/// content-negotiation fields, whose tokens are case-insensitive, lowercased.
fn field_value(headers: &HeaderMap, name: &HeaderName) -> String {
    let joined = headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect::<Vec<_>>()
        .join(",");
    let case_insensitive = matches!(
        name.as_str(),
        "accept" | "accept-encoding" | "accept-language" | "accept-charset"
    );
    if case_insensitive {
        joined.to_ascii_lowercase()
    } else {
        joined
    }
}

fn normal_host(scheme: &str, host: &str) -> String {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    };
    match host.strip_suffix(default_port) {
        Some(without_port) => without_port.to_owned(),
        None => host,
    }
}

/// Decodes `%XX` of unreserved characters (RFC 3986 §6.2.2.2) and uppercases the hex digits
/// of the others; anything else is kept as it is.
fn normal_percent_encoding(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[index + 1]), hex(bytes[index + 2]))
        {
            let byte = high * 16 + low;
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push(char::from(bytes[index + 1].to_ascii_uppercase()));
                out.push(char::from(bytes[index + 2].to_ascii_uppercase()));
            }
            index += 3;
            continue;
        }
        let next = text[index..].chars().next().unwrap_or('\u{fffd}');
        out.push(next);
        index += next.len_utf8();
    }
    out
}

fn hex(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use http::header::{ACCEPT_ENCODING, ACCEPT_LANGUAGE};

    use super::*;

    fn key(template: &KeyTemplate, scheme: &str, host: &str, path: &str) -> String {
        template.primary(&RequestTarget {
            scheme,
            host,
            path_and_query: path,
            headers: &HeaderMap::new(),
        })
    }

    #[test]
    fn spellings_of_one_url_meet() {
        let t = KeyTemplate::default();
        let a = key(&t, "https", "WWW.Example.com:443", "/a%7eb/%2f?b=2&a=1");
        let b = key(&t, "HTTPS", "www.example.com", "/a~b/%2F?a=1&b=2");
        assert_eq!(a, b);
        assert_eq!(a, "https://www.example.com/a~b/%2F?a=1&b=2");
        assert_ne!(
            key(&t, "http", "example.com:8080", "/"),
            key(&t, "http", "example.com", "/")
        );
    }

    #[test]
    fn query_rules() {
        let only = KeyTemplate {
            query: QueryRule::Only(vec!["page".into()]),
            ..KeyTemplate::default()
        };
        assert_eq!(
            key(&only, "http", "h", "/list?utm_source=x&page=2"),
            key(&only, "http", "h", "/list?page=2&fbclid=y")
        );
        let ignore = KeyTemplate {
            query: QueryRule::Ignore,
            ..KeyTemplate::default()
        };
        assert_eq!(key(&ignore, "http", "h", "/p?x=1"), "http://h/p");
        let bare = KeyTemplate {
            include_scheme: false,
            include_host: false,
            ..KeyTemplate::default()
        };
        assert_eq!(key(&bare, "http", "h", ""), "/");
    }

    #[test]
    fn variance_normalises_whitespace_and_negotiation_case() {
        let vary = [ACCEPT_ENCODING, ACCEPT_LANGUAGE];
        let mut one = HeaderMap::new();
        one.insert(ACCEPT_ENCODING, HeaderValue::from_static("GZIP ,  br"));
        let mut two = HeaderMap::new();
        two.append(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        two.append(ACCEPT_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(variance(&vary, &one), variance(&vary, &two));
        assert_eq!(
            variance(&vary, &one),
            "accept-encoding:gzip,br\naccept-language:"
        );
        let mut other = HeaderMap::new();
        other.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        assert_ne!(variance(&vary, &one), variance(&vary, &other));
    }

    #[test]
    fn route_headers_join_the_primary_key() {
        let t = KeyTemplate {
            headers: vec![HeaderName::from_static("x-device")],
            ..KeyTemplate::default()
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-device", HeaderValue::from_static("mobile"));
        let with = t.primary(&RequestTarget {
            scheme: "http",
            host: "h",
            path_and_query: "/",
            headers: &headers,
        });
        assert_eq!(with, "http://h/\nx-device:mobile");
    }

    #[test]
    fn broken_percent_signs_are_kept() {
        assert_eq!(normal_percent_encoding("/100%"), "/100%");
        assert_eq!(normal_percent_encoding("/a%zz%4"), "/a%zz%4");
        assert_eq!(normal_percent_encoding("/é%41"), "/éA");
    }
}
