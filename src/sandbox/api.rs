//! The Heka API a script calls (reference §5), and the host state those calls share.
//!
//! | function | kinds | notes |
//! |---|---|---|
//! | `read_message(var, fi, ai)` | all | headers, `Fields[name]`, `raw`, `framed`, `size` |
//! | `read_config(key)` | all | the `[name.config]` table |
//! | `add_to_payload(...)` | all | numbers, strings, booleans, nil, circular buffers |
//! | `inject_payload(type, name, ...)` | all | flushes the payload buffer as a message |
//! | `inject_message(table or pb)` | all | see [`super::protobuf`] |
//! | `decode_message(pb)` / `encode_message(t, framed)` | all | |
//! | `write_message(var, value, rep, fi, ai)` | decoder, encoder | mutates the record |
//!
//! `read_message` is served from the record's bytes, copied once per call into a buffer the
//! sandbox reuses: reading one header or field scans only the top level and that field, never
//! decoding the whole message. Absent string headers read as `""`, Severity as 7 and Pid as
//! 0 (Heka's Go getters); an absent field reads as `nil`.
//!
//! Every callback borrows host state with `try_borrow`, so a re-entrant call (from a `__gc`
//! metamethod, say) is a Lua error, never a panic.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use gyges_sys::lua_table::Keys;
use mlua::{AnyUserData, Lua, Table, Value, Variadic};

use super::circular_buffer::CircularBuffer;
use super::output::{self, AppendError};
use super::protobuf::{self, Stamp};
use super::rewrite::{self, FieldChange, HeaderChange};
use super::{
    push_record, record_to_protobuf, ConfigValue, HostInfo, SandboxConfig, SandboxKind,
    INSTRUCTION_HOOK_INTERVAL,
};
use crate::message::{FieldValue, IntHeader, MessageView, ProtoView, StrHeader, UuidSource};

/// The Type prefix of messages a filter injects.
pub const FILTER_TYPE_PREFIX: &[u8] = b"heka.sandbox.";
/// The Type of a filter's `inject_payload` messages.
pub const PAYLOAD_TYPE: &[u8] = b"heka.sandbox-output";

/// Why the current call must stop whatever the script does (not catchable by `pcall`).
pub(crate) const ABORT_INSTRUCTIONS: &str = "instruction_limit exceeded";
pub(crate) const ABORT_MEMORY: &str = "memory_limit exceeded";
pub(crate) const ABORT_OUTPUT: &str = "output_limit exceeded";
pub(crate) const ABORT_INJECT: &str = "exceeded InjectMessage count";

/// State shared by the sandbox and the callbacks it installs in Lua.
pub struct Host {
    pub(crate) kind: SandboxKind,
    pub(crate) name: String,
    pub(crate) hostname: String,
    pub(crate) config: BTreeMap<String, ConfigValue>,
    pub(crate) instruction_limit: u64,
    pub(crate) output_limit: usize,
    pub(crate) memory_limit: usize,
    pub(crate) max_process_inject: u32,
    pub(crate) max_timer_inject: u32,
    /// The current record as Heka protobuf; empty outside `process_message`.
    message: RefCell<Vec<u8>>,
    /// Set when `write_message` changed the record.
    mutated: Cell<bool>,
    /// The field `read_next_field` returns next, from 0 at each record.
    next_field: Cell<usize>,
    /// A decoder's `[name.config] tz`: the zone of the wall-clock Timestamps it injects.
    pub(crate) zone: Option<crate::zone::Zone>,
    /// The `add_to_payload` buffer.
    payload: RefCell<Vec<u8>>,
    /// Scratch space for building one message or field.
    scratch: RefCell<(Vec<u8>, Vec<u8>)>,
    /// The caller's sink, swapped in for the duration of a call.
    sink: RefCell<Vec<u8>>,
    /// Encoders: whether the script injected this call (the sink then holds the output).
    encoder_output: Cell<bool>,
    inject_budget: Cell<u32>,
    injected: Cell<u32>,
    output_max: Cell<usize>,
    hook_ticks: Cell<u64>,
    /// Instructions charged this call for the string matcher's steps
    /// ([`super::pattern`]), which the count hook cannot see.
    pattern_instructions: Cell<u64>,
    pub(crate) hook_interval: u32,
    abort: Cell<Option<&'static str>>,
    limits_suspended: Cell<bool>,
    /// Bytes of native (non-Lua) storage, e.g. circular buffers, charged to memory_limit.
    native_bytes: Rc<Cell<usize>>,
    uuids: RefCell<UuidSource>,
}

