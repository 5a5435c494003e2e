//! Correctness gaps closed after review, through the daemon: a panic on one core stops them
//! all with a non-zero status (the failure policy, `src/runtime/failure.rs`); Lua decoders keep
//! their preserved state per core across a clean restart; acknowledgement marks count only
//! after a hello, and a flood of them is paced.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gyges::message::ack::{self, Control, Parsed};
use gyges::runtime::failure::FAULT_VARIABLE;

use crate::util::*;

/// Starts `gyges run` on `config` in `dir` with the test-only fault hook armed for `plugin`;
/// returns the child and the path of its stderr.
fn start_with_fault(dir: &Path, config: &str, plugin: &str) -> (std::process::Child, String) {
    let config_path = dir.join("gyges.toml");
    std::fs::write(&config_path, config).unwrap();
    let stderr_path = dir.join("stderr.log");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let child = Command::new(gyges_binary())
        .args(["run", "-c"])
        .arg(&config_path)
        .current_dir(dir)
        .env("GYGES_LOG", "info")
        .env(FAULT_VARIABLE, format!("panic:{plugin}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    (child, stderr_path.to_string_lossy().into_owned())
}

/// Waits at most `timeout` for `child` to exit; kills it and fails the test otherwise.
fn exit_within(
    child: &mut std::process::Child,
    timeout: Duration,
    log: &str,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("gyges did not exit within {timeout:?} after the panic:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The error lines the panic hook logged for `plugin`.
fn panic_lines(log: &str, plugin: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("ERROR") && line.contains("a core panicked"))
        .filter(|line| line.contains(&format!("plugin={plugin}")))
        .map(str::to_string)
        .collect()
}

fn assert_one_panic_line(log: &str, plugin: &str) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines = panic_lines(log, plugin);
    assert_eq!(lines.len(), 1, "one error line for the panic:\n{text}");
    let line = &lines[0];
    assert!(line.contains("cpu="), "names the core: {line}");
    assert!(
        line.contains(&format!("injected panic in plugin [{plugin}]")),
        "carries the panic message: {line}"
    );
    // The other cores stopped as on SIGTERM: every executor returned, then the summary.
    assert!(text.contains("stopped;"), "a graceful stop:\n{text}");
    assert!(
        text.contains("exit status 1"),
        "the reason for the status:\n{text}"
    );
}

#[test]
fn a_panic_in_an_input_on_one_core_stops_every_core_with_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [Faulty]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\nsplitter = \"TokenSplitter\"\n\
         [Out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"out.%{{core}}.log\"\n"
    );
    let (mut child, log) = start_with_fault(dir.path(), &config, "Faulty");
    wait_for(Duration::from_secs(10), "the input's port", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // Before any message, the daemon serves: the fault fires on a connection's first read.
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none(), "still running");
    let sent = Instant::now();
    send_tcp(port, b"the first message\n");
    let status = exit_within(&mut child, Duration::from_secs(10), &log);
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "exited in {:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(1), "{status}");
    assert_one_panic_line(&log, "Faulty");
}

#[test]
fn a_panic_in_an_output_task_at_start_stops_the_daemon_with_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let (port, unreachable) = (free_port(), free_port());
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [In]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n\
         [Forward]\ntype = \"TcpOutput\"\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:{unreachable}\"\n"
    );
    let started = Instant::now();
    let (mut child, log) = start_with_fault(dir.path(), &config, "Forward");
    let status = exit_within(&mut child, Duration::from_secs(10), &log);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(1), "{status}");
    assert_one_panic_line(&log, "Forward");
}

/// A decoder that counts every record in a global kept with `preserve_data`.
#[cfg(feature = "lua")]
const COUNTING_DECODER: &str = "count = 0\n\
    function process_message()\n    count = count + 1\n    return 0\nend\n";

/// The `count` each core's preserved file holds, by file name.
#[cfg(feature = "lua")]
fn preserved_counts(dir: &Path) -> std::collections::BTreeMap<String, i64> {
    let data = dir.join("gyges-data").join("sandbox_preservation");
    let mut counts = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&data).expect("the preservation directory") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".data") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let count = text
            .lines()
            .find_map(|line| line.strip_prefix("_G[\"count\"] = "))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no count in {name}:\n{text}"));
        counts.insert(name, count);
    }
    counts
}

#[cfg(feature = "lua")]
fn frames_in_outputs(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.to_string_lossy().ends_with(".out"))
        .map(|path| read_frames(&std::fs::read(path).unwrap_or_default()).len())
        .sum()
}

