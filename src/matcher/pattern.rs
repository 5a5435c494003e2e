//! The right-hand side of `=~` and `!~`: RE2 regexes (heka) and Lua patterns (lsb).
//!
//! Both become a [`regex::bytes::Regex`], so matching is linear in the input and never
//! backtracks. Before that, each pattern is checked for the common case of a plain literal,
//! perhaps anchored at the start and/or the end of the text: such patterns are tested with a
//! prefix, suffix, equality or `memchr::memmem` substring test instead of the regex engine
//! ([`PatternPlan::Literal`]).
//!
//! Lua patterns are translated item by item into a byte-oriented regex (`unicode(false)`):
//! `.` is any byte, `%a %c %d %l %p %s %u %w %x %z` and their upper-case complements are the C
//! locale's byte classes, `[set]` is a byte set, and `* + - ?` quantify the single item before
//! them (`-`, the lazy star, makes no difference to whether a match exists). As in the pattern
//! matcher that lua_sandbox uses, `(` and `)` are ordinary characters and `%1`…`%9` are the
//! digits. Two items cannot be expressed without backtracking and are rejected when the
//! expression is compiled: `%b` (balanced pairs) and `%f` (frontier). A malformed pattern
//! (ending in `%`, or with an unclosed `[`) is also rejected at compile time; lua_sandbox would
//! instead let it never match.

use crate::limits::MATCHER_REGEX_BYTES_MAX;

/// How a compiled program tests a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternPlan {
    /// The pattern is this literal byte string, which must start the text (`anchored_start`),
    /// end it (`anchored_end`), be all of it (both) or occur anywhere in it (neither).
    Literal {
        /// The literal, as the bytes the text is compared with.
        bytes: Box<[u8]>,
        /// Whether the literal must start the text (`^`).
        anchored_start: bool,
        /// Whether the literal must end the text (`$`).
        anchored_end: bool,
    },
    /// Only the regex can tell.
    Regex,
}

/// Compiles a heka-dialect regular expression (RE2 syntax, Unicode-aware, as Go's `regexp`).
///
/// # Errors
/// The regex crate's explanation when the regex is invalid or too large.
pub fn compile_regex(source: &str) -> Result<(regex::bytes::Regex, PatternPlan), String> {
    let regex = regex::bytes::RegexBuilder::new(source)
        .size_limit(MATCHER_REGEX_BYTES_MAX)
        .dfa_size_limit(MATCHER_REGEX_BYTES_MAX)
        .build()
        .map_err(|error| regex_error_text(&error))?;
    Ok((regex, regex_plan(source)))
}

/// Compiles an lsb-dialect Lua pattern. `plain` is the `%` suffix: the text is a plain
/// substring. Without it, a pattern with none of `^$*+?.[%-` is plain too, as in lua_sandbox.
///
/// # Errors
/// Why the pattern is malformed or unsupported.
pub fn compile_lua(
    pattern: &[u8],
    plain: bool,
) -> Result<(regex::bytes::Regex, PatternPlan), String> {
    let is_plain = plain || !pattern.iter().any(|byte| b"^$*+?.[%-".contains(byte));
    let (source, plan) = if is_plain {
        let mut source = String::with_capacity(pattern.len() * 4);
        pattern
            .iter()
            .for_each(|&byte| push_byte(&mut source, byte));
        let plan = PatternPlan::Literal {
            bytes: pattern.into(),
            anchored_start: false,
            anchored_end: false,
        };
        (source, plan)
    } else {
        translate_lua(pattern)?
    };
    let regex = regex::bytes::RegexBuilder::new(&source)
        .unicode(false)
        .size_limit(MATCHER_REGEX_BYTES_MAX)
        .dfa_size_limit(MATCHER_REGEX_BYTES_MAX)
        .build()
        .map_err(|error| regex_error_text(&error))?;
    Ok((regex, plan))
}

/// The one line of a regex error that says what is wrong (its Display also draws the
/// expression with a caret, over several lines).
fn regex_error_text(error: &regex::Error) -> String {
    match error {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("error: "))
            .unwrap_or(text)
            .to_string(),
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled regular expression would exceed {limit} bytes")
        }
        other => other.to_string(),
    }
}

