//! The engine: one pinned glommio executor per core, the rings between them, and the order in
//! which they start and stop.
//!
//! Start: rings are created for every (core, single-writer output) pair that needs one, then
//! each core's executor builds its sinks, binds its sockets and reports ready; a core that
//! cannot bind or open what it needs reports the error and startup fails.
//!
//! Stop (graceful): every core stops its inputs, finishes the records it has read, ships every
//! batch, and releases its rings; owners drain their rings to the end; TCP senders deliver
//! what is queued (for at most [`crate::limits::DRAIN_TIMEOUT`]). Then the executors
//! return and the process exits 0 — or 1 when a core stopped the daemon because of an error
//! ([`stop::StopFlag::fail`]: a durable queue full with `full_action = "shutdown"`).

pub mod backoff;
pub mod durable_filters;
pub mod failure;
pub mod filters;
pub mod notify;
pub mod ring;
pub mod router;
pub mod shard;
pub mod shutdown;
pub mod stop;

use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;

use glommio::{LocalExecutorBuilder, Placement};

use crate::component::{Stage, StartupError};
use crate::config::plan::{Plan, RingFull};
use crate::filter::FilterBuild;
use crate::input::InputContext;
use crate::matcher::{MatcherSet, Program};
use crate::output::wiring::{self, OutputRings};
use crate::output::{OutputCore, Sink, Writers};
use crate::queue::HandleBoard;
use crate::telemetry::Telemetry;
use durable_filters::{DurableSource, FilterQueue};
use filters::{FilterShared, Host, Hosted, Inbox, Lane, LaneTarget};
use ring::{BatchConsumer, BatchProducer, RingConsumer, RingProducer};
use router::{FilterRoute, Router};
use shard::Shard;
use shutdown::{CoreStop, OutputStop};
use stop::{LocalStop, StopFlag};

/// Why the engine could not start.
pub type RuntimeError = StartupError;

/// What one core is handed at start.
struct CoreSetup {
    row: usize,
    cpu: usize,
    /// Per host core (in `filter_hosts` order): this core's producer into that host's lane
    /// ring (none toward itself).
    lane_producers: Vec<Option<RingProducer>>,
    /// The lane rings this core drains, if it hosts filters.
    lane_consumers: Vec<RingConsumer>,
    /// Per output: this core's producer into the owner's ring, if it needs one.
    producers: Vec<Option<RingProducer>>,
    /// Per output: the rings this core drains, if it owns the output.
    consumers: Vec<Vec<RingConsumer>>,
    /// Per output: where a durable output's cores publish their queue handles.
    boards: Vec<Option<Arc<HandleBoard>>>,
    /// Per filter: the same, for a durable filter.
    filter_boards: Vec<Option<Arc<HandleBoard>>>,
}

/// The running engine.
pub struct Running {
    handles: Vec<glommio::ExecutorJoinHandle<()>>,
    /// Failed when a core ends with an error ([`failure::join_core`]).
    stop: Arc<StopFlag>,
    /// The disk queues' boards, by telemetry plugin index.
    queues: Vec<(usize, Arc<HandleBoard>)>,
}

impl Running {
    /// The handle boards of every durable output and filter, each with its plugin's index in
    /// telemetry order ([`plugin_names`]): where the operator endpoint reads queue lag.
    pub fn queue_boards(&self) -> Vec<(usize, Arc<HandleBoard>)> {
        self.queues.clone()
    }

    /// Waits for every core to finish stopping; a core that ended with an error (a panic)
    /// fails the stop flag, so the exit status is non-zero.
    pub fn join(self) {
        for handle in self.handles {
            failure::join_core(handle, &self.stop);
        }
    }
}

/// The plugin names in telemetry order: inputs, then outputs, then filters.
pub fn plugin_names(plan: &Plan) -> Vec<String> {
    let inputs = plan.inputs.iter().map(|input| input.name.clone());
    let outputs = plan.outputs.iter().map(|output| output.name.clone());
    inputs
        .chain(outputs)
        .chain(plan.filters.iter().map(|filter| filter.name.clone()))
        .collect()
}

/// The cores that host at least one filter, in plan core order.
fn filter_hosts(plan: &Plan) -> Vec<usize> {
    let hosts = plan.global.cores.iter().copied();
    hosts
        .filter(|cpu| plan.filters.iter().any(|filter| filter.host_core == *cpu))
        .collect()
}

