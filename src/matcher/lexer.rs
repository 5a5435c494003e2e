//! Tokens of a matcher expression, for both dialects.
//!
//! The dialects differ in their lexical details, all handled here:
//!
//! | | heka (Go) | lsb (lua_sandbox) |
//! |---|---|---|
//! | whitespace | space, tab; a newline ends the expression | space, tab, CR, LF |
//! | strings | `'…'` `"…"`; `\` + the quote is the quote, `\` + anything else is kept as both characters | `\'` and `\"` are quotes in either kind of string and `\\` is one `\`; `\` + anything else is kept as both characters; ≤ 255 bytes after unescaping; a `%` right after the closing quote marks a plain pattern |
//! | numbers | `[0-9.]` then `[0-9.e+-]*`, read as f64; text that is not a float reads as 0 | `[+-]? (0 \| [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?` |
//! | regexes | `/…/`, `\/` is `/` | none (patterns are strings) |
//! | `Fields[n][f][a]` | non-empty name without `]`; indices ≤ 65535 | name may be empty; indices ≤ 255 |
//!
//! Every token carries its byte span in the source, for error messages.

use super::ast::{FieldPath, Header, Relation};
use super::{excerpt, Dialect, MatcherError};
use crate::limits::{MATCHER_INDEX_LSB_MAX, MATCHER_INDEX_MAX, MATCHER_STRING_LSB_BYTES_MAX};

/// One token and where it is.
#[derive(Clone, Debug)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// Byte offset of the token's first byte in the source.
    pub start: usize,
    /// Byte offset just past the token's last byte.
    pub end: usize,
}

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenKind {
    /// `(`, opening a group.
    LeftParen,
    /// `)`, closing a group.
    RightParen,
    /// `&&`, which binds tighter than `||`.
    And,
    /// `||`, the loosest-binding operator.
    Or,
    /// A relation: `==`, `!=`, `<`, `<=`, `>` or `>=`.
    Compare(Relation),
    /// `=~`, or `!~` when negated.
    Match {
        /// Whether the operator is `!~`.
        negated: bool,
    },
    /// A header name such as `Type`.
    Header(Header),
    /// `Fields[name]`, with its optional `[field_index][array_index]`.
    Fields(FieldPath),
    /// `TRUE`, the boolean literal (upper case only).
    True,
    /// `FALSE`, the boolean literal (upper case only).
    False,
    /// `NIL`, the literal for an absent value.
    Nil,
    /// A quoted string, unescaped; `plain` is lsb's `%` suffix.
    String {
        /// The string's bytes, escapes resolved.
        bytes: Vec<u8>,
        /// Whether a `%` follows the closing quote (lsb): the pattern is plain text.
        plain: bool,
    },
    /// A number literal, as f64.
    Number(f64),
    /// A heka `/regex/`, with `\/` unescaped.
    Regex(String),
    /// The end of the expression (heka: also a newline); every later token is `End` too.
    End,
}

/// Splits an expression into tokens on demand.
pub struct Lexer<'s> {
    source: &'s str,
    bytes: &'s [u8],
    /// Where lexing stops: the end, or (heka) the first newline.
    limit: usize,
    position: usize,
    dialect: Dialect,
}