impl Host {
    pub(crate) fn new(
        kind: SandboxKind,
        name: &str,
        config: &SandboxConfig,
        host_info: &HostInfo,
    ) -> Host {
        let hook_interval = config
            .instruction_limit
            .min(u64::from(INSTRUCTION_HOOK_INTERVAL));
        Host {
            kind,
            name: name.to_string(),
            hostname: host_info.hostname.clone(),
            config: config.config.clone(),
            instruction_limit: config.instruction_limit,
            output_limit: config.output_limit,
            memory_limit: config.memory_limit,
            max_process_inject: host_info.max_process_inject,
            max_timer_inject: host_info.max_timer_inject,
            message: RefCell::new(Vec::with_capacity(1024)),
            mutated: Cell::new(false),
            next_field: Cell::new(0),
            zone: None,
            payload: RefCell::new(Vec::new()),
            scratch: RefCell::new((Vec::new(), Vec::new())),
            sink: RefCell::new(Vec::new()),
            encoder_output: Cell::new(false),
            inject_budget: Cell::new(0),
            injected: Cell::new(0),
            output_max: Cell::new(0),
            hook_ticks: Cell::new(0),
            hook_interval: hook_interval.max(1) as u32,
            pattern_instructions: Cell::new(0),
            abort: Cell::new(None),
            limits_suspended: Cell::new(false),
            native_bytes: Rc::new(Cell::new(0)),
            uuids: RefCell::new(UuidSource::new()),
        }
    }

    /// Copies `record` into the reusable message buffer.
    pub(crate) fn load_record(&self, record: &MessageView<'_>) {
        if let Ok(mut message) = self.message.try_borrow_mut() {
            record_to_protobuf(record, &mut message);
        }
        self.mutated.set(false);
        self.next_field.set(0);
        self.encoder_output.set(false);
    }

    /// The current record's bytes (after any `write_message`).
    pub(crate) fn with_message<R>(&self, visit: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.message
            .try_borrow()
            .ok()
            .map(|message| visit(&message))
    }

    /// Whether `write_message` changed the record during the last call.
    pub(crate) fn mutated(&self) -> bool {
        self.mutated.get()
    }

    /// Whether an encoder's script injected output during the last call.
    pub(crate) fn encoder_output(&self) -> bool {
        self.encoder_output.get()
    }

    #[cfg(test)]
    pub(crate) fn payload_text(&self) -> String {
        String::from_utf8_lossy(&self.payload.borrow()).into_owned()
    }

    #[cfg(test)]
    pub(crate) fn take_payload(&self) -> String {
        let text = self.payload_text();
        self.payload.borrow_mut().clear();
        text
    }

    pub(crate) fn set_inject_budget(&self, budget: u32) {
        self.inject_budget.set(budget);
    }

    pub(crate) fn take_injected_count(&self) -> u32 {
        self.injected.replace(0)
    }

    pub(crate) fn swap_sink(&self, sink: &mut Vec<u8>) {
        if let Ok(mut inner) = self.sink.try_borrow_mut() {
            std::mem::swap(&mut *inner, sink);
        }
    }

    /// Starts counting instructions for one call.
    pub(crate) fn begin_call(&self, _instruction_limit: u64) {
        self.hook_ticks.set(0);
        self.pattern_instructions.set(0);
        self.abort.set(None);
    }

    /// Ends a call, returning the abort reason if a limit was passed.
    pub(crate) fn end_call(&self) -> Option<String> {
        self.abort.take().map(str::to_string)
    }