/// The telemetry row of a core: its position in the plan's core list.
///
/// # Panics
/// If `cpu` is not one of the plan's cores: the plan places every output and filter on one
/// of them, so that is a bug.
fn row_of(plan: &Plan, cpu: usize) -> usize {
    let row = plan.global.cores.iter().position(|&core| core == cpu);
    row.unwrap_or_else(|| panic!("core {cpu} is not in the plan's cores"))
}

/// What each core is handed at start: the handle boards of durable outputs and filters, and
/// the rings between cores (lanes toward every filter host; toward every single writer's
/// owner for outputs that are not durable).
fn core_setups(plan: &Plan) -> Vec<CoreSetup> {
    let cores = &plan.global.cores;
    let boards: Vec<Option<Arc<HandleBoard>>> = plan
        .outputs
        .iter()
        .map(|output| {
            output
                .durable
                .as_ref()
                .map(|_| HandleBoard::new(&output.name, cores.len()))
        })
        .collect();
    let filter_boards: Vec<Option<Arc<HandleBoard>>> = plan
        .filters
        .iter()
        .map(|filter| {
            filter
                .durable
                .as_ref()
                .map(|_| HandleBoard::new(&filter.name, cores.len()))
        })
        .collect();
    let mut setups: Vec<CoreSetup> = cores
        .iter()
        .enumerate()
        .map(|(row, &cpu)| CoreSetup {
            row,
            cpu,
            producers: plan.outputs.iter().map(|_| None).collect(),
            consumers: plan.outputs.iter().map(|_| Vec::new()).collect(),
            lane_producers: Vec::new(),
            lane_consumers: Vec::new(),
            boards: boards.clone(),
            filter_boards: filter_boards.clone(),
        })
        .collect();
    for &host in &filter_hosts(plan) {
        let host_row = row_of(plan, host);
        for row in 0..cores.len() {
            if row == host_row {
                setups[row].lane_producers.push(None);
                continue;
            }
            let (producer, consumer) = ring::ring(plan.global.ring_slots);
            setups[row].lane_producers.push(Some(producer));
            setups[host_row].lane_consumers.push(consumer);
        }
    }
    for (index, output) in plan.outputs.iter().enumerate() {
        // A durable output's cores never hand batches over: each appends to its own queue.
        let single_writer = output.kind.writers() == Writers::Owner;
        if single_writer && output.durable.is_none() {
            let owner_row = row_of(plan, output.owner_core);
            for row in (0..cores.len()).filter(|&row| row != owner_row) {
                let (producer, consumer) = ring::ring(plan.global.ring_slots);
                setups[row].producers[index] = Some(producer);
                setups[owner_row].consumers[index].push(consumer);
            }
        }
    }
    setups
}

/// The boards of the durable outputs and filters (every core's setup holds the same ones),
/// each with its plugin's index in telemetry order.
fn queue_boards(plan: &Plan, setups: &[CoreSetup]) -> Vec<(usize, Arc<HandleBoard>)> {
    let Some(setup) = setups.first() else {
        return Vec::new();
    };
    let outputs = setup.boards.iter().enumerate();
    let outputs = outputs.map(|(index, board)| (plan.inputs.len() + index, board));
    let filters = setup.filter_boards.iter().enumerate();
    let first_filter = plan.inputs.len() + plan.outputs.len();
    let filters = filters.map(|(index, board)| (first_filter + index, board));
    outputs
        .chain(filters)
        .filter_map(|(plugin, board)| Some((plugin, board.clone()?)))
        .collect()
}

/// Starts every core and returns once all of them are serving.
///
/// # Errors
/// A core failed to start; the others are stopped before this returns.
pub fn start(
    plan: Arc<Plan>,
    telemetry: Arc<Telemetry>,
    stop: Arc<StopFlag>,
) -> Result<Running, StartupError> {
    let setups = core_setups(&plan);
    let queues = queue_boards(&plan, &setups);
    let shared = FilterShared::new(plan.filters.len());
    let (ready_sender, ready_receiver) = mpsc::channel::<Result<(), StartupError>>();
    let mut handles = Vec::new();
    let mut first_error = None;
    for setup in setups {
        let cpu = setup.cpu;
        let (plan, telemetry, stop, ready) = (
            plan.clone(),
            telemetry.clone(),
            stop.clone(),
            ready_sender.clone(),
        );
        let shared = shared.clone();
        let spawned = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("gyges-core{cpu}"))
            .io_memory(plan.global.io_memory_bytes)
            .ring_depth(plan.global.ring_depth)
            .spawn(
                move || async move { run_core(plan, telemetry, stop, setup, shared, ready).await },
            );
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                first_error = Some(StartupError::Executor {
                    cpu,
                    message: error.to_string(),
                });
                break;
            }
        }
    }
    drop(ready_sender);
    for _ in 0..handles.len() {
        match ready_receiver.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            Err(_) => break,
        }
    }
    let running = Running {
        handles,
        stop: stop.clone(),
        queues,
    };
    if let Some(error) = first_error {
        stop.raise();
        running.join();
        return Err(error);
    }
    Ok(running)
}

