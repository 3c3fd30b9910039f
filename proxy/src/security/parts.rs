//! The parts of a request that are inspected, each as a named value: the path, every query
//! argument, every cookie, the chosen headers, and the body's fields — form fields, every
//! string of a JSON document (and its keys), the text parts of a multipart form. Form and
//! query values are decoded once here as their format says (`+` is a space); what further
//! encoding an attacker stacked on top is `decode`'s business.

use std::borrow::Cow;

/// Where in the request a value was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    Path,
    Query,
    Cookie,
    Header,
    Body,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::Query => "query",
            Location::Cookie => "cookie",
            Location::Header => "header",
            Location::Body => "body",
        }
    }
}

/// One inspected value: where it was, under which name (argument, cookie, header, JSON
/// path), and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub location: Location,
    pub name: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

impl Part<'_> {
    fn into_owned(self) -> Part<'static> {
        Part {
            location: self.location,
            name: Cow::Owned(self.name.into_owned()),
            value: Cow::Owned(self.value.into_owned()),
        }
    }
}

/// The request as the inspection sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The path as sent, percent-encoded.
    pub path: &'a str,
    /// The query as sent, without `?`.
    pub query: Option<&'a str>,
    /// The headers to inspect (chosen by the caller), cookies included.
    pub headers: &'a [(&'a str, &'a str)],
    pub content_type: Option<&'a str>,
    /// As much of the body as is inspected.
    pub body: &'a [u8],
}

/// Bounds on what one request costs to inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartLimits {
    /// Values longer than this are inspected up to it.
    pub max_value_bytes: usize,
    /// Parts after this many are not inspected.
    pub max_parts: usize,
    /// JSON nesting deeper than this is not followed.
    pub max_json_depth: usize,
    /// How much of a body is held back and read; the rest passes uninspected.
    pub max_body_bytes: usize,
}

impl Default for PartLimits {
    fn default() -> PartLimits {
        PartLimits {
            max_value_bytes: 8 * 1024,
            max_parts: 512,
            max_json_depth: 32,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Why a body could not be read as its type says; the caller's policy decides what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Json,
    Multipart,
}

/// Every inspected part of `request`, and whether its body was malformed (then the body is
/// inspected as plain text instead, so nothing in it goes unread).
pub fn parts<'a>(request: &Request<'a>, limits: &PartLimits) -> (Vec<Part<'a>>, Option<Malformed>) {
    let mut found = Vec::new();
    let bounded = |text: Cow<'a, str>| bound(text, limits.max_value_bytes);
    found.push(Part {
        location: Location::Path,
        name: Cow::Borrowed(""),
        value: bounded(percent_decoded(request.path, false)),
    });
    if let Some(query) = request.query {
        form_fields(query, Location::Query, &mut found, limits);
    }
    for (name, value) in request.headers {
        if name.eq_ignore_ascii_case("cookie") {
            for cookie in value.split(';') {
                let (name, value) = cookie.split_once('=').unwrap_or(("", cookie));
                let name = name.trim();
                if !is_plain_name(name) {
                    found.push(Part {
                        location: Location::Cookie,
                        name: Cow::Borrowed(name),
                        value: bounded(percent_decoded(name, false)),
                    });
                }
                found.push(Part {
                    location: Location::Cookie,
                    name: Cow::Borrowed(name),
                    value: bounded(percent_decoded(value.trim(), false)),
                });
            }
        } else {
            found.push(Part {
                location: Location::Header,
                name: Cow::Borrowed(name),
                value: bounded(Cow::Borrowed(value)),
            });
        }
    }
    let malformed = body_parts(request, &mut found, limits);
    found.truncate(limits.max_parts);
    (found, malformed)
}

fn body_parts<'a>(
    request: &Request<'a>,
    found: &mut Vec<Part<'a>>,
    limits: &PartLimits,
) -> Option<Malformed> {
    if request.body.is_empty() {
        return None;
    }
    let media = request
        .content_type
        .and_then(|ct| ct.split(';').next())
        .map(|media| media.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let body = Body {
        media: &media,
        content_type: request.content_type,
    };
    match std::str::from_utf8(request.body) {
        // The usual case: every value borrows from the body.
        Ok(text) => body.read(text, true, found, limits),
        Err(_) => {
            // Repaired text lives here only, so its values are copied out, within what is
            // left of the bound on parts.
            let text = String::from_utf8_lossy(request.body);
            let left = PartLimits {
                max_parts: limits.max_parts.saturating_sub(found.len()),
                ..*limits
            };
            let mut own = Vec::new();
            let malformed = body.read(&text, false, &mut own, &left);
            found.extend(
                own.into_iter()
                    .map(|part| -> Part<'a> { part.into_owned() }),
            );
            malformed
        }
    }
}

/// What says how a body is read.
struct Body<'r> {
    /// The media type, lower-case, without parameters.
    media: &'r str,
    content_type: Option<&'r str>,
}

impl Body<'_> {
    /// The parts of the body `text` (`utf8`: as sent, not repaired).
    fn read<'t>(
        &self,
        text: &'t str,
        utf8: bool,
        found: &mut Vec<Part<'t>>,
        limits: &PartLimits,
    ) -> Option<Malformed> {
        let whole_body = |found: &mut Vec<Part<'t>>| {
            found.push(Part {
                location: Location::Body,
                name: Cow::Borrowed(""),
                value: bound(Cow::Borrowed(text), limits.max_value_bytes),
            });
        };
        if utf8 && self.media == "application/x-www-form-urlencoded" {
            form_fields(text, Location::Body, found, limits);
            None
        } else if self.media == "application/json" || self.media.ends_with("+json") {
            if json_strings(text, found, limits) {
                None
            } else {
                whole_body(found);
                Some(Malformed::Json)
            }
        } else if self.media == "multipart/form-data" {
            match self.content_type.and_then(boundary) {
                Some(boundary) if multipart_fields(text, boundary, found, limits) => None,
                _ => {
                    whole_body(found);
                    Some(Malformed::Multipart)
                }
            }
        } else {
            whole_body(found);
            None
        }
    }
}

