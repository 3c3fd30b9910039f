//! SQL injection detection in the manner of libinjection: a value is read as SQL by a small
//! lexer — as it stands, as an injected number would be, and as if it continued a string that
//! a `'` or `"` before it opened — and the token sequences are matched against the shapes that
//! injected SQL takes: a string closed then a tautology, `UNION SELECT`, a stacked statement,
//! a comment that cuts the rest of the query off, time-based and error-based functions.
//!
//! Prose survives this, because the rules ask for SQL structure, not words: "select another
//! charger; it says 'error 42'" lexes as barewords and strings, never as a statement.

use super::{Family, Finding};

mod evidence;

use evidence::*;

/// The longest run of tokens one context is read for: an injection shows itself early.
const MAX_TOKENS: usize = 96;

/// One lexical token of the value read as SQL; words point into the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// A quoted string, or the tail of one opened before the value.
    Str,
    Num,
    /// A bareword or keyword.
    Word(&'a str),
    /// A word followed by `(`: a function call.
    Func(&'a str),
    /// `@name` or `@@name`.
    Var,
    /// `and`, `or`, `xor`, `&&`, `||`.
    Logic,
    /// Comparison and arithmetic operators.
    Op(&'a str),
    Open,
    Close,
    Comma,
    Semicolon,
    /// `--`, `#`, `/* … */`.
    Comment,
    /// MySQL's `/*! … */`, whose content the server executes.
    VersionComment,
}

use Token::*;

/// The first rule (at `level` or below) that the value, already normalised, matches.
pub fn detect(value: &str, level: u8) -> Option<Finding> {
    detect_with(value, level, true)
}

/// `detect`, with the prefilter (`evidence`) or, for the test that it agrees, without.
fn detect_with(value: &str, level: u8, prefilter: bool) -> Option<Finding> {
    if !value
        .bytes()
        .any(|b| b.is_ascii_alphanumeric() || b == b'\'' || b == b'"')
    {
        return None;
    }
    if level >= 1 && nosql_operator(value) {
        return Some(Finding {
            family: Family::Sqli,
            rule: 101_270,
        });
    }
    // Only the rules whose evidence the value holds can match: the rest are not tried, and
    // when none is left the value is not lexed at all.
    let candidates = if prefilter {
        let evidence = Evidence::of(value);
        rules_at(level, |rule| (rule.needs)(evidence))
    } else {
        rules_at(level, |_| true)
    };
    if candidates == 0 {
        return None;
    }
    let rule = readings(value, |tokens, after_quote| {
        matching_rule(tokens, after_quote, candidates)
    })?;
    Some(Finding {
        family: Family::Sqli,
        rule,
    })
}

/// The rules of `RULES` at `level` or below that `keep` keeps, as a set of their indices.
fn rules_at(level: u8, keep: impl Fn(&Rule) -> bool) -> u32 {
    RULES
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.level <= level && keep(rule))
        .fold(0, |set, (index, _)| set | 1 << index)
}

/// The first answer of `read` over the readings of the value: as it stands, then as if it
/// continued a string that a `'` and then a `"` before it opened (read from after its first
/// quote of that kind, behind a `Str` token for the string it closes).
fn readings<'a>(
    value: &'a str,
    mut read: impl FnMut(&[Token<'a>], bool) -> Option<u32>,
) -> Option<u32> {
    let mut tokens = Vec::with_capacity(16);
    for quote in [None, Some(b'\''), Some(b'"')] {
        let start = match quote {
            None => 0,
            Some(q) => match value.bytes().position(|b| b == q) {
                Some(at) => at + 1,
                None => continue,
            },
        };
        tokens.clear();
        if quote.is_some() {
            tokens.push(Str);
        }
        lex(&value[start..], &mut tokens);
        if let Some(rule) = read(&tokens, quote.is_some()) {
            return Some(rule);
        }
    }
    None
}

fn lex<'a>(text: &'a str, tokens: &mut Vec<Token<'a>>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && tokens.len() < MAX_TOKENS {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => i += 1,
            b'\'' | b'"' | b'`' => {
                i = skip_string(bytes, i);
                tokens.push(Str);
            }
            b'0'..=b'9' => {
                i = skip_number(bytes, i);
                tokens.push(Num);
            }
            b'.' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = skip_number(bytes, i + 1);
                tokens.push(Num);
            }
            b'@' => {
                i += 1;
                while i < bytes.len()
                    && (is_word_byte(bytes[i]) || bytes[i] == b'@' || bytes[i] == b'.')
                {
                    i += 1;
                }
                tokens.push(Var);
            }
            b'#' => {
                i = skip_line(bytes, i);
                tokens.push(Comment);
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = skip_line(bytes, i);
                tokens.push(Comment);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                if bytes.get(i + 2) == Some(&b'+') {
                    // An optimizer hint: the server reads it, so it is no comment to skip.
                    i += 3;
                    tokens.push(VersionComment);
                } else if bytes.get(i + 2) == Some(&b'!') {
                    // The content runs: lex on inside it, past the version number.
                    i += 3;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                    tokens.push(VersionComment);
                } else {
                    i = match text[i + 2..].find("*/") {
                        Some(end) => i + 2 + end + 2,
                        None => bytes.len(),
                    };
                    // Inside the value a comment is a space in disguise (`union/**/select`);
                    // only one that ends the value cuts a query off.
                    if bytes[i..].iter().all(u8::is_ascii_whitespace) {
                        tokens.push(Comment);
                    }
                }
            }
            b'*' if bytes.get(i + 1) == Some(&b'/') => i += 2,
            b'(' | b')' | b',' | b';' => {
                tokens.push(match b {
                    b'(' => Open,
                    b')' => Close,
                    b',' => Comma,
                    _ => Semicolon,
                });
                i += 1;
            }
            _ if separator_len(&bytes[i..]) > 0 => i += separator_len(&bytes[i..]),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' | 0x80.. => {
                let start = i;
                while i < bytes.len() && is_word_byte(bytes[i]) && separator_len(&bytes[i..]) == 0 {
                    i += 1;
                }
                // `news.version`, `information_schema.tables`: one qualified name.
                while bytes.get(i) == Some(&b'.')
                    && bytes
                        .get(i + 1)
                        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
                {
                    i += 1;
                    while i < bytes.len() && is_word_byte(bytes[i]) {
                        i += 1;
                    }
                }
                let word = &text[start..i];
                tokens.push(classify(word, &bytes[i..]));
            }
            _ => {
                let op = operator(&text[i..]);
                i += op.len().max(1);
                tokens.push(if op == "||" || op == "&&" {
                    Logic
                } else {
                    Op(op)
                });
            }
        }
    }
}

