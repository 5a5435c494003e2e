//! One SMTP conversation (RFC 5321) over a glommio TCP stream: greeting, `EHLO` (`HELO` when
//! the server does not know `EHLO`), `STARTTLS` and `EHLO` again when the [`Security`] asks
//! for it, `AUTH PLAIN` or `AUTH CRAM-MD5` when configured, `MAIL FROM`, one `RCPT TO` per
//! recipient, `DATA` with the mail, `QUIT`.
//!
//! Every reply is read with a deadline ([`SMTP_TIMEOUT`]) and at most
//! [`SMTP_REPLY_BYTES_MAX`] bytes; past either the conversation fails and the connection is
//! closed. A 5xx reply fails for good ([`SmtpError::permanent`]): the same mail would be
//! refused again. Anything else (a 4xx, a network error, a timeout, a TLS failure) may succeed
//! later.
//!
//! `AUTH PLAIN` carries the password itself, so it is sent only over TLS or to a loopback
//! server; otherwise the mail fails for good, its cause logged.

use std::net::{SocketAddr, ToSocketAddrs};

use base64::Engine as _;
use glommio::net::TcpStream;
use hmac::{Hmac, Mac};

use crate::limits::{SMTP_REPLY_BYTES_MAX, SMTP_TIMEOUT, TLS_HANDSHAKE_TIMEOUT};
use crate::tls::{TlsClient, TlsStream, Transport};

/// Whether and how the conversation is encrypted (`use_tls`, `[name.tls]`).
#[derive(Debug, Clone)]
pub enum Security {
    /// Plain TCP throughout (no CA to verify a server against).
    Plain,
    /// `STARTTLS` when the server offers it, plain otherwise (no `[name.tls]`).
    Opportunistic(TlsClient),
    /// `STARTTLS` always: a server that does not offer it gets nothing (`[name.tls]`).
    Required(TlsClient),
    /// TLS from the first byte, SMTPS (`use_tls = true`).
    Implicit(TlsClient),
}

/// How the client logs in (`auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `none`: no `AUTH` command.
    None,
    /// `Plain`: `AUTH PLAIN` with the user and password.
    Plain {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// `CRAMMD5`: `AUTH CRAM-MD5`, the password never sent.
    CramMd5 {
        /// The user.
        user: String,
        /// The password, the key of the answer's HMAC-MD5.
        password: String,
    },
}

/// One mail: envelope and content (headers, blank line, body; CRLF line ends, no line that
/// starts with a dot, as base64 bodies never do).
pub struct Mail<'a> {
    /// The envelope sender (`MAIL FROM`).
    pub from: &'a str,
    /// The envelope recipients (`RCPT TO`).
    pub to: &'a [String],
    /// What follows `DATA`.
    pub content: &'a [u8],
}

/// Why a conversation failed.
#[derive(Debug)]
pub struct SmtpError {
    /// What the client was doing: `connect`, `greeting`, `EHLO`, `AUTH`, `MAIL FROM`, …
    pub stage: &'static str,
    /// The server's reply or the I/O error.
    pub detail: String,
    /// A 5xx reply: sending the same mail again would fail the same way.
    pub permanent: bool,
}

impl std::fmt::Display for SmtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.stage, self.detail)
    }
}

fn io_error(stage: &'static str, error: impl std::fmt::Display) -> SmtpError {
    SmtpError {
        stage,
        detail: error.to_string(),
        permanent: false,
    }
}

/// Sends `mail` to the server at `address` (`host:port`), greeting it as `helo`.
///
/// # Errors
/// A refusal by the server, a network error, a timeout or a TLS failure; see [`SmtpError`].
pub async fn send(
    address: &str,
    helo: &str,
    auth: &Auth,
    security: &Security,
    mail: &Mail<'_>,
) -> Result<(), SmtpError> {
    let target = address
        .to_socket_addrs()
        .map_err(|error| io_error("connect", error))?
        .next()
        .ok_or_else(|| io_error("connect", "the address resolves to nothing"))?;
    let stream = TcpStream::connect_timeout(target, SMTP_TIMEOUT)
        .await
        .map_err(|error| io_error("connect", error))?;
    let timeout = Some(SMTP_TIMEOUT);
    stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .map_err(|error| io_error("connect", error))?;
    let transport = match security {
        Security::Implicit(tls) => encrypt(stream, tls).await?,
        _ => Transport::Plain(stream),
    };
    let session = Session {
        transport,
        buffer: Vec::new(),
    };
    // A failure before the mail starts drops the session, which closes its socket.
    let mut session = session.open(helo, security).await?;
    let result = session.deliver(target, auth, mail).await;
    if result.is_ok() {
        // The mail is accepted; a failed QUIT changes nothing.
        let _ = session.command("QUIT", b"QUIT\r\n", &[221]).await;
    }
    session.transport.close().await;
    result
}

