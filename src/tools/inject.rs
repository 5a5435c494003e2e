//! `gyges inject --addr HOST:PORT [FILE|-]`: reads JSON messages, one per line (the form of
//! [`crate::message::json`]; missing `uuid` and `timestamp` are filled in), frames them, and
//! sends them over TCP, signed when `--signer` is given.
//!
//! Messages are sent as they are read. A line that is not a valid message stops the run with
//! an error naming the line; the messages before it have been sent. Blank lines are skipped.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use prost::Message as _;

use super::SignerArgs;
use crate::limits::{MESSAGE_BYTES_CEILING, MESSAGE_BYTES_DEFAULT};
use crate::message::framing::{write_frame, Signer};
use crate::message::json::read_json;

/// How long to wait for the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of framed messages gathered before a write.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// `gyges inject`'s options.
#[derive(clap::Args, Debug, Clone)]
pub struct InjectArgs {
    /// Where to send: `host:port` of a TcpInput.
    #[arg(long)]
    pub addr: String,
    /// JSON messages, one per line; `-` or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// The frame-signing options: `--signer`, `--signer-version`, `--hmac-key`, `--hmac-hash`.
    #[command(flatten)]
    pub signing: SignerArgs,
    /// Largest message sent, in bytes; receivers drop larger ones (Heka's max_message_size).
    #[arg(long, default_value_t = MESSAGE_BYTES_DEFAULT, value_name = "BYTES")]
    pub max_message_size: usize,
}

/// What an inject run sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InjectSummary {
    /// Messages sent.
    pub messages: u64,
    /// Bytes written, framing included.
    pub bytes: u64,
}

/// Reads JSON lines from `input`, frames them (signed by `signer`) and writes them to `out`.
///
/// # Errors
/// A line that is not a valid message (naming the line), a message above
/// `message_bytes_max`, or an I/O error.
pub fn inject(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    signer: Option<&Signer>,
    message_bytes_max: usize,
) -> Result<InjectSummary, String> {
    let mut summary = InjectSummary::default();
    let mut batch = Vec::with_capacity(2 * WRITE_BATCH_BYTES);
    let mut text = String::new();
    let mut line_number = 0u64;
    loop {
        text.clear();
        line_number += 1;
        let read = input
            .read_line(&mut text)
            .map_err(|error| format!("reading: {error}"))?;
        if read == 0 {
            break;
        }
        if text.trim().is_empty() {
            continue;
        }
        let built =
            read_json(text.trim_end()).map_err(|error| format!("line {line_number}: {error}"));
        let message = match built {
            Ok(message) => message.encode_to_vec(),
            Err(error) => {
                // Send what came before, then stop.
                send(out, &mut batch)?;
                return Err(error);
            }
        };
        if message.len() > message_bytes_max {
            send(out, &mut batch)?;
            return Err(format!(
                "line {line_number}: the message is {} bytes, above --max-message-size {}",
                message.len(),
                message_bytes_max
            ));
        }
        let before = batch.len();
        write_frame(&mut batch, &message, signer)
            .map_err(|error| format!("line {line_number}: {error}"))?;
        summary.messages += 1;
        summary.bytes += (batch.len() - before) as u64;
        if batch.len() >= WRITE_BATCH_BYTES {
            send(out, &mut batch)?;
        }
    }
    send(out, &mut batch)?;
    out.flush().map_err(|error| format!("sending: {error}"))?;
    Ok(summary)
}

fn send(out: &mut dyn Write, batch: &mut Vec<u8>) -> Result<(), String> {
    out.write_all(batch)
        .map_err(|error| format!("sending: {error}"))?;
    batch.clear();
    Ok(())
}

