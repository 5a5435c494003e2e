//! Many programs against one message, sharing their work.
//!
//! A router holds one program per filter and output, and the same tests and subjects recur
//! across them (`Type == 'nginx.access'` in ten filters; fifty filters each picking one `Type`;
//! `Fields[status]` compared with eight different bounds). Evaluated one by one, each program
//! pays for every read and every test again, and the cost grows with the number of filters
//! (Heka's complaint #9). A [`MatcherSet`] shares that work four ways:
//!
//! 1. **Each subject is read once per message.** Reads (a header, `Fields[name][f][a]`) are
//!    deduplicated across programs when the set is built; the first test that needs one reads
//!    it from the message and caches the value (a number, a bool, or the position of the bytes
//!    in the record), so the next test on that subject skips the field search.
//! 2. **Identical tests run once per message.** Tests are deduplicated too, and a test's verdict
//!    is cached for the rest of the message.
//! 3. **Equality tests on one subject become one lookup.** When at least
//!    [`GROUP_LITERALS_MIN`] distinct `==`/`!=` string literals are compared with the same
//!    subject, its value is looked up once in a hash table of those literals, and every such
//!    test is then decided by whether its literal was the one found. Fifty `Type == '…'` tests
//!    cost one header read and one hash lookup.
//! 4. **Programs that start with such an equality are routed.** A program whose first test is
//!    one of a group's `==` tests, and which stops when that test is false, only runs when the
//!    lookup found its literal; every other one takes the verdict of its false branch without
//!    running. Fifty filters that each pick one `Type` cost one lookup and one program run.
//!
//! Everything else is lazy: a program that short-circuits never causes the reads and tests it
//! skips. Evaluation allocates nothing: the caches are vectors sized when the set is built and reset
//! (a `fill`) at the start of each message. Each program still runs its own ops, in order, with
//! forward jumps only, so the verdicts are exactly those of
//! [`Program::matches`](super::Program::matches).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::ast::Relation;
use super::bytecode::{read, Predicate, Read, Target, Test, UuidText, Value};
use super::Program;
use crate::message::MessageView;

/// The fewest distinct equality literals on one subject that make a lookup table worth it;
/// below this, comparing the literals one by one is as fast.
pub const GROUP_LITERALS_MIN: usize = 3;

/// Evaluates many programs against each message, sharing reads and tests, and turning equality
/// tests on a common subject into one hash lookup. One per core; not `Sync`.
pub struct MatcherSet {
    programs: Vec<Program>,
    /// Per program: the index of its first step, or [`ACCEPT`] / [`REJECT`] when constant.
    starts: Vec<u32>,
    /// Every program's ops, one after the other, with absolute targets.
    steps: Vec<SetStep>,
    /// Per program, its verdict when it is not run (routed programs; constant programs).
    defaults: Vec<bool>,
    /// The programs that run for every message.
    unrouted: Vec<u32>,
    /// Per group, the programs routed by its lookup.
    routes: Vec<Routes>,
    tests: Vec<SharedTest>,
    reads: Vec<Read>,
    groups: Vec<Group>,
    /// Per test, for the current message: 0 not yet run, 1 false, 2 true.
    verdicts: Vec<u8>,
    /// Per read, for the current message.
    values: Vec<Cached>,
    /// Per group, for the current message.
    lookups: Vec<Lookup>,
}

/// A step target meaning "the program matches".
const ACCEPT: u32 = u32::MAX;
/// A step target meaning "the program does not match".
const REJECT: u32 = u32::MAX - 1;

/// A program op that names a shared test; targets are indices into `steps` (always later ones,
/// within the same program) or [`ACCEPT`] / [`REJECT`].
struct SetStep {
    test: u32,
    on_true: u32,
    on_false: u32,
}

struct SharedTest {
    test: Test,
    /// Index into `reads`.
    read: u32,
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
    read: u32,
    literals: HashMap<Box<[u8]>, u32, BuildHasherDefault<FoldHasher>>,
}

