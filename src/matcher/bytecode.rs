//! The compiled form of an expression: a flat array of [`Op`]s with forward jumps.
//!
//! Each op is one test and two targets: where to go when the test is true and when it is false.
//! A target is another op *after* this one, or the verdict ([`Target::Accept`],
//! [`Target::Reject`]). `&&` and `||` are not ops: they are the way the targets are wired, so
//! short-circuiting costs nothing and one evaluation runs at most one test per op.
//!
//! A [`Test`] is self-contained: it names what to read ([`Read`]), what to check about it
//! ([`Predicate`]), and the verdict when the value is absent (`absent`), which the compiler works
//! out once from the dialect's rules. The evaluator therefore knows nothing about dialects.
//!
//! Invariants (checked by `Program::new`): every jump goes forward, the program holds at most
//! `MATCHER_OPS_MAX` ops, and op 0 is the entry.

use std::fmt;

use memchr::memmem;

use super::ast::{FieldPath, Relation};
use crate::message::view::format_uuid;
use crate::message::{FieldValue, IntHeader, MessageView, StrHeader};

/// Where evaluation goes after a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The message matches.
    Accept,
    /// The message does not match.
    Reject,
    /// Continue at this op (always a later one).
    Op(u16),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Accept => f.write_str("MATCH"),
            Target::Reject => f.write_str("NO MATCH"),
            Target::Op(index) => write!(f, "{index:04}"),
        }
    }
}

/// One step: run `test`, then go to `on_true` or `on_false`.
#[derive(Clone, Debug)]
pub struct Op {
    /// What this op checks.
    pub test: Test,
    /// Where to go when the test holds.
    pub on_true: Target,
    /// Where to go when it does not.
    pub on_false: Target,
}

/// One test against the message.
#[derive(Clone, Debug)]
pub struct Test {
    /// What to read from the message.
    pub read: Read,
    /// What must hold for the value read, when it is present.
    pub predicate: Predicate,
    /// The verdict when the value is absent (missing header, field or array index).
    pub absent: bool,
}

/// What a test reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Read {
    /// The Uuid as 36 characters of lower-case hex text (heka dialect).
    UuidText,
    /// The Uuid as its 16 raw bytes (lsb dialect).
    UuidRaw,
    /// The Timestamp header, as an f64 of nanoseconds.
    Timestamp,
    /// A text header, as bytes.
    Str(StrHeader),
    /// Severity or Pid, as an f64.
    Int(IntHeader),
    /// A dynamic field's value, as bytes, an f64 or a boolean by its type.
    Field(FieldPath),
}

/// What a test checks about the value it read. A value of the wrong type (a number compared
/// with a string, a regex against an integer field) fails every predicate but `Nil`.
#[derive(Clone, Debug)]
// Built once per program at config load; evaluation reads it in place, so size costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Predicate {
    /// Byte-wise comparison with a string literal.
    Bytes {
        /// The relation the value must have to the literal.
        relation: Relation,
        /// The string literal, unescaped.
        literal: Box<[u8]>,
    },
    /// f64 comparison with a number literal.
    Number {
        /// The relation the value must have to the literal.
        relation: Relation,
        /// The number literal.
        literal: f64,
    },
    /// `== TRUE`, `!= FALSE`…: `equal` is the operator; with `numbers` (lsb) a number field
    /// equals TRUE when it is 1 and FALSE when it is 0.
    Boolean {
        /// The literal: `TRUE` or `FALSE`.
        value: bool,
        /// Whether the operator is `==` (true) or `!=` (false).
        equal: bool,
        /// Whether a number field compares too (lsb dialect): 1 as TRUE, 0 as FALSE.
        numbers: bool,
    },
    /// `== NIL` (`equal`) or `!= NIL` on a value that is present.
    Nil {
        /// Whether the operator is `==` (true) or `!=` (false).
        equal: bool,
    },
    /// `=~` (or `!~`, `negated`).
    Match {
        /// How the value is tested against the pattern.
        matcher: StringMatcher,
        /// Whether the operator is `!~`.
        negated: bool,
        /// The pattern as written, without delimiters, for display.
        source: Box<str>,
        /// Whether the pattern is a Lua pattern (lsb) rather than a regex (heka), for display.
        lua: bool,
        /// Whether the Lua pattern was marked plain text with `%`, for display.
        plain: bool,
    },
}

