//! `gyges cat FILE`: prints each message of a Heka-framed file (a FileOutput with
//! `use_framing`, a queue file) as one JSON line, the form of [`crate::message::json`].
//!
//! Corrupt regions are skipped by the HekaFramingSplitter's resync and counted; the counts go
//! to stderr at the end, with messages whose protobuf does not decode. Signed frames are
//! printed without checking their HMAC (cat has no keys).
//!
//! `--tail` follows a growing file: at the end it polls every 100 ms, keeping a partial frame
//! until the rest of it is written. It does not follow rotation or truncation.
//!
//! A filter hook (`&mut dyn FnMut(&MessageView) -> bool`) decides which messages print; `run`
//! passes the compiled `--match` matcher, or one that keeps everything.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::limits::{MESSAGE_BYTES_CEILING, MESSAGE_BYTES_DEFAULT, READ_BUFFER_BYTES_DEFAULT};
use crate::message::framing::Verifier;
use crate::message::json::write_json;
use crate::message::{MessageView, ProtoView};
use crate::splitter::{HekaFrameSplitter, Splitter, SplitterStats, StreamBuffer};

/// How often `--tail` looks for new bytes.
pub const TAIL_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// `gyges cat`'s options.
#[derive(clap::Args, Debug, Clone)]
pub struct CatArgs {
    /// The Heka-framed file to read.
    pub file: PathBuf,
    /// Keep reading as the file grows.
    #[arg(long)]
    pub tail: bool,
    /// Stop after printing this many messages.
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Start at this byte offset (the resync finds the next frame).
    #[arg(long, default_value_t = 0, value_name = "BYTES")]
    pub offset: u64,
    /// Largest message accepted, in bytes (Heka's max_message_size).
    #[arg(long, default_value_t = MESSAGE_BYTES_DEFAULT, value_name = "BYTES")]
    pub max_message_size: usize,
    /// Print only the messages this message_matcher expression matches.
    #[arg(long = "match", value_name = "EXPR")]
    pub matcher: Option<String>,
    /// The matcher dialect: heka (default) or lsb.
    #[arg(long, default_value = "heka", value_name = "DIALECT")]
    pub dialect: String,
}

/// What a cat run saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CatSummary {
    /// Messages printed.
    pub printed: u64,
    /// Messages the filter dropped.
    pub filtered: u64,
    /// Records whose protobuf is not a valid message.
    pub undecodable: u64,
    /// The splitter's counters: discarded (corrupt) bytes, oversize records.
    pub splitter: SplitterStats,
}

/// How [`cat`] reads.
#[derive(Clone, Copy, Debug)]
pub struct CatOptions {
    /// Poll for more bytes at the end instead of stopping.
    pub tail: bool,
    /// Stop after printing this many messages.
    pub max_messages: Option<u64>,
    /// Largest message accepted.
    pub message_bytes_max: usize,
}