/// The length of a non-breaking or ideographic space, or of a character lost in decoding,
/// at the start of `bytes`: they separate words as spaces do. 0 for anything else.
fn separator_len(bytes: &[u8]) -> usize {
    const SEPARATORS: [&str; 3] = ["\u{a0}", "\u{fffd}", "\u{3000}"];
    SEPARATORS
        .iter()
        .find(|separator| bytes.starts_with(separator.as_bytes()))
        .map_or(0, |separator| separator.len())
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn classify<'a>(word: &'a str, after: &[u8]) -> Token<'a> {
    if matches!(word, "and" | "or" | "xor") {
        return Logic;
    }
    let next = after
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|at| &after[at..]);
    let called = next.is_some_and(|rest| {
        rest.first() == Some(&b'(') || (rest.starts_with(b"/*") && rest.contains(&b'('))
    });
    if called { Func(word) } else { Word(word) }
}

fn operator(text: &str) -> &str {
    for op in [
        "<=>", "<=", ">=", "<>", "!=", "==", "||", "&&", ":=", "<<", ">>", "!<", "!>",
    ] {
        if text.starts_with(op) {
            return &text[..op.len()];
        }
    }
    let len = text.chars().next().map_or(0, char::len_utf8);
    &text[..len]
}

fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote != b'`' => i += 2,
            b if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

fn skip_number(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    if bytes[i] == b'0' && matches!(bytes.get(i + 1), Some(b'x' | b'b')) {
        i += 2;
        while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
            i += 1;
        }
        return i;
    }
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
        i += 1;
    }
    if i < bytes.len()
        && bytes[i] == b'e'
        && bytes
            .get(i + 1)
            .is_some_and(|b| b.is_ascii_digit() || *b == b'+' || *b == b'-')
    {
        i += 2;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    i
}

fn skip_line(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |at| start + at + 1)
}

// ---------------------------------------------------------------------------------- rules

