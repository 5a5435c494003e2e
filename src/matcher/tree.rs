//! The straightforward evaluator: walks the parsed tree over a fully decoded message.
//!
//! This is the test oracle the compiled programs are checked against. It shares nothing with
//! the compiled path but the parse tree: it decodes the whole message with prost instead of
//! reading the lazy view, applies each dialect's rules for absent values directly instead of
//! precomputing them, always runs the regex instead of literal fast paths, and recurses over
//! `&&` and `||` instead of following jumps.

use super::ast::{Expr, Header, Literal, Operator, Relation, Subject, Test};
use super::Dialect;
use crate::message::proto::{Message, ValueType};
use crate::message::view::format_uuid;

/// Whether `message` matches `expr`.
pub fn evaluate(expr: &Expr, message: &Message, dialect: Dialect) -> bool {
    match expr {
        Expr::Constant(value) => *value,
        Expr::Test(test) => evaluate_test(test, message, dialect),
        Expr::All(items) => items.iter().all(|item| evaluate(item, message, dialect)),
        Expr::Any(items) => items.iter().any(|item| evaluate(item, message, dialect)),
    }
}

/// A value read from a decoded message.
enum Value {
    Text(Vec<u8>),
    Number(f64),
    Boolean(bool),
}

fn evaluate_test(test: &Test, message: &Message, dialect: Dialect) -> bool {
    let header = match &test.subject {
        Subject::Field(path) => {
            let field = message
                .fields
                .iter()
                .filter(|field| field.name.as_bytes() == &path.name[..])
                .nth(path.field_index as usize);
            let index = path.array_index as usize;
            let value = field.and_then(|field| {
                match ValueType::try_from(field.value_type.unwrap_or(0)).ok()? {
                    ValueType::String => field
                        .value_string
                        .get(index)
                        .map(|text| Value::Text(text.clone().into())),
                    ValueType::Bytes => field.value_bytes.get(index).cloned().map(Value::Text),
                    ValueType::Integer => field
                        .value_integer
                        .get(index)
                        .map(|&number| Value::Number(number as f64)),
                    ValueType::Double => field.value_double.get(index).copied().map(Value::Number),
                    ValueType::Bool => field.value_bool.get(index).copied().map(Value::Boolean),
                }
            });
            return match value {
                Some(value) => compare(&value, test, dialect),
                None => matches!(
                    (test.operator, &test.literal),
                    (Operator::Compare(Relation::Equal), Literal::Nil)
                ),
            };
        }
        Subject::Header(header) => *header,
    };
    let text = |text: &Option<String>| text.as_ref().map(|text| Value::Text(text.clone().into()));
    let value = match header {
        Header::Uuid => match dialect {
            Dialect::Heka => <[u8; 16]>::try_from(message.uuid.as_slice())
                .ok()
                .map(|uuid| Value::Text(format_uuid(&uuid).to_vec())),
            Dialect::Lsb => (!message.uuid.is_empty()).then(|| Value::Text(message.uuid.clone())),
        },
        Header::Timestamp => Some(Value::Number(message.timestamp as f64)),
        Header::Type => text(&message.r#type),
        Header::Logger => text(&message.logger),
        Header::Payload => text(&message.payload),
        Header::EnvVersion => text(&message.env_version),
        Header::Hostname => text(&message.hostname),
        Header::Severity => Some(Value::Number(f64::from(message.severity.unwrap_or(7)))),
        Header::Pid => message.pid.map(|pid| Value::Number(f64::from(pid))),
    };
    match (value, dialect) {
        (Some(value), _) => compare(&value, test, dialect),
        // Heka reads an absent header as Go's zero value.
        (None, Dialect::Heka) if header == Header::Pid => {
            compare(&Value::Number(0.0), test, dialect)
        }
        (None, Dialect::Heka) => compare(&Value::Text(Vec::new()), test, dialect),
        // lsb: NIL, which equals only NIL and sorts before everything; patterns see "".
        (None, Dialect::Lsb) => match (test.operator, &test.literal) {
            (Operator::Compare(relation), Literal::Nil) => relation == Relation::Equal,
            (Operator::Match { .. }, _) => compare(&Value::Text(Vec::new()), test, dialect),
            (Operator::Compare(relation), _) => {
                matches!(
                    relation,
                    Relation::NotEqual | Relation::Less | Relation::LessOrEqual
                )
            }
        },
    }
}

/// A present value against the test's literal; a type mismatch is false.
fn compare(value: &Value, test: &Test, dialect: Dialect) -> bool {
    match (value, test.operator, &test.literal) {
        (_, Operator::Compare(relation), Literal::Nil) => relation == Relation::NotEqual,
        (Value::Text(text), Operator::Compare(relation), Literal::String(literal)) => {
            relation.holds(text.as_slice().cmp(literal))
        }
        (Value::Number(number), Operator::Compare(relation), Literal::Number(literal)) => {
            relation.holds_f64(*number, *literal)
        }
        (Value::Boolean(flag), Operator::Compare(relation), Literal::Boolean(literal)) => {
            (flag == literal) == (relation == Relation::Equal)
        }
        (Value::Number(number), Operator::Compare(relation), Literal::Boolean(literal))
            if dialect == Dialect::Lsb =>
        {
            let wanted = if *literal { 1.0 } else { 0.0 };
            (*number == wanted) == (relation == Relation::Equal)
        }
        (Value::Text(text), Operator::Match { negated }, Literal::Pattern(pattern)) => {
            pattern.regex.is_match(text) != negated
        }
        _ => false,
    }
}
