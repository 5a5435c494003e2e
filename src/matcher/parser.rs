//! Recursive-descent parsers for both dialects, producing an [`Expr`].
//!
//! Grammar shared by both dialects (`&&` binds tighter than `||`; both are left to right):
//!
//! ```text
//! or      := and ('||' and)*
//! and     := primary ('&&' primary)*
//! primary := '(' or ')' | TRUE | FALSE | test
//! test    := variable operator literal
//! ```
//!
//! The heka dialect accepts a sequence of expressions and keeps the last one, as Go's
//! `spec := expr | spec expr` rule does; the lsb dialect requires exactly one. Which literal may
//! follow which variable and operator is each dialect's table, in `Parser::literal`.
//! Recursion is bounded by [`MATCHER_NESTING_MAX`], and the number of tests by
//! [`MATCHER_TESTS_MAX`] (heka) or [`MATCHER_TESTS_LSB_MAX`] (lsb).

use super::ast::{Expr, Header, Literal, Operator, Pattern, Relation, Subject, Test};
use super::lexer::{Lexer, Token, TokenKind};
use super::pattern;
use super::{excerpt, Dialect, MatcherError};
use crate::limits::{
    MATCHER_EXPRESSION_BYTES_MAX, MATCHER_NESTING_MAX, MATCHER_TESTS_LSB_MAX, MATCHER_TESTS_MAX,
};

/// Parses an expression in `dialect`.
///
/// # Errors
/// The first problem found, with its byte position.
pub fn parse(source: &str, dialect: Dialect) -> Result<Expr, MatcherError> {
    if source.len() > MATCHER_EXPRESSION_BYTES_MAX {
        let problem = format!("expression longer than {MATCHER_EXPRESSION_BYTES_MAX} bytes");
        return Err(MatcherError::new(
            source,
            MATCHER_EXPRESSION_BYTES_MAX,
            problem,
        ));
    }
    let mut parser = Parser {
        source,
        lexer: Lexer::new(source, dialect),
        peeked: None,
        previous: None,
        dialect,
        depth: 0,
        tests: 0,
    };
    let mut expression = parser.or()?;
    loop {
        let token = parser.peek()?;
        match (&token.kind, dialect) {
            (TokenKind::End, _) => return Ok(expression),
            // Go's grammar accepts `spec expr`: a later expression replaces the earlier one.
            (
                TokenKind::LeftParen
                | TokenKind::True
                | TokenKind::False
                | TokenKind::Header(_)
                | TokenKind::Fields(_),
                Dialect::Heka,
            ) => expression = parser.or()?,
            _ => return Err(parser.expected(&token, "'&&', '||' or the end of the expression")),
        }
    }
}

