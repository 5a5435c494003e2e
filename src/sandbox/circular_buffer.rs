//! `circular_buffer`: a sliding-window time series of `rows × columns` doubles, one row per
//! `seconds_per_row`, with per-cell deltas since the last delta output (Heka's module, §5).
//!
//! ```text
//! require "circular_buffer"
//! local cb = circular_buffer.new(rows > 1, 1 <= columns <= 256, seconds_per_row > 0)
//! cb:add(ns, col, v)  cb:set(ns, col, v)  cb:get(ns, col)  cb:get_delta(ns, col)
//! cb:get_range(col[, start_ns[, end_ns]])  cb:get_range_delta(col[, start_ns[, end_ns]])
//! cb:set_header(col, name, unit = "count", aggregation = "sum"|"min"|"max"|"none")
//! cb:get_header(col)  cb:current_time()  cb:get_configuration()  cb:reset_delta()
//! cb:compute("sum"|"avg"|"sd"|"min"|"max", col[, start_ns[, end_ns]]) -> value, active rows
//! cb:mannwhitneyu(col, start_1, end_1, start_2, end_2[, continuity = true]) -> U1, p
//! cb:annotate(ns, col, "info"|"alert", text[, delta = true])  cb:format("cbuf"|"cbufd")
//! ```
//! Columns are 1-based. Integer arguments (columns, rows, seconds per row) are read as Lua 5.1
//! read them: a float is truncated and a numeric string converted (see `Int`). Writing a time newer than the newest row advances the window and
//! clears the rows it passes; a time older than the window is ignored (`nil`).
//!
//! Output (through `add_to_payload`/`inject_payload`), one JSON header line then rows:
//! ```text
//! {"time":<start s>,"rows":R,"columns":C,"seconds_per_row":S,"column_info":[{"name":"..",
//!  "unit":"..","aggregation":".."},...],"annotations":[{"x":<ms>,"col":c,"shortText":"i",
//!  "text":".."},...]}
//! cbuf:  R lines of C tab-separated values, oldest first ("nan" for unset cells)
//! cbufd: one line per changed row: <time s>\t<C deltas>; deltas are cleared by the output,
//!        and nothing at all is written when no row changed and no annotation is pending
//! ```
//! Storage is native (not Lua) memory; it is charged against the sandbox's `memory_limit`
//! when the buffer is created.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::rc::Rc;

use mlua::{AnyUserData, Lua, Table, UserData, UserDataMethods, Value};

use super::api::{Host, ABORT_MEMORY};
use super::output::push_double;

/// The module's version string, as the extension reports it.
pub const VERSION: &str = "1.0.2";
/// Columns per buffer (the extension's bound).
pub const COLUMNS_MAX: usize = 256;
/// Bytes of a column name kept (the extension keeps 15).
pub const NAME_BYTES_MAX: usize = 15;
/// Bytes of a unit label kept (the extension keeps 7).
pub const UNIT_BYTES_MAX: usize = 7;
/// The longest row a buffer may have: a year.
pub const SECONDS_PER_ROW_MAX: i64 = 365 * 86_400;
/// Times are clamped to ±this many seconds (about ±285 years around 1970), so that every
/// time in seconds still fits in nanoseconds.
pub const SECONDS_ABS_MAX: i64 = 9_000_000_000;
/// Bytes of one annotation's text kept.
pub const ANNOTATION_BYTES_MAX: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aggregation {
    Sum,
    Min,
    Max,
    None,
}

impl Aggregation {
    fn name(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::None => "none",
        }
    }
}

#[derive(Clone, Debug)]
struct Header {
    name: String,
    unit: String,
    aggregation: Aggregation,
}

#[derive(Clone, Debug)]
struct Annotation {
    alert: bool,
    text: String,
    /// Still to be written by the next cbufd output.
    delta: bool,
}

/// One circular buffer (Lua userdata).
pub struct CircularBuffer {
    rows: usize,
    columns: usize,
    seconds_per_row: i64,
    /// Start time (s) of the newest row.
    current_time: i64,
    current_row: usize,
    /// `rows × columns` pairs of (value, delta since the last delta output).
    cells: Vec<f64>,
    headers: Vec<Header>,
    delta_format: bool,
    annotations: BTreeMap<(i64, usize), Annotation>,
    native_bytes: Rc<Cell<usize>>,
    charged_bytes: usize,
}

