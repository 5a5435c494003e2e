//! LogstreamerInput through the daemon: files rotated by Debian's `logrotate` (by rename and by
//! copytruncate) while gyges reads them, a kill -9 and a clean stop resumed from the journal,
//! priority over numbered rotated files, streams named by the differentiator, and a bad
//! `file_match` at startup.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::*;

fn logrotate_available() -> bool {
    Command::new("logrotate").arg("--version").output().is_ok()
}

fn payloads(path: &Path) -> Vec<String> {
    messages(path)
        .iter()
        .filter_map(|message| message["payload"].as_str().map(str::to_string))
        .collect()
}

/// A daemon reading `logs` with `input` options into a framed FileOutput at `output`. Its
/// `flush_interval` is ten minutes away: a partly filled batch is written because the reader
/// reached the end of the file (`flush_on_idle`), so every test here also checks that.
fn config(dir: &Path, logs: &Path, output: &Path, input: &str, durable: bool) -> String {
    let buffering = if durable {
        "use_buffering = true\n[out.buffering]\nmax_file_size = 1048576\n"
    } else {
        ""
    };
    format!(
        "[hekad]\nstats_interval = 0\nbase_dir = \"{}\"\nmin_disk_free = 0\n\
         checkpoint_interval = 100\n\
         [app]\ntype = \"LogstreamerInput\"\nlog_directory = \"{}\"\n\
         rescan_interval = \"200ms\"\ncheck_data_interval = \"20ms\"\n{input}\
         [out]\ntype = \"FileOutput\"\nmessage_matcher = \"Type == 'logfile'\"\npath = \"{}\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 600000\n{buffering}",
        dir.join("state").display(),
        logs.display(),
        output.display()
    )
}

const ONE_STREAM: &str = "file_match = 'app\\.log\\.?(?P<Seq>\\d*)$'\npriority = [\"^Seq\"]\n";

/// Appends lines `from..to` (`line <n>` and some padding) to `path`, opening it anew as an
/// application that reopens its log would.
fn append_lines(path: &Path, from: usize, to: usize) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the log");
    let mut text = String::new();
    for number in from..to {
        text.push_str(&format!("line {number:07} {}\n", "x".repeat(number % 50)));
    }
    file.write_all(text.as_bytes()).expect("append");
}

fn line_number(payload: &str) -> usize {
    payload
        .strip_prefix("line ")
        .and_then(|rest| rest.get(..7))
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("not a test line: {payload:?}"))
}

/// Runs logrotate on `log` with `mode` (`create` or `copytruncate`), forced, with its state
/// file in `dir`.
fn logrotate(dir: &Path, log: &Path, mode: &str) {
    let conf = dir.join(format!("logrotate-{mode}.conf"));
    let text = format!(
        "{} {{\n    rotate 9\n    {mode}\n    missingok\n    nocompress\n}}\n",
        log.display()
    );
    std::fs::write(&conf, text).expect("write the logrotate config");
    let status = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(&conf)
        .status()
        .expect("logrotate runs");
    assert!(status.success(), "logrotate {mode} failed");
}

fn wait_for_lines(daemon: &Daemon, output: &Path, count: usize) -> Vec<String> {
    let seen = std::cell::RefCell::new(Vec::new());
    wait_for_or_explain(
        Duration::from_secs(60),
        &format!("{count} lines"),
        || {
            *seen.borrow_mut() = payloads(output);
            seen.borrow().len() >= count
        },
        || format!("{} lines so far\n{}", seen.borrow().len(), daemon.stderr()),
    );
    seen.into_inner()
}

fn assert_each_once_in_order(lines: &[String], count: usize, log: &str) {
    let numbers: Vec<usize> = lines.iter().map(|line| line_number(line)).collect();
    let expected: Vec<usize> = (0..count).collect();
    if numbers != expected {
        let first_bad = numbers
            .iter()
            .zip(&expected)
            .position(|(got, want)| got != want);
        panic!(
            "{} lines, {count} expected; first difference at {first_bad:?}: {:?}\n{log}",
            numbers.len(),
            first_bad
                .map(|index| &numbers[index.saturating_sub(2)..(index + 3).min(numbers.len())])
        );
    }
}

