//! SmtpOutput through the daemon, against an SMTP server on loopback written here: it speaks
//! RFC 5321 (EHLO, AUTH PLAIN, MAIL, RCPT, DATA with dot-termination, QUIT), records every mail
//! and can refuse on purpose. Each message becomes a mail (or a gathered mail with
//! `send_interval`); a server that is down, answers 451 or refuses with 550 is retried,
//! dropped or counted as the delivery class says. With a test CA (made by the `openssl` CLI),
//! the server also speaks TLS: `STARTTLS` after `EHLO`, or TLS from the first byte (SMTPS).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::bench_common::pki::{make_pki, openssl_available};
use crate::util::*;

/// One mail as the server took it.
#[derive(Debug, Clone)]
struct Received {
    from: String,
    to: Vec<String>,
    data: String,
    /// It came over TLS.
    encrypted: bool,
}

impl Received {
    /// The body, base64-decoded.
    fn body(&self) -> String {
        let (_, encoded) = self
            .data
            .split_once("\r\n\r\n")
            .expect("headers, then a body");
        let joined: String = encoded.split("\r\n").collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(joined)
            .expect("a base64 body");
        String::from_utf8(bytes).expect("UTF-8")
    }

    fn header(&self, name: &str) -> Option<String> {
        let (head, _) = self.data.split_once("\r\n\r\n")?;
        head.split("\r\n")
            .find_map(|line| line.strip_prefix(&format!("{name}: ")).map(str::to_string))
    }
}

/// How the server behaves.
#[derive(Default)]
struct Faults {
    /// DATA answered 451 this many more times.
    data_451: AtomicUsize,
    /// RCPT TO answered 550 for this recipient.
    refuse: Option<String>,
    /// AUTH PLAIN token the server requires (`\0user\0password`).
    plain: Option<String>,
    /// The server's TLS: offered as `STARTTLS`, or from the first byte with `implicit`.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS from the first byte (SMTPS).
    implicit: bool,
}

/// The server's side of a test PKI: its certificate (for 127.0.0.1 and localhost) and key.
fn server_tls(pki: &Path) -> Arc<rustls::ServerConfig> {
    let chain = CertificateDer::pem_file_iter(pki.join("server.pem"))
        .expect("server.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates");
    let key = PrivateKeyDer::from_pem_file(pki.join("server.key")).expect("server.key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the server's certificate and key");
    Arc::new(config)
}

/// The server's connection: plain, or TLS after `STARTTLS` or from the start.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Conn {
    fn encrypt(stream: TcpStream, config: &Arc<rustls::ServerConfig>) -> Conn {
        let connection = rustls::ServerConnection::new(config.clone()).expect("a TLS session");
        Conn::Tls(Box::new(rustls::StreamOwned::new(connection, stream)))
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(stream) => stream.read(buf),
            Conn::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(stream) => stream.write(buf),
            Conn::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(stream) => stream.flush(),
            Conn::Tls(stream) => stream.flush(),
        }
    }
}

struct SmtpServer {
    mails: Arc<Mutex<Vec<Received>>>,
}

impl SmtpServer {
    fn start(port: u16, faults: Faults) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the SMTP port");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let (shared, faults) = (mails.clone(), Arc::new(faults));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (mails, faults) = (shared.clone(), faults.clone());
                std::thread::spawn(move || serve(stream, &mails, &faults));
            }
        });
        SmtpServer { mails }
    }

    fn mails(&self) -> Vec<Received> {
        self.mails.lock().expect("the mail list").clone()
    }
}