    pub(crate) fn instructions_used(&self) -> u64 {
        self.hook_ticks.get() * u64::from(self.hook_interval) + self.pattern_instructions.get()
    }

    /// Steps the string matcher may take in this call: what is left of the instruction limit,
    /// at [`super::pattern::PATTERN_STEPS_PER_INSTRUCTION`] steps per instruction (no bound
    /// while limits are suspended).
    pub(crate) fn pattern_budget(&self) -> u64 {
        if self.limits_suspended.get() {
            return u64::MAX;
        }
        self.instruction_limit
            .saturating_sub(self.instructions_used())
            .saturating_mul(super::pattern::PATTERN_STEPS_PER_INSTRUCTION)
    }

    /// Charges the string matcher's `steps` to this call's instructions.
    pub(crate) fn charge_pattern_steps(&self, steps: u64) {
        if self.limits_suspended.get() {
            return;
        }
        let instructions = steps.div_ceil(super::pattern::PATTERN_STEPS_PER_INSTRUCTION);
        self.pattern_instructions
            .set(self.pattern_instructions.get().saturating_add(instructions));
    }

    pub(crate) fn output_max(&self) -> usize {
        self.output_max.get()
    }

    pub(crate) fn native_bytes(&self) -> usize {
        self.native_bytes.get()
    }

    pub(crate) fn native_bytes_counter(&self) -> Rc<Cell<usize>> {
        Rc::clone(&self.native_bytes)
    }

    pub(crate) fn suspend_limits(&self, suspended: bool) {
        self.limits_suspended.set(suspended);
    }

    pub(crate) fn aborted(&self) -> bool {
        self.abort.get().is_some()
    }

    /// Records an abort and returns the Lua error that unwinds the script.
    pub(crate) fn abort_with(&self, reason: &'static str) -> mlua::Error {
        if self.abort.get().is_none() {
            self.abort.set(Some(reason));
        }
        mlua::Error::runtime(reason)
    }

    /// The count hook: runs every `hook_interval` instructions.
    pub(crate) fn on_hook(&self) -> mlua::Result<mlua::VmState> {
        if self.limits_suspended.get() {
            return Ok(mlua::VmState::Continue);
        }
        if let Some(reason) = self.abort.get() {
            return Err(mlua::Error::runtime(reason));
        }
        let ticks = self.hook_ticks.get() + 1;
        self.hook_ticks.set(ticks);
        if self.instructions_used() > self.instruction_limit {
            return Err(self.abort_with(ABORT_INSTRUCTIONS));
        }
        Ok(mlua::VmState::Continue)
    }

    /// Bytes that native storage may still take: what the Lua state leaves of memory_limit.
    pub(crate) fn native_budget(&self, lua: &Lua) -> usize {
        self.memory_limit
            .saturating_sub(lua.used_memory() + self.native_bytes.get())
    }

    fn note_output(&self, bytes: usize) {
        if bytes > self.output_max.get() {
            self.output_max.set(bytes);
        }
    }

    fn take_inject(&self, function: &str) -> mlua::Result<()> {
        let budget = self.inject_budget.get();
        if budget == 0 {
            let _ = function;
            return Err(self.abort_with(ABORT_INJECT));
        }
        self.inject_budget.set(budget - 1);
        Ok(())
    }

    /// Hands one finished message to the caller: a record in the sink, or for encoders the
    /// output bytes themselves (the last injection wins).
    fn deliver(&self, message: &[u8]) -> mlua::Result<()> {
        let mut sink = self.sink.try_borrow_mut().map_err(reentrant)?;
        if self.kind == SandboxKind::Encoder {
            sink.clear();
            sink.extend_from_slice(message);
            self.encoder_output.set(true);
        } else {
            push_record(&mut sink, message);
        }
        self.injected.set(self.injected.get().saturating_add(1));
        Ok(())
    }
}

fn reentrant<E>(_: E) -> mlua::Error {
    mlua::Error::runtime("re-entrant sandbox API call")
}

