//! TEMPORARY: replaced by the matcher branch at merge. Supports TRUE and FALSE only.

use crate::message::MessageView;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    #[default]
    Heka,
    Lsb,
}

impl std::str::FromStr for Dialect {
    type Err = ();
    fn from_str(text: &str) -> Result<Dialect, ()> {
        match text {
            "heka" => Ok(Dialect::Heka),
            "lsb" => Ok(Dialect::Lsb),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MatcherError(String);

impl std::fmt::Display for MatcherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
pub struct Program {
    source: String,
    value: bool,
}

impl Program {
    pub fn matches(&self, _message: &MessageView<'_>) -> bool {
        self.value
    }
    pub fn is_constant(&self) -> Option<bool> {
        Some(self.value)
    }
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl std::fmt::Display for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.value)
    }
}

pub fn compile(expression: &str, _dialect: Dialect) -> Result<Program, MatcherError> {
    match expression.trim() {
        "TRUE" => Ok(Program {
            source: expression.into(),
            value: true,
        }),
        "FALSE" => Ok(Program {
            source: expression.into(),
            value: false,
        }),
        _ => Err(MatcherError(format!("matcher: unsupported: {expression}"))),
    }
}

pub struct MatcherSet {
    programs: Vec<Program>,
}

impl MatcherSet {
    pub fn new(programs: Vec<Program>) -> MatcherSet {
        MatcherSet { programs }
    }
    pub fn len(&self) -> usize {
        self.programs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.programs.is_empty()
    }
    pub fn evaluate(&mut self, message: &MessageView<'_>, matched: &mut [bool]) {
        for (program, slot) in self.programs.iter().zip(matched.iter_mut()) {
            *slot = program.matches(message);
        }
    }
}