/// Sends `lines` numbered lines over `connections` connections (the kernel spreads them over
/// the cores), and waits until the outputs hold `total` messages.
#[cfg(feature = "lua")]
fn send_lines_and_wait(daemon: &Daemon, port: u16, connections: usize, total: usize) {
    for connection in 0..connections {
        let text: String = (0..10)
            .map(|line| format!("c{connection}-{line}\n"))
            .collect();
        send_tcp(port, text.as_bytes());
    }
    wait_for_or_explain(
        Duration::from_secs(20),
        &format!("{total} messages in the outputs"),
        || frames_in_outputs(&daemon.dir) >= total,
        || daemon.stderr(),
    );
}

#[cfg(feature = "lua")]
#[test]
fn a_lua_decoder_keeps_counting_per_core_across_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("counting_decoder.lua");
    std::fs::write(&script, COUNTING_DECODER).unwrap();
    let port = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [Lines]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\nsplitter = \"TokenSplitter\"\ndecoder = \"Counter\"\n\
         [Counter]\ntype = \"SandboxDecoder\"\nfilename = \"{script}\"\npreserve_data = true\n\
         [Out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"%{{core}}.out\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 10\n",
        script = script.display()
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    send_lines_and_wait(&daemon, port, 20, 200);
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let first = preserved_counts(dir.path());
    assert!(
        !first.contains_key("Counter.data"),
        "no file shared by the cores: {first:?}"
    );
    assert!(
        !first.is_empty() && first.keys().all(|name| name.starts_with("Counter.")),
        "{first:?}"
    );
    assert_eq!(first.values().sum::<i64>(), 200, "{first:?}");

    daemon.restart(&[port]);
    send_lines_and_wait(&daemon, port, 10, 300);
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let second = preserved_counts(dir.path());
    assert_eq!(
        second.values().sum::<i64>(),
        300,
        "each core went on from its own count: {first:?} then {second:?}"
    );
    for (name, count) in &first {
        let now = second.get(name).copied().unwrap_or(0);
        assert!(
            now >= *count,
            "{name} restarted from {count}, not from 0: {second:?}"
        );
    }
}

/// A daemon with a framed TcpInput whose FileOutput ships only when asked (flush interval an
/// hour away, no shipping on idle, a large batch): the file fills only at a settle or at stop.
fn acked_daemon(dir: &Path) -> (Daemon, u16) {
    let port = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [Acked]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n\
         [Out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"out.log\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 3600000\n\
         flush_on_idle = false\n"
    );
    (Daemon::start(dir, &config, &[port]), port)
}

/// Reads control frames from `stream` until `timeout` passes with nothing more.
fn read_controls(stream: &mut TcpStream, timeout: Duration) -> Vec<Control> {
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(count) = stream.read(&mut chunk) {
        if count == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..count]);
    }
    parse_controls(&bytes)
}

fn parse_controls(mut bytes: &[u8]) -> Vec<Control> {
    let mut controls = Vec::new();
    while let Parsed::Control {
        control,
        bytes: used,
    } = ack::parse(bytes)
    {
        controls.push(control);
        bytes = &bytes[used..];
    }
    assert!(bytes.is_empty(), "only control frames come back: {bytes:?}");
    controls
}

fn encoded(controls: &[Control]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for control in controls {
        control.encode(&mut bytes);
    }
    bytes
}

#[test]
fn a_mark_without_a_hello_gets_no_ack_and_ships_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, port) = acked_daemon(dir.path());
    let output = dir.path().join("out.log");
    let frames = || read_frames(&std::fs::read(&output).unwrap_or_default()).len();

    let mut stranger = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut bytes = frame(&numbered_message(1, "from a stranger"));
    bytes.extend(encoded(&[Control::Mark { seq: 1 }]));
    stranger.write_all(&bytes).unwrap();
    let answered = read_controls(&mut stranger, Duration::from_millis(700));
    assert_eq!(answered, [], "no ack without a hello");
    assert_eq!(frames(), 0, "no settle: the batch was not shipped");

    // The same exchange after a hello is answered and settles: the test can see a settle.
    let mut sender = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let hello = encoded(&[Control::Hello {
        version: ack::VERSION,
    }]);
    sender.write_all(&hello).unwrap();
    let mut bytes = frame(&numbered_message(2, "from a sender"));
    bytes.extend(encoded(&[Control::Mark { seq: 1 }]));
    sender.write_all(&bytes).unwrap();
    let mut answered = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answered.contains(&Control::Ack { seq: 1 }) && Instant::now() < deadline {
        answered.extend(read_controls(&mut sender, Duration::from_millis(200)));
    }
    assert_eq!(
        answered,
        [
            Control::Welcome {
                version: ack::VERSION
            },
            Control::Ack { seq: 1 }
        ]
    );
    assert!(frames() >= 1, "the settle shipped the sender's batch");
    drop((stranger, sender));
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(daemon.counter("Acked.marks_ignored_total"), 1);
    assert_eq!(daemon.counter("Acked.acks_total"), 1);
    assert_eq!(frames(), 2, "both messages were delivered at stop");
}

