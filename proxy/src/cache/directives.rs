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
    /// `CDN-Cache-Control`, RFC 9213 §2.1) that is present, not empty and a valid Structured
    /// Field dictionary; `None` when none is, and then the ordinary `Cache-Control` applies.
    pub fn targeted(headers: &HeaderMap, fields: &[HeaderName]) -> Option<Directives> {
        fields.iter().find_map(|field| {
            let lines: Vec<&str> = headers
                .get_all(field)
                .iter()
                .map(|value| value.to_str().ok())
                .collect::<Option<_>>()?;
            let text = lines.join(", ");
            if text.trim().is_empty() {
                return None;
            }
            let dictionary = sfv::Parser::parse_dictionary(text.as_bytes()).ok()?;
            let mut directives = Directives::default();
            for (name, member) in dictionary {
                if let Some(argument) = structured_argument(&name, member) {
                    directives.apply(&name, argument);
                }
            }
            Some(directives)
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

/// A targeted field's member as the argument `apply` takes: `Some(None)` for a bare
/// directive, `Some(Some(text))` for one with a value. `None` for a value of the wrong type
/// (`max-age="60"`, `no-store=5`), which leaves the directive out (RFC 9213 §2.1).
fn structured_argument(name: &str, member: sfv::ListEntry) -> Option<Option<String>> {
    use sfv::{BareItem, ListEntry};
    let takes_seconds = matches!(
        name,
        "max-age" | "s-maxage" | "stale-while-revalidate" | "stale-if-error"
    );
    let takes_fields = matches!(name, "private" | "no-cache");
    match member {
        ListEntry::Item(item) => match item.bare_item {
            BareItem::Boolean(true) if !takes_seconds => Some(None),
            BareItem::Integer(seconds) if takes_seconds => Some(Some(seconds.to_string())),
            BareItem::String(names) | BareItem::Token(names) if takes_fields => Some(Some(names)),
            _ => None,
        },
        ListEntry::InnerList(list) if takes_fields => {
            let names: Option<Vec<String>> = list
                .items
                .into_iter()
                .map(|item| match item.bare_item {
                    BareItem::String(name) | BareItem::Token(name) => Some(name),
                    _ => None,
                })
                .collect();
            Some(Some(names?.join(", ")))
        }
        ListEntry::InnerList(_) => None,
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

    fn targeted(lines: &[&str]) -> Option<Directives> {
        let name = HeaderName::from_static("cdn-cache-control");
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(&name, HeaderValue::from_str(line).expect("value"));
        }
        Directives::targeted(&headers, &[name])
    }

    #[test]
    fn targeted_fields_are_structured_dictionaries() {
        let d = targeted(&[
            "max-age=600, stale-if-error=60",
            "private=(\"set-cookie\" x-id)",
        ])
        .expect("a valid dictionary");
        assert_eq!(d.max_age, Some(Seconds::Valid(600)));
        assert_eq!(d.stale_if_error, Some(Seconds::Valid(60)));
        assert_eq!(
            d.private,
            Some(vec!["set-cookie".to_owned(), "x-id".to_owned()])
        );
        assert!(targeted(&["no-store"]).expect("valid").no_store);
        // A value of the wrong type leaves out that directive only.
        let d = targeted(&["max-age=\"600\", no-store=5, public"]).expect("valid");
        assert_eq!(
            d,
            Directives {
                public: true,
                ..Directives::default()
            }
        );
        assert_eq!(
            targeted(&["max-age=-5"]).expect("valid").max_age,
            Some(Seconds::Invalid)
        );
        // Not a dictionary, or empty: the field is ignored as a whole.
        assert_eq!(targeted(&["max-age=600, &&&"]), None);
        assert_eq!(targeted(&["Max-Age=600"]), None);
        assert_eq!(targeted(&[""]), None);
        assert_eq!(targeted(&[]), None);
    }
}