fn form_fields<'a>(
    encoded: &'a str,
    location: Location,
    found: &mut Vec<Part<'a>>,
    limits: &PartLimits,
) {
    for field in encoded.split('&').filter(|field| !field.is_empty()) {
        let (name, value) = field.split_once('=').unwrap_or((field, ""));
        let name = percent_decoded(name, true);
        if !is_plain_name(&name) {
            found.push(Part {
                location,
                name: name.clone(),
                value: bound(name.clone(), limits.max_value_bytes),
            });
        }
        found.push(Part {
            location,
            name,
            value: bound(percent_decoded(value, true), limits.max_value_bytes),
        });
        if found.len() >= limits.max_parts {
            return;
        }
    }
}

/// Every string of the JSON document `text`, keys included, named by its path (`a.b[2]`), in
/// the order of the document; false (and nothing added) when `text` is not JSON. The document
/// is walked as it is parsed, without building it: strings without escapes are borrowed from
/// the body, and a member's path is built in one buffer.
fn json_strings<'t>(text: &'t str, found: &mut Vec<Part<'t>>, limits: &PartLimits) -> bool {
    use serde::de::DeserializeSeed;

    let before = found.len();
    let mut path = String::new();
    let walk = JsonWalk {
        path: &mut path,
        depth: 0,
        found,
        limits,
    };
    let mut document = serde_json::Deserializer::from_str(text);
    let read = walk
        .deserialize(&mut document)
        .and_then(|()| document.end());
    if read.is_err() {
        found.truncate(before);
        return false;
    }
    true
}

/// One value of a JSON document being walked: where it is and how deep.
struct JsonWalk<'w, 't> {
    path: &'w mut String,
    depth: usize,
    found: &'w mut Vec<Part<'t>>,
    limits: &'w PartLimits,
}