impl Drop for CircularBuffer {
    fn drop(&mut self) {
        self.native_bytes
            .set(self.native_bytes.get().saturating_sub(self.charged_bytes));
    }
}

/// An integer argument as Lua 5.1's `luaL_checkint` read it, which Heka's scripts rely on: a
/// float is truncated toward zero (`cb:add(ns, 2.7, 1)` is column 2) and a numeric string is
/// converted, where Lua 5.4 would raise "number has no integer representation".
#[derive(Debug, Clone, Copy)]
struct Int(i64);

impl mlua::FromLua for Int {
    fn from_lua(value: Value, lua: &Lua) -> mlua::Result<Int> {
        let number = match value {
            Value::Integer(integer) => return Ok(Int(integer)),
            Value::Number(number) => number,
            Value::String(_) => match lua.coerce_number(value)? {
                Some(number) => number,
                None => return Err(mlua::Error::runtime("number expected, got string")),
            },
            other => {
                let message = format!("number expected, got {}", other.type_name());
                return Err(mlua::Error::runtime(message));
            }
        };
        if !number.is_finite() || number.abs() >= 9.2e18 {
            return Err(mlua::Error::runtime("number has no integer representation"));
        }
        Ok(Int(number.trunc() as i64))
    }
}

fn bad_argument(position: usize, problem: &str) -> mlua::Error {
    mlua::Error::runtime(format!("bad argument #{position} ({problem})"))
}

impl CircularBuffer {
    /// A buffer whose newest row starts at `seconds_per_row × (rows − 1)`, all cells unset.
    ///
    /// # Errors
    /// A Lua error for out-of-range dimensions.
    pub fn new(
        rows: i64,
        columns: i64,
        seconds_per_row: i64,
        native_bytes: Rc<Cell<usize>>,
    ) -> mlua::Result<CircularBuffer> {
        if rows <= 1 {
            return Err(bad_argument(1, "rows must be > 1"));
        }
        if !(1..=COLUMNS_MAX as i64).contains(&columns) {
            return Err(bad_argument(2, "columns must be > 0 and <= 256"));
        }
        if !(1..=SECONDS_PER_ROW_MAX).contains(&seconds_per_row) {
            return Err(bad_argument(3, "seconds_per_row is out of range"));
        }
        let rows = rows as usize;
        let columns = columns as usize;
        let cell_count = rows
            .checked_mul(columns * 2)
            .ok_or_else(|| bad_argument(1, "too many rows"))?;
        let charged_bytes =
            Self::bytes_for(rows, columns).ok_or_else(|| bad_argument(1, "too many rows"))?;
        let headers = (0..columns)
            .map(|column| Header {
                name: format!("Column_{}", column + 1),
                unit: "count".to_string(),
                aggregation: Aggregation::Sum,
            })
            .collect();
        native_bytes.set(native_bytes.get() + charged_bytes);
        Ok(CircularBuffer {
            rows,
            columns,
            seconds_per_row,
            current_time: seconds_per_row * (rows as i64 - 1),
            current_row: rows - 1,
            cells: vec![f64::NAN; cell_count],
            headers,
            delta_format: false,
            annotations: BTreeMap::new(),
            native_bytes,
            charged_bytes,
        })
    }

    /// Native bytes a buffer of this size takes.
    pub fn bytes_for(rows: usize, columns: usize) -> Option<usize> {
        rows.checked_mul(columns)?
            .checked_mul(16)?
            .checked_add(columns * 48 + 256)
    }

    fn start_time(&self) -> i64 {
        self.current_time - self.seconds_per_row * (self.rows as i64 - 1)
    }

    fn row_time(&self, ns: f64) -> i64 {
        let bound = SECONDS_ABS_MAX as f64;
        let seconds = if ns.is_nan() {
            0
        } else {
            (ns / 1e9).clamp(-bound, bound) as i64
        };
        seconds - seconds.rem_euclid(self.seconds_per_row)
    }

    /// The row holding `ns`, advancing the window first when `advance` and `ns` is newer.
    fn check_row(&mut self, ns: f64, advance: bool) -> Option<usize> {
        let time = self.row_time(ns);
        let current = self.current_time.div_euclid(self.seconds_per_row);
        let requested = time.div_euclid(self.seconds_per_row);
        let delta = requested - current;
        let row = requested.rem_euclid(self.rows as i64) as usize;
        if delta > 0 && advance {
            self.clear_rows(delta);
            self.current_time = time;
            self.current_row = row;
        } else if delta > 0 || delta.unsigned_abs() >= self.rows as u64 {
            return None;
        }
        Some(row)
    }

