//! The engine: one pinned glommio executor per core, the rings between them, and the order in
//! which they start and stop.
//!
//! Start: rings are created for every (core, single-writer output) pair that needs one, then
//! each core's executor builds its sinks, binds its sockets and reports ready; a core that
//! cannot bind or open what it needs reports the error and startup fails.
//!
//! Stop (graceful): every core stops its inputs, finishes the records it has read, ships every
//! batch, and releases its rings; owners drain their rings to the end; TCP senders deliver
//! what is queued (for at most [`crate::output::tcp::DRAIN_TIMEOUT`]). Then the executors
//! return and the process exits 0 — or 1 when a core stopped the daemon because of an error
//! ([`stop::StopFlag::fail`]: a durable queue full with `full_action = "shutdown"`).

pub mod backoff;
pub mod durable_filters;
pub mod filters;
pub mod notify;
pub mod ring;
pub mod router;
pub mod shard;
pub mod stop;

use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;

use glommio::{LocalExecutorBuilder, Placement};

use crate::config::plan::RingFull;
use crate::config::plan::{DeliveryClass, InputKind, OutputKind, Plan};
use crate::filter::Filter;
use crate::input::{self, InputContext};
use crate::matcher::MatcherSet;
use crate::output::durable;
use crate::output::file::FileWriter;
use crate::output::tcp::{self, TcpQueue};
use crate::output::{build_encoder, Batch, FlushPolicy, Sink, Target};
use crate::queue::{DurableQueue, HandleBoard};
use crate::telemetry::Telemetry;
use durable_filters::{DurableSource, FilterQueue};
use filters::{FilterShared, Host, Hosted, Inbox, Lane, LaneTarget};
use ring::BatchProducer;
use router::{FilterRoute, Router};
use shard::Shard;
use stop::{LocalStop, StopFlag};

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("core {cpu}: {message}")]
    Core { cpu: usize, message: String },
    #[error("cannot start the executor for core {cpu}: {message}")]
    Executor { cpu: usize, message: String },
}

/// What one core is handed at start.
struct CoreSetup {
    row: usize,
    cpu: usize,
    /// Per host core (in `filter_hosts` order): this core's producer into that host's lane
    /// ring (none toward itself).
    lane_producers: Vec<Option<rtrb::Producer<Batch>>>,
    /// The lane rings this core drains, if it hosts filters.
    lane_consumers: Vec<rtrb::Consumer<Batch>>,
    /// Per output: this core's producer into the owner's ring, if it needs one.
    producers: Vec<Option<rtrb::Producer<Batch>>>,
    /// Per output: the rings this core drains, if it owns the output.
    consumers: Vec<Vec<rtrb::Consumer<Batch>>>,
    /// Per output: where a durable output's cores publish their queue handles.
    boards: Vec<Option<Arc<HandleBoard>>>,
    /// Per filter: the same, for a durable filter.
    filter_boards: Vec<Option<Arc<HandleBoard>>>,
}

/// The running engine.
pub struct Running {
    handles: Vec<glommio::ExecutorJoinHandle<()>>,
}

