//! SmtpOutput: each message, encoded, mailed to `send_to` through the SMTP server at `host`
//! (Heka's options; `docs/smtp_output.md`). Meant for alerts: one core, the output core, owns
//! the sending; other cores hand it their batches over their rings.
//!
//! With `send_interval = 0` every message is one mail, sent as it comes. With a
//! `send_interval` of N seconds, at most one mail goes per N seconds: a message arriving when
//! the last mail is older than that goes at once; the ones arriving within the interval are
//! gathered (separated by a blank line) and go together when it has passed, as Heka did. What
//! is gathered is bounded ([`SMTP_PENDING_BYTES_MAX`]).
//!
//! A mail is text/plain UTF-8 with the encodings in base64 (76-column lines), and headers
//! `From`, `To`, `Subject`, `Date`, `MIME-Version`, `Content-Type`,
//! `Content-Transfer-Encoding`. A server's 5xx refusal is final: the mail's messages are counted
//! in `rejected_total` and logged. Any other failure (down, 4xx, timeout) is retried with
//! backoff by `memory` delivery, which makes the senders wait meanwhile, and dropped and counted
//! by `best_effort`.

pub mod client;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::length_framed::{encodings, LengthFramedKind};
use super::{Batch, Opened, OutputCore, OutputKind, Writers};
use crate::component::{LocalBoxFuture, PlanContext, Registration};
use crate::config::plan::OutputPlan;
use crate::config::{ConfigError, Section};
use crate::encoder::strftime::TsFormat;
use crate::limits::{
    DRAIN_TIMEOUT, SMTP_PENDING_BYTES_MAX, SMTP_RECIPIENTS_MAX, SMTP_SEND_INTERVAL_MAX_SECONDS,
};
use crate::runtime::backoff::Backoff;
use crate::runtime::stop::LocalStop;
use crate::telemetry::log_limit::{LogLimit, LOG_INTERVAL};
use crate::telemetry::{Metric, Telemetry};
use client::{Auth, Mail, Security};

/// Its registry line.
pub const REGISTRATION: Registration<OutputPlan> = Registration {
    type_names: &["SmtpOutput"],
    plan: plan_smtp_output,
};

/// Waits between tries of a mail the server did not take, doubling from the first.
const RETRY_DELAY_MIN: Duration = Duration::from_secs(1);
const RETRY_DELAY_MAX: Duration = Duration::from_secs(30);
/// The characters of one base64 line of the body (RFC 2045 §6.8).
const BASE64_LINE: usize = 76;

/// `SmtpOutput`'s own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtpOutput {
    /// The sender (envelope and `From`; default `heka@localhost.localdomain`, as in Heka).
    pub send_from: Option<String>,
    /// The recipients: at least one.
    pub send_to: Vec<String>,
    /// The subject (default `gyges [<section name>]`).
    pub subject: Option<String>,
    /// The server, `host:port` (default `127.0.0.1:25`).
    pub host: Option<String>,
    /// `none` (default), `Plain` or `CRAMMD5`.
    pub auth: Option<String>,
    /// The user for `auth`.
    pub user: Option<String>,
    /// The password for `auth`.
    pub password: Option<String>,
    /// The shortest time between two mails, in seconds (default 0: none).
    pub send_interval: Option<u64>,
    /// TLS from the first byte (SMTPS) rather than `STARTTLS` (default false).
    pub use_tls: Option<bool>,
    /// `[name.tls]`: `root_cafile` (default: the system's CAs), `server_name`, a client
    /// certificate, versions. Present without `use_tls`, it makes `STARTTLS` required.
    pub tls: Option<crate::tls::RawTls>,
}

/// SmtpOutput, planned.
#[derive(Debug, Clone)]
pub struct SmtpOutputKind {
    /// `host`.
    pub host: String,
    /// The name the client gives in `EHLO`: the global hostname.
    pub helo: String,
    /// `auth`, with `user` and `password`.
    pub auth: Auth,
    /// `send_from`.
    pub from: String,
    /// `send_to`.
    pub to: Vec<String>,
    /// The header lines before `Date`, CRLF-ended: From, To, Subject.
    pub headers: String,
    /// `send_interval`.
    pub send_interval: Duration,
    /// `use_tls` and `[name.tls]`.
    pub security: Security,
}

