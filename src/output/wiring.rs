//! How one output is wired on one core, whatever its kind: this is where delivery classes, the
//! disk queue and the ring to a single writer are decided, once for every output kind.
//!
//! - `durable`: this core appends to its own disk queue ([`DurableQueue`]); the kind's
//!   [`super::OutputKind::open_durable`] starts the deliveries of the queues this core reads.
//! - a single writer ([`super::Writers::Owner`]) on another core: this core's batches go into
//!   its ring toward the owner.
//! - otherwise: the kind opens its destination here ([`super::OutputKind::open`]); on the
//!   owner of a single writer, a drain task also writes what the other cores' rings bring.

use std::rc::Rc;
use std::sync::Arc;

use super::{CloseHook, FlushPolicy, OutputCore, Target, Writers};
use crate::queue::{DurableQueue, HandleBoard};
use crate::runtime::ring::{BatchConsumer, BatchProducer, RingConsumer, RingProducer};
use crate::runtime::stop::StopFlag;

/// What one output is on one core: where its sink ships, when, what runs for it, and what
/// ends it at stop.
pub struct OutputWiring {
    /// Where this core's sink ships its batches.
    pub target: Target,
    /// When a partly filled batch of this core's sink is worth shipping (the kind's policy).
    pub policy: FlushPolicy,
    /// Tasks to wait for at stop, after `close`.
    pub tasks: Vec<glommio::task::JoinHandle<()>>,
    /// Run once at stop, after every batch of this core was shipped.
    pub close: Option<CloseHook>,
}

/// The rings of one output at one core: toward its owner, or from every other core.
pub struct OutputRings {
    /// This core's ring toward the owner of a single writer; `None` on the owner itself, for
    /// durable outputs and for outputs every core writes.
    pub producer: Option<RingProducer>,
    /// On the owner of a single writer, the rings from every other core, which a drain task
    /// writes; empty elsewhere.
    pub consumers: Vec<RingConsumer>,
}

/// Wires `core.output` on this core.
///
/// # Errors
/// The destination or the disk queue cannot be opened; the message says what and why.
pub async fn wire(
    core: &OutputCore<'_>,
    rings: OutputRings,
    board: Option<&Arc<HandleBoard>>,
    stop_flag: &Arc<StopFlag>,
) -> Result<OutputWiring, String> {
    let kind = &core.output.kind;
    let policy = kind.flush_policy();
    if let (Some(options), Some(board)) = (&core.output.durable, board) {
        return wire_durable(core, options, board, stop_flag).await;
    }
    let single_writer = kind.writers() == Writers::Owner;
    if single_writer && core.output.owner_core != core.cpu {
        let producer = rings
            .producer
            .ok_or_else(|| "no ring toward the output's owner core".to_string())?;
        let producer = Rc::new(BatchProducer::new(producer));
        return Ok(OutputWiring {
            target: Target::Ring(producer, core.best_effort()),
            policy,
            tasks: Vec::new(),
            close: None,
        });
    }
    let mut opened = kind.open(core).await?;
    if single_writer && !rings.consumers.is_empty() {
        let drain = drain_rings(
            BatchConsumer::new(rings.consumers),
            opened.destination.clone(),
            core.telemetry.clone(),
            core.row,
            core.plugin,
        );
        let drain = crate::runtime::failure::plugin_task(&core.output.name, drain);
        opened.tasks.push(glommio::spawn_local(drain).detach());
    }
    Ok(OutputWiring {
        target: Target::Direct(opened.destination),
        policy,
        tasks: opened.tasks,
        close: opened.close,
    })
}

/// Opens this core's queue of a durable output, publishes it, starts its ticker and the
/// deliveries this core runs (see [`super::durable`] for who consumes what).
async fn wire_durable(
    core: &OutputCore<'_>,
    options: &crate::queue::QueueOptions,
    board: &Arc<HandleBoard>,
    stop_flag: &Arc<StopFlag>,
) -> Result<OutputWiring, String> {
    let queue_dir = &core.plan.global.queue_dir;
    let name = &core.output.name;
    let queue = DurableQueue::open(queue_dir, name, core.row, options, stop_flag.clone())
        .await
        .map_err(|error| format!("durable queue: {error}"))?;
    board.publish(core.row, queue.handle());
    glommio::spawn_local(queue.clone().run_ticker(core.stop.clone())).detach();
    let tasks = core.output.kind.open_durable(core, board).await?;
    let closing = queue.clone();
    let close: CloseHook = Box::new(move || Box::pin(async move { closing.close().await }));
    Ok(OutputWiring {
        target: Target::Durable(queue),
        policy: core.output.kind.flush_policy(),
        tasks,
        close: Some(close),
    })
}

/// On the owner of a single-writer output: ships into `destination` the batches the other
/// cores hand over, until every one of them has finished and its ring is empty. Between
/// batches it parks on the rings (see [`crate::runtime::ring`]) rather than polling them.
///
/// The buffers are not recycled: a destination takes the batch (glommio's buffered `write_at`
/// takes the `Vec` and frees it once the write completes), so there is nothing to hand back.
async fn drain_rings(
    mut consumer: BatchConsumer,
    destination: Rc<dyn super::Destination>,
    telemetry: Arc<crate::telemetry::Telemetry>,
    core: usize,
    plugin: usize,
) {
    while let Some((batch, _source)) = consumer.next().await {
        destination.ship(batch, &telemetry, core, plugin).await;
        glommio::yield_if_needed().await;
    }
}