/// How a pattern is tested.
#[derive(Clone, Debug)]
// A memmem finder is large but built once at config load; boxing it adds a pointer chase per
// evaluation.
#[allow(clippy::large_enum_variant)]
pub enum StringMatcher {
    /// The pattern is `^literal$`.
    Equal(Box<[u8]>),
    /// The pattern is `^literal`.
    Prefix(Box<[u8]>),
    /// The pattern is `literal$`.
    Suffix(Box<[u8]>),
    /// The pattern is a literal found anywhere.
    Contains(Box<memmem::Finder<'static>>),
    /// Anything else.
    Regex(regex::bytes::Regex),
}

impl StringMatcher {
    /// Whether `text` matches: equals, starts with, ends with or contains the literal, or
    /// matches the regex.
    #[inline]
    pub fn is_match(&self, text: &[u8]) -> bool {
        match self {
            StringMatcher::Equal(literal) => text == &literal[..],
            StringMatcher::Prefix(literal) => text.starts_with(literal),
            StringMatcher::Suffix(literal) => text.ends_with(literal),
            StringMatcher::Contains(finder) => finder.find(text).is_some(),
            StringMatcher::Regex(regex) => regex.is_match(text),
        }
    }
}

/// A value read from the message.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    /// Bytes: a text header, the Uuid, or a string or bytes field.
    Bytes(&'a [u8]),
    /// A number: Timestamp, Severity, Pid, or an integer or double field.
    Number(f64),
    /// A boolean field.
    Boolean(bool),
}

/// Room for the Uuid's 36-character text form, which is built rather than borrowed.
pub type UuidText = [u8; 36];

/// Reads what `read` names from the message, or `None` when it is absent. The Uuid's text
/// form is written to `text`, which the value then borrows.
#[inline]
pub fn read<'b>(
    read: &Read,
    message: &'b MessageView<'_>,
    text: &'b mut UuidText,
) -> Option<Value<'b>> {
    match read {
        Read::Str(header) => message.str_header(*header).map(Value::Bytes),
        Read::Int(header) => message
            .int_header(*header)
            .map(|number| Value::Number(number as f64)),
        Read::Timestamp => message
            .timestamp()
            .map(|number| Value::Number(number as f64)),
        Read::UuidText => {
            let raw: &[u8; 16] = message.uuid()?.try_into().ok()?;
            *text = format_uuid(raw);
            Some(Value::Bytes(text))
        }
        Read::UuidRaw => message.uuid().map(Value::Bytes),
        Read::Field(path) => {
            let field = message.field(&path.name, path.field_index as usize)?;
            Some(match field.value(path.array_index as usize)? {
                FieldValue::String(bytes) | FieldValue::Bytes(bytes) => Value::Bytes(bytes),
                FieldValue::Integer(number) => Value::Number(number as f64),
                FieldValue::Double(number) => Value::Number(number),
                FieldValue::Bool(flag) => Value::Boolean(flag),
            })
        }
    }
}

impl Predicate {
    /// Whether the predicate holds for a value that is present.
    #[inline]
    pub fn apply(&self, value: Value<'_>) -> bool {
        match value {
            Value::Bytes(bytes) => self.apply_bytes(bytes),
            Value::Number(number) => match self {
                Predicate::Number { relation, literal } => relation.holds_f64(number, *literal),
                Predicate::Boolean {
                    value,
                    equal,
                    numbers: true,
                } => (number == f64::from(u8::from(*value))) == *equal,
                Predicate::Nil { equal } => !equal,
                _ => false,
            },
            Value::Boolean(flag) => match self {
                Predicate::Boolean { value, equal, .. } => (flag == *value) == *equal,
                Predicate::Nil { equal } => !equal,
                _ => false,
            },
        }
    }

