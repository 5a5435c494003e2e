//! `gyges run` and `gyges validate`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::config::plan::{Overrides, Plan, SplitterPlan};
use crate::output::Writers;
use crate::runtime::{self, stop::StopFlag};
use crate::telemetry::endpoint::{self, EndpointState};
use crate::telemetry::exposition::Catalog;
use crate::telemetry::{Metric, Telemetry};

/// Arguments of `gyges run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A TOML config file, or a directory whose *.toml files are merged alphabetically.
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// A tuning profile, overriding `[gyges] tuning`.
    #[arg(long)]
    pub tuning: Option<PathBuf>,
}

/// Arguments of `gyges validate`.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// A TOML config file or directory (default: the embedded default config).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// A tuning profile, overriding `[gyges] tuning`.
    #[arg(long)]
    pub tuning: Option<PathBuf>,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GYGES_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

fn load(
    config: Option<&PathBuf>,
    tuning: Option<&PathBuf>,
    allow_offline_cores: bool,
) -> Result<Plan, ExitCode> {
    let overrides = Overrides {
        tuning: tuning.cloned(),
        allow_offline_cores,
    };
    crate::config::load(config.map(PathBuf::as_path), &overrides).map_err(|error| {
        eprintln!("gyges: {error}");
        ExitCode::from(1)
    })
}