fn serve(stream: TcpStream, mails: &Mutex<Vec<Received>>, faults: &Faults) {
    let conn = match (&faults.tls, faults.implicit) {
        (Some(config), true) => Conn::encrypt(stream, config),
        _ => Conn::Plain(stream),
    };
    let mut reader = BufReader::new(conn);
    let say = |reader: &mut BufReader<Conn>, line: &str| {
        let conn = reader.get_mut();
        conn.write_all(format!("{line}\r\n").as_bytes()).is_ok() && conn.flush().is_ok()
    };
    say(&mut reader, "220 test.local ESMTP ready");
    let (mut from, mut to, mut authed) = (String::new(), Vec::new(), faults.plain.is_none());
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end_matches(['\r', '\n']).to_string();
        assert!(
            line.ends_with("\r\n"),
            "every command line ends with CRLF: {line:?}"
        );
        let upper = command.to_ascii_uppercase();
        let encrypted = matches!(reader.get_ref(), Conn::Tls(_));
        let offer_starttls = faults.tls.is_some() && !encrypted;
        if upper.starts_with("EHLO ") {
            say(&mut reader, "250-test.local");
            if offer_starttls {
                say(&mut reader, "250-STARTTLS");
            }
            say(&mut reader, "250 AUTH PLAIN CRAM-MD5");
        } else if upper == "STARTTLS" && offer_starttls {
            say(&mut reader, "220 go ahead");
            assert!(
                reader.buffer().is_empty(),
                "nothing pipelined after STARTTLS"
            );
            let Conn::Plain(stream) = reader.into_inner() else {
                return;
            };
            let config = faults.tls.as_ref().expect("offered only with a config");
            reader = BufReader::new(Conn::encrypt(stream, config));
            // RFC 3207: the client forgets what it knew and greets again.
            (from, to, authed) = (String::new(), Vec::new(), faults.plain.is_none());
        } else if faults.tls.is_some() && !encrypted && !upper.starts_with("QUIT") {
            say(&mut reader, "530 5.7.0 must issue a STARTTLS command first");
        } else if let Some(token) = command.strip_prefix("AUTH PLAIN ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token)
                .unwrap_or_default();
            authed = faults.plain.as_deref().map(str::as_bytes) == Some(decoded.as_slice());
            say(
                &mut reader,
                if authed {
                    "235 ok"
                } else {
                    "535 bad credentials"
                },
            );
        } else if upper.starts_with("MAIL FROM:") {
            if !authed {
                say(&mut reader, "530 authentication required");
                continue;
            }
            from = command[10..].trim_matches(['<', '>']).to_string();
            to.clear();
            say(&mut reader, "250 ok");
        } else if upper.starts_with("RCPT TO:") {
            let address = command[8..].trim_matches(['<', '>']).to_string();
            if faults.refuse.as_deref() == Some(address.as_str()) {
                say(&mut reader, "550 5.1.1 no such user");
                continue;
            }
            to.push(address);
            say(&mut reader, "250 ok");
        } else if upper == "DATA" {
            if faults.data_451.load(Ordering::SeqCst) > 0 {
                faults.data_451.fetch_sub(1, Ordering::SeqCst);
                say(&mut reader, "451 try again later");
                continue;
            }
            say(&mut reader, "354 go on");
            let mut data = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            mails.lock().expect("the mail list").push(Received {
                from: from.clone(),
                to: to.clone(),
                data,
                encrypted,
            });
            say(&mut reader, "250 queued");
        } else if upper == "QUIT" {
            say(&mut reader, "221 bye");
            return;
        } else {
            say(&mut reader, "502 unknown command");
        }
    }
}

fn config(port: u16, smtp_port: u16, extra: &str) -> String {
    format!(
        "[hekad]\nstats_interval = 0\n\
         [lines]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\nsplitter = \"TokenSplitter\"\n\
         [alerts]\ntype = \"SmtpOutput\"\nmessage_matcher = \"TRUE\"\n\
         send_from = \"gyges@example.com\"\nsend_to = [\"ops@example.com\", \"oncall@example.com\"]\n\
         subject = \"disk alert\"\nhost = \"127.0.0.1:{smtp_port}\"\n{extra}"
    )
}

fn lines(count: usize) -> String {
    (0..count)
        .map(|number| format!("alert {number}\n"))
        .collect()
}