/// Reads frames from `reader` and prints the messages `filter` keeps to `out` as JSON lines.
///
/// # Errors
/// Reading or writing failed.
pub fn cat(
    reader: &mut dyn Read,
    out: &mut dyn Write,
    options: &CatOptions,
    filter: &mut dyn FnMut(&MessageView<'_>) -> bool,
) -> io::Result<CatSummary> {
    let verifier = Arc::new(Verifier::default());
    let splitter = HekaFrameSplitter::new(verifier, true, options.message_bytes_max)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
    let mut splitter = Splitter::HekaFrame(splitter);
    let mut buffer = StreamBuffer::for_splitter(&splitter, READ_BUFFER_BYTES_DEFAULT)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
    let mut summary = CatSummary::default();
    let mut line = Vec::new();
    let limit = options.max_messages.unwrap_or(u64::MAX);
    while summary.printed < limit {
        let read = match reader.read(buffer.spare_mut()) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if read == 0 {
            if !options.tail {
                break;
            }
            out.flush()?;
            std::thread::sleep(TAIL_POLL_INTERVAL);
            continue;
        }
        buffer.commit(read);
        while summary.printed < limit {
            let Some(record) = buffer.next_record(&mut splitter) else {
                break;
            };
            let view = ProtoView::new(record.bytes);
            if view.validate().is_err() {
                summary.undecodable += 1;
                continue;
            }
            let message = MessageView::Proto(view);
            if !filter(&message) {
                summary.filtered += 1;
                continue;
            }
            line.clear();
            write_json(&message, &mut line);
            line.push(b'\n');
            out.write_all(&line)?;
            summary.printed += 1;
        }
    }
    if summary.printed < limit {
        // The end of the file: a frame cut short there is counted as discarded.
        let _ = buffer.finish(&mut splitter);
    }
    out.flush()?;
    summary.splitter = *splitter.stats();
    Ok(summary)
}

/// Runs `gyges cat`.
pub fn run(args: &CatArgs) -> ExitCode {
    if args.max_message_size == 0 || args.max_message_size > MESSAGE_BYTES_CEILING {
        let message = format!("--max-message-size must be within 1..={MESSAGE_BYTES_CEILING}");
        return super::fail("cat", message);
    }
    let mut file = match File::open(&args.file) {
        Ok(file) => file,
        Err(error) => return super::fail("cat", format!("{}: {error}", args.file.display())),
    };
    if let Err(error) = file.seek(SeekFrom::Start(args.offset)) {
        return super::fail("cat", format!("{}: seek: {error}", args.file.display()));
    }
    let options = CatOptions {
        tail: args.tail,
        max_messages: args.max_messages,
        message_bytes_max: args.max_message_size,
    };
    let dialect: crate::matcher::Dialect = match args.dialect.parse() {
        Ok(dialect) => dialect,
        Err(_) => {
            return super::fail(
                "cat",
                format!("--dialect `{}` is not heka or lsb", args.dialect),
            )
        }
    };
    let program = match args
        .matcher
        .as_deref()
        .map(|text| crate::matcher::compile(text, dialect))
    {
        None => None,
        Some(Ok(program)) => Some(program),
        Some(Err(error)) => {
            eprintln!("gyges cat: {error}");
            return ExitCode::from(2);
        }
    };
    let mut filter = |message: &MessageView<'_>| {
        program
            .as_ref()
            .is_none_or(|program| program.matches(message))
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    match cat(&mut file, &mut out, &options, &mut filter) {
        Ok(summary) => {
            report(&summary);
            ExitCode::SUCCESS
        }
        // `gyges cat file | head` closes the pipe early: that is a normal end.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => super::fail("cat", format!("{}: {error}", args.file.display())),
    }
}

fn report(summary: &CatSummary) {
    let stats = &summary.splitter;
    eprintln!(
        "gyges cat: {} messages printed, {} filtered out; skipped {} corrupt bytes, \
         {} oversize records, {} undecodable messages",
        summary.printed,
        summary.filtered,
        stats.discarded_bytes,
        stats.oversize_records,
        summary.undecodable
    );
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::message::framing::write_frame;
    use crate::message::proto;
    use crate::message::StrHeader;

    fn message(payload: &str) -> Vec<u8> {
        proto::Message {
            uuid: vec![4; 16],
            timestamp: 10,
            payload: Some(payload.into()),
            ..proto::Message::default()
        }
        .encode_to_vec()
    }

    fn options() -> CatOptions {
        CatOptions {
            tail: false,
            max_messages: None,
            message_bytes_max: 1024,
        }
    }

    #[test]
    fn prints_json_lines_and_counts_what_it_skipped() {
        let mut stream = b"garbage".to_vec();
        write_frame(&mut stream, &message("one"), None).unwrap();
        stream.extend_from_slice(b"\x1e\x02\x10 more garbage");
        write_frame(&mut stream, b"not a protobuf message", None).unwrap();
        write_frame(&mut stream, &message("two"), None).unwrap();
        let mut out = Vec::new();
        let summary = cat(&mut stream.as_slice(), &mut out, &options(), &mut |_| true).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains(r#""payload":"one""#), "{}", lines[0]);
        assert!(lines[1].contains(r#""payload":"two""#), "{}", lines[1]);
        assert_eq!(summary.printed, 2);
        assert_eq!(summary.undecodable, 1);
        assert_eq!(summary.splitter.discarded_bytes, 7 + 16);
    }

    #[test]
    fn the_filter_and_the_message_limit() {
        let mut stream = Vec::new();
        for payload in ["keep 1", "drop", "keep 2", "keep 3"] {
            write_frame(&mut stream, &message(payload), None).unwrap();
        }
        let mut keep = |view: &MessageView<'_>| {
            view.str_header(StrHeader::Payload)
                .is_some_and(|payload| payload.starts_with(b"keep"))
        };
        let limited = CatOptions {
            max_messages: Some(2),
            ..options()
        };
        let mut out = Vec::new();
        let summary = cat(&mut stream.as_slice(), &mut out, &limited, &mut keep).unwrap();
        assert_eq!((summary.printed, summary.filtered), (2, 1));
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
    }
}
