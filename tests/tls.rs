//! TLS on TcpInput and TcpOutput through the daemon: `openssl s_client` against a TLS
//! TcpInput (TLS 1.2 and 1.3, the chain and name verified by openssl), gyges → gyges over
//! mutual TLS with every numbered message arriving, a client without a certificate refused
//! and counted, and the startup errors for bad TLS options. Certificates are made at test time
//! with the `openssl` CLI (installed by `scripts/setup.sh`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::bench_common::pki::{make_pki, openssl_available};
use crate::util::*;

/// A test CA with a server certificate (for 127.0.0.1 and localhost) and a client
/// certificate, all signed by it, plus a key that matches neither certificate.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn show(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// Makes the test PKI (a CA, and `server`, `client` and `other` leaves) with the `openssl` CLI.
fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("a temporary directory");
    make_pki(dir.path(), &["server", "client", "other"]);
    Pki { dir }
}

/// A TLS TcpInput reading `splitter` records.
fn tls_input(name: &str, port: u16, pki: &Pki, splitter: &str, extra_tls: &str) -> String {
    format!(
        "[{name}]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\nsplitter = \"{splitter}\"\n\
         use_tls = true\n[{name}.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{extra_tls}",
        pki.show("server.pem"),
        pki.show("server.key")
    )
}

fn file_output(path: &Path) -> String {
    format!(
        "[FileOutput]\nmessage_matcher = \"TRUE\"\npath = \"{}\"\nencoder = \"ProtobufEncoder\"\n\
         use_framing = true\nflush_interval = 20\n",
        path.display()
    )
}