fn plan_smtp_output(
    section: &Section,
    context: &PlanContext<'_>,
) -> Result<OutputPlan, ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawSmtpOutput = own.parse()?;
    if raw.send_to.is_empty() || raw.send_to.len() > SMTP_RECIPIENTS_MAX {
        let message = format!("must hold 1 to {SMTP_RECIPIENTS_MAX} addresses");
        return Err(section.error(Some("send_to"), message));
    }
    let from = raw
        .send_from
        .unwrap_or_else(|| "heka@localhost.localdomain".into());
    for (key, address) in
        std::iter::once(("send_from", &from)).chain(raw.send_to.iter().map(|to| ("send_to", to)))
    {
        if !is_mailbox(address) {
            let message = format!("`{address}` is not an address like user@example.com");
            return Err(section.error(Some(key), message));
        }
    }
    let host = raw.host.unwrap_or_else(|| "127.0.0.1:25".into());
    section.destination("host", &host)?;
    let credentials = || -> Result<(String, String), ConfigError> {
        match (&raw.user, &raw.password) {
            (Some(user), Some(password)) => Ok((user.clone(), password.clone())),
            _ => Err(section.error(Some("user"), "this auth needs user and password")),
        }
    };
    let auth = match raw.auth.as_deref().unwrap_or("none") {
        "none" => Auth::None,
        "Plain" => {
            let (user, password) = credentials()?;
            Auth::Plain { user, password }
        }
        "CRAMMD5" => {
            let (user, password) = credentials()?;
            Auth::CramMd5 { user, password }
        }
        other => {
            let message = format!("`{other}` is not none, Plain or CRAMMD5");
            return Err(section.error(Some("auth"), message));
        }
    };
    let send_interval = raw.send_interval.unwrap_or(0);
    if send_interval > SMTP_SEND_INTERVAL_MAX_SECONDS {
        let message = format!("{send_interval} is more than {SMTP_SEND_INTERVAL_MAX_SECONDS} s");
        return Err(section.error(Some("send_interval"), message));
    }
    let subject = raw
        .subject
        .unwrap_or_else(|| format!("gyges [{}]", section.name));
    if subject.contains(['\r', '\n']) {
        return Err(section.error(Some("subject"), "must be one line"));
    }
    let headers = format!(
        "From: {from}\r\nTo: {}\r\nSubject: {}\r\n",
        raw.send_to.join(", "),
        encode_subject(&subject)
    );
    let security = security(section, &raw.use_tls, raw.tls.as_ref(), &host)?;
    let kind = SmtpOutputKind {
        security,
        host,
        helo: context.global.hostname.clone(),
        auth,
        from,
        to: raw.send_to,
        headers,
        send_interval: Duration::from_secs(send_interval),
    };
    let default = common.with_defaults("PayloadEncoder", false, false);
    let encoder = match default.encoder {
        super::plan::EncoderChoice::Named { name, default } => {
            crate::encoder::resolve(section, context, name, default)?
        }
        super::plan::EncoderChoice::Fixed(encoder) => encoder,
    };
    let bytes_max = context.global.max_message_size.max(SMTP_PENDING_BYTES_MAX);
    let common = super::plan::Common {
        encoder: super::plan::EncoderChoice::Fixed(Arc::new(LengthFramedKind::new(
            encoder, bytes_max,
        ))),
        ..default
    };
    super::plan::output_plan(section, context, common, |_| Ok(Arc::new(kind)))
}

/// How mails are encrypted: `use_tls = true` is SMTPS; `[name.tls]` alone makes `STARTTLS`
/// required; neither upgrades with `STARTTLS` whenever the server offers it (as Heka's Go
/// client did), verified against the system's CAs, or stays plain when the system has none.
fn security(
    section: &Section,
    use_tls: &Option<bool>,
    tls: Option<&crate::tls::RawTls>,
    host: &str,
) -> Result<Security, ConfigError> {
    let side = "SmtpOutput";
    let client =
        |raw: &crate::tls::RawTls| crate::tls::client_with_system_roots(section, raw, host, side);
    Ok(match (use_tls.unwrap_or(false), tls) {
        (true, Some(raw)) => Security::Implicit(client(raw)?),
        (true, None) => Security::Implicit(client(&crate::tls::RawTls::default())?),
        (false, Some(raw)) => Security::Required(client(raw)?),
        (false, None) if std::path::Path::new(crate::tls::SYSTEM_ROOTS).exists() => {
            match client(&crate::tls::RawTls::default()) {
                Ok(client) => Security::Opportunistic(client),
                Err(error) => {
                    tracing::warn!(section = %section.name, "no STARTTLS: {error}");
                    Security::Plain
                }
            }
        }
        (false, None) => {
            tracing::info!(
                section = %section.name,
                "[{}] no STARTTLS: {} is missing and no [{}.tls] root_cafile is given",
                section.name,
                crate::tls::SYSTEM_ROOTS,
                section.name
            );
            Security::Plain
        }
    })
}

/// Whether `address` looks like `local@domain` with nothing an SMTP command could not carry.
fn is_mailbox(address: &str) -> bool {
    let clean = address
        .bytes()
        .all(|byte| byte.is_ascii_graphic() && !b"<>,;\"".contains(&byte));
    let parts = address.split_once('@');
    clean && parts.is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
}