/// The programs that start with one of a group's `==` tests and stop when it is false: only
/// those whose literal the lookup found need to run; the others take their default verdict.
#[derive(Default)]
struct Routes {
    /// By the slot of the first test's literal.
    by_slot: Vec<Vec<u32>>,
    /// All of them, for a message where the subject is absent.
    all: Vec<u32>,
}

/// A value read for the current message, kept without borrowing the message.
#[derive(Clone, Copy, Debug)]
enum Cached {
    Unknown,
    Absent,
    /// Bytes at this position of the record.
    Range {
        start: u32,
        end: u32,
    },
    Number(f64),
    Boolean(bool),
    /// Bytes outside the record (a plain-line message's metadata, the Uuid's text form): read
    /// again when needed.
    Uncached,
}

/// What a group's lookup found in the current message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lookup {
    Unknown,
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
        let mut test_ids: HashMap<String, u32> = HashMap::new();
        let mut reads: Vec<Read> = Vec::new();
        let mut read_ids: HashMap<Read, u32> = HashMap::new();
        let mut starts = Vec::with_capacity(programs.len());
        let mut steps: Vec<SetStep> = Vec::new();
        for program in &programs {
            if let Some(verdict) = program.is_constant() {
                starts.push(if verdict { ACCEPT } else { REJECT });
                continue;
            }
            let start = steps.len() as u32;
            let absolute = |target: Target| match target {
                Target::Accept => ACCEPT,
                Target::Reject => REJECT,
                Target::Op(index) => start + u32::from(index),
            };
            for op in program.ops() {
                let id = *test_ids.entry(op.test.key()).or_insert_with(|| {
                    let read = *read_ids.entry(op.test.read.clone()).or_insert_with(|| {
                        reads.push(op.test.read.clone());
                        (reads.len() - 1) as u32
                    });
                    tests.push(SharedTest {
                        test: op.test.clone(),
                        read,
                        member: None,
                    });
                    (tests.len() - 1) as u32
                });
                let (on_true, on_false) = (absolute(op.on_true), absolute(op.on_false));
                steps.push(SetStep {
                    test: id,
                    on_true,
                    on_false,
                });
            }
            starts.push(start);
        }
        // Targets stay below the reserved values: a program has at most MATCHER_OPS_MAX ops,
        // and a set would need four billion steps to reach them.
        assert!(
            steps.len() < REJECT as usize,
            "too many steps in one matcher set"
        );
        let groups = build_groups(&mut tests);
        let (defaults, unrouted, routes) = route(&starts, &steps, &tests, &groups);
        MatcherSet {
            defaults,
            unrouted,
            routes,
            verdicts: vec![0; tests.len()],
            values: vec![Cached::Unknown; reads.len()],
            lookups: vec![Lookup::Unknown; groups.len()],
            programs,
            starts,
            steps,
            tests,
            reads,
            groups,
        }
    }

    /// The number of programs.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether the set holds no programs.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The programs, in order.
    pub fn programs(&self) -> &[Program] {
        &self.programs
    }

    /// The number of distinct tests across all programs.
    pub fn test_count(&self) -> usize {
        self.tests.len()
    }

    /// The number of distinct subjects (headers and field paths) the programs read.
    pub fn read_count(&self) -> usize {
        self.reads.len()
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
            self.starts.len(),
            "one verdict slot per program"
        );
        // A set of constant programs (`TRUE`) has nothing to reset: skip the calls.
        if !self.verdicts.is_empty() {
            self.verdicts.fill(0);
            self.values.fill(Cached::Unknown);
            self.lookups.fill(Lookup::Unknown);
        }
        let base = match message {
            MessageView::Proto(view) => view.bytes(),
            MessageView::Line(_) => &[],
        };
        matched.copy_from_slice(&self.defaults);
        let MatcherSet {
            starts,
            steps,
            unrouted,
            routes,
            tests,
            reads,
            groups,
            verdicts,
            values,
            lookups,
            ..
        } = self;
        let text = [0; 36];
        let mut context = Context {
            tests,
            reads,
            groups,
            verdicts,
            values,
            lookups,
            message,
            base,
            text,
        };
        let mut run_program = |program: u32, context: &mut Context<'_, '_, '_>| {
            let index = program as usize;
            if let (Some(&start), Some(verdict)) = (starts.get(index), matched.get_mut(index)) {
                *verdict = run(steps, start, context);
            }
        };
        for &program in unrouted.iter() {
            run_program(program, &mut context);
        }
        for (group, routes) in routes.iter().enumerate() {
            if routes.all.is_empty() {
                continue;
            }
            let chosen: &[u32] = match context.lookup(group) {
                Lookup::Found(slot) => routes.by_slot.get(slot as usize).map_or(&[], Vec::as_slice),
                // Every first test is false: the defaults stand.
                Lookup::NotFound | Lookup::NotText => &[],
                Lookup::Absent | Lookup::Unknown => &routes.all,
            };
            for &program in chosen {
                run_program(program, &mut context);
            }
        }
    }
}

