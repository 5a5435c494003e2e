//! SyslogDecoder through the daemon: util-linux `logger` sends RFC 5424 over TCP (octet
//! counting is the ingest issue's; here the TCP stream is newline framed) and RFC 3164 over
//! UDP, a malformed line is kept and flagged, and `gyges cat` reads back the mapped fields.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

fn logger_available() -> bool {
    Command::new("logger").arg("--version").output().is_ok()
}

fn with_payload<'a>(messages: &'a [Value], text: &str) -> Option<&'a Value> {
    messages.iter().find(|message| {
        message["payload"]
            .as_str()
            .is_some_and(|payload| payload.contains(text))
    })
}

#[test]
fn logger_lines_become_syslog_messages_and_a_malformed_line_is_kept_and_flagged() {
    if !logger_available() {
        eprintln!("skipped: util-linux logger is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (tcp, udp) = (free_port(), free_port());
    let output = dir.path().join("syslog.log");
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [syslog_tcp]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{tcp}\"\n\
         splitter = \"TokenSplitter\"\ndecoder = \"SyslogDecoder\"\n\
         [syslog_udp]\ntype = \"UdpInput\"\naddress = \"127.0.0.1:{udp}\"\n\
         decoder = \"SyslogDecoder\"\n\
         [FileOutput]\nmessage_matcher = \"Type == 'syslog'\"\npath = \"{}\"\n\
         use_framing = true\nflush_interval = 20\n",
        output.display()
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[tcp]);
    let sent = Command::new("logger")
        .args([
            "--rfc5424",
            "--tcp",
            "-n",
            "127.0.0.1",
            "-P",
            &tcp.to_string(),
        ])
        .args(["-t", "billing", "-p", "local3.warning", "--msgid", "ID47"])
        .args(["--sd-id", "origin@32473", "--sd-param", "ip=\"10.0.0.1\""])
        .arg("charge declined")
        .status()
        .expect("logger runs");
    assert!(sent.success());
    let sent = Command::new("logger")
        .args([
            "--rfc3164",
            "--udp",
            "-n",
            "127.0.0.1",
            "-P",
            &udp.to_string(),
        ])
        .args(["-t", "cron", "-p", "cron.info", "--id=4242"])
        .arg("job finished")
        .status()
        .expect("logger runs");
    assert!(sent.success());
    send_tcp(tcp, b"not syslog at all\n");
    wait_for(Duration::from_secs(20), "three syslog messages", || {
        messages(&output).len() >= 3
    });
    let all = messages(&output);

    let rfc5424 = with_payload(&all, "charge declined").expect("the RFC 5424 line");
    assert_eq!(rfc5424["type"], "syslog");
    assert_eq!(rfc5424["logger"], "billing");
    assert_eq!(rfc5424["severity"], 4, "warning");
    assert_eq!(field(rfc5424, "facility"), Some(&Value::from(19)), "local3");
    assert_eq!(field(rfc5424, "msgid"), Some(&Value::from("ID47")));
    assert_eq!(
        field(rfc5424, "sd.origin@32473.ip"),
        Some(&Value::from("10.0.0.1"))
    );
    assert!(field(rfc5424, "syslog_error").is_none());

    let rfc3164 = with_payload(&all, "job finished").expect("the RFC 3164 line");
    assert_eq!(rfc3164["logger"], "cron");
    assert_eq!(rfc3164["severity"], 6, "info");
    assert_eq!(rfc3164["pid"], 4242);
    assert_eq!(field(rfc3164, "facility"), Some(&Value::from(9)), "cron");

    let malformed = with_payload(&all, "not syslog at all").expect("the malformed line, kept");
    assert_eq!(malformed["type"], "syslog");
    assert!(field(malformed, "syslog_error").is_some(), "{malformed}");
    daemon.stop();
    assert_eq!(
        daemon.counter("decode_failures_total"),
        1,
        "{}",
        daemon.stderr()
    );
}

/// Runs `logger` with `args`, sending `stdin`'s lines (one message each, over one connection
/// for TCP).
fn logger(args: &[&str], stdin: &str) {
    use std::io::Write as _;
    let mut child = Command::new("logger")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("logger runs");
    let mut input = child.stdin.take().expect("logger's stdin");
    input.write_all(stdin.as_bytes()).expect("write to logger");
    drop(input);
    assert!(child.wait().expect("logger ends").success());
}

fn syslog_input_config(dir: &std::path::Path, tcp: u16, udp: u16) -> String {
    format!(
        "[hekad]\nstats_interval = 0\n\
         [syslog_tcp]\ntype = \"SyslogInput\"\naddress = \"127.0.0.1:{tcp}\"\n\
         max_message_size = 1024\n\
         [syslog_udp]\ntype = \"SyslogInput\"\naddress = \"127.0.0.1:{udp}\"\nprotocol = \"udp\"\n\
         [FileOutput]\nmessage_matcher = \"Type == 'syslog'\"\npath = \"{}\"\n\
         use_framing = true\nflush_interval = 20\n",
        dir.join("syslog.log").display()
    )
}

#[test]
fn syslog_input_reads_octet_counted_and_newline_framed_tcp_and_udp_from_logger() {
    if !logger_available() {
        eprintln!("skipped: util-linux logger is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (tcp, udp) = (free_port(), free_port());
    let mut daemon = Daemon::start(
        dir.path(),
        &syslog_input_config(dir.path(), tcp, udp),
        &[tcp],
    );
    let (tcp_port, udp_port) = (tcp.to_string(), udp.to_string());
    let to_tcp = ["-n", "127.0.0.1", "-P", &tcp_port, "--tcp"];
    // Two messages over one octet-counted connection, then newline framing on another.
    logger(
        &[
            &to_tcp[..],
            &["--rfc5424", "--octet-count", "-t", "api", "--msgid", "M1"],
        ]
        .concat(),
        "octet one\noctet two\n",
    );
    logger(
        &[&to_tcp[..], &["--rfc3164", "-t", "cron", "--id=77"]].concat(),
        "newline framed\n",
    );
    logger(
        &[
            "-n",
            "127.0.0.1",
            "-P",
            &udp_port,
            "--udp",
            "--rfc5424",
            "-t",
            "edge",
        ],
        "over udp\n",
    );
    // Octet counting keeps a newline inside a message; a count over the input's
    // max_message_size (1024) is skipped by its length and the frame after it is read.
    let inner = b"<13>1 - host app - - - first\nsecond";
    let mut stream = format!("{} ", inner.len()).into_bytes();
    stream.extend_from_slice(inner);
    stream.extend_from_slice(b"2000 ");
    stream.extend_from_slice(&[b'x'; 2000]);
    let after = b"<13>1 - host app - - - after the big one";
    stream.extend_from_slice(format!("{} ", after.len()).as_bytes());
    stream.extend_from_slice(after);
    send_tcp(tcp, &stream);

    let output = dir.path().join("syslog.log");
    wait_for(Duration::from_secs(20), "six syslog messages", || {
        messages(&output).len() >= 6
    });
    let all = messages(&output);
    for text in ["octet one", "octet two"] {
        let message = with_payload(&all, text).expect("an octet-counted message");
        assert_eq!(message["logger"], "api");
        assert_eq!(field(message, "msgid"), Some(&Value::from("M1")));
        assert!(field(message, "syslog_error").is_none(), "{message}");
    }
    let newline = with_payload(&all, "newline framed").expect("the newline-framed message");
    assert_eq!(
        (newline["logger"].clone(), newline["pid"].clone()),
        ("cron".into(), 77.into())
    );
    let datagram = with_payload(&all, "over udp").expect("the UDP message");
    assert_eq!(datagram["logger"], "edge");
    let kept = with_payload(&all, "first\nsecond").expect("one message with its newline");
    assert_eq!(kept["payload"], "first\nsecond");
    assert!(with_payload(&all, "after the big one").is_some());
    assert_eq!(all.len(), 6, "nothing else: {all:?}");
    daemon.stop();
    assert_eq!(daemon.counter("syslog_tcp.oversize_records_total"), 1);
    assert_eq!(daemon.counter("syslog_tcp.decode_failures_total"), 0);
}

#[test]
fn rsyslog_omfwd_forwards_to_syslog_input_over_octet_counted_tcp_and_udp() {
    use crate::bench_common::rsyslog::Rsyslog;
    let Some(rsyslog) = Rsyslog::find() else {
        eprintln!("skipped: rsyslog is not unpacked (scripts/install-rsyslog.sh)");
        return;
    };
    if !logger_available() {
        eprintln!("skipped: util-linux logger is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (tcp, udp, rsyslog_port) = (free_port(), free_port(), free_port());
    let mut daemon = Daemon::start(
        dir.path(),
        &syslog_input_config(dir.path(), tcp, udp),
        &[tcp],
    );
    // rsyslog reads lines on its own port and forwards each one twice: RFC 5424 with octet
    // counting over TCP, and the traditional (RFC 3164) format over UDP.
    let config = format!(
        "global(workDirectory=\"{dir}\")\n\
         module(load=\"imtcp\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{rsyslog_port}\" ruleset=\"forward\")\n\
         ruleset(name=\"forward\") {{\n\
           action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{tcp}\" protocol=\"tcp\"\n\
                  TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\")\n\
           action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{udp}\" protocol=\"udp\"\n\
                  template=\"RSYSLOG_TraditionalForwardFormat\")\n\
         }}\n",
        dir = dir.path().display()
    );
    let config_path = dir.path().join("rsyslog.conf");
    std::fs::write(&config_path, config).expect("write the rsyslog config");
    let mut forwarder = rsyslog
        .command(&config_path, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rsyslogd starts");
    wait_for(Duration::from_secs(20), "rsyslog's port", || {
        std::net::TcpStream::connect(("127.0.0.1", rsyslog_port)).is_ok()
    });
    let port = rsyslog_port.to_string();
    let lines: String = (0..20).map(|n| format!("relayed {n:02}\n")).collect();
    logger(
        &[
            "-n",
            "127.0.0.1",
            "-P",
            &port,
            "--tcp",
            "--rfc3164",
            "-t",
            "relay",
            "-p",
            "user.notice",
        ],
        &lines,
    );
    let output = dir.path().join("syslog.log");
    wait_for(Duration::from_secs(30), "40 relayed messages", || {
        messages(&output).len() >= 40
    });
    let _ = forwarder.kill();
    let _ = forwarder.wait();
    daemon.stop();
    let all = messages(&output);
    assert_eq!(all.len(), 40, "20 over TCP, 20 over UDP");
    for n in 0..20 {
        let text = format!("relayed {n:02}");
        let copies: Vec<&Value> = all
            .iter()
            .filter(|message| {
                message["payload"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&text))
            })
            .collect();
        assert_eq!(copies.len(), 2, "{text}: {all:?}");
        for message in copies {
            assert_eq!(message["logger"], "relay", "{message}");
            assert_eq!(message["severity"], 5, "notice: {message}");
            assert!(field(message, "syslog_error").is_none(), "{message}");
        }
    }
    assert_eq!(daemon.counter("syslog_tcp.records_total"), 20);
    assert_eq!(daemon.counter("syslog_udp.records_total"), 20);
}
