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

/// The messages of a framed output file, as `gyges cat` prints them.
fn messages(path: &std::path::Path) -> Vec<Value> {
    let run = run_gyges(&["cat", path.to_str().expect("a UTF-8 path")]);
    run.stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn field<'a>(message: &'a Value, name: &str) -> Option<&'a Value> {
    let fields = message.get("fields")?.as_array()?;
    let field = fields.iter().find(|field| field["name"] == name)?;
    field["value"].as_array()?.first()
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
