//! ESJsonEncoder, ESLogstashV0Encoder and SchemaInfluxLineEncoder through the daemon: numbered
//! messages sent with `gyges inject`, one FileOutput per encoder, every item checked.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::util::*;

const COUNT: i64 = 1000;
/// 2023-11-14T22:13:20Z, in nanoseconds; message `n` is `n` milliseconds later.
const BASE_NS: i64 = 1_700_000_000_000_000_000;

fn config(port: u16) -> String {
    format!(
        "[hekad]\nstats_interval = 0\n\
         [In]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n\
         [Es]\ntype = \"ESJsonEncoder\"\nindex = \"%{{Type}}-%{{%Y.%m.%d}}\"\n\
         es_index_from_timestamp = true\nid = \"%{{seq}}\"\n\
         fields = [\"Timestamp\", \"Payload\", \"DynamicFields\"]\n\
         [Logstash]\ntype = \"ESLogstashV0Encoder\"\nuse_message_type = true\n\
         [Influx]\ntype = \"SchemaInfluxLineEncoder\"\n\
         [Influx.config]\nname_prefix = \"m.\"\nskip_fields = \"seq\"\ntag_fields = \"Hostname\"\n\
         [EsOut]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"es.ndjson\"\n\
         encoder = \"Es\"\nflush_interval = 20\n\
         [LogstashOut]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\n\
         path = \"logstash.ndjson\"\nencoder = \"Logstash\"\nflush_interval = 20\n\
         [InfluxOut]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"influx.txt\"\n\
         encoder = \"Influx\"\nflush_interval = 20\n"
    )
}

fn lines_in(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

#[test]
fn each_encoder_writes_every_numbered_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut daemon = Daemon::start(dir.path(), &config(port), &[port]);
    let input = dir.path().join("messages.json");
    let messages: Vec<String> = (0..COUNT)
        .map(|n| {
            format!(
                r#"{{"type":"Web","hostname":"h1","timestamp":{},"payload":"line \"{n}\"\n","fields":[{{"name":"seq","value":[{n}]}},{{"name":"load","value":[0.5]}}]}}"#,
                BASE_NS + n * 1_000_000
            )
        })
        .collect();
    std::fs::write(&input, messages.join("\n")).expect("write messages");
    let sent = gyges()
        .args(["inject", "--addr", &format!("127.0.0.1:{port}")])
        .arg(&input)
        .output()
        .expect("run gyges inject");
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let (es, logstash, influx) = (
        dir.path().join("es.ndjson"),
        dir.path().join("logstash.ndjson"),
        dir.path().join("influx.txt"),
    );
    wait_for(Duration::from_secs(60), "every item in every file", || {
        lines_in(&es).len() >= 2 * COUNT as usize
            && lines_in(&logstash).len() >= 2 * COUNT as usize
            && lines_in(&influx).len() >= COUNT as usize
    });
    assert!(daemon.stop().success(), "{}", daemon.stderr());

    // ESJsonEncoder: an action naming the message's day and its seq as the id, then the document.
    let lines = lines_in(&es);
    assert_eq!(lines.len(), 2 * COUNT as usize);
    let mut ids = BTreeSet::new();
    for pair in lines.chunks(2) {
        let action: serde_json::Value = serde_json::from_str(&pair[0]).expect("action JSON");
        let document: serde_json::Value = serde_json::from_str(&pair[1]).expect("document JSON");
        assert_eq!(action["index"]["_index"], "web-2023.11.14", "{}", pair[0]);
        assert_eq!(action["index"]["_type"], "message");
        let seq = document["seq"].as_i64().expect("seq");
        assert_eq!(action["index"]["_id"], seq.to_string());
        assert_eq!(document["Payload"], format!("line \"{seq}\"\n"));
        assert_eq!(document["load"], 0.5);
        assert!(document["Timestamp"]
            .as_str()
            .is_some_and(|text| text.starts_with("2023-11-14T22:13:2")));
        ids.insert(seq);
    }
    assert_eq!(ids, (0..COUNT).collect::<BTreeSet<_>>());

    // ESLogstashV0Encoder: the v0 schema, the fields under @fields.
    let lines = lines_in(&logstash);
    let mut seqs = BTreeSet::new();
    for pair in lines.chunks(2) {
        let action: serde_json::Value = serde_json::from_str(&pair[0]).expect("action JSON");
        let document: serde_json::Value = serde_json::from_str(&pair[1]).expect("document JSON");
        assert!(action["index"]["_index"]
            .as_str()
            .is_some_and(|index| index.starts_with("logstash-")));
        assert_eq!(document["@type"], "Web");
        assert_eq!(document["@source_host"], "h1");
        seqs.insert(document["@fields"]["seq"].as_i64().expect("seq"));
    }
    assert_eq!(seqs, (0..COUNT).collect::<BTreeSet<_>>());

    // SchemaInfluxLineEncoder: one point per message (seq is skipped), its time in ms.
    let lines = lines_in(&influx);
    let mut times = BTreeSet::new();
    for line in &lines {
        let time = line
            .strip_prefix("m.load,Hostname=h1 value=0.500000 ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        times.insert(time.parse::<i64>().expect("a time"));
    }
    let expected: BTreeSet<i64> = (0..COUNT).map(|n| BASE_NS / 1_000_000 + n).collect();
    assert_eq!(times, expected);
}
