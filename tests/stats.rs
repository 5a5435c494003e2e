//! The built-in aggregations through the daemon: statsd over UDP, rolled up on the
//! StatAccumInput's core, delivered by CarbonOutput to a graphite receiver as exact lines;
//! CounterFilter's reports.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use crate::util::*;

#[test]
fn statsd_rollups_reach_carbon_as_exact_lines() {
    let dir = tempfile::tempdir().unwrap();
    let statsd_port = free_port();
    let carbon = TcpListener::bind("127.0.0.1:0").unwrap();
    let carbon_port = carbon.local_addr().unwrap().port();
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [StatsdInput]\naddress = \"127.0.0.1:{statsd_port}\"\n\
         [StatAccumInput]\nticker_interval = 1\n\
         [CarbonOutput]\naddress = \"127.0.0.1:{carbon_port}\"\n\
         [metrics]\ntype = \"FileOutput\"\nmessage_matcher = \"Type == 'heka.statmetric'\"\n\
         path = \"metrics.log\"\nuse_framing = true\nflush_interval = 10\n"
    );
    // No TCP port to wait on: StatsdInput is UDP. Start, then give the cores a moment to bind.
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    // The classic statsd example: a sampled counter, a gauge, ten timings, a set.
    let mut datagrams = vec![
        "gorets:1|c|@0.1".to_string(),
        "gaugor:333|g".into(),
        "gaugor:-6|g".into(),
    ];
    datagrams.extend((1..=10).map(|ms| format!("glork:{ms}|ms")));
    datagrams.push("uniques:765|s\nuniques:766|s\nuniques:765|s".into());
    datagrams.push("broken line without a type".into());
    for datagram in &datagrams {
        sender
            .send_to(datagram.as_bytes(), ("127.0.0.1", statsd_port))
            .unwrap();
    }
    // Every core keeps its own connection; the rollup leaves from the accumulator's core.
    let received = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    {
        let received = received.clone();
        std::thread::spawn(move || {
            for stream in carbon.incoming().flatten() {
                let received = received.clone();
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let mut chunk = [0u8; 65536];
                    while let Ok(count) = stream.read(&mut chunk) {
                        if count == 0 {
                            break;
                        }
                        received
                            .lock()
                            .unwrap()
                            .push_str(&String::from_utf8_lossy(&chunk[..count]));
                    }
                });
            }
        });
    }
    wait_for_or_explain(
        Duration::from_secs(20),
        "a rollup at the carbon receiver",
        || received.lock().unwrap().contains("stats.statsd.numStats"),
        || format!("{}\n{}", received.lock().unwrap(), daemon.stderr()),
    );
    let received = received.lock().unwrap().clone();
    let lines: Vec<(&str, &str)> = received
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            Some((parts.next()?, parts.next()?))
        })
        .collect();
    let value = |name: &str| {
        lines
            .iter()
            .find(|(metric, _)| *metric == name)
            .map(|(_, value)| *value)
    };
    assert_eq!(
        value("stats.counters.gorets.count"),
        Some("10"),
        "{received}"
    );
    assert_eq!(
        value("stats.counters.gorets.rate"),
        Some("10.000000"),
        "{received}"
    );
    assert_eq!(
        value("stats.gauges.gaugor"),
        Some("327.000000"),
        "{received}"
    );
    assert_eq!(value("stats.timers.glork.count"), Some("10"), "{received}");
    assert_eq!(
        value("stats.timers.glork.mean"),
        Some("5.500000"),
        "{received}"
    );
    assert_eq!(
        value("stats.timers.glork.upper_90"),
        Some("9.000000"),
        "{received}"
    );
    assert_eq!(
        value("stats.timers.glork.mean_90"),
        Some("5.000000"),
        "{received}"
    );
    assert_eq!(value("stats.sets.uniques.count"), Some("2"), "{received}");
    assert!(
        received.lines().all(|line| line.split(' ').count() == 3),
        "{received}"
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(daemon.counter("StatsdInput.decode_failures_total"), 1);
    assert!(daemon.counter("CarbonOutput.sent_total") >= 1);
    let rollups = std::fs::read(dir.path().join("metrics.log")).unwrap();
    assert!(
        !read_frames(&rollups).is_empty(),
        "the rollup is a routed heka.statmetric message"
    );
}

#[test]
fn counter_filter_reports_what_it_counted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\n[TcpInput]\naddress = \"127.0.0.1:{port}\"\n\
         [CounterFilter]\nmessage_matcher = \"Type == 'test'\"\nticker_interval = 1\n\
         [counts]\ntype = \"FileOutput\"\nmessage_matcher = \"Type == 'heka.counter-output'\"\n\
         path = \"counts.log\"\nuse_framing = true\nflush_interval = 10\n"
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    let bytes: Vec<u8> = (0..1234)
        .flat_map(|n| frame(&numbered_message(n, "x")))
        .collect();
    send_tcp(port, &bytes);
    let counts = dir.path().join("counts.log");
    wait_for_or_explain(
        Duration::from_secs(20),
        "a counter report",
        || {
            std::fs::read(&counts)
                .map(|bytes| !read_frames(&bytes).is_empty())
                .unwrap_or(false)
        },
        || daemon.stderr(),
    );
    let bytes = std::fs::read(&counts).unwrap();
    let report = String::from_utf8_lossy(&payload_of(read_frames(&bytes)[0]).unwrap()).into_owned();
    assert!(report.starts_with("Got 1234 messages."), "{report}");
    assert!(daemon.stop().success());
    assert_eq!(daemon.counter("CounterFilter.processed_total"), 1234);
}
