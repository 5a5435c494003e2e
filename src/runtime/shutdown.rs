//! The order in which one core stops, once its stop is raised (SIGINT/SIGTERM, a durable
//! queue full with `full_action = "shutdown"`, a failed startup):
//!
//! 1. its inputs stop reading and close their connections; the ticker stops;
//! 2. it ships every batch its inputs left, and counts itself among the cores that are done;
//! 3. its filter host, if any, runs until every core is done and its lanes are drained;
//! 4. its router is cleared: that releases its ring producers, so owners see it has finished;
//! 5. its durable filters' queues are closed (readers then see their end);
//! 6. every output's close hook runs (durable queues close, TCP queues close), then every
//!    output task is awaited: ring drains (until every producer is gone), queue consumers
//!    and TCP senders (each bounded by its own drain timeout).
//!
//! Nothing here names a plugin kind: outputs give their close hook and tasks when they are
//! wired ([`crate::output::wiring`]).

use std::rc::Rc;
use std::sync::Arc;

use super::durable_filters::FilterQueue;
use super::failure;
use super::filters::{self, FilterShared, Host};
use super::shard::Shard;
use crate::output::CloseHook;

/// What ends one output on one core.
pub struct OutputStop {
    /// Run once after every batch of this core has shipped; `None` when the output has nothing to
    /// close.
    pub close: Option<CloseHook>,
    /// The output's tasks on this core, awaited after `close`.
    pub tasks: Vec<glommio::task::JoinHandle<()>>,
}

/// Everything one core stops, in [the module's](self) order.
pub struct CoreStop {
    /// The core itself: its router, inputs and stop flag.
    pub shard: Rc<Shard>,
    /// How to stop each output that runs on this core.
    pub outputs: Vec<OutputStop>,
    /// This core's queues of durable filters.
    pub filter_queues: Vec<Rc<FilterQueue>>,
    /// The filters this core hosts, if any, and their names.
    pub host: Option<(Host, String)>,
}

/// Serves until this core's stop is raised, then stops it in order.
pub async fn serve_until_stopped(
    core: CoreStop,
    shared: Arc<FilterShared>,
    mut core_done: failure::CoreDone,
) {
    let CoreStop {
        shard,
        outputs,
        filter_queues,
        host,
    } = core;
    let host = host.map(|(host, names)| {
        let run = filters::run_host(shard.clone(), host, shared.clone());
        glommio::spawn_local(failure::plugin_task(&names, run))
    });
    let ticker = glommio::spawn_local(shard.clone().tick());
    shard.stop.wait().await;
    shard.inputs_closed().await;
    ticker.await;
    // What the inputs left; not what a filter host on this core keeps adding meanwhile (it
    // ships that itself), or a busy host would keep this core from ever being done.
    shard.ship_present().await;
    core_done.count();
    if let Some(host) = host {
        host.await;
    }
    // Dropping the sinks releases this core's ring producers: owners see it has finished.
    shard.router.borrow_mut().clear();
    // This core's host, the last task that could append to its durable filters' queues (its
    // injections), has finished. Hosts on other cores may still be reading them; closing only
    // seals the tail.
    for queue in &filter_queues {
        queue.queue().close().await;
    }
    let mut tasks = Vec::new();
    for output in outputs {
        if let Some(close) = output.close {
            close().await;
        }
        tasks.extend(output.tasks);
    }
    for task in tasks {
        task.await;
    }
}
