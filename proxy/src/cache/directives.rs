//! Cache-Control directives (RFC 9111 §5.2) as a type.
//!
//! Names are case-insensitive; arguments may be tokens or quoted strings; several
//! Cache-Control fields, or one with commas, combine. A delta-seconds argument that does not
//! parse is kept as `Invalid`, because the RFC gives it a meaning of its own (a response with
//! invalid freshness information is stale), and an overflowing one is the largest value (§1.2.2).

use http::header::{CACHE_CONTROL, PRAGMA};
use http::{HeaderMap, HeaderName};

/// The largest delta-seconds a cache needs to tell apart (§1.2.2: 2^31).
pub const DELTA_SECONDS_MAX: u64 = 2_147_483_648;

/// A delta-seconds argument as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seconds {
    Valid(u64),
    /// Missing or not a non-negative integer.
    Invalid,
}

/// The Cache-Control directives of one message, request or response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    pub max_age: Option<Seconds>,
    pub s_maxage: Option<Seconds>,
    pub max_stale: Option<Option<Seconds>>,
    pub min_fresh: Option<Seconds>,
    pub stale_while_revalidate: Option<Seconds>,
    pub stale_if_error: Option<Seconds>,
    pub no_store: bool,
    /// Unqualified `no-cache`, or the field names of a qualified one.
    pub no_cache: Option<Vec<String>>,
    pub private: Option<Vec<String>>,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub must_understand: bool,
    pub no_transform: bool,
    pub immutable: bool,
    pub only_if_cached: bool,
}

impl Directives {
    /// The directives of every Cache-Control field in `headers`. A request without
    /// Cache-Control but with `Pragma: no-cache` is read as `no-cache` (RFC 9111 §5.4).
    pub fn from_headers(headers: &HeaderMap) -> Directives {
        let mut directives = Directives::default();
        let mut any = false;
        for value in headers.get_all(CACHE_CONTROL) {
            let Ok(text) = value.to_str() else { continue };
            any = true;
            for (name, argument) in split_directives(text) {
                directives.apply(&name, argument);
            }
        }
        if !any
            && headers
                .get_all(PRAGMA)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .any(|text| {
                    text.split(',')
                        .any(|part| part.trim().eq_ignore_ascii_case("no-cache"))
                })
        {
            directives.no_cache = Some(Vec::new());
        }
        directives
    }

    /// The directives of the first of `fields` (targeted Cache-Control fields such as
    /// `CDN-Cache-Control`, RFC 9213 §2.1) that holds any; `None` when none does, and then the
    /// ordinary `Cache-Control` applies.
    pub fn targeted(headers: &HeaderMap, fields: &[HeaderName]) -> Option<Directives> {
        fields.iter().find_map(|field| {
            let mut directives = Directives::default();
            let mut any = false;
            for value in headers.get_all(field) {
                let Ok(text) = value.to_str() else { continue };
                for (name, argument) in split_directives(text) {
                    any = true;
                    directives.apply(&name, argument);
                }
            }
            any.then_some(directives)
        })
    }

    fn apply(&mut self, name: &str, argument: Option<String>) {
        let seconds = || seconds(argument.as_deref());
        let fields = || field_names(argument.as_deref());
        match name {
            "max-age" => self.max_age = Some(seconds()),
            "s-maxage" => self.s_maxage = Some(seconds()),
            "max-stale" => self.max_stale = Some(argument.as_deref().map(seconds_of)),
            "min-fresh" => self.min_fresh = Some(seconds()),
            "stale-while-revalidate" => self.stale_while_revalidate = Some(seconds()),
            "stale-if-error" => self.stale_if_error = Some(seconds()),
            "no-store" => self.no_store = true,
            "no-cache" => merge_fields(&mut self.no_cache, fields()),
            "private" => merge_fields(&mut self.private, fields()),
            "public" => self.public = true,
            "must-revalidate" => self.must_revalidate = true,
            "proxy-revalidate" => self.proxy_revalidate = true,
            "must-understand" => self.must_understand = true,
            "no-transform" => self.no_transform = true,
            "immutable" => self.immutable = true,
            "only-if-cached" => self.only_if_cached = true,
            // Unknown directives are ignored (§5.2.3).
            _ => {}
        }
    }
}