impl<'s> Lexer<'s> {
    /// A lexer over `source`, in the given dialect's lexical rules; nothing is read until the first
    /// token is asked for.
    pub fn new(source: &'s str, dialect: Dialect) -> Lexer<'s> {
        let bytes = source.as_bytes();
        let limit = match dialect {
            Dialect::Heka => memchr::memchr(b'\n', bytes).unwrap_or(bytes.len()),
            Dialect::Lsb => bytes.len(),
        };
        Lexer {
            source,
            bytes,
            limit,
            position: 0,
            dialect,
        }
    }

    /// The byte at `index`, or `None` past the limit.
    fn byte(&self, index: usize) -> Option<u8> {
        if index < self.limit {
            self.bytes.get(index).copied()
        } else {
            None
        }
    }

    fn error(&self, position: usize, problem: impl Into<String>) -> MatcherError {
        MatcherError::new(self.source, position, problem)
    }

    fn is_space(&self, byte: u8) -> bool {
        match self.dialect {
            Dialect::Heka => matches!(byte, b' ' | b'\t'),
            Dialect::Lsb => matches!(byte, b' ' | b'\t' | b'\r' | b'\n'),
        }
    }

    /// The next token.
    ///
    /// # Errors
    /// A character that starts no token, an unterminated string or regex, a malformed
    /// `Fields[…]`, or a string that is too long.
    pub fn next_token(&mut self) -> Result<Token, MatcherError> {
        while self
            .byte(self.position)
            .is_some_and(|byte| self.is_space(byte))
        {
            self.position += 1;
        }
        let start = self.position;
        let Some(byte) = self.byte(start) else {
            return Ok(Token {
                kind: TokenKind::End,
                start,
                end: start,
            });
        };
        let second = self.byte(start + 1);
        let (kind, length) = match (byte, second) {
            (b'(', _) => (TokenKind::LeftParen, 1),
            (b')', _) => (TokenKind::RightParen, 1),
            (b'&', Some(b'&')) => (TokenKind::And, 2),
            (b'|', Some(b'|')) => (TokenKind::Or, 2),
            (b'=', Some(b'=')) => (TokenKind::Compare(Relation::Equal), 2),
            (b'=', Some(b'~')) => (TokenKind::Match { negated: false }, 2),
            (b'!', Some(b'=')) => (TokenKind::Compare(Relation::NotEqual), 2),
            (b'!', Some(b'~')) => (TokenKind::Match { negated: true }, 2),
            (b'>', Some(b'=')) => (TokenKind::Compare(Relation::GreaterOrEqual), 2),
            (b'>', _) => (TokenKind::Compare(Relation::Greater), 1),
            (b'<', Some(b'=')) => (TokenKind::Compare(Relation::LessOrEqual), 2),
            (b'<', _) => (TokenKind::Compare(Relation::Less), 1),
            (b'&', _) => return Err(self.error(start, "expected '&&'")),
            (b'|', _) => return Err(self.error(start, "expected '||'")),
            (b'=', _) => return Err(self.error(start, "expected '==' or '=~'")),
            (b'!', _) => return Err(self.error(start, "expected '!=' or '!~'")),
            (b'\'' | b'"', _) => return self.string(start),
            (b'/', _) if self.dialect == Dialect::Heka => return self.regex(start),
            (b'A'..=b'Z' | b'a'..=b'z', _) => return self.word(start),
            (b'0'..=b'9' | b'.', _) if self.dialect == Dialect::Heka => {
                return Ok(self.number_heka(start))
            }
            (b'0'..=b'9' | b'+' | b'-', _) if self.dialect == Dialect::Lsb => {
                return self.number_lsb(start)
            }
            _ => {
                let character = self.source[start..].chars().next().unwrap_or('?');
                return Err(self.error(start, format!("unexpected character {character:?}")));
            }
        };
        self.position = start + length;
        Ok(Token {
            kind,
            start,
            end: self.position,
        })
    }

    fn token(&mut self, kind: TokenKind, start: usize, end: usize) -> Token {
        self.position = end;
        Token { kind, start, end }
    }

    /// A quoted string; see the module doc for each dialect's escapes.
    fn string(&mut self, start: usize) -> Result<Token, MatcherError> {
        let quote = self.bytes[start];
        let mut index = start + 1;
        let mut bytes = Vec::new();
        loop {
            let Some(byte) = self.byte(index) else {
                return Err(self.error(start, "unterminated string"));
            };
            let next = self.byte(index + 1);
            match (self.dialect, byte, next) {
                (_, b'\\', Some(escaped)) if escaped == quote => {
                    bytes.push(quote);
                    index += 2;
                }
                (Dialect::Heka, b'\\', Some(escaped)) => {
                    bytes.extend_from_slice(&[b'\\', escaped]);
                    index += 2;
                }
                (Dialect::Lsb, b'\\', Some(escaped @ (b'\'' | b'"' | b'\\'))) => {
                    bytes.push(escaped);
                    index += 2;
                }
                (_, byte, _) if byte == quote => break,
                (_, byte, _) => {
                    bytes.push(byte);
                    index += 1;
                }
            }
        }
        let mut end = index + 1;
        let mut plain = false;
        if self.dialect == Dialect::Lsb {
            if bytes.len() > MATCHER_STRING_LSB_BYTES_MAX {
                return Err(self.error(
                    start,
                    format!("string longer than {MATCHER_STRING_LSB_BYTES_MAX} bytes"),
                ));
            }
            if self.byte(end) == Some(b'%') {
                plain = true;
                end += 1;
            }
        }
        Ok(self.token(TokenKind::String { bytes, plain }, start, end))
    }

    /// A heka `/regex/`.
    fn regex(&mut self, start: usize) -> Result<Token, MatcherError> {
        let mut index = start + 1;
        let mut text = Vec::new();
        loop {
            match (self.byte(index), self.byte(index + 1)) {
                (None, _) => return Err(self.error(start, "unterminated regular expression")),
                (Some(b'\\'), Some(b'/')) => {
                    text.push(b'/');
                    index += 2;
                }
                (Some(b'\\'), Some(escaped)) => {
                    text.extend_from_slice(&[b'\\', escaped]);
                    index += 2;
                }
                (Some(b'/'), _) => break,
                (Some(byte), _) => {
                    text.push(byte);
                    index += 1;
                }
            }
        }
        // Only ASCII bytes were split off, so the text is valid UTF-8.
        let text = String::from_utf8(text)
            .map_err(|_| self.error(start, "the regular expression is not valid UTF-8"))?;
        Ok(self.token(TokenKind::Regex(text), start, index + 1))
    }

    /// A word: a header name, `TRUE`, `FALSE`, `NIL` or `Fields[…]`.
    fn word(&mut self, start: usize) -> Result<Token, MatcherError> {
        let mut end = start;
        while self
            .byte(end)
            .is_some_and(|byte| byte.is_ascii_alphabetic())
        {
            end += 1;
        }
        let word = &self.bytes[start..end];
        let kind = match word {
            b"TRUE" => TokenKind::True,
            b"FALSE" => TokenKind::False,
            b"NIL" => TokenKind::Nil,
            b"Fields" => return self.fields(start, end),
            _ => match Header::from_name(word) {
                Some(header) => TokenKind::Header(header),
                None => {
                    let name = excerpt(&self.source[start..end]);
                    return Err(self.error(start, format!("unknown variable '{name}'")));
                }
            },
        };
        Ok(self.token(kind, start, end))
    }

    /// `Fields[name]`, then up to two `[index]` groups.
    fn fields(&mut self, start: usize, after_word: usize) -> Result<Token, MatcherError> {
        if self.byte(after_word) != Some(b'[') {
            return Err(self.error(after_word, "expected '[' after 'Fields'"));
        }
        let name_start = after_word + 1;
        let mut index = name_start;
        while self.byte(index).is_some_and(|byte| byte != b']') {
            index += 1;
        }
        if self.byte(index).is_none() {
            return Err(self.error(start, "unterminated field name: expected ']'"));
        }
        let name = &self.bytes[name_start..index];
        match self.dialect {
            Dialect::Heka if name.is_empty() => {
                return Err(self.error(name_start, "expected a field name"));
            }
            Dialect::Lsb if name.len() > MATCHER_STRING_LSB_BYTES_MAX => {
                let problem =
                    format!("field name longer than {MATCHER_STRING_LSB_BYTES_MAX} bytes");
                return Err(self.error(name_start, problem));
            }
            _ => {}
        }
        index += 1;
        let mut indices = [0u32; 2];
        for slot in &mut indices {
            if self.byte(index) != Some(b'[') {
                break;
            }
            let (value, next) = self.index(index + 1)?;
            *slot = value;
            index = next;
        }
        let path = FieldPath {
            name: name.into(),
            field_index: indices[0],
            array_index: indices[1],
        };
        Ok(self.token(TokenKind::Fields(path), start, index))
    }

    /// The digits of an index and its `]`, starting after the `[`.
    fn index(&self, digits_start: usize) -> Result<(u32, usize), MatcherError> {
        let maximum = match self.dialect {
            Dialect::Heka => MATCHER_INDEX_MAX,
            Dialect::Lsb => MATCHER_INDEX_LSB_MAX,
        };
        let mut index = digits_start;
        let mut value: u32 = 0;
        while let Some(byte @ b'0'..=b'9') = self.byte(index) {
            value = value
                .saturating_mul(10)
                .saturating_add(u32::from(byte - b'0'));
            index += 1;
        }
        if index == digits_start {
            return Err(self.error(digits_start, "expected digits in a field or array index"));
        }
        if self.byte(index) != Some(b']') {
            return Err(self.error(index, "expected ']' after the index digits"));
        }
        if value > maximum {
            let problem = format!("index above the maximum of {maximum}");
            return Err(self.error(digits_start, problem));
        }
        Ok((value, index + 1))
    }

    /// A heka number: Go's lexer reads `[0-9.][0-9.e+-]*` and parses it as a float, reading
    /// any text that is not a finite float as 0.
    fn number_heka(&mut self, start: usize) -> Token {
        let mut end = start + 1;
        while self
            .byte(end)
            .is_some_and(|byte| matches!(byte, b'0'..=b'9' | b'.' | b'e' | b'+' | b'-'))
        {
            end += 1;
        }
        let value = parse_heka_number(&self.source[start..end]);
        self.token(TokenKind::Number(value), start, end)
    }

    /// An lsb number, with the grammar in the module doc.
    fn number_lsb(&mut self, start: usize) -> Result<Token, MatcherError> {
        let mut end = start;
        if matches!(self.byte(end), Some(b'+' | b'-')) {
            end += 1;
        }
        let digits = |lexer: &Self, mut at: usize| {
            while lexer.byte(at).is_some_and(|byte| byte.is_ascii_digit()) {
                at += 1;
            }
            at
        };
        match self.byte(end) {
            Some(b'0') => end += 1,
            Some(b'1'..=b'9') => end = digits(self, end),
            _ => return Err(self.error(start, "expected a digit")),
        }
        if self.byte(end) == Some(b'.') && self.byte(end + 1).is_some_and(|b| b.is_ascii_digit()) {
            end = digits(self, end + 1);
        }
        if matches!(self.byte(end), Some(b'e' | b'E')) {
            let mut at = end + 1;
            if matches!(self.byte(at), Some(b'+' | b'-')) {
                at += 1;
            }
            if self.byte(at).is_some_and(|byte| byte.is_ascii_digit()) {
                end = digits(self, at);
            }
        }
        // The text matches Rust's float grammar, so this parse succeeds; overflow is infinite,
        // as C's strtod makes it.
        let value = self.source[start..end].parse::<f64>().unwrap_or(0.0);
        Ok(self.token(TokenKind::Number(value), start, end))
    }
}

/// Go's `strconv.ParseFloat` on the lexed text, with Heka's fallback of 0 for text that is
/// not a float or overflows.
pub fn parse_heka_number(text: &str) -> f64 {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => value,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str, dialect: Dialect) -> Result<Vec<TokenKind>, MatcherError> {
        let mut lexer = Lexer::new(source, dialect);
        let mut kinds = Vec::new();
        loop {
            let token = lexer.next_token()?;
            if token.kind == TokenKind::End {
                return Ok(kinds);
            }
            kinds.push(token.kind);
        }
    }