    fn clear_rows(&mut self, count: i64) {
        let count = (count as u64).min(self.rows as u64) as usize;
        for step in 1..=count {
            let row = (self.current_row + step) % self.rows;
            let start = row * self.columns * 2;
            self.cells[start..start + self.columns * 2].fill(f64::NAN);
        }
    }

    fn column(&self, column: i64, position: usize) -> mlua::Result<usize> {
        if column < 1 || column as usize > self.columns {
            return Err(bad_argument(position, "column out of range"));
        }
        Ok(column as usize - 1)
    }

    fn index(&self, row: usize, column: usize) -> usize {
        (row * self.columns + column) * 2
    }

    fn add(&mut self, ns: f64, column: i64, value: f64) -> mlua::Result<Option<f64>> {
        let row = self.check_row(ns, true);
        let column = self.column(column, 3)?;
        let Some(row) = row else { return Ok(None) };
        let at = self.index(row, column);
        let old = self.cells[at];
        if old.is_nan() {
            self.cells[at] = value;
        } else {
            if value.is_nan() {
                return Err(mlua::Error::runtime("cannot uninitialize a value"));
            }
            self.cells[at] += value;
            if self.cells[at].is_nan() {
                return Err(mlua::Error::runtime("add produced a NAN"));
            }
        }
        let new = self.cells[at];
        if old == new {
            return Ok(Some(new));
        }
        match self.headers[column].aggregation {
            Aggregation::Sum => {
                let delta = &mut self.cells[at + 1];
                *delta = if delta.is_nan() {
                    value
                } else {
                    *delta + value
                };
            }
            Aggregation::Min | Aggregation::Max => self.cells[at + 1] = new,
            Aggregation::None => {}
        }
        Ok(Some(new))
    }

    fn set(&mut self, ns: f64, column: i64, value: f64) -> mlua::Result<Option<f64>> {
        let row = self.check_row(ns, true);
        let column = self.column(column, 3)?;
        let Some(row) = row else { return Ok(None) };
        let at = self.index(row, column);
        let old = self.cells[at];
        if value.is_nan() && !old.is_nan() {
            return Err(mlua::Error::runtime("cannot uninitialize a value"));
        }
        match self.headers[column].aggregation {
            Aggregation::Sum => {
                self.cells[at] = value;
                let change = if old.is_finite() { value - old } else { value };
                if !(old.is_finite() && change == 0.0) {
                    let delta = &mut self.cells[at + 1];
                    *delta = if delta.is_nan() {
                        change
                    } else {
                        *delta + change
                    };
                }
            }
            Aggregation::Min => {
                if old.is_nan() || value < old {
                    self.cells[at] = value;
                    self.cells[at + 1] = value;
                }
            }
            Aggregation::Max => {
                if old.is_nan() || value > old {
                    self.cells[at] = value;
                    self.cells[at + 1] = value;
                }
            }
            Aggregation::None => self.cells[at] = value,
        }
        Ok(Some(self.cells[at]))
    }

    fn get(&mut self, ns: f64, column: i64, offset: usize) -> mlua::Result<Option<f64>> {
        let row = self.check_row(ns, false);
        let column = self.column(column, 3)?;
        Ok(row.map(|row| self.cells[self.index(row, column) + offset]))
    }

    /// The rows from `start` to `end` (inclusive, ns), or `None` if either is outside.
    fn range(
        &mut self,
        start: Option<f64>,
        end: Option<f64>,
    ) -> mlua::Result<Option<(usize, usize)>> {
        let start = start.unwrap_or(self.start_time() as f64 * 1e9);
        let end = end.unwrap_or(self.current_time as f64 * 1e9);
        if end < start {
            return Err(bad_argument(4, "end must be >= start"));
        }
        let first = self.check_row(start, false);
        let last = self.check_row(end, false);
        Ok(first.zip(last))
    }

    fn range_values(
        &self,
        (first, last): (usize, usize),
        column: usize,
        offset: usize,
    ) -> Vec<f64> {
        let mut values = Vec::new();
        let mut row = first;
        loop {
            values.push(self.cells[self.index(row, column) + offset]);
            if row == last || values.len() >= self.rows {
                break;
            }
            row = (row + 1) % self.rows;
        }
        values
    }

