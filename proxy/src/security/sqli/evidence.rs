//! What a value holds that the SQL rules need, found in one pass over its bytes and one over
//! its words before the lexer runs. Each rule names, beside its shape, the evidence without
//! which its shape cannot match (`Rule::needs`); a value that lacks the evidence of every rule
//! of the level is never lexed. Most values are like that — codes, dates, names, prose without
//! quotes — and lexing them three times and trying every shape on each reading is most of
//! what SQL detection costs.
//!
//! The evidence is sound by construction, because every token is a piece of the value: a
//! `Semicolon` token is a `;` of the value, a comment starts with `#`, `--` or `/*`, a
//! `Func` is followed by a `(`, a `Var` starts with `@`, a `Num` has a digit, a `Str` starts
//! with a quote (a value read as continuing a string has one too: the reading starts after
//! it), and a `Word` equal to `select` is the letters `select` at a place where a token can
//! start and end (`may_start`, `may_end`). The test `prefilter_never_hides_a_match` checks it
//! against every rule on every reading of generated values.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::{CATALOGUES, PG_TYPES, STATEMENTS, is_word_byte, separator_len};

// Bytes (and pairs of bytes) of the value.
pub(super) const SINGLE_QUOTE: u64 = 1 << 0;
pub(super) const DOUBLE_QUOTE: u64 = 1 << 1;
pub(super) const BACKTICK: u64 = 1 << 2;
pub(super) const SEMICOLON: u64 = 1 << 3;
/// `#`, `--` or `/*`: what a comment token starts with.
pub(super) const COMMENT: u64 = 1 << 4;
/// `/*`, which also starts `/*!` and `/*+`.
pub(super) const SLASH_STAR: u64 = 1 << 5;
pub(super) const OPEN: u64 = 1 << 6;
pub(super) const CLOSE: u64 = 1 << 7;
pub(super) const COLON: u64 = 1 << 8;
pub(super) const LESS: u64 = 1 << 9;
pub(super) const AT: u64 = 1 << 10;
pub(super) const DIGIT: u64 = 1 << 11;
/// `and`, `or`, `xor` as words, or `||`, `&&`: a `Logic` token.
pub(super) const LOGIC: u64 = 1 << 12;

// Words of the value, each where a token can start and (but for prefixes) end.
pub(super) const SELECT: u64 = 1 << 20;
/// `union`, `intersect`, `except`, `minus`.
pub(super) const UNION: u64 = 1 << 21;
pub(super) const FROM: u64 = 1 << 22;
/// Any of `STATEMENTS`.
pub(super) const STATEMENT: u64 = 1 << 23;
pub(super) const WAITFOR: u64 = 1 << 24;
pub(super) const INTO: u64 = 1 << 25;
/// `outfile`, `dumpfile`.
pub(super) const OUTFILE: u64 = 1 << 26;
/// Any of `CATALOGUES`, or a name starting `information_schema.` or `sys.`.
pub(super) const CATALOGUE: u64 = 1 << 27;
/// `order`, `group`.
pub(super) const ORDER: u64 = 1 << 28;
pub(super) const BY: u64 = 1 << 29;
pub(super) const HAVING: u64 = 1 << 30;
pub(super) const PROCEDURE: u64 = 1 << 31;
pub(super) const ANALYSE: u64 = 1 << 32;
/// `exec`, `execute`.
pub(super) const EXEC: u64 = 1 << 33;
/// A name starting `xp_` or `sp_`.
pub(super) const XP_SP: u64 = 1 << 34;
pub(super) const CASE: u64 = 1 << 35;
pub(super) const WHEN: u64 = 1 << 36;
pub(super) const THEN: u64 = 1 << 37;
/// `create`, `alter`, `drop`, `truncate`.
pub(super) const SCHEMA_VERB: u64 = 1 << 38;
/// `table`, `database`, `procedure`, `function`, `trigger`.
pub(super) const SCHEMA_OBJECT: u64 = 1 << 39;
/// `table`, `database`.
pub(super) const TABLE: u64 = 1 << 40;
/// Any of `PG_TYPES`.
pub(super) const PG_TYPE: u64 = 1 << 41;
/// `insert`, `replace`.
pub(super) const INSERT: u64 = 1 << 42;
pub(super) const DELETE: u64 = 1 << 43;

/// What one value holds, as a set of the flags above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Evidence(u64);

impl Evidence {
    pub(super) fn of(value: &str) -> Evidence {
        let bytes = value.as_bytes();
        let mut found = 0;
        let mut previous = 0u8;
        for &b in bytes {
            found |= match (previous, b) {
                (b'-', b'-') => COMMENT,
                (b'/', b'*') => COMMENT | SLASH_STAR,
                (b'|', b'|') | (b'&', b'&') => LOGIC,
                _ => 0,
            } | BYTES[usize::from(b)];
            previous = b;
        }
        for hit in WORDS.automaton.find_overlapping_iter(value) {
            let (flags, whole) = WORDS.flags[hit.pattern().as_usize()];
            if found & flags != flags
                && may_start(bytes, hit.start())
                && (!whole || may_end(bytes, hit.end()))
            {
                found |= flags;
            }
        }
        Evidence(found)
    }

    /// Whether the value holds any of `flags`.
    pub(super) fn any(self, flags: u64) -> bool {
        self.0 & flags != 0
    }

    /// Whether the value holds all of `flags`.
    pub(super) fn all(self, flags: u64) -> bool {
        self.0 & flags == flags
    }
}

