//! rustls driven by hand over a core's own glommio [`TcpStream`]: no extra thread, no lock,
//! bounded buffers.
//!
//! ```text
//!  socket ──read (≤ TLS_READ_BYTES)──→ incoming ──read_tls (4 KiB steps)──→ rustls
//!        rustls ──process_new_packets──→ plaintext (≤ 16 KiB) ──reader()──→ caller's buffer
//!  caller's bytes ──writer() (≤ 64 KiB buffered)──→ rustls ──write_tls──→ outgoing ──→ socket
//! ```
//!
//! A read fills the caller's buffer with as much plaintext as the ciphertext already read
//! gives, and waits on the socket only when it has nothing to return. A write encrypts as much
//! as rustls buffers (64 KiB) and writes it out before taking more. Handshake messages and
//! alerts go out whenever rustls has them. The peer closing its TCP end without a TLS
//! `close_notify` ends the stream as a clean close would (a log stream has no length to
//! truncate), and is logged at debug level.

use std::io::{self, Read, Write};
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use rustls::Connection;

/// Ciphertext read from the socket at once: a few TLS records, so that a read costs one system
/// call per 64 KiB as the plaintext path does.
pub const TLS_READ_BYTES: usize = 64 * 1024;

/// One TLS connection over a glommio stream.
pub struct TlsStream {
    tcp: TcpStream,
    tls: Connection,
    /// Ciphertext read from the socket; `incoming[start..end]` is not yet given to rustls.
    incoming: Box<[u8]>,
    start: usize,
    end: usize,
    /// Ciphertext rustls produced, on its way to the socket (reused, about 64 KiB at most).
    outgoing: Vec<u8>,
    /// The socket has reported its end.
    eof: bool,
    /// Bytes have come from the peer.
    received: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TlsStream")
            .field("handshaking", &self.tls.is_handshaking())
            .field("eof", &self.eof)
            .finish()
    }
}

/// An I/O error for a TLS protocol failure (a bad certificate, a bad record).
fn protocol_error(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

impl TlsStream {
    /// A connection over `tcp`, its handshake not started yet (see [`TlsStream::handshake`]).
    pub fn new(tcp: TcpStream, tls: Connection) -> TlsStream {
        TlsStream {
            tcp,
            tls,
            incoming: vec![0; TLS_READ_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            outgoing: Vec::new(),
            eof: false,
            received: false,
        }
    }

    /// Whether the peer has sent nothing at all yet (a port probe closes so).
    pub fn received_nothing(&self) -> bool {
        !self.received
    }

    /// The TCP stream underneath (for its address, options and timeouts).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Runs the handshake to its end, for at most `timeout`.
    ///
    /// # Errors
    /// The peer is refused (its certificate does not verify, or it sent none when one is
    /// required), the handshake fails, the stream ends, or `timeout` passes.
    pub async fn handshake(&mut self, timeout: Duration) -> io::Result<()> {
        let handshake = async {
            while self.tls.is_handshaking() {
                self.flush().await?;
                if !self.tls.is_handshaking() {
                    break;
                }
                if !self.feed().await? {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection during the TLS handshake",
                    ));
                }
            }
            // The last flight (a server's Finished under TLS 1.2, say) may still be queued.
            self.flush().await
        };
        futures_lite::future::or(handshake, async {
            glommio::timer::sleep(timeout).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the TLS handshake took longer than {timeout:?}"),
            ))
        })
        .await
    }

    /// Gives rustls the next piece of ciphertext, reading the socket first if none is left.
    /// Returns false at the socket's end.
    async fn feed(&mut self) -> io::Result<bool> {
        if self.start == self.end {
            if self.eof {
                return Ok(false);
            }
            let count = self.tcp.read(&mut self.incoming).await?;
            if count == 0 {
                self.eof = true;
                // Tell rustls, so that its reader knows whether the close was clean.
                self.tls.read_tls(&mut io::empty())?;
                return Ok(false);
            }
            (self.start, self.end) = (0, count);
            self.received = true;
        }
        let mut pending = &self.incoming[self.start..self.end];
        let taken = self.tls.read_tls(&mut pending)?;
        self.start += taken;
        if let Err(error) = self.tls.process_new_packets() {
            // Send the alert rustls queued, so the peer learns why, then fail.
            let _ = self.flush().await;
            return Err(protocol_error(error));
        }
        Ok(true)
    }

    /// Writes out whatever rustls has queued (handshake messages, alerts, records).
    async fn flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            self.outgoing.clear();
            self.tls.write_tls(&mut self.outgoing)?;
            self.tcp.write_all(&self.outgoing).await?;
        }
        Ok(())
    }

    /// Reads plaintext into `out`: as much as the ciphertext already read gives, waiting on
    /// the socket only when there is none. Returns 0 at the end of the stream.
    ///
    /// # Errors
    /// The socket fails, or the peer sends something that is not valid TLS.
    pub async fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        loop {
            match self.tls.reader().read(&mut out[filled..]) {
                Ok(0) if filled < out.len() => return Ok(filled),
                Ok(count) => filled += count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    tracing::debug!("TLS peer closed without close_notify");
                    return Ok(filled);
                }
                Err(error) => return Err(error),
            }
            if filled == out.len() {
                return Ok(filled);
            }
            if self.start == self.end && filled > 0 {
                return Ok(filled);
            }
            // Key updates and alerts rustls wants to answer with.
            self.flush().await?;
            if !self.feed().await? {
                // The socket ended; rustls's plaintext was drained above.
                return Ok(filled);
            }
        }
    }

    /// Encrypts and writes all of `data`.
    ///
    /// # Errors
    /// The socket fails.
    pub async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let taken = self.tls.writer().write(data)?;
            data = &data[taken..];
            if taken == 0 && !self.tls.wants_write() {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the TLS connection takes no more data",
                ));
            }
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends `close_notify` and closes the stream.
    pub async fn close(&mut self) {
        self.tls.send_close_notify();
        let _ = self.flush().await;
        let _ = self.tcp.close().await;
    }
}

/// A TCP connection, plain or TLS: what TcpInput's connections and TcpOutput's senders read
/// and write. The plain arm is the stream itself, so plaintext costs one branch per call.
#[derive(Debug)]
pub enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: its buffers are large and it is the rarer arm).
    Tls(Box<TlsStream>),
}

impl Transport {
    /// The TCP stream underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(stream) => stream,
            Transport::Tls(stream) => stream.tcp(),
        }
    }

    /// Reads into `out`; 0 at the end of the stream.
    ///
    /// # Errors
    /// The socket fails, or (TLS) the peer sends something that is not valid TLS.
    pub async fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read(out).await,
            Transport::Tls(stream) => stream.read(out).await,
        }
    }

    /// Writes all of `data`.
    ///
    /// # Errors
    /// The socket fails.
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.write_all(data).await,
            Transport::Tls(stream) => stream.write_all(data).await,
        }
    }

    /// Closes the connection (TLS: after `close_notify`).
    pub async fn close(&mut self) {
        match self {
            Transport::Plain(stream) => {
                let _ = stream.close().await;
            }
            Transport::Tls(stream) => stream.close().await,
        }
    }

    /// Shuts both directions down now (TLS: after `close_notify`), so the peer sees the end
    /// at once.
    pub async fn shutdown(&mut self) {
        if let Transport::Tls(stream) = self {
            stream.tls.send_close_notify();
            let _ = stream.flush().await;
        }
        let _ = self.tcp().shutdown(std::net::Shutdown::Both).await;
    }
}
