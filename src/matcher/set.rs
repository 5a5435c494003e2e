//! Many programs against one message, sharing their work.
//!
//! A router holds one program per filter and output, and the same tests recur across them
//! (`Type == 'nginx.access'` in ten filters; fifty filters each picking one `Type`). Evaluated
//! one by one, each program pays for every test again, and the cost grows with the number of
//! filters (Heka's complaint #9). A [`MatcherSet`] shares that work in two ways:
//!
//! 1. **Identical tests run once per message.** Tests are deduplicated across programs when the
//!    set is built; each evaluation stamps a test's verdict with the message's epoch, and a
//!    later program that needs the same test reads the stamp instead of running it again.
//! 2. **Equality tests on one subject become one lookup.** When at least
//!    [`GROUP_LITERALS_MIN`] distinct `==`/`!=` string literals are compared with the same
//!    header or field, the set reads that value once and looks it up in a hash table of the
//!    literals; every such test is then decided by whether its literal was the one found. Fifty
//!    `Type == '…'` tests cost one header read and one hash lookup.
//!
//! Evaluation allocates nothing: the stamps and lookups live in vectors sized when the set is
//! built. Each program still runs its own ops, in order, with forward jumps only, so the
//! verdicts are exactly those of [`Program::matches`](super::Program::matches).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::ast::Relation;
use super::bytecode::{read, Predicate, Read, Target, Test, Value};
use super::vm::{run_steps, Step};
use super::Program;
use crate::message::MessageView;

/// The fewest distinct equality literals on one subject that make a lookup table worth it;
/// below this, comparing the literals one by one is as fast.
pub const GROUP_LITERALS_MIN: usize = 3;

/// Evaluates many programs against each message, sharing identical tests and turning
/// equality tests on a common subject into one hash lookup. One per core; not `Sync`.
pub struct MatcherSet {
    programs: Vec<Program>,
    entries: Vec<Entry>,
    steps: Vec<SetStep>,
    tests: Vec<SharedTest>,
    groups: Vec<Group>,
    /// Per test: `epoch << 1 | verdict`, valid when its epoch is the current one.
    verdicts: Vec<u32>,
    /// Per group: the epoch of the lookup and its outcome.
    lookups: Vec<(u32, Lookup)>,
    epoch: u32,
}

enum Entry {
    Constant(bool),
    Steps { start: usize, end: usize },
}

/// A program op that names a shared test.
struct SetStep {
    test: u32,
    on_true: Target,
    on_false: Target,
}

impl Step for SetStep {
    #[inline]
    fn targets(&self) -> (Target, Target) {
        (self.on_true, self.on_false)
    }
}

struct SharedTest {
    test: Test,
    /// Set when the test is decided by its group's lookup.
    member: Option<Member>,
}

#[derive(Clone, Copy)]
struct Member {
    group: u32,
    slot: u32,
    /// `==` (true) or `!=` (false).
    equal: bool,
}

/// Equality literals compared with one subject.
struct Group {
    read: Read,
    literals: HashMap<Box<[u8]>, u32, BuildHasherDefault<FoldHasher>>,
}

/// What a group's lookup found in this message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lookup {
    Absent,
    /// The value is not a string (a number or bool field): every equality test is false.
    NotText,
    Found(u32),
    NotFound,
}

impl MatcherSet {
    /// Builds a set; `evaluate` reports verdicts in the order of `programs`.
    pub fn new(programs: Vec<Program>) -> MatcherSet {
        let mut tests: Vec<SharedTest> = Vec::new();
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut entries = Vec::with_capacity(programs.len());
        let mut steps = Vec::new();
        for program in &programs {
            if let Some(verdict) = program.is_constant() {
                entries.push(Entry::Constant(verdict));
                continue;
            }
            let start = steps.len();
            for op in program.ops() {
                let id = *ids.entry(op.test.key()).or_insert_with(|| {
                    tests.push(SharedTest {
                        test: op.test.clone(),
                        member: None,
                    });
                    (tests.len() - 1) as u32
                });
                steps.push(SetStep {
                    test: id,
                    on_true: op.on_true,
                    on_false: op.on_false,
                });
            }
            entries.push(Entry::Steps {
                start,
                end: steps.len(),
            });
        }
        let groups = build_groups(&mut tests);
        MatcherSet {
            verdicts: vec![0; tests.len()],
            lookups: vec![(0, Lookup::Absent); groups.len()],
            programs,
            entries,
            steps,
            tests,
            groups,
            epoch: 0,
        }
    }

    /// The number of programs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set holds no programs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The programs, in order.
    pub fn programs(&self) -> &[Program] {
        &self.programs
    }

    /// The number of distinct tests across all programs.
    pub fn test_count(&self) -> usize {
        self.tests.len()
    }

    /// The number of equality groups decided by one lookup each.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Sets `matched[i]` to whether program `i` matches the message. Allocates nothing.
    ///
    /// # Panics
    /// When `matched.len() != self.len()`, a programming error.
    pub fn evaluate(&mut self, message: &MessageView<'_>, matched: &mut [bool]) {
        assert_eq!(
            matched.len(),
            self.entries.len(),
            "one verdict slot per program"
        );
        self.advance_epoch();
        let MatcherSet {
            entries,
            steps,
            tests,
            groups,
            verdicts,
            lookups,
            epoch,
            ..
        } = self;
        let mut context = Context {
            tests,
            groups,
            verdicts,
            lookups,
            epoch: *epoch,
            message,
        };
        for (entry, verdict) in entries.iter().zip(matched.iter_mut()) {
            *verdict = match *entry {
                Entry::Constant(value) => value,
                Entry::Steps { start, end } => {
                    let program = steps.get(start..end).unwrap_or_default();
                    run_steps(program, |step| context.verdict(step.test))
                }
            };
        }
    }

