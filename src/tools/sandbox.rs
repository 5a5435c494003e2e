//! `gyges sandbox load|unload`: drives a SandboxManagerFilter, as Heka's `heka-sbmgr` did.
//! It builds one control message (Type `heka.control.sandbox`, `Fields[action]`, and for a
//! load `Fields[config]` with the filter's TOML and the Lua source as Payload, for an unload
//! `Fields[name]`), signs its frame and sends it over TCP to an input of the daemon.
//!
//! The manager acts only on frames its `message_signer` signed, and only within 5 s of the
//! message's Timestamp (set here to now); it logs what it did or why it refused.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use prost::Message as _;

use super::SignerArgs;
use crate::message::framing::{write_frame, Signer};
use crate::message::proto::{Field, Message};

/// `gyges sandbox`'s options.
#[derive(clap::Args, Debug, Clone)]
pub struct SandboxArgs {
    /// What to ask the manager.
    #[command(subcommand)]
    pub action: SandboxAction,
}

/// The two commands a SandboxManagerFilter takes.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum SandboxAction {
    /// Load (or replace) a SandboxFilter: its config section and its Lua script.
    Load {
        /// Where to send: `host:port` of a TcpInput with the signer's key.
        #[arg(long)]
        addr: String,
        /// The TOML of one SandboxFilter section; its section name names the filter.
        #[arg(long)]
        config: PathBuf,
        /// The Lua script (the config's `filename` is ignored).
        #[arg(long)]
        script: PathBuf,
        /// The frame-signing options (`--signer`, `--hmac-key`, ...): the manager acts only
        /// on what its `message_signer` signed.
        #[command(flatten)]
        signing: SignerArgs,
    },
    /// Unload a filter the manager loaded, by its section name.
    Unload {
        /// Where to send: `host:port` of a TcpInput with the signer's key.
        #[arg(long)]
        addr: String,
        /// The filter's section name.
        #[arg(long)]
        name: String,
        /// The frame-signing options.
        #[command(flatten)]
        signing: SignerArgs,
    },
}

fn string_field(name: &str, value: String) -> Field {
    Field {
        name: name.into(),
        value_string: vec![value],
        ..Field::default()
    }
}

/// The control message: `fields` and `payload` on a `heka.control.sandbox` message stamped
/// now.
pub fn control_message(fields: Vec<Field>, payload: Option<String>) -> Vec<u8> {
    Message {
        uuid: crate::message::UuidSource::new().next_uuid().to_vec(),
        timestamp: crate::message::now_ns(),
        r#type: Some("heka.control.sandbox".into()),
        logger: Some("gyges sandbox".into()),
        payload,
        fields,
        ..Message::default()
    }
    .encode_to_vec()
}

/// The control message a load sends.
///
/// # Errors
/// A file that cannot be read, or a script that is not UTF-8 text.
pub fn load_message(config: &PathBuf, script: &PathBuf) -> Result<Vec<u8>, String> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))
    };
    let (config, script) = (read(config)?, read(script)?);
    let fields = vec![
        string_field("action", "load".into()),
        string_field("config", config),
    ];
    Ok(control_message(fields, Some(script)))
}

/// The control message an unload sends.
pub fn unload_message(name: &str) -> Vec<u8> {
    let fields = vec![
        string_field("action", "unload".into()),
        string_field("name", name.into()),
    ];
    control_message(fields, None)
}

fn send(addr: &str, message: &[u8], signer: &Signer) -> Result<(), String> {
    let mut frame = Vec::with_capacity(message.len() + 300);
    write_frame(&mut frame, message, Some(signer)).map_err(|error| error.to_string())?;
    let mut stream =
        super::inject::connect(addr).map_err(|error| format!("connecting to {error}"))?;
    stream
        .write_all(&frame)
        .and_then(|()| stream.flush())
        .map_err(|error| format!("sending: {error}"))
}

/// Runs `gyges sandbox`.
pub fn run(args: &SandboxArgs) -> ExitCode {
    let (addr, signing, message) = match &args.action {
        SandboxAction::Load {
            addr,
            config,
            script,
            signing,
        } => (addr, signing, load_message(config, script)),
        SandboxAction::Unload {
            addr,
            name,
            signing,
        } => (addr, signing, Ok(unload_message(name))),
    };
    let message = match message {
        Ok(message) => message,
        Err(error) => return super::fail("sandbox", error),
    };
    let signer = match signing.signer() {
        Ok(Some(signer)) => signer,
        Ok(None) => {
            let message =
                "--signer and --hmac-key are required: a manager acts only on signed commands";
            return super::fail("sandbox", message);
        }
        Err(error) => return super::fail("sandbox", error),
    };
    match send(addr, &message, &signer) {
        Ok(()) => {
            eprintln!("gyges sandbox: sent to {addr}; the daemon's log says what the manager did");
            ExitCode::SUCCESS
        }
        Err(error) => super::fail("sandbox", error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{FieldValue, MessageView, ProtoView, StrHeader};

    fn field<'a>(view: &MessageView<'a>, name: &[u8]) -> Option<&'a [u8]> {
        match view.field(name, 0)?.value(0)? {
            FieldValue::String(bytes) => Some(bytes),
            _ => None,
        }
    }

    #[test]
    fn load_and_unload_messages_carry_what_the_manager_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (config, script) = (dir.path().join("a.toml"), dir.path().join("a.lua"));
        std::fs::write(&config, "[a]\ntype = \"SandboxFilter\"\n").unwrap();
        std::fs::write(&script, "function process_message() return 0 end\n").unwrap();
        let bytes = load_message(&config, &script).unwrap();
        let view = MessageView::Proto(ProtoView::new(&bytes));
        assert_eq!(
            view.str_header(StrHeader::Type),
            Some(&b"heka.control.sandbox"[..])
        );
        assert_eq!(field(&view, b"action"), Some(&b"load"[..]));
        assert_eq!(
            field(&view, b"config"),
            Some(&b"[a]\ntype = \"SandboxFilter\"\n"[..])
        );
        let payload = view.str_header(StrHeader::Payload);
        assert_eq!(
            payload,
            Some(&b"function process_message() return 0 end\n"[..])
        );
        let age = crate::message::now_ns() - view.timestamp().unwrap();
        assert!((0..1_000_000_000).contains(&age));
        let bytes = unload_message("a");
        let view = MessageView::Proto(ProtoView::new(&bytes));
        assert_eq!(field(&view, b"action"), Some(&b"unload"[..]));
        assert_eq!(field(&view, b"name"), Some(&b"a"[..]));
        assert!(load_message(&dir.path().join("missing"), &script).is_err());
    }
}