/// The flags each byte sets on its own.
static BYTES: [u64; 256] = {
    let mut table = [0; 256];
    table[b'\'' as usize] = SINGLE_QUOTE;
    table[b'"' as usize] = DOUBLE_QUOTE;
    table[b'`' as usize] = BACKTICK;
    table[b';' as usize] = SEMICOLON;
    table[b'#' as usize] = COMMENT;
    table[b'(' as usize] = OPEN;
    table[b')' as usize] = CLOSE;
    table[b':' as usize] = COLON;
    table[b'<' as usize] = LESS;
    table[b'@' as usize] = AT;
    let mut digit = b'0';
    while digit <= b'9' {
        table[digit as usize] = DIGIT;
        digit += 1;
    }
    table
};

/// The words the rules name, in one automaton; `flags[pattern]` is what a pattern sets and
/// whether it must be a whole token (otherwise it is a prefix, as `xp_`).
struct Words {
    automaton: AhoCorasick,
    flags: Vec<(u64, bool)>,
}

static WORDS: LazyLock<Words> = LazyLock::new(|| {
    let mut words: BTreeMap<&str, (u64, bool)> = BTreeMap::new();
    let mut add = |word: &'static str, flags: u64, whole: bool| {
        let entry = words.entry(word).or_insert((0, whole));
        entry.0 |= flags;
        // A word wanted both whole and as a prefix counts as a prefix: the weaker test.
        entry.1 &= whole;
    };
    for word in ["and", "or", "xor"] {
        add(word, LOGIC, true);
    }
    add("select", SELECT, true);
    for word in ["union", "intersect", "except", "minus"] {
        add(word, UNION, true);
    }
    add("from", FROM, true);
    for word in STATEMENTS {
        add(word, STATEMENT, true);
    }
    add("waitfor", WAITFOR, true);
    add("into", INTO, true);
    add("outfile", OUTFILE, true);
    add("dumpfile", OUTFILE, true);
    for word in CATALOGUES {
        add(word, CATALOGUE, true);
    }
    add("information_schema.", CATALOGUE, false);
    add("sys.", CATALOGUE, false);
    add("order", ORDER, true);
    add("group", ORDER, true);
    add("by", BY, true);
    add("having", HAVING, true);
    add("procedure", PROCEDURE | SCHEMA_OBJECT, true);
    add("analyse", ANALYSE, true);
    add("exec", EXEC, true);
    add("execute", EXEC, true);
    add("xp_", XP_SP, false);
    add("sp_", XP_SP, false);
    add("case", CASE, true);
    add("when", WHEN, true);
    add("then", THEN, true);
    for word in ["create", "alter", "drop", "truncate"] {
        add(word, SCHEMA_VERB, true);
    }
    for word in ["table", "database"] {
        add(word, SCHEMA_OBJECT | TABLE, true);
    }
    for word in ["function", "trigger"] {
        add(word, SCHEMA_OBJECT, true);
    }
    for word in PG_TYPES {
        add(word, PG_TYPE, true);
    }
    add("insert", INSERT, true);
    add("replace", INSERT, true);
    add("delete", DELETE, true);
    let automaton =
        AhoCorasick::new(words.keys()).expect("the words are a few hundred short constant strings");
    Words {
        automaton,
        flags: words.into_values().collect(),
    }
});

/// Whether the lexer can start a token at `at`, so that a word found there may be a token of
/// its own rather than the tail of a longer word. Tokens end (see `lex`) before anything that
/// is not a word byte, after a number (`1or`, and the hexadecimal `0xfor`: `0xf` then `or`)
/// and after a space-like separator (`separator_len`); after any other letter, `_`, `$` or
/// non-ASCII character the word goes on.
fn may_start(bytes: &[u8], at: usize) -> bool {
    let Some(&before) = at.checked_sub(1).and_then(|i| bytes.get(i)) else {
        return true;
    };
    if !is_word_byte(before) || before.is_ascii_digit() {
        return true;
    }
    if !before.is_ascii() {
        let head = &bytes[..at];
        return (1..=3)
            .any(|len| head.len() >= len && separator_len(&head[head.len() - len..]) == len);
    }
    // After a letter, only the end of a `0x…` or `0b…` number.
    let digits = bytes[..at]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    let number = at - digits;
    (number >= 2 && matches!(bytes[number - 1], b'x' | b'X') && bytes[number - 2] == b'0')
        || bytes[number..at]
            .windows(2)
            .any(|pair| pair[0] == b'0' && matches!(pair[1], b'b' | b'B'))
}

/// Whether a token can end at `end`: a word stops before anything that is not a word byte, or
/// before a separator (a `.` may continue it as a qualified name, and then it is longer: this
/// answers yes, which only lets the value be lexed).
fn may_end(bytes: &[u8], end: usize) -> bool {
    bytes
        .get(end)
        .is_none_or(|&b| !is_word_byte(b) || separator_len(&bytes[end..]) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_count_only_where_a_token_can_be() {
        assert!(Evidence::of("1 or 1").all(LOGIC | DIGIT));
        assert!(!Evidence::of("for more order").any(LOGIC));
        assert!(Evidence::of("1or 2").any(LOGIC));
        assert!(Evidence::of("0xfor").any(LOGIC), "0xf, then or");
        assert!(Evidence::of("0b1and").any(LOGIC), "0b1, then and");
        assert!(
            Evidence::of("a\u{a0}or").any(LOGIC),
            "a separator ends a word"
        );
        assert!(!Evidence::of("señor").any(LOGIC));
        assert!(Evidence::of("x||y").any(LOGIC));
        assert!(Evidence::of("sys.tables").any(CATALOGUE));
        assert!(Evidence::of("exec xp_dirtree").all(EXEC | XP_SP));
        assert!(!Evidence::of("selection").any(SELECT));
        assert!(Evidence::of("'x'--").all(SINGLE_QUOTE | COMMENT));
        assert!(Evidence::of("/*!50000").all(SLASH_STAR | COMMENT | DIGIT));
    }
}
