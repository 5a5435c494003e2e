//! The slot board: how a SandboxManagerFilter tells every core which matcher each of its
//! dynamic slots has, without a lock on the data path.
//!
//! The plan reserves `max_filters` filter slots per manager, hosted on the manager's core;
//! each is an ordinary filter of the plan (a lane, a telemetry row, a filter index) whose
//! static matcher is `FALSE`. What a slot really matches lives here: one `arc-swap` cell per
//! slot holding its compiled matcher (or nothing), and one generation counter for the board.
//!
//! - The host core is the only writer: [`SlotBoard::publish`] stores a slot's cell, then
//!   bumps the generation (release).
//! - Every core's router reads: once per batch it loads the generation (acquire) and, only
//!   when it moved, loads every cell of the board into its own cache. Per message the router
//!   reads its cache, never the cells.
//!
//! A load publishes the matcher after the Lua state is in place on the host; an unload
//! publishes "matches nothing" before the state is dropped. Records a core matched with a
//! matcher it had cached before an unload reach a slot with no state: the host counts them as
//! dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::matcher::Program;

/// The published matchers of one manager's slots.
#[derive(Debug)]
pub struct SlotBoard {
    generation: AtomicU64,
    cells: Box<[ArcSwapOption<Program>]>,
}

impl SlotBoard {
    /// A board of `slots` slots, each matching nothing.
    pub fn new(slots: usize) -> Arc<SlotBoard> {
        Arc::new(SlotBoard {
            generation: AtomicU64::new(0),
            cells: (0..slots).map(|_| ArcSwapOption::empty()).collect(),
        })
    }

    /// How many slots the board has.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether the board has no slot.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Publishes slot `slot`'s matcher (`None`: it matches nothing).
    ///
    /// # Panics
    /// If `slot` is not a slot of the board (a bug: the manager only uses its own slots).
    pub fn publish(&self, slot: usize, matcher: Option<Arc<Program>>) {
        self.cells[slot].store(matcher);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The board's generation: it moves at every publish.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Slot `slot`'s published matcher.
    pub fn matcher(&self, slot: usize) -> Option<Arc<Program>> {
        self.cells.get(slot).and_then(ArcSwapOption::load_full)
    }
}

/// One core's cached view of one slot, refreshed by [`SlotCache::refresh`].
#[derive(Debug)]
pub struct SlotCache {
    board: Arc<SlotBoard>,
    slot: usize,
    seen: u64,
    matcher: Option<Arc<Program>>,
}

impl SlotCache {
    /// A cache of slot `slot` of `board`, empty until the first refresh.
    pub fn new(board: Arc<SlotBoard>, slot: usize) -> SlotCache {
        SlotCache {
            board,
            slot,
            seen: u64::MAX,
            matcher: None,
        }
    }

    /// Reloads the slot's matcher if the board moved since the last refresh: one atomic load
    /// when nothing changed.
    #[inline]
    pub fn refresh(&mut self) {
        let generation = self.board.generation();
        if generation != self.seen {
            self.matcher = self.board.matcher(self.slot);
            self.seen = generation;
        }
    }

    /// The matcher as of the last refresh.
    #[inline]
    pub fn matcher(&self) -> Option<&Program> {
        self.matcher.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::{compile, Dialect};
    use crate::message::{MessageView, ProtoView};
    use prost::Message as _;

    fn program(expression: &str) -> Arc<Program> {
        Arc::new(compile(expression, Dialect::Heka).expect("compiles"))
    }

    #[test]
    fn a_cache_sees_a_publish_only_after_a_refresh() {
        let board = SlotBoard::new(2);
        let mut cache = SlotCache::new(board.clone(), 1);
        cache.refresh();
        assert!(cache.matcher().is_none());
        board.publish(1, Some(program("TRUE")));
        assert!(cache.matcher().is_none(), "cached until refreshed");
        cache.refresh();
        let bytes = crate::message::proto::Message::default().encode_to_vec();
        let view = MessageView::Proto(ProtoView::new(&bytes));
        let matches = cache.matcher().map(|program| program.matches(&view));
        assert_eq!(matches, Some(true));
        board.publish(1, None);
        cache.refresh();
        assert!(cache.matcher().is_none());
    }

    #[test]
    fn other_slots_are_untouched_by_a_publish() {
        let board = SlotBoard::new(3);
        board.publish(0, Some(program("TRUE")));
        assert!(board.matcher(0).is_some());
        assert!(board.matcher(1).is_none() && board.matcher(2).is_none());
        assert!(board.matcher(3).is_none(), "out of range is nothing");
        assert_eq!(board.len(), 3);
    }
}