/// What every builder on one core shares.
struct CoreContext<'a> {
    plan: &'a Arc<Plan>,
    telemetry: &'a Arc<Telemetry>,
    stop_flag: &'a Arc<StopFlag>,
    stop: &'a Rc<LocalStop>,
    row: usize,
    cpu: usize,
}

impl CoreContext<'_> {
    fn error(&self, stage: Stage, plugin: &str, message: impl Into<String>) -> StartupError {
        StartupError::plugin(self.cpu, stage, plugin, message)
    }
}

/// What the outputs' builders made on one core: a sink and a matcher per output, and what to
/// end at stop.
struct BuiltOutputs {
    sinks: Vec<Sink>,
    matchers: Vec<Program>,
    stops: Vec<OutputStop>,
}

/// Runs every output's builder on this core, in plan order.
async fn build_outputs(
    core: &CoreContext<'_>,
    setup: &mut CoreSetup,
) -> Result<BuiltOutputs, StartupError> {
    let plan = core.plan;
    let mut built = BuiltOutputs {
        sinks: Vec::new(),
        matchers: Vec::new(),
        stops: Vec::new(),
    };
    for (index, output) in plan.outputs.iter().enumerate() {
        let plugin = plan.inputs.len() + index;
        let output_core = OutputCore {
            plan,
            output,
            row: core.row,
            cpu: core.cpu,
            plugin,
            telemetry: core.telemetry,
            stop: core.stop,
        };
        let rings = OutputRings {
            producer: setup.producers[index].take(),
            consumers: std::mem::take(&mut setup.consumers[index]),
        };
        let board = setup.boards[index].as_ref();
        let wired = wiring::wire(&output_core, rings, board, core.stop_flag)
            .await
            .map_err(|message| core.error(Stage::Output, &output.name, message))?;
        let encoder = output
            .encoder
            .build(&plan.global, Some(core.row))
            .map_err(|message| core.error(Stage::Encoder, &output.name, message))?;
        let bounds = (plan.global.batch_bytes, plan.global.max_message_size);
        let sink = Sink::new(
            plugin,
            encoder,
            output.use_framing,
            bounds,
            wired.policy,
            wired.target,
        )
        .with_signer(output.signer.clone());
        built.sinks.push(sink);
        built.matchers.push(output.matcher.clone());
        built.stops.push(OutputStop {
            close: wired.close,
            tasks: wired.tasks,
        });
    }
    Ok(built)
}

/// What the filters' builders made on one core.
struct BuiltFilters {
    lanes: Vec<Lane>,
    routes: Vec<FilterRoute>,
    matchers: Vec<Program>,
    /// The dynamic slots (a SandboxManagerFilter's): each filter index and its cached matcher.
    slots: Vec<(usize, crate::filter::slots::SlotCache)>,
    queues: Vec<Rc<FilterQueue>>,
    /// The filters this core hosts, and their names (for the failure log).
    host: Option<(Host, String)>,
}