#[test]
fn a_flood_of_marks_is_paced_and_the_last_one_is_still_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, port) = acked_daemon(dir.path());
    let mut sender = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sender.set_nodelay(true).unwrap();
    let mut reader = sender.try_clone().unwrap();
    let collector = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        reader
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        loop {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(count) => bytes.extend_from_slice(&chunk[..count]),
            }
            let controls = parse_controls(&bytes);
            if controls.contains(&Control::Ack { seq: MARKS }) {
                return (controls, Instant::now());
            }
        }
        (parse_controls(&bytes), Instant::now())
    });
    const MARKS: u64 = 2_000;
    let hello = encoded(&[Control::Hello {
        version: ack::VERSION,
    }]);
    sender.write_all(&hello).unwrap();
    let started = Instant::now();
    for seq in 1..=MARKS {
        // One mark per write, each its own segment: unpaced, every one would settle.
        sender
            .write_all(&encoded(&[Control::Mark { seq }]))
            .unwrap();
        std::thread::sleep(Duration::from_micros(500));
    }
    let (controls, last_ack_at) = collector.join().unwrap();
    let acks: Vec<u64> = controls
        .iter()
        .filter_map(|control| match control {
            Control::Ack { seq } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(
        acks.last(),
        Some(&MARKS),
        "the last mark is answered, later: {acks:?}"
    );
    let seconds = last_ack_at.duration_since(started).as_secs_f64();
    let bound = (seconds * gyges::limits::ACK_SETTLES_PER_SECOND_MAX as f64) as usize + 5;
    assert!(
        acks.len() <= bound,
        "{} acks in {seconds:.2} s for {MARKS} marks (at most {bound})",
        acks.len()
    );
    assert!(
        acks.windows(2).all(|pair| pair[0] < pair[1]),
        "cumulative: {acks:?}"
    );
    drop(sender);
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(daemon.counter("Acked.acks_total"), acks.len() as u64);
}

#[test]
fn refused_connections_are_counted_and_logged_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [Busy]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\nsplitter = \"TokenSplitter\"\nmax_connections = 1\n\
         [Out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"out.log\"\n"
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    // Held open: at most one per core is served, the rest are closed at once.
    const CONNECTIONS: usize = 20;
    let held: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let closed_by_gyges = |stream: &TcpStream| {
        let mut byte = [0u8; 1];
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        match (&*stream).read(&mut byte) {
            Ok(count) => count == 0,
            Err(error) => !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    };
    wait_for_or_explain(
        Duration::from_secs(10),
        "the connections past the limit closed",
        || held.iter().filter(|stream| closed_by_gyges(stream)).count() >= CONNECTIONS - 2,
        || daemon.stderr(),
    );
    drop(held);
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let refused = daemon.counter("Busy.refused_connections_total");
    assert!(
        refused >= (CONNECTIONS - 2) as u64,
        "{refused} refused\n{}",
        daemon.stderr()
    );
    // All within one interval: one line per core at most, however many were refused.
    let lines = daemon
        .stderr()
        .lines()
        .filter(|line| line.contains("connection limit reached"))
        .count();
    assert!(
        (1..=2).contains(&lines),
        "{lines} lines for {refused} refused\n{}",
        daemon.stderr()
    );
}

/// A filter host on core 1 waits for every core to be done before it leaves, and the owner of
/// a single file drains its rings until every other core has let go of them: a core that
/// panicked must still do both, or the daemon would hang at the stop.
#[cfg(feature = "lua")]
#[test]
fn a_panic_on_one_core_holds_up_neither_a_filter_host_nor_a_file_owner_on_another() {
    if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
        eprintln!("skipped: needs two cores");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("quiet_filter.lua");
    std::fs::write(
        &script,
        "function process_message() return 0 end\nfunction timer_event() end\n",
    )
    .unwrap();
    let port = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\ncores = [0, 1]\noutput_core = 1\n\
         [Faulty]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\nsplitter = \"TokenSplitter\"\n\
         [Quiet]\ntype = \"SandboxFilter\"\nmessage_matcher = \"TRUE\"\nfilename = \"{script}\"\n\
         [Out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"out.log\"\n",
        script = script.display()
    );
    // The fault fires on cpu 0 only; the filter and the file's writer live on cpu 1.
    let (mut child, log) = start_with_fault(dir.path(), &config, "Faulty@0");
    wait_for(Duration::from_secs(10), "the input's port", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // New connections until one lands on core 0 (the kernel spreads them) and it panics.
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.write_all(b"a message\n");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = exit_within(&mut child, Duration::from_secs(5), &log);
    assert_eq!(status.code(), Some(1), "{status}");
    assert_one_panic_line(&log, "Faulty");
    let line = &panic_lines(&log, "Faulty")[0];
    assert!(line.contains("cpu=0"), "{line}");
}
