//! What an inspected value says once the encodings an attacker hides behind are undone:
//! percent-encoding (repeatedly, for double encoding, and IIS's `%uXXXX`), HTML character
//! references, JavaScript and JSON escapes, full-width look-alikes of ASCII and control
//! characters. The detectors read the result, lower-cased; they never see the raw bytes, so
//! one rule covers every spelling.

use std::borrow::Cow;

/// How many rounds of percent-decoding are undone: `%2527` is `%27` is `'`.
const PERCENT_ROUNDS: usize = 3;

/// `value` decoded and lower-cased. Borrowed when nothing needed undoing; otherwise built
/// with one allocation when nothing needs decoding (only upper case, control or non-ASCII
/// characters), since most values that are not borrowed are codes and names in capitals.
pub fn normalize(value: &str) -> Cow<'_, str> {
    let needs_work = value
        .bytes()
        .any(|b| matches!(b, b'%' | b'&' | b'\\' | b'A'..=b'Z' | 0..=0x1f | 0x7f | 0x80..));
    if !needs_work {
        return Cow::Borrowed(value);
    }
    if !value.bytes().any(|b| matches!(b, b'%' | b'&' | b'\\')) {
        return Cow::Owned(folded(value));
    }
    let mut text = Cow::Borrowed(value);
    for _ in 0..PERCENT_ROUNDS {
        match percent_decode(&text) {
            Some(decoded) => text = Cow::Owned(decoded),
            None => break,
        }
    }
    // Twice: `&amp;lt;` is how markup looks once encoded for HTML inside XML or HTML.
    for _ in 0..2 {
        if !text.contains('&') {
            break;
        }
        text = Cow::Owned(html_references(&text));
    }
    if text.contains('\\') {
        text = Cow::Owned(escapes(&text));
    }
    match text {
        // Decoded text of plain ASCII is lower-cased where it is.
        Cow::Owned(mut text) if text.bytes().all(|b| b.is_ascii() && !is_dropped_control(b)) => {
            text.make_ascii_lowercase();
            Cow::Owned(text)
        }
        text => Cow::Owned(folded(&text)),
    }
}

/// `text` with every character folded (`fold_char`) and lower-cased. Runs of characters that
/// stay as they are are copied whole (`may_fold`), and lower-casing is done once at the end: the same as folding
/// and lower-casing each character, since lower-casing touches ASCII letters only.
fn folded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let run = i;
        while i < bytes.len() && !may_fold(bytes[i]) {
            i += 1;
        }
        out.push_str(&text[run..i]);
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        if let Some(c) = fold_char(c) {
            out.push(c);
        }
        i += c.len_utf8();
    }
    out.make_ascii_lowercase();
    out
}

/// Whether the character that starts with byte `b` (or goes on with it) may come out of
/// `fold_char` other than it went in: a control character, or the first byte of U+0080–U+00BF
/// (C1 controls, `¼`, `¾`), U+2000–U+2FFF (zero-width characters) or U+F000–U+FFFF (full-width
/// forms, the byte-order mark). Any other character is kept, so runs of them are copied whole.
fn may_fold(b: u8) -> bool {
    is_dropped_control(b) || matches!(b, 0xc2 | 0xe2 | 0xef)
}

/// An ASCII control character that `fold_char` drops (all but tab, line feed, carriage return).
fn is_dropped_control(b: u8) -> bool {
    matches!(b, 0..=0x08 | 0x0b | 0x0c | 0x0e..=0x1f | 0x7f)
}

/// One round of percent-decoding, or `None` when there was nothing to decode.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    if !bytes.contains(&b'%') {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut changed = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(byte) = hex_pair(bytes.get(i + 1..i + 3)) {
                out.push(byte);
                i += 3;
                changed = true;
                continue;
            }
            if matches!(bytes.get(i + 1), Some(b'u' | b'U'))
                && let Some(code) = hex_number(bytes.get(i + 2..i + 6))
            {
                let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                i += 6;
                changed = true;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    changed.then(|| String::from_utf8_lossy(&out).into_owned())
}

/// `&lt;`, `&#60;`, `&#x3c;` (the semicolon optional, as browsers accept) and the named
/// references that matter for markup and script.
fn html_references(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match reference(after) {
            Some((c, used)) => {
                out.push(c);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character a reference (the text after `&`) stands for, and how many bytes it used.
fn reference(after: &str) -> Option<(char, usize)> {
    let bytes = after.as_bytes();
    let with_semicolon = |used: usize| used + usize::from(bytes.get(used) == Some(&b';'));
    if let Some(number) = after.strip_prefix('#') {
        let (digits, radix, skip) = match number.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 2),
            None => (number, 10, 1),
        };
        let len = digits
            .bytes()
            .take_while(|b| (*b as char).is_digit(radix))
            .count()
            .min(8);
        if len == 0 {
            return None;
        }
        let code = u32::from_str_radix(&digits[..len], radix).ok()?;
        let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
        return Some((c, with_semicolon(skip + len)));
    }
    const NAMED: [(&str, char); 16] = [
        ("lt", '<'),
        ("gt", '>'),
        ("quot", '"'),
        ("apos", '\''),
        ("amp", '&'),
        ("colon", ':'),
        ("lpar", '('),
        ("rpar", ')'),
        ("sol", '/'),
        ("bsol", '\\'),
        ("equals", '='),
        ("semi", ';'),
        ("comma", ','),
        ("tab", '\t'),
        ("newline", '\n'),
        ("nbsp", ' '),
    ];
    let name_len = bytes.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let name = after[..name_len].to_ascii_lowercase();
    NAMED
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, c)| (*c, with_semicolon(name_len)))
}

