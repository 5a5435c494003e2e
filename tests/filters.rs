//! Filters on their host core, end to end through the daemon: a Lua filter's counts and
//! timer injections reach a FileOutput, survive a restart with `preserve_data`, and runaway
//! filters are terminated while the rest of the pipeline loses nothing.

use std::time::Duration;

use crate::util::*;

fn script(name: &str) -> String {
    format!("{}/tests/lua/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn frames_in(path: &std::path::Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap_or_default();
    read_frames(&bytes)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

fn payloads(path: &std::path::Path) -> Vec<String> {
    frames_in(path)
        .iter()
        .filter_map(|message| payload_of(message))
        .map(|payload| String::from_utf8_lossy(&payload).into_owned())
        .collect()
}

fn send_numbered(port: u16, from: i64, to: i64) {
    let bytes: Vec<u8> = (from..to)
        .flat_map(|n| frame(&numbered_message(n, "x")))
        .collect();
    send_tcp(port, &bytes);
}

#[test]
fn a_lua_filter_counts_by_type_injects_every_tick_and_keeps_its_counts_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\nbase_dir = \"{base}\"\n\
         [TcpInput]\naddress = \"127.0.0.1:{port}\"\n\
         [Counter]\ntype = \"SandboxFilter\"\nfilename = \"{script}\"\n\
         message_matcher = \"Type == 'test'\"\nticker_interval = 1\npreserve_data = true\n\
         [reports]\ntype = \"FileOutput\"\nmessage_matcher = \"Logger == 'Counter'\"\n\
         path = \"reports.log\"\nuse_framing = true\nflush_interval = 10\n\
         [all]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"all.log\"\n\
         use_framing = true\nflush_interval = 10\n",
        base = dir.path().join("state").display(),
        script = script("counter_filter.lua"),
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    send_numbered(port, 0, 300);
    let reports = dir.path().join("reports.log");
    wait_for_or_explain(
        Duration::from_secs(20),
        "a report counting 300",
        || {
            payloads(&reports)
                .iter()
                .any(|payload| payload.contains("total\t300"))
        },
        || format!("{:?}\n{}", payloads(&reports), daemon.stderr()),
    );
    let report = payloads(&reports)
        .into_iter()
        .find(|payload| payload.contains("total\t300"))
        .unwrap();
    assert!(report.contains("test\t300"), "{report}");
    // Injected messages went through the router again: `all` saw them too.
    assert!(frames_in(&dir.path().join("all.log")).len() > 300);
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(daemon.counter("Counter.processed_total"), 300);
    assert!(daemon.counter("Counter.injected_total") >= 1);

    // preserve_data: the counts carry on after a restart.
    daemon.restart(&[port]);
    send_numbered(port, 300, 500);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let counted_500 = || {
        payloads(&reports)
            .iter()
            .any(|payload| payload.contains("total\t500"))
    };
    while !counted_500() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if !counted_500() {
        daemon.stop();
        panic!(
            "no report counting 500 after the restart\n{:?}\n{}",
            payloads(&reports),
            daemon.stderr()
        );
    }
    assert!(daemon.stop().success());
}

#[test]
fn runaway_filters_are_terminated_and_the_rest_of_the_pipeline_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = format!(
        "[hekad]\nstats_interval = 0\nbase_dir = \"{}\"\n[TcpInput]\naddress = \"127.0.0.1:{port}\"\n\
         [all]\ntype = \"FileOutput\"\nmessage_matcher = \"Type != 'heka.sandbox-terminated'\"\n\
         path = \"all.log\"\nuse_framing = true\nflush_interval = 10\n\
         [terminations]\ntype = \"FileOutput\"\nmessage_matcher = \"Type == 'heka.sandbox-terminated'\"\n\
         path = \"terminated.log\"\nuse_framing = true\nflush_interval = 10\n",
        dir.path().join("state").display()
    );
    for (name, file) in [
        ("Loop", "runaway_loop.lua"),
        ("Memory", "runaway_memory.lua"),
        ("Flood", "runaway_output.lua"),
    ] {
        config.push_str(&format!(
            "[{name}]\ntype = \"SandboxFilter\"\nfilename = \"{}\"\nmessage_matcher = \"TRUE\"\n\
             instruction_limit = 100000\nmemory_limit = 1048576\noutput_limit = 65536\n",
            script(file)
        ));
    }
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    const COUNT: i64 = 2000;
    send_numbered(port, 0, COUNT);
    let all = dir.path().join("all.log");
    let terminated = dir.path().join("terminated.log");
    wait_for_or_explain(
        Duration::from_secs(30),
        "every message and three terminations",
        || frames_in(&all).len() >= COUNT as usize && frames_in(&terminated).len() >= 3,
        || {
            format!(
                "all {} terminated {}\n{}",
                frames_in(&all).len(),
                frames_in(&terminated).len(),
                daemon.stderr()
            )
        },
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let sequences: std::collections::BTreeSet<i64> = frames_in(&all)
        .iter()
        .filter_map(|message| sequence_of(message))
        .collect();
    assert_eq!(
        sequences.len() as i64,
        COUNT,
        "every message reached the output"
    );
    for name in ["Loop", "Memory", "Flood"] {
        assert_eq!(
            daemon.counter(&format!("{name}.terminations_total")),
            1,
            "{name}\n{}",
            daemon.stderr()
        );
    }
    let loggers: Vec<String> = frames_in(&terminated)
        .iter()
        .filter_map(|message| {
            let view = gyges::message::ProtoView::new(message);
            view.str_header(gyges::message::StrHeader::Payload)
                .map(|p| String::from_utf8_lossy(p).into_owned())
        })
        .collect();
    assert_eq!(loggers.len(), 3, "{loggers:?}");
    let stderr = daemon.stderr();
    for (name, reason) in [
        ("Loop", "instruction_limit exceeded"),
        ("Memory", "memory_limit exceeded"),
        ("Flood", "output_limit exceeded"),
    ] {
        let logged = stderr.lines().filter(|line| {
            line.contains("sandbox terminated") && line.contains(name) && line.contains(reason)
        });
        assert_eq!(logged.count(), 1, "{name}: {reason}\n{stderr}");
    }
}

#[test]
fn a_lua_decoder_and_a_lua_encoder_run_on_the_data_path_and_show_their_use_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (port, http) = (free_port(), free_port());
    let config = format!(
        "[hekad]\nstats_interval = 0\nhttp_address = \"127.0.0.1:{http}\"\n\
         [access]\ntype = \"UdpInput\"\naddress = \"127.0.0.1:{port}\"\ndecoder = \"AccessDecoder\"\n\
         [AccessDecoder]\ntype = \"SandboxDecoder\"\nfilename = \"{decoder}\"\n\
         [LineEncoder]\ntype = \"SandboxEncoder\"\nfilename = \"{encoder}\"\n\
         [lines]\ntype = \"FileOutput\"\nmessage_matcher = \"Type == 'nginx.access' && Fields[status] >= 500\"\n\
         path = \"errors.txt\"\nencoder = \"LineEncoder\"\nflush_interval = 10\n",
        decoder = script("access_decoder.lua"),
        encoder = script("line_encoder.lua"),
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[http]);
    std::thread::sleep(Duration::from_millis(500));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let lines = [
        "10.0.0.1 - alice [10/Oct/2000:13:55:36 +0000] \"GET /index.html HTTP/1.1\" 200 2326",
        "10.0.0.2 - - [01/Jan/2024:00:00:01 +0000] \"POST /api HTTP/2\" 503 -",
        "not an access log line",
        "10.0.0.3 - bob [01/Jan/2024:00:00:02 +0000] \"GET /x HTTP/1.1\" 500 12",
    ];
    for line in lines {
        socket
            .send_to(line.as_bytes(), ("127.0.0.1", port))
            .unwrap();
    }
    let output = dir.path().join("errors.txt");
    wait_for_or_explain(
        Duration::from_secs(20),
        "the two 5xx lines",
        || {
            std::fs::read_to_string(&output)
                .map(|text| text.lines().count() >= 2)
                .unwrap_or(false)
        },
        || daemon.stderr(),
    );
    // The input's Lua decoder and the output's Lua encoder show their state's use on their
    // plugin's rows, one per core (each core has its own state).
    let metrics = scrape_metrics(http);
    for (plugin, type_name) in [("access", "UdpInput"), ("lines", "FileOutput")] {
        for gauge in ["sandbox_memory_bytes", "sandbox_output_bytes_max"] {
            let prefix = format!("gyges_{gauge}{{plugin=\"{plugin}\",type=\"{type_name}\",core=");
            let values: Vec<u64> = metrics
                .lines()
                .filter(|line| line.starts_with(&prefix))
                .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
                .collect();
            assert!(!values.is_empty(), "no {gauge} for {plugin}:\n{metrics}");
            assert!(
                values.iter().sum::<u64>() > 0,
                "{gauge} of {plugin}:\n{metrics}"
            );
        }
    }
    // A plugin without Lua has no such series.
    let sandboxed = metrics
        .lines()
        .filter(|line| line.starts_with("gyges_sandbox_memory_bytes{"));
    assert!(sandboxed
        .clone()
        .all(|line| line.contains("plugin=\"access\"") || line.contains("plugin=\"lines\"")));
    assert!(sandboxed.count() >= 2);
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let text = std::fs::read_to_string(&output).unwrap();
    let mut written: Vec<&str> = text.lines().collect();
    written.sort_unstable();
    assert_eq!(
        written,
        // The decoder sets no Payload, and Heka copies only Timestamp, Type, Hostname,
        // Logger, Severity and Pid from the original record: the encoder sees an empty one.
        ["nginx.access  status=500", "nginx.access  status=503"]
    );
    assert_eq!(
        daemon.counter("access.decode_failures_total"),
        1,
        "{}",
        daemon.stderr()
    );
    assert_eq!(daemon.counter("access.records_total"), 4);
}

