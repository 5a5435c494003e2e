//! `gyges matcher [--dialect heka|lsb] EXPR [--message FILE]`.
//!
//! Compiles EXPR. Without `--message`, prints the compiled program (the disassembly of
//! [`Program`]'s `Display`) so an operator can see what will run. With `--message FILE`,
//! prints `true` or `false`. FILE holds one message: JSON as `gyges cat` prints it, or Heka
//! protobuf, either framed (`1E H <header> 1F <message>`) or bare; the form is detected.
//!
//! Exit codes: 0 when the expression compiled (and the message, if any, was read); 2 for a
//! syntax error, printed to stderr (clap's usage errors use 2 as well); 1 when FILE cannot be
//! read or holds no valid message.

use std::borrow::Cow;
use std::path::PathBuf;
use std::process::ExitCode;

use prost::Message as _;

use crate::matcher::{compile, Dialect, Program};
use crate::message::json::{read_json, JsonError};
use crate::message::proto::Header;
use crate::message::view::DecodeError;
use crate::message::{MessageView, ProtoView};

/// The record separator that starts a framed record.
const RECORD_SEPARATOR: u8 = 0x1e;
/// The unit separator between a framed record's header and its message.
const UNIT_SEPARATOR: u8 = 0x1f;

/// Arguments of `gyges matcher`.
#[derive(Debug, clap::Args)]
pub struct MatcherArgs {
    /// The grammar EXPR is written in: heka (Heka's Go matcher) or lsb (lua_sandbox and
    /// Hindsight).
    #[arg(long, value_name = "DIALECT", default_value = "heka", value_parser = parse_dialect)]
    pub dialect: Dialect,
    /// The matcher expression, e.g. `Type == 'nginx.access' && Fields[status] >= 500`.
    #[arg(value_name = "EXPR")]
    pub expression: String,
    /// One message to test EXPR against: JSON (as `gyges cat` prints it) or Heka protobuf,
    /// framed or bare.
    #[arg(long, value_name = "FILE")]
    pub message: Option<PathBuf>,
}

fn parse_dialect(name: &str) -> Result<Dialect, String> {
    name.parse::<Dialect>().map_err(|error| error.to_string())
}

/// Why a message file holds no usable message.
#[derive(Debug, thiserror::Error)]
pub enum MessageFileError {
    /// The file has no bytes.
    #[error("the file is empty")]
    Empty,
    /// The file starts with 0x1E but its first record is not a well-formed frame; the text says
    /// why.
    #[error("malformed framed record: {0}")]
    Frame(&'static str),
    /// The file looks like JSON (starts with `{`) but is not UTF-8.
    #[error("the JSON message is not UTF-8")]
    NotUtf8,
    /// The JSON is not a valid message.
    #[error("invalid JSON message: {0}")]
    Json(#[from] JsonError),
    /// The bytes, read as Heka protobuf, are not a valid message.
    #[error("not a valid Heka protobuf message: {0}")]
    Protobuf(#[from] DecodeError),
}

/// Runs `gyges matcher`; returns the process exit code.
pub fn run(args: &MatcherArgs) -> ExitCode {
    let program = match compile(&args.expression, args.dialect) {
        Ok(program) => program,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let Some(path) = &args.message else {
        print!("{program}");
        return ExitCode::SUCCESS;
    };
    match std::fs::read(path) {
        Ok(bytes) => match verdict(&program, &bytes) {
            Ok(matched) => {
                println!("{matched}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("gyges matcher: {}: {error}", path.display());
                ExitCode::from(1)
            }
        },
        Err(error) => {
            eprintln!("gyges matcher: cannot read {}: {error}", path.display());
            ExitCode::from(1)
        }
    }
}

/// Whether the one message in `file` matches.
///
/// # Errors
/// When the file holds no valid message.
pub fn verdict(program: &Program, file: &[u8]) -> Result<bool, MessageFileError> {
    let record = message_record(file)?;
    let view = ProtoView::new(&record);
    view.validate()?;
    Ok(program.matches(&MessageView::Proto(view)))
}

/// The Heka protobuf bytes of the one message in a file, whatever its form.
///
/// The forms cannot be confused: a framed record starts with 0x1E, JSON with `{` (after
/// whitespace), and a Heka message's first byte is a protobuf key, which is neither (0x1E would
/// be field 3 with wire type 6, `{` field 15 with wire type 3; neither exists).
///
/// # Errors
/// An empty file, a malformed frame, or JSON that is not a message.
pub fn message_record(file: &[u8]) -> Result<Cow<'_, [u8]>, MessageFileError> {
    let Some(&first) = file.first() else {
        return Err(MessageFileError::Empty);
    };
    if first == RECORD_SEPARATOR {
        return framed_message(file).map(Cow::Borrowed);
    }
    if file.trim_ascii_start().first() == Some(&b'{') {
        let text = std::str::from_utf8(file).map_err(|_| MessageFileError::NotUtf8)?;
        return Ok(Cow::Owned(read_json(text)?.encode_to_vec()));
    }
    Ok(Cow::Borrowed(file))
}

/// The message of the first framed record: `1E H <header: H bytes> 1F <message>`.
fn framed_message(file: &[u8]) -> Result<&[u8], MessageFileError> {
    let &header_length = file
        .get(1)
        .ok_or(MessageFileError::Frame("no header length"))?;
    let header_end = 2 + usize::from(header_length);
    let header_bytes = file
        .get(2..header_end)
        .ok_or(MessageFileError::Frame("the header is cut short"))?;
    if file.get(header_end) != Some(&UNIT_SEPARATOR) {
        return Err(MessageFileError::Frame("no 0x1F after the header"));
    }
    let header = Header::decode(header_bytes)
        .map_err(|_| MessageFileError::Frame("the header is not a valid protobuf Header"))?;
    let start = header_end + 1;
    let end = start + header.message_length as usize;
    if header.message_length == 0 {
        return Err(MessageFileError::Frame("the header's message_length is 0"));
    }
    file.get(start..end).ok_or(MessageFileError::Frame(
        "the message is shorter than message_length",
    ))
}
