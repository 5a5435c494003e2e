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
//! return and the process exits 0.

pub mod notify;
pub mod ring;
pub mod router;
pub mod shard;
pub mod stop;

use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;

use glommio::{LocalExecutorBuilder, Placement};

use crate::config::plan::{InputKind, OutputKind, Plan};
use crate::input::{self, InputContext};
use crate::matcher::MatcherSet;
use crate::output::file::FileWriter;
use crate::output::tcp::{self, TcpQueue};
use crate::output::{build_encoder, Batch, FlushPolicy, Sink, Target};
use crate::telemetry::Telemetry;
use ring::BatchProducer;
use router::Router;
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
    /// Per output: this core's producer into the owner's ring, if it needs one.
    producers: Vec<Option<rtrb::Producer<Batch>>>,
    /// Per output: the rings this core drains, if it owns the output.
    consumers: Vec<Vec<rtrb::Consumer<Batch>>>,
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

/// The plugin names in telemetry order: inputs, then outputs.
pub fn plugin_names(plan: &Plan) -> Vec<String> {
    let inputs = plan.inputs.iter().map(|input| input.name.clone());
    inputs
        .chain(plan.outputs.iter().map(|output| output.name.clone()))
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
    let mut setups: Vec<CoreSetup> = cores
        .iter()
        .enumerate()
        .map(|(row, &cpu)| CoreSetup {
            row,
            cpu,
            producers: plan.outputs.iter().map(|_| None).collect(),
            consumers: plan.outputs.iter().map(|_| Vec::new()).collect(),
        })
        .collect();
    for (index, output) in plan.outputs.iter().enumerate() {
        if matches!(&output.kind, OutputKind::File(file) if !file.per_core) {
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
        let spawned = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("gyges-core{cpu}"))
            .io_memory(plan.global.io_memory_bytes)
            .ring_depth(plan.global.ring_depth)
            .spawn(move || async move { run_core(plan, telemetry, stop, setup, ready).await });
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
    ready: mpsc::Sender<Result<(), RuntimeError>>,
) {
    let (row, cpu) = (setup.row, setup.cpu);
    let stop = LocalStop::new();
    glommio::spawn_local(stop.clone().watch(stop_flag)).detach();
    let core_error = |message: String| RuntimeError::Core { cpu, message };

    let mut sinks = Vec::new();
    let mut matchers = Vec::new();
    let mut drains = Vec::new();
    let mut senders = Vec::new();
    for (index, output) in plan.outputs.iter().enumerate() {
        let plugin = plan.inputs.len() + index;
        let (target, policy) = match &output.kind {
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
                let queue = TcpQueue::new(tcp_plan.buffer_bytes);
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
            OutputKind::Log => (Target::Log, FlushPolicy::PROMPT),
        };
        let batch_bytes = plan.global.batch_bytes;
        let encoder = match build_encoder(&output.encoder, plan.global.max_message_size) {
            Ok(encoder) => encoder,
            Err(error) => {
                let message = format!("output [{}]: {error}", output.name);
                let _ = ready.send(Err(core_error(message)));
                return;
            }
        };
        sinks.push(Sink::new(
            plugin,
            encoder,
            output.use_framing,
            batch_bytes,
            policy,
            target,
        ));
        matchers.push(output.matcher.clone());
    }
    let router = Router::new(MatcherSet::new(matchers), sinks, telemetry.clone(), row);
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
        let context = Rc::new(InputContext {
            plugin: index,
            plan: input_plan.clone(),
            max_message_size: plan.global.max_message_size,
        });
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

    let ticker = glommio::spawn_local(shard.clone().tick());
    shard.stop.wait().await;
    shard.inputs_closed().await;
    ticker.await;
    shard.ship_all().await;
    // Dropping the sinks releases this core's ring producers: owners see it has finished.
    shard.router.borrow_mut().clear();
    for drain in drains {
        drain.await;
    }
    for (queue, sender) in senders {
        queue.close();
        sender.await;
    }
}