/// Installs the API functions for the host's kind in the globals.
///
/// # Errors
/// mlua's error if a function cannot be created.
pub(crate) fn install(lua: &Lua, host: &Rc<Host>) -> mlua::Result<()> {
    let globals = lua.globals();
    let read = Rc::clone(host);
    globals.raw_set(
        "read_message",
        lua.create_function(
            move |lua, args: (mlua::LuaString, Option<i64>, Option<i64>)| {
                let (name, field_index, array_index) = args;
                read_message(lua, &read, &name.as_bytes(), field_index, array_index)
            },
        )?,
    )?;
    let next = Rc::clone(host);
    globals.raw_set(
        "read_next_field",
        lua.create_function(move |lua, ()| read_next_field(lua, &next))?,
    )?;
    let config = Rc::clone(host);
    globals.raw_set(
        "read_config",
        lua.create_function(move |lua, name: mlua::LuaString| {
            let name = name.to_str()?;
            match config.config.get(&*name) {
                None => Ok(Value::Nil),
                Some(value) => config_value_to_lua(lua, value),
            }
        })?,
    )?;
    let add = Rc::clone(host);
    globals.raw_set(
        "add_to_payload",
        lua.create_function(move |lua, values: Variadic<Value>| {
            append_payload(lua, &add, &values)
        })?,
    )?;
    let payload = Rc::clone(host);
    globals.raw_set(
        "inject_payload",
        lua.create_function(move |lua, values: Variadic<Value>| {
            inject_payload(lua, &payload, values)
        })?,
    )?;
    // The key strings message tables are read by, made once for every call.
    let keys = Rc::new(protobuf::message_keys(lua)?);
    let inject = Rc::clone(host);
    let inject_keys = Rc::clone(&keys);
    globals.raw_set(
        "inject_message",
        lua.create_function(move |lua, value: Value| {
            inject_message(lua, &inject_keys, &inject, value)
        })?,
    )?;
    globals.raw_set(
        "decode_message",
        lua.create_function(|lua, bytes: mlua::LuaString| {
            protobuf::decode_to_table(lua, &bytes.as_bytes())
        })?,
    )?;
    let encode = Rc::clone(host);
    globals.raw_set(
        "encode_message",
        lua.create_function(move |lua, (table, framed): (Table, Option<bool>)| {
            encode_message(lua, &keys, &encode, &table, framed.unwrap_or(false))
        })?,
    )?;
    if matches!(host.kind, SandboxKind::Decoder | SandboxKind::Encoder) {
        let write = Rc::clone(host);
        globals.raw_set(
            "write_message",
            lua.create_function(
                move |_,
                      args: (
                    mlua::LuaString,
                    Value,
                    Option<mlua::LuaString>,
                    Option<i64>,
                    Option<i64>,
                )| { write_message(&write, args) },
            )?,
        )?;
    }
    Ok(())
}

fn index_arg(value: Option<i64>, what: &str) -> mlua::Result<usize> {
    match value {
        None => Ok(0),
        Some(index) => usize::try_from(index)
            .map_err(|_| mlua::Error::runtime(format!("{what} index must be >= 0"))),
    }
}

