//! SandboxManagerFilter through the daemon and `gyges sandbox`: a signed load runs a filter
//! whose injections reach a FileOutput, a replace swaps it, an unload stops it, a restart
//! brings loaded filters back, `/metrics` shows a loaded sandbox's use; unsigned, wrongly
//! signed, stale and over-`max_filters` commands are refused and counted, a replace that does
//! not compile keeps the running filter; and the pipeline loses nothing while filters come and
//! go under load.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gyges::message::framing::{write_frame, HashFunction, Signer};

use crate::util::*;

const KEY: &str = "right key";

fn config(dir: &Path, port: u16, max_filters: usize) -> String {
    config_with_endpoint(dir, port, max_filters, free_port())
}

fn config_with_endpoint(dir: &Path, port: u16, max_filters: usize, http_port: u16) -> String {
    format!(
        "[hekad]\nstats_interval = 0\nbase_dir = \"{base}\"\n\
         http_address = \"127.0.0.1:{http_port}\"\n\
         [control]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n\
         [control.signer.ops_0]\nhmac_key = \"{KEY}\"\n\
         [Mgr]\ntype = \"SandboxManagerFilter\"\nmessage_signer = \"ops\"\n\
         max_filters = {max_filters}\n\
         [echoes]\ntype = \"FileOutput\"\nmessage_matcher = \"Type == 'heka.sandbox.echo'\"\n\
         path = \"echoes.log\"\nuse_framing = true\nflush_interval = 10\n\
         [all]\ntype = \"FileOutput\"\nmessage_matcher = \"Type == 'test'\"\n\
         path = \"all.log\"\nuse_framing = true\nflush_interval = 10\n",
        base = dir.join("state").display(),
    )
}

/// Writes a filter named `name` echoing each `test` message's Payload behind `tag:`.
fn filter_files(dir: &Path, name: &str, tag: &str) -> (PathBuf, PathBuf) {
    let config = dir.join(format!("{name}-{tag}.toml"));
    let script = dir.join(format!("{name}-{tag}.lua"));
    let toml = format!(
        "[{name}]\ntype = \"SandboxFilter\"\nmessage_matcher = \"Type == 'test'\"\n\
         filename = \"ignored.lua\"\n"
    );
    let lua = format!(
        "function process_message()\n\
         inject_message({{Type = \"echo\", Payload = \"{tag}:\" .. read_message(\"Payload\")}})\n\
         return 0\nend\n"
    );
    std::fs::write(&config, toml).unwrap();
    std::fs::write(&script, lua).unwrap();
    (config, script)
}

fn sandbox(args: &[&str], port: u16, key: &str) -> Run {
    let addr = format!("127.0.0.1:{port}");
    let mut all = vec!["sandbox"];
    all.extend_from_slice(&args[..1]);
    all.extend_from_slice(&["--addr", &addr, "--signer", "ops", "--key", key]);
    all.extend_from_slice(&args[1..]);
    run_gyges(&all)
}

