//! The message matcher: Heka's `message_matcher` expressions compiled to bytecode.
//!
//! Every filter and output picks its messages with an expression such as
//! `Type == 'nginx.access' && Fields[status] >= 500`. [`compile`] turns it, once, at
//! configuration load, into a [`Program`]; [`Program::matches`] then runs on the ingest core for
//! every message. [`MatcherSet`] evaluates many programs against one message, sharing the tests
//! they have in common.
//!
//! Two dialects ([`Dialect`]) are spoken, chosen per configuration:
//!
//! - `heka` (default): the grammar of Heka's Go matcher, regexes in RE2 syntax between slashes.
//! - `lsb`: the grammar of lua_sandbox and Hindsight, with quoted Lua patterns, NIL on optional
//!   headers, RFC 3339 timestamps and that implementation's limits.
//!
//! `docs/matcher.md` describes both grammars, the bytecode and the measured speed.
//!
//! Pipeline: [`lexer`] → [`parser`] (both dialects) → [`ast`] → `compile.rs` → [`bytecode`] →
//! [`vm`]; `set.rs` holds [`MatcherSet`]. The straightforward tree evaluator in `tree.rs` is the
//! test oracle the compiled programs are checked against.
//!
//! Invariants and limits:
//! - A program is a flat array of at most [`MATCHER_OPS_MAX`] ops whose jumps only go forward;
//!   one evaluation runs at most one test per op and cannot loop.
//! - Evaluation never panics and never allocates; it reads only the headers and fields its
//!   tests name, through the message's lazy view, and never decodes the whole message.
//! - Regexes are compiled once, each bounded to [`MATCHER_REGEX_BYTES_MAX`]; literal patterns
//!   become equality, prefix, suffix or `memmem` substring tests.
//! - Compilation never panics either, whatever the input: errors name the byte position and
//!   what was expected.
//!
//! [`MATCHER_OPS_MAX`]: crate::limits::MATCHER_OPS_MAX
//! [`MATCHER_REGEX_BYTES_MAX`]: crate::limits::MATCHER_REGEX_BYTES_MAX

pub mod ast;
pub mod bytecode;
mod compile;
pub mod lexer;
pub mod parser;
pub mod pattern;
mod set;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tree;
pub mod vm;

use std::fmt;
use std::str::FromStr;

pub use set::MatcherSet;

use crate::limits::MATCHER_OPS_MAX;
use crate::message::MessageView;
use bytecode::{Op, Target};

/// Which grammar an expression is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// Heka's Go matcher (`[hekad] matcher_dialect = "heka"`, the default).
    #[default]
    Heka,
    /// lua_sandbox's and Hindsight's matcher (`matcher_dialect = "lsb"`).
    Lsb,
}

impl Dialect {
    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Heka => "heka",
            Dialect::Lsb => "lsb",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name given is neither `heka` nor `lsb`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown matcher dialect '{0}': expected 'heka' or 'lsb'")]
pub struct UnknownDialect(pub String);

impl FromStr for Dialect {
    type Err = UnknownDialect;

    fn from_str(name: &str) -> Result<Dialect, UnknownDialect> {
        match name {
            "heka" => Ok(Dialect::Heka),
            "lsb" => Ok(Dialect::Lsb),
            other => Err(UnknownDialect(other.to_string())),
        }
    }
}

/// An expression that does not compile. Displays as
/// `matcher: <problem> at byte <position>: <expression>`, for example
/// `matcher: expected a string after '==' at byte 8: Type == 12`; the position is a 0-based
/// byte offset into the expression.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("matcher: {problem} at byte {position}: {expression}")]
pub struct MatcherError {
    problem: String,
    position: usize,
    expression: String,
}

/// Expressions longer than this are shown around the error position only.
const EXPRESSION_SHOWN_BYTES_MAX: usize = 160;

impl MatcherError {
    /// Builds an error at `position` (clamped to the expression) in `expression`.
    pub fn new(expression: &str, position: usize, problem: impl Into<String>) -> MatcherError {
        let position = position.min(expression.len());
        MatcherError {
            problem: problem.into(),
            position,
            expression: shown(expression, position),
        }
    }

    /// What is wrong, e.g. "expected a string after '=='".
    pub fn problem(&self) -> &str {
        &self.problem
    }

    /// The 0-based byte offset of the problem in the expression.
    pub fn position(&self) -> usize {
        self.position
    }

    /// A low-cardinality label for counters and logs.
    pub fn code(&self) -> &'static str {
        "matcher_syntax"
    }
}