    fn compute(&self, function: &str, values: &[f64]) -> mlua::Result<f64> {
        let present = values.iter().copied().filter(|value| !value.is_nan());
        let count = present.clone().count() as f64;
        let sum: f64 = present.clone().sum();
        Ok(match function {
            "sum" => sum,
            "avg" => sum / count,
            "sd" => {
                let mean = sum / count;
                (present
                    .map(|value| (value - mean) * (value - mean))
                    .sum::<f64>()
                    / count)
                    .sqrt()
            }
            "min" => present.reduce(f64::min).unwrap_or(f64::NAN),
            "max" => present.reduce(f64::max).unwrap_or(f64::NAN),
            _ => {
                return Err(bad_argument(
                    2,
                    "invalid option; expected sum|avg|sd|min|max",
                ))
            }
        })
    }

    fn set_header(
        &mut self,
        column: i64,
        name: &[u8],
        unit: Option<&[u8]>,
        aggregation: Option<&[u8]>,
    ) -> mlua::Result<i64> {
        let index = self.column(column, 2)?;
        let aggregation = match aggregation.unwrap_or(b"sum") {
            b"sum" => Aggregation::Sum,
            b"min" => Aggregation::Min,
            b"max" => Aggregation::Max,
            b"none" => Aggregation::None,
            _ => return Err(bad_argument(5, "invalid option; expected sum|min|max|none")),
        };
        let clean = |text: &[u8], bytes_max: usize, extra: &[u8]| -> String {
            text.iter()
                .take(bytes_max)
                .map(|&byte| {
                    if byte.is_ascii_alphanumeric() || extra.contains(&byte) {
                        byte as char
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        self.headers[index] = Header {
            name: clean(name, NAME_BYTES_MAX, b""),
            unit: clean(unit.unwrap_or(b"count"), UNIT_BYTES_MAX, b"/*"),
            aggregation,
        };
        Ok(column)
    }

    fn annotate(
        &mut self,
        ns: f64,
        column: i64,
        kind: &[u8],
        text: &[u8],
        delta: bool,
    ) -> mlua::Result<()> {
        let row = self.check_row(ns, false);
        let column = self.column(column, 3)?;
        let alert = match kind {
            b"info" => false,
            b"alert" => true,
            _ => return Err(bad_argument(4, "invalid option; expected info|alert")),
        };
        if row.is_none() {
            return Ok(());
        }
        let kept = &text[..text.len().min(ANNOTATION_BYTES_MAX)];
        let annotation = Annotation {
            alert,
            text: String::from_utf8_lossy(kept).into_owned(),
            delta,
        };
        self.annotations
            .insert((self.row_time(ns), column + 1), annotation);
        Ok(())
    }

    fn reset_delta(&mut self) {
        for pair in self.cells.chunks_exact_mut(2) {
            pair[1] = f64::NAN;
        }
    }

    /// Appends the buffer's text in its current format (`cbuf` or `cbufd`).
    pub fn output(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        let _ = write!(
            out,
            "{{\"time\":{},\"rows\":{},\"columns\":{},\"seconds_per_row\":{},\"column_info\":[",
            self.start_time(),
            self.rows,
            self.columns,
            self.seconds_per_row
        );
        for (index, header) in self.headers.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            let _ = write!(
                out,
                "{{\"name\":\"{}\",\"unit\":\"{}\",\"aggregation\":\"{}\"}}",
                header.name,
                header.unit,
                header.aggregation.name()
            );
        }
        out.extend_from_slice(b"],\"annotations\":[");
        let annotations_written = self.output_annotations(out);
        out.extend_from_slice(b"]}\n");
        if !self.delta_format {
            self.output_rows(out);
            return;
        }
        let rows_start = out.len();
        self.output_deltas(out, b'\t', b'\n');
        if out.len() == rows_start && !annotations_written {
            out.truncate(start);
        }
    }

    fn output_rows(&self, out: &mut Vec<u8>) {
        for step in 1..=self.rows {
            let row = (self.current_row + step) % self.rows;
            for column in 0..self.columns {
                if column > 0 {
                    out.push(b'\t');
                }
                push_double(out, self.cells[self.index(row, column)]);
            }
            out.push(b'\n');
        }
    }

    /// Writes and clears the changed rows' deltas.
    fn output_deltas(&mut self, out: &mut Vec<u8>, separator: u8, end: u8) {
        let mut time = self.start_time();
        for step in 1..=self.rows {
            let row = (self.current_row + step) % self.rows;
            let first = self.index(row, 0);
            let dirty =
                (0..self.columns).any(|column| !self.cells[first + column * 2 + 1].is_nan());
            if dirty {
                let _ = write!(out, "{time}");
                for column in 0..self.columns {
                    out.push(separator);
                    let at = first + column * 2 + 1;
                    push_double(out, self.cells[at]);
                    self.cells[at] = f64::NAN;
                }
                out.push(end);
            }
            time += self.seconds_per_row;
        }
    }

    /// Writes the annotations still inside the window (cbufd: only the pending ones, which
    /// are then marked written); returns whether any was written.
    fn output_annotations(&mut self, out: &mut Vec<u8>) -> bool {
        let start_time = self.start_time();
        self.annotations.retain(|(time, _), _| *time >= start_time);
        let mut written = false;
        for ((time, column), annotation) in self.annotations.iter_mut() {
            if self.delta_format {
                if !annotation.delta {
                    continue;
                }
                annotation.delta = false;
            }
            if written {
                out.push(b',');
            }
            written = true;
            let short = if annotation.alert { 'a' } else { 'i' };
            let _ = write!(
                out,
                "{{\"x\":{},\"col\":{column},\"shortText\":\"{short}\",\"text\":\"",
                time * 1000
            );
            escape_json(annotation.text.as_bytes(), out);
            out.extend_from_slice(b"\"}");
        }
        written
    }

    /// Appends Lua source that recreates this buffer as global `key` (see [`super::preserve`]).
    pub fn serialize(&mut self, key: &str, out: &mut Vec<u8>) {
        let _ = writeln!(
            out,
            "if {key} == nil then {key} = circular_buffer.new({}, {}, {}) end",
            self.rows, self.columns, self.seconds_per_row
        );
        for (index, header) in self.headers.iter().enumerate() {
            let _ = writeln!(
                out,
                "{key}:set_header({}, \"{}\", \"{}\", \"{}\")",
                index + 1,
                header.name,
                header.unit,
                header.aggregation.name()
            );
        }
        let _ = write!(
            out,
            "{key}:fromstring(\"{} {}",
            self.current_time, self.current_row
        );
        for pair in self.cells.chunks_exact(2) {
            let _ = write!(out, " {:e}", pair[0]);
        }
        // Pending deltas follow as `time d1 .. dC` groups.
        let mut time = self.start_time();
        for step in 1..=self.rows {
            let row = (self.current_row + step) % self.rows;
            let first = self.index(row, 0);
            if (0..self.columns).any(|column| !self.cells[first + column * 2 + 1].is_nan()) {
                let _ = write!(out, " {time}");
                for column in 0..self.columns {
                    let _ = write!(out, " {:e}", self.cells[first + column * 2 + 1]);
                }
            }
            time += self.seconds_per_row;
        }
        out.extend_from_slice(b"\")\n");
        for ((time, column), annotation) in &self.annotations {
            let _ = write!(
                out,
                "{key}:annotate({}, {column}, \"{}\", ",
                time * 1_000_000_000,
                if annotation.alert { "alert" } else { "info" }
            );
            super::preserve::push_lua_string(annotation.text.as_bytes(), out);
            let _ = writeln!(out, ", {})", annotation.delta);
        }
    }

    /// Restores values (and pending deltas) written by [`CircularBuffer::serialize`] or by
    /// Heka's sandbox: `"<current_time> <current_row> <rows×columns values> [<time> <deltas>]*"`.
    fn restore_text(&mut self, text: &[u8]) -> mlua::Result<()> {
        let text = std::str::from_utf8(text)
            .map_err(|_| mlua::Error::runtime("fromstring() invalid text"))?;
        let mut tokens = text.split_ascii_whitespace();
        let bad = |what: &str| mlua::Error::runtime(format!("fromstring() {what}"));
        let current_time: i64 = tokens
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| bad("invalid time/row"))?;
        let current_row: usize = tokens
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| bad("invalid time/row"))?;
        if current_row >= self.rows {
            return Err(bad("invalid time/row"));
        }
        let cell_count = self.rows * self.columns;
        let mut values = Vec::with_capacity(cell_count);
        for _ in 0..cell_count {
            let value = tokens
                .next()
                .and_then(|t| t.parse::<f64>().ok())
                .ok_or_else(|| bad("too few values"))?;
            values.push(value);
        }
        self.current_time = current_time;
        self.current_row = current_row;
        for (pair, value) in self.cells.chunks_exact_mut(2).zip(values) {
            pair[0] = value;
            pair[1] = f64::NAN;
        }
        let rest: Vec<f64> = tokens
            .map(|t| t.parse::<f64>().map_err(|_| bad("invalid delta")))
            .collect::<mlua::Result<_>>()?;
        if rest.len() % (self.columns + 1) != 0 {
            return Err(bad("invalid delta"));
        }
        for group in rest.chunks_exact(self.columns + 1) {
            if let Some(row) = self.check_row(group[0] * 1e9, false) {
                for (column, delta) in group[1..].iter().enumerate() {
                    let at = self.index(row, column) + 1;
                    self.cells[at] = *delta;
                }
            }
        }
        Ok(())
    }
}

/// JSON string escaping for annotation text (non-printable bytes become spaces).
fn escape_json(text: &[u8], out: &mut Vec<u8>) {
    for &byte in text {
        match byte {
            b'\\' | b'"' | b'/' => {
                out.push(b'\\');
                out.push(byte);
            }
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            byte if byte < 0x20 || byte == 0x7f => out.push(b' '),
            byte => out.push(byte),
        }
    }
}

fn bytes(value: &mlua::LuaString) -> Vec<u8> {
    value.as_bytes().to_vec()
}

impl UserData for CircularBuffer {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        add_cell_methods(methods);
        add_range_methods(methods);
        add_header_methods(methods);
        add_output_methods(methods);
    }
}