/// A subject as a header carries it: printable ASCII as written, anything else as an RFC 2047
/// encoded word in base64.
fn encode_subject(subject: &str) -> String {
    if subject.bytes().all(|byte| (b' '..=b'~').contains(&byte)) {
        return subject.to_string();
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(subject);
    format!("=?utf-8?B?{encoded}?=")
}

/// The whole mail: `headers`, a `Date`, the MIME headers, then `body` in base64 lines.
fn mail_content(headers: &str, date: &str, body: &[u8]) -> Vec<u8> {
    let engine = base64::engine::general_purpose::STANDARD;
    let encoded = engine.encode(body);
    let mut out = Vec::with_capacity(headers.len() + 200 + encoded.len() * 78 / 76);
    out.extend_from_slice(headers.as_bytes());
    out.extend_from_slice(format!("Date: {date}\r\n").as_bytes());
    out.extend_from_slice(
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\n",
    );
    for line in encoded.as_bytes().chunks(BASE64_LINE) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl OutputKind for SmtpOutputKind {
    fn type_name(&self) -> &'static str {
        "SmtpOutput"
    }

    fn describe(&self, _: &OutputPlan) -> String {
        format!("smtp {} to {}", self.host, self.to.join(", "))
    }

    fn writers(&self) -> Writers {
        Writers::Owner
    }

    fn open<'a>(&'a self, core: &'a OutputCore<'a>) -> LocalBoxFuture<'a, Result<Opened, String>> {
        Box::pin(async move {
            let date = TsFormat::new("%a, %d %b %Y %H:%M:%S +0000")
                .map_err(|error| format!("the Date format: {error:?}"))?;
            let sender = Rc::new(SmtpSender {
                kind: self.clone(),
                name: core.output.name.clone(),
                best_effort: core.best_effort(),
                stop: core.stop.clone(),
                counters: (core.telemetry.clone(), core.row, core.plugin),
                pending: RefCell::new(Pending::default()),
                last_sent: Cell::new(None),
                date,
                failures: RefCell::new(LogLimit::new(LOG_INTERVAL)),
            });
            let flusher = crate::runtime::failure::plugin_task(
                &core.output.name,
                flush_gathered(sender.clone()),
            );
            Ok(Opened {
                destination: sender,
                tasks: vec![glommio::spawn_local(flusher).detach()],
                close: None,
            })
        })
    }
}

/// Messages gathered for the next mail (`send_interval`).
#[derive(Default)]
struct Pending {
    body: Vec<u8>,
    messages: u64,
}

/// The owner core's SMTP sender.
struct SmtpSender {
    kind: SmtpOutputKind,
    name: String,
    best_effort: bool,
    stop: Rc<LocalStop>,
    /// Telemetry, this core's row, the output's plugin index.
    counters: (Arc<Telemetry>, usize, usize),
    pending: RefCell<Pending>,
    /// When the last mail went.
    last_sent: Cell<Option<Instant>>,
    date: TsFormat,
    failures: RefCell<LogLimit>,
}

impl SmtpSender {
    fn count(&self, metric: Metric, value: u64) {
        let (telemetry, row, plugin) = &self.counters;
        telemetry.add(*row, *plugin, metric, value);
    }

    /// Whether a mail may go now.
    fn due(&self) -> bool {
        self.last_sent
            .get()
            .is_none_or(|last| last.elapsed() >= self.kind.send_interval)
    }

