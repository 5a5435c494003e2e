//! HMAC-signed framing on outputs (`[name.signer]`) through the daemon: a FileOutput's frames
//! verify with the key, a gyges → gyges signed chain is accepted with the right key and
//! refused and counted with a wrong one, and a tampered frame is refused and counted; an output
//! with `message_signer` gets only what that signer signed.

use std::time::Duration;

use gyges::message::framing::{write_frame, HashFunction, Signer};

use crate::util::*;

fn line_input(name: &str, port: u16) -> String {
    format!(
        "[{name}]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\nsplitter = \"TokenSplitter\"\n"
    )
}

fn lines(count: usize) -> String {
    (0..count).map(|n| format!("line-{n}\n")).collect()
}

/// Whether no connection to local `port` is open or waiting to be read to its end
/// (`/proc/net/tcp`: nothing in ESTABLISHED or CLOSE_WAIT): the daemon listening there has
/// read every connection's bytes up to the peer's close.
fn connections_drained(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let local = format!(":{port:04X}");
    !table.lines().skip(1).any(|line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        columns.len() > 3 && columns[1].ends_with(&local) && matches!(columns[3], "01" | "08")
    })
}

/// The port in the config of a daemon's first `address`.
fn port_in(daemon: &Daemon, section: &str) -> u16 {
    let config = std::fs::read_to_string(&daemon.config).expect("the config");
    let at = config.find(&format!("[{section}]")).expect("the section");
    let address = config[at..]
        .lines()
        .find_map(|line| line.strip_prefix("address = \"127.0.0.1:"))
        .expect("an address");
    address.trim_end_matches('"').parse().expect("a port")
}

fn sender_port_of(daemon: &Daemon) -> u16 {
    port_in(daemon, "lines")
}

fn receiver_port_of(daemon: &Daemon) -> u16 {
    port_in(daemon, "signed_in")
}

fn frames_in(path: &std::path::Path) -> usize {
    std::fs::read(path)
        .map(|bytes| read_frames(&bytes).len())
        .unwrap_or(0)
}

const SIGNER: &str =
    "[relay.signer]\nname = \"ops\"\nhmac_hash = \"sha1\"\nhmac_key = \"right key\"\nversion = 2\n";