/// Sorts the programs into those routed by a group's lookup and those that always run; the
/// default verdicts are what routed programs return when their first test is false.
fn route(
    starts: &[u32],
    steps: &[SetStep],
    tests: &[SharedTest],
    groups: &[Group],
) -> (Vec<bool>, Vec<u32>, Vec<Routes>) {
    let mut defaults = vec![false; starts.len()];
    let mut unrouted = Vec::new();
    let mut routes: Vec<Routes> = groups
        .iter()
        .map(|group| Routes {
            by_slot: vec![Vec::new(); group.literals.len()],
            all: Vec::new(),
        })
        .collect();
    for (program, &start) in starts.iter().enumerate() {
        if start >= REJECT {
            defaults[program] = start == ACCEPT;
            continue;
        }
        let first = steps.get(start as usize);
        let member = first.and_then(|first| tests.get(first.test as usize)?.member);
        let (Some(first), Some(member)) = (first, member) else {
            unrouted.push(program as u32);
            continue;
        };
        let routable = member.equal && first.on_false >= REJECT;
        match routes.get_mut(member.group as usize) {
            Some(Routes { by_slot, all }) if routable => {
                match by_slot.get_mut(member.slot as usize) {
                    Some(slot) => {
                        defaults[program] = first.on_false == ACCEPT;
                        slot.push(program as u32);
                        all.push(program as u32);
                    }
                    None => unrouted.push(program as u32),
                }
            }
            _ => unrouted.push(program as u32),
        }
    }
    (defaults, unrouted, routes)
}

/// Runs one program from its first step. Bounded: every step moves to a later step (a target
/// that does not is refused as a mismatch), so a program of n ops takes at most n steps.
#[inline]
fn run(steps: &[SetStep], start: u32, context: &mut Context<'_, '_, '_>) -> bool {
    let mut at = start;
    loop {
        if at >= REJECT {
            return at == ACCEPT;
        }
        let Some(step) = steps.get(at as usize) else {
            return false;
        };
        let truth = match context.verdicts.get(step.test as usize) {
            Some(&known) if known != 0 => known == 2,
            _ => context.verdict(step.test as usize),
        };
        let next = if truth { step.on_true } else { step.on_false };
        if next <= at {
            return false;
        }
        at = next;
    }
}

/// The borrowed state of one evaluation.
struct Context<'s, 'm, 'v> {
    tests: &'s [SharedTest],
    reads: &'s [Read],
    groups: &'s [Group],
    verdicts: &'s mut [u8],
    values: &'s mut [Cached],
    lookups: &'s mut [Lookup],
    message: &'m MessageView<'v>,
    /// The record's bytes, which cached ranges index.
    base: &'m [u8],
    /// Where the Uuid's text form is built.
    text: UuidText,
}