/// Whether an RE2 regex is a plain literal, optionally anchored with a leading `^` and/or a
/// trailing `$`. Escaped ASCII punctuation (`\.`, `\/`) is literal; anything else with a
/// meaning (classes, repetition, groups, alternation, flags, `\d`…) needs the regex.
fn regex_plan(source: &str) -> PatternPlan {
    let bytes = source.as_bytes();
    let anchored_start = bytes.first() == Some(&b'^');
    let mut index = usize::from(anchored_start);
    let mut literal = Vec::with_capacity(bytes.len());
    let mut anchored_end = false;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'\\' => match bytes.get(index + 1) {
                Some(&escaped) if escaped.is_ascii_punctuation() => {
                    literal.push(escaped);
                    index += 2;
                }
                _ => return PatternPlan::Regex,
            },
            b'$' if index + 1 == bytes.len() => {
                anchored_end = true;
                index += 1;
            }
            b'.' | b'+' | b'*' | b'?' | b'(' | b')' | b'|' | b'[' | b']' | b'{' | b'}' | b'^'
            | b'$' => return PatternPlan::Regex,
            _ => {
                literal.push(byte);
                index += 1;
            }
        }
    }
    PatternPlan::Literal {
        bytes: literal.into(),
        anchored_start,
        anchored_end,
    }
}

/// A set of bytes, one bit each.
#[derive(Clone, Copy, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    const EMPTY: ByteSet = ByteSet([0; 4]);

    fn one(byte: u8) -> ByteSet {
        let mut set = ByteSet::EMPTY;
        set.insert(byte);
        set
    }

    fn insert(&mut self, byte: u8) {
        self.0[usize::from(byte >> 6)] |= 1 << (byte & 63);
    }

    fn contains(&self, byte: u8) -> bool {
        self.0[usize::from(byte >> 6)] & (1 << (byte & 63)) != 0
    }

    fn from_predicate(predicate: impl Fn(u8) -> bool) -> ByteSet {
        let mut set = ByteSet::EMPTY;
        (0..=255u8)
            .filter(|&byte| predicate(byte))
            .for_each(|byte| set.insert(byte));
        set
    }

    fn union(self, other: ByteSet) -> ByteSet {
        let mut words = self.0;
        words
            .iter_mut()
            .zip(other.0)
            .for_each(|(word, other)| *word |= other);
        ByteSet(words)
    }

    fn complement(self) -> ByteSet {
        ByteSet(self.0.map(|word| !word))
    }

    /// The single byte in the set, if it holds exactly one.
    fn single(&self) -> Option<u8> {
        let count: u32 = self.0.iter().map(|word| word.count_ones()).sum();
        if count != 1 {
            return None;
        }
        (0..=255u8).find(|&byte| self.contains(byte))
    }
}

/// The byte class `%<class>` stands for in the C locale, or `None` when `class` is not a
/// class letter (then `%<class>` is the character itself).
fn lua_class(class: u8) -> Option<ByteSet> {
    let set = match class.to_ascii_lowercase() {
        b'a' => ByteSet::from_predicate(|byte| byte.is_ascii_alphabetic()),
        b'c' => ByteSet::from_predicate(|byte| byte.is_ascii_control()),
        b'd' => ByteSet::from_predicate(|byte| byte.is_ascii_digit()),
        b'l' => ByteSet::from_predicate(|byte| byte.is_ascii_lowercase()),
        b'p' => ByteSet::from_predicate(|byte| byte.is_ascii_punctuation()),
        b's' => ByteSet::from_predicate(|byte| matches!(byte, b' ' | b'\t'..=b'\r')),
        b'u' => ByteSet::from_predicate(|byte| byte.is_ascii_uppercase()),
        b'w' => ByteSet::from_predicate(|byte| byte.is_ascii_alphanumeric()),
        b'x' => ByteSet::from_predicate(|byte| byte.is_ascii_hexdigit()),
        b'z' => ByteSet::one(0),
        _ => return None,
    };
    Some(if class.is_ascii_uppercase() {
        set.complement()
    } else {
        set
    })
}

/// `%<class>`: a class, or the escaped character itself.
fn lua_escape(class: u8) -> ByteSet {
    lua_class(class).unwrap_or_else(|| ByteSet::one(class))
}

/// One pattern item: a byte set and its quantifier (`*`, `+`, `-`, `?` or none).
struct Item {
    set: ByteSet,
    quantifier: Option<u8>,
}

