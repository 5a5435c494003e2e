//! `gyges cat FILE`: prints each message of a Heka-framed file (a FileOutput with
//! `use_framing`, a queue file) as one JSON line, the form of [`crate::message::json`].
//!
//! Corrupt regions are skipped by the HekaFramingSplitter's resync and counted; the counts go
//! to stderr at the end, with messages whose protobuf does not decode. Signed frames are
//! printed without checking their HMAC (cat has no keys).
//!
//! `--tail` follows a growing file: at the end it polls every 100 ms, keeping a partial frame
//! until the rest of it is written. A zero byte where a frame should start is taken as a write
//! still in flight (a FileOutput whose cores write at offsets they reserved, see
//! `src/output/file.rs`): cat reads that range again until a frame lands there, and once the
//! same zero has stood for [`TAIL_ZEROS_WAIT`] it lets the splitter skip the zeros as corrupt
//! bytes (counted). It does not follow rotation or truncation.
//!
//! A filter hook (`&mut dyn FnMut(&MessageView) -> bool`) decides which messages print; `run`
//! passes the compiled `--match` matcher, or one that keeps everything.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::limits::{
    MESSAGE_BYTES_CEILING, MESSAGE_BYTES_DEFAULT, READ_BUFFER_BYTES_DEFAULT, TAIL_ZEROS_WAIT,
};
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

/// What [`cat`] reads: a file, or anything else it can seek back in (a tail reader reads a
/// range still being written again).
pub trait Source: Read + Seek {}

impl<T: Read + Seek> Source for T {}

/// Reads frames from `reader` and prints the messages `filter` keeps to `out` as JSON lines.
///
/// # Errors
/// Reading, seeking or writing failed.
pub fn cat(
    reader: &mut dyn Source,
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
    // The zero a tail reader waits at: its offset in the file, and since when.
    let mut zeros: Option<(u64, Instant)> = None;
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
        let mut held = false;
        while summary.printed < limit {
            if options.tail && buffer.pending().first() == Some(&0) {
                let pending = buffer.pending().len() as u64;
                let at = reader.stream_position()? - pending;
                let (_, since) = *zeros.get_or_insert((at, Instant::now()));
                if since.elapsed() < TAIL_ZEROS_WAIT {
                    // A range still being written: read it again later.
                    buffer.unread();
                    reader.seek(SeekFrom::Start(at))?;
                    held = true;
                    break;
                }
                // The zeros stood: the splitter skips them as corrupt bytes.
            }
            let Some(record) = buffer.next_record(&mut splitter) else {
                break;
            };
            zeros = None;
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
        if held {
            out.flush()?;
            std::thread::sleep(TAIL_POLL_INTERVAL);
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
        let summary = cat(
            &mut io::Cursor::new(stream),
            &mut out,
            &options(),
            &mut |_| true,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains(r#""payload":"one""#), "{}", lines[0]);
        assert!(lines[1].contains(r#""payload":"two""#), "{}", lines[1]);
        assert_eq!(summary.printed, 2);
        assert_eq!(summary.undecodable, 1);
        assert_eq!(summary.splitter.discarded_bytes, 7 + 16);
    }

    /// Runs `cat --tail` on `path` in a thread until it printed `messages`; gives its summary
    /// and output, or `None` if it did not finish within 10 s.
    fn tail(path: &std::path::Path, messages: u64) -> Option<(CatSummary, String)> {
        let path = path.to_path_buf();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut file = File::open(&path).unwrap();
            let mut out = Vec::new();
            let tail = CatOptions {
                tail: true,
                max_messages: Some(messages),
                ..options()
            };
            let summary = cat(&mut file, &mut out, &tail, &mut |_| true).unwrap();
            let _ = done.send((summary, String::from_utf8(out).unwrap()));
        });
        finished.recv_timeout(Duration::from_secs(10)).ok()
    }

    fn payloads(text: &str) -> Vec<String> {
        let payload = |line: &str| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["payload"].as_str().unwrap_or_default().to_string()
        };
        text.lines().map(payload).collect()
    }

    #[test]
    fn tail_reads_a_range_still_being_written_once_it_lands() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("framed.log");
        let [one, two, three] = ["one", "two", "three"].map(|payload| {
            let mut frame = Vec::new();
            write_frame(&mut frame, &message(payload), None).unwrap();
            frame
        });
        // `two` is a write in flight: its range is zeros while `three` already landed.
        let mut bytes = one.clone();
        bytes.resize(one.len() + two.len(), 0);
        bytes.extend_from_slice(&three);
        std::fs::write(&path, &bytes).unwrap();
        let writer = std::thread::spawn({
            let path = path.clone();
            move || {
                std::thread::sleep(Duration::from_millis(300));
                let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                file.write_all_at(&two, one.len() as u64).unwrap();
            }
        });
        let (summary, text) = tail(&path, 3).expect("cat printed all three messages");
        writer.join().unwrap();
        assert_eq!(payloads(&text), ["one", "two", "three"]);
        assert_eq!(summary.splitter.discarded_bytes, 0);
    }

    #[test]
    fn tail_skips_zeros_that_stay_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("framed.log");
        let mut bytes = Vec::new();
        write_frame(&mut bytes, &message("before"), None).unwrap();
        bytes.resize(bytes.len() + 40, 0);
        write_frame(&mut bytes, &message("after"), None).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let started = Instant::now();
        let (summary, text) = tail(&path, 2).expect("cat printed both messages");
        assert!(
            started.elapsed() >= TAIL_ZEROS_WAIT,
            "it waited at the zeros first"
        );
        assert_eq!(payloads(&text), ["before", "after"]);
        assert_eq!(summary.splitter.discarded_bytes, 40);
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
        let summary = cat(&mut io::Cursor::new(stream), &mut out, &limited, &mut keep).unwrap();
        assert_eq!((summary.printed, summary.filtered), (2, 1));
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
    }
}