fn read_message(
    lua: &Lua,
    host: &Host,
    name: &[u8],
    field_index: Option<i64>,
    array_index: Option<i64>,
) -> mlua::Result<Value> {
    let field_index = index_arg(field_index, "field")?;
    let array_index = index_arg(array_index, "array")?;
    let message = host.message.try_borrow().map_err(reentrant)?;
    if message.is_empty() {
        return Ok(Value::Nil);
    }
    let view = ProtoView::new(&message);
    let text = |bytes: Option<&[u8]>| -> mlua::Result<Value> {
        Ok(Value::String(lua.create_string(bytes.unwrap_or_default())?))
    };
    match name {
        b"Type" => text(view.str_header(StrHeader::Type)),
        b"Logger" => text(view.str_header(StrHeader::Logger)),
        b"Payload" => text(view.str_header(StrHeader::Payload)),
        b"EnvVersion" => text(view.str_header(StrHeader::EnvVersion)),
        b"Hostname" => text(view.str_header(StrHeader::Hostname)),
        b"Uuid" => text(view.uuid()),
        b"Timestamp" => Ok(view.timestamp().map_or(Value::Nil, Value::Integer)),
        b"Severity" => Ok(Value::Integer(
            view.int_header(IntHeader::Severity).unwrap_or(7),
        )),
        b"Pid" => Ok(Value::Integer(view.int_header(IntHeader::Pid).unwrap_or(0))),
        b"raw" => text(Some(&message)),
        b"size" => Ok(Value::Integer(message.len() as i64)),
        b"framed" => {
            let mut framed = Vec::with_capacity(message.len() + 16);
            protobuf::frame(&message, &mut framed);
            text(Some(&framed))
        }
        _ => {
            let Some(field_name) = name
                .strip_prefix(b"Fields[")
                .and_then(|rest| rest.strip_suffix(b"]"))
            else {
                return Ok(Value::Nil);
            };
            match view
                .field(field_name, field_index)
                .and_then(|field| field.value(array_index))
            {
                Some(value) => protobuf::field_value_to_lua(lua, value),
                None => Ok(Value::Nil),
            }
        }
    }
}

/// A `[name.config]` value as the script reads it; arrays and tables become Lua tables, as
/// Heka's host passed them.
fn config_value_to_lua(lua: &Lua, value: &ConfigValue) -> mlua::Result<Value> {
    Ok(match value {
        ConfigValue::String(text) => Value::String(lua.create_string(text)?),
        ConfigValue::Bool(flag) => Value::Boolean(*flag),
        ConfigValue::Integer(number) => Value::Integer(*number),
        ConfigValue::Float(number) => Value::Number(*number),
        ConfigValue::Array(values) => {
            let table = lua.create_table_with_capacity(values.len(), 0)?;
            for (index, value) in values.iter().enumerate() {
                table.raw_set(index + 1, config_value_to_lua(lua, value)?)?;
            }
            Value::Table(table)
        }
        ConfigValue::Table(entries) => {
            let table = lua.create_table_with_capacity(0, entries.len())?;
            for (key, value) in entries {
                table.raw_set(key.as_str(), config_value_to_lua(lua, value)?)?;
            }
            Value::Table(table)
        }
    })
}

/// `read_next_field()`: the record's next field as `value_type, name, value, representation,
/// count` (its first value, and how many it has), or nothing once every field was returned.
/// Each record starts again at its first field.
fn read_next_field(lua: &Lua, host: &Host) -> mlua::Result<mlua::MultiValue> {
    let message = host.message.try_borrow().map_err(reentrant)?;
    let index = host.next_field.get();
    let Some(field) = ProtoView::new(&message).fields().nth(index) else {
        return Ok(mlua::MultiValue::new());
    };
    host.next_field.set(index + 1);
    let value = match field.value(0) {
        Some(value) => protobuf::field_value_to_lua(lua, value)?,
        None => Value::Nil,
    };
    let name = lua.create_string(field.name().unwrap_or_default())?;
    let representation = lua.create_string(field.representation().unwrap_or_default())?;
    Ok(mlua::MultiValue::from_iter([
        Value::Integer(field.value_type() as i64),
        Value::String(name),
        value,
        Value::String(representation),
        Value::Integer(field.values().count() as i64),
    ]))
}

/// Appends values to the payload buffer under the output limit.
fn append_payload(lua: &Lua, host: &Host, values: &[Value]) -> mlua::Result<()> {
    let mut payload = host.payload.try_borrow_mut().map_err(reentrant)?;
    for (position, value) in values.iter().enumerate() {
        let result = match value {
            Value::UserData(data) if data.is::<CircularBuffer>() => {
                append_circular_buffer(lua, host, data, &mut payload)
            }
            other => output::push_value(&mut payload, other, host.output_limit),
        };
        match result {
            Ok(()) => {}
            Err(AppendError::Limit) => {
                host.note_output(host.output_limit + 1);
                return Err(host.abort_with(super::api::ABORT_OUTPUT));
            }
            Err(AppendError::Unsupported(type_name)) => {
                return Err(mlua::Error::runtime(format!(
                    "add_to_payload() argument {} has unsupported type '{type_name}'",
                    position + 1
                )));
            }
        }
    }
    host.note_output(payload.len());
    Ok(())
}