/// Translates a Lua pattern into regex source, and notes whether it is an anchored literal.
fn translate_lua(pattern: &[u8]) -> Result<(String, PatternPlan), String> {
    let anchored_start = pattern.first() == Some(&b'^');
    let mut index = usize::from(anchored_start);
    let mut anchored_end = false;
    let mut items = Vec::new();
    while let Some(&byte) = pattern.get(index) {
        if byte == b'$' && index + 1 == pattern.len() {
            anchored_end = true;
            break;
        }
        let (set, next) = match byte {
            b'%' => match pattern.get(index + 1) {
                None => return Err("malformed Lua pattern (ends with '%')".into()),
                Some(b'b') => return Err("the Lua pattern item %b is not supported".into()),
                Some(b'f') => return Err("the Lua pattern item %f is not supported".into()),
                Some(&class) => (lua_escape(class), index + 2),
            },
            b'[' => lua_set(pattern, index)?,
            b'.' => (ByteSet::EMPTY.complement(), index + 1),
            _ => (ByteSet::one(byte), index + 1),
        };
        index = next;
        let quantifier = match pattern.get(index) {
            Some(&quantifier @ (b'*' | b'+' | b'-' | b'?')) => {
                index += 1;
                Some(quantifier)
            }
            _ => None,
        };
        items.push(Item { set, quantifier });
    }
    let mut source = String::with_capacity(pattern.len() * 8);
    if anchored_start {
        source.push_str(r"\A");
    }
    let mut literal = Vec::with_capacity(items.len());
    let mut is_literal = true;
    for item in &items {
        match (item.set.single(), item.quantifier) {
            (Some(byte), None) => literal.push(byte),
            _ => is_literal = false,
        }
        push_set(&mut source, &item.set);
        match item.quantifier {
            Some(b'*') => source.push('*'),
            Some(b'+') => source.push('+'),
            Some(b'-') => source.push_str("*?"),
            Some(b'?') => source.push('?'),
            _ => {}
        }
    }
    if anchored_end {
        source.push_str(r"\z");
    }
    let plan = if is_literal {
        PatternPlan::Literal {
            bytes: literal.into(),
            anchored_start,
            anchored_end,
        }
    } else {
        PatternPlan::Regex
    };
    Ok((source, plan))
}

/// Parses `[set]` starting at `open` (the `[`), returning the set and the index after `]`.
/// The first character of the set (after an optional `^`) is always a member, so `[]]` is
/// the set holding `]`; `%x` inside a set is a class or an escaped character; `a-z` is a
/// range unless the `-` is last.
fn lua_set(pattern: &[u8], open: usize) -> Result<(ByteSet, usize), String> {
    const MISSING: &str = "malformed Lua pattern (missing ']')";
    let mut index = open + 1;
    let negated = pattern.get(index) == Some(&b'^');
    if negated {
        index += 1;
    }
    let body = index;
    // Find the closing bracket: at least one character is consumed first.
    let close = loop {
        let &byte = pattern.get(index).ok_or(MISSING)?;
        index += 1;
        if byte == b'%' {
            if index >= pattern.len() {
                return Err(MISSING.into());
            }
            index += 1;
        }
        match pattern.get(index) {
            Some(b']') => break index,
            Some(_) => {}
            None => return Err(MISSING.into()),
        }
    };
    let mut set = ByteSet::EMPTY;
    let mut at = body;
    while at < close {
        let byte = pattern[at];
        if byte == b'%' {
            set = set.union(lua_escape(pattern[at + 1]));
            at += 2;
        } else if at + 2 < close && pattern[at + 1] == b'-' {
            let (low, high) = (byte, pattern[at + 2]);
            set = set.union(ByteSet::from_predicate(|candidate| {
                low <= candidate && candidate <= high
            }));
            at += 3;
        } else {
            set.insert(byte);
            at += 1;
        }
    }
    Ok((if negated { set.complement() } else { set }, close + 1))
}

/// Appends a byte as a regex escape that matches exactly that byte (with Unicode off).
fn push_byte(source: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    source.push_str(r"\x");
    source.push(char::from(HEX[usize::from(byte >> 4)]));
    source.push(char::from(HEX[usize::from(byte & 15)]));
}