/// `\u003c`, `\u{3c}`, `\x3c` and octal-free C escapes of quotes and slashes.
fn escapes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut plain_from = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let decoded = match bytes.get(i + 1) {
            Some(b'u') if bytes.get(i + 2) == Some(&b'{') => {
                let digits = bytes[i + 3..]
                    .iter()
                    .take_while(|b| b.is_ascii_hexdigit())
                    .count();
                (bytes.get(i + 3 + digits) == Some(&b'}') && (1..=6).contains(&digits))
                    .then(|| hex_number(bytes.get(i + 3..i + 3 + digits)))
                    .flatten()
                    .map(|code| (code, 4 + digits))
            }
            Some(b'u') => hex_number(bytes.get(i + 2..i + 6)).map(|code| (code, 6)),
            Some(b'x') => hex_pair(bytes.get(i + 2..i + 4)).map(|byte| (u32::from(byte), 4)),
            _ => None,
        };
        if let Some((code, used)) = decoded {
            out.push_str(&text[plain_from..i]);
            out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            i += used;
            plain_from = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[plain_from..]);
    out
}

/// Full-width ASCII look-alikes become ASCII; control characters other than whitespace
/// disappear, as browsers and SQL parsers skip them (`java\0script:`).
fn fold_char(c: char) -> Option<char> {
    match c {
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0),
        // US-ASCII with the high bit set: `\xbcscript\xbe` is `<script>` to old browsers.
        '\u{bc}' => Some('<'),
        '\u{be}' => Some('>'),
        '\t' | '\n' | '\r' => Some(c),
        c if c.is_control() => None,
        // Zero-width characters hide keywords from a reader as well as from a rule.
        '\u{200b}'..='\u{200d}' | '\u{feff}' => None,
        c => Some(c),
    }
}

fn hex_pair(pair: Option<&[u8]>) -> Option<u8> {
    let pair = pair?;
    let (high, low) = (*pair.first()?, *pair.get(1)?);
    Some(hex_digit(high)? << 4 | hex_digit(low)?)
}

fn hex_number(digits: Option<&[u8]>) -> Option<u32> {
    digits?.iter().try_fold(0u32, |value, b| {
        Some(value.checked_mul(16)? + u32::from(hex_digit(*b)?))
    })
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lower_case_text_is_borrowed() {
        assert!(matches!(normalize("hello world"), Cow::Borrowed(_)));
        assert_eq!(normalize("Hello"), "hello");
    }

    #[test]
    fn every_spelling_of_a_quote_is_a_quote() {
        for spelled in [
            "%27", "%2527", "%252527", "&#39;", "&#x27", "&apos;", "\\u0027", "\\x27", "%u0027",
            "\\u{27}", "\u{ff07}",
        ] {
            assert_eq!(normalize(spelled), "'", "{spelled}");
        }
    }

    #[test]
    fn markup_and_script_hidden_in_encodings_come_out() {
        assert_eq!(
            normalize("%3CScRiPt%3Ealert(1)%3C/script%3E"),
            "<script>alert(1)</script>"
        );
        assert_eq!(
            normalize("&lt;img src=x onerror=alert&lpar;1&rpar;&gt;"),
            "<img src=x onerror=alert(1)>"
        );
        assert_eq!(normalize("java\u{0}script:"), "javascript:");
        assert_eq!(normalize("SEL\u{200b}ECT"), "select");
        assert_eq!(normalize("\u{ff1c}script\u{ff1e}"), "<script>");
    }

    #[test]
    fn broken_encodings_stay_as_they_were() {
        assert_eq!(
            normalize("100% sure &c. \\q %zz %u12"),
            "100% sure &c. \\q %zz %u12"
        );
        assert_eq!(normalize("50%"), "50%");
        assert_eq!(normalize("&#;"), "&#;");
        assert_eq!(normalize("%ff%fe"), "\u{fffd}\u{fffd}");
    }

    #[test]
    fn folding_a_run_at_a_time_is_folding_each_character() {
        let pieces = [
            "A", "z", "É", "é", "\u{0}", "\t", "\n", "\u{7f}", "\u{85}", "\u{ff21}", "\u{ff5e}",
            "\u{bc}", "\u{be}", "\u{bd}", "\u{a0}", "\u{200b}", "\u{2028}", "\u{feff}", "\u{ff01}",
            "\u{ffe0}", "\u{fffd}", "中", "🔌", "ي", " ", "%", "&", "\\", "ß",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..5_000 {
            let mut text = String::new();
            for _ in 0..(state % 10) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            let each: String = text
                .chars()
                .filter_map(fold_char)
                .map(|c| c.to_ascii_lowercase())
                .collect();
            assert_eq!(folded(&text), each, "{text:?}");
        }
    }

    #[test]
    fn non_ascii_text_is_kept() {
        assert_eq!(
            normalize("Calle de O'Donnell 12, 3º B"),
            "calle de o'donnell 12, 3º b"
        );
        assert_eq!(
            normalize("Ärger über Ladesäule 🔌"),
            "Ärger über ladesäule 🔌"
        );
    }
}
