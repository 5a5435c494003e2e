//! Outputs: where routed messages go, as seen from one core.
//!
//! Each core has one [`Sink`] per output. The router encodes a matching message straight into
//! the sink's current [`Batch`]; a batch is shipped when it is full, when its flush policy is
//! due, and at shutdown. Shipping depends on who owns the destination:
//! - a file this core owns (`%{core}` paths, or any file on the output core): written here,
//!   through io_uring, at an offset reserved when the batch is taken;
//! - a file another core owns: pushed over this core's SPSC ring to the owner
//!   ([`crate::runtime::ring`]); a full ring makes this core wait, so it stops reading its
//!   sockets and TCP pushes back on the senders;
//! - a TCP destination: queued for this core's own connection ([`tcp`]);
//! - stdout ([`log`]);
//! - a durable output's disk queue on this core ([`durable`]), delivered by consumer tasks.
//!
//! Memory per sink is bounded by one batch being filled plus what its destination holds.
//!
//! Delivery classes (`delivery`, `docs/delivery.md`): `memory` waits where a destination is
//! full, as above; `best_effort` never makes the core wait on a destination: a batch for a
//! full ring or a full TCP queue is dropped and counted (`dropped_total`). A file this core
//! writes itself is the core's own io_uring write (to the page cache): the connection that
//! shipped the batch waits for it as with `memory`, while the core serves its other
//! connections; at most [`crate::limits::BEST_EFFORT_FILE_WRITES_IN_FLIGHT_MAX`] such writes
//! are in flight per file, and a batch that would be one more is dropped and counted (a stalled
//! disk makes the core drop, never pile up). `durable` ships to the disk queue.

//!
//! The contract ([`crate::component`]): each output kind is one module here that owns its raw
//! config, its plan (an [`OutputKind`]) and its per-core [`OutputKind::open`]; [`KINDS`] lists
//! them. What every output shares (delivery class, disk queue, the ring to a single writer,
//! flush and stop order) is wired once, in [`wiring`], for every kind.

pub mod acked;
#[cfg(feature = "amqp")]
pub mod amqp;
pub mod carbon;
pub mod dashboard;
pub mod durable;
pub mod elasticsearch;
pub mod file;
pub mod fluent;
pub mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod length_framed;
pub mod log;
pub mod plan;
pub mod sink;
pub mod smtp;
pub mod tcp;
pub mod udp;
pub mod wiring;

use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use crate::component::{LocalBoxFuture, Registration};
use crate::config::plan::{OutputPlan, Plan};
use crate::runtime::stop::LocalStop;
use crate::telemetry::Telemetry;

pub use crate::runtime::ring::Batch;
pub use sink::{FlushPolicy, Sink, Target};

/// Every output kind, by the Heka type names that select it.
pub static KINDS: &[Registration<OutputPlan>] = &[
    file::REGISTRATION,
    tcp::REGISTRATION,
    log::REGISTRATION,
    carbon::REGISTRATION,
    fluent::REGISTRATION,
    udp::REGISTRATION,
    http::REGISTRATION,
    elasticsearch::REGISTRATION,
    #[cfg(feature = "kafka")]
    kafka::REGISTRATION,
    smtp::REGISTRATION,
    #[cfg(feature = "amqp")]
    amqp::REGISTRATION,
    dashboard::REGISTRATION,
];

/// Which cores write an output's destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writers {
    /// Every core opens its own destination (a connection, a socket, a `%{core}` file, or its
    /// own handle on one file all cores append to at offsets they share).
    EveryCore,
    /// One core, the output's `owner_core`, writes it; the others hand their batches over
    /// through a ring (memory, best effort) or their disk queue (durable).
    Owner,
}

/// One output kind's validated plan, and how each core opens it.
pub trait OutputKind: crate::component::AsAny + fmt::Debug + Send + Sync {
    /// The Heka type name.
    fn type_name(&self) -> &'static str;

    /// Where it delivers, for `gyges validate`.
    fn describe(&self, output: &OutputPlan) -> String;

    /// Which cores write its destination.
    fn writers(&self) -> Writers;

    /// When a partly filled batch is worth shipping.
    fn flush_policy(&self) -> FlushPolicy {
        FlushPolicy::PROMPT
    }

    /// Opens this core's destination: on every core for [`Writers::EveryCore`], on the owner
    /// core only for [`Writers::Owner`].
    fn open<'a>(&'a self, core: &'a OutputCore<'a>) -> LocalBoxFuture<'a, Result<Opened, String>>;

    /// A durable output: starts the deliveries this core runs, each consuming one source
    /// queue (a core's row, published on `board`), and returns their tasks
    /// ([`durable::spawn_consumer`] runs a kind's [`durable::WriteRecords`]). Kinds without
    /// durable delivery refuse it at plan time, so this default is never reached for them.
    fn open_durable<'a>(
        &'a self,
        core: &'a OutputCore<'a>,
        board: &'a Arc<crate::queue::HandleBoard>,
    ) -> LocalBoxFuture<'a, Result<Vec<glommio::task::JoinHandle<()>>, String>> {
        let _ = (core, board);
        Box::pin(async { Err("durable delivery is not available for this output type".into()) })
    }
}

/// What an output kind's per-core build is given.
pub struct OutputCore<'a> {
    /// The whole plan, for what lies outside the output's section (the cores, the queue dir).
    pub plan: &'a Plan,
    /// The plan of the output being opened.
    pub output: &'a OutputPlan,
    /// This core's row (position in the plan's core list) and its CPU.
    pub row: usize,
    /// The CPU this core is pinned to (what `%{core}` in a FileOutput path becomes).
    pub cpu: usize,
    /// The output's plugin index in [`Telemetry`].
    pub plugin: usize,
    /// The counters the output's tasks add to, in this core's row.
    pub telemetry: &'a Arc<Telemetry>,
    /// This core's stop signal, which the output's tasks watch to finish.
    pub stop: &'a Rc<LocalStop>,
}

impl OutputCore<'_> {
    /// `delivery = "best_effort"`.
    pub fn best_effort(&self) -> bool {
        self.output.delivery == crate::config::plan::DeliveryClass::BestEffort
    }
}

/// What [`OutputKind::open`] starts on one core.
pub struct Opened {
    /// Where this core's batches go.
    pub destination: Rc<dyn Destination>,
    /// Tasks to wait for at stop, after `close`.
    pub tasks: Vec<glommio::task::JoinHandle<()>>,
    /// Run once at stop, after every batch of this core was shipped.
    pub close: Option<CloseHook>,
}

impl Opened {
    /// A destination with no tasks and nothing to close.
    pub fn plain(destination: Rc<dyn Destination>) -> Opened {
        Opened {
            destination,
            tasks: Vec::new(),
            close: None,
        }
    }
}

/// A stop hook: ends what an output started on a core (closes its queue, its connection).
pub type CloseHook = Box<dyn FnOnce() -> LocalBoxFuture<'static, ()>>;

/// A destination batches are written to, on the core that opened it.
pub trait Destination {
    /// Delivers a batch, waiting while the destination is full (a best-effort destination
    /// drops and counts instead).
    fn ship<'a>(
        &'a self,
        batch: Batch,
        telemetry: &'a Telemetry,
        core: usize,
        plugin: usize,
    ) -> LocalBoxFuture<'a, ()>;
}
