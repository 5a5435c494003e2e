//! Helpers shared by the end-to-end tests: running the real `gyges` binary on free loopback
//! ports, building and parsing Heka-framed messages, and waiting with deadlines.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gyges::message::framing::Verifier;
use gyges::message::proto::{Field, Message, ValueType};
use gyges::message::{FieldValue, ProtoView, StrHeader};
use gyges::splitter::{HekaFrameSplitter, Splitter, Step};
use prost::Message as _;

/// The binary under test.
pub fn gyges_binary() -> &'static str {
    env!("CARGO_BIN_EXE_gyges")
}

/// A loopback port for one test's daemon, never handed out twice by this process.
///
/// gyges binds with SO_REUSEPORT, so two daemons can share a port and the kernel would split
/// connections between them. Ports from the kernel's ephemeral range can come back to another
/// test while a daemon is restarting; these come from a counter over 20000..30000 instead
/// (outside the ephemeral range), start where this process's id points, and are checked free
/// for both TCP and UDP first.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = (std::process::id() % 400) * 25;
    loop {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + ((start + offset) % 10_000) as u16;
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`wait_for`], but on timeout the panic includes `explain()` (logs, counts).
pub fn wait_for_or_explain(
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> bool,
    explain: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            explain()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `gyges run` with its own working directory.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub config: PathBuf,
    stderr_path: PathBuf,
}

impl Daemon {
    /// Starts `gyges run -c <config>` in `dir` and waits until every port in `ports` accepts
    /// TCP connections.
    pub fn start(dir: &Path, config_text: &str, ports: &[u16]) -> Daemon {
        let config = dir.join("gyges.toml");
        std::fs::write(&config, config_text).expect("write config");
        Daemon::start_config(dir, config, ports)
    }