/// The expression as an error shows it: on one line, and cut around `position` when long.
fn shown(expression: &str, position: usize) -> String {
    let mut start = 0;
    let mut end = expression.len();
    if end > EXPRESSION_SHOWN_BYTES_MAX {
        start = position.saturating_sub(EXPRESSION_SHOWN_BYTES_MAX / 2);
        end = (start + EXPRESSION_SHOWN_BYTES_MAX).min(expression.len());
        while !expression.is_char_boundary(start) {
            start -= 1;
        }
        while !expression.is_char_boundary(end) {
            end += 1;
        }
    }
    let mut text = String::with_capacity(end - start + 8);
    if start > 0 {
        text.push('…');
    }
    for character in expression[start..end].chars() {
        match character {
            '\n' => text.push_str("\\n"),
            '\r' => text.push_str("\\r"),
            '\t' => text.push_str("\\t"),
            other => text.push(other),
        }
    }
    if end < expression.len() {
        text.push('…');
    }
    text
}

/// A token's text as an error message quotes it: on one line, and cut when long.
pub(crate) fn excerpt(text: &str) -> String {
    const SHOWN_CHARS_MAX: usize = 40;
    let mut shown = String::with_capacity(text.len().min(SHOWN_CHARS_MAX * 2));
    for (count, character) in text.chars().enumerate() {
        if count == SHOWN_CHARS_MAX {
            shown.push('…');
            break;
        }
        match character {
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            '\t' => shown.push_str("\\t"),
            other => shown.push(other),
        }
    }
    shown
}

/// A compiled matcher. Cheap to clone (regexes are shared); each core holds its own clone.
#[derive(Clone, Debug)]
pub struct Program {
    source: Box<str>,
    dialect: Dialect,
    ops: Box<[Op]>,
    constant: Option<bool>,
}

/// Compiles `expression` in `dialect`.
///
/// # Errors
/// A [`MatcherError`] naming the byte position and what was expected.
pub fn compile(expression: &str, dialect: Dialect) -> Result<Program, MatcherError> {
    let tree = parser::parse(expression, dialect)?;
    let compiled = compile::compile(&tree, dialect)
        .map_err(|problem| MatcherError::new(expression, 0, problem))?;
    let (ops, constant) = match compiled {
        compile::Compiled::Constant(value) => (Vec::new(), Some(value)),
        compile::Compiled::Ops(ops) => (ops, None),
    };
    Program::new(expression, dialect, ops, constant)
        .map_err(|problem| MatcherError::new(expression, 0, problem))
}

impl Program {
    /// Checks the invariants the evaluator relies on.
    fn new(
        source: &str,
        dialect: Dialect,
        ops: Vec<Op>,
        constant: Option<bool>,
    ) -> Result<Program, &'static str> {
        if ops.len() > MATCHER_OPS_MAX {
            return Err("the program is too long");
        }
        if constant.is_some() != ops.is_empty() {
            return Err("a program is either constant or has ops");
        }
        for (index, op) in ops.iter().enumerate() {
            for target in [op.on_true, op.on_false] {
                if let Target::Op(next) = target {
                    let next = usize::from(next);
                    if next <= index || next >= ops.len() {
                        return Err("a jump that does not go forward within the program");
                    }
                }
            }
        }
        Ok(Program {
            source: source.into(),
            dialect,
            ops: ops.into(),
            constant,
        })
    }

    /// Whether the message matches. Never panics and never allocates.
    #[inline]
    pub fn matches(&self, message: &MessageView<'_>) -> bool {
        match self.constant {
            Some(verdict) => verdict,
            None => vm::run(&self.ops, message),
        }
    }

    /// `Some(verdict)` for programs that ignore the message (`TRUE`, `FALSE`, `TRUE || …`).
    pub fn is_constant(&self) -> Option<bool> {
        self.constant
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The dialect it was compiled in.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The compiled ops, entry first.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
}

impl fmt::Display for Program {
    /// The disassembly `gyges matcher EXPR` prints: one line per op, with its targets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "; matcher ({} dialect): {}",
            self.dialect,
            shown(&self.source, 0)
        )?;
        if let Some(verdict) = self.constant {
            let verdict = if verdict { "MATCH" } else { "NO MATCH" };
            return writeln!(f, "; constant: every message is {verdict}; no ops");
        }
        writeln!(
            f,
            "; {} op(s); each runs its test, then continues at its true or false target",
            self.ops.len()
        )?;
        for (index, op) in self.ops.iter().enumerate() {
            let absent = if op.test.absent { "true" } else { "false" };
            writeln!(
                f,
                "{index:04}  {}\n      if absent: {absent}; true -> {}; false -> {}",
                op.test, op.on_true, op.on_false
            )?;
        }
        Ok(())
    }
}