fn load(dir: &Path, port: u16, name: &str, tag: &str, key: &str) {
    let (config, script) = filter_files(dir, name, tag);
    let (config, script) = (config.display().to_string(), script.display().to_string());
    let run = sandbox(
        &["load", "--config", &config, "--script", &script],
        port,
        key,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

fn unload(port: u16, name: &str) {
    let run = sandbox(&["unload", "--name", name], port, KEY);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

fn payloads(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    read_frames(&bytes)
        .into_iter()
        .filter_map(payload_of)
        .map(|payload| String::from_utf8_lossy(&payload).into_owned())
        .collect()
}

fn send_numbered(port: u16, from: i64, to: i64, payload: &str) {
    let bytes: Vec<u8> = (from..to)
        .flat_map(|n| frame(&numbered_message(n, payload)))
        .collect();
    send_tcp(port, &bytes);
}

/// The value of `metric` for `plugin` in the endpoint's `/metrics` (over its cores), if shown.
fn metric(http_port: u16, metric: &str, plugin: &str) -> Option<u64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", http_port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n";
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let prefix = format!("gyges_{metric}{{plugin=\"{plugin}\"");
    // One line per core: the sum is the plugin's (a filter lives on one core).
    let values = answer.lines().filter(|line| line.starts_with(&prefix));
    let values: Vec<u64> = values
        .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn log_count(daemon: &Daemon, needle: &str) -> usize {
    daemon.stderr().matches(needle).count()
}

/// Sends `payload` messages until the echoes file shows `expected`: a load reaches every
/// core's router within a batch, so the first few messages after it may not be matched yet.
fn wait_for_echo(daemon: &Daemon, port: u16, payload: &str, expected: &str) {
    let echoes = daemon.dir.join("echoes.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sequence = 1_000_000;
    while !payloads(&echoes).iter().any(|seen| seen == expected) {
        assert!(
            Instant::now() < deadline,
            "no echo {expected}: {:?}\n{}",
            payloads(&echoes),
            daemon.stderr()
        );
        send_numbered(port, sequence, sequence + 1, payload);
        sequence += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_loaded_filter_runs_is_replaced_survives_a_restart_and_unloads() {
    let dir = tempfile::tempdir().unwrap();
    let (port, http_port) = (free_port(), free_port());
    let config = config_with_endpoint(dir.path(), port, 2, http_port);
    let mut daemon = Daemon::start(dir.path(), &config, &[port, http_port]);
    load(dir.path(), port, "echo", "v1", KEY);
    wait_for_echo(&daemon, port, "a", "v1:a");
    assert_eq!(log_count(&daemon, "filter loaded"), 1);
    // The slot's gauges show the loaded sandbox; the empty slot shows nothing used.
    let used = |name| metric(http_port, name, "Mgr#0");
    wait_for_or_explain(
        Duration::from_secs(10),
        "the sandbox gauges",
        || {
            used("sandbox_memory_bytes").unwrap_or(0) > 0
                && used("sandbox_output_bytes_max").unwrap_or(0) > 0
        },
        || {
            let names = ["sandbox_memory_bytes", "sandbox_instructions_max"];
            let names = names.into_iter().chain(["sandbox_output_bytes_max"]);
            format!("{:?}", names.map(used).collect::<Vec<_>>())
        },
    );
    assert_eq!(metric(http_port, "sandbox_memory_bytes", "Mgr#1"), Some(0));

    // Replace: the same name, a new script, in the same slot.
    load(dir.path(), port, "echo", "v2", KEY);
    wait_for_echo(&daemon, port, "b", "v2:b");
    assert!(daemon.stderr().contains("filter replaced"));

    // A restart brings it back from the working directory.
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let kept = dir.path().join("state/sbxmgrs/Mgr");
    assert!(kept.join("Mgr-echo.toml").exists() && kept.join("Mgr-echo.lua").exists());
    daemon.restart(&[port, http_port]);
    wait_for_echo(&daemon, port, "c", "v2:c");
    assert!(daemon.stderr().contains("filter restored"));

    // Unload: nothing is echoed any more, the files are gone.
    unload(port, "echo");
    wait_for(Duration::from_secs(10), "the unload", || {
        daemon.stderr().contains("filter unloaded")
    });
    std::thread::sleep(Duration::from_millis(100));
    send_numbered(port, 0, 50, "after");
    let all = dir.path().join("all.log");
    wait_for(
        Duration::from_secs(10),
        "the messages after the unload",
        || {
            payloads(&all)
                .iter()
                .filter(|seen| *seen == "after")
                .count()
                == 50
        },
    );
    std::thread::sleep(Duration::from_millis(200));
    let echoes = payloads(&dir.path().join("echoes.log"));
    assert!(
        !echoes.iter().any(|seen| seen.ends_with(":after")),
        "{echoes:?}"
    );
    assert!(!kept.join("Mgr-echo.toml").exists());
    wait_for(
        Duration::from_secs(10),
        "the unloaded slot's gauge at 0",
        || metric(http_port, "sandbox_memory_bytes", "Mgr#0") == Some(0),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(daemon.counter("Mgr.process_failures_total"), 0);
}

#[test]
fn unsigned_wrongly_signed_stale_and_over_max_commands_are_refused_and_counted_and_a_failed_replace_keeps_the_filter(
) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut daemon = Daemon::start(dir.path(), &config(dir.path(), port, 1), &[port]);
    let (config_path, script_path) = filter_files(dir.path(), "echo", "v1");
    let message = gyges::tools::sandbox::load_message(&config_path, &script_path).unwrap();
    // Unsigned: the router keeps it from the manager and counts it.
    send_tcp(port, &frame(&message));
    // Signed with a key the input does not know for ops_0: the input drops it.
    let wrong = Signer::new("ops", 0, HashFunction::Md5, b"wrong key").unwrap();
    let mut signed = Vec::new();
    write_frame(&mut signed, &message, Some(&wrong)).unwrap();
    send_tcp(port, &signed);
    // Through the tool with the wrong key: dropped the same way.
    load(dir.path(), port, "echo", "v1", "another wrong key");
    std::thread::sleep(Duration::from_millis(300));
    send_numbered(port, 0, 20, "x");
    let all = dir.path().join("all.log");
    wait_for(Duration::from_secs(10), "20 messages", || {
        payloads(&all).len() == 20
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(payloads(&dir.path().join("echoes.log")).is_empty());
    assert_eq!(log_count(&daemon, "filter loaded"), 0);

    // With the right key it loads; a second filter is over max_filters = 1.
    load(dir.path(), port, "echo", "v1", KEY);
    wait_for_echo(&daemon, port, "a", "v1:a");
    load(dir.path(), port, "other", "v1", KEY);
    wait_for(Duration::from_secs(10), "the refusal", || {
        daemon.stderr().contains("code=\"max_filters\"")
            || daemon.stderr().contains("code=max_filters")
    });
    // A stale command (as a replay would be) is refused too.
    let mut stale = gyges::tools::sandbox::unload_message("echo");
    let stale_message = {
        use prost::Message as _;
        let mut decoded = gyges::message::proto::Message::decode(stale.as_slice()).unwrap();
        decoded.timestamp -= 60_000_000_000;
        decoded.encode_to_vec()
    };
    stale.clear();
    let right = Signer::new("ops", 0, HashFunction::Md5, KEY.as_bytes()).unwrap();
    write_frame(&mut stale, &stale_message, Some(&right)).unwrap();
    send_tcp(port, &stale);
    wait_for(Duration::from_secs(10), "the stale refusal", || {
        daemon.stderr().contains("stale")
    });
    // A replace whose script does not compile leaves the running filter in place.
    let (config_path, script_path) = filter_files(dir.path(), "echo", "broken");
    std::fs::write(&script_path, "function process_message( return 0 end\n").unwrap();
    let (config_path, script_path) = (config_path.display(), script_path.display());
    let (config_path, script_path) = (config_path.to_string(), script_path.to_string());
    let args = ["load", "--config", &config_path, "--script", &script_path];
    assert_eq!(sandbox(&args, port, KEY).code, Some(0));
    wait_for(Duration::from_secs(10), "the failed replace", || {
        daemon.stderr().contains("not_started")
    });
    wait_for_echo(&daemon, port, "b", "v1:b");
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(daemon.counter("Mgr.rejected_total"), 1, "the unsigned one");
    assert_eq!(daemon.counter("control.auth_failures_total"), 2);
    let failures = daemon.counter("Mgr.process_failures_total");
    assert_eq!(failures, 3, "over max, stale, broken");
    assert_eq!(daemon.counter("Mgr.processed_total"), 4);
}

#[test]
fn nothing_is_lost_while_filters_are_loaded_and_unloaded_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let daemon = Daemon::start(dir.path(), &config(dir.path(), port, 2), &[port]);
    let total: i64 = 200_000;
    let sender = std::thread::spawn(move || {
        let chunk = 5_000;
        for start in (0..total).step_by(chunk) {
            send_numbered(port, start, start + chunk as i64, "n");
        }
    });
    let mut round = 0;
    // At least three rounds, however fast the sender is.
    while !sender.is_finished() || round < 3 {
        let tag = format!("r{round}");
        load(dir.path(), port, "echo", &tag, KEY);
        std::thread::sleep(Duration::from_millis(30));
        unload(port, "echo");
        round += 1;
    }
    sender.join().unwrap();
    let all = dir.path().join("all.log");
    let counted = || {
        let bytes = std::fs::read(&all).unwrap_or_default();
        let mut seen = vec![false; total as usize];
        for message in read_frames(&bytes) {
            if let Some(sequence) = sequence_of(message) {
                seen[sequence as usize] = true;
            }
        }
        seen.iter().filter(|seen| **seen).count()
    };
    wait_for_or_explain(
        Duration::from_secs(60),
        "every numbered message",
        || counted() == total as usize,
        || format!("{} of {total}\n{}", counted(), daemon.stderr()),
    );
    assert!(round >= 3, "filters came and went {round} times");
    // Commands on separate connections may overtake each other (docs/sandbox_manager.md): a
    // load that arrives before the unload of the round before replaces the running filter.
    wait_for_or_explain(
        Duration::from_secs(20),
        "the loads logged",
        || log_count(&daemon, "filter loaded") + log_count(&daemon, "filter replaced") >= 2,
        || daemon.stderr(),
    );
}

/// Writes a filter `counter` whose global count survives with `preserve_data`: each `test`
/// message injects `<tag>:<count>`, and its last timer event (`timer_event_on_shutdown`)
/// injects `final:<count>`.
fn counter_files(dir: &Path, tag: &str) -> (String, String) {
    let config = dir.join(format!("counter-{tag}.toml"));
    let script = dir.join(format!("counter-{tag}.lua"));
    let toml = "[counter]\ntype = \"SandboxFilter\"\nmessage_matcher = \"Type == 'test'\"\n\
                filename = \"ignored.lua\"\npreserve_data = true\ntimer_event_on_shutdown = true\n";
    let lua = format!(
        "count = 0\n\
         function process_message()\n\
         count = count + 1\n\
         inject_message({{Type = \"echo\", Payload = \"{tag}:\" .. count}})\n\
         return 0\nend\n\
         function timer_event()\n\
         inject_message({{Type = \"echo\", Payload = \"final:\" .. count}})\n\
         end\n"
    );
    std::fs::write(&config, toml).unwrap();
    std::fs::write(&script, lua).unwrap();
    (config.display().to_string(), script.display().to_string())
}

fn load_counter(dir: &Path, port: u16, tag: &str) {
    let (config, script) = counter_files(dir, tag);
    let run = sandbox(
        &["load", "--config", &config, "--script", &script],
        port,
        KEY,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

/// The counts the counter's `process_message` injected, and its `final:` counts, in order.
fn counts(daemon: &Daemon) -> (Vec<u64>, Vec<u64>) {
    let echoes = payloads(&daemon.dir.join("echoes.log"));
    let number = |seen: &str| seen.rsplit(':').next()?.parse::<u64>().ok();
    let finals = echoes.iter().filter(|seen| seen.starts_with("final:"));
    let counted = echoes.iter().filter(|seen| !seen.starts_with("final:"));
    (
        counted.filter_map(|seen| number(seen)).collect(),
        finals.filter_map(|seen| number(seen)).collect(),
    )
}

/// Sends `test` messages one by one until the counter has counted `more` more of them.
fn count_more(daemon: &Daemon, port: u16, more: usize) {
    let target = counts(daemon).0.len() + more;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sequence = 2_000_000;
    while counts(daemon).0.len() < target {
        assert!(
            Instant::now() < deadline,
            "counted {:?}\n{}",
            counts(daemon),
            daemon.stderr()
        );
        send_numbered(port, sequence, sequence + 1, "c");
        sequence += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_preserving_filter_keeps_its_state_across_replace_unload_load_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (port, http_port) = (free_port(), free_port());
    let config = config_with_endpoint(dir.path(), port, 1, http_port);
    let mut daemon = Daemon::start(dir.path(), &config, &[port, http_port]);
    load_counter(dir.path(), port, "v1");
    count_more(&daemon, port, 3);

    // A replace stops the old state as a stop does (final timer event, state saved) and
    // the new one starts from it.
    load_counter(dir.path(), port, "v2");
    wait_for(Duration::from_secs(10), "the replace", || {
        daemon.stderr().contains("filter replaced")
    });
    count_more(&daemon, port, 2);

    // An unload saves it; a later load continues from it.
    unload(port, "counter");
    wait_for(Duration::from_secs(10), "the unload", || {
        daemon.stderr().contains("filter unloaded")
    });
    let data = dir
        .path()
        .join("state/sandbox_preservation/Mgr_counter.data");
    assert!(data.exists(), "no {}", data.display());
    load_counter(dir.path(), port, "v3");
    count_more(&daemon, port, 2);

    // A clean restart saves it and brings the filter back with it.
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    daemon.restart(&[port, http_port]);
    count_more(&daemon, port, 2);
    assert!(daemon.stop().success(), "{}", daemon.stderr());

    let (counted, finals) = counts(&daemon);
    // Every message counted once, each count one more than the last: never from 0 again.
    let expected: Vec<u64> = (1..=counted.len() as u64).collect();
    assert_eq!(counted, expected, "{}", daemon.stderr());
    assert!(counted.len() >= 9);
    // One last timer event per stop of a state: replace, unload, restart, the final stop;
    // each saw the count so far.
    assert_eq!(finals.len(), 4, "{finals:?}");
    assert!(
        finals.windows(2).all(|pair| pair[0] <= pair[1]),
        "{finals:?}"
    );
    assert_eq!(finals.last(), counted.last());
    let echoes = payloads(&dir.path().join("echoes.log"));
    assert!(
        echoes.iter().any(|seen| seen.starts_with("v3:")),
        "{echoes:?}"
    );
}