/// A filter written as Heka's scripts were, for Lua 5.1: a float column (`404 / 100`), an
/// array in `[name.config]`, `read_next_field`, and `compute`'s row count. Each of these
/// stopped such a filter before: the first 404 terminated it.
#[test]
fn a_heka_style_status_filter_survives_its_first_404_and_counts_every_class() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [access]\ntype = \"UdpInput\"\naddress = \"127.0.0.1:{port}\"\ndecoder = \"AccessDecoder\"\n\
         [AccessDecoder]\ntype = \"SandboxDecoder\"\nfilename = \"{decoder}\"\n\
         [Status]\ntype = \"SandboxFilter\"\nfilename = \"{filter}\"\n\
         message_matcher = \"Type == 'nginx.access'\"\nticker_interval = 1\n\
         [Status.config]\nclasses = [\"1xx\", \"2xx\", \"3xx\", \"4xx\", \"5xx\"]\n\
         [reports]\ntype = \"FileOutput\"\nmessage_matcher = \"Logger == 'Status'\"\n\
         path = \"reports.log\"\nuse_framing = true\nflush_interval = 10\n",
        decoder = script("access_decoder.lua"),
        filter = script("status_classes.lua"),
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for status in [200, 404, 301, 404, 503, 200, 200] {
        let line =
            format!("10.0.0.1 - - [01/Jan/2024:00:00:01 +0000] \"GET /x HTTP/1.1\" {status} 1");
        socket
            .send_to(line.as_bytes(), ("127.0.0.1", port))
            .unwrap();
    }
    let reports = dir.path().join("reports.log");
    let expected = "1xx=0/0 2xx=3/1 3xx=1/1 4xx=2/1 5xx=1/1 ";
    wait_for_or_explain(
        Duration::from_secs(20),
        "a report of every class",
        || payloads(&reports).iter().any(|payload| payload == expected),
        || format!("{:?}\n{}", payloads(&reports), daemon.stderr()),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(daemon.counter("Status.terminations_total"), 0);
    assert_eq!(daemon.counter("Status.process_failures_total"), 0);
}