/// Runs the TLS handshake over `stream`, verifying the server as `tls` says.
async fn encrypt(stream: TcpStream, tls: &TlsClient) -> Result<Transport, SmtpError> {
    let connection = rustls::ClientConnection::new(tls.config.clone(), tls.server_name.clone())
        .map_err(|error| io_error("TLS", error))?;
    let mut stream = TlsStream::new(stream, connection.into());
    stream
        .handshake(TLS_HANDSHAKE_TIMEOUT)
        .await
        .map_err(|error| io_error("TLS", error))?;
    Ok(Transport::Tls(Box::new(stream)))
}

/// Whether the `EHLO` reply's lines (the greeting line first) offer `extension`.
fn offers(ehlo: &str, extension: &str) -> bool {
    ehlo.lines().skip(1).any(|line| {
        let keyword = line.split_ascii_whitespace().next().unwrap_or("");
        keyword.eq_ignore_ascii_case(extension)
    })
}

struct Session {
    transport: Transport,
    /// Bytes read past the last reply.
    buffer: Vec<u8>,
}

impl Session {
    /// The greeting, `EHLO`, and `STARTTLS` with `EHLO` again when `security` asks for it.
    async fn open(mut self, helo: &str, security: &Security) -> Result<Session, SmtpError> {
        self.reply("greeting", &[220]).await?;
        let ehlo = self.hello(helo).await?;
        let tls = match security {
            Security::Plain | Security::Implicit(_) => return Ok(self),
            Security::Opportunistic(tls) if offers(&ehlo, "STARTTLS") => tls,
            Security::Opportunistic(_) => return Ok(self),
            Security::Required(tls) if offers(&ehlo, "STARTTLS") => tls,
            Security::Required(_) => {
                let detail = "the server does not offer STARTTLS, and [tls] asks for it";
                return Err(io_error("STARTTLS", detail));
            }
        };
        self.command("STARTTLS", b"STARTTLS\r\n", &[220]).await?;
        let Session {
            transport: Transport::Plain(stream),
            buffer,
        } = self
        else {
            return Err(io_error("STARTTLS", "the connection is already encrypted"));
        };
        if !buffer.is_empty() {
            // Bytes sent before the handshake must not be taken as if they came over TLS.
            let detail = "the server sent more than its reply to STARTTLS";
            return Err(io_error("STARTTLS", detail));
        }
        let mut session = Session {
            transport: encrypt(stream, tls).await?,
            buffer,
        };
        session.hello(helo).await?;
        Ok(session)
    }

    /// `AUTH`, the envelope and `DATA`.
    async fn deliver(
        &mut self,
        server: SocketAddr,
        auth: &Auth,
        mail: &Mail<'_>,
    ) -> Result<(), SmtpError> {
        let encrypted = matches!(self.transport, Transport::Tls(_));
        if matches!(auth, Auth::Plain { .. }) && !encrypted && !server.ip().is_loopback() {
            return Err(SmtpError {
                stage: "AUTH",
                detail: "AUTH PLAIN would send the password in clear: the server offers no \
                         STARTTLS (set use_tls for SMTPS, or auth = \"CRAMMD5\")"
                    .into(),
                permanent: true,
            });
        }
        self.authenticate(auth).await?;
        let from = format!("MAIL FROM:<{}>\r\n", mail.from);
        self.command("MAIL FROM", from.as_bytes(), &[250]).await?;
        for to in mail.to {
            let to = format!("RCPT TO:<{to}>\r\n");
            self.command("RCPT TO", to.as_bytes(), &[250, 251]).await?;
        }
        self.command("DATA", b"DATA\r\n", &[354]).await?;
        self.write("DATA", mail.content).await?;
        let end: &[u8] = if mail.content.ends_with(b"\r\n") {
            b".\r\n"
        } else {
            b"\r\n.\r\n"
        };
        self.command("end of data", end, &[250]).await?;
        Ok(())
    }

    /// `EHLO`, or `HELO` when the server refuses it; returns the reply's lines.
    async fn hello(&mut self, helo: &str) -> Result<String, SmtpError> {
        let ehlo = format!("EHLO {helo}\r\n");
        match self.command("EHLO", ehlo.as_bytes(), &[250]).await {
            Ok(reply) => Ok(reply),
            Err(error) if error.permanent => {
                let helo = format!("HELO {helo}\r\n");
                self.command("HELO", helo.as_bytes(), &[250]).await
            }
            Err(error) => Err(error),
        }
    }

