//! Lowers a parsed [`Expr`] to the flat [`Op`] array of a program.
//!
//! Tests become ops whose targets are wired for short-circuit evaluation ("jumping code"): in
//! `a && b` a false `a` jumps to wherever the whole conjunction's false goes, a true `a` falls
//! through to `b`; `||` is the mirror image. Ops are emitted right to left, so every target is
//! known when an op is emitted and every jump goes forward. `TRUE` and `FALSE` emit nothing:
//! they are the targets themselves, which folds constants away (`TRUE || x` is `TRUE`); a test
//! whose two targets coincide is dropped, and ops made unreachable by folding are removed.
//!
//! Each test's verdict for an absent value is decided here, from the dialect's rules:
//!
//! - heka: an absent header reads as Go's zero value (`""`; Timestamp and Pid 0) except
//!   Severity, which reads as 7; a missing field or array index is NIL.
//! - lsb: Timestamp absent reads as 0 and Severity as 7; other absent headers are NIL, which
//!   equals only NIL, differs from every value and sorts before every value (so `Type < 'a'`
//!   holds for a message without a Type); a pattern is matched against the empty string. A
//!   missing field or array index is NIL.

use memchr::memmem;

use super::ast::{Expr, Header, Literal, Operator, Relation, Subject, Test as AstTest};
use super::bytecode::{Op, Predicate, Read, StringMatcher, Target, Test, Value};
use super::pattern::PatternPlan;
use super::Dialect;
use crate::limits::MATCHER_OPS_MAX;
use crate::message::{IntHeader, StrHeader};

/// The compiled ops (entry first), or the constant verdict when no test decides anything.
pub enum Compiled {
    /// The expression's verdict does not depend on the message.
    Constant(bool),
    /// The ops, entry first, with forward jumps only.
    Ops(Vec<Op>),
}

/// Compiles an expression.
///
/// # Errors
/// Only when the program would exceed `MATCHER_OPS_MAX` ops, which the parser's test limit
/// already prevents; or when the tree pairs an operator with a literal the parsers never pair.
pub fn compile(expr: &Expr, dialect: Dialect) -> Result<Compiled, &'static str> {
    let mut emitter = Emitter {
        reversed: Vec::new(),
        dialect,
    };
    let entry = emitter.emit(expr, Target::Accept, Target::Reject)?;
    let entry = match entry {
        Target::Accept => return Ok(Compiled::Constant(true)),
        Target::Reject => return Ok(Compiled::Constant(false)),
        Target::Op(index) => usize::from(index),
    };
    let count = emitter.reversed.len();
    // Reverse emission order into execution order, renumbering targets.
    let forward = |target: Target| match target {
        Target::Op(reversed) => Target::Op((count - 1 - usize::from(reversed)) as u16),
        verdict => verdict,
    };
    let mut ops: Vec<Op> = emitter.reversed.into_iter().rev().collect();
    for op in &mut ops {
        op.on_true = forward(op.on_true);
        op.on_false = forward(op.on_false);
    }
    Ok(Compiled::Ops(remove_unreachable(ops, count - 1 - entry)))
}

/// Keeps the ops reachable from `entry`, renumbered so that the entry is op 0.
fn remove_unreachable(ops: Vec<Op>, entry: usize) -> Vec<Op> {
    let mut reachable = vec![false; ops.len()];
    reachable[entry] = true;
    // Jumps go forward, so one pass in order sees every op's predecessors first.
    for (index, op) in ops.iter().enumerate() {
        if reachable[index] {
            for target in [op.on_true, op.on_false] {
                if let Target::Op(next) = target {
                    reachable[usize::from(next)] = true;
                }
            }
        }
    }
    let mut renumbered = vec![0u16; ops.len()];
    let mut kept = 0u16;
    for (index, slot) in renumbered.iter_mut().enumerate() {
        if reachable[index] {
            *slot = kept;
            kept += 1;
        }
    }
    let renumber = |target: Target| match target {
        Target::Op(index) => Target::Op(renumbered[usize::from(index)]),
        verdict => verdict,
    };
    ops.into_iter()
        .enumerate()
        .filter(|(index, _)| reachable[*index])
        .map(|(_, op)| Op {
            on_true: renumber(op.on_true),
            on_false: renumber(op.on_false),
            ..op
        })
        .collect()
}

struct Emitter {
    /// Ops in reverse execution order; `Target::Op` holds indices into this vector meanwhile.
    reversed: Vec<Op>,
    dialect: Dialect,
}

