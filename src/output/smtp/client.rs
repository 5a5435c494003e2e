//! One SMTP conversation (RFC 5321) over a glommio TCP stream: greeting, `EHLO` (`HELO` when
//! the server does not know `EHLO`), `AUTH PLAIN` or `AUTH CRAM-MD5` when configured,
//! `MAIL FROM`, one `RCPT TO` per recipient, `DATA` with the mail, `QUIT`.
//!
//! Every reply is read with a deadline ([`SMTP_TIMEOUT`]) and at most
//! [`SMTP_REPLY_BYTES_MAX`] bytes; past either the conversation fails and the connection is
//! closed. A 5xx reply fails for good ([`SmtpError::permanent`]): the same mail would be
//! refused again. Anything else (a 4xx, a network error, a timeout) may succeed later.

use std::net::ToSocketAddrs;

use base64::Engine as _;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use hmac::{Hmac, Mac};

use crate::limits::{SMTP_REPLY_BYTES_MAX, SMTP_TIMEOUT};

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
/// A refusal by the server, a network error or a timeout; see [`SmtpError`].
pub async fn send(
    address: &str,
    helo: &str,
    auth: &Auth,
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
    let mut session = Session {
        stream,
        buffer: Vec::new(),
    };
    let result = session.converse(helo, auth, mail).await;
    if result.is_ok() {
        // The mail is accepted; a failed QUIT changes nothing.
        let _ = session.command("QUIT", b"QUIT\r\n", &[221]).await;
    }
    let _ = session.stream.close().await;
    result
}

struct Session {
    stream: TcpStream,
    /// Bytes read past the last reply.
    buffer: Vec<u8>,
}

impl Session {
    async fn converse(
        &mut self,
        helo: &str,
        auth: &Auth,
        mail: &Mail<'_>,
    ) -> Result<(), SmtpError> {
        self.reply("greeting", &[220]).await?;
        let ehlo = format!("EHLO {helo}\r\n");
        if let Err(error) = self.command("EHLO", ehlo.as_bytes(), &[250]).await {
            if !error.permanent {
                return Err(error);
            }
            let helo = format!("HELO {helo}\r\n");
            self.command("HELO", helo.as_bytes(), &[250]).await?;
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
        self.stream
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
                .stream
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

/// A whole reply at the start of `bytes`: its code, the text of its last line, and the bytes
/// it takes. `None` until the last line (`NNN ` or `NNN` alone) has arrived. A line that is not
/// `NNN[ -]text` makes a reply with code 0, which no caller expects.
fn parse_reply(bytes: &[u8]) -> Option<(u16, String, usize)> {
    let mut start = 0;
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
        match code {
            Some(_) if more => continue,
            Some(code) => {
                let text = String::from_utf8_lossy(line.get(4..).unwrap_or(b"")).into_owned();
                return Some((code, text, start));
            }
            None => {
                let text = String::from_utf8_lossy(line).into_owned();
                return Some((0, text, start));
            }
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
        assert_eq!(parse_reply(reply), Some((250, "OK".into(), 40)));
        assert_eq!(parse_reply(b"354\r\n"), Some((354, String::new(), 5)));
        assert_eq!(
            parse_reply(b"550 5.1.1 no such user\n"),
            Some((550, "5.1.1 no such user".into(), 23))
        );
        assert_eq!(parse_reply(b"hello\r\n"), Some((0, "hello".into(), 7)));
    }
}