fn append_circular_buffer(
    _lua: &Lua,
    host: &Host,
    data: &AnyUserData,
    payload: &mut Vec<u8>,
) -> Result<(), AppendError> {
    let Ok(mut buffer) = data.borrow_mut::<CircularBuffer>() else {
        return Err(AppendError::Unsupported("circular_buffer in use"));
    };
    let start = payload.len();
    buffer.output(payload);
    if payload.len() > host.output_limit {
        payload.truncate(start);
        return Err(AppendError::Limit);
    }
    Ok(())
}

fn inject_payload(lua: &Lua, host: &Host, values: Variadic<Value>) -> mlua::Result<()> {
    let text_arg = |index: usize, default: &'static str| -> mlua::Result<Vec<u8>> {
        match values.get(index) {
            None | Some(Value::Nil) => Ok(default.as_bytes().to_vec()),
            Some(Value::String(text)) if text.as_bytes().is_empty() => {
                Ok(default.as_bytes().to_vec())
            }
            Some(Value::String(text)) => Ok(text.as_bytes().to_vec()),
            Some(_) => Err(mlua::Error::runtime(format!(
                "inject_payload() argument {} must be a string",
                index + 1
            ))),
        }
    };
    let payload_type = text_arg(0, "txt")?;
    let payload_name = text_arg(1, "")?;
    if values.len() > 2 {
        append_payload(lua, host, &values[2..])?;
    }
    let mut payload = host.payload.try_borrow_mut().map_err(reentrant)?;
    if payload.is_empty() {
        return Ok(());
    }
    host.take_inject("inject_payload()")?;
    if host.kind == SandboxKind::Encoder {
        let result = host.deliver(&payload);
        payload.clear();
        return result;
    }
    let mut scratch = host.scratch.try_borrow_mut().map_err(reentrant)?;
    let (message, field) = &mut *scratch;
    message.clear();
    let uuid = host.uuids.try_borrow_mut().map_err(reentrant)?.next_uuid();
    crate::message::wire::put_bytes(message, 1, &uuid);
    let original = host.message.try_borrow().map_err(reentrant)?;
    let view = ProtoView::new(&original);
    let defaults = (host.kind == SandboxKind::Decoder && !original.is_empty()).then_some(&view);
    let timestamp = defaults
        .and_then(|view| view.timestamp())
        .unwrap_or_else(crate::message::now_ns);
    crate::message::wire::put_int(message, 2, timestamp);
    let (type_, logger, hostname) = match defaults {
        Some(view) => (
            view.str_header(StrHeader::Type).unwrap_or_default(),
            view.str_header(StrHeader::Logger).unwrap_or_default(),
            view.str_header(StrHeader::Hostname).unwrap_or_default(),
        ),
        None => (PAYLOAD_TYPE, host.name.as_bytes(), host.hostname.as_bytes()),
    };
    crate::message::wire::put_bytes(message, 3, type_);
    crate::message::wire::put_bytes(message, 4, logger);
    crate::message::wire::put_bytes(message, 6, &payload);
    crate::message::wire::put_bytes(message, 9, hostname);
    protobuf::put_string_field(
        field,
        message,
        b"payload_type",
        &payload_type,
        b"file-extension",
    );
    protobuf::put_string_field(field, message, b"payload_name", &payload_name, b"");
    payload.clear();
    drop(original);
    host.note_output(message.len());
    host.deliver(message)
}