impl<'t> JsonWalk<'_, 't> {
    /// Whether this value is read: not deeper than the bound, and parts still wanted. The
    /// rest of the document is parsed all the same, so that a broken one is known as such.
    fn reads(&self) -> bool {
        self.depth <= self.limits.max_json_depth && self.found.len() < self.limits.max_parts
    }

    fn child(&mut self) -> JsonWalk<'_, 't> {
        JsonWalk {
            path: self.path,
            depth: self.depth + 1,
            found: self.found,
            limits: self.limits,
        }
    }

    fn string(self, text: Cow<'t, str>) {
        if self.reads() {
            self.found.push(Part {
                location: Location::Body,
                name: Cow::Owned(self.path.clone()),
                value: bound(text, self.limits.max_value_bytes),
            });
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for JsonWalk<'_, 'de> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, document: D) -> Result<(), D::Error> {
        document.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonWalk<'_, 'de> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<(), E> {
        self.string(Cow::Borrowed(text));
        Ok(())
    }

    fn visit_str<E>(self, text: &str) -> Result<(), E> {
        self.string(Cow::Owned(text.to_owned()));
        Ok(())
    }

    fn visit_string<E>(self, text: String) -> Result<(), E> {
        self.string(Cow::Owned(text));
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut items: A) -> Result<(), A::Error> {
        let reads = self.reads();
        let at = self.path.len();
        for index in 0.. {
            if reads {
                self.path.push('[');
                push_number(self.path, index);
                self.path.push(']');
            }
            let item = items.next_element_seed(self.child())?;
            self.path.truncate(at);
            if item.is_none() {
                break;
            }
        }
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut members: A) -> Result<(), A::Error> {
        let reads = self.reads();
        let at = self.path.len();
        while let Some(key) = members.next_key_seed(JsonKey)? {
            if reads {
                if at > 0 {
                    self.path.push('.');
                }
                self.path.push_str(&key);
                // A key is as much the sender's text as a value (`{"1' or '1'='1": 1}`).
                if !key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    self.found.push(Part {
                        location: Location::Body,
                        name: Cow::Owned(self.path.clone()),
                        value: bound(key, self.limits.max_value_bytes),
                    });
                }
            }
            members.next_value_seed(self.child())?;
            self.path.truncate(at);
        }
        Ok(())
    }
}

/// `number` in decimal at the end of `text`, without the formatting machinery: paths are built
/// for every array element.
fn push_number(text: &mut String, number: usize) {
    if number >= 10 {
        push_number(text, number / 10);
    }
    text.push(char::from(b'0' + (number % 10) as u8));
}

/// A member name of a JSON object, borrowed from the body when it has no escapes.
struct JsonKey;

impl<'de> serde::de::DeserializeSeed<'de> for JsonKey {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, key: D) -> Result<Cow<'de, str>, D::Error> {
        key.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonKey {
    type Value = Cow<'de, str>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(key.to_owned()))
    }

    fn visit_string<E>(self, key: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(key))
    }
}

/// The boundary parameter of a multipart media type.
fn boundary(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"'))
            .filter(|boundary| !boundary.is_empty())
    })
}

/// The text fields of a multipart form (file contents included: uploads are text here, CSV
/// imports); false when the body is not delimited by `boundary` as it must be.
fn multipart_fields<'t>(
    text: &'t str,
    boundary: &str,
    found: &mut Vec<Part<'t>>,
    limits: &PartLimits,
) -> bool {
    let delimiter = format!("--{boundary}");
    let mut sections = text.split(delimiter.as_str());
    // Before the first delimiter: the preamble, ignored. No delimiter at all: malformed.
    if sections.next().is_none() || !text.contains(&delimiter) {
        return false;
    }
    for section in sections {
        if section.starts_with("--") {
            return true;
        }
        let section = section.strip_prefix("\r\n").unwrap_or(section);
        let Some((head, content)) = section.split_once("\r\n\r\n") else {
            return false;
        };
        let disposition = head
            .lines()
            .find(|line| {
                line.to_ascii_lowercase()
                    .starts_with("content-disposition:")
            })
            .unwrap_or("");
        let parameter = |key: &str| {
            disposition.split(';').find_map(|p| {
                let (name, value) = p.split_once('=')?;
                (name.trim().eq_ignore_ascii_case(key))
                    .then(|| value.trim().trim_matches('"').to_owned())
            })
        };
        let name = parameter("name").unwrap_or_default();
        if let Some(filename) = parameter("filename") {
            found.push(Part {
                location: Location::Body,
                name: Cow::Owned(format!("{name}.filename")),
                value: bound(Cow::Owned(filename), limits.max_value_bytes),
            });
        }
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        found.push(Part {
            location: Location::Body,
            name: Cow::Owned(name),
            value: bound(Cow::Borrowed(content), limits.max_value_bytes),
        });
        if found.len() >= limits.max_parts {
            return true;
        }
    }
    // A form cut off before its closing delimiter is still read for what it holds.
    true
}