/// `add`, `set`, `get`, `get_delta`: one cell at a time.
fn add_cell_methods<M: UserDataMethods<CircularBuffer>>(methods: &mut M) {
    methods.add_method_mut(
        "add",
        |_, this, (ns, Int(column), value): (f64, Int, f64)| this.add(ns, column, value),
    );
    methods.add_method_mut(
        "set",
        |_, this, (ns, Int(column), value): (f64, Int, f64)| this.set(ns, column, value),
    );
    methods.add_method_mut("get", |_, this, (ns, Int(column)): (f64, Int)| {
        this.get(ns, column, 0)
    });
    methods.add_method_mut("get_delta", |_, this, (ns, Int(column)): (f64, Int)| {
        this.get(ns, column, 1)
    });
}

/// `get_range`, `get_range_delta`, `compute`: a column over a range of rows.
fn add_range_methods<M: UserDataMethods<CircularBuffer>>(methods: &mut M) {
    for (name, offset) in [("get_range", 0usize), ("get_range_delta", 1)] {
        methods.add_method_mut(
            name,
            move |lua, this, (Int(column), start, end): (Int, Option<f64>, Option<f64>)| {
                let column = this.column(column, 2)?;
                let Some(rows) = this.range(start, end)? else {
                    return Ok(Value::Nil);
                };
                let values = this.range_values(rows, column, offset);
                Ok(Value::Table(lua.create_sequence_from(values)?))
            },
        );
    }
    methods.add_method_mut(
        "compute",
        |_, this, args: (mlua::LuaString, Int, Option<f64>, Option<f64>)| {
            let (function, Int(column), start, end) = args;
            let column = this.column(column, 3)?;
            let Some(rows) = this.range(start, end)? else {
                return Ok((None, None));
            };
            let values = this.range_values(rows, column, 0);
            let active = values.iter().filter(|value| !value.is_nan()).count();
            let function = bytes(&function);
            let value = this.compute(std::str::from_utf8(&function).unwrap_or(""), &values)?;
            Ok((Some(value), Some(active as i64)))
        },
    );
    methods.add_method_mut(
        "mannwhitneyu",
        |_, this, args: (Int, f64, f64, f64, f64, Option<bool>)| {
            let (Int(column), start_x, end_x, start_y, end_y, continuity) = args;
            let column = this.column(column, 2)?;
            if end_x < start_x {
                return Err(bad_argument(4, "end_1 must be >= start_1"));
            }
            if end_y < start_y {
                return Err(bad_argument(6, "end_2 must be >= start_2"));
            }
            if start_x <= end_y && start_y <= end_x {
                return Err(bad_argument(5, "the two ranges overlap"));
            }
            let (Some(x), Some(y)) = (
                this.range(Some(start_x), Some(end_x))?,
                this.range(Some(start_y), Some(end_y))?,
            ) else {
                return Ok((None, None));
            };
            let (x, y) = (
                this.range_values(x, column, 0),
                this.range_values(y, column, 0),
            );
            let answer = mann_whitney::mann_whitney_u(&x, &y, continuity.unwrap_or(true));
            Ok(answer.map_or((None, None), |(u, p)| (Some(u), Some(p))))
        },
    );
}