impl<'m> Context<'_, 'm, '_> {
    /// Runs test `id` (its verdict is not known yet for this message) and remembers the verdict.
    #[inline(never)]
    fn verdict(&mut self, id: usize) -> bool {
        let tests = self.tests;
        let Some(shared) = tests.get(id) else {
            return false;
        };
        let verdict = match shared.member {
            Some(member) => self.member_verdict(&shared.test, member),
            None => match self.value(shared.read as usize) {
                Some(value) => shared.test.predicate.apply(value),
                None => shared.test.absent,
            },
        };
        if let Some(slot) = self.verdicts.get_mut(id) {
            *slot = 1 + u8::from(verdict);
        }
        verdict
    }

    /// The value of read `id` in this message, from the cache or read and cached.
    fn value(&mut self, id: usize) -> Option<Value<'_>> {
        let cached = *self.values.get(id)?;
        let base = self.base;
        match cached {
            Cached::Absent => None,
            Cached::Range { start, end } => {
                base.get(start as usize..end as usize).map(Value::Bytes)
            }
            Cached::Number(number) => Some(Value::Number(number)),
            Cached::Boolean(flag) => Some(Value::Boolean(flag)),
            Cached::Unknown | Cached::Uncached => {
                let value = read(self.reads.get(id)?, self.message, &mut self.text);
                if matches!(cached, Cached::Unknown) {
                    if let Some(slot) = self.values.get_mut(id) {
                        *slot = cache(value, base);
                    }
                }
                value
            }
        }
    }

    fn member_verdict(&mut self, test: &Test, member: Member) -> bool {
        decide(test, member, self.lookup(member.group as usize))
    }

    fn lookup(&mut self, id: usize) -> Lookup {
        let groups = self.groups;
        let (Some(group), Some(&lookup)) = (groups.get(id), self.lookups.get(id)) else {
            return Lookup::Unknown;
        };
        if lookup != Lookup::Unknown {
            return lookup;
        }
        let find = |bytes: &[u8]| match group.literals.get(bytes) {
            Some(&slot) => Lookup::Found(slot),
            None => Lookup::NotFound,
        };
        let lookup = match self.value(group.read as usize) {
            None => Lookup::Absent,
            Some(Value::Bytes(bytes)) => find(bytes),
            Some(Value::Number(_) | Value::Boolean(_)) => Lookup::NotText,
        };
        if let Some(slot) = self.lookups.get_mut(id) {
            *slot = lookup;
        }
        lookup
    }
}

/// A group member's verdict, given what the group's lookup found.
fn decide(test: &Test, member: Member, lookup: Lookup) -> bool {
    match lookup {
        Lookup::Absent => test.absent,
        Lookup::Found(slot) => (slot == member.slot) == member.equal,
        Lookup::NotFound => !member.equal,
        Lookup::NotText | Lookup::Unknown => false,
    }
}

/// How a value read from the message is kept: bytes as their position in the record, when
/// they lie in it.
fn cache(value: Option<Value<'_>>, base: &[u8]) -> Cached {
    match value {
        None => Cached::Absent,
        Some(Value::Bytes(bytes)) => {
            let start = (bytes.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
            match start.checked_add(bytes.len()) {
                Some(end) if end <= base.len() && u32::try_from(end).is_ok() => Cached::Range {
                    start: start as u32,
                    end: end as u32,
                },
                _ => Cached::Uncached,
            }
        }
        Some(Value::Number(number)) => Cached::Number(number),
        Some(Value::Boolean(flag)) => Cached::Boolean(flag),
    }
}

/// Finds subjects compared with enough distinct equality literals and makes them groups.
fn build_groups(tests: &mut [SharedTest]) -> Vec<Group> {
    let mut by_read: HashMap<u32, Vec<usize>> = HashMap::new();
    for (id, shared) in tests.iter().enumerate() {
        if let Predicate::Bytes {
            relation: Relation::Equal | Relation::NotEqual,
            ..
        } = shared.test.predicate
        {
            by_read.entry(shared.read).or_default().push(id);
        }
    }
    let mut candidates: Vec<(u32, Vec<usize>)> = by_read.into_iter().collect();
    // Deterministic group numbering, whatever the hash map's order.
    candidates.sort_by_key(|(read, _)| *read);
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
