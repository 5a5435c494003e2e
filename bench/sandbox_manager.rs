//! SandboxManagerFilter under load: how long a load and an unload take, how long they stall
//! the ingest cores, and that the pipeline loses nothing while filters come and go.
//!
//! The release `gyges run` takes a steady `gyges flood` (framed ~300 B messages, `RATE`
//! messages/s over two connections) into a FileOutput; a SandboxManagerFilter (`max_filters
//! = 1`) gets signed control messages over one kept-open connection: `ROUNDS` rounds of a
//! load of a small counting filter matching every flood message, `PAUSE`, its unload,
//! `PAUSE`. Measured:
//!
//! - **load / unload**: the time the manager's core spent in the command (`micros` of the
//!   daemon's `filter loaded` / `filter unloaded` log lines);
//! - **ingest stall**: each core publishes a histogram of how late its 1 ms ticker ran
//!   (`gyges_core_stall_seconds` in `/metrics`: the time the core could not run its tasks).
//!   `/metrics` is read just before a command is sent and `SETTLE` after its log line; the
//!   largest bucket that grew on any ingest core bounds the worst stall of that window (to
//!   within a bucket, so stalls read "≤ bound"). **Idle windows** (the same reads around no
//!   command, one per round) show what the machine stalls by itself;
//! - **lost**: flood's sequence numbers missing from the output file at the end (and
//!   duplicates).
//!
//! Two placements: `shared` (`tuning/dev-2core.toml`: core 1 ingests and hosts the manager,
//! so its inputs wait while it compiles) and `apart` (the same with core 1's `ingest` role
//! taken away: core 0 ingests alone and never runs the manager). `RUNS` runs each, median and
//! spread (max − min) over the runs of each run's p99.

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Mode, Section, Table};
use gyges::message::framing::{parse_header, write_frame, HashFunction, Signer};
use gyges::message::{ProtoView, StrHeader};
use gyges::telemetry::STALL_BOUNDS_NS;
use gyges::tools::flood::parse_seq;

const GYGES: &str = env!("CARGO_BIN_EXE_gyges");
/// The key the control input verifies and the bench signs with.
const KEY: &str = "bench key";
/// The target: no ingest core stalled over 1 ms by a load or unload, at p99.
const STALL_TARGET_NS: u64 = 1_000_000;
/// Between a command's log line and the second read of `/metrics`: a few ticks, so that
/// the tick a command delayed has run and been counted.
const SETTLE: Duration = Duration::from_millis(3);
/// Between commands.
const PAUSE: Duration = Duration::from_millis(20);
/// How long a command may take to show in the log before the run fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the output may take to show every message after flood ends.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The filter loaded and unloaded: counts every flood message.
const FILTER_CONFIG: &str = "[counter]\ntype = \"SandboxFilter\"\n\
     message_matcher = \"Type == 'flood'\"\nfilename = \"ignored.lua\"\n";
const FILTER_SCRIPT: &str = "local count = 0\n\
     function process_message()\n    count = count + 1\n    return 0\nend\n\
     function timer_event()\nend\n";

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("an ephemeral loopback port")
}

/// Where the manager runs relative to the ingest cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    /// dev-2core: both cores ingest; core 1 also hosts the manager.
    Shared,
    /// core 0 ingests; core 1 hosts the manager and the output, and does not ingest.
    Apart,
}

impl Placement {
    fn name(self) -> &'static str {
        match self {
            Placement::Shared => "shared",
            Placement::Apart => "apart",
        }
    }

    /// The tuning profile, from `tuning/dev-2core.toml`.
    fn profile(self) -> String {
        let path = common::repo_root().join("tuning/dev-2core.toml");
        let text = std::fs::read_to_string(path).expect("tuning/dev-2core.toml");
        match self {
            Placement::Shared => text,
            Placement::Apart => {
                let shared = "roles = [\"ingest\", \"filter\", \"output\"]";
                assert!(text.contains(shared), "dev-2core gives core 1 every role");
                text.replace(shared, "roles = [\"filter\", \"output\"]")
            }
        }
    }

    fn ingest_cpus(self) -> &'static [usize] {
        match self {
            Placement::Shared => &[0, 1],
            Placement::Apart => &[0],
        }
    }
}

