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

#[test]
fn multi_decoder_chains_regex_and_scribble_and_falls_back_first_wins() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sections = format!(
        "[chain]\ntype = \"MultiDecoder\"\nsubs = [\"either\", \"tag\"]\ncascade_strategy = \"all\"\n\
         log_sub_errors = true\n\
         [either]\ntype = \"MultiDecoder\"\nsubs = [\"access\", \"kv\"]\ncascade_strategy = \"first-wins\"\n\
         [access]\ntype = \"PayloadRegexDecoder\"\nmatch_regex = '{ACCESS_REGEX}'\n\
         timestamp_layout = \"02/Jan/2006:15:04:05 -0700\"\n\
         [access.message_fields]\nType = \"nginx.access\"\nUrl|uri = \"%Url%\"\n\
         [kv]\ntype = \"PayloadRegexDecoder\"\nmatch_regex = '^(?P<key>\\w+)=(?P<value>\\w+)\\s*$'\n\
         [kv.message_fields]\nType = \"kv\"\n\"%key%\" = \"%value%\"\nkey = \"%key%\"\n\
         [tag]\ntype = \"ScribbleDecoder\"\n[tag.message_fields]\nenv = \"prod\"\nLogger = \"edge\"\n"
    );
    let (mut daemon, port, output) = start(dir.path(), "chain", &sections);
    send_tcp(
        port,
        b"10.1.2.3 - frank [10/Oct/2000:13:55:36 -0700] \"GET /a.gif HTTP/1.0\" 200 2326\n\
          color=blue\n\
          neither one\n",
    );
    wait_for(Duration::from_secs(20), "three messages", || {
        messages(&output).len() >= 3
    });
    let all = messages(&output);
    let access = with_payload(&all, "/a.gif").expect("the access line");
    assert_eq!(access["type"], "nginx.access");
    assert_eq!(
        access["logger"], "edge",
        "set by the ScribbleDecoder after the regex"
    );
    assert_eq!(field(access, "Url"), Some(&Value::from("/a.gif")));
    assert_eq!(field(access, "env"), Some(&Value::from("prod")));
    let kv = with_payload(&all, "color=blue").expect("the key=value line");
    assert_eq!(kv["type"], "kv");
    assert_eq!(field(kv, "key"), Some(&Value::from("color")));
    assert_eq!(field(kv, "env"), Some(&Value::from("prod")));
    // Neither regex matches, the scribble still tags it: the chain succeeded.
    let neither = with_payload(&all, "neither one").expect("the line neither regex reads");
    assert_eq!(neither["type"], "tcp_in");
    assert_eq!(field(neither, "env"), Some(&Value::from("prod")));
    daemon.stop();
    assert_eq!(
        daemon.counter("decode_failures_total"),
        0,
        "{}",
        daemon.stderr()
    );
}

#[test]
fn scribble_decoder_alone_tags_every_line() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sections = "[tag]\ntype = \"ScribbleDecoder\"\n[tag.message_fields]\n\
                    Type = \"tagged\"\nSeverity = \"3\"\ndc|name = \"eu-1\"\n";
    let (mut daemon, port, output) = start(dir.path(), "tag", sections);
    send_tcp(port, b"one\ntwo\n");
    wait_for(Duration::from_secs(20), "two messages", || {
        messages(&output).len() >= 2
    });
    for message in messages(&output) {
        assert_eq!(message["type"], "tagged");
        assert_eq!(message["severity"], 3);
        assert_eq!(field(&message, "dc"), Some(&Value::from("eu-1")));
        assert_eq!(representation(&message, "dc"), Some("name"));
    }
    daemon.stop();
}

#[test]
fn payload_json_decoder_maps_paths_to_fields() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sections = "[json]\ntype = \"PayloadJsonDecoder\"\n\
                    timestamp_layout = \"2006-01-02 15:04:05\"\n\
                    timestamp_location = \"America/Los_Angeles\"\n\
                    [json.json_map]\nTimestamp = \"$.time\"\nSeverity = \"$.level\"\n\
                    Url = \"$.request.url\"\nStatus = \"$.request.status\"\n\
                    [json.severity_map]\nerror = 3\n\
                    [json.message_fields]\nType = \"app\"\nUrl|uri = \"%Url%\"\nStatus = \"%Status%\"\n";
    let (mut daemon, port, output) = start(dir.path(), "json", sections);
    send_tcp(
        port,
        b"{\"time\":\"2024-01-15 09:30:00\",\"level\":\"error\",\"request\":{\"url\":\"/y\",\"status\":500}}\n\
          not json\n",
    );
    wait_for(Duration::from_secs(20), "one message", || {
        !messages(&output).is_empty()
    });
    daemon.stop();
    let all = messages(&output);
    assert_eq!(all.len(), 1, "the line that is not JSON is not sent on");
    let message = &all[0];
    assert_eq!(message["type"], "app");
    assert_eq!(message["severity"], 3);
    // 09:30 in Los Angeles in January is 17:30 UTC.
    assert_eq!(message["timestamp"], 1_705_339_800_000_000_000_i64);
    assert_eq!(field(message, "Url"), Some(&Value::from("/y")));
    assert_eq!(representation(message, "Url"), Some("uri"));
    assert_eq!(field(message, "Status"), Some(&Value::from("500")));
    assert_eq!(
        daemon.counter("decode_failures_total"),
        1,
        "{}",
        daemon.stderr()
    );
}

#[test]
fn a_line_no_regex_matches_is_sent_on_as_it_is_with_send_decode_failures() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let output = dir.path().join("out.log");
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [tcp_in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n\
         splitter = \"TokenSplitter\"\ndecoder = \"kv\"\nsend_decode_failures = true\n\
         [kv]\ntype = \"PayloadRegexDecoder\"\nmatch_regex = '^(?P<key>\\w+)=(?P<value>\\w+)'\n\
         [kv.message_fields]\nType = \"kv\"\n\
         [FileOutput]\nmessage_matcher = \"TRUE\"\npath = \"{}\"\n\
         use_framing = true\nflush_interval = 20\n",
        output.display()
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    send_tcp(port, b"a=b\n!!! not key value\n");
    wait_for(Duration::from_secs(20), "two messages", || {
        messages(&output).len() >= 2
    });
    daemon.stop();
    let all = messages(&output);
    assert_eq!(with_payload(&all, "a=b").expect("decoded")["type"], "kv");
    let failed = with_payload(&all, "not key value").expect("sent on as it is");
    assert_eq!(failed["type"], "tcp_in");
    assert!(
        failed["fields"].as_array().is_none_or(Vec::is_empty),
        "{failed}"
    );
    assert_eq!(
        daemon.counter("decode_failures_total"),
        1,
        "{}",
        daemon.stderr()
    );
}