#[test]
fn a_file_output_with_a_signer_writes_frames_that_verify_with_its_key() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let output = dir.path().join("signed.log");
    let config = format!(
        "[hekad]\nstats_interval = 0\n{}\
         [relay]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"{}\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 20\n{SIGNER}",
        line_input("lines", port),
        output.display()
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    send_tcp(port, lines(500).as_bytes());
    wait_for_or_explain(
        Duration::from_secs(20),
        "500 frames",
        || frames_in(&output) >= 500,
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let bytes = std::fs::read(&output).expect("the output file");
    // split_frames asserts that no frame fails authentication.
    let records = split_frames(&bytes, &[("ops_2", b"right key")]);
    assert_eq!(records.len(), 500);
    assert!(records
        .iter()
        .all(|(_, signer)| signer.as_deref() == Some("ops")));
}

/// A receiver whose TcpInput knows `key` for `ops_2`, and a sender signing as `ops` version 2
/// with "right key"; sends `count` lines through the sender. Returns both daemons and the
/// receiver's output file.
fn signed_chain(
    key: &str,
    count: usize,
) -> (Daemon, Daemon, std::path::PathBuf, tempfile::TempDir) {
    let dirs = tempfile::tempdir().expect("a temporary directory");
    let (receiver_dir, sender_dir) = (dirs.path().join("receiver"), dirs.path().join("sender"));
    std::fs::create_dir_all(&receiver_dir).unwrap();
    std::fs::create_dir_all(&sender_dir).unwrap();
    let (receiver_port, sender_port) = (free_port(), free_port());
    let received = receiver_dir.join("received.log");
    let receiver_config = format!(
        "[hekad]\nstats_interval = 0\n\
         [signed_in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{receiver_port}\"\n\
         [signed_in.signer.ops_2]\nhmac_key = \"{key}\"\n\
         [FileOutput]\nmessage_matcher = \"TRUE\"\npath = \"{}\"\nencoder = \"ProtobufEncoder\"\n\
         use_framing = true\nflush_interval = 20\n",
        received.display()
    );
    let receiver = Daemon::start(&receiver_dir, &receiver_config, &[receiver_port]);
    let sender_config = format!(
        "[hekad]\nstats_interval = 0\n{}\
         [relay]\ntype = \"TcpOutput\"\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:{receiver_port}\"\n{SIGNER}",
        line_input("lines", sender_port)
    );
    let sender = Daemon::start(&sender_dir, &sender_config, &[sender_port]);
    send_tcp(sender_port, lines(count).as_bytes());
    (sender, receiver, received, dirs)
}

#[test]
fn a_signed_chain_is_accepted_with_the_right_key_and_refused_and_counted_with_a_wrong_one() {
    const COUNT: usize = 2000;
    let (mut sender, mut receiver, received, _dirs) = signed_chain("right key", COUNT);
    wait_for_or_explain(
        Duration::from_secs(30),
        "every signed message at the receiver",
        || frames_in(&received) >= COUNT,
        || format!("{}\n{}", sender.stderr(), receiver.stderr()),
    );
    assert!(sender.stop().success());
    assert!(receiver.stop().success());
    assert_eq!(frames_in(&received), COUNT);
    assert_eq!(receiver.counter("signed_in.auth_failures_total"), 0);

    let (mut sender, mut receiver, received, _dirs) = signed_chain("wrong key", COUNT);
    // Nothing arrives to wait for: wait instead until the sender has read its lines to their
    // end, stop it (it delivers its queue), then until the receiver has read that connection to
    // its end.
    wait_for(
        Duration::from_secs(30),
        "the sender to read every line",
        || connections_drained(sender_port_of(&sender)),
    );
    assert!(sender.stop().success(), "{}", sender.stderr());
    wait_for(
        Duration::from_secs(30),
        "the receiver to read the relay",
        || connections_drained(receiver_port_of(&receiver)),
    );
    assert_eq!(
        sender.counter("relay.sent_total"),
        COUNT as u64,
        "{}",
        sender.stderr()
    );
    assert!(receiver.stop().success());
    assert_eq!(
        frames_in(&received),
        0,
        "no frame with a wrong key gets through"
    );
    assert_eq!(
        receiver.counter("signed_in.auth_failures_total"),
        COUNT as u64,
        "{}",
        receiver.stderr()
    );
    assert_eq!(receiver.counter("signed_in.records_total"), 0);
}

#[test]
fn a_tampered_signed_frame_is_refused_and_counted() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let output = dir.path().join("out.log");
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [signed_in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n\
         [signed_in.signer.ops_2]\nhmac_key = \"right key\"\n\
         [FileOutput]\nmessage_matcher = \"TRUE\"\npath = \"{}\"\nencoder = \"ProtobufEncoder\"\n\
         use_framing = true\nflush_interval = 20\n",
        output.display()
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    let signer = Signer::new("ops", 2, HashFunction::Sha1, b"right key").expect("a signer");
    let mut stream = Vec::new();
    write_frame(
        &mut stream,
        &numbered_message(1, "good before"),
        Some(&signer),
    )
    .unwrap();
    let mut tampered = Vec::new();
    write_frame(
        &mut tampered,
        &numbered_message(2, "tampered"),
        Some(&signer),
    )
    .unwrap();
    // Flip one byte of the message (its last, inside the payload), after signing.
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    stream.extend(&tampered);
    write_frame(
        &mut stream,
        &numbered_message(3, "good after"),
        Some(&signer),
    )
    .unwrap();
    send_tcp(port, &stream);
    wait_for_or_explain(
        Duration::from_secs(20),
        "the two good frames",
        || frames_in(&output) >= 2,
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let bytes = std::fs::read(&output).expect("the output file");
    let sequences: Vec<i64> = read_frames(&bytes)
        .into_iter()
        .filter_map(sequence_of)
        .collect();
    assert_eq!(sequences, vec![1, 3], "the tampered frame is dropped");
    assert_eq!(daemon.counter("signed_in.auth_failures_total"), 1);
}

#[test]
fn a_signer_without_framing_or_with_a_bad_hash_fails_at_startup() {
    let cases = [
        (
            "[relay]\ntype = \"FileOutput\"\npath = \"x\"\nuse_framing = false\n\
             [relay.signer]\nname = \"ops\"\nhmac_key = \"k\"\n",
            "key `signer`",
        ),
        (
            "[relay]\ntype = \"TcpOutput\"\naddress = \"127.0.0.1:1\"\n\
             [relay.signer]\nname = \"ops\"\nhmac_key = \"k\"\nhmac_hash = \"sha256\"\n",
            "key `signer.hmac_hash`",
        ),
        (
            // A splitter's key that contradicts the input's: the splitter section is named.
            "[in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:1\"\nsplitter = \"relay\"\n\
             [in.signer.ops_1]\nhmac_key = \"one\"\n\
             [relay]\ntype = \"HekaFramingSplitter\"\n\
             [relay.signer.ops_1]\nhmac_key = \"two\"\n",
            "key `signer`",
        ),
    ];
    for (config, key) in cases {
        let file = temp_file(config.as_bytes());
        let run = run_gyges(&["validate", "-c", file.path().to_str().unwrap()]);
        assert_ne!(run.code, Some(0), "{config}");
        assert!(run.stderr.contains("[relay]"), "{}", run.stderr);
        assert!(run.stderr.contains(key), "{key}: {}", run.stderr);
    }
}

/// `message_signer` on an output, Heka's meaning: only messages whose frame the input verified
/// as signed by that signer reach it. Unsigned messages and other signers' go elsewhere.
#[test]
fn an_output_with_message_signer_gets_only_that_signers_messages() {
    message_signer_routes(
        "[signed_in.signer.ops_1]\nhmac_key = \"ops key\"\n\
         [signed_in.signer.dev_1]\nhmac_key = \"dev key\"\n",
    );
}

/// Heka's docs put the keys in the HekaFramingSplitter's section: they verify as well, beside
/// the input's own.
#[test]
fn signer_tables_in_the_splitter_section_join_the_inputs_keys() {
    message_signer_routes(
        "splitter = \"HekaFramingSplitter\"\n\
         [signed_in.signer.dev_1]\nhmac_key = \"dev key\"\n\
         [HekaFramingSplitter]\n\
         [HekaFramingSplitter.signer.ops_1]\nhmac_key = \"ops key\"\n",
    );
}

/// Sends frames signed by `ops`, by `dev` and unsigned to an input whose keys `keys` gives;
/// an output with `message_signer = "ops"` must get exactly the ops-signed ones.
fn message_signer_routes(keys: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let (ops_path, all_path) = (dir.path().join("ops.log"), dir.path().join("all.log"));
    let file = |name: &str, path: &std::path::Path, extra: &str| {
        format!(
            "[{name}]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"{}\"\n\
             use_framing = true\nflush_interval = 20\n{extra}",
            path.display()
        )
    };
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [signed_in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n{keys}{}{}",
        file("ops_only", &ops_path, "message_signer = \"ops\"\n"),
        file("all", &all_path, "")
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    let ops = Signer::new("ops", 1, HashFunction::Md5, b"ops key").expect("a signer");
    let dev = Signer::new("dev", 1, HashFunction::Sha1, b"dev key").expect("a signer");
    let mut stream = Vec::new();
    for sequence in 0..60 {
        let message = numbered_message(sequence, "signed or not");
        let signer = match sequence % 3 {
            0 => Some(&ops),
            1 => Some(&dev),
            _ => None,
        };
        write_frame(&mut stream, &message, signer).expect("a frame");
    }
    send_tcp(port, &stream);
    wait_for_or_explain(
        Duration::from_secs(20),
        "60 frames in the unfiltered output",
        || frames_in(&all_path) >= 60,
        || daemon.stderr(),
    );
    daemon.stop();
    let bytes = std::fs::read(&ops_path).expect("the message_signer output");
    let mut sequences: Vec<i64> = read_frames(&bytes)
        .into_iter()
        .filter_map(sequence_of)
        .collect();
    sequences.sort_unstable();
    let expected: Vec<i64> = (0..60).filter(|sequence| sequence % 3 == 0).collect();
    assert_eq!(sequences, expected, "only the ops-signed messages");
    assert_eq!(frames_in(&all_path), 60);
    assert_eq!(daemon.counter("signed_in.auth_failures_total"), 0);
}

#[test]
fn an_empty_message_signer_names_its_key() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[out]\ntype = \"LogOutput\"\nmessage_matcher = \"TRUE\"\nmessage_signer = \"\"\n",
    )
    .expect("write the config");
    let run = run_gyges(&["validate", "-c", config.to_str().expect("a UTF-8 path")]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("[out]") && run.stderr.contains("message_signer"),
        "{}",
        run.stderr
    );
}