/// The work of one run.
#[derive(Clone, Copy, Debug)]
struct Plan {
    rate: u64,
    rounds: usize,
    runs: usize,
}

/// What one run measured.
#[derive(Debug, Default)]
struct Outcome {
    count: u64,
    lost: u64,
    duplicates: u64,
    /// Records the slot's host dropped: matched by a core just before it saw an unload.
    slot_dropped: u64,
    /// Rounds that ran while flood was still sending.
    rounds_under_load: usize,
    load_ns: Vec<u64>,
    unload_ns: Vec<u64>,
    /// Per window, the upper bound of the worst ingest-core stall in it.
    load_stall_ns: Vec<u64>,
    unload_stall_ns: Vec<u64>,
    idle_stall_ns: Vec<u64>,
    /// The largest stall of any ingest core over the whole run, exactly.
    stall_max_ns: u64,
}

/// A daemon this bench started; killed if still running when dropped.
struct Daemon {
    child: Option<Child>,
    stderr: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, config: &Path, profile: &Path, ports: &[u16]) -> Daemon {
        let stderr = dir.join("gyges.stderr");
        let file = File::create(&stderr).expect("a stderr file");
        let child = Command::new(GYGES)
            .arg("run")
            .arg("-c")
            .arg(config)
            .arg("--tuning")
            .arg(profile)
            .env("GYGES_LOG", "info")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start gyges");
        let mut daemon = Daemon {
            child: Some(child),
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        for &port in ports {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                let exited = daemon
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                assert!(exited.is_none(), "gyges exited:\n{}", daemon.log());
                assert!(Instant::now() < deadline, "gyges never listened on {port}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        daemon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, then waits; whether it exited cleanly.
    fn stop(&mut self) -> bool {
        self.child
            .take()
            .is_none_or(|child| common::stop_gracefully(child, Duration::from_secs(30)))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn config(dir: &Path, data: u16, control: u16, http: u16) -> String {
    format!(
        "[hekad]\nstats_interval = 0\nbase_dir = \"{base}\"\nhttp_address = \"127.0.0.1:{http}\"\n\
         [data]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{data}\"\n\
         [control]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{control}\"\n\
         [control.signer.bench_0]\nhmac_key = \"{KEY}\"\n\
         [Mgr]\ntype = \"SandboxManagerFilter\"\nmessage_signer = \"bench\"\nmax_filters = 1\n\
         [all]\ntype = \"FileOutput\"\nmessage_matcher = \"Type == 'flood'\"\n\
         path = \"{output}\"\nuse_framing = true\nflush_interval = 1\n",
        base = dir.join("state").display(),
        output = dir.join("all.log").display(),
    )
}

/// `GET /metrics`, whole.
fn scrape(http: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", http)).expect("connect to /metrics");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        .expect("send the request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read /metrics");
    answer
}

/// Each core's cumulative stall buckets (in the order of `STALL_BOUNDS_NS`, then +Inf).
fn stall_buckets(metrics: &str) -> HashMap<usize, Vec<u64>> {
    let mut cores: HashMap<usize, Vec<u64>> = HashMap::new();
    let prefix = "gyges_core_stall_seconds_bucket{core=\"";
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix(prefix) else {
            continue;
        };
        let cpu = rest.split('"').next().and_then(|cpu| cpu.parse().ok());
        let value = line.rsplit(' ').next().and_then(|value| value.parse().ok());
        if let (Some(cpu), Some(value)) = (cpu, value) {
            cores.entry(cpu).or_default().push(value);
        }
    }
    cores
}

/// The value of a plugin's metric, summed over cores.
fn plugin_metric(metrics: &str, metric: &str, plugin: &str) -> u64 {
    let prefix = format!("gyges_{metric}{{plugin=\"{plugin}\"");
    metrics
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The worst stall of any of `cpus` between two reads: the bound of the highest bucket that
/// grew (`u64::MAX` for the bucket above every bound), 0 if none grew.
fn worst_stall(
    before: &HashMap<usize, Vec<u64>>,
    after: &HashMap<usize, Vec<u64>>,
    cpus: &[usize],
) -> u64 {
    let mut worst = 0;
    for cpu in cpus {
        let (Some(before), Some(after)) = (before.get(cpu), after.get(cpu)) else {
            panic!("no stall histogram for core {cpu}");
        };
        let total = after.last().copied().unwrap_or(0) - before.last().copied().unwrap_or(0);
        if total == 0 {
            continue;
        }
        // The first cumulative bucket that holds every new stall is the largest one's.
        let grown = (0..after.len()).find(|&bucket| after[bucket] - before[bucket] == total);
        let bound = grown
            .and_then(|bucket| STALL_BOUNDS_NS.get(bucket).copied())
            .unwrap_or(u64::MAX);
        worst = worst.max(bound);
    }
    worst
}

/// How many log lines contain `needle`.
fn log_count(daemon: &Daemon, needle: &str) -> usize {
    daemon.log().matches(needle).count()
}

/// The `micros` of every log line containing `needle`, as nanoseconds.
fn logged_nanos(log: &str, needle: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| line.contains(needle))
        .filter_map(|line| {
            let value = line.split("micros=").nth(1)?;
            let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
            Some(digits.parse::<u64>().ok()? * 1000)
        })
        .collect()
}

/// The control connection: signed frames, in order, over one connection.
struct Control {
    stream: TcpStream,
    signer: Signer,
    load: (PathBuf, PathBuf),
}

impl Control {
    fn connect(port: u16, dir: &Path) -> Control {
        let config = dir.join("counter.toml");
        let script = dir.join("counter.lua");
        std::fs::write(&config, FILTER_CONFIG).expect("write the filter's config");
        std::fs::write(&script, FILTER_SCRIPT).expect("write the filter's script");
        Control {
            stream: TcpStream::connect(("127.0.0.1", port)).expect("the control input"),
            signer: Signer::new("bench", 0, HashFunction::Md5, KEY.as_bytes()).expect("a signer"),
            load: (config, script),
        }
    }

    fn send(&mut self, load: bool) {
        let message = if load {
            gyges::tools::sandbox::load_message(&self.load.0, &self.load.1).expect("the files")
        } else {
            gyges::tools::sandbox::unload_message("counter")
        };
        let mut frame = Vec::new();
        write_frame(&mut frame, &message, Some(&self.signer)).expect("a frame");
        self.stream.write_all(&frame).expect("send a command");
    }
}

/// One command (or none, for an idle window) between two reads of the stall histograms:
/// the worst ingest core's stall bound in the window, and the command's time on the
/// manager's core (its log line's `micros`; 0 for an idle window).
fn window(
    daemon: &Daemon,
    http: u16,
    cpus: &[usize],
    command: Option<(&mut Control, bool)>,
) -> (u64, u64) {
    let before = stall_buckets(&scrape(http));
    let mut pause_ns = 0;
    match command {
        Some((control, load)) => {
            let needle = if load {
                "filter loaded"
            } else {
                "filter unloaded"
            };
            let seen = log_count(daemon, needle);
            control.send(load);
            let deadline = Instant::now() + COMMAND_TIMEOUT;
            while log_count(daemon, needle) == seen {
                let log = daemon.log();
                assert!(!log.contains("control message refused"), "refused:\n{log}");
                assert!(Instant::now() < deadline, "no `{needle}`:\n{log}");
                std::thread::sleep(Duration::from_micros(500));
            }
            let pauses = logged_nanos(&daemon.log(), needle);
            pause_ns = pauses.last().copied().unwrap_or(0);
        }
        // About as long as a command's window.
        None => std::thread::sleep(Duration::from_millis(2)),
    }
    std::thread::sleep(SETTLE);
    let stall = worst_stall(&before, &stall_buckets(&scrape(http)), cpus);
    (stall, pause_ns)
}

/// The bound of the histogram bucket `nanos` falls in (`u64::MAX` above every bound).
fn bucket_bound(nanos: u64) -> u64 {
    let bound = STALL_BOUNDS_NS.iter().find(|&&bound| nanos <= bound);
    bound.copied().unwrap_or(u64::MAX)
}

/// Distinct flood sequence numbers in the framed output file, and the records read.
fn count_output(path: &Path, count: u64) -> (u64, u64) {
    let bytes = std::fs::read(path).unwrap_or_default();
    let mut seen = vec![false; count as usize];
    let (mut records, mut distinct, mut at) = (0u64, 0u64, 0usize);
    while let Ok(Some(header)) = parse_header(&bytes[at..]) {
        let Some(message) = bytes.get(at + header.message_start()..at + header.frame_bytes())
        else {
            break;
        };
        at += header.frame_bytes();
        records += 1;
        let view = ProtoView::new(message);
        let seq = view
            .validate()
            .ok()
            .and_then(|()| parse_seq(view.str_header(StrHeader::Payload)?));
        if let Some(slot) = seq.and_then(|seq| seen.get_mut(seq as usize)) {
            distinct += u64::from(!*slot);
            *slot = true;
        }
    }
    (distinct, records)
}

fn run(placement: Placement, plan: Plan) -> Outcome {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (data, control_port, http) = (free_port(), free_port(), free_port());
    let config_path = dir.path().join("gyges.toml");
    std::fs::write(&config_path, config(dir.path(), data, control_port, http)).expect("config");
    let profile = dir.path().join("profile.toml");
    std::fs::write(&profile, placement.profile()).expect("profile");
    let mut daemon = Daemon::start(
        dir.path(),
        &config_path,
        &profile,
        &[data, control_port, http],
    );
    let mut control = Control::connect(control_port, dir.path());
    // Enough messages for the rounds at about 100 ms each, with the 0.5 s warm-up.
    let seconds = 2 + plan.rounds as u64 / 10;
    let count = plan.rate * seconds;
    let mut flood = Command::new(GYGES)
        .args([
            "flood",
            "--addr",
            &format!("127.0.0.1:{data}"),
            "--format",
            "heka",
        ])
        .args(["--count", &count.to_string(), "--connections", "2"])
        .args(["--rate", &plan.rate.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gyges flood");
    std::thread::sleep(Duration::from_millis(500));
    let cpus = placement.ingest_cpus();
    let mut outcome = Outcome {
        count,
        ..Outcome::default()
    };
    for _ in 0..plan.rounds {
        let sending = matches!(flood.try_wait(), Ok(None));
        outcome.rounds_under_load += usize::from(sending);
        outcome
            .idle_stall_ns
            .push(window(&daemon, http, cpus, None).0);
        // Where the manager's core ingests, the command holds an ingest core for its whole
        // time: the ticker sees only the part of a pause past its next due time.
        let ingest_pause = |pause: u64| match placement {
            Placement::Shared => bucket_bound(pause),
            Placement::Apart => 0,
        };
        let (stall, pause) = window(&daemon, http, cpus, Some((&mut control, true)));
        outcome.load_stall_ns.push(stall.max(ingest_pause(pause)));
        std::thread::sleep(PAUSE);
        let (stall, pause) = window(&daemon, http, cpus, Some((&mut control, false)));
        outcome.unload_stall_ns.push(stall.max(ingest_pause(pause)));
        std::thread::sleep(PAUSE);
    }
    let flooded = flood.wait().expect("flood ends");
    assert!(flooded.success(), "gyges flood failed");
    let output = dir.path().join("all.log");
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    while plugin_metric(&scrape(http), "sent_total", "all") < count && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let metrics = scrape(http);
    outcome.slot_dropped = plugin_metric(&metrics, "dropped_total", "Mgr#0");
    let stall_max = |cpu: &usize| {
        let prefix = format!("gyges_core_stall_seconds_max{{core=\"{cpu}\"}} ");
        let line = metrics.lines().find(|line| line.starts_with(&prefix));
        let seconds: f64 = line
            .and_then(|line| line[prefix.len()..].parse().ok())
            .unwrap_or(0.0);
        (seconds * 1e9) as u64
    };
    outcome.stall_max_ns = cpus.iter().map(stall_max).max().unwrap_or(0);
    let log = daemon.log();
    assert!(daemon.stop(), "gyges did not stop cleanly:\n{log}");
    outcome.load_ns = logged_nanos(&log, "filter loaded");
    outcome.unload_ns = logged_nanos(&log, "filter unloaded");
    let (distinct, records) = count_output(&output, count);
    outcome.lost = count - distinct;
    outcome.duplicates = records - distinct;
    outcome
}

/// The value at quantile `q` (nearest rank) of `values`.
fn quantile(values: &[u64], q: f64) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(nanos: u64) -> String {
    format!("{:.2}", nanos as f64 / 1e6)
}

/// A stall bound as read from the histogram.
fn bound(nanos: u64) -> String {
    match nanos {
        0 => "0".into(),
        u64::MAX => format!("> {}", ms(STALL_BOUNDS_NS[STALL_BOUNDS_NS.len() - 1])),
        nanos => format!("≤ {}", ms(nanos)),
    }
}

fn three(values: &[u64], show: fn(u64) -> String) -> String {
    let [p50, p99] = [0.5, 0.99].map(|q| show(quantile(values, q)));
    format!(
        "{p50} / {p99} / {}",
        show(values.iter().copied().max().unwrap_or(0))
    )
}

/// The median and spread (max − min) of one figure over the runs.
fn median_spread(values: &[u64], show: fn(u64) -> String) -> String {
    let spread = values.iter().max().unwrap_or(&0) - values.iter().min().unwrap_or(&0);
    let spread = match values.iter().max() {
        Some(&u64::MAX) => "-".into(),
        _ => ms(spread),
    };
    format!("{} ({spread})", show(quantile(values, 0.5)))
}

fn main() {
    let mode = Mode::detect();
    let plan = Plan {
        rate: mode.pick(100_000, 100_000, 20_000),
        rounds: mode.pick(100, 20, 3),
        runs: mode.pick(3, 1, 1),
    };
    let mut section = Section::new(
        "sandbox_manager",
        "SandboxManagerFilter: loads and unloads under load",
        mode,
    );
    section.line(format!(
        "The release `gyges run` under `gyges flood --format heka --rate {} --connections 2` \
         into a framed FileOutput; a SandboxManagerFilter (`max_filters = 1`) gets, over one \
         signed connection, {} rounds of: an idle window, a load of a Lua filter counting every \
         flood message, {} ms, its unload, {} ms. **load / unload**: the manager core's time in \
         the command (the `micros` of its log line). **Stall**: the worst ingest core's \
         `gyges_core_stall_seconds` (how late its 1 ms ticker ran) between a read of `/metrics` \
         before the command and one {} ms after its log line, to within the histogram's bucket \
         (≤ bound); where the manager's core also ingests (`shared`), at least the command's \
         own time, which holds that core whole (a ticker sees only the part of a pause past its \
         next due time, so it under-reads pauses shorter than its 1 ms period); **idle**: the \
         same windows around no command. **Lost**: flood numbers missing from the output. \
         Times in ms, p50 / p99 / max over the run's commands.",
        plan.rate,
        plan.rounds,
        PAUSE.as_millis(),
        PAUSE.as_millis(),
        SETTLE.as_millis()
    ));
    section.line("");
    if std::thread::available_parallelism().map_or(0, usize::from) < 2 {
        section.line("Not run: it needs 2 cores (its placements pin cores 0 and 1).");
        section.publish();
        return;
    }
    let placements = [Placement::Shared, Placement::Apart];
    let mut table = Table::new(&[
        "placement",
        "run",
        "rounds (under load)",
        "load ms",
        "unload ms",
        "stall in load windows",
        "stall in unload windows",
        "stall in idle windows",
        "ingest stall max ms",
        "lost / dup of messages",
        "slot drops",
    ]);
    let mut summary = Table::new(&[
        "placement",
        "load p99",
        "unload p99",
        "ingest stall p99, command windows",
        "ingest stall p99, idle windows",
        "windows over 1 ms (commands / idle)",
        "lost",
        "target: no ingest stall over 1 ms at p99 from a load or unload",
    ]);
    for placement in placements {
        let outcomes: Vec<Outcome> = (0..plan.runs).map(|_| run(placement, plan)).collect();
        for (index, outcome) in outcomes.iter().enumerate() {
            table.row(vec![
                placement.name().into(),
                (index + 1).to_string(),
                format!("{} ({})", plan.rounds, outcome.rounds_under_load),
                three(&outcome.load_ns, ms),
                three(&outcome.unload_ns, ms),
                three(&outcome.load_stall_ns, bound),
                three(&outcome.unload_stall_ns, bound),
                three(&outcome.idle_stall_ns, bound),
                ms(outcome.stall_max_ns),
                format!(
                    "{} / {} of {}",
                    outcome.lost, outcome.duplicates, outcome.count
                ),
                outcome.slot_dropped.to_string(),
            ]);
        }
        summary.row(summarise(placement, &outcomes));
    }
    section.table(&table);
    section.line("Median (spread) over the runs of each run's p99:");
    section.line("");
    section.table(&summary);
    section.line(
        "`shared`: `tuning/dev-2core.toml` (core 1 ingests and hosts the manager); `apart`: \
         the same with core 1's roles `[\"filter\", \"output\"]` (core 0 ingests alone). A stall \
         in an idle window is the machine's (other processes, the hypervisor), not a command's: \
         where command windows and idle ones stall alike, the commands add nothing measurable \
         but their own pause on the manager's core. **Slot drops**: records a core matched for \
         the loaded filter just before it saw the unload, dropped by the manager's core and \
         counted (`docs/sandbox_manager.md`); the output still has every message.",
    );
    section.publish();
}

/// One placement's summary row.
fn summarise(placement: Placement, outcomes: &[Outcome]) -> Vec<String> {
    let p99 = |pick: fn(&Outcome) -> Vec<u64>| -> Vec<u64> {
        outcomes
            .iter()
            .map(|outcome| quantile(&pick(outcome), 0.99))
            .collect()
    };
    let commands = |outcome: &Outcome| {
        let mut all = outcome.load_stall_ns.clone();
        all.extend(&outcome.unload_stall_ns);
        all
    };
    let stall_p99 = p99(commands);
    let over = |values: Vec<u64>| {
        values
            .iter()
            .filter(|&&stall| stall > STALL_TARGET_NS)
            .count()
    };
    let commands_over: usize = outcomes.iter().map(|outcome| over(commands(outcome))).sum();
    let idle_over: usize = outcomes
        .iter()
        .map(|outcome| over(outcome.idle_stall_ns.clone()))
        .sum();
    let windows: usize = outcomes.iter().map(|outcome| commands(outcome).len()).sum();
    let idle: usize = outcomes
        .iter()
        .map(|outcome| outcome.idle_stall_ns.len())
        .sum();
    let lost: u64 = outcomes.iter().map(|outcome| outcome.lost).sum();
    // What the command itself holds an ingest core for: its whole time where the manager's
    // core ingests, nothing where it does not.
    let pauses = p99(|outcome| {
        let mut all = outcome.load_ns.clone();
        all.extend(&outcome.unload_ns);
        all
    });
    let own = match placement {
        Placement::Shared => quantile(&pauses, 0.5),
        Placement::Apart => 0,
    };
    let own_text = match placement {
        Placement::Shared => format!("{} ms at p99 on ingest core 1", ms(own)),
        Placement::Apart => "none: no ingest core runs it".into(),
    };
    let verdict = if own <= STALL_TARGET_NS {
        format!("the command's own pause: met, {own_text}")
    } else {
        format!("the command's own pause: missed, {own_text}")
    };
    let idle_p99 = quantile(&p99(|outcome| outcome.idle_stall_ns.clone()), 0.5);
    let noise = format!(
        "; every stall: {} at p99 in command windows and {} in idle ones, over 1 ms in {:.0} % \
         and {:.0} % of them",
        bound(quantile(&stall_p99, 0.5)),
        bound(idle_p99),
        100.0 * commands_over as f64 / windows.max(1) as f64,
        100.0 * idle_over as f64 / idle.max(1) as f64
    );
    vec![
        placement.name().into(),
        median_spread(&p99(|outcome| outcome.load_ns.clone()), ms),
        median_spread(&p99(|outcome| outcome.unload_ns.clone()), ms),
        median_spread(&stall_p99, bound),
        median_spread(&p99(|outcome| outcome.idle_stall_ns.clone()), bound),
        format!("{commands_over} of {windows} / {idle_over} of {idle}"),
        lost.to_string(),
        verdict + &noise,
    ]
}