fn inject_message(lua: &Lua, keys: &Keys, host: &Host, value: Value) -> mlua::Result<()> {
    let mut scratch = host.scratch.try_borrow_mut().map_err(reentrant)?;
    let (message, field) = &mut *scratch;
    message.clear();
    let original = host.message.try_borrow().map_err(reentrant)?;
    let original_view = ProtoView::new(&original);
    let stamp = match host.kind {
        SandboxKind::Filter => Stamp {
            logger: Some(host.name.as_bytes()),
            hostname: Some(host.hostname.as_bytes()),
            type_prefix: Some(FILTER_TYPE_PREFIX),
            defaults: None,
            zone: None,
        },
        SandboxKind::Decoder => Stamp {
            defaults: (!original.is_empty()).then_some(&original_view),
            zone: host.zone.as_ref(),
            ..Stamp::default()
        },
        SandboxKind::Encoder => Stamp::default(),
    };
    match value {
        Value::Table(table) => {
            let mut uuids = host.uuids.try_borrow_mut().map_err(reentrant)?;
            protobuf::encode_table(lua, keys, &table, &stamp, &mut uuids, message, field)
                .map_err(|error| prefix_error("inject_message()", error))?;
        }
        Value::String(bytes) => {
            let bytes = bytes.as_bytes();
            let view = ProtoView::new(&bytes);
            if view.validate().is_err() {
                return Err(mlua::Error::runtime(
                    "inject_message() protobuf unmarshal failed",
                ));
            }
            if host.kind == SandboxKind::Filter {
                rewrite::restamp(&view, &stamp, message);
            } else {
                message.extend_from_slice(&bytes);
            }
        }
        _ => {
            return Err(mlua::Error::runtime(
                "inject_message() takes a single string or table argument",
            ))
        }
    }
    drop(original);
    if message.len() > host.output_limit {
        host.note_output(message.len());
        return Err(host.abort_with(ABORT_OUTPUT));
    }
    host.take_inject("inject_message()")?;
    host.note_output(message.len());
    host.deliver(message)
}

fn prefix_error(function: &str, error: mlua::Error) -> mlua::Error {
    match error {
        mlua::Error::RuntimeError(message) => mlua::Error::runtime(format!("{function} {message}")),
        other => other,
    }
}

fn encode_message(
    lua: &Lua,
    keys: &Keys,
    host: &Host,
    table: &Table,
    framed: bool,
) -> mlua::Result<mlua::LuaString> {
    let mut message = Vec::with_capacity(256);
    let mut field = Vec::new();
    {
        let mut uuids = host.uuids.try_borrow_mut().map_err(reentrant)?;
        protobuf::encode_table(
            lua,
            keys,
            table,
            &Stamp::default(),
            &mut uuids,
            &mut message,
            &mut field,
        )
        .map_err(|error| prefix_error("encode_message()", error))?;
    }
    if message.len() > host.output_limit {
        return Err(host.abort_with(ABORT_OUTPUT));
    }
    if framed {
        let mut out = Vec::with_capacity(message.len() + 16);
        protobuf::frame(&message, &mut out);
        return lua.create_string(out);
    }
    lua.create_string(message)
}

fn write_message(
    host: &Host,
    (name, value, representation, field_index, array_index): (
        mlua::LuaString,
        Value,
        Option<mlua::LuaString>,
        Option<i64>,
        Option<i64>,
    ),
) -> mlua::Result<()> {
    let array_index_given = array_index.is_some();
    let field_index = index_arg(field_index, "field")?;
    let array_index = index_arg(array_index, "array")?;
    let name = name.as_bytes();
    let mut message = host.message.try_borrow_mut().map_err(reentrant)?;
    if message.is_empty() {
        return Err(write_failed("no message"));
    }
    let mut scratch = host.scratch.try_borrow_mut().map_err(reentrant)?;
    let (out, field) = &mut *scratch;
    out.clear();
    let view = ProtoView::new(&message);
    if view.validate().is_err() {
        return Err(write_failed("the message is not valid protobuf"));
    }
    let text_bytes = match &value {
        Value::String(text) => Some(text.as_bytes()),
        _ => None,
    };
    let text = text_bytes.as_deref();
    let number = match &value {
        Value::Integer(number) => Some(*number as f64),
        Value::Number(number) => Some(*number),
        _ => None,
    };
    if let Some(change) = write_header_change(&name, text, number)? {
        rewrite::rewrite_header(&view, &change, out);
    } else if let Some(header) = write_text_header(&name) {
        let owned_number;
        let bytes: &[u8] = match (text, number) {
            (Some(text), _) => text,
            (None, Some(number)) => {
                owned_number = number.to_string();
                owned_number.as_bytes()
            }
            _ => return Err(write_failed("expected a string")),
        };
        rewrite::rewrite_header(&view, &HeaderChange::Text(header, bytes), out);
    } else if let Some(field_name) = name
        .strip_prefix(b"Fields[")
        .and_then(|rest| rest.strip_suffix(b"]"))
    {
        let field_value = write_field_value(&value, text, number)?;
        let representation = representation.as_ref().map(|text| text.as_bytes());
        let change = FieldChange {
            name: field_name,
            field_index,
            array_index,
            value: field_value,
            array_index_given,
            representation: representation.as_deref().filter(|text| !text.is_empty()),
        };
        rewrite::rewrite_field(&view, &change, out, field).map_err(write_failed)?;
    } else {
        return Err(write_failed("unknown variable name"));
    }
    std::mem::swap(&mut *message, out);
    host.mutated.set(true);
    Ok(())
}