/// Opens this core's disk queue of every durable filter, each as a lane of its own. Returns
/// the lane of each filter (none for the others).
async fn open_filter_queues(
    core: &CoreContext<'_>,
    setup: &CoreSetup,
    lanes: &mut Vec<Lane>,
    queues: &mut Vec<Rc<FilterQueue>>,
) -> Result<Vec<Option<usize>>, StartupError> {
    let plan = core.plan;
    let first_filter_plugin = plan.inputs.len() + plan.outputs.len();
    let mut durable_lanes = vec![None; plan.filters.len()];
    for (index, filter) in plan.filters.iter().enumerate() {
        let (Some(options), Some(board)) = (&filter.durable, &setup.filter_boards[index]) else {
            continue;
        };
        let plugin = first_filter_plugin + index;
        let shared = (core.telemetry.clone(), core.stop_flag.clone());
        let queue_dir = &plan.global.queue_dir;
        let queue = FilterQueue::open(queue_dir, &filter.name, core.row, options, shared, plugin)
            .await
            .map_err(|error| {
                let message = format!("durable queue: {error}");
                core.error(Stage::Filter, &filter.name, message)
            })?;
        board.publish(core.row, queue.queue().handle());
        glommio::spawn_local(queue.queue().clone().run_ticker(core.stop.clone())).detach();
        queues.push(queue.clone());
        durable_lanes[index] = Some(lanes.len());
        lanes.push(Lane::new(
            LaneTarget::Durable(queue),
            plan.global.ring_slots,
        ));
    }
    Ok(durable_lanes)
}

/// Runs every filter's builder on this core: its lane and matcher here, and, on its host
/// core, the filter itself.
async fn build_filters(
    core: &CoreContext<'_>,
    setup: &mut CoreSetup,
    inbox: &Rc<Inbox>,
) -> Result<BuiltFilters, StartupError> {
    let plan = core.plan;
    // One lane per host core; the host's own lane is its local inbox.
    let hosts = filter_hosts(plan);
    let mut lanes = Vec::new();
    for (index, host) in hosts.iter().enumerate() {
        let target = match setup.lane_producers.get_mut(index).and_then(Option::take) {
            Some(producer) => LaneTarget::Ring(Rc::new(BatchProducer::new(producer))),
            None => {
                assert_eq!(
                    *host, core.cpu,
                    "every other core has a producer toward each host"
                );
                LaneTarget::Local(inbox.clone())
            }
        };
        lanes.push(Lane::new(target, plan.global.ring_slots));
    }
    let mut queues = Vec::new();
    let durable_lanes = open_filter_queues(core, setup, &mut lanes, &mut queues).await?;
    let first_filter_plugin = plan.inputs.len() + plan.outputs.len();
    let (mut routes, mut matchers, mut hosted, mut sources) = (vec![], vec![], vec![], vec![]);
    let local = crate::filter::LocalShare::default();
    let mut slots = Vec::new();
    for (index, filter) in plan.filters.iter().enumerate() {
        if let Some((board, slot)) = filter.kind.slot_board() {
            let cache = crate::filter::slots::SlotCache::new(board.clone(), slot);
            slots.push((index, cache));
        }
        let host_lane = || {
            let lane = hosts.iter().position(|host| *host == filter.host_core);
            lane.unwrap_or_else(|| panic!("filter [{}] has no host lane", filter.name))
        };
        let lane = durable_lanes[index].unwrap_or_else(host_lane);
        let plugin = first_filter_plugin + index;
        let index_u16 = u16::try_from(index).expect("the plan bounds the filter count");
        routes.push(FilterRoute {
            plugin,
            index: index_u16,
            lane,
            drop_when_full: filter.ring_full == RingFull::Drop,
        });
        matchers.push(filter.matcher.clone());
        if filter.host_core != core.cpu {
            hosted.push(None);
            continue;
        }
        if let Some(board) = &setup.filter_boards[index] {
            for source_row in 0..plan.global.cores.len() {
                let board = board.clone();
                sources.push(DurableSource::new(
                    index_u16,
                    &filter.name,
                    board,
                    source_row,
                ));
            }
        }
        let filter_index = |name: &str| plan.filter_index(name);
        let build = FilterBuild {
            name: &filter.name,
            global: &plan.global,
            filter_index: &filter_index,
            local: &local,
        };
        let built = filter
            .kind
            .build(&build)
            .map_err(|message| core.error(Stage::Filter, &filter.name, message))?;
        hosted.push(Some(Hosted::new(built, index, plugin, filter.name.clone())));
    }
    let here = plan
        .filters
        .iter()
        .filter(|filter| filter.host_core == core.cpu);
    let host_names: Vec<&str> = here.map(|filter| filter.name.as_str()).collect();
    let host_names = host_names.join(", ");
    let host = hosted.iter().any(Option::is_some).then(|| Host {
        filters: hosted,
        consumers: BatchConsumer::new(std::mem::take(&mut setup.lane_consumers)),
        inbox: inbox.clone(),
        durable: sources,
        cores: plan.global.cores.len(),
        max_loops: plan.global.max_message_loops,
    });
    Ok(BuiltFilters {
        lanes,
        routes,
        matchers,
        slots,
        queues,
        host: host.map(|host| (host, host_names)),
    })
}