/// How a rule recognises injected SQL in the tokens of one reading (`after_quote`: the value
/// was read as continuing a string).
type Shape = fn(&[Token<'_>], bool) -> bool;

/// One rule: its id, the least sensitivity at which it applies, what it looks for.
pub(super) struct Rule {
    pub id: u32,
    pub level: u8,
    pub what: &'static str,
    shape: Shape,
    /// What a value must hold for `shape` to match any of its readings (see `evidence`): a
    /// test of a few flags, so that the shape is not tried, nor the value lexed, without it.
    needs: fn(Evidence) -> bool,
}

/// A string closed by the value: only a value with a quote is read as closing one.
const QUOTE: u64 = SINGLE_QUOTE | DOUBLE_QUOTE;
/// A `Str` token anywhere.
const STRING: u64 = SINGLE_QUOTE | DOUBLE_QUOTE | BACKTICK;

/// In the order they are tried: the most telling shapes first.
pub(super) const RULES: &[Rule] = &[
    Rule {
        id: 101_160,
        level: 1,
        what: "MySQL executable comment",
        shape: |t, _| t.contains(&VersionComment),
        needs: |e| e.any(SLASH_STAR),
    },
    Rule {
        id: 101_110,
        level: 1,
        what: "UNION SELECT",
        shape: union_select,
        needs: |e| e.all(SELECT | UNION),
    },
    Rule {
        id: 101_120,
        level: 1,
        what: "a stacked statement after a semicolon",
        shape: stacked_statement,
        needs: |e| e.all(SEMICOLON | STATEMENT),
    },
    Rule {
        id: 101_100,
        level: 1,
        what: "tautology or contradiction after a closed string or number",
        shape: tautology,
        needs: |e| e.any(LOGIC) && e.any(QUOTE | DIGIT | CLOSE),
    },
    Rule {
        id: 101_130,
        level: 1,
        what: "a closed string followed by a comment that cuts the query",
        shape: string_then_comment,
        needs: |e| e.any(QUOTE) && e.any(SEMICOLON | COMMENT),
    },
    Rule {
        id: 101_140,
        level: 1,
        what: "time-based, file or error-based SQL function",
        shape: dangerous_function,
        needs: |e| e.any(OPEN | WAITFOR | CATALOGUE) || e.all(INTO | OUTFILE),
    },
    Rule {
        id: 101_150,
        level: 1,
        what: "a subquery in an expression",
        shape: subquery_in_expression,
        needs: |e| e.all(OPEN | SELECT),
    },
    Rule {
        id: 101_170,
        level: 1,
        what: "a closed string followed by a boolean operator and a function",
        shape: string_logic_function,
        needs: |e| e.all(OPEN | LOGIC),
    },
    Rule {
        id: 101_180,
        level: 1,
        what: "ORDER BY, GROUP BY or HAVING after a closed string or number",
        shape: order_by_after_close,
        needs: |e| {
            (e.all(ORDER | BY) || e.any(HAVING) || e.all(PROCEDURE | ANALYSE))
                && e.any(QUOTE | DIGIT)
        },
    },
    Rule {
        id: 101_240,
        level: 1,
        what: "a comparison right after a closed string",
        shape: string_comparison,
        needs: |e| e.any(QUOTE),
    },
    Rule {
        id: 101_250,
        level: 1,
        what: "SQL operands ended by a comment",
        shape: expression_then_comment,
        needs: |e| e.any(COMMENT) && e.any(STRING | DIGIT | AT | OPEN),
    },
    Rule {
        id: 101_260,
        level: 1,
        what: "a parenthesised or leading SELECT … FROM",
        shape: leading_select_from,
        needs: |e| e.all(SELECT | FROM),
    },
    Rule {
        id: 101_280,
        level: 1,
        what: "database catalogue names and information functions",
        shape: catalogue_names,
        needs: |e| e.any(CATALOGUE | OPEN),
    },
    Rule {
        id: 101_290,
        level: 1,
        what: "stored procedure, dynamic SQL and variable statements (exec xp_…, declare @, procedure analyse)",
        shape: procedure_statements,
        needs: |e| e.any(EXEC | AT | XP_SP) || e.all(PROCEDURE | ANALYSE),
    },
    Rule {
        id: 101_300,
        level: 1,
        what: "PostgreSQL casts and JSON operators on strings (::int, ::jsonb)",
        shape: postgres_casts,
        needs: |e| e.all(COLON | PG_TYPE) || e.any(STRING) && e.any(LESS | AT),
    },
    Rule {
        id: 101_310,
        level: 1,
        what: "a conditional written as SQL writes it (if(x=…), ) like (, case when … then, having count(…) >)",
        shape: sql_conditional,
        needs: |e| e.any(OPEN | CLOSE) || e.all(CASE | WHEN | THEN),
    },
    Rule {
        id: 101_320,
        level: 1,
        what: "a schema statement (create, alter, drop, truncate table …)",
        shape: schema_statement,
        needs: |e| e.all(SCHEMA_VERB | SCHEMA_OBJECT),
    },
    Rule {
        id: 101_330,
        level: 1,
        what: "an SQL function call left open at the end of the value",
        shape: dangling_call,
        needs: |e| e.any(OPEN),
    },
    Rule {
        id: 101_190,
        level: 2,
        what: "SELECT … FROM",
        shape: select_from,
        needs: |e| e.all(SELECT | FROM),
    },
    Rule {
        id: 101_200,
        level: 2,
        what: "a closed string followed by a boolean operator",
        shape: |t, quoted| quoted && matches!(after_close(t), [Logic, ..]),
        needs: |e| e.any(QUOTE) && e.any(LOGIC),
    },
    Rule {
        id: 101_210,
        level: 2,
        what: "SQL built-in function after an operator",
        shape: builtin_after_operator,
        needs: |e| e.any(OPEN),
    },
    Rule {
        id: 101_220,
        level: 2,
        what: "a conditional expression (CASE WHEN, IF())",
        shape: conditional,
        needs: |e| e.all(CASE | WHEN) || e.any(OPEN),
    },
    Rule {
        id: 101_230,
        level: 3,
        what: "SQL statement keywords together",
        shape: statement_keywords,
        needs: |e| {
            e.any(SELECT)
                || e.all(INSERT | INTO)
                || e.all(DELETE | FROM)
                || e.all(SCHEMA_VERB | TABLE)
                || e.all(EXEC | XP_SP)
        },
    },
];

/// The first of the `candidates` (a set of indices of `RULES`) whose shape the tokens of one
/// reading have.
fn matching_rule(tokens: &[Token<'_>], after_quote: bool, candidates: u32) -> Option<u32> {
    RULES
        .iter()
        .enumerate()
        .find(|(index, rule)| candidates & 1 << index != 0 && (rule.shape)(tokens, after_quote))
        .map(|(_, rule)| rule.id)
}

/// The tokens after the string the value closes (and any parentheses it closes with it).
fn after_close<'t, 'a>(tokens: &'t [Token<'a>]) -> &'t [Token<'a>] {
    let rest = tokens.strip_prefix(&[Str]).unwrap_or(tokens);
    let closes = rest.iter().take_while(|t| **t == Close).count();
    &rest[closes..]
}

fn is_word(token: &Token<'_>, words: &[&str]) -> bool {
    matches!(token, Word(w) | Func(w) if words.contains(w))
}

fn is_operand(token: &Token<'_>) -> bool {
    matches!(token, Str | Num | Var | Func(_))
        || is_word(
            token,
            &[
                "true",
                "false",
                "null",
                "current_user",
                "user",
                "database",
                "version",
                "system_user",
                "session_user",
                "localtime",
                "current_date",
            ],
        )
}

fn is_comparison(token: &Token<'_>) -> bool {
    matches!(
        token,
        Op("=" | "==" | "!=" | "<>" | "<" | ">" | "<=" | ">=" | "<=>" | "!<" | "!>")
    ) || is_word(
        token,
        &[
            "like", "rlike", "regexp", "is", "in", "between", "sounds", "div",
        ],
    )
}

fn union_select(tokens: &[Token<'_>], _: bool) -> bool {
    tokens.windows(2).enumerate().any(|(at, pair)| {
        if !is_word(&pair[0], &["union", "intersect", "except", "minus"]) {
            return false;
        }
        let mut rest = &tokens[at + 1..];
        while let [first, tail @ ..] = rest
            && (is_word(first, &["all", "distinct"]) || matches!(first, Open | Comment))
        {
            rest = tail;
        }
        if let [select, modifier, tail @ ..] = rest
            && is_word(select, &["select"])
            && is_word(modifier, &["all", "distinct", "top", "null"])
        {
            return !tail.is_empty() || is_word(modifier, &["null"]);
        }
        match rest {
            // `union select committee meeting` is English; `union select u.* from` is not.
            [select, Word(_), Word(next), ..] if is_word(select, &["select"]) => *next == "from",
            [select, Word(next)] if is_word(select, &["select"]) => BUILTINS.contains(next),
            [select, ..] => is_word(select, &["select"]),
            _ => false,
        }
    })
}

const STATEMENTS: &[&str] = &[
    "select", "insert", "update", "delete", "drop", "create", "alter", "exec", "execute",
    "declare", "set", "if", "waitfor", "shutdown", "truncate", "grant", "revoke", "begin", "use",
    "load", "call", "handler", "replace", "rename", "lock", "show", "describe", "merge", "union",
];

fn stacked_statement(tokens: &[Token<'_>], _: bool) -> bool {
    tokens.iter().enumerate().any(|(at, token)| {
        if *token != Semicolon {
            return false;
        }
        let (Some(Word(keyword) | Func(keyword)), Some(next)) = (tokens.get(at + 1), tokens.get(at + 2))
        else {
            return matches!(tokens.get(at + 1), Some(Word("shutdown"))) && tokens.len() == at + 2;
        };
        let then = tokens.get(at + 3);
        // After a number, a string or a parenthesis the value closed, any statement is one.
        let before = &tokens[..at];
        let words = before.iter().filter(|t| matches!(t, Word(_))).count();
        let after_operand = at > 0
            && matches!(tokens[at - 1], Num | Str | Close)
            && (words == 0 || words == 1 && before.contains(&Close));
        if after_operand && STATEMENTS.contains(keyword) {
            return true;
        }
        match *keyword {
            "select" => !matches!(next, Word(_)) || is_word(next, &["null", "version", "user"]),
            "insert" | "replace" => is_word(next, &["into"]),
            "delete" => is_word(next, &["from"]),
            "drop" | "create" | "alter" | "truncate" => is_word(
                next,
                &["table", "database", "schema", "procedure", "function", "user", "view", "index", "trigger"],
            ),
            "update" => matches!(next, Word(_)) && then.is_some_and(|t| is_word(t, &["set"])),
            "exec" | "execute" => matches!(next, Word(_) | Func(_) | Open | Var) && (
                matches!(next, Word(w) | Func(w) if w.starts_with("xp_") || w.starts_with("sp_") || w.starts_with("master.")) || matches!(next, Open | Var)),
            "declare" | "set" => matches!(next, Var),
            "waitfor" => is_word(next, &["delay", "time"]),
            "shutdown" => matches!(next, Comment | Semicolon),
            _ => false,
        }
    })
}

/// `' or '1'='1`, `1 or 1=1`, `' or 1 --`, `' and 1=0`, `') or ('a'='a`, `foo) and 1=2#`.
fn tautology(tokens: &[Token<'_>], after_quote: bool) -> bool {
    let Some(rest) = after_leading_expression(tokens, after_quote) else {
        return false;
    };
    let [Logic, rest @ ..] = rest else {
        return false;
    };
    let unary = rest
        .iter()
        .take_while(|t| {
            matches!(t, Open | Op("!" | "~" | "-" | "+")) || is_word(t, &["not", "binary"])
        })
        .count();
    let [operand, after @ ..] = &rest[unary..] else {
        return false;
    };
    if matches!(operand, Word(w) if w.starts_with("select")) {
        return true;
    }
    // A column compared with a value: `or name like '%'`, `and news.version=0`.
    let compared_column = matches!(operand, Word(_))
        && matches!(after, [comparison, right, ..] if is_comparison(comparison)
            && matches!(right, Str | Num | Var | Func(_) | Op("!" | "-")));
    if !is_operand(operand) && !compared_column {
        return false;
    }
    let after = if matches!(operand, Func(_)) {
        skip_call(after)
    } else {
        after
    };
    match after {
        [comparison, right, ..] if is_comparison(comparison) => {
            is_operand(right) || matches!(right, Open | Word(_) | Op("-" | "+" | "!"))
        }
        [] | [Comment, ..] | [Semicolon, ..] => {
            after_quote || matches!(operand, Num | Str | Func(_))
        }
        [Close, ..] => after_quote || matches!(operand, Num | Str),
        [clause, ..]
            if is_word(
                clause,
                &[
                    "group",
                    "order",
                    "having",
                    "limit",
                    "union",
                    "procedure",
                    "into",
                ],
            ) =>
        {
            true
        }
        [Logic, ..] => after_quote,
        _ => false,
    }
}

/// What follows the expression the value completes before its first boolean operator:
/// the string it closes (`after_quote`), or a leading number or closed parenthesis
/// (`1`, `-1`, `1=1)`, `foo)`). `None` when the value does not start that way.
fn after_leading_expression<'t, 'a>(
    tokens: &'t [Token<'a>],
    after_quote: bool,
) -> Option<&'t [Token<'a>]> {
    if after_quote {
        return Some(after_close(tokens));
    }
    let lead = tokens
        .iter()
        .take_while(|t| matches!(t, Num | Str | Word(_) | Open | Close | Op(_)) || is_comparison(t))
        .count();
    let expression = &tokens[..lead];
    let starts_with_number = matches!(expression, [Num, ..] | [Op("-" | "+"), Num, ..]);
    let closes = expression.contains(&Close);
    let words = expression.iter().filter(|t| matches!(t, Word(_))).count();
    // `phpx and 1=1`: one bareword, then a tautology of numbers.
    let lone_word = words == 1
        && lead == 1
        && matches!(&tokens[lead..], [Logic, Num, comparison, Num, ..] if is_comparison(comparison));
    (starts_with_number && words == 0 || closes && words <= 1 || lone_word).then(|| &tokens[lead..])
}

/// The tokens after a leading number and the parentheses it closes (`-1)`), or `None`.
fn after_number<'t, 'a>(tokens: &'t [Token<'a>]) -> Option<&'t [Token<'a>]> {
    let rest = tokens.strip_prefix(&[Op("-")]).unwrap_or(tokens);
    let rest = rest.strip_prefix(&[Num])?;
    let closes = rest.iter().take_while(|t| **t == Close).count();
    Some(&rest[closes..])
}