fn frames_in(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .map(|bytes| {
            read_frames(&bytes)
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `openssl s_client` against `port` with `input` on its stdin, verifying the server's
/// chain against the test CA and its IP; returns whether it succeeded and what it printed.
fn s_client(port: u16, pki: &Pki, extra: &[&str], input: &[u8]) -> (bool, String) {
    let connect = format!("127.0.0.1:{port}");
    let ca = pki.show("ca.pem");
    let mut args = vec![
        "s_client",
        "-connect",
        &connect,
        "-CAfile",
        &ca,
        "-verify_return_error",
        "-verify_ip",
        "127.0.0.1",
        "-no_ign_eof",
    ];
    args.extend(extra);
    let mut child = Command::new("openssl")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(input);
    // Give the records time to go before the end of input closes the connection.
    std::thread::sleep(Duration::from_millis(500));
    drop(stdin);
    let output = child.wait_with_output().expect("s_client ends");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn openssl_s_client_sends_lines_to_a_tls_tcp_input_over_tls_1_2_and_1_3() {
    if !openssl_available() {
        eprintln!("skipped: openssl is not installed (scripts/setup.sh installs it)");
        return;
    }
    let pki = pki();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let output = dir.path().join("out.log");
    let config = format!(
        "[hekad]\nstats_interval = 0\n{}{}",
        tls_input("secure", port, &pki, "TokenSplitter", ""),
        file_output(&output)
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    for (version, first) in [("-tls1_2", 0), ("-tls1_3", 100)] {
        let lines: String = (first..first + 100)
            .map(|n| format!("line-{n}\n"))
            .collect();
        let (ok, printed) = s_client(port, &pki, &[version], lines.as_bytes());
        assert!(
            ok,
            "s_client {version} failed:\n{printed}\n{}",
            daemon.stderr()
        );
        assert!(
            printed.contains("Verify return code: 0 (ok)"),
            "openssl verified gyges's chain and name:\n{printed}"
        );
        wait_for_or_explain(
            Duration::from_secs(20),
            &format!("the lines sent with {version}"),
            || frames_in(&output).len() >= first + 100,
            || daemon.stderr(),
        );
    }
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let payloads: Vec<String> = frames_in(&output)
        .iter()
        .map(|message| {
            String::from_utf8(payload_of(message).expect("a payload"))
                .unwrap()
                .trim_end()
                .to_string()
        })
        .collect();
    let expected: Vec<String> = (0..200).map(|n| format!("line-{n}")).collect();
    assert_eq!(payloads, expected, "every line once, in order");
    assert_eq!(
        daemon.counter("secure.connections_total"),
        3,
        "the probe and two clients"
    );
    assert_eq!(
        daemon.counter("secure.tls_handshake_failures_total"),
        0,
        "the start-up probe (no bytes) is not a failed handshake"
    );
}

/// The numbered lines `from..to`.
fn lines(from: usize, to: usize) -> String {
    (from..to).map(|n| format!("line-{n}\n")).collect()
}

#[test]
fn gyges_to_gyges_over_mutual_tls_delivers_every_numbered_message_once() {
    if !openssl_available() {
        eprintln!("skipped: openssl is not installed (scripts/setup.sh installs it)");
        return;
    }
    let pki = pki();
    let (receiver_dir, sender_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (receiver_port, sender_port) = (free_port(), free_port());
    let received = receiver_dir.path().join("received.log");
    let client_auth = format!(
        "client_auth = \"RequireAndVerifyClientCert\"\nclient_cafile = \"{}\"\nmin_version = \"TLS12\"\n",
        pki.show("ca.pem")
    );
    let receiver_config = format!(
        "[hekad]\nstats_interval = 0\n{}{}",
        tls_input(
            "from_relay",
            receiver_port,
            &pki,
            "HekaFramingSplitter",
            &client_auth
        ),
        file_output(&received)
    );
    let mut receiver = Daemon::start(receiver_dir.path(), &receiver_config, &[receiver_port]);
    let sender_config = format!(
        "[hekad]\nstats_interval = 0\n\
         [lines]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{sender_port}\"\nsplitter = \"TokenSplitter\"\n\
         [relay]\ntype = \"TcpOutput\"\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:{receiver_port}\"\n\
         use_tls = true\n[relay.tls]\nroot_cafile = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        pki.show("ca.pem"),
        pki.show("client.pem"),
        pki.show("client.key"),
    );
    let mut sender = Daemon::start(sender_dir.path(), &sender_config, &[sender_port]);
    const COUNT: usize = 20_000;
    for chunk in 0..4 {
        send_tcp(
            sender_port,
            lines(chunk * COUNT / 4, (chunk + 1) * COUNT / 4).as_bytes(),
        );
    }
    wait_for_or_explain(
        Duration::from_secs(60),
        "every message at the receiver",
        || frames_in(&received).len() >= COUNT,
        || {
            format!(
                "received {}\nsender:\n{}\nreceiver:\n{}",
                frames_in(&received).len(),
                sender.stderr(),
                receiver.stderr()
            )
        },
    );
    assert!(sender.stop().success(), "{}", sender.stderr());
    assert!(receiver.stop().success(), "{}", receiver.stderr());
    let mut seen: HashMap<String, u32> = HashMap::new();
    for message in frames_in(&received) {
        let payload = String::from_utf8(payload_of(&message).expect("a payload")).unwrap();
        *seen.entry(payload.trim_end().to_string()).or_default() += 1;
    }
    assert_eq!(seen.len(), COUNT, "every message arrived");
    assert!(seen.values().all(|&count| count == 1), "none twice");
    assert!((0..COUNT).all(|n| seen.contains_key(&format!("line-{n}"))));
    assert_eq!(
        receiver.counter("from_relay.tls_handshake_failures_total"),
        0
    );
    assert_eq!(sender.counter("relay.sent_total"), COUNT as u64);
}

#[test]
fn client_auth_refuses_a_client_without_a_certificate_and_counts_it() {
    if !openssl_available() {
        eprintln!("skipped: openssl is not installed (scripts/setup.sh installs it)");
        return;
    }
    let pki = pki();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let output = dir.path().join("out.log");
    let client_auth = format!(
        "client_auth = \"RequireAndVerifyClientCert\"\nclient_cafile = \"{}\"\n",
        pki.show("ca.pem")
    );
    let config = format!(
        "[hekad]\nstats_interval = 0\n{}{}",
        tls_input("secure", port, &pki, "TokenSplitter", &client_auth),
        file_output(&output)
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    // No certificate: refused (TLS 1.3 reports it after the client's Finished, so the client
    // may believe it connected; nothing it sends is read).
    let _ = s_client(port, &pki, &[], b"refused-line\n");
    // The same client with the CA's client certificate gets in.
    let (cert, key) = (pki.show("client.pem"), pki.show("client.key"));
    let (ok, printed) = s_client(
        port,
        &pki,
        &["-cert", &cert, "-key", &key],
        b"accepted-line\n",
    );
    assert!(ok, "{printed}\n{}", daemon.stderr());
    wait_for_or_explain(
        Duration::from_secs(20),
        "the accepted line",
        || !frames_in(&output).is_empty(),
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let payloads: Vec<Vec<u8>> = frames_in(&output)
        .iter()
        .filter_map(|message| payload_of(message))
        .collect();
    assert_eq!(payloads, vec![b"accepted-line\n".to_vec()]);
    assert_eq!(
        daemon.counter("secure.tls_handshake_failures_total"),
        1,
        "{}",
        daemon.stderr()
    );
    assert!(daemon.stderr().contains("TLS handshake failed"));
}

/// `gyges validate` on a config with `tls_lines` in a TLS TcpInput's section (or, with
/// `output`, a TLS TcpOutput's); returns the error it printed.
fn validate_error(pki: &Pki, tls_lines: &str, output: bool) -> String {
    let config = if output {
        format!(
            "[out]\ntype = \"TcpOutput\"\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:1\"\n\
             use_tls = true\n[out.tls]\n{tls_lines}"
        )
    } else {
        format!(
            "[secure]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:1\"\nuse_tls = true\n\
             [secure.tls]\n{tls_lines}"
        )
    };
    let path = pki.path("bad.toml");
    std::fs::write(&path, config).expect("write the config");
    let run = run_gyges(&["validate", "-c", path.to_str().expect("a UTF-8 path")]);
    assert_ne!(run.code, Some(0), "a bad TLS config is refused");
    assert!(run.stderr.contains("bad.toml"), "{}", run.stderr);
    run.stderr
}

#[test]
fn bad_tls_options_fail_at_startup_naming_the_file_the_section_and_the_key() {
    if !openssl_available() {
        eprintln!("skipped: openssl is not installed (scripts/setup.sh installs it)");
        return;
    }
    let pki = pki();
    let (server, server_key) = (pki.show("server.pem"), pki.show("server.key"));
    let missing = pki.show("missing.pem");
    let cases = [
        (
            format!("cert_file = \"{missing}\"\nkey_file = \"{server_key}\"\n"),
            "tls.cert_file",
            "missing.pem",
        ),
        (
            format!(
                "cert_file = \"{server}\"\nkey_file = \"{}\"\n",
                pki.show("other.key")
            ),
            "tls.key_file",
            "does not match",
        ),
        (
            format!(
                "cert_file = \"{server}\"\nkey_file = \"{server_key}\"\n\
                 client_auth = \"RequireAndVerifyClientCert\"\nclient_cafile = \"{missing}\"\n"
            ),
            "tls.client_cafile",
            "cannot read",
        ),
        (
            // A CA file that holds no certificate (a key).
            format!(
                "cert_file = \"{server}\"\nkey_file = \"{server_key}\"\n\
                 client_auth = \"RequireAndVerifyClientCert\"\nclient_cafile = \"{server_key}\"\n"
            ),
            "tls.client_cafile",
            "no PEM certificate",
        ),
        (
            format!(
                "cert_file = \"{server}\"\nkey_file = \"{server_key}\"\nmin_version = \"TLS99\"\n"
            ),
            "tls.min_version",
            "TLS99",
        ),
        (
            format!(
                "cert_file = \"{server}\"\nkey_file = \"{server_key}\"\n\
                 client_auth = \"RequireAndVerifyClientCert\"\n"
            ),
            "tls.client_auth",
            "client_cafile",
        ),
        (String::new(), "tls.cert_file", "certificate"),
    ];
    for (lines, key, words) in cases {
        let error = validate_error(&pki, &lines, false);
        assert!(error.contains("[secure]"), "{error}");
        assert!(error.contains(&format!("key `{key}`")), "{key}: {error}");
        assert!(error.contains(words), "{key}: {error}");
    }
    let error = validate_error(&pki, "", true);
    assert!(error.contains("key `tls.root_cafile`"), "{error}");
    let error = validate_error(&pki, &format!("root_cafile = \"{missing}\"\n"), true);
    assert!(
        error.contains("key `tls.root_cafile`") && error.contains("missing.pem"),
        "{error}"
    );
}

#[test]
fn a_tcp_output_refuses_a_receiver_whose_certificate_does_not_name_it() {
    if !openssl_available() {
        eprintln!("skipped: openssl is not installed (scripts/setup.sh installs it)");
        return;
    }
    let pki = pki();
    let (receiver_dir, sender_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (receiver_port, sender_port) = (free_port(), free_port());
    let received = receiver_dir.path().join("received.log");
    let receiver_config = format!(
        "[hekad]\nstats_interval = 0\n{}{}",
        tls_input("from_relay", receiver_port, &pki, "HekaFramingSplitter", ""),
        file_output(&received)
    );
    let mut receiver = Daemon::start(receiver_dir.path(), &receiver_config, &[receiver_port]);
    // The receiver's certificate names 127.0.0.1 and localhost, not this name.
    let sender_config = format!(
        "[hekad]\nstats_interval = 0\n\
         [lines]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{sender_port}\"\nsplitter = \"TokenSplitter\"\n\
         [relay]\ntype = \"TcpOutput\"\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:{receiver_port}\"\n\
         use_tls = true\n[relay.tls]\nroot_cafile = \"{}\"\nserver_name = \"aggregator.example.org\"\n",
        pki.show("ca.pem"),
    );
    let mut sender = Daemon::start(sender_dir.path(), &sender_config, &[sender_port]);
    send_tcp(sender_port, lines(0, 100).as_bytes());
    wait_for_or_explain(
        Duration::from_secs(30),
        "the sender to give up on the receiver's certificate",
        || sender.stderr().contains("TcpOutput TLS handshake failed"),
        || sender.stderr(),
    );
    assert!(sender.stop().success(), "{}", sender.stderr());
    assert!(receiver.stop().success(), "{}", receiver.stderr());
    assert!(
        frames_in(&received).is_empty(),
        "nothing reaches a receiver that is not verified"
    );
    assert!(sender.counter("relay.errors_total") >= 1);
    assert_eq!(sender.counter("relay.sent_total"), 0);
    assert!(
        receiver.counter("from_relay.tls_handshake_failures_total") >= 1,
        "the receiver saw the sender abort: {}",
        receiver.stderr()
    );
}

#[test]
fn acknowledged_durable_forwarding_works_over_tls() {
    if !openssl_available() {
        eprintln!("skipped: openssl is not installed (scripts/setup.sh installs it)");
        return;
    }
    let pki = pki();
    let (receiver_dir, sender_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (receiver_port, sender_port) = (free_port(), free_port());
    let received = receiver_dir.path().join("received.log");
    let receiver_config = format!(
        "[hekad]\nstats_interval = 0\n{}{}",
        tls_input("from_relay", receiver_port, &pki, "HekaFramingSplitter", ""),
        file_output(&received)
    );
    let mut receiver = Daemon::start(receiver_dir.path(), &receiver_config, &[receiver_port]);
    let sender_config = format!(
        "[hekad]\nstats_interval = 0\nbase_dir = \"data\"\n\
         [lines]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{sender_port}\"\nsplitter = \"TokenSplitter\"\n\
         [relay]\ntype = \"TcpOutput\"\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:{receiver_port}\"\n\
         use_buffering = true\nack = true\n\
         use_tls = true\n[relay.tls]\nroot_cafile = \"{}\"\n",
        pki.show("ca.pem"),
    );
    let mut sender = Daemon::start(sender_dir.path(), &sender_config, &[sender_port]);
    const COUNT: usize = 5_000;
    send_tcp(sender_port, lines(0, COUNT).as_bytes());
    wait_for_or_explain(
        Duration::from_secs(60),
        "every message at the receiver",
        || frames_in(&received).len() >= COUNT,
        || {
            format!(
                "sender:\n{}\nreceiver:\n{}",
                sender.stderr(),
                receiver.stderr()
            )
        },
    );
    assert!(sender.stop().success(), "{}", sender.stderr());
    assert!(receiver.stop().success(), "{}", receiver.stderr());
    assert_eq!(frames_in(&received).len(), COUNT);
    assert!(
        sender.counter("relay.acks_total") >= 1,
        "the receiver acknowledged over TLS: {}",
        sender.stderr()
    );
    assert!(
        !sender
            .stderr()
            .contains("did not answer the acknowledgement hello"),
        "{}",
        sender.stderr()
    );
    assert_eq!(sender.counter("relay.sent_total"), COUNT as u64);
}