/// Short names like `radius`, `evses[0].uid` or `session_id` carry nothing to inspect; any
/// other name is read as a value too (attacks ride in argument and cookie names as well).
fn is_plain_name(name: &str) -> bool {
    name.len() <= 12
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']'))
}

/// One round of percent-decoding (and `+` as a space in form encoding), lossy on bytes that
/// are not UTF-8.
fn percent_decoded(text: &str, form: bool) -> Cow<'_, str> {
    if !(text.contains('%') || form && text.contains('+')) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if form => out.push(b' '),
            b'%' if bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit) =>
            {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(bytes[i + 1]) << 4 | hex(bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn bound(text: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match text {
        Cow::Borrowed(text) => Cow::Borrowed(&text[..end]),
        Cow::Owned(mut text) => {
            text.truncate(end);
            Cow::Owned(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(request: Request<'_>) -> Vec<(Location, String, String)> {
        let (found, _) = parts(&request, &PartLimits::default());
        found
            .into_iter()
            .map(|part| {
                (
                    part.location,
                    part.name.into_owned(),
                    part.value.into_owned(),
                )
            })
            .collect()
    }

    fn request<'a>(content_type: Option<&'a str>, body: &'a str) -> Request<'a> {
        Request {
            path: "/api/v1/locations",
            query: None,
            headers: &[],
            content_type,
            body: body.as_bytes(),
        }
    }

    #[test]
    fn query_cookies_and_headers_are_named_values() {
        let headers = [
            ("Cookie", "session=abc; theme=dark%20mode"),
            ("User-Agent", "curl/8"),
        ];
        let found = values(Request {
            path: "/charger/ES%2AVLT%2AE1",
            query: Some("q=O%27Brien+street&empty&radius=5"),
            headers: &headers,
            content_type: None,
            body: b"",
        });
        assert_eq!(
            found,
            [
                (
                    Location::Path,
                    String::new(),
                    "/charger/ES*VLT*E1".to_owned()
                ),
                (Location::Query, "q".to_owned(), "O'Brien street".to_owned()),
                (Location::Query, "empty".to_owned(), String::new()),
                (Location::Query, "radius".to_owned(), "5".to_owned()),
                (Location::Cookie, "session".to_owned(), "abc".to_owned()),
                (Location::Cookie, "theme".to_owned(), "dark mode".to_owned()),
                (
                    Location::Header,
                    "User-Agent".to_owned(),
                    "curl/8".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn json_strings_and_odd_keys_are_read_at_any_depth() {
        let found = values(request(
            Some("application/json; charset=utf-8"),
            r#"{"name": "Ana", "evses": [{"uid": "E1", "power": 22}], "1' or '1'='1": true}"#,
        ));
        let bodies: Vec<(String, String)> = found
            .into_iter()
            .filter(|(location, _, _)| *location == Location::Body)
            .map(|(_, name, value)| (name, value))
            .collect();
        assert!(bodies.contains(&("name".to_owned(), "Ana".to_owned())));
        assert!(bodies.contains(&("evses[0].uid".to_owned(), "E1".to_owned())));
        assert!(bodies.contains(&("1' or '1'='1".to_owned(), "1' or '1'='1".to_owned())));
    }

    #[test]
    fn json_strings_come_in_document_order_with_every_duplicate() {
        let found = values(request(
            Some("application/json"),
            r#"{"b": "x", "a": ["\u0027 or 1", {"k y": 2}], "b": "again"}"#,
        ));
        let bodies: Vec<(&str, &str)> = found
            .iter()
            .filter(|(location, _, _)| *location == Location::Body)
            .map(|(_, name, value)| (name.as_str(), value.as_str()))
            .collect();
        assert_eq!(
            bodies,
            [
                ("b", "x"),
                ("a[0]", "' or 1"),
                ("a[1].k y", "k y"),
                ("b", "again"),
            ]
        );
    }

    #[test]
    fn a_body_is_json_exactly_when_serde_json_reads_it() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for document in [
            r#"{"a": 1e400}"#,
            r#"{"a": -0.0, "b": 18446744073709551616, "c": null, "d": true}"#,
            "[1, 2",
            r#"{"a": 1} x"#,
            r#""\ud800""#,
            r#"{"a": "b",}"#,
            r#"  "top"  "#,
            "",
            deep.as_str(),
        ] {
            let mut found = Vec::new();
            let read = json_strings(document, &mut found, &PartLimits::default());
            let serde = serde_json::from_str::<serde_json::Value>(document).is_ok();
            assert_eq!(read, serde, "{document:?}");
            assert!(read || found.is_empty());
        }
        let (found, malformed) = parts(
            &request(Some("application/json"), "\u{0}"),
            &PartLimits::default(),
        );
        assert_eq!(malformed, Some(Malformed::Json));
        assert_eq!(found.len(), 2);
        let body = b"{\"name\": \"caf\xe9\"}";
        let (found, malformed) = parts(
            &Request {
                body,
                ..request(Some("application/json"), "")
            },
            &PartLimits::default(),
        );
        assert_eq!(malformed, None);
        assert_eq!(found[1].value, "caf\u{fffd}", "repaired, then read");
    }

    #[test]
    fn a_malformed_json_body_is_read_as_text_and_reported() {
        let (found, malformed) = parts(
            &request(Some("application/json"), "{\"a\": \"<script>"),
            &PartLimits::default(),
        );
        assert_eq!(malformed, Some(Malformed::Json));
        assert_eq!(
            found.last().map(|p| p.value.as_ref()),
            Some("{\"a\": \"<script>")
        );
    }

    #[test]
    fn multipart_fields_and_file_names_are_read() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nplug stuck\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"chargers.csv\"\r\nContent-Type: text/csv\r\n\r\nid,name\r\nE1,Main St\r\n--XyZ--\r\n";
        let found = values(request(Some("multipart/form-data; boundary=XyZ"), body));
        let bodies: Vec<(&str, &str)> = found
            .iter()
            .filter(|(location, _, _)| *location == Location::Body)
            .map(|(_, name, value)| (name.as_str(), value.as_str()))
            .collect();
        assert_eq!(
            bodies,
            [
                ("note", "plug stuck"),
                ("file.filename", "chargers.csv"),
                ("file", "id,name\r\nE1,Main St"),
            ]
        );
        let (_, malformed) = parts(
            &request(Some("multipart/form-data; boundary=Other"), body),
            &PartLimits::default(),
        );
        assert_eq!(malformed, Some(Malformed::Multipart));
    }

    #[test]
    fn limits_bound_values_and_parts() {
        let limits = PartLimits {
            max_value_bytes: 4,
            max_parts: 3,
            max_json_depth: 1,
            max_body_bytes: 64,
        };
        let (found, _) = parts(
            &Request {
                path: "/",
                query: Some("a=123456&b=2&c=3&d=4"),
                headers: &[],
                content_type: None,
                body: b"",
            },
            &limits,
        );
        assert_eq!(found.len(), 3);
        assert_eq!(found[1].value, "1234");
        let (found, _) = parts(
            &request(
                Some("application/json"),
                r#"{"a": {"b": {"c": "deep"}}, "e": "ñññ"}"#,
            ),
            &limits,
        );
        assert!(found.iter().all(|p| p.value != "deep"));
        assert!(
            found.iter().any(|p| p.value == "ññ"),
            "cut on a character boundary"
        );
    }
}