    fn string(bytes: &[u8], plain: bool) -> TokenKind {
        TokenKind::String {
            bytes: bytes.to_vec(),
            plain,
        }
    }

    #[test]
    fn heka_numbers_read_as_go_reads_them() {
        for (text, value) in [
            ("7", 7.0),
            ("99.9", 99.9),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e5", 1e5),
            ("1.428773420000e+18", 1.42877342e18),
            ("1e", 0.0),
            ("6-", 0.0),
            ("1.2.3", 0.0),
            ("1e400", 0.0),
            (".", 0.0),
        ] {
            assert_eq!(
                kinds(text, Dialect::Heka).unwrap(),
                vec![TokenKind::Number(value)],
                "{text}"
            );
        }
    }

    #[test]
    fn lsb_numbers_follow_the_peg() {
        assert_eq!(
            kinds("-1.5e3", Dialect::Lsb).unwrap(),
            vec![TokenKind::Number(-1500.0)]
        );
        assert_eq!(
            kinds("+0", Dialect::Lsb).unwrap(),
            vec![TokenKind::Number(0.0)]
        );
        // "01" is two numbers: the parser rejects it.
        assert_eq!(kinds("01", Dialect::Lsb).unwrap().len(), 2);
        assert!(kinds(".5", Dialect::Lsb).is_err());
        assert!(kinds("-", Dialect::Lsb).is_err());
    }

