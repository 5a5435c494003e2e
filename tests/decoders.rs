//! The config-driven decoders through the daemon: lines sent to a TcpInput are decoded by
//! PayloadRegexDecoder, ScribbleDecoder, MultiDecoder and PayloadJsonDecoder, written by a
//! FileOutput, and read back with `gyges cat`.

use std::time::Duration;

use serde_json::Value;

use crate::util::*;

/// An nginx/apache combined access log regex, as Heka's docs write one.
const ACCESS_REGEX: &str = r#"^(?P<RemoteIP>\S+) \S+ (?P<User>\S+) \[(?P<Timestamp>[^\]]+)\] "(?P<Method>[A-Z]+) (?P<Url>[^\s]+)[^"]*" (?P<StatusCode>\d{3}) (?P<RequestSize>\d+)"#;

/// Starts a daemon whose TcpInput decodes newline-split lines with `decoder` (defined in
/// `sections`) and writes every message to a framed file; returns the daemon, the input's
/// port and the file.
fn start(
    dir: &std::path::Path,
    decoder: &str,
    sections: &str,
) -> (Daemon, u16, std::path::PathBuf) {
    let port = free_port();
    let output = dir.join("out.log");
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [tcp_in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n\
         splitter = \"TokenSplitter\"\ndecoder = \"{decoder}\"\n\
         {sections}\n\
         [FileOutput]\nmessage_matcher = \"TRUE\"\npath = \"{}\"\n\
         use_framing = true\nflush_interval = 20\n",
        output.display()
    );
    let daemon = Daemon::start(dir, &config, &[port]);
    (daemon, port, output)
}

fn with_payload<'a>(messages: &'a [Value], text: &str) -> Option<&'a Value> {
    messages.iter().find(|message| {
        message["payload"]
            .as_str()
            .is_some_and(|payload| payload.contains(text))
    })
}

fn representation<'a>(message: &'a Value, name: &str) -> Option<&'a str> {
    let fields = message["fields"].as_array()?;
    let field = fields.iter().find(|field| field["name"] == name)?;
    field["representation"].as_str()
}

#[test]
fn payload_regex_decoder_turns_access_lines_into_fields() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sections = format!(
        "[access]\ntype = \"PayloadRegexDecoder\"\nmatch_regex = '{ACCESS_REGEX}'\n\
         timestamp_layout = \"02/Jan/2006:15:04:05 -0700\"\nlog_errors = true\n\
         [access.severity_map]\nGET = 6\n\
         [access.message_fields]\nType = \"nginx.access\"\nUrl|uri = \"%Url%\"\n\
         Status = \"%StatusCode%\"\nRemoteIP|ipv4 = \"%RemoteIP%\"\nRequestSize|B = \"%RequestSize%\"\n"
    );
    let (mut daemon, port, output) = start(dir.path(), "access", &sections);
    send_tcp(
        port,
        b"10.1.2.3 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326\n\
          not an access line\n\
          192.168.0.9 - - [03/Dec/2026:12:00:00 +0100] \"POST /api?x=1 HTTP/1.1\" 404 17\n",
    );
    wait_for(Duration::from_secs(20), "two decoded messages", || {
        messages(&output).len() >= 2
    });
    let all = messages(&output);
    let first = with_payload(&all, "apache_pb.gif").expect("the first access line");
    assert_eq!(first["type"], "nginx.access");
    assert_eq!(first["logger"], "tcp_in", "kept from the input");
    assert_eq!(first["timestamp"], 971_211_336_000_000_000_i64);
    assert_eq!(field(first, "Url"), Some(&Value::from("/apache_pb.gif")));
    assert_eq!(representation(first, "Url"), Some("uri"));
    assert_eq!(field(first, "Status"), Some(&Value::from("200")));
    assert_eq!(representation(first, "RemoteIP"), Some("ipv4"));
    assert_eq!(field(first, "RequestSize"), Some(&Value::from("2326")));
    assert!(
        field(first, "User").is_none(),
        "a capture no entry names is not a field"
    );
    let second = with_payload(&all, "/api?x=1").expect("the second access line");
    assert_eq!(second["timestamp"], 1_796_295_600_000_000_000_i64);
    assert_eq!(field(second, "Status"), Some(&Value::from("404")));
    daemon.stop();
    assert_eq!(all.len(), 2, "the line that does not match is not sent on");
    assert_eq!(
        daemon.counter("decode_failures_total"),
        1,
        "{}",
        daemon.stderr()
    );
}