impl Running {
    /// Waits for every core to finish stopping.
    pub fn join(self) {
        for handle in self.handles {
            if let Err(error) = handle.join() {
                tracing::error!(%error, "a core ended with an error");
            }
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
fn row_of(plan: &Plan, cpu: usize) -> usize {
    plan.global
        .cores
        .iter()
        .position(|&core| core == cpu)
        .unwrap_or(0)
}

/// Starts every core and returns once all of them are serving.
///
/// # Errors
/// A core failed to start; the others are stopped before this returns.
pub fn start(
    plan: Arc<Plan>,
    telemetry: Arc<Telemetry>,
    stop: Arc<StopFlag>,
) -> Result<Running, RuntimeError> {
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
    for &host in &filter_hosts(&plan) {
        let host_row = row_of(&plan, host);
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
    let shared = FilterShared::new(plan.filters.len());
    for (index, output) in plan.outputs.iter().enumerate() {
        // A durable output's cores never hand batches over: each appends to its own queue.
        let single_file = matches!(&output.kind, OutputKind::File(file) if !file.per_core);
        if single_file && output.durable.is_none() {
            let owner_row = row_of(&plan, output.owner_core);
            for row in (0..cores.len()).filter(|&row| row != owner_row) {
                let (producer, consumer) = ring::ring(plan.global.ring_slots);
                setups[row].producers[index] = Some(producer);
                setups[owner_row].consumers[index].push(consumer);
            }
        }
    }
    let (ready_sender, ready_receiver) = mpsc::channel::<Result<(), RuntimeError>>();
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
                first_error = Some(RuntimeError::Executor {
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
    let running = Running { handles };
    if let Some(error) = first_error {
        stop.raise();
        running.join();
        return Err(error);
    }
    Ok(running)
}

async fn run_core(
    plan: Arc<Plan>,
    telemetry: Arc<Telemetry>,
    stop_flag: Arc<StopFlag>,
    mut setup: CoreSetup,
    shared: Arc<FilterShared>,
    ready: mpsc::Sender<Result<(), RuntimeError>>,
) {
    let (row, cpu) = (setup.row, setup.cpu);
    let stop = LocalStop::new();
    glommio::spawn_local(stop.clone().watch(stop_flag.clone())).detach();
    let core_error = |message: String| RuntimeError::Core { cpu, message };

    let mut sinks = Vec::new();
    let mut matchers = Vec::new();
    let mut drains = Vec::new();
    let mut senders = Vec::new();
    let mut durables = Vec::new();
    let mut deliveries = Vec::new();
    for (index, output) in plan.outputs.iter().enumerate() {
        let plugin = plan.inputs.len() + index;
        let durable = match (&output.durable, &setup.boards[index]) {
            (Some(options), Some(board)) => {
                let place = DurablePlace {
                    plan: &plan,
                    output,
                    options,
                    board,
                    row,
                    cpu,
                    plugin,
                };
                match open_durable(place, &stop, &stop_flag, &telemetry).await {
                    Ok(opened) => Some(opened),
                    Err(message) => {
                        let _ = ready.send(Err(core_error(message)));
                        return;
                    }
                }
            }
            _ => None,
        };
        let (target, policy) = match &output.kind {
            _ if durable.is_some() => {
                let Some((queue, policy, consumers)) = durable else {
                    return;
                };
                durables.push(queue.clone());
                deliveries.extend(consumers);
                (Target::Durable(queue), policy)
            }
            OutputKind::File(file) => {
                let policy = FlushPolicy {
                    interval: file.flush_interval,
                    count: file.flush_count,
                    either: file.flush_either,
                };
                if let Some(producer) = setup.producers[index].take() {
                    (Target::Ring(Rc::new(BatchProducer::new(producer))), policy)
                } else {
                    let path = file.path.replace("%{core}", &cpu.to_string());
                    let writer =
                        match FileWriter::open(path.as_ref(), file.perm, file.folder_perm).await {
                            Ok(writer) => Rc::new(writer),
                            Err(error) => {
                                let _ = ready.send(Err(core_error(format!(
                                    "output [{}]: cannot open {path}: {error}",
                                    output.name
                                ))));
                                return;
                            }
                        };
                    if !file.per_core && output.owner_core == cpu {
                        let consumers = std::mem::take(&mut setup.consumers[index]);
                        let drain = shard::drain_rings(
                            consumers,
                            writer.clone(),
                            telemetry.clone(),
                            row,
                            plugin,
                        );
                        drains.push(glommio::spawn_local(drain));
                    }
                    (Target::File(writer), policy)
                }
            }
            OutputKind::Tcp(tcp_plan) => {
                let best_effort = output.delivery == DeliveryClass::BestEffort;
                let queue = TcpQueue::new(tcp_plan.buffer_bytes, best_effort);
                let sender = tcp::run_sender(
                    queue.clone(),
                    tcp_plan.clone(),
                    telemetry.clone(),
                    row,
                    plugin,
                );
                senders.push((queue.clone(), glommio::spawn_local(sender)));
                (Target::Tcp(queue), FlushPolicy::PROMPT)
            }
            OutputKind::Udp {
                address,
                datagram_bytes_max,
            } => match crate::output::udp::UdpSender::new(address, *datagram_bytes_max) {
                Ok(sender) => (Target::Udp(Rc::new(sender)), FlushPolicy::PROMPT),
                Err(error) => {
                    let message = format!("output [{}]: {address}: {error}", output.name);
                    let _ = ready.send(Err(core_error(message)));
                    return;
                }
            },
            OutputKind::Log => (Target::Log, FlushPolicy::PROMPT),
        };
        let batch_bytes = plan.global.batch_bytes;
        let encoder = match build_encoder(&output.encoder, &plan.global) {
            Ok(encoder) => encoder,
            Err(error) => {
                let message = format!("output [{}]: {error}", output.name);
                let _ = ready.send(Err(core_error(message)));
                return;
            }
        };
        sinks.push(
            Sink::new(
                plugin,
                encoder,
                output.use_framing,
                (batch_bytes, plan.global.max_message_size),
                policy,
                target,
            )
            .dropping_when_full(output.delivery == DeliveryClass::BestEffort),
        );
        matchers.push(output.matcher.clone());
    }
    // Filters: one lane per host core; the host's own lane is its local inbox.
    let hosts = filter_hosts(&plan);
    let inbox = Rc::new(Inbox::default());
    let mut lanes = Vec::new();
    for (index, host) in hosts.iter().enumerate() {
        let target = match setup.lane_producers.get_mut(index).and_then(Option::take) {
            Some(producer) => LaneTarget::Ring(Rc::new(BatchProducer::new(producer))),
            None if *host == cpu => LaneTarget::Local(inbox.clone()),
            None => unreachable!("every other core has a producer toward each host"),
        };
        lanes.push(Lane::new(target, plan.global.ring_slots));
    }
    let first_filter_plugin = plan.inputs.len() + plan.outputs.len();
    // Durable filters: a lane of their own into this core's queue for them.
    let mut filter_queues = Vec::new();
    let mut durable_lanes = vec![None; plan.filters.len()];
    for (index, filter) in plan.filters.iter().enumerate() {
        let (Some(options), Some(board)) = (&filter.durable, &setup.filter_boards[index]) else {
            continue;
        };
        let plugin = first_filter_plugin + index;
        let queue_dir = &plan.global.queue_dir;
        let opened = FilterQueue::open(
            queue_dir,
            &filter.name,
            row,
            options,
            (telemetry.clone(), stop_flag.clone()),
            plugin,
        )
        .await;
        let queue = match opened {
            Ok(queue) => queue,
            Err(error) => {
                let message = format!("filter [{}]: durable queue: {error}", filter.name);
                let _ = ready.send(Err(core_error(message)));
                return;
            }
        };
        board.publish(row, queue.queue().handle());
        glommio::spawn_local(queue.queue().clone().run_ticker(stop.clone())).detach();
        filter_queues.push(queue.clone());
        durable_lanes[index] = Some(lanes.len());
        lanes.push(Lane::new(
            LaneTarget::Durable(queue),
            plan.global.ring_slots,
        ));
    }
    let mut routes = Vec::new();
    let mut hosted = Vec::new();
    let mut durable_sources = Vec::new();
    for (index, filter) in plan.filters.iter().enumerate() {
        let lane = durable_lanes[index].unwrap_or_else(|| {
            hosts
                .iter()
                .position(|host| *host == filter.host_core)
                .unwrap_or(0)
        });
        let plugin = first_filter_plugin + index;
        let drop_when_full = filter.ring_full == RingFull::Drop;
        routes.push(FilterRoute {
            plugin,
            index: index as u16,
            lane,
            drop_when_full,
        });
        matchers.push(filter.matcher.clone());
        if filter.host_core != cpu {
            hosted.push(None);
            continue;
        }
        if let Some(board) = &setup.filter_boards[index] {
            for source_row in 0..plan.global.cores.len() {
                let source =
                    DurableSource::new(index as u16, &filter.name, board.clone(), source_row);
                durable_sources.push(source);
            }
        }
        let by_name = |name: &str| plan.filters.iter().position(|other| other.name == name);
        match Filter::build(filter, &plan.global, by_name) {
            Ok(built) => hosted.push(Some(Hosted::new(built, index, plugin, filter.name.clone()))),
            Err(message) => {
                let _ = ready.send(Err(core_error(format!(
                    "filter [{}]: {message}",
                    filter.name
                ))));
                return;
            }
        }
    }
    let hosts_here = hosted.iter().any(Option::is_some);
    let router = Router::new(
        MatcherSet::new(matchers),
        sinks,
        routes,
        lanes,
        shared.clone(),
        telemetry.clone(),
        row,
    );
    let shard = Rc::new(Shard::new(
        row,
        cpu,
        telemetry,
        router,
        stop,
        plan.global.read_buffer_bytes,
    ));

    let receive_buffer = plan.global.socket_receive_buffer_bytes;
    let ingests = plan.global.ingest_cores.contains(&cpu);
    for (index, input_plan) in plan.inputs.iter().enumerate().filter(|_| ingests) {
        let context = match InputContext::new(index, input_plan.clone(), &plan.global, |name| {
            plan.filters.iter().position(|filter| filter.name == name)
        }) {
            Ok(context) => Rc::new(context),
            Err(message) => {
                let _ = ready.send(Err(core_error(format!(
                    "input [{}]: {message}",
                    input_plan.name
                ))));
                shard.stop.raise();
                break;
            }
        };
        let started = match input_plan.kind {
            InputKind::Tcp {
                address,
                max_connections,
                ..
            } => input::tcp::bind(address, receive_buffer).map(|listener| {
                glommio::spawn_local(input::tcp::serve(
                    shard.clone(),
                    context,
                    listener,
                    max_connections,
                ))
                .detach();
            }),
            InputKind::Udp { address, .. } => {
                input::udp::bind(address, receive_buffer).map(|socket| {
                    glommio::spawn_local(input::udp::serve(shard.clone(), context, socket))
                        .detach();
                })
            }
        };
        if let Err(error) = started {
            let _ = ready.send(Err(core_error(format!(
                "input [{}]: {error}",
                input_plan.name
            ))));
            shard.stop.raise();
            break;
        }
    }
    if !shard.stop.is_stopping() {
        let _ = ready.send(Ok(()));
    }
    drop(ready);

    let host = hosts_here.then(|| {
        let host = Host {
            filters: hosted,
            consumers: std::mem::take(&mut setup.lane_consumers),
            inbox,
            durable: durable_sources,
            cores: plan.global.cores.len(),
            max_loops: plan.global.max_message_loops,
        };
        glommio::spawn_local(filters::run_host(shard.clone(), host, shared.clone()))
    });
    let ticker = glommio::spawn_local(shard.clone().tick());
    shard.stop.wait().await;
    shard.inputs_closed().await;
    ticker.await;
    // What the inputs left; not what a filter host on this core keeps adding meanwhile (it
    // ships that itself), or a busy host would keep this core from ever being done.
    shard.ship_present().await;
    shared
        .cores_done
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    if let Some(host) = host {
        host.await;
    }
    // Dropping the sinks releases this core's ring producers: owners see it has finished.
    shard.router.borrow_mut().clear();
    for drain in drains {
        drain.await;
    }
    // Durable filters' queues: this core's host, the last task that could append to them (its
    // injections), has finished. Hosts on other cores may still be reading them; closing only
    // seals the tail.
    for queue in &filter_queues {
        queue.queue().close().await;
    }
    // Durable outputs: close this core's queues (readers then see their end), then let the
    // consumers here deliver what is left (bounded by the drain timeout) and checkpoint.
    for queue in &durables {
        queue.close().await;
    }
    for delivery in deliveries {
        delivery.await;
    }
    for (queue, sender) in senders {
        queue.close();
        sender.await;
    }
}

/// A durable output as one core sees it.
struct DurablePlace<'a> {
    plan: &'a Plan,
    output: &'a crate::config::plan::OutputPlan,
    options: &'a crate::queue::QueueOptions,
    board: &'a Arc<HandleBoard>,
    row: usize,
    cpu: usize,
    plugin: usize,
}

/// What [`open_durable`] starts on one core: its queue, its flush policy and the tasks that
/// deliver (from this core's queue, or from every core's queue on a single file's owner).
type OpenedDurable = (
    Rc<DurableQueue>,
    FlushPolicy,
    Vec<glommio::task::JoinHandle<()>>,
);

/// Opens this core's queue of a durable output, publishes it, starts its ticker and the
/// consumers this core runs (see [`crate::output::durable`] for who consumes what).
async fn open_durable(
    place: DurablePlace<'_>,
    stop: &Rc<LocalStop>,
    stop_flag: &Arc<StopFlag>,
    telemetry: &Arc<Telemetry>,
) -> Result<OpenedDurable, String> {
    let DurablePlace {
        plan,
        output,
        options,
        board,
        row,
        cpu,
        plugin,
    } = place;
    let queue_dir = &plan.global.queue_dir;
    let queue = DurableQueue::open(queue_dir, &output.name, row, options, stop_flag.clone())
        .await
        .map_err(|error| format!("output [{}]: durable queue: {error}", output.name))?;
    board.publish(row, queue.handle());
    glommio::spawn_local(queue.clone().run_ticker(stop.clone())).detach();
    let mut sources = Vec::new();
    let policy = match &output.kind {
        OutputKind::File(file) => {
            let policy = FlushPolicy {
                interval: file.flush_interval,
                count: file.flush_count,
                either: file.flush_either,
            };
            let rows: Vec<usize> = if file.per_core {
                vec![row]
            } else if output.owner_core == cpu {
                (0..plan.global.cores.len()).collect()
            } else {
                Vec::new()
            };
            if !rows.is_empty() {
                let path = file.path.replace("%{core}", &cpu.to_string());
                let writer = FileWriter::open(path.as_ref(), file.perm, file.folder_perm)
                    .await
                    .map(Rc::new)
                    .map_err(|error| {
                        format!("output [{}]: cannot open {path}: {error}", output.name)
                    })?;
                for source in rows {
                    sources.push((source, durable::Delivery::File(writer.clone())));
                }
            }
            policy
        }
        OutputKind::Tcp(tcp_plan) => {
            let delivery = durable::Delivery::Tcp {
                plan: tcp_plan.clone(),
                stream: None,
            };
            sources.push((row, delivery));
            FlushPolicy::PROMPT
        }
        OutputKind::Udp { .. } | OutputKind::Log => {
            return Err(format!(
                "output [{}]: durable buffering is only available on FileOutput and TcpOutput",
                output.name
            ))
        }
    };
    let consumers = sources
        .into_iter()
        .map(|(source, delivery)| match delivery {
            durable::Delivery::Tcp { plan: tcp, .. } if tcp.ack.is_some() => {
                glommio::spawn_local(crate::output::acked::run_consumer(
                    board.clone(),
                    source,
                    tcp,
                    stop.clone(),
                    telemetry.clone(),
                    row,
                    plugin,
                ))
                .detach()
            }
            delivery => glommio::spawn_local(durable::run_consumer(
                board.clone(),
                source,
                delivery,
                stop.clone(),
                telemetry.clone(),
                row,
                plugin,
            ))
            .detach(),
        })
        .collect();
    Ok((queue, policy, consumers))
}