    #[inline(always)]
    fn apply_bytes(&self, bytes: &[u8]) -> bool {
        match self {
            // Equality first checks the lengths, which usually settles it without a memcmp.
            Predicate::Bytes {
                relation: Relation::Equal,
                literal,
            } => bytes == &literal[..],
            Predicate::Bytes {
                relation: Relation::NotEqual,
                literal,
            } => bytes != &literal[..],
            Predicate::Bytes { relation, literal } => relation.holds(bytes.cmp(literal)),
            Predicate::Match {
                matcher, negated, ..
            } => matcher.is_match(bytes) != *negated,
            Predicate::Nil { equal } => !equal,
            _ => false,
        }
    }
}

impl Test {
    /// Runs the test. Never panics and never allocates.
    #[inline]
    pub fn eval(&self, message: &MessageView<'_>) -> bool {
        // The commonest test, a string header against a string, skips the general dispatch.
        if let (Read::Str(header), Predicate::Bytes { relation, literal }) =
            (&self.read, &self.predicate)
        {
            return match message.str_header(*header) {
                Some(bytes) => match relation {
                    Relation::Equal => bytes == &literal[..],
                    Relation::NotEqual => bytes != &literal[..],
                    _ => relation.holds(bytes.cmp(literal)),
                },
                None => self.absent,
            };
        }
        let mut text = [0u8; 36];
        match read(&self.read, message, &mut text) {
            Some(value) => self.predicate.apply(value),
            None => self.absent,
        }
    }

    /// A string that two tests share exactly when they are the same test (for deduplication
    /// across programs). Built at configuration time.
    pub fn key(&self) -> String {
        let predicate = match &self.predicate {
            Predicate::Number { relation, literal } => {
                format!("{relation:?} {:x}", literal.to_bits())
            }
            Predicate::Match {
                negated,
                source,
                lua,
                plain,
                ..
            } => {
                format!("match {negated} {lua} {plain} {source:?}")
            }
            other => format!("{other:?}"),
        };
        format!("{:?} {predicate} {}", self.read, self.absent)
    }
}

impl fmt::Display for Read {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Read::UuidText => f.write_str("Uuid(text)"),
            Read::UuidRaw => f.write_str("Uuid(raw)"),
            Read::Timestamp => f.write_str("Timestamp"),
            Read::Str(header) => write!(f, "{header:?}"),
            Read::Int(header) => write!(f, "{header:?}"),
            Read::Field(path) => path.fmt(f),
        }
    }
}

fn literal_text(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Predicate::Bytes { relation, literal } => {
                write!(f, "{} {}", relation.symbol(), literal_text(literal))
            }
            Predicate::Number { relation, literal } => write!(f, "{} {literal}", relation.symbol()),
            Predicate::Boolean {
                value,
                equal,
                numbers,
            } => {
                let symbol = if *equal { "==" } else { "!=" };
                let name = if *value { "TRUE" } else { "FALSE" };
                let also = if *numbers { " (or the number 1/0)" } else { "" };
                write!(f, "{symbol} {name}{also}")
            }
            Predicate::Nil { equal } => f.write_str(if *equal { "== NIL" } else { "!= NIL" }),
            Predicate::Match {
                matcher,
                negated,
                source,
                lua,
                plain,
            } => {
                let symbol = if *negated { "!~" } else { "=~" };
                if *lua {
                    let suffix = if *plain { "%" } else { "" };
                    write!(f, "{symbol} '{}'{suffix}", source.escape_debug())?;
                } else {
                    write!(f, "{symbol} /{source}/")?;
                }
                match matcher {
                    StringMatcher::Equal(literal) => {
                        write!(f, " (equals {})", literal_text(literal))
                    }
                    StringMatcher::Prefix(literal) => {
                        write!(f, " (starts with {})", literal_text(literal))
                    }
                    StringMatcher::Suffix(literal) => {
                        write!(f, " (ends with {})", literal_text(literal))
                    }
                    StringMatcher::Contains(finder) => {
                        write!(f, " (contains {})", literal_text(finder.needle()))
                    }
                    StringMatcher::Regex(_) => f.write_str(" (regex)"),
                }
            }
        }
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.read, self.predicate)
    }
}