/// `gyges validate`: prints the plan and exits 0, or the error and exits 1.
pub fn validate(args: &ValidateArgs) -> ExitCode {
    match load(args.config.as_ref(), args.tuning.as_ref(), true) {
        Ok(plan) => {
            print!("{}", describe(&plan));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// A readable account of the plan: cores and roles, plugins, compiled matchers, bounds.
pub fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "config: {}", plan.origin);
    if let Some((file, description)) = &plan.global.tuning {
        let _ = writeln!(out, "tuning: {file}: {description}");
    }
    describe_cores(plan, &mut out);
    describe_inputs(plan, &mut out);
    describe_outputs(plan, &mut out);
    describe_filters(plan, &mut out);
    describe_bounds(plan, &mut out);
    describe_differences(plan, &mut out);
    out
}

/// The `differences from Heka:` part of [`describe`]: the Heka keys present that gyges takes
/// differently, one line each, as `run` logs them at startup (`docs/heka-differences.md`).
fn describe_differences(plan: &Plan, out: &mut String) {
    if plan.ignored_options.is_empty() && plan.notices.is_empty() {
        return;
    }
    let _ = writeln!(out, "differences from Heka:");
    if !plan.ignored_options.is_empty() {
        let _ = writeln!(
            out,
            "  accepted and ignored (gyges has no pools or channels): {}",
            plan.ignored_options.join(", ")
        );
    }
    for notice in &plan.notices {
        let _ = writeln!(out, "  {notice}");
    }
}

/// The `cores:` part of [`describe`]: each core and its roles.
fn describe_cores(plan: &Plan, out: &mut String) {
    let global = &plan.global;
    let _ = writeln!(out, "cores:");
    for &cpu in &global.cores {
        let roles = describe_core_roles(plan, cpu);
        let offline = if global.offline_cores.contains(&cpu) {
            " (not online on this machine)"
        } else {
            ""
        };
        let _ = writeln!(out, "  core {cpu}: {}{offline}", roles.join("; "));
    }
}

/// The roles of core `cpu`: ingest, filter host, output owner (naming the outputs it owns).
fn describe_core_roles(plan: &Plan, cpu: usize) -> Vec<String> {
    let global = &plan.global;
    let mut roles = Vec::new();
    if global.ingest_cores.contains(&cpu) {
        roles.push("ingest".to_string());
    }
    if cpu == global.filter_core {
        roles.push("filter host (default)".into());
    } else if global.filter_cores.contains(&cpu) {
        roles.push("filter host".into());
    }
    let owned: Vec<&str> = plan
        .outputs
        .iter()
        .filter(|output| output.kind.writers() == Writers::Owner)
        .filter(|output| output.owner_core == cpu)
        .map(|output| output.name.as_str())
        .collect();
    if !owned.is_empty() {
        roles.push(format!("output owner of {}", owned.join(", ")));
    } else if global.output_cores.contains(&cpu) {
        roles.push("output owner".into());
    }
    roles
}

/// The `inputs:` part of [`describe`]: each input with its splitter and decoder.
fn describe_inputs(plan: &Plan, out: &mut String) {
    let _ = writeln!(out, "inputs:");
    for input in &plan.inputs {
        let (kind, address) = (input.kind.type_name(), input.kind.describe());
        let splitter = match &input.splitter {
            SplitterPlan::Token { delimiter, .. } => {
                format!("TokenSplitter({:?})", *delimiter as char)
            }
            SplitterPlan::HekaFrame { .. } => "HekaFramingSplitter".into(),
            SplitterPlan::Null => "NullSplitter".into(),
            SplitterPlan::Syslog => "SyslogSplitter (RFC 6587)".into(),
        };
        let decoder = input
            .decoder
            .as_ref()
            .map_or("none (record = Payload)", |decoder| decoder.type_name());
        let _ = writeln!(
            out,
            "  [{}] {kind} {address} on cores {:?}; splitter {splitter}; decoder {decoder}",
            input.name, plan.global.ingest_cores
        );
    }
}

/// The `outputs:` part of [`describe`]: each output, its encoder and its compiled matcher.
fn describe_outputs(plan: &Plan, out: &mut String) {
    let _ = writeln!(out, "outputs:");
    for output in &plan.outputs {
        let (kind, placement) = (output.kind.type_name(), output.kind.describe(output));
        let encoder = output.encoder.type_name();
        let framing = if output.use_framing { ", framed" } else { "" };
        let _ = writeln!(
            out,
            "  [{}] {kind} {placement}; encoder {encoder}{framing}",
            output.name
        );
        let _ = writeln!(out, "    message_matcher = {:?}", output.matcher.source());
        if let Some(signer) = &output.message_signer {
            let _ = writeln!(out, "    message_signer = {signer:?} (only what it signed)");
        }
        for line in output.matcher.to_string().lines() {
            let _ = writeln!(out, "      {line}");
        }
    }
}

/// The `filters:` part of [`describe`]: each filter, its host core and its compiled matcher;
/// a SandboxManagerFilter's slots say that they match what is loaded into them.
fn describe_filters(plan: &Plan, out: &mut String) {
    if plan.filters.is_empty() {
        return;
    }
    let _ = writeln!(out, "filters:");
    for filter in &plan.filters {
        let kind = filter.kind.type_name();
        let _ = writeln!(
            out,
            "  [{}] {kind} on core {}",
            filter.name, filter.host_core
        );
        if filter.kind.slot_board().is_some() {
            let _ = writeln!(
                out,
                "    matches what its manager loads into it (none at start)"
            );
            continue;
        }
        let _ = writeln!(out, "    message_matcher = {:?}", filter.matcher.source());
        if let Some(signer) = &filter.message_signer {
            let _ = writeln!(out, "    message_signer = {signer:?} (only what it signed)");
        }
        for line in filter.matcher.to_string().lines() {
            let _ = writeln!(out, "      {line}");
        }
    }
}

/// The `bounds:` part of [`describe`]: the engine's sizes and what happens when each is reached.
fn describe_bounds(plan: &Plan, out: &mut String) {
    let global = &plan.global;
    let _ = writeln!(out, "bounds:");
    let _ = writeln!(
        out,
        "  max_message_size {} bytes (larger records are dropped and counted)",
        global.max_message_size
    );
    let _ = writeln!(
        out,
        "  batch_size {} bytes per output per core",
        global.batch_bytes
    );
    let _ = writeln!(
        out,
        "  ring_slots {} batches per core pair (full: the producer stops reading)",
        global.ring_slots
    );
    let _ = writeln!(
        out,
        "  read buffer {} bytes + one record per connection",
        global.read_buffer_bytes
    );
    let _ = writeln!(
        out,
        "  io_memory {} bytes, ring_depth {} per executor",
        global.io_memory_bytes, global.ring_depth
    );
    if let Some(address) = global.http_address {
        let _ = writeln!(
            out,
            "  http endpoint {address}: /dashboard, /metrics, /health, /report ({} connections at once, {} ms per request)",
            crate::limits::OPS_CONNECTIONS_MAX,
            crate::limits::OPS_REQUEST_TIMEOUT.as_millis()
        );
    }
    match global.socket_receive_buffer_bytes {
        Some(bytes) => {
            let _ = writeln!(out, "  SO_RCVBUF {bytes} bytes on listening sockets");
        }
        None => {
            let _ = writeln!(out, "  SO_RCVBUF: the kernel's default");
        }
    }
}

/// Fixes malloc's thresholds so that batch-sized buffers freed on a core are reused without
/// page faults (`MALLOC_MMAP_THRESHOLD_BYTES`, `MALLOC_TRIM_THRESHOLD_BYTES`).
fn keep_freed_buffers() {
    let (mmap, trim) = (
        crate::limits::MALLOC_MMAP_THRESHOLD_BYTES,
        crate::limits::MALLOC_TRIM_THRESHOLD_BYTES,
    );
    if !gyges_sys::alloc::keep_freed_buffers(mmap, trim) {
        tracing::debug!("malloc thresholds not set: not glibc's malloc");
    }
}

/// `gyges run`: runs until SIGINT or SIGTERM, then stops gracefully; a second signal forces
/// an exit. A core can also stop it (a durable queue full with `full_action = "shutdown"`, a
/// panic on any core): the same graceful stop, then exit status 1.
pub fn run(args: &RunArgs) -> ExitCode {
    init_logging();
    let plan = match load(args.config.as_ref(), args.tuning.as_ref(), false) {
        Ok(plan) => Arc::new(plan),
        Err(code) => return code,
    };
    if !plan.ignored_options.is_empty() {
        tracing::info!(options = ?plan.ignored_options, "Heka options accepted and ignored (gyges has no pools or channels)");
    }
    for notice in &plan.notices {
        tracing::info!("{notice}");
    }
    check_memlock(&plan);
    keep_freed_buffers();
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("gyges: cannot install signal handlers: {error}");
            return ExitCode::from(1);
        }
    };
    if let Some(pid_file) = &plan.global.pid_file {
        if let Err(error) = std::fs::write(pid_file, format!("{}\n", std::process::id())) {
            eprintln!(
                "gyges: cannot write pid_file {}: {error}",
                pid_file.display()
            );
            return ExitCode::from(1);
        }
    }
    let telemetry = Telemetry::new(plan.global.cores.len(), runtime::plugin_names(&plan));
    let endpoint = match start_endpoint(&plan, &telemetry) {
        Ok(endpoint) => endpoint,
        Err(code) => return code,
    };
    let stop = StopFlag::new();
    // A panic on any core stops every core and makes the exit status 1 (runtime/failure.rs).
    runtime::failure::install(stop.clone());
    let running = match runtime::start(plan.clone(), telemetry.clone(), stop.clone()) {
        Ok(running) => running,
        Err(error) => {
            eprintln!("gyges: {error}");
            return ExitCode::from(1);
        }
    };
    if let Some(endpoint) = &endpoint {
        endpoint.set_queues(running.queue_boards());
        endpoint.set_ready(true);
    }
    tracing::info!(config = %plan.origin, cores = ?plan.global.cores, "gyges running");
    let mut summary = Summary::new(&telemetry);
    let mut next_summary = plan
        .global
        .stats_interval
        .map(|interval| Instant::now() + interval);
    'wait: loop {
        if let Some(signal) = signals.pending().next() {
            tracing::info!(
                signal,
                "stopping: finishing what was read (a second signal forces exit)"
            );
            break 'wait;
        }
        if stop.is_raised() {
            // A core stopped the daemon (see below for the exit status).
            break 'wait;
        }
        std::thread::sleep(Duration::from_millis(50));
        if let (Some(due), Some(interval)) = (next_summary, plan.global.stats_interval) {
            if Instant::now() >= due {
                tracing::info!("{}", summary.line(&telemetry));
                next_summary = Some(due + interval);
            }
        }
    }
    stop.raise();
    if let Some(endpoint) = &endpoint {
        endpoint.set_ready(false);
    }
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            eprintln!("gyges: second signal, exiting now");
            std::process::exit(1);
        }
    });
    running.join();
    tracing::info!("stopped; {}", summary.line(&telemetry));
    for line in telemetry.report().lines() {
        tracing::info!("{line}");
    }
    if let Some(pid_file) = &plan.global.pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    match stop.failure() {
        // Logged as an error where it happened; said again as the reason for the status.
        Some(reason) => {
            tracing::warn!(%reason, "stopped because of an error: exit status 1");
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
}

/// Starts the operator endpoint if `http_address` is set, on the cores without the ingest
/// role if the plan has any. It answers `/health` 503 until the cores are serving.
fn start_endpoint(
    plan: &Plan,
    telemetry: &Arc<Telemetry>,
) -> Result<Option<Arc<EndpointState>>, ExitCode> {
    let Some(address) = plan.global.http_address else {
        return Ok(None);
    };
    // DashboardOutput's board, if the plan has one (the first: two would show the same).
    let board = plan.outputs.iter().find_map(|output| {
        let kind = (*output.kind).as_any();
        let dashboard = kind.downcast_ref::<crate::output::dashboard::DashboardOutputKind>();
        dashboard.map(|dashboard| dashboard.board.clone())
    });
    let state = EndpointState::new(telemetry.clone(), Catalog::of(plan), board);
    let global = &plan.global;
    let cores = global.cores.iter().copied();
    let cpus: Vec<usize> = cores
        .filter(|cpu| !global.ingest_cores.contains(cpu))
        .collect();
    match endpoint::start(address, state.clone(), cpus) {
        Ok(bound) => {
            tracing::info!(address = %bound, "http endpoint: /dashboard, /metrics, /health, /report");
            Ok(Some(state))
        }
        Err(error) => {
            eprintln!("gyges: http_address {address}: cannot listen: {error}");
            Err(ExitCode::from(1))
        }
    }
}

fn check_memlock(plan: &Plan) {
    let Ok(probe) = gyges_sys::probe::probe() else {
        return;
    };
    let wanted = plan.global.io_memory_bytes as u64 * plan.global.cores.len() as u64;
    if let Some(limit) = probe.memlock_bytes {
        if wanted > limit {
            tracing::warn!(
                wanted, limit,
                "io_memory for all cores exceeds RLIMIT_MEMLOCK; buffer registration may fail (harmless, slower)"
            );
        }
    }
}

/// Rates since the last summary line.
struct Summary {
    at: Instant,
    records: u64,
    bytes: u64,
    sent: u64,
}

impl Summary {
    fn new(telemetry: &Telemetry) -> Summary {
        Summary {
            at: Instant::now(),
            records: telemetry.total(Metric::Records),
            bytes: telemetry.total(Metric::BytesRead),
            sent: telemetry.total(Metric::Sent),
        }
    }

    fn line(&mut self, telemetry: &Telemetry) -> String {
        let now = Summary::new(telemetry);
        let seconds = now.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let line = format!(
            "in {:.0} msg/s ({:.1} MB/s), out {:.0} msg/s; totals: in {}, out {}, dropped {}, decode failures {}, discarded bytes {}, oversize {}",
            (now.records - self.records) as f64 / seconds,
            (now.bytes - self.bytes) as f64 / seconds / 1e6,
            (now.sent - self.sent) as f64 / seconds,
            now.records,
            now.sent,
            telemetry.total(Metric::Dropped),
            telemetry.total(Metric::DecodeFailures),
            telemetry.total(Metric::DiscardedBytes),
            telemetry.total(Metric::OversizeRecords),
        );
        *self = now;
        line
    }
}