/// `set_header`, `get_header`, `current_time`, `get_configuration`: the buffer's description.
fn add_header_methods<M: UserDataMethods<CircularBuffer>>(methods: &mut M) {
    methods.add_method_mut(
        "set_header",
        |_,
         this,
         (Int(column), name, unit, aggregation): (
            Int,
            mlua::LuaString,
            Option<mlua::LuaString>,
            Option<mlua::LuaString>,
        )| {
            let unit = unit.as_ref().map(bytes);
            let aggregation = aggregation.as_ref().map(bytes);
            this.set_header(
                column,
                &name.as_bytes(),
                unit.as_deref(),
                aggregation.as_deref(),
            )
        },
    );
    methods.add_method("get_header", |lua, this, Int(column): Int| {
        let header = &this.headers[this.column(column, 2)?];
        Ok((
            lua.create_string(&header.name)?,
            lua.create_string(&header.unit)?,
            header.aggregation.name(),
        ))
    });
    methods.add_method("current_time", |_, this, ()| {
        Ok(this.current_time * 1_000_000_000)
    });
    methods.add_method("get_configuration", |_, this, ()| {
        Ok((this.rows as i64, this.columns as i64, this.seconds_per_row))
    });
}

/// `reset_delta`, `annotate`, `format`, `fromstring`: output form, annotations and restore.
fn add_output_methods<M: UserDataMethods<CircularBuffer>>(methods: &mut M) {
    methods.add_method_mut("reset_delta", |_, this, ()| {
        this.reset_delta();
        Ok(())
    });
    methods.add_method_mut(
        "annotate",
        |_,
         this,
         (ns, Int(column), kind, text, delta): (
            f64,
            Int,
            mlua::LuaString,
            mlua::LuaString,
            Option<bool>,
        )| {
            this.annotate(
                ns,
                column,
                &kind.as_bytes(),
                &text.as_bytes(),
                delta.unwrap_or(true),
            )
        },
    );
    methods.add_function(
        "format",
        |_, (data, format): (AnyUserData, mlua::LuaString)| {
            let delta_format = match &*format.as_bytes() {
                b"cbuf" => false,
                b"cbufd" => true,
                _ => return Err(bad_argument(2, "invalid option; expected cbuf|cbufd")),
            };
            data.borrow_mut::<CircularBuffer>()?.delta_format = delta_format;
            Ok(data)
        },
    );
    methods.add_method_mut("fromstring", |_, this, text: mlua::LuaString| {
        this.restore_text(&text.as_bytes())
    });
}

