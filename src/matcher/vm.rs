//! The evaluator: runs a program's ops against one message.
//!
//! Bounded by construction: the program counter only moves forward (a jump that would not is
//! treated as "no match" rather than followed), so one evaluation runs at most one test per op,
//! and programs hold at most `MATCHER_OPS_MAX` ops. No allocation, no panics: ops are reached
//! with `get`, and tests read the message through its lazy view.

use super::bytecode::{Op, Target};
use crate::message::MessageView;

/// Something with a test's two targets (a program's [`Op`]); the evaluator is written over this
/// so that it could run other step encodings unchanged.
pub trait Step {
    /// Where to go when the step's test holds, and when it does not: `(on_true, on_false)`.
    fn targets(&self) -> (Target, Target);
}

impl Step for Op {
    #[inline]
    fn targets(&self) -> (Target, Target) {
        (self.on_true, self.on_false)
    }
}

/// Runs `steps` from step 0, asking `test` for each step's verdict, until a target decides.
#[inline]
pub fn run_steps<S: Step>(steps: &[S], mut test: impl FnMut(&S) -> bool) -> bool {
    let mut index = 0usize;
    while let Some(step) = steps.get(index) {
        let (on_true, on_false) = step.targets();
        match if test(step) { on_true } else { on_false } {
            Target::Accept => return true,
            Target::Reject => return false,
            Target::Op(next) => {
                let next = usize::from(next);
                if next <= index {
                    // Unreachable in a validated program; refusing keeps the loop bounded.
                    return false;
                }
                index = next;
            }
        }
    }
    false
}

/// Runs a program's ops against a message.
#[inline]
pub fn run(ops: &[Op], message: &MessageView<'_>) -> bool {
    run_steps(ops, |op| op.test.eval(message))
}