    /// Sends one mail of `messages` messages until the server takes it, refuses it for good,
    /// or (best effort, or a stop that has waited [`DRAIN_TIMEOUT`]) it is dropped.
    async fn mail(&self, body: &[u8], messages: u64) {
        let mut backoff = Backoff::new(RETRY_DELAY_MIN, RETRY_DELAY_MAX);
        let mut stopping_since: Option<Instant> = None;
        loop {
            let mut seconds = 0i64;
            if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
                seconds = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
            }
            let mut date = Vec::new();
            self.date.format(seconds, &mut date);
            let date = String::from_utf8_lossy(&date);
            let content = mail_content(&self.kind.headers, &date, body);
            let mail = Mail {
                from: &self.kind.from,
                to: &self.kind.to,
                content: &content,
            };
            let kind = &self.kind;
            let error =
                match client::send(&kind.host, &kind.helo, &kind.auth, &kind.security, &mail).await
                {
                    Ok(()) => {
                        self.last_sent.set(Some(Instant::now()));
                        self.count(Metric::Sent, messages);
                        self.count(Metric::SentBytes, body.len() as u64);
                        return;
                    }
                    Err(error) => error,
                };
            self.count(Metric::Errors, 1);
            if error.permanent {
                tracing::warn!(output = %self.name, %error, messages, "the mail server refused the mail for good");
                self.count(Metric::Rejected, messages);
                return;
            }
            let held = self.failures.borrow_mut().note(Instant::now());
            if let Some(failures) = held {
                tracing::warn!(output = %self.name, %error, failures, "cannot send the mail; trying again");
            }
            let give_up = self.best_effort
                || (self.stop.is_stopping()
                    && stopping_since.get_or_insert_with(Instant::now).elapsed() > DRAIN_TIMEOUT);
            if give_up {
                self.count(Metric::Dropped, messages);
                return;
            }
            self.count(Metric::Retries, messages);
            let wait = backoff.step();
            futures_lite::future::or(glommio::timer::sleep(wait), async {
                if !self.stop.is_stopping() {
                    self.stop.wait().await;
                }
                // Once stopping, retry on the backoff's own pace until the drain timeout.
                glommio::timer::sleep(wait.min(Duration::from_millis(200))).await;
            })
            .await;
        }
    }

    async fn send(&self, batch: Batch) {
        for encoding in encodings(&batch.bytes) {
            if self.kind.send_interval.is_zero() {
                self.mail(encoding, 1).await;
                continue;
            }
            if self.pending.borrow().messages == 0 && self.due() {
                self.mail(encoding, 1).await;
                continue;
            }
            self.gather(encoding).await;
        }
    }

    /// Adds one message to the next mail, waiting for room (memory) or dropping it (best
    /// effort) when [`SMTP_PENDING_BYTES_MAX`] is reached.
    async fn gather(&self, encoding: &[u8]) {
        loop {
            let full = {
                let pending = self.pending.borrow();
                pending.messages > 0
                    && pending.body.len() + 4 + encoding.len() > SMTP_PENDING_BYTES_MAX
            };
            if !full {
                break;
            }
            if self.best_effort {
                self.count(Metric::Dropped, 1);
                return;
            }
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
        let mut pending = self.pending.borrow_mut();
        if pending.messages > 0 {
            pending.body.extend_from_slice(b"\r\n\r\n");
        }
        pending.body.extend_from_slice(encoding);
        pending.messages += 1;
    }

    /// Sends what is gathered, if anything.
    async fn send_gathered(&self) {
        let Pending { body, messages } = std::mem::take(&mut *self.pending.borrow_mut());
        if messages > 0 {
            self.mail(&body, messages).await;
        }
    }
}

impl super::Destination for SmtpSender {
    fn ship<'a>(
        &'a self,
        batch: Batch,
        _telemetry: &'a Telemetry,
        _core: usize,
        _plugin: usize,
    ) -> LocalBoxFuture<'a, ()> {
        Box::pin(self.send(batch))
    }
}

/// Sends the gathered messages each time `send_interval` has passed since the last mail; at
/// stop, once nothing ships any more (this task holds the last reference), sends what is left.
async fn flush_gathered(sender: Rc<SmtpSender>) {
    let tick = Duration::from_millis(50);
    loop {
        let shipping_done = sender.stop.is_stopping() && Rc::strong_count(&sender) == 1;
        if shipping_done {
            sender.send_gathered().await;
            return;
        }
        if sender.pending.borrow().messages > 0 && sender.due() {
            sender.send_gathered().await;
        }
        futures_lite::future::or(glommio::timer::sleep(tick), sender.stop.wait()).await;
        if sender.stop.is_stopping() {
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_has_the_headers_and_a_base64_body_in_short_lines() {
        let body = vec![b'x'; 100];
        let content = mail_content("From: a@b\r\n", "Thu, 03 Dec 2026 12:00:00 +0000", &body);
        let text = String::from_utf8(content).expect("ASCII");
        let (head, encoded) = text.split_once("\r\n\r\n").expect("a blank line");
        assert!(head.starts_with("From: a@b\r\nDate: Thu, 03 Dec 2026 12:00:00 +0000\r\n"));
        assert!(head.contains("Content-Transfer-Encoding: base64"));
        let lines: Vec<&str> = encoded.trim_end().split("\r\n").collect();
        assert!(lines.iter().all(|line| line.len() <= BASE64_LINE));
        let joined: String = lines.concat();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(joined)
            .expect("base64");
        assert_eq!(decoded, body);
    }

    #[test]
    fn subjects_and_addresses() {
        assert_eq!(encode_subject("disk full"), "disk full");
        assert_eq!(
            encode_subject("disque plein ✓"),
            "=?utf-8?B?ZGlzcXVlIHBsZWluIOKckw==?="
        );
        assert!(is_mailbox("ops@example.com"));
        assert!(!is_mailbox("ops"));
        assert!(!is_mailbox("a@b>\r\nRCPT TO:<c@d"));
        assert!(!is_mailbox("@example.com"));
    }
}