/// The `circular_buffer` module table.
///
/// # Errors
/// mlua's error if the table cannot be built.
pub(crate) fn module(lua: &Lua, host: &Rc<Host>) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    let host = Rc::clone(host);
    module.raw_set(
        "new",
        lua.create_function(
            move |lua, (Int(rows), Int(columns), Int(seconds_per_row)): (Int, Int, Int)| {
                let needed = usize::try_from(rows)
                    .ok()
                    .zip(usize::try_from(columns).ok())
                    .and_then(|(rows, columns)| CircularBuffer::bytes_for(rows, columns));
                if let Some(needed) = needed {
                    if rows > 1
                        && (1..=COLUMNS_MAX as i64).contains(&columns)
                        && needed > host.native_budget(lua)
                    {
                        return Err(host.abort_with(ABORT_MEMORY));
                    }
                }
                let buffer = CircularBuffer::new(
                    rows,
                    columns,
                    seconds_per_row,
                    host.native_bytes_counter(),
                )?;
                let limit = host.memory_limit.saturating_sub(host.native_bytes()).max(1);
                lua.set_memory_limit(limit)?;
                lua.create_userdata(buffer)
            },
        )?,
    )?;
    module.raw_set("version", lua.create_function(|_, ()| Ok(VERSION))?)?;
    Ok(module)
}

mod mann_whitney;

#[cfg(test)]
mod tests;
