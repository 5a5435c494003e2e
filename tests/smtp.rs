//! SmtpOutput through the daemon, against an SMTP server on loopback written here: it speaks
//! RFC 5321 (EHLO, AUTH PLAIN, MAIL, RCPT, DATA with dot-termination, QUIT), records every mail
//! and can refuse on purpose. Each message becomes a mail (or a gathered mail with
//! `send_interval`); a server that is down, answers 451 or refuses with 550 is retried,
//! dropped or counted as the delivery class says.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

use crate::util::*;

/// One mail as the server took it.
#[derive(Debug, Clone)]
struct Received {
    from: String,
    to: Vec<String>,
    data: String,
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
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut say = |line: &str| writer.write_all(format!("{line}\r\n").as_bytes()).is_ok();
    say("220 test.local ESMTP ready");
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
        if upper.starts_with("EHLO ") {
            say("250-test.local");
            say("250 AUTH PLAIN CRAM-MD5");
        } else if let Some(token) = command.strip_prefix("AUTH PLAIN ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token)
                .unwrap_or_default();
            authed = faults.plain.as_deref().map(str::as_bytes) == Some(decoded.as_slice());
            say(if authed {
                "235 ok"
            } else {
                "535 bad credentials"
            });
        } else if upper.starts_with("MAIL FROM:") {
            if !authed {
                say("530 authentication required");
                continue;
            }
            from = command[10..].trim_matches(['<', '>']).to_string();
            to.clear();
            say("250 ok");
        } else if upper.starts_with("RCPT TO:") {
            let address = command[8..].trim_matches(['<', '>']).to_string();
            if faults.refuse.as_deref() == Some(address.as_str()) {
                say("550 5.1.1 no such user");
                continue;
            }
            to.push(address);
            say("250 ok");
        } else if upper == "DATA" {
            if faults.data_451.load(Ordering::SeqCst) > 0 {
                faults.data_451.fetch_sub(1, Ordering::SeqCst);
                say("451 try again later");
                continue;
            }
            say("354 go on");
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
            });
            say("250 queued");
        } else if upper == "QUIT" {
            say("221 bye");
            return;
        } else {
            say("502 unknown command");
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