    #[test]
    fn strings_unescape_per_dialect() {
        assert_eq!(
            kinds(r"'te\'st'", Dialect::Heka).unwrap(),
            vec![string(b"te'st", false)]
        );
        assert_eq!(
            kinds(r#"'te\"st'"#, Dialect::Heka).unwrap(),
            vec![string(br#"te\"st"#, false)]
        );
        assert_eq!(
            kinds(r"'a\\'", Dialect::Heka).unwrap(),
            vec![string(br"a\\", false)]
        );
        assert_eq!(
            kinds(r#"'te\"st'"#, Dialect::Lsb).unwrap(),
            vec![string(b"te\"st", false)]
        );
        assert_eq!(
            kinds(r"'a\b'%", Dialect::Lsb).unwrap(),
            vec![string(br"a\b", true)]
        );
        // lua_sandbox's own suite: `Uuid < '\\'` compares with one backslash.
        assert_eq!(
            kinds(r"'\\'", Dialect::Lsb).unwrap(),
            vec![string(br"\", false)]
        );
        assert_eq!(
            kinds(r"'a\\\''", Dialect::Lsb).unwrap(),
            vec![string(br"a\'", false)],
            "an escaped backslash, then an escaped quote"
        );
        assert_eq!(
            kinds(r#""%d\\%.\x""#, Dialect::Lsb).unwrap(),
            vec![string(br"%d\%.\x", false)],
            "any other escape stays as written, for the Lua pattern"
        );
        assert!(
            kinds(r"'a\\\'", Dialect::Lsb).is_err(),
            "a backslash pair, then an escaped quote: unterminated"
        );
        // The 255-byte bound counts the bytes after unescaping.
        let escaped = format!("'{}'", r"\\".repeat(255));
        assert!(kinds(&escaped, Dialect::Lsb).is_ok());
        let escaped = format!("'{}'", r"\\".repeat(256));
        assert!(kinds(&escaped, Dialect::Lsb).is_err());
        assert!(kinds("'abc", Dialect::Heka).is_err());
        assert!(
            kinds("'ab\nc'", Dialect::Heka).is_err(),
            "a newline ends heka input"
        );
        assert_eq!(
            kinds("'ab\nc'", Dialect::Lsb).unwrap(),
            vec![string(b"ab\nc", false)]
        );
        let long = format!("'{}'", "x".repeat(256));
        assert!(kinds(&long, Dialect::Lsb).is_err());
        assert!(kinds(&long, Dialect::Heka).is_ok());
    }

    #[test]
    fn regexes_unescape_slashes() {
        assert_eq!(
            kinds(r"/a\/b\d/", Dialect::Heka).unwrap(),
            vec![TokenKind::Regex(r"a/b\d".into())]
        );
        assert!(kinds("/abc", Dialect::Heka).is_err());
        assert!(kinds("/abc/", Dialect::Lsb).is_err());
    }

    #[test]
    fn fields_take_up_to_two_indices() {
        let path = |name: &[u8], field_index, array_index| {
            TokenKind::Fields(FieldPath {
                name: name.into(),
                field_index,
                array_index,
            })
        };
        assert_eq!(
            kinds("Fields[foo]", Dialect::Heka).unwrap(),
            vec![path(b"foo", 0, 0)]
        );
        assert_eq!(
            kinds("Fields[a b][1][2]", Dialect::Heka).unwrap(),
            vec![path(b"a b", 1, 2)]
        );
        assert_eq!(
            kinds("Fields[]", Dialect::Lsb).unwrap(),
            vec![path(b"", 0, 0)]
        );
        for bad in [
            "Fields[]",
            "Fields[test][]",
            "Fields[test][a]",
            "Fields[test][xxxx",
            "Fields",
        ] {
            assert!(kinds(bad, Dialect::Heka).is_err(), "{bad}");
        }
        assert!(kinds("Fields[x][256]", Dialect::Lsb).is_err());
        assert!(kinds("Fields[x][256]", Dialect::Heka).is_ok());
        assert!(kinds("Fields[x][65536]", Dialect::Heka).is_err());
        assert!(kinds("Fields[x][99999999999999999999]", Dialect::Heka).is_err());
    }

    #[test]
    fn whitespace_and_newlines_per_dialect() {
        assert_eq!(
            kinds("TRUE\nbogus", Dialect::Heka).unwrap(),
            vec![TokenKind::True]
        );
        assert!(kinds("TRUE\r", Dialect::Heka).is_err());
        assert_eq!(
            kinds("TRUE\r\n\t", Dialect::Lsb).unwrap(),
            vec![TokenKind::True]
        );
    }

    #[test]
    fn operators_and_errors() {
        assert_eq!(
            kinds("==!=<<=>>==~!~&&||()", Dialect::Heka).unwrap(),
            vec![
                TokenKind::Compare(Relation::Equal),
                TokenKind::Compare(Relation::NotEqual),
                TokenKind::Compare(Relation::Less),
                TokenKind::Compare(Relation::LessOrEqual),
                TokenKind::Compare(Relation::Greater),
                TokenKind::Compare(Relation::GreaterOrEqual),
                TokenKind::Match { negated: false },
                TokenKind::Match { negated: true },
                TokenKind::And,
                TokenKind::Or,
                TokenKind::LeftParen,
                TokenKind::RightParen,
            ]
        );
        let error = kinds("Type = 'x'", Dialect::Heka).unwrap_err();
        assert_eq!(error.position(), 5);
        assert!(kinds("bogus", Dialect::Heka)
            .unwrap_err()
            .to_string()
            .contains("unknown variable"));
        assert!(kinds("é", Dialect::Heka).is_err());
    }
}