    /// Starts `gyges run -c <config>` (a file or a directory of them) in `dir` and waits until
    /// every port in `ports` accepts TCP connections.
    pub fn start_config(dir: &Path, config: PathBuf, ports: &[u16]) -> Daemon {
        let mut daemon = Daemon {
            child: None,
            dir: dir.to_path_buf(),
            config,
            stderr_path: dir.join(format!("stderr-{}.log", std::process::id())),
        };
        daemon.spawn();
        for &port in ports {
            let daemon_ref = &mut daemon;
            wait_for(Duration::from_secs(10), &format!("port {port}"), || {
                daemon_ref.assert_running();
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
        }
        daemon
    }

    fn spawn(&mut self) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("stderr file");
        let child = Command::new(gyges_binary())
            .args(["run", "-c"])
            .arg(&self.config)
            .current_dir(&self.dir)
            .env(
                "GYGES_LOG",
                std::env::var("GYGES_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn gyges");
        self.child = Some(child);
    }

    /// Starts the same config again after a stop or kill.
    pub fn restart(&mut self, ports: &[u16]) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
        for &port in ports {
            wait_for(Duration::from_secs(10), &format!("port {port}"), || {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
        }
    }

    fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("gyges exited early with {status}:\n{}", self.stderr());
            }
        }
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(
            status.map(|status| status.success()).unwrap_or(false),
            "kill -TERM failed"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("gyges did not stop within 30 s:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most `timeout`) for the daemon to exit on its own, and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("gyges did not exit within {timeout:?}:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the daemon with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The final value of a counter, `plugin.metric_total`, from the report logged at stop.
    pub fn counter(&self, name: &str) -> u64 {
        let log = self.stderr();
        let needle = format!("{name} ");
        log.lines()
            .filter_map(|line| line.split_once(&needle).map(|(_, value)| value.trim()))
            .filter_map(|value| value.parse().ok())
            .next_back()
            .unwrap_or(0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Heka message with an integer field `seq` and the given payload.
pub fn numbered_message(sequence: i64, payload: &str) -> Vec<u8> {
    Message {
        uuid: gyges::message::UuidSource::new().next_uuid().to_vec(),
        timestamp: 1_700_000_000_000_000_000 + sequence,
        r#type: Some("test".into()),
        logger: Some("tests".into()),
        payload: Some(payload.into()),
        fields: vec![Field {
            name: "seq".into(),
            value_type: Some(ValueType::Integer as i32),
            value_integer: vec![sequence],
            ..Field::default()
        }],
        ..Message::default()
    }
    .encode_to_vec()
}

/// Heka stream framing around `message` (unsigned).
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut header = vec![0x08];
    gyges::message::wire::put_varint(&mut header, message.len() as u64);
    let mut out = vec![0x1e, header.len() as u8];
    out.extend_from_slice(&header);
    out.push(0x1f);
    out.extend_from_slice(message);
    out
}

/// Splits a framed file into its complete messages, up to the first write still in progress:
/// a partial frame at the end, or zeros where a frame should start (a batch whose range was
/// reserved but whose write has not completed reads as zeros while later batches are already
/// there; `src/output/file.rs`). What follows it is left for a later read, so a hole that
/// stays loses messages and fails the test's count. Anything else but a frame fails the test,
/// since gyges writes only whole frames.
pub fn read_frames(bytes: &[u8]) -> Vec<&[u8]> {
    let mut messages = Vec::new();
    let mut at = 0;
    while at + 2 <= bytes.len() {
        if bytes[at] == 0 {
            break;
        }
        assert_eq!(bytes[at], 0x1e, "record separator at {at}");
        let header_length = usize::from(bytes[at + 1]);
        let start = at + 3 + header_length;
        if start > bytes.len() {
            break;
        }
        let header = &bytes[at + 2..at + 2 + header_length];
        let mut position = 1;
        let length =
            gyges::message::wire::read_varint(header, &mut position).expect("length") as usize;
        assert_eq!(
            bytes[at + 2 + header_length],
            0x1f,
            "unit separator at {at}"
        );
        if start + length > bytes.len() {
            break;
        }
        messages.push(&bytes[start..start + length]);
        at = start + length;
    }
    messages
}

/// The `seq` field of a message, if it has one.
pub fn sequence_of(message: &[u8]) -> Option<i64> {
    match ProtoView::new(message).field(b"seq", 0)?.value(0)? {
        FieldValue::Integer(sequence) => Some(sequence),
        _ => None,
    }
}

/// The Payload of a message, if any.
pub fn payload_of(message: &[u8]) -> Option<Vec<u8>> {
    ProtoView::new(message)
        .str_header(StrHeader::Payload)
        .map(<[u8]>::to_vec)
}

/// Sends `bytes` over a new TCP connection and closes it.
pub fn send_tcp(port: u16, bytes: &[u8]) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    if let Err(error) = stream.write_all(bytes) {
        panic!("send to port {port} failed: {error}");
    }
}

/// A command running the built `gyges` binary.
pub fn gyges() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gyges"))
}

/// Listens on a free loopback port, accepts `connections` connections and returns, once all
/// of them are closed, the bytes each one sent (in the order they were accepted).
pub fn collect_listener(connections: usize) -> (SocketAddr, JoinHandle<Vec<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = listener
        .local_addr()
        .expect("a bound listener has an address");
    let handle = std::thread::spawn(move || {
        let readers: Vec<JoinHandle<Vec<u8>>> = (0..connections)
            .map(|_| {
                let (mut stream, _) = listener.accept().expect("accept");
                std::thread::spawn(move || {
                    let mut bytes = Vec::new();
                    stream
                        .read_to_end(&mut bytes)
                        .expect("read a connection to its end");
                    bytes
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|reader| reader.join().expect("reader thread"))
            .collect()
    });
    (address, handle)
}

/// Splits a Heka-framed stream into its records, checking signatures against `keys`; returns
/// each message with its verified signer name.
pub fn split_frames(stream: &[u8], keys: &[(&str, &[u8])]) -> Vec<(Vec<u8>, Option<String>)> {
    let verifier = Arc::new(Verifier::new(keys.iter().copied()).expect("valid keys"));
    let mut splitter =
        Splitter::HekaFrame(HekaFrameSplitter::new(verifier, false, 1 << 20).expect("splitter"));
    let mut window = stream;
    let mut records = Vec::new();
    while let Step::Record {
        start,
        end,
        consumed,
        signer,
    } = splitter.split(window)
    {
        let name = signer
            .and_then(|id| splitter.signer_name(id))
            .map(|name| String::from_utf8_lossy(name).into_owned());
        records.push((window[start..end].to_vec(), name));
        window = &window[consumed..];
    }
    let stats = splitter.stats();
    assert_eq!(stats.discarded_bytes, 0, "a clean stream has no garbage");
    assert_eq!(stats.auth_failures, 0, "every signed frame verifies");
    records
}

/// The result of running `gyges`.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the built `gyges` binary with `args`.
pub fn run_gyges(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_gyges"))
        .args(args)
        .output()
        .expect("the gyges binary runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A temporary file holding `bytes`, deleted when dropped.
pub fn temp_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(bytes)
        .expect("the temporary file is writable");
    file
}

/// How many allocations the calling thread makes while running `work` (the counting
/// allocator is installed in `alloc.rs` for the whole harness).
pub fn allocations_during(work: impl FnOnce()) -> u64 {
    let before = gyges_sys::alloc::allocations();
    work();
    gyges_sys::alloc::allocations() - before
}

/// The messages of a framed output file, as `gyges cat` prints them as JSON lines; none while
/// the file does not exist yet.
pub fn messages(path: &Path) -> Vec<serde_json::Value> {
    if !path.exists() {
        return Vec::new();
    }
    let run = run_gyges(&["cat", path.to_str().expect("a UTF-8 path")]);
    run.stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The first value of the field `name` of a message as `gyges cat` prints it.
pub fn field<'a>(message: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    let fields = message.get("fields")?.as_array()?;
    let field = fields.iter().find(|field| field["name"] == name)?;
    field["value"].as_array()?.first()
}

/// Framed numbered messages `range`, each with the payload `<prefix> <n>`.
pub fn numbered_frames(prefix: &str, range: std::ops::Range<i64>) -> Vec<u8> {
    let mut stream = Vec::new();
    for n in range {
        stream.extend(frame(&numbered_message(n, &format!("{prefix} {n}"))));
    }
    stream
}

/// Sends framed numbered messages `range` (payload `message <n>`) to a TcpInput, `slice` to a
/// connection.
pub fn send_numbered_slices(port: u16, range: std::ops::Range<i64>, slice: i64) {
    let mut first = range.start;
    while first < range.end {
        let last = (first + slice).min(range.end);
        send_tcp(port, &numbered_frames("message", first..last));
        first = last;
    }
}

/// A tuning profile for this 2-core machine with the roles apart, written into `dir`: CPU 0
/// ingests, CPU 1 only hosts filters and outputs (so a client library's threads have a core
/// that is not an ingest core).
pub fn split_profile(dir: &Path) -> PathBuf {
    let path = dir.join("split.toml");
    std::fs::write(
        &path,
        "description = \"ingest on 0, outputs on 1\"\n\
         [[core]]\ncpu = 0\nroles = [\"ingest\"]\n\
         [[core]]\ncpu = 1\nroles = [\"filter\", \"output\"]\n",
    )
    .expect("write profile");
    path
}

/// Each thread of `pid`: its name and the CPUs it may run on (`Cpus_allowed_list`).
pub fn thread_cpus(pid: u32) -> Vec<(String, String)> {
    let mut threads = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let cpus = status
            .lines()
            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or_default()
            .trim()
            .to_string();
        threads.push((comm.trim().to_string(), cpus));
    }
    threads
}

/// The operator endpoint's whole `/metrics` answer (head and body).
pub fn scrape_metrics(http_port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", http_port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let request = "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n";
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    answer
}