/// The error `write_message` raises, naming the problem.
fn write_failed(problem: &str) -> mlua::Error {
    mlua::Error::runtime(format!("write_message() failed: {problem}"))
}

/// The change `write_message` makes to Uuid, Timestamp, Severity or Pid; `None` for any other
/// name. A Uuid is 16 raw bytes or 36-character text; the others take a number or a string
/// holding an integer.
fn write_header_change(
    name: &[u8],
    text: Option<&[u8]>,
    number: Option<f64>,
) -> mlua::Result<Option<HeaderChange<'static>>> {
    let integer = || -> mlua::Result<i64> {
        if let Some(number) = number {
            return Ok(number as i64);
        }
        text.and_then(|text| std::str::from_utf8(text).ok())
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| write_failed("expected a number or a numeric string"))
    };
    Ok(match name {
        b"Uuid" => Some(HeaderChange::Uuid(match text {
            Some(raw) if raw.len() == 16 => raw.try_into().map_err(|_| write_failed("bad Uuid"))?,
            Some(raw) => std::str::from_utf8(raw)
                .ok()
                .and_then(crate::message::view::parse_uuid)
                .ok_or_else(|| write_failed("Uuid must be 16 bytes or 36-character text"))?,
            None => return Err(write_failed("Uuid must be a string")),
        })),
        b"Timestamp" => Some(HeaderChange::Timestamp(integer()?)),
        b"Severity" => Some(HeaderChange::Int(
            IntHeader::Severity,
            i64::from(integer()? as i32),
        )),
        b"Pid" => Some(HeaderChange::Int(
            IntHeader::Pid,
            i64::from(integer()? as i32),
        )),
        _ => None,
    })
}

/// The text header `write_message` sets for `name`; `None` when `name` is not one.
fn write_text_header(name: &[u8]) -> Option<StrHeader> {
    match name {
        b"Type" => Some(StrHeader::Type),
        b"Logger" => Some(StrHeader::Logger),
        b"Payload" => Some(StrHeader::Payload),
        b"EnvVersion" => Some(StrHeader::EnvVersion),
        b"Hostname" => Some(StrHeader::Hostname),
        _ => None,
    }
}

/// The value `write_message` writes into a field; `None` (a nil value) deletes.
fn write_field_value<'a>(
    value: &Value,
    text: Option<&'a [u8]>,
    number: Option<f64>,
) -> mlua::Result<Option<FieldValue<'a>>> {
    Ok(match value {
        Value::Nil => None,
        Value::Boolean(flag) => Some(FieldValue::Bool(*flag)),
        Value::Integer(_) | Value::Number(_) => number.map(FieldValue::Double),
        Value::String(_) => text.map(FieldValue::String),
        _ => {
            return Err(write_failed(
                "only numbers, strings, booleans or nil are accepted",
            ))
        }
    })
}