/// Runs every input's builder on this core (an ingest core): binds and spawns its tasks.
fn start_inputs(core: &CoreContext<'_>, shard: &Rc<Shard>) -> Result<(), StartupError> {
    let plan = core.plan;
    let receive_buffer = plan.global.socket_receive_buffer_bytes;
    let filter_index = |name: &str| plan.filter_index(name);
    for (index, input) in plan.inputs.iter().enumerate() {
        let decoders = (core.row, &filter_index as &dyn Fn(&str) -> Option<usize>);
        let context = InputContext::new(index, input.clone(), &plan.global, decoders)
            .map_err(|message| core.error(Stage::Input, &input.name, message))?;
        input
            .kind
            .start(shard, Rc::new(context), receive_buffer)
            .map_err(|error| core.error(Stage::Input, &input.name, error.to_string()))?;
    }
    Ok(())
}

/// Each output's and then each filter's `message_signer`, in the router's matcher order.
fn message_signers(plan: &Plan) -> Vec<Option<Arc<str>>> {
    let outputs = plan
        .outputs
        .iter()
        .map(|output| output.message_signer.clone());
    let filters = plan
        .filters
        .iter()
        .map(|filter| filter.message_signer.clone());
    outputs.chain(filters).collect()
}

/// Builds everything this core runs, in order: outputs, filters, the router, then the inputs
/// (last, so nothing is read before every destination is in place).
async fn build_core(
    core: &CoreContext<'_>,
    setup: &mut CoreSetup,
    shared: &Arc<FilterShared>,
) -> Result<(CoreStop, Option<StartupError>), StartupError> {
    let outputs = build_outputs(core, setup).await?;
    let inbox = Rc::new(Inbox::default());
    let filters = build_filters(core, setup, &inbox).await?;
    let mut matchers = outputs.matchers;
    matchers.extend(filters.matchers);
    let router = Router::new(
        MatcherSet::new(matchers),
        outputs.sinks,
        filters.routes,
        filters.lanes,
        shared.clone(),
        core.telemetry.clone(),
        core.row,
    )
    .with_signers(message_signers(core.plan))
    .with_dynamic(filters.slots);
    let shard = Rc::new(Shard::new(
        core.row,
        core.cpu,
        core.telemetry.clone(),
        router,
        core.stop.clone(),
        core.plan.global.read_buffer_bytes,
    ));
    let stop = CoreStop {
        shard: shard.clone(),
        outputs: outputs.stops,
        filter_queues: filters.queues,
        host: filters.host,
    };
    // An input that cannot start fails startup, but this core still stops in order (other
    // cores' filter hosts count it among the cores that are done).
    let inputs = if core.plan.global.ingest_cores.contains(&core.cpu) {
        start_inputs(core, &shard).err()
    } else {
        None
    };
    Ok((stop, inputs))
}

async fn run_core(
    plan: Arc<Plan>,
    telemetry: Arc<Telemetry>,
    stop_flag: Arc<StopFlag>,
    mut setup: CoreSetup,
    shared: Arc<FilterShared>,
    ready: mpsc::Sender<Result<(), StartupError>>,
) {
    failure::enter_core(setup.row, setup.cpu);
    // However this core ends (even by a panic), the filter hosts must not wait for it.
    let core_done = failure::CoreDone::new(shared.clone());
    let stop = LocalStop::new();
    glommio::spawn_local(stop.clone().watch(stop_flag.clone())).detach();
    let core = CoreContext {
        plan: &plan,
        telemetry: &telemetry,
        stop_flag: &stop_flag,
        stop: &stop,
        row: setup.row,
        cpu: setup.cpu,
    };
    let core_stop = match build_core(&core, &mut setup, &shared).await {
        Ok((core_stop, None)) => {
            let _ = ready.send(Ok(()));
            core_stop
        }
        Ok((core_stop, Some(input_error))) => {
            core_stop.shard.stop.raise();
            let _ = ready.send(Err(input_error));
            core_stop
        }
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    drop(ready);
    shutdown::serve_until_stopped(core_stop, shared, core_done).await;
}