/// Connects to `addr`, trying each address it resolves to.
///
/// # Errors
/// The address does not resolve, or no connection succeeds within the timeout.
pub fn connect(addr: &str) -> Result<TcpStream, String> {
    let addresses = addr
        .to_socket_addrs()
        .map_err(|error| format!("{addr}: {error}"))?;
    let mut last_error = format!("{addr}: resolves to no address");
    for address in addresses {
        match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
            Ok(stream) => {
                // Frames are batched by the caller; do not hold them back further.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(error) => last_error = format!("{address}: {error}"),
        }
    }
    Err(last_error)
}

/// Runs `gyges inject`.
pub fn run(args: &InjectArgs) -> ExitCode {
    if args.max_message_size == 0 || args.max_message_size > MESSAGE_BYTES_CEILING {
        let message = format!("--max-message-size must be within 1..={MESSAGE_BYTES_CEILING}");
        return super::fail("inject", message);
    }
    let signer = match args.signing.signer() {
        Ok(signer) => signer,
        Err(error) => return super::fail("inject", error),
    };
    let mut input: Box<dyn BufRead> = match args.file.as_deref() {
        None => Box::new(io::stdin().lock()),
        Some(path) if path.as_os_str() == "-" => Box::new(io::stdin().lock()),
        Some(path) => match File::open(path) {
            Ok(file) => Box::new(BufReader::new(file)),
            Err(error) => return super::fail("inject", format!("{}: {error}", path.display())),
        },
    };
    let mut stream = match connect(&args.addr) {
        Ok(stream) => stream,
        Err(error) => return super::fail("inject", format!("connecting to {error}")),
    };
    match inject(
        &mut input,
        &mut stream,
        signer.as_ref(),
        args.max_message_size,
    ) {
        Ok(summary) => {
            eprintln!(
                "gyges inject: sent {} messages ({} bytes) to {}",
                summary.messages, summary.bytes, args.addr
            );
            ExitCode::SUCCESS
        }
        Err(error) => super::fail("inject", error),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::message::framing::{HashFunction, Verifier};
    use crate::message::{ProtoView, StrHeader};
    use crate::splitter::{HekaFrameSplitter, Splitter, Step};

    #[test]
    fn json_lines_become_signed_frames() {
        let input =
            "{\"payload\":\"one\",\"type\":\"t\"}\n\n{\"payload\":\"two\",\"severity\":3}\n";
        let signer = Signer::new("ops", 1, HashFunction::Sha1, b"key").unwrap();
        let mut out = Vec::new();
        let summary = inject(&mut input.as_bytes(), &mut out, Some(&signer), 1024).unwrap();
        assert_eq!(summary.messages, 2);
        assert_eq!(summary.bytes as usize, out.len());
        let verifier = Arc::new(Verifier::new([("ops_1", &b"key"[..])]).unwrap());
        let mut splitter =
            Splitter::HekaFrame(HekaFrameSplitter::new(verifier, false, 1024).unwrap());
        let mut window = out.as_slice();
        let mut payloads = Vec::new();
        while let Step::Record {
            start,
            end,
            consumed,
            signer,
        } = splitter.split(window)
        {
            assert!(signer.is_some());
            let view = ProtoView::new(&window[start..end]);
            assert_eq!(view.validate(), Ok(()));
            payloads.push(view.str_header(StrHeader::Payload).unwrap().to_vec());
            window = &window[consumed..];
        }
        assert_eq!(payloads, [b"one".to_vec(), b"two".to_vec()]);
    }

    #[test]
    fn a_bad_line_stops_the_run_after_sending_the_lines_before_it() {
        let input = "{\"payload\":\"one\"}\n{\"severity\":\"high\"}\n{\"payload\":\"three\"}\n";
        let mut out = Vec::new();
        let error = inject(&mut input.as_bytes(), &mut out, None, 1024).unwrap_err();
        assert!(
            error.starts_with("line 2:") && error.contains("severity"),
            "{error}"
        );
        assert!(!out.is_empty());
        let error = inject(
            &mut "{\"payload\":\"long\"}".as_bytes(),
            &mut Vec::new(),
            None,
            10,
        );
        assert!(error.unwrap_err().contains("above --max-message-size 10"));
    }
}