/// The tokens after a call's parenthesised arguments.
fn skip_call<'t, 'a>(tokens: &'t [Token<'a>]) -> &'t [Token<'a>] {
    if tokens.first() != Some(&Open) {
        return tokens;
    }
    let mut depth = 0usize;
    for (at, token) in tokens.iter().enumerate() {
        match token {
            Open => depth += 1,
            Close => {
                depth -= 1;
                if depth == 0 {
                    return &tokens[at + 1..];
                }
            }
            _ => {}
        }
    }
    &[]
}

/// `' is 99999 = '`, `a' < 'b`, `aa'like'0`: a comparison right where the string closes.
fn string_comparison(tokens: &[Token<'_>], after_quote: bool) -> bool {
    if !after_quote {
        return false;
    }
    let operator = |t: &Token<'_>| {
        is_comparison(t)
            || matches!(
                t,
                Op("/" | "*" | "^" | "|" | "&" | "<<" | ">>" | "%" | "+" | "-")
            )
            || is_word(t, &["div", "mod", "sounds"])
    };
    match after_close(tokens) {
        [op, right, ..] if operator(op) => {
            matches!(right, Str | Num | Var | Func(_) | Op("-" | "+" | "!" | "~"))
                || is_operand(right)
                || matches!(right, Word(_))
                    && tokens
                        .iter()
                        .skip(3)
                        .any(|t| is_comparison(t) || *t == Logic)
        }
        [op] => operator(op),
        _ => false,
    }
}