/// Appends a byte set as a regex item: one escaped byte, or a class of ranges. The empty set
/// (e.g. `[^%z%Z]`) becomes a class that no byte matches.
fn push_set(source: &mut String, set: &ByteSet) {
    if let Some(byte) = set.single() {
        push_byte(source, byte);
        return;
    }
    if *set == ByteSet::EMPTY {
        source.push_str(r"[^\x00-\xFF]");
        return;
    }
    source.push('[');
    let mut byte = 0usize;
    while byte < 256 {
        if !set.contains(byte as u8) {
            byte += 1;
            continue;
        }
        let start = byte;
        while byte < 256 && set.contains(byte as u8) {
            byte += 1;
        }
        push_byte(source, start as u8);
        if byte - 1 > start {
            source.push('-');
            push_byte(source, (byte - 1) as u8);
        }
    }
    source.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua_matches(pattern: &str, text: &str) -> bool {
        let (regex, _) = compile_lua(pattern.as_bytes(), false).unwrap();
        regex.is_match(text.as_bytes())
    }

    /// (pattern, text, expected) — expectations are what Lua's `string.find` answers.
    const LUA_SEEDS: &[(&str, &str, bool)] = &[
        ("TEST", "TEST", true),
        ("^TE", "TEST", true),
        ("^te", "TEST", false),
        ("ST$", "TEST", true),
        ("st$", "TEST", false),
        ("name=%w+", "name=test;type=web;", true),
        ("name=%d+", "name=test;type=web;", false),
        ("^[Tt]EST", "tEST", true),
        ("^[^T]EST", "TEST", false),
        ("unique%-item", "a unique-item", true),
        // `e-` is a lazy run of e's: this pattern does not contain a literal '-'.
        ("unique-item", "a unique-item", false),
        ("unique-item", "a uniquitem", true),
        ("a.c", "abc", true),
        ("a.c", "ac", false),
        ("(a)", "(a)", true),
        ("(a)", "a", false),
        ("%(", "(", true),
        ("[]]", "]", true),
        ("[^]]", "]", false),
        ("[a-]", "-", true),
        ("[%a-]", "-", true),
        ("a?b", "b", true),
        ("^a?b$", "ab", true),
        ("^a?b$", "aab", false),
        ("x*", "", true),
        ("x+", "", false),
        ("$", "", true),
        ("^$", "x", false),
        ("a$b", "a$b", true),
        ("^^", "^", true),
        ("%s%S", " x", true),
        ("%u%l", "Ab", true),
        ("%x%X", "fg", true),
        ("%p", "!", true),
        ("%c", "\u{7}", true),
        ("%1", "1", true),
        ("%g", "g", true),
        ("**", "", true),
        ("%.", "x", false),
        ("%.", ".", true),
    ];

    #[test]
    fn lua_patterns_match_as_lua_does() {
        for &(pattern, text, expected) in LUA_SEEDS {
            assert_eq!(
                lua_matches(pattern, text),
                expected,
                "{pattern:?} on {text:?}"
            );
        }
    }

    #[test]
    fn lua_patterns_match_bytes_not_characters() {
        let (regex, _) = compile_lua(b"^.$", false).unwrap();
        assert!(regex.is_match(&[0xff]));
        assert!(!regex.is_match("é".as_bytes()), "two bytes");
        let (regex, _) = compile_lua(b"[^%z%Z]", false).unwrap();
        assert!(
            !regex.is_match(b"anything"),
            "the empty set matches nothing"
        );
    }

    #[test]
    fn malformed_and_unsupported_lua_patterns_are_rejected() {
        for pattern in ["abc%", "[abc", "[", "[^", "[%]", "%b()", "x%f[%w]"] {
            assert!(
                compile_lua(pattern.as_bytes(), false).is_err(),
                "{pattern:?}"
            );
        }
        assert!(compile_lua(b"[%]]", false).is_ok());
    }

    #[test]
    fn plain_lua_patterns_are_literals() {
        let (regex, plan) = compile_lua(b"not.found", true).unwrap();
        assert!(regex.is_match(b"is not.found here"));
        assert!(!regex.is_match(b"is notXfound here"));
        assert!(matches!(
            plan,
            PatternPlan::Literal {
                anchored_start: false,
                anchored_end: false,
                ..
            }
        ));
        // No special characters: plain without the `%` suffix.
        let (_, plan) = compile_lua(b"(x)", false).unwrap();
        assert!(matches!(plan, PatternPlan::Literal { .. }));
    }

    #[test]
    fn anchored_literals_are_found() {
        let literal = |bytes: &[u8], anchored_start, anchored_end| PatternPlan::Literal {
            bytes: bytes.into(),
            anchored_start,
            anchored_end,
        };
        assert_eq!(regex_plan("^TE"), literal(b"TE", true, false));
        assert_eq!(regex_plan("ST$"), literal(b"ST", false, true));
        assert_eq!(regex_plan("^TEST$"), literal(b"TEST", true, true));
        assert_eq!(
            regex_plan(r"^heka\.sandbox\."),
            literal(b"heka.sandbox.", true, false)
        );
        assert_eq!(regex_plan("TEST"), literal(b"TEST", false, false));
        assert_eq!(regex_plan(""), literal(b"", false, false));
        assert_eq!(regex_plan(r"a\$"), literal(b"a$", false, false));
        for regex in [
            "^T.ST", "(ST)", r"\d", "a|b", "^a*", "x{2}", "(?i)test", "a$b",
        ] {
            assert_eq!(regex_plan(regex), PatternPlan::Regex, "{regex}");
        }
        let (_, plan) = compile_lua(b"^TE", false).unwrap();
        assert_eq!(plan, literal(b"TE", true, false));
        let (_, plan) = compile_lua(b"ST$", false).unwrap();
        assert_eq!(plan, literal(b"ST", false, true));
        let (_, plan) = compile_lua(b"^%.x$", false).unwrap();
        assert_eq!(plan, literal(b".x", true, true));
    }

    #[test]
    fn regex_errors_are_one_line() {
        let error = compile_regex(r"\ytest").unwrap_err();
        assert!(!error.contains('\n'), "{error}");
        assert!(error.contains("escape"), "{error}");
    }
}