impl Emitter {
    /// Emits `expr` so that it continues at `on_true` or `on_false`; returns its entry.
    fn emit(
        &mut self,
        expr: &Expr,
        on_true: Target,
        on_false: Target,
    ) -> Result<Target, &'static str> {
        match expr {
            Expr::Constant(value) => Ok(if *value { on_true } else { on_false }),
            Expr::Test(test) => {
                if on_true == on_false {
                    return Ok(on_true);
                }
                if self.reversed.len() >= MATCHER_OPS_MAX {
                    return Err("the program is too long");
                }
                let test = lower(test, self.dialect)?;
                let index = self.reversed.len() as u16;
                self.reversed.push(Op {
                    test,
                    on_true,
                    on_false,
                });
                Ok(Target::Op(index))
            }
            Expr::All(items) => {
                let mut next = on_true;
                for item in items.iter().rev() {
                    next = self.emit(item, next, on_false)?;
                }
                Ok(next)
            }
            Expr::Any(items) => {
                let mut next = on_false;
                for item in items.iter().rev() {
                    next = self.emit(item, on_true, next)?;
                }
                Ok(next)
            }
        }
    }
}

/// Lowers one parsed test, deciding its verdict for absent values.
pub fn lower(test: &AstTest, dialect: Dialect) -> Result<Test, &'static str> {
    let read = match &test.subject {
        Subject::Header(header) => match header {
            Header::Uuid if dialect == Dialect::Heka => Read::UuidText,
            Header::Uuid => Read::UuidRaw,
            Header::Timestamp => Read::Timestamp,
            Header::Type => Read::Str(StrHeader::Type),
            Header::Logger => Read::Str(StrHeader::Logger),
            Header::Payload => Read::Str(StrHeader::Payload),
            Header::EnvVersion => Read::Str(StrHeader::EnvVersion),
            Header::Hostname => Read::Str(StrHeader::Hostname),
            Header::Severity => Read::Int(IntHeader::Severity),
            Header::Pid => Read::Int(IntHeader::Pid),
        },
        Subject::Field(path) => Read::Field(path.clone()),
    };
    let predicate = match (test.operator, &test.literal) {
        (Operator::Compare(relation), Literal::String(literal)) => Predicate::Bytes {
            relation,
            literal: literal.clone(),
        },
        (Operator::Compare(relation), Literal::Number(literal)) => Predicate::Number {
            relation,
            literal: *literal,
        },
        (Operator::Compare(relation), Literal::Boolean(value)) => Predicate::Boolean {
            value: *value,
            equal: relation == Relation::Equal,
            numbers: dialect == Dialect::Lsb,
        },
        (Operator::Compare(relation), Literal::Nil) => Predicate::Nil {
            equal: relation == Relation::Equal,
        },
        (Operator::Match { negated }, Literal::Pattern(pattern)) => Predicate::Match {
            matcher: string_matcher(&pattern.plan, &pattern.regex),
            negated,
            source: pattern.source.clone(),
            lua: dialect == Dialect::Lsb,
            plain: pattern.plain,
        },
        _ => return Err("an operator paired with a literal it does not take"),
    };
    let absent = absent_verdict(dialect, &test.subject, &predicate);
    Ok(Test {
        read,
        predicate,
        absent,
    })
}

/// The cheapest way to test a pattern.
fn string_matcher(plan: &PatternPlan, regex: &regex::bytes::Regex) -> StringMatcher {
    match plan {
        PatternPlan::Literal {
            bytes,
            anchored_start: true,
            anchored_end: true,
        } => StringMatcher::Equal(bytes.clone()),
        PatternPlan::Literal {
            bytes,
            anchored_start: true,
            anchored_end: false,
        } => StringMatcher::Prefix(bytes.clone()),
        PatternPlan::Literal {
            bytes,
            anchored_start: false,
            anchored_end: true,
        } => StringMatcher::Suffix(bytes.clone()),
        PatternPlan::Literal { bytes, .. } => {
            StringMatcher::Contains(Box::new(memmem::Finder::new(bytes).into_owned()))
        }
        PatternPlan::Regex => StringMatcher::Regex(regex.clone()),
    }
}

/// The verdict of a test whose value is absent; see the module doc.
fn absent_verdict(dialect: Dialect, subject: &Subject, predicate: &Predicate) -> bool {
    let header = match subject {
        Subject::Field(_) => return matches!(predicate, Predicate::Nil { equal: true }),
        Subject::Header(header) => *header,
    };
    match (dialect, header) {
        (_, Header::Timestamp) | (Dialect::Heka, Header::Pid) => {
            predicate.apply(Value::Number(0.0))
        }
        (_, Header::Severity) => predicate.apply(Value::Number(7.0)),
        (Dialect::Heka, _) => predicate.apply(Value::Bytes(b"")),
        (Dialect::Lsb, _) => match predicate {
            Predicate::Nil { equal } => *equal,
            Predicate::Bytes { relation, .. } | Predicate::Number { relation, .. } => {
                // NIL differs from everything and sorts first.
                matches!(
                    relation,
                    Relation::NotEqual | Relation::Less | Relation::LessOrEqual
                )
            }
            Predicate::Match { .. } => predicate.apply(Value::Bytes(b"")),
            Predicate::Boolean { .. } => false,
        },
    }
}