    /// Jumps the epoch counter ahead, to test its wrap-around.
    #[cfg(test)]
    pub(super) fn skip_to_epoch(&mut self, epoch: u32) {
        self.epoch = epoch;
    }

    /// Starts a new message: stamps from earlier messages become stale.
    fn advance_epoch(&mut self) {
        // Verdict stamps keep the epoch in 31 bits.
        if self.epoch >= u32::MAX >> 1 {
            self.verdicts.iter_mut().for_each(|stamp| *stamp = 0);
            self.lookups.iter_mut().for_each(|lookup| lookup.0 = 0);
            self.epoch = 0;
        }
        self.epoch += 1;
    }
}

/// The borrowed state of one evaluation.
struct Context<'s, 'm, 'v> {
    tests: &'s [SharedTest],
    groups: &'s [Group],
    verdicts: &'s mut [u32],
    lookups: &'s mut [(u32, Lookup)],
    epoch: u32,
    message: &'m MessageView<'v>,
}

impl Context<'_, '_, '_> {
    #[inline]
    fn verdict(&mut self, id: u32) -> bool {
        let id = id as usize;
        let (Some(shared), Some(&stamp)) = (self.tests.get(id), self.verdicts.get(id)) else {
            return false;
        };
        if stamp >> 1 == self.epoch {
            return stamp & 1 == 1;
        }
        let verdict = match shared.member {
            Some(member) => self.member_verdict(&shared.test, member),
            None => shared.test.eval(self.message),
        };
        if let Some(stamp) = self.verdicts.get_mut(id) {
            *stamp = self.epoch << 1 | u32::from(verdict);
        }
        verdict
    }

    fn member_verdict(&mut self, test: &Test, member: Member) -> bool {
        match self.lookup(member.group as usize) {
            Lookup::Absent => test.absent,
            Lookup::NotText => false,
            Lookup::Found(slot) => (slot == member.slot) == member.equal,
            Lookup::NotFound => !member.equal,
        }
    }

    fn lookup(&mut self, group_index: usize) -> Lookup {
        let (Some(group), Some(&(epoch, lookup))) =
            (self.groups.get(group_index), self.lookups.get(group_index))
        else {
            return Lookup::Absent;
        };
        if epoch == self.epoch {
            return lookup;
        }
        let find = |bytes: &[u8]| match group.literals.get(bytes) {
            Some(&slot) => Lookup::Found(slot),
            None => Lookup::NotFound,
        };
        let lookup = match read(&group.read, self.message) {
            None => Lookup::Absent,
            Some(Value::Bytes(bytes)) => find(bytes),
            Some(Value::Text(text)) => find(&text),
            Some(Value::Number(_) | Value::Boolean(_)) => Lookup::NotText,
        };
        if let Some(slot) = self.lookups.get_mut(group_index) {
            *slot = (self.epoch, lookup);
        }
        lookup
    }
}

/// Finds subjects compared with enough distinct equality literals and makes them groups.
fn build_groups(tests: &mut [SharedTest]) -> Vec<Group> {
    let mut by_read: HashMap<Read, Vec<usize>> = HashMap::new();
    for (id, shared) in tests.iter().enumerate() {
        if let Predicate::Bytes {
            relation: Relation::Equal | Relation::NotEqual,
            ..
        } = shared.test.predicate
        {
            by_read
                .entry(shared.test.read.clone())
                .or_default()
                .push(id);
        }
    }
    let mut candidates: Vec<(Read, Vec<usize>)> = by_read.into_iter().collect();
    // Deterministic group numbering, whatever the hash map's order.
    candidates.sort_by_key(|(_, ids)| ids[0]);
    let mut groups = Vec::new();
    for (read, ids) in candidates {
        let mut literals: HashMap<Box<[u8]>, u32, BuildHasherDefault<FoldHasher>> =
            HashMap::default();
        for &id in &ids {
            if let Predicate::Bytes { literal, .. } = &tests[id].test.predicate {
                let next = literals.len() as u32;
                literals.entry(literal.clone()).or_insert(next);
            }
        }
        if literals.len() < GROUP_LITERALS_MIN {
            continue;
        }
        let group = groups.len() as u32;
        for &id in &ids {
            if let Predicate::Bytes { relation, literal } = &tests[id].test.predicate {
                let slot = literals.get(literal).copied().unwrap_or(u32::MAX);
                let equal = *relation == Relation::Equal;
                tests[id].member = Some(Member { group, slot, equal });
            }
        }
        groups.push(Group { read, literals });
    }
    groups
}

/// A small, fast hasher for short byte strings. The table's keys come from the
/// configuration, so there is no flooding to defend against.
#[derive(Default, Clone, Copy)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(23) ^ u64::from_le_bytes(word)).wrapping_mul(MULTIPLIER);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.0 = (self.0.rotate_left(23) ^ u64::from_le_bytes(word)).wrapping_mul(MULTIPLIER);
        }
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.0 = (self.0.rotate_left(23) ^ value as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}
