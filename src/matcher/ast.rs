//! The parsed form of a matcher expression, shared by both dialect front-ends.
//!
//! The tree says *what* an expression tests, in the dialect's own terms; it does not decide how
//! absent values read (that is the dialect's business, applied by `compile` and by the tree
//! evaluator that serves as the test oracle). `&&` and `||` chains are n-ary nodes, so the
//! tree's depth is bounded by the nesting of parentheses, not by the number of tests.

use std::cmp::Ordering;
use std::fmt;

use super::pattern::PatternPlan;

/// A boolean expression.
#[derive(Clone, Debug)]
pub enum Expr {
    /// `TRUE` or `FALSE`.
    Constant(bool),
    /// One comparison.
    Test(Test),
    /// `a && b && …`: true when every item is; evaluated left to right, stopping at the first
    /// false item.
    All(Vec<Expr>),
    /// `a || b || …`: true when any item is; evaluated left to right, stopping at the first
    /// true item.
    Any(Vec<Expr>),
}

/// One comparison: a variable on the left, a literal on the right.
#[derive(Clone, Debug)]
pub struct Test {
    /// What the test reads from the message: the left-hand side.
    pub subject: Subject,
    /// How the value is compared with the literal.
    pub operator: Operator,
    /// The right-hand side, as written in the expression.
    pub literal: Literal,
}

/// What a test reads from the message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A message header such as `Type`.
    Header(Header),
    /// A dynamic field, `Fields[name][field_index][array_index]`.
    Field(FieldPath),
}

/// The message headers a matcher can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Header {
    /// `Uuid`: 36 characters of hex text in heka, the 16 raw bytes in lsb.
    Uuid,
    /// `Timestamp`: nanoseconds since the Unix epoch, compared as an f64.
    Timestamp,
    /// `Type`: the message type.
    Type,
    /// `Logger`: the producing plugin or program.
    Logger,
    /// `Severity`: the syslog severity, 7 when absent.
    Severity,
    /// `Payload`: the message body.
    Payload,
    /// `EnvVersion`: the version of the producer's message format.
    EnvVersion,
    /// `Pid`: the producer's process id.
    Pid,
    /// `Hostname`: the producing host.
    Hostname,
}

impl Header {
    /// The name as written in expressions.
    pub fn name(self) -> &'static str {
        match self {
            Header::Uuid => "Uuid",
            Header::Timestamp => "Timestamp",
            Header::Type => "Type",
            Header::Logger => "Logger",
            Header::Severity => "Severity",
            Header::Payload => "Payload",
            Header::EnvVersion => "EnvVersion",
            Header::Pid => "Pid",
            Header::Hostname => "Hostname",
        }
    }

    /// Parses a header name (case-sensitive, as both dialects are).
    pub fn from_name(name: &[u8]) -> Option<Header> {
        Some(match name {
            b"Uuid" => Header::Uuid,
            b"Timestamp" => Header::Timestamp,
            b"Type" => Header::Type,
            b"Logger" => Header::Logger,
            b"Severity" => Header::Severity,
            b"Payload" => Header::Payload,
            b"EnvVersion" => Header::EnvVersion,
            b"Pid" => Header::Pid,
            b"Hostname" => Header::Hostname,
            _ => return None,
        })
    }

    /// Whether the header holds a number (compared as f64) rather than text.
    pub fn is_numeric(self) -> bool {
        matches!(self, Header::Timestamp | Header::Severity | Header::Pid)
    }
}

/// `Fields[name][field_index][array_index]`; both indices default to 0.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldPath {
    /// The field's name, compared byte for byte.
    pub name: Box<[u8]>,
    /// Which field of that name, counting from 0 in message order.
    pub field_index: u32,
    /// Which value of the field's array, counting from 0.
    pub array_index: u32,
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Fields[{}][{}][{}]",
            self.name.escape_ascii(),
            self.field_index,
            self.array_index
        )
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Header(header) => f.write_str(header.name()),
            Subject::Field(path) => path.fmt(f),
        }
    }
}

/// The six relations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Relation {
    /// `==`: the value equals the literal.
    Equal,
    /// `!=`: the value differs from the literal.
    NotEqual,
    /// `<`: the value sorts before the literal.
    Less,
    /// `<=`: the value sorts before or equals the literal.
    LessOrEqual,
    /// `>`: the value sorts after the literal.
    Greater,
    /// `>=`: the value sorts after or equals the literal.
    GreaterOrEqual,
}

impl Relation {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Relation::Equal => "==",
            Relation::NotEqual => "!=",
            Relation::Less => "<",
            Relation::LessOrEqual => "<=",
            Relation::Greater => ">",
            Relation::GreaterOrEqual => ">=",
        }
    }

    /// Whether `left <relation> right` holds, given how left compares to right.
    #[inline]
    pub fn holds(self, ordering: Ordering) -> bool {
        match self {
            Relation::Equal => ordering == Ordering::Equal,
            Relation::NotEqual => ordering != Ordering::Equal,
            Relation::Less => ordering == Ordering::Less,
            Relation::LessOrEqual => ordering != Ordering::Greater,
            Relation::Greater => ordering == Ordering::Greater,
            Relation::GreaterOrEqual => ordering != Ordering::Less,
        }
    }

    /// Whether `left <relation> right` holds for floats, with IEEE semantics: every relation
    /// with a NaN is false except `!=`.
    #[inline]
    pub fn holds_f64(self, left: f64, right: f64) -> bool {
        match self {
            Relation::Equal => left == right,
            Relation::NotEqual => left != right,
            Relation::Less => left < right,
            Relation::LessOrEqual => left <= right,
            Relation::Greater => left > right,
            Relation::GreaterOrEqual => left >= right,
        }
    }
}

/// A test's operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `==`, `!=`, `<`, `<=`, `>` or `>=`.
    Compare(Relation),
    /// `=~` (negated: false) or `!~` (negated: true).
    Match {
        /// Whether the match is negated (`!~`).
        negated: bool,
    },
}

impl Operator {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Operator::Compare(relation) => relation.symbol(),
            Operator::Match { negated: false } => "=~",
            Operator::Match { negated: true } => "!~",
        }
    }
}

/// A test's right-hand side.
#[derive(Clone, Debug)]
pub enum Literal {
    /// A quoted string, unescaped, as bytes.
    String(Box<[u8]>),
    /// Every number is an f64, as in both upstream implementations.
    Number(f64),
    /// `TRUE` or `FALSE`.
    Boolean(bool),
    /// `NIL`: the value is absent (heka: fields only; lsb: also text headers and Pid).
    Nil,
    /// A regular expression (heka) or Lua pattern (lsb), compiled.
    Pattern(Pattern),
}

/// A compiled `=~` right-hand side.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// As written, without delimiters (for display).
    pub source: Box<str>,
    /// `'…'%` in the lsb dialect: the text is a plain substring.
    pub plain: bool,
    /// The whole pattern as a regex over bytes; always present, also for literals.
    pub regex: regex::bytes::Regex,
    /// How the compiled program will test it (a literal fast path or the regex).
    pub plan: PatternPlan,
}