#[test]
fn each_message_is_a_mail_with_its_headers_envelope_and_body() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, smtp_port) = (free_port(), free_port());
    let faults = Faults {
        plain: Some("\0mailer\0s3cret".into()),
        ..Faults::default()
    };
    let server = SmtpServer::start(smtp_port, faults);
    let auth = "auth = \"Plain\"\nuser = \"mailer\"\npassword = \"s3cret\"\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, smtp_port, auth), &[port]);
    send_tcp(port, lines(20).as_bytes());
    wait_for_or_explain(
        Duration::from_secs(20),
        "20 mails",
        || server.mails().len() >= 20,
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let mails = server.mails();
    assert_eq!(mails.len(), 20);
    let mut bodies: Vec<String> = mails.iter().map(Received::body).collect();
    bodies.sort_by_key(|body| body[6..].trim().parse::<usize>().unwrap_or(usize::MAX));
    // TokenSplitter keeps the line's newline; PayloadEncoder appends one (append_newlines).
    let expected: Vec<String> = (0..20)
        .map(|number| format!("alert {number}\n\n"))
        .collect();
    assert_eq!(bodies, expected);
    let mail = &mails[0];
    assert_eq!(mail.from, "gyges@example.com");
    assert_eq!(mail.to, ["ops@example.com", "oncall@example.com"]);
    assert_eq!(mail.header("Subject").as_deref(), Some("disk alert"));
    assert_eq!(mail.header("From").as_deref(), Some("gyges@example.com"));
    assert_eq!(
        mail.header("To").as_deref(),
        Some("ops@example.com, oncall@example.com")
    );
    assert!(mail
        .header("Date")
        .is_some_and(|date| date.ends_with("+0000")));
    assert_eq!(daemon.counter("alerts.sent_total"), 20);
}

#[test]
fn send_interval_gathers_what_arrives_within_it_into_one_mail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, smtp_port) = (free_port(), free_port());
    let server = SmtpServer::start(smtp_port, Faults::default());
    let extra = "send_interval = 2\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, smtp_port, extra), &[port]);
    send_tcp(port, b"first\n");
    wait_for(Duration::from_secs(10), "the first mail", || {
        server.mails().len() == 1
    });
    send_tcp(port, lines(10).as_bytes());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.mails().len(), 1, "the interval has not passed");
    wait_for(Duration::from_secs(10), "the gathered mail", || {
        server.mails().len() == 2
    });
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let mails = server.mails();
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].body(), "first\n\n");
    let encodings: Vec<String> = (0..10)
        .map(|number| format!("alert {number}\n\n"))
        .collect();
    assert_eq!(mails[1].body(), encodings.join("\r\n\r\n"));
    assert_eq!(daemon.counter("alerts.sent_total"), 11);
}

#[test]
fn memory_waits_for_a_server_that_is_down_or_busy_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, smtp_port) = (free_port(), free_port());
    let mut daemon = Daemon::start(dir.path(), &config(port, smtp_port, ""), &[port]);
    send_tcp(port, lines(5).as_bytes());
    std::thread::sleep(Duration::from_millis(1500));
    let faults = Faults::default();
    faults.data_451.store(2, Ordering::SeqCst);
    let server = SmtpServer::start(smtp_port, faults);
    wait_for_or_explain(
        Duration::from_secs(60),
        "5 mails once the server is up",
        || server.mails().len() >= 5,
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(server.mails().len(), 5);
    assert_eq!(daemon.counter("alerts.sent_total"), 5);
    assert_eq!(daemon.counter("alerts.dropped_total"), 0);
    assert!(
        daemon.counter("alerts.retries_total") >= 2,
        "{}",
        daemon.stderr()
    );
    assert!(
        daemon.stderr().contains("cannot send the mail"),
        "{}",
        daemon.stderr()
    );
}

#[test]
fn best_effort_drops_and_counts_and_a_refusal_is_counted_as_rejected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, smtp_port) = (free_port(), free_port());
    let extra = "delivery = \"best_effort\"\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, smtp_port, extra), &[port]);
    send_tcp(port, lines(7).as_bytes());
    // Nothing listens: each mail fails at connect and is dropped at once.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(daemon.counter("alerts.dropped_total"), 7);
    assert_eq!(daemon.counter("alerts.sent_total"), 0);

    let dir = tempfile::tempdir().expect("temp dir");
    let faults = Faults {
        refuse: Some("oncall@example.com".into()),
        ..Faults::default()
    };
    let server = SmtpServer::start(smtp_port, faults);
    let mut daemon = Daemon::start(dir.path(), &config(port, smtp_port, ""), &[port]);
    send_tcp(port, lines(3).as_bytes());
    send_tcp(port, b"after\n");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(server.mails().len(), 0);
    assert_eq!(
        daemon.counter("alerts.rejected_total"),
        4,
        "{}",
        daemon.stderr()
    );
    assert!(daemon.stderr().contains("refused the mail for good"));
}