    async fn authenticate(&mut self, auth: &Auth) -> Result<(), SmtpError> {
        let engine = base64::engine::general_purpose::STANDARD;
        match auth {
            Auth::None => Ok(()),
            Auth::Plain { user, password } => {
                let token = engine.encode(format!("\0{user}\0{password}"));
                let command = format!("AUTH PLAIN {token}\r\n");
                self.command("AUTH", command.as_bytes(), &[235]).await?;
                Ok(())
            }
            Auth::CramMd5 { user, password } => {
                let challenge = self.command("AUTH", b"AUTH CRAM-MD5\r\n", &[334]).await?;
                let challenge = engine
                    .decode(challenge.trim())
                    .map_err(|error| io_error("AUTH", format!("bad challenge: {error}")))?;
                let mut mac = Hmac::<md5::Md5>::new_from_slice(password.as_bytes())
                    .map_err(|error| io_error("AUTH", error))?;
                mac.update(&challenge);
                let digest: String = mac
                    .finalize()
                    .into_bytes()
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect();
                let answer = format!("{}\r\n", engine.encode(format!("{user} {digest}")));
                self.command("AUTH", answer.as_bytes(), &[235]).await?;
                Ok(())
            }
        }
    }

    async fn write(&mut self, stage: &'static str, bytes: &[u8]) -> Result<(), SmtpError> {
        self.transport
            .write_all(bytes)
            .await
            .map_err(|error| io_error(stage, error))
    }

    /// Sends `line` and reads the reply, which must have one of `expected` codes; returns the
    /// text of the reply's last line.
    async fn command(
        &mut self,
        stage: &'static str,
        line: &[u8],
        expected: &[u16],
    ) -> Result<String, SmtpError> {
        self.write(stage, line).await?;
        self.reply(stage, expected).await
    }

    /// Reads one reply (its continuation lines `250-…` too) and checks its code.
    async fn reply(&mut self, stage: &'static str, expected: &[u16]) -> Result<String, SmtpError> {
        loop {
            if let Some((code, text, used)) = parse_reply(&self.buffer) {
                self.buffer.drain(..used);
                if expected.contains(&code) {
                    return Ok(text);
                }
                return Err(SmtpError {
                    stage,
                    detail: format!("{code} {text}"),
                    permanent: (500..600).contains(&code),
                });
            }
            if self.buffer.len() > SMTP_REPLY_BYTES_MAX {
                let detail = format!("a reply longer than {SMTP_REPLY_BYTES_MAX} bytes");
                return Err(io_error(stage, detail));
            }
            let mut chunk = [0u8; 1024];
            let read = self
                .transport
                .read(&mut chunk)
                .await
                .map_err(|error| io_error(stage, error))?;
            if read == 0 {
                return Err(io_error(stage, "the server closed the connection"));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

/// A whole reply at the start of `bytes`: its code, the text of its lines (joined by `\n`),
/// and the bytes it takes. `None` until the last line (`NNN ` or `NNN` alone) has arrived. A
/// line that is not `NNN[ -]text` makes a reply with code 0, which no caller expects.
fn parse_reply(bytes: &[u8]) -> Option<(u16, String, usize)> {
    let mut start = 0;
    let mut text = String::new();
    let mut first = true;
    loop {
        let end = start + memchr::memchr(b'\n', &bytes[start..])?;
        let line = bytes[start..end]
            .strip_suffix(b"\r")
            .unwrap_or(&bytes[start..end]);
        let code = line
            .get(..3)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| digits.parse::<u16>().ok());
        let more = line.get(3) == Some(&b'-');
        start = end + 1;
        let Some(code) = code else {
            return Some((0, String::from_utf8_lossy(line).into_owned(), start));
        };
        if !first {
            text.push('\n');
        }
        first = false;
        text.push_str(&String::from_utf8_lossy(line.get(4..).unwrap_or(b"")));
        if !more {
            return Some((code, text, start));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_with_continuations_and_partial_input() {
        assert_eq!(parse_reply(b"250-mx.example\r\n250-SIZE"), None);
        let reply = b"250-mx.example\r\n250-AUTH PLAIN\r\n250 OK\r\nextra";
        let text = "mx.example\nAUTH PLAIN\nOK";
        assert_eq!(parse_reply(reply), Some((250, text.into(), 40)));
        assert_eq!(parse_reply(b"250 \r\n"), Some((250, String::new(), 6)));
        assert_eq!(parse_reply(b"354\r\n"), Some((354, String::new(), 5)));
        assert_eq!(
            parse_reply(b"550 5.1.1 no such user\n"),
            Some((550, "5.1.1 no such user".into(), 23))
        );
        assert_eq!(parse_reply(b"hello\r\n"), Some((0, "hello".into(), 7)));
    }

    #[test]
    fn starttls_is_offered_only_by_an_extension_line() {
        let ehlo = "mx.example greets you\nSIZE 1000\nSTARTTLS\nAUTH PLAIN";
        assert!(offers(ehlo, "STARTTLS"));
        assert!(
            offers("mx\nstarttls", "STARTTLS"),
            "keywords are case-blind"
        );
        assert!(
            !offers("STARTTLS ready", "STARTTLS"),
            "the greeting line is no extension"
        );
        assert!(!offers("mx\nSTARTTLSX\nAUTH STARTTLS", "STARTTLS"));
    }
}