/// `( 'a' ) --`, `1 /*`, `-1#`: a value of SQL operands ended by a comment.
fn expression_then_comment(tokens: &[Token<'_>], after_quote: bool) -> bool {
    let [body @ .., Comment] = tokens else {
        return false;
    };
    !after_quote
        && !body.is_empty()
        && body.iter().all(|t| {
            !matches!(t, Word(_)) || is_word(t, &["binary", "select", "null", "or", "and"])
        })
        && body.iter().any(|t| matches!(t, Str | Num | Var | Func(_)))
}

/// `admin'--`, `x')#`, `1';--`.
fn string_then_comment(tokens: &[Token<'_>], after_quote: bool) -> bool {
    if after_quote
        && matches!(after_close(tokens), [Semicolon, ..])
        && tokens.last() == Some(&Comment)
    {
        return true;
    }
    after_quote
        && matches!(
            after_close(tokens),
            [Comment, ..] | [Semicolon, Comment, ..] | [Semicolon]
        )
}

const DANGEROUS: &[&str] = &[
    "sleep",
    "benchmark",
    "pg_sleep",
    "load_file",
    "extractvalue",
    "updatexml",
    "xp_cmdshell",
    "sp_executesql",
    "sp_oacreate",
    "name_const",
    "gtid_subset",
    "utl_inaddr",
    "dbms_pipe",
    "utl_http",
    "dbms_lock",
    "exp",
    "geometrycollection",
    "multipoint",
    "polygon",
    "linestring",
    "json_keys",
    "randomblob",
    "xmltype",
    "ctxsys",
    "sys_eval",
    "sys_exec",
    "lo_import",
    "pg_read_file",
    "lo_get",
    "pg_ls_dir",
    "sqlite_compileoption_get",
    "dbms_xmlgen",
    "dbms_java",
];

fn dangerous_function(tokens: &[Token<'_>], _: bool) -> bool {
    tokens.iter().enumerate().any(|(at, token)| match token {
        Func(name) if DANGEROUS.contains(name) => {
            // `exp(` and the geometry ones are also ordinary words: ask for SQL around them.
            !matches!(*name, "exp" | "polygon" | "multipoint" | "linestring")
                || at > 0 && matches!(tokens[at - 1], Logic | Op(_) | Comma | Open)
        }
        Word("against") => {
            tokens.get(at + 1) == Some(&Open) && tokens[..at].iter().any(|t| is_word(t, &["match"]))
        }
        Word("waitfor") => tokens
            .get(at + 1)
            .is_some_and(|t| is_word(t, &["delay", "time"])),
        Word("into") => tokens
            .get(at + 1)
            .is_some_and(|t| is_word(t, &["outfile", "dumpfile"])),
        Word(
            "information_schema" | "sysobjects" | "syscolumns" | "pg_catalog" | "sqlite_master"
            | "mysql.user",
        ) => true,
        Word(word) | Func(word) => {
            word.starts_with("information_schema.")
                || word.starts_with("sys.") && at > 0 && matches!(tokens[at - 1], Word("from"))
        }
        _ => false,
    })
}

fn subquery_in_expression(tokens: &[Token<'_>], _: bool) -> bool {
    tokens.windows(3).any(|w| {
        (matches!(w[0], Logic | Op(_) | Comma) || is_comparison(&w[0]))
            && w[1] == Open
            && is_word(&w[2], &["select"])
    })
}

const BUILTINS: &[&str] = &[
    "ascii",
    "char",
    "chr",
    "concat",
    "concat_ws",
    "group_concat",
    "substring",
    "substr",
    "mid",
    "length",
    "len",
    "hex",
    "unhex",
    "cast",
    "convert",
    "version",
    "database",
    "schema",
    "user",
    "current_user",
    "system_user",
    "session_user",
    "count",
    "if",
    "iif",
    "ifnull",
    "nullif",
    "coalesce",
    "ord",
    "char_length",
    "md5",
    "sha1",
    "rand",
    "floor",
    "left",
    "right",
    "instr",
    "locate",
    "position",
    "lower",
    "upper",
    "reverse",
    "row",
    "elt",
    "make_set",
    "benchmark",
    "sleep",
    "isnull",
    "db_name",
    "user_name",
    "host_name",
    "object_id",
];

/// `' and ascii(substr(...))>64`, `' or sleep(5)#`.
fn string_logic_function(tokens: &[Token<'_>], after_quote: bool) -> bool {
    let Some(rest) = after_leading_expression(tokens, after_quote) else {
        return false;
    };
    let opens = rest.iter().skip(1).take_while(|t| **t == Open).count();
    matches!(rest, [Logic, ..])
        && matches!(rest.get(1 + opens), Some(Func(name)) if BUILTINS.contains(name) || DANGEROUS.contains(name))
}

/// `1' order by 3--`, `1 group by 1 having 1=1`.
fn order_by_after_close(tokens: &[Token<'_>], after_quote: bool) -> bool {
    let rest = if after_quote {
        Some(after_close(tokens))
    } else {
        after_number(tokens)
    };
    let Some(rest) = rest else {
        return false;
    };
    match rest {
        [order, by, key, ..] if is_word(order, &["order", "group"]) && is_word(by, &["by"]) => {
            matches!(key, Num | Var | Func(_))
                || rest
                    .get(3)
                    .is_none_or(|t| matches!(t, Comment | Comma | Semicolon))
        }
        [having, left, ..] if is_word(having, &["having"]) => is_operand(left),
        [procedure, analyse, ..] => {
            is_word(procedure, &["procedure"]) && is_word(analyse, &["analyse"])
        }
        _ => false,
    }
}

fn leading_select_from(tokens: &[Token<'_>], _: bool) -> bool {
    tokens.iter().enumerate().any(|(at, token)| {
        let leading = at == 0 || matches!(tokens[at - 1], Open | Semicolon);
        leading && is_word(token, &["select"]) && select_from(&tokens[at..], false)
    })
}

fn select_from(tokens: &[Token<'_>], _: bool) -> bool {
    tokens.iter().enumerate().any(|(at, token)| {
        if !is_word(token, &["select"]) {
            return false;
        }
        let window = &tokens[at + 1..tokens.len().min(at + 40)];
        let Some(from) = window.iter().position(|t| is_word(t, &["from"])) else {
            return false;
        };
        window[..from]
            .iter()
            .any(|t| matches!(t, Func(_) | Op("*") | Comma | Var | Num | Str))
    })
}

fn builtin_after_operator(tokens: &[Token<'_>], _: bool) -> bool {
    tokens.windows(2).any(|w| {
        (matches!(w[0], Logic | Op(_)) || is_comparison(&w[0]))
            && matches!(w[1], Func(name) if BUILTINS.contains(&name))
    })
}

fn conditional(tokens: &[Token<'_>], _: bool) -> bool {
    let case_when = tokens
        .windows(2)
        .any(|w| is_word(&w[0], &["case"]) && is_word(&w[1], &["when"]));
    let if_call = tokens
        .windows(2)
        .any(|w| matches!(w, [Func("if" | "iif"), Open]))
        && tokens.iter().any(is_comparison);
    case_when || if_call
}

/// `u_id[$ne]=1`, `{"$where": …}`: MongoDB query operators where a value was expected.
fn nosql_operator(value: &str) -> bool {
    // Every operator starts with `$`: most values have none, and are done with a byte search.
    if !value.contains('$') {
        return false;
    }
    const OPERATORS: &[&str] = &[
        "ne",
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "nin",
        "not",
        "nor",
        "or",
        "and",
        "where",
        "regex",
        "exists",
        "elemmatch",
        "text",
        "expr",
        "function",
        "type",
        "size",
        "all",
        "mod",
        "jsonschema",
        "accumulator",
    ];
    let is_operator = |text: &str| {
        text.strip_prefix('$')
            .is_some_and(|name| OPERATORS.contains(&name))
    };
    is_operator(value.trim())
        || value
            .match_indices("[$")
            .any(|(at, _)| value[at + 1..].split(']').next().is_some_and(is_operator))
}

/// Names of the database catalogues and system tables.
const CATALOGUES: &[&str] = &[
    "information_schema",
    "sysobjects",
    "syscolumns",
    "sysdatabases",
    "pg_catalog",
    "pg_shadow",
    "pg_user",
    "sqlite_master",
    "sqlite_schema",
    "mysql.user",
    "mysql.db",
    "msysaccessobjects",
    "msysobjects",
    "all_tables",
    "user_tables",
    "sys.tables",
    "sys.objects",
    "schema_name",
    "table_schema",
    "tempdb",
    "msdb",
];

fn catalogue_names(tokens: &[Token<'_>], _: bool) -> bool {
    const INFORMATION: &[&str] = &[
        "database",
        "db_name",
        "current_user",
        "user",
        "version",
        "schema",
        "system_user",
        "session_user",
        "current_database",
        "user_name",
        "@@version",
    ];
    tokens.iter().enumerate().any(|(at, token)| match token {
        Word(word) | Func(word) if CATALOGUES.contains(word) => true,
        Word(word) | Func(word) => word.split('.').next().is_some_and(|schema| CATALOGUES.contains(&schema)),
        _ => false,
    } || matches!(token, Func(name) if INFORMATION.contains(name)
        && matches!(&tokens[at + 1..], [Open, Close, ..] | [Open]))
    )
}

fn procedure_statements(tokens: &[Token<'_>], _: bool) -> bool {
    tokens.windows(2).any(|w| match (&w[0], &w[1]) {
        (Word("exec" | "execute") | Func("exec" | "execute"), Word(name)) => {
            name.starts_with("xp_")
                || name.starts_with("sp_")
                || name.starts_with("master.")
                || *name == "immediate"
        }
        (Word("exec" | "execute") | Func("exec" | "execute"), Open) => true,
        (Word("declare" | "set"), Var) => true,
        (Word("procedure"), Word("analyse")) | (Word("procedure"), Func("analyse")) => true,
        (Word(name), _) | (Func(name), _) => matches!(
            *name,
            "xp_cmdshell"
                | "sp_executesql"
                | "sp_oacreate"
                | "sp_makewebtask"
                | "xp_regread"
                | "xp_dirtree"
        ),
        _ => false,
    })
}

/// The types of PostgreSQL casts (`::int`).
const PG_TYPES: &[&str] = &[
    "int", "integer", "bigint", "bool", "boolean", "text", "varchar", "char", "json", "jsonb",
    "bytea", "numeric", "regclass", "oid", "inet", "xml",
];

fn postgres_casts(tokens: &[Token<'_>], _: bool) -> bool {
    tokens
        .windows(3)
        .any(|w| matches!(w, [Op(":"), Op(":"), Word(t)] if PG_TYPES.contains(t)))
        || tokens
            .windows(3)
            .any(|w| matches!(w, [Str, Op("<" | "@"), Op("@" | ">")]))
}

fn sql_conditional(tokens: &[Token<'_>], _: bool) -> bool {
    tokens.iter().enumerate().any(|(at, token)| {
        let rest = &tokens[at + 1..];
        match token {
            Func("if" | "iif") => matches!(rest, [Open, operand, comparison, ..] if (is_operand(operand) || matches!(operand, Word(_))) && is_comparison(comparison)),
            Close => matches!(rest, [like, Open, ..] if is_word(like, &["like", "rlike", "regexp"])),
            Word("case") => {
                let leading = at == 0 || !matches!(tokens[at - 1], Word(_)) || is_word(&tokens[at - 1], &["select", "then", "else", "when"]);
                leading && matches!(rest, [Word("when"), ..]) && rest.iter().any(|t| is_word(t, &["then"]))
            }
            Word("having") => matches!(rest, [Func(_), ..]) && skip_call(&rest[1..]).first().is_some_and(is_comparison),
            _ => false,
        }
    })
}

fn schema_statement(tokens: &[Token<'_>], _: bool) -> bool {
    tokens.windows(3).enumerate().any(|(at, w)| {
        let [
            Word("create" | "alter" | "drop" | "truncate"),
            Word("table" | "database" | "procedure" | "function" | "trigger"),
            Word(_) | Str,
        ] = w
        else {
            return false;
        };
        matches!(tokens.get(at + 3), None | Some(Open | Semicolon | Comment))
            || tokens.get(at + 3).is_some_and(|t| {
                is_word(
                    t,
                    &[
                        "add",
                        "change",
                        "modify",
                        "drop",
                        "rename",
                        "engine",
                        "character",
                        "column",
                        "if",
                    ],
                )
            })
    })
}

/// `substring(`, `group_concat(` at the end: the first half of a call, as probes send it.
fn dangling_call(tokens: &[Token<'_>], _: bool) -> bool {
    matches!(tokens, [.., Func(name), Open] if BUILTINS.contains(name) || DANGEROUS.contains(name) || MORE_FUNCTIONS.contains(name))
}

/// SQL functions that probes and injections name, beyond `BUILTINS`.
const MORE_FUNCTIONS: &[&str] = &[
    "cos",
    "sin",
    "tan",
    "pow",
    "power",
    "compress",
    "uncompress",
    "sqrt",
    "abs",
    "ceil",
    "round",
    "replace",
    "repeat",
    "space",
    "lpad",
    "rpad",
    "trim",
    "ltrim",
    "rtrim",
    "soundex",
    "load_file",
    "char",
    "nchar",
    "unicode",
    "quotename",
    "make_set",
    "export_set",
    "field",
    "find_in_set",
    "strcmp",
    "crc32",
    "sha2",
    "aes_encrypt",
    "aes_decrypt",
    "encode",
    "decode",
    "to_base64",
    "from_base64",
    "uuid",
    "connection_id",
    "last_insert_id",
    "row_count",
    "found_rows",
    "sysdate",
    "now",
    "curdate",
    "unistr",
    "lo_get",
    "lo_import",
    "pg_ls_dir",
    "pg_read_binary_file",
    "sqlite_version",
    "randomblob",
    "zeroblob",
    "sqlite_compileoption_get",
    "char_length",
    "json_extract",
    "json_object",
    "extractvalue",
    "updatexml",
];

fn statement_keywords(tokens: &[Token<'_>], _: bool) -> bool {
    tokens.windows(2).any(|w| match (&w[0], &w[1]) {
        (Word("insert" | "replace"), Word("into")) | (Word("delete"), Word("from")) => true,
        (Word("drop" | "create" | "alter" | "truncate"), Word("table" | "database")) => true,
        (Word("select"), next) => !matches!(next, Word(_)),
        (Word("exec" | "execute"), Word(w)) => w.starts_with("xp_") || w.starts_with("sp_"),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::MAX_LEVEL;
    use crate::security::decode::normalize;

    const ATTACKS: &[&str] = &[
        "' or '1'='1",
        "' OR 1=1--",
        "admin'--",
        "admin' #",
        "1 or 1=1",
        "1' and 1=0 union select null,version()--",
        "-1 UNION ALL SELECT 1,2,3",
        "1 union/**/select/**/password/**/from/**/users",
        "x'; DROP TABLE users; --",
        "1; exec xp_cmdshell('dir')",
        "1 AND SLEEP(5)",
        "1' and benchmark(10000000,md5(1))#",
        "'; waitfor delay '0:0:5'--",
        "1 and extractvalue(1,concat(0x7e,version()))",
        "1/*!50000union*/select 1",
        "1' order by 3--",
        "' and ascii(substring((select password from users limit 1),1,1))>64--",
        "1 and 1=(select count(*) from information_schema.tables)",
        "\" or \"\"=\"",
        "') or ('a'='a",
        "1' AND '1'='1",
        "%27%20or%20%271%27%3D%271",
        "' or true--",
        "1 or sleep(5)#",
    ];

    const BENIGN: &[&str] = &[
        "O'Brien",
        "Calle de O'Donnell 12, 3º B",
        "won't start -- tried twice; is connector #2 broken?",
        "select another charger? it says 'error 42' and then nothing",
        "1=1 isn't what I was charged",
        "Please select the Type 2 connector from the list",
        "I'd like to delete my account; update my e-mail instead?",
        "charger 3 or 4",
        "Rock 'n' roll and 1 more thing",
        "drop-off point: union street 5; select parking",
        "D'Angelo & N'Diaye, order by date please",
        "price < 0.30 €/kWh and/or free parking",
        "it's 22 kW (not 11) - see 'manual'",
        "{\"id\": 7, \"status\": \"Available\"}",
        "Jean-Luc d'Artagnan",
        "\"Error 1\" or \"Error 2\"? neither",
    ];

    fn rule(value: &str, level: u8) -> Option<u32> {
        detect(&normalize(value), level).map(|finding| finding.rule)
    }

    #[test]
    fn classic_injections_are_caught_at_the_default_level() {
        for attack in ATTACKS {
            assert!(rule(attack, 1).is_some(), "missed at level 1: {attack}");
        }
    }

    #[test]
    fn the_words_and_punctuation_of_real_people_are_not_sql() {
        for benign in BENIGN {
            assert_eq!(rule(benign, 1), None, "flagged at level 1: {benign}");
        }
    }

    #[test]
    fn higher_levels_catch_more() {
        assert_eq!(rule("select password from users", 1), None);
        assert!(rule("select password, login from users", 2).is_some());
        assert!(rule("' or 'x", 2).is_some());
        assert!(rule("insert into users values", 3).is_some());
    }

    #[test]
    fn any_text_is_read_without_a_panic() {
        let pieces = [
            "'", "\"", "`", "(", ")", "--", "#", "/*", "*/", "/*!", "@", "@@", ";", ",", ".", "0x",
            "1", "1e", "and", "or", "select", "union", "from", "\u{a0}", "\u{fffd}", "é", "ñ",
            "中", "🔌", "\u{3000}", "\\", "=", "<>", "||", " ", "\n", "a.b", "x(", "case", "º",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            for level in 1..=3 {
                let _ = detect(&text, level);
            }
        }
    }

    #[test]
    fn every_rule_is_listed_once() {
        let mut ids: Vec<u32> = RULES.iter().map(|rule| rule.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
    }

    /// Values each rule matches, a few per rule, from which `probes` makes its variations.
    const SEEDS: &[&str] = &[
        "1/*!50000union*/select 1",
        "x/*+ index(t) */",
        "1 union select 1,2",
        "-1 union all select null",
        "x' union select password from users",
        "1; drop table users",
        "x'; shutdown --",
        "1;select 1",
        "1; waitfor delay '0:0:5'",
        "' or '1'='1",
        "1 or 1=1",
        "foo) and 1=2#",
        "phpx and 1=1",
        "admin'--",
        "x');#",
        "1 and sleep(5)",
        "1 and exp(~(select 1))",
        "select * into outfile '/tmp/x'",
        "x from information_schema.tables",
        "match(a) against ('x')",
        "1 = (select 1)",
        "x,(select user)",
        "' and ascii(substr(x,1,1))>64",
        "' or sleep(5)#",
        "1' order by 3--",
        "1 group by 1",
        "' having 1=1",
        "1 procedure analyse()",
        "a' < 'b",
        "' = 1",
        "aa'like'0",
        "' is 99999 = '",
        "1 --",
        "( 'a' ) --",
        "-1#",
        "@x /*",
        "(select password from users)",
        "select a, b from c",
        "pg_catalog.pg_tables",
        "version()",
        "tempdb..sysobjects",
        "sys.tables",
        "exec xp_cmdshell 'dir'",
        "execute master.dbo.x",
        "declare @x int",
        "set @a=1",
        "1::int",
        "'x' ::text",
        "'a' < > 'b'",
        "if(1=1,1,0)",
        "x) like (y",
        "case when 1 then 2 end",
        "having count(*) > 1",
        "drop table users;",
        "create table x (",
        "alter table t add c",
        "concat(",
        "x substring(",
        "select a, count(*) from t",
        "' or 'x",
        "1 + ascii(x)",
        "= char(65)",
        "case when a then b",
        "if(a>b)",
        "insert into t",
        "delete from t",
        "select *",
        "exec sp_who",
        // Words right after what ends a token without a space: numbers, hexadecimal numbers
        // ending in a letter, strings, separators.
        "0xfor 1=1",
        "0b1and 1=1",
        "0xunion select 1",
        "1 0xfunion select 1",
        "1or 1=1",
        "'x'or'1'='1",
        "1\u{a0}or\u{a0}1=1",
        "1\u{3000}union\u{3000}select\u{3000}1",
        "1;0xfdrop table x",
    ];

    /// Pieces spliced into the seeds: the rules' words, punctuation, and what sits at the edges
    /// of tokens (numbers that end in letters, separators, non-ASCII letters, comments).
    const PIECES: &[&str] = &[
        " ", "", "'", "\"", "`", "(", ")", ",", ";", "--", "#", "/*", "*/", "/**/", "/*!", "@",
        "@@", ".", "0x", "0xf", "0b1", "1", "1e", "1e+", ".5", "=", "<", ">", "<>", "<=", "!", "~",
        "-", "+", "*", "|", "||", "&", "&&", ":", "::", "$", "_", "\\", "\n", "\u{a0}", "\u{fffd}",
        "\u{3000}", "é", "ñ", "中", "x", "a", "or", "and", "xor", "not", "null", "true", "from",
        "into", "by", "on", "in", "is", "like", "as", "then", "when", "case", "end", "limit",
    ];

    /// Every word a rule names, spliced into the seeds too.
    fn words() -> Vec<&'static str> {
        let mut words: Vec<&str> = [
            STATEMENTS,
            CATALOGUES,
            PG_TYPES,
            BUILTINS,
            DANGEROUS,
            MORE_FUNCTIONS,
        ]
        .concat();
        words.extend([
            "intersect",
            "except",
            "minus",
            "order",
            "group",
            "having",
            "procedure",
            "analyse",
            "outfile",
            "dumpfile",
            "delay",
            "time",
            "against",
            "match",
            "table",
            "database",
            "function",
            "trigger",
            "immediate",
            "xp_cmdshell",
            "sp_executesql",
            "xp_x",
            "sp_",
            "master.x",
            "information_schema.",
            "sys.x",
            "all",
            "distinct",
            "top",
            "binary",
        ]);
        words
    }

    /// The seeds, the rule tests' values, and many variations of them: cut, joined, spliced
    /// with pieces and words at random places, upper-cased.
    fn probes() -> Vec<String> {
        let words = words();
        let mut state = 0x853c_49e6_748f_ea9b_u64;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        let fixed: Vec<&str> = SEEDS.iter().chain(ATTACKS).chain(BENIGN).copied().collect();
        let mut probes: Vec<String> = fixed.iter().map(|s| s.to_string()).collect();
        for _ in 0..40_000 {
            let mut text = fixed[next(fixed.len())].to_owned();
            for _ in 0..=next(4) {
                let at = (0..=text.len())
                    .filter(|at| text.is_char_boundary(*at))
                    .nth(next(text.chars().count() + 1))
                    .unwrap_or(text.len());
                match next(6) {
                    0 => text.insert_str(at, PIECES[next(PIECES.len())]),
                    1 => text.insert_str(at, words[next(words.len())]),
                    2 => text.insert_str(at, fixed[next(fixed.len())]),
                    3 => text.truncate(at),
                    4 => text = text[at..].to_owned(),
                    _ => text = text.to_uppercase(),
                }
            }
            probes.push(text);
        }
        probes
    }

    /// The prefilter must never keep a rule from a value it matches: for every probe (as it
    /// is and normalised), every reading and every rule whose shape matches, the value holds
    /// the rule's evidence — and so `detect` says what it says without the prefilter.
    #[test]
    fn prefilter_never_hides_a_match() {
        let mut matched = vec![0usize; RULES.len()];
        let mut filtered = 0usize;
        for probe in probes() {
            for text in [normalize(&probe).into_owned(), probe] {
                let evidence = Evidence::of(&text);
                readings(&text, |tokens, after_quote| {
                    for (count, rule) in matched.iter_mut().zip(RULES) {
                        if (rule.shape)(tokens, after_quote) {
                            *count += 1;
                            assert!(
                                (rule.needs)(evidence),
                                "rule {} matches {text:?} ({tokens:?}), which lacks its evidence {evidence:?}",
                                rule.id
                            );
                        }
                    }
                    None
                });
                for level in 1..=MAX_LEVEL {
                    let with = detect_with(&text, level, true);
                    assert_eq!(
                        with,
                        detect_with(&text, level, false),
                        "{text:?} at {level}"
                    );
                }
                filtered += usize::from(rules_at(MAX_LEVEL, |rule| (rule.needs)(evidence)) == 0);
            }
        }
        for (rule, count) in RULES.iter().zip(&matched) {
            assert!(
                *count >= 50,
                "rule {} matched only {count} probes: add seeds",
                rule.id
            );
        }
        // And it does filter: a good share of the probes is never lexed.
        assert!(filtered > 1_000, "only {filtered} probes filtered");
    }
}