/// A test CA and a server certificate for 127.0.0.1 and localhost; `None` (and a note) when
/// the `openssl` CLI is missing.
fn test_pki() -> Option<tempfile::TempDir> {
    if !openssl_available() {
        eprintln!("skipped: openssl is not installed (scripts/setup.sh installs it)");
        return None;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    make_pki(dir.path(), &["server"]);
    Some(dir)
}

#[test]
fn starttls_upgrades_verifies_the_server_and_only_then_authenticates() {
    let Some(pki) = test_pki() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, smtp_port) = (free_port(), free_port());
    let faults = Faults {
        plain: Some("\0mailer\0s3cret".into()),
        tls: Some(server_tls(pki.path())),
        ..Faults::default()
    };
    let server = SmtpServer::start(smtp_port, faults);
    let extra = format!(
        "auth = \"Plain\"\nuser = \"mailer\"\npassword = \"s3cret\"\n\
         [alerts.tls]\nroot_cafile = \"{}\"\n",
        pki.path().join("ca.pem").display()
    );
    let mut daemon = Daemon::start(dir.path(), &config(port, smtp_port, &extra), &[port]);
    send_tcp(port, lines(3).as_bytes());
    wait_for_or_explain(
        Duration::from_secs(20),
        "3 mails over STARTTLS",
        || server.mails().len() >= 3,
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let mails = server.mails();
    assert_eq!(mails.len(), 3);
    assert!(mails.iter().all(|mail| mail.encrypted), "{mails:?}");
    let mut bodies: Vec<String> = mails.iter().map(Received::body).collect();
    bodies.sort();
    assert_eq!(bodies, ["alert 0\n\n", "alert 1\n\n", "alert 2\n\n"]);
    assert_eq!(daemon.counter("alerts.sent_total"), 3);
}

#[test]
fn use_tls_speaks_tls_from_the_first_byte() {
    let Some(pki) = test_pki() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, smtp_port) = (free_port(), free_port());
    let faults = Faults {
        tls: Some(server_tls(pki.path())),
        implicit: true,
        ..Faults::default()
    };
    let server = SmtpServer::start(smtp_port, faults);
    let extra = format!(
        "use_tls = true\n[alerts.tls]\nroot_cafile = \"{}\"\nserver_name = \"localhost\"\n",
        pki.path().join("ca.pem").display()
    );
    let mut daemon = Daemon::start(dir.path(), &config(port, smtp_port, &extra), &[port]);
    send_tcp(port, lines(2).as_bytes());
    wait_for_or_explain(
        Duration::from_secs(20),
        "2 mails over SMTPS",
        || server.mails().len() >= 2,
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let mails = server.mails();
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().all(|mail| mail.encrypted));
}

#[test]
fn nothing_goes_in_clear_when_tls_is_asked_for_or_the_server_is_not_trusted() {
    let Some(pki) = test_pki() else { return };
    // [tls] given, and the server offers no STARTTLS: every mail fails, none is sent.
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, smtp_port) = (free_port(), free_port());
    let server = SmtpServer::start(smtp_port, Faults::default());
    let extra = format!(
        "delivery = \"best_effort\"\n[alerts.tls]\nroot_cafile = \"{}\"\n",
        pki.path().join("ca.pem").display()
    );
    let mut daemon = Daemon::start(dir.path(), &config(port, smtp_port, &extra), &[port]);
    send_tcp(port, lines(4).as_bytes());
    wait_for_or_explain(
        Duration::from_secs(20),
        "a refused mail",
        || daemon.stderr().contains("does not offer STARTTLS"),
        || daemon.stderr(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(server.mails().len(), 0);
    assert_eq!(
        daemon.counter("alerts.dropped_total"),
        4,
        "{}",
        daemon.stderr()
    );
    assert_eq!(daemon.counter("alerts.sent_total"), 0);

    // No [tls]: STARTTLS is taken because the server offers it, and its certificate (from a
    // CA the system does not know) fails verification: the mail is not sent in clear instead.
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, smtp_port) = (free_port(), free_port());
    let faults = Faults {
        tls: Some(server_tls(pki.path())),
        ..Faults::default()
    };
    let server = SmtpServer::start(smtp_port, faults);
    let extra = "delivery = \"best_effort\"\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, smtp_port, extra), &[port]);
    send_tcp(port, lines(2).as_bytes());
    wait_for_or_explain(
        Duration::from_secs(20),
        "a failed TLS handshake",
        || daemon.stderr().contains("TLS: "),
        || daemon.stderr(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(server.mails().len(), 0);
    assert_eq!(
        daemon.counter("alerts.dropped_total"),
        2,
        "{}",
        daemon.stderr()
    );
}