/// Heka's `tz` on a decoder: a Timestamp the Lua decoder set from a zoneless reading is
/// wall-clock time in that zone; SyslogDecoder's `tz` does the same for RFC 3164 dates. One
/// winter reading (UTC−8) and one summer reading (UTC−7) in Los Angeles.
#[test]
fn decoders_take_zoneless_times_in_their_configured_zone() {
    let dir = tempfile::tempdir().unwrap();
    let (lua_port, syslog_port) = (free_port(), free_port());
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [wall]\ntype = \"UdpInput\"\naddress = \"127.0.0.1:{lua_port}\"\ndecoder = \"WallDecoder\"\n\
         [WallDecoder]\ntype = \"SandboxDecoder\"\nfilename = \"{decoder}\"\n\
         [WallDecoder.config]\ntz = \"America/Los_Angeles\"\n\
         [syslog]\ntype = \"UdpInput\"\naddress = \"127.0.0.1:{syslog_port}\"\ndecoder = \"LocalSyslog\"\n\
         [LocalSyslog]\ntype = \"SyslogDecoder\"\ntz = \"America/Los_Angeles\"\n\
         [out]\ntype = \"FileOutput\"\nmessage_matcher = \"Type == 'wall.clock' || Type == 'syslog'\"\n\
         path = \"out.log\"\nuse_framing = true\nflush_interval = 10\n",
        decoder = script("wall_clock_decoder.lua"),
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    const SECOND: i64 = 1_000_000_000;
    // 2024-01-15 09:30:00 and 2024-07-15 09:30:00, read on a Los Angeles clock.
    let (winter, summer) = (1_705_311_000 * SECOND, 1_721_035_800 * SECOND);
    for wall in [winter, summer] {
        socket
            .send_to(wall.to_string().as_bytes(), ("127.0.0.1", lua_port))
            .unwrap();
    }
    socket
        .send_to(
            b"<14>Jan 15 09:30:00 web1 app: winter line",
            ("127.0.0.1", syslog_port),
        )
        .unwrap();
    let output = dir.path().join("out.log");
    wait_for_or_explain(
        Duration::from_secs(20),
        "three decoded messages",
        || frames_in(&output).len() >= 3,
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let mut lua_times = Vec::new();
    let mut syslog_times = Vec::new();
    for message in frames_in(&output) {
        let view = gyges::message::ProtoView::new(&message);
        let kind = view
            .str_header(gyges::message::StrHeader::Type)
            .unwrap_or_default();
        let timestamp = view.timestamp().expect("a timestamp");
        match kind {
            b"wall.clock" => lua_times.push(timestamp),
            b"syslog" => syslog_times.push(timestamp),
            other => panic!("unexpected {}", String::from_utf8_lossy(other)),
        }
    }
    lua_times.sort_unstable();
    let hour = 3600 * SECOND;
    assert_eq!(lua_times, vec![winter + 8 * hour, summer + 7 * hour]);
    // The syslog line has no year: whichever the receiver picks, 09:30 in Los Angeles in
    // January is 17:30 UTC.
    assert_eq!(syslog_times.len(), 1);
    let time_of_day = syslog_times[0].div_euclid(SECOND).rem_euclid(86_400);
    assert_eq!(time_of_day, 17 * 3600 + 30 * 60);
}

/// A shift detector in the style of Heka's anomaly filters: `cb:mannwhitneyu` over the two
/// halves of a circular buffer, one filter fed a latency that jumps and one fed a latency that
/// does not. Each reports U and the one-sided p (continuity-corrected, ties shared) once it has
/// every row.
#[test]
fn a_mannwhitneyu_filter_tells_a_shift_from_noise() {
    let dir = tempfile::tempdir().unwrap();
    let (shifted_port, steady_port) = (free_port(), free_port());
    let filter = |name: &str| {
        format!(
            "[{name}]\ntype = \"SandboxFilter\"\nfilename = \"{}\"\n\
             message_matcher = \"Logger == '{}'\"\nticker_interval = 1\n\
             [{name}.config]\nwindow = 5\nbase_ns = 1700000000000000000\n",
            script("latency_shift.lua"),
            name.to_lowercase(),
        )
    };
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [shifted]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{shifted_port}\"\nsplitter = \"TokenSplitter\"\n\
         [steady]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{steady_port}\"\nsplitter = \"TokenSplitter\"\n\
         {}{}\
         [alerts]\ntype = \"FileOutput\"\nmessage_matcher = \"Type == 'heka.sandbox-output'\"\n\
         path = \"alerts.log\"\nuse_framing = true\nflush_interval = 10\n",
        filter("Shifted"),
        filter("Steady"),
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[shifted_port, steady_port]);
    let series = |values: [u32; 10]| -> String {
        values
            .iter()
            .enumerate()
            .map(|(second, value)| format!("{second} {value}\n"))
            .collect()
    };
    send_tcp(
        shifted_port,
        series([11, 12, 10, 13, 12, 30, 31, 29, 35, 33]).as_bytes(),
    );
    send_tcp(
        steady_port,
        series([11, 12, 10, 13, 12, 12, 11, 13, 10, 12]).as_bytes(),
    );
    let alerts = dir.path().join("alerts.log");
    wait_for_or_explain(
        Duration::from_secs(20),
        "both verdicts",
        || payloads(&alerts).len() >= 2,
        || format!("{:?}\n{}", payloads(&alerts), daemon.stderr()),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let mut verdicts = payloads(&alerts);
    verdicts.sort();
    assert_eq!(
        verdicts,
        ["shift U=0 p=0.0060", "steady U=12.5 p=0.5433"],
        "U1 and p as the rank test gives them"
    );
    assert_eq!(daemon.counter("Shifted.terminations_total"), 0);
    assert_eq!(daemon.counter("Steady.process_failures_total"), 0);
}