/// An unqualified directive (no field names) covers the whole message and wins over
/// qualified ones.
fn merge_fields(current: &mut Option<Vec<String>>, new: Vec<String>) {
    match current {
        None => *current = Some(new),
        Some(existing) if existing.is_empty() => {}
        Some(_) if new.is_empty() => *current = Some(Vec::new()),
        Some(existing) => existing.extend(new),
    }
}

fn seconds(argument: Option<&str>) -> Seconds {
    argument.map_or(Seconds::Invalid, seconds_of)
}

fn seconds_of(text: &str) -> Seconds {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Seconds::Invalid;
    }
    Seconds::Valid(
        text.parse::<u64>()
            .map_or(DELTA_SECONDS_MAX, |value| value.min(DELTA_SECONDS_MAX)),
    )
}

/// The lowercase field names of a `no-cache="a, b"` or `private="a"` argument.
fn field_names(argument: Option<&str>) -> Vec<String> {
    argument
        .map(|text| {
            text.split(',')
                .map(|name| name.trim().to_ascii_lowercase())
                .filter(|name| !name.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// `name[=token|"quoted"]` items separated by commas, names lowercased; commas inside quoted
/// strings do not split.
fn split_directives(text: &str) -> Vec<(String, Option<String>)> {
    let mut items = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return items;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            name.push(c.to_ascii_lowercase());
            chars.next();
        }
        let name = name.trim().to_owned();
        let mut argument = None;
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
                while chars.peek().is_some_and(|c| *c != ',') {
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                value = value.trim().to_owned();
            }
            argument = Some(value);
        }
        if !name.is_empty() {
            items.push((name, argument));
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn read(values: &[&str]) -> Directives {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CACHE_CONTROL, HeaderValue::from_str(value).expect("header"));
        }
        Directives::from_headers(&headers)
    }

    #[test]
    fn names_are_case_insensitive_and_fields_combine() {
        let d = read(&["Max-Age=60, PUBLIC", "s-maxage=\"120\""]);
        assert_eq!(d.max_age, Some(Seconds::Valid(60)));
        assert_eq!(d.s_maxage, Some(Seconds::Valid(120)));
        assert!(d.public);
    }

    #[test]
    fn bad_and_huge_delta_seconds() {
        assert_eq!(read(&["max-age=abc"]).max_age, Some(Seconds::Invalid));
        assert_eq!(read(&["max-age=-1"]).max_age, Some(Seconds::Invalid));
        assert_eq!(read(&["max-age"]).max_age, Some(Seconds::Invalid));
        assert_eq!(
            read(&["max-age=99999999999999999999999"]).max_age,
            Some(Seconds::Valid(DELTA_SECONDS_MAX))
        );
    }

    #[test]
    fn qualified_and_unqualified_field_lists() {
        let d = read(&["private=\"Set-Cookie, X-User\", no-cache=\"x-a\""]);
        assert_eq!(
            d.private,
            Some(vec!["set-cookie".to_owned(), "x-user".to_owned()])
        );
        assert_eq!(d.no_cache, Some(vec!["x-a".to_owned()]));
        let d = read(&["no-cache=\"x-a\"", "no-cache"]);
        assert_eq!(
            d.no_cache,
            Some(Vec::new()),
            "unqualified covers everything"
        );
    }

    #[test]
    fn max_stale_with_and_without_a_limit() {
        assert_eq!(read(&["max-stale"]).max_stale, Some(None));
        assert_eq!(
            read(&["max-stale=30"]).max_stale,
            Some(Some(Seconds::Valid(30)))
        );
    }

    #[test]
    fn pragma_counts_only_without_cache_control() {
        let mut headers = HeaderMap::new();
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        assert_eq!(
            Directives::from_headers(&headers).no_cache,
            Some(Vec::new())
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
        assert_eq!(Directives::from_headers(&headers).no_cache, None);
    }

    #[test]
    fn unknown_directives_and_stray_commas_are_ignored() {
        let d = read(&[",, community=\"UCI\", , immutable ,"]);
        assert!(d.immutable);
        assert_eq!(
            d,
            Directives {
                immutable: true,
                ..Directives::default()
            }
        );
    }
}