#[test]
fn lines_arrive_once_in_order_through_rename_and_copytruncate_rotations() {
    if !logrotate_available() {
        eprintln!("skipped: logrotate is not installed (scripts/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let log = logs.join("app.log");
    let output = dir.path().join("out.log");
    append_lines(&log, 0, 1000);
    let text = config(dir.path(), &logs, &output, ONE_STREAM, false);
    let mut daemon = Daemon::start(dir.path(), &text, &[]);
    wait_for_lines(&daemon, &output, 1000);
    // Rotations while gyges reads: between them the application writes on, and gyges may be
    // anywhere in the files.
    let mut written = 1000;
    for mode in [
        "create",
        "copytruncate",
        "create",
        "copytruncate",
        "copytruncate",
        "create",
    ] {
        for _ in 0..4 {
            append_lines(&log, written, written + 500);
            written += 500;
            std::thread::sleep(Duration::from_millis(5));
        }
        logrotate(dir.path(), &log, mode);
        append_lines(&log, written, written + 300);
        written += 300;
    }
    let lines = wait_for_lines(&daemon, &output, written);
    daemon.stop();
    let lines_after_stop = payloads(&output);
    assert_each_once_in_order(&lines_after_stop, written, &daemon.stderr());
    assert_eq!(lines.len(), lines_after_stop.len());
    let logger = messages(&output)[0]["logger"].clone();
    assert_eq!(
        logger, "app",
        "the stream's name is the input's without a differentiator"
    );
}

/// The journal's offset and path, from its one line.
fn journal_offset(dir: &Path, stream: &str) -> Option<(u64, PathBuf)> {
    let path = dir.join(format!("state/logstreamer/app/{stream}.journal"));
    let text = std::fs::read_to_string(path).ok()?;
    let offset = text
        .split(' ')
        .find_map(|field| field.strip_prefix("offset="))?;
    let file = text.split_once(" path=")?.1.trim_end();
    Some((offset.parse().ok()?, PathBuf::from(file)))
}

/// The byte offset of each line's start in a file written by `append_lines` from 0.
fn line_starts(path: &Path) -> Vec<u64> {
    let bytes = std::fs::read(path).expect("read the log");
    let mut starts = vec![0u64];
    for (index, byte) in bytes.iter().enumerate() {
        if *byte == b'\n' && index + 1 < bytes.len() {
            starts.push(index as u64 + 1);
        }
    }
    starts
}

#[test]
fn a_kill_resumes_from_the_journal_and_a_clean_stop_repeats_nothing() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let log = logs.join("app.log");
    let output = dir.path().join("out.log");
    const FIRST: usize = 200_000;
    const CHUNK: usize = 2000;
    append_lines(&log, 0, CHUNK);
    let text = config(dir.path(), &logs, &output, ONE_STREAM, true);
    let mut daemon = Daemon::start(dir.path(), &text, &[]);
    // The application keeps writing while gyges reads, so the kill lands mid-stream: after a
    // journal was written, with lines read since.
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(CHUNK));
    let writer = {
        let (log, written) = (log.clone(), written.clone());
        std::thread::spawn(move || {
            for from in (CHUNK..FIRST).step_by(CHUNK) {
                append_lines(&log, from, from + CHUNK);
                written.store(from + CHUNK, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };
    wait_for_or_explain(
        Duration::from_secs(60),
        "a journal, and half the lines written",
        || {
            journal_offset(dir.path(), "app").is_some()
                && written.load(std::sync::atomic::Ordering::Relaxed) >= FIRST / 2
        },
        || daemon.stderr(),
    );
    daemon.kill();
    writer.join().expect("the writer");
    let (journaled, file) = journal_offset(dir.path(), "app").expect("a journal");
    assert_eq!(file, log);
    // Every line starting before the journaled offset was routed and appended to the durable
    // queue: it must not come again. Later lines may come twice (read again after the kill).
    let starts = line_starts(&log);
    let journaled_lines = starts.iter().filter(|&&start| start < journaled).count();
    daemon.restart(&[]);
    let lines = wait_for_lines(&daemon, &output, FIRST);
    let counts = std::cell::RefCell::new(BTreeMap::<usize, usize>::new());
    wait_for_or_explain(
        Duration::from_secs(60),
        "every line",
        || {
            let mut counts = counts.borrow_mut();
            counts.clear();
            for line in payloads(&output) {
                *counts.entry(line_number(&line)).or_default() += 1;
            }
            counts.len() == FIRST
        },
        || format!("{} distinct of {FIRST}", counts.borrow().len()),
    );
    let counts = counts.into_inner();
    assert!(lines.len() >= FIRST);
    // The durable output's own queue is at least once: its consumer delivers again what it
    // delivered after its last checkpoint, so the output file alone cannot tell the input's
    // repeats. The input's count can: after the restart it read exactly the lines from the
    // journaled offset on, none before it (nothing repeated that was journaled) and none
    // missing (every line is in the output).
    daemon.stop();
    let read_again = daemon.counter("app.records_total") as usize;
    assert_eq!(
        read_again,
        FIRST - journaled_lines,
        "the restart read from the journal at line {journaled_lines}\n{}",
        daemon.stderr()
    );
    let duplicates: usize = counts.values().map(|count| count - 1).sum();
    eprintln!(
        "kill -9 with {journaled_lines} of {FIRST} lines journaled: the restart read {read_again} \
         lines; {duplicates} lines came twice in the output"
    );
    // A clean stop journals where it stopped: lines written while stopped come once.
    let before = payloads(&output).len();
    append_lines(&log, FIRST, FIRST + 1000);
    daemon.restart(&[]);
    let lines = wait_for_lines(&daemon, &output, before + 1000);
    daemon.stop();
    let after = payloads(&output);
    assert_eq!(after.len(), before + 1000, "{}", daemon.stderr());
    let new: Vec<usize> = after[before..]
        .iter()
        .map(|line| line_number(line))
        .collect();
    assert_eq!(new, (FIRST..FIRST + 1000).collect::<Vec<_>>());
    assert_eq!(lines.len(), after.len());
    assert_eq!(daemon.counter("app.records_total"), 1000);
}

#[test]
fn priority_orders_numbered_rotations_and_the_differentiator_names_streams() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let logs = dir.path().join("logs");
    for service in ["web", "api"] {
        std::fs::create_dir_all(logs.join(service)).expect("mkdir");
        // Modification times the other way round: app.log.2 is the newest by mtime.
        for (age, name) in [
            ("3 hours ago", "app.log"),
            ("2 hours ago", "app.log.1"),
            ("1 hour ago", "app.log.2"),
        ] {
            let path = logs.join(service).join(name);
            std::fs::write(
                &path,
                format!("{service} {name} first\n{service} {name} second\n"),
            )
            .expect("write");
            let touched = Command::new("touch").arg("-d").arg(age).arg(&path).status();
            assert!(touched.expect("touch runs").success());
        }
    }
    let output = dir.path().join("out.log");
    let input = "file_match = '^(?P<Service>[a-z]+)/app\\.log\\.?(?P<Seq>\\d*)$'\n\
                 priority = [\"^Seq\"]\ndifferentiator = [\"Service\", \"-app\"]\n\
                 hostname = \"log-host-7\"\n";
    let text = config(dir.path(), &logs, &output, input, false);
    let mut daemon = Daemon::start(dir.path(), &text, &[]);
    wait_for_lines(&daemon, &output, 12);
    // A file that matches later is a new stream, found at the next rescan.
    std::fs::create_dir_all(logs.join("db")).expect("mkdir");
    std::fs::write(logs.join("db/app.log"), "db app.log first\n").expect("write");
    wait_for_lines(&daemon, &output, 13);
    daemon.stop();
    let mut by_stream: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for message in messages(&output) {
        assert_eq!(message["hostname"], "log-host-7");
        assert_eq!(message["type"], "logfile");
        let logger = message["logger"].as_str().expect("a logger").to_string();
        let payload = message["payload"].as_str().expect("a payload").to_string();
        by_stream.entry(logger).or_default().push(payload);
    }
    for service in ["web", "api"] {
        let expected: Vec<String> = ["app.log.2", "app.log.1", "app.log"]
            .iter()
            .flat_map(|name| ["first", "second"].map(|which| format!("{service} {name} {which}\n")))
            .collect();
        assert_eq!(by_stream[&format!("{service}-app")], expected);
    }
    assert_eq!(by_stream["db-app"], ["db app.log first\n"]);
    assert_eq!(by_stream.len(), 3);
}

#[test]
fn a_bad_file_match_or_priority_is_a_startup_error_naming_the_key() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cases = [
        ("bad_regex", "file_match = 'app(\\.log'\n", "file_match"),
        (
            "bad_priority",
            "file_match = 'app\\.log\\.?(?P<Seq>\\d*)'\npriority = [\"^Sequence\"]\n",
            "priority",
        ),
        (
            "bad_interval",
            "file_match = 'x'\nrescan_interval = \"1 minute\"\n",
            "rescan_interval",
        ),
        (
            "long_interval",
            "file_match = 'x'\ncheck_data_interval = \"9000h\"\n",
            "check_data_interval",
        ),
        (
            "unknown_key",
            "file_match = 'x'\nseek_journal = true\n",
            "seek_journal",
        ),
    ];
    for (name, input, key) in cases {
        let path = dir.path().join(format!("{name}.toml"));
        let text =
            format!("[ls]\ntype = \"LogstreamerInput\"\nlog_directory = \"/var/log\"\n{input}");
        std::fs::write(&path, text).expect("write");
        for verb in ["validate", "run"] {
            let run = run_gyges(&[verb, "-c", path.to_str().expect("utf-8")]);
            assert_eq!(run.code, Some(1), "{verb} {name}: {}", run.stderr);
            for needle in [
                format!("{name}.toml"),
                "[ls]".to_string(),
                format!("`{key}`"),
            ] {
                assert!(
                    run.stderr.contains(&needle),
                    "{verb} {name}: {needle} in {}",
                    run.stderr
                );
            }
        }
    }
}

/// The text of lines `from..to`, as `append_lines` writes them.
fn lines_text(from: usize, to: usize) -> Vec<u8> {
    let path = tempfile::NamedTempFile::new().expect("a temporary file");
    append_lines(path.path(), from, to);
    std::fs::read(path.path()).expect("read the lines back")
}

/// A log written with several writes in flight (as a FileOutput written by every core is) has a
/// range that reads as zeros while later records are already there. The reader waits at the
/// zeros and reads the range once its write lands, so each line arrives whole, once, in order;
/// zeros that stay (a writer that died) are read as the file's bytes after the wait, and what
/// follows them arrives.
#[test]
fn a_range_still_being_written_is_read_once_it_lands_and_zeros_that_stay_are_passed() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let log = logs.join("app.log");
    let output = dir.path().join("out.log");
    let (head, late, tail) = (
        lines_text(0, 100),
        lines_text(100, 200),
        lines_text(200, 300),
    );
    let file = std::fs::File::create(&log).expect("create the log");
    file.write_all_at(&head, 0).expect("write the head");
    file.write_all_at(&tail, (head.len() + late.len()) as u64)
        .expect("write the tail past the hole");
    let text = config(dir.path(), &logs, &output, ONE_STREAM, false);
    let mut daemon = Daemon::start(dir.path(), &text, &[]);
    wait_for_lines(&daemon, &output, 100);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        payloads(&output).len(),
        100,
        "nothing is read past the zeros while they may still be written"
    );
    file.write_all_at(&late, head.len() as u64)
        .expect("the late write lands");
    let lines = wait_for_lines(&daemon, &output, 300);
    assert_each_once_in_order(&lines, 300, &daemon.stderr());

    // A hole that is never written: after the wait, the zeros go with the next line.
    let end = (head.len() + late.len() + tail.len()) as u64;
    file.write_all_at(&lines_text(300, 310), end + 64)
        .expect("write past a hole that stays");
    let lines = wait_for_lines(&daemon, &output, 310);
    daemon.stop();
    assert_eq!(lines.len(), 310, "{}", daemon.stderr());
    assert_eq!(
        lines[300].strip_prefix(&"\0".repeat(64)).map(line_number),
        Some(300),
        "the zeros that stayed, then line 300: {:?}",
        lines[300]
    );
    let numbers: Vec<usize> = lines[301..].iter().map(|line| line_number(line)).collect();
    assert_eq!(numbers, (301..310).collect::<Vec<_>>());
}