struct Parser<'s> {
    source: &'s str,
    lexer: Lexer<'s>,
    peeked: Option<Token>,
    /// The span of the last token taken, for "after '…'" in messages.
    previous: Option<(usize, usize)>,
    dialect: Dialect,
    depth: usize,
    tests: usize,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<Token, MatcherError> {
        if let Some(token) = &self.peeked {
            return Ok(token.clone());
        }
        let token = self.lexer.next_token()?;
        self.peeked = Some(token.clone());
        Ok(token)
    }

    fn take(&mut self) -> Result<Token, MatcherError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        self.previous = Some((token.start, token.end));
        Ok(token)
    }

    fn error(&self, position: usize, problem: impl Into<String>) -> MatcherError {
        MatcherError::new(self.source, position, problem)
    }

    /// "expected X after 'previous token'" at the unexpected token.
    fn expected(&self, found: &Token, what: &str) -> MatcherError {
        let problem = match self.previous {
            Some((start, end)) => {
                let text = excerpt(&self.source[start..end]);
                if text.starts_with(['\'', '"', '/']) {
                    format!("expected {what} after {text}")
                } else {
                    format!("expected {what} after '{text}'")
                }
            }
            None => format!("expected {what}"),
        };
        self.error(found.start, problem)
    }

    fn or(&mut self) -> Result<Expr, MatcherError> {
        let mut items = vec![self.and()?];
        while self.peek()?.kind == TokenKind::Or {
            self.take()?;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Any(items)
        })
    }

    fn and(&mut self) -> Result<Expr, MatcherError> {
        let mut items = vec![self.primary()?];
        while self.peek()?.kind == TokenKind::And {
            self.take()?;
            items.push(self.primary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::All(items)
        })
    }

    fn count_test(&mut self, token: &Token) -> Result<(), MatcherError> {
        let maximum = match self.dialect {
            Dialect::Heka => MATCHER_TESTS_MAX,
            Dialect::Lsb => MATCHER_TESTS_LSB_MAX,
        };
        self.tests += 1;
        if self.tests > maximum {
            return Err(self.error(token.start, format!("more than {maximum} tests")));
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Expr, MatcherError> {
        let token = self.peek()?;
        match token.kind {
            TokenKind::LeftParen => {
                self.take()?;
                if self.depth >= MATCHER_NESTING_MAX {
                    let problem = format!("parentheses nested deeper than {MATCHER_NESTING_MAX}");
                    return Err(self.error(token.start, problem));
                }
                self.depth += 1;
                let inner = self.or()?;
                self.depth -= 1;
                let close = self.peek()?;
                if close.kind != TokenKind::RightParen {
                    return Err(self.expected(&close, "'&&', '||' or ')'"));
                }
                self.take()?;
                Ok(inner)
            }
            TokenKind::True | TokenKind::False => {
                self.count_test(&token)?;
                self.take()?;
                Ok(Expr::Constant(token.kind == TokenKind::True))
            }
            TokenKind::Header(header) => {
                self.count_test(&token)?;
                self.take()?;
                self.test(Subject::Header(header))
            }
            TokenKind::Fields(ref path) => {
                self.count_test(&token)?;
                self.take()?;
                self.test(Subject::Field(path.clone()))
            }
            TokenKind::Nil => Err(self.error(token.start, "NIL can only follow '==' or '!='")),
            _ => Err(self.expected(&token, "a test, TRUE, FALSE or '('")),
        }
    }

    /// The operator and literal after a variable.
    fn test(&mut self, subject: Subject) -> Result<Expr, MatcherError> {
        let token = self.peek()?;
        let operator = match token.kind {
            TokenKind::Compare(relation) => Operator::Compare(relation),
            TokenKind::Match { negated } => Operator::Match { negated },
            _ => return Err(self.expected(&token, "a comparison operator")),
        };
        if let (Operator::Match { .. }, Subject::Header(header)) = (operator, &subject) {
            if header.is_numeric() {
                let problem = format!(
                    "'{}' applies to text, and '{}' is a number",
                    operator.symbol(),
                    header.name()
                );
                return Err(self.error(token.start, problem));
            }
        }
        self.take()?;
        let value = self.peek()?;
        let literal = self.literal(&subject, operator, &value)?;
        self.take()?;
        Ok(Expr::Test(Test {
            subject,
            operator,
            literal,
        }))
    }

    /// Checks that `value` may follow `subject operator` in this dialect, and builds the literal.
    fn literal(
        &self,
        subject: &Subject,
        operator: Operator,
        value: &Token,
    ) -> Result<Literal, MatcherError> {
        let heka = self.dialect == Dialect::Heka;
        let header = match subject {
            Subject::Header(header) => Some(*header),
            Subject::Field(_) => None,
        };
        let equality = matches!(
            operator,
            Operator::Compare(Relation::Equal) | Operator::Compare(Relation::NotEqual)
        );
        match (&value.kind, operator) {
            (TokenKind::String { bytes, plain }, Operator::Compare(_)) => {
                if *plain {
                    return Err(self.error(value.end - 1, "'%' can only follow a Lua pattern"));
                }
                match header {
                    Some(Header::Timestamp) if !heka => self.timestamp(bytes, value),
                    Some(header) if header.is_numeric() => Err(self.expected(value, "a number")),
                    _ => Ok(Literal::String(bytes.as_slice().into())),
                }
            }
            (TokenKind::Number(number), Operator::Compare(_)) => match header {
                Some(header) if !header.is_numeric() => Err(self.expected(value, "a string")),
                _ => Ok(Literal::Number(*number)),
            },
            (TokenKind::Regex(source), Operator::Match { .. }) => {
                let (regex, plan) = pattern::compile_regex(source).map_err(|problem| {
                    self.error(
                        value.start,
                        format!("invalid regular expression: {problem}"),
                    )
                })?;
                let source = source.as_str().into();
                Ok(Literal::Pattern(Pattern {
                    source,
                    plain: false,
                    regex,
                    plan,
                }))
            }
            (TokenKind::String { bytes, plain }, Operator::Match { .. }) if !heka => {
                let (regex, plan) = pattern::compile_lua(bytes, *plain)
                    .map_err(|problem| self.error(value.start, problem))?;
                let source = String::from_utf8_lossy(bytes).into();
                Ok(Literal::Pattern(Pattern {
                    source,
                    plain: *plain,
                    regex,
                    plan,
                }))
            }
            (TokenKind::True | TokenKind::False, Operator::Compare(relation))
                if header.is_none() =>
            {
                if heka && relation != Relation::Equal {
                    let problem = "TRUE and FALSE can only follow '==' in the heka dialect";
                    return Err(self.error(value.start, problem));
                }
                if !equality {
                    return Err(
                        self.error(value.start, "TRUE and FALSE can only follow '==' or '!='")
                    );
                }
                Ok(Literal::Boolean(value.kind == TokenKind::True))
            }
            (TokenKind::Nil, Operator::Compare(_)) => {
                if !equality {
                    return Err(self.error(value.start, "NIL can only follow '==' or '!='"));
                }
                self.nil_allowed(header, value)?;
                Ok(Literal::Nil)
            }
            _ => Err(self.expected(value, self.wanted(header, operator))),
        }
    }

    /// Whether `header` (None: a field) may be compared with NIL in this dialect.
    fn nil_allowed(&self, header: Option<Header>, value: &Token) -> Result<(), MatcherError> {
        let Some(header) = header else {
            return Ok(());
        };
        let problem = match (self.dialect, header) {
            (Dialect::Heka, _) => "NIL can only be compared with Fields[…] in the heka dialect",
            (Dialect::Lsb, Header::Uuid | Header::Timestamp) => {
                "Uuid and Timestamp are required headers and are never NIL"
            }
            (Dialect::Lsb, Header::Severity) => "Severity defaults to 7 and is never NIL",
            (Dialect::Lsb, _) => return Ok(()),
        };
        Err(self.error(value.start, problem))
    }

    /// What may follow `header operator` (None: a field), for messages.
    fn wanted(&self, header: Option<Header>, operator: Operator) -> &'static str {
        let heka = self.dialect == Dialect::Heka;
        match (operator, header) {
            (Operator::Match { .. }, _) if heka => "a /regular expression/",
            (Operator::Match { .. }, _) => "a quoted Lua pattern",
            (Operator::Compare(_), Some(Header::Timestamp)) if !heka => {
                "a number or a quoted RFC 3339 timestamp"
            }
            (Operator::Compare(_), Some(header)) if header.is_numeric() => "a number",
            (Operator::Compare(_), Some(_)) => "a string",
            (Operator::Compare(_), None) => "a string, a number, TRUE, FALSE or NIL",
        }
    }

    /// An lsb Timestamp compared with a quoted RFC 3339 time: nanoseconds since the epoch.
    fn timestamp(&self, text: &[u8], value: &Token) -> Result<Literal, MatcherError> {
        match parse_rfc3339(text) {
            Some(nanoseconds) => Ok(Literal::Number(nanoseconds)),
            None => Err(self.error(
                value.start,
                "expected an RFC 3339 timestamp such as '2015-04-11T17:30:26Z'",
            )),
        }
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM|±HHMM)` to nanoseconds since the Unix epoch,
/// as an f64 (the precision lua_sandbox has). lua_sandbox accepts the offset without its
/// colon only; both forms are accepted here.
pub fn parse_rfc3339(text: &[u8]) -> Option<f64> {
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = text.get(range)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        digits.iter().try_fold(0i64, |value, digit| {
            Some(value * 10 + i64::from(digit - b'0'))
        })
    };
    let punctuation = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if punctuation
        .iter()
        .any(|&(at, byte)| text.get(at) != Some(&byte))
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    if !valid {
        return None;
    }
    let mut at = 19;
    let mut fraction = 0.0;
    if text.get(at) == Some(&b'.') {
        let digits_start = at + 1;
        at = digits_start;
        while text.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == digits_start {
            return None;
        }
        let fraction_text = std::str::from_utf8(&text[digits_start - 1..at]).ok()?;
        fraction = fraction_text.parse::<f64>().ok()?;
    }
    let offset_seconds = match text.get(at..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (hours, minutes) = match rest {
                [_, _, b':', _, _] => (number(at + 1..at + 3)?, number(at + 4..at + 6)?),
                [_, _, _, _] => (number(at + 1..at + 3)?, number(at + 3..at + 5)?),
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -magnitude
            } else {
                magnitude
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some((seconds as f64 + fraction) * 1e9)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_read_as_epoch_nanoseconds() {
        let seconds = |text: &str| parse_rfc3339(text.as_bytes()).map(|ns| ns / 1e9);
        assert_eq!(seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(seconds("2015-04-11T17:30:26Z"), Some(1_428_773_426.0));
        assert_eq!(seconds("2015-04-11T17:30:26.5Z"), Some(1_428_773_426.5));
        assert_eq!(seconds("2015-04-11T18:30:26+01:00"), Some(1_428_773_426.0));
        assert_eq!(seconds("2015-04-11T10:30:26-0700"), Some(1_428_773_426.0));
        assert_eq!(seconds("2000-02-29T00:00:00Z"), Some(951_782_400.0));
        for bad in [
            "20150411T173026",
            "2015-04-11T17:30:26",
            "2015-13-11T17:30:26Z",
            "2015-04-11T24:30:26Z",
            "2015-04-11T17:30:26.Z",
            "2015-04-11 17:30:26Z",
            "2015-04-11T17:30:26+1",
            "",
        ] {
            assert_eq!(seconds(bad), None, "{bad}");
        }
    }
}
