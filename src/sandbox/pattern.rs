//! Lua's string patterns with a step budget: `string.find`, `string.match`, `string.gmatch`
//! and `string.gsub`, as Lua 5.4 defines them, matched in Rust.
//!
//! Lua's own matcher runs in C, where the instruction count hook never fires: a pattern such as
//! `.-.-.-b` on a long subject backtracks for hours and would hold the sandbox's core with it,
//! whatever `instruction_limit` says. Here every step of the matcher (entering a pattern item,
//! testing one character against a repeated class) is counted, and the steps are charged to the
//! call's instruction budget at [`PATTERN_STEPS_PER_INSTRUCTION`] steps per instruction. A
//! match that would pass the budget stops the call with `instruction_limit exceeded`, which the
//! script cannot catch, like any other limit.
//!
//! The semantics are Lua 5.4's: the same classes (`%a %c %d %g %l %p %s %u %w %x`, upper case
//! for the complement, in the C locale), sets, `%b`, `%f`, back references, position captures,
//! at most 32 captures, a nesting depth of 200 ("pattern too complex"), the same anchoring and
//! empty-match rules in `gmatch`/`gsub`, and the same error messages. A property test checks
//! every function against Lua's own on generated subjects and patterns.

use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::api::{Host, ABORT_INSTRUCTIONS};

/// Matcher steps one Lua instruction pays for.
pub const PATTERN_STEPS_PER_INSTRUCTION: u64 = 8;
/// Captures in one pattern (Lua's `LUA_MAXCAPTURES`).
const CAPTURES_MAX: usize = 32;
/// Nesting of the recursive matcher (Lua's `MAXCCALLS` in the string library).
const DEPTH_MAX: u32 = 200;
/// A capture still open.
const CAP_UNFINISHED: isize = -1;
/// A position capture `()`.
const CAP_POSITION: isize = -2;

/// Why a match stopped without an answer.
#[derive(Debug, PartialEq)]
pub enum MatchError {
    /// The pattern is malformed, or asks for a capture that does not exist.
    Pattern(String),
    /// The step budget ran out.
    Budget,
}

type Step<T> = Result<T, MatchError>;

fn malformed(text: &str) -> MatchError {
    MatchError::Pattern(text.to_string())
}

/// One match attempt's state (Lua's `MatchState`).
struct Matcher<'a> {
    src: &'a [u8],
    pat: &'a [u8],
    depth: u32,
    level: usize,
    capture: [(usize, isize); CAPTURES_MAX],
    steps_left: u64,
}

impl<'a> Matcher<'a> {
    fn new(src: &'a [u8], pat: &'a [u8], steps: u64) -> Matcher<'a> {
        Matcher {
            src,
            pat,
            depth: DEPTH_MAX,
            level: 0,
            capture: [(0, 0); CAPTURES_MAX],
            steps_left: steps,
        }
    }

    /// Forgets the captures of a failed attempt (Lua's `reprepstate`).
    fn reset(&mut self) {
        self.level = 0;
        self.depth = DEPTH_MAX;
    }

    fn step(&mut self) -> Step<()> {
        if self.steps_left == 0 {
            return Err(MatchError::Budget);
        }
        self.steps_left -= 1;
        Ok(())
    }

    fn pat_at(&self, p: usize) -> u8 {
        self.pat.get(p).copied().unwrap_or(0)
    }

    /// The index just past the single-character class at `p`.
    fn class_end(&self, mut p: usize) -> Step<usize> {
        let c = self.pat[p];
        p += 1;
        if c == b'%' {
            if p >= self.pat.len() {
                return Err(malformed("malformed pattern (ends with '%')"));
            }
            return Ok(p + 1);
        }
        if c == b'[' {
            if self.pat_at(p) == b'^' {
                p += 1;
            }
            loop {
                if p >= self.pat.len() {
                    return Err(malformed("malformed pattern (missing ']')"));
                }
                let c = self.pat[p];
                p += 1;
                if c == b'%' && p < self.pat.len() {
                    p += 1;
                }
                if self.pat_at(p) == b']' {
                    break;
                }
            }
            return Ok(p + 1);
        }
        Ok(p)
    }

    /// Whether `c` is in the set `[...]` from `p` (its `[`) to `ec` (its `]`).
    fn bracket_class(&self, c: u8, mut p: usize, ec: usize) -> bool {
        let mut sig = true;
        if self.pat_at(p + 1) == b'^' {
            sig = false;
            p += 1;
        }
        loop {
            p += 1;
            if p >= ec {
                return !sig;
            }
            if self.pat[p] == b'%' {
                p += 1;
                if class_matches(c, self.pat_at(p)) {
                    return sig;
                }
            } else if self.pat_at(p + 1) == b'-' && p + 2 < ec {
                p += 2;
                if self.pat[p - 2] <= c && c <= self.pat[p] {
                    return sig;
                }
            } else if self.pat[p] == c {
                return sig;
            }
        }
    }

    fn single(&self, s: usize, p: usize, ep: usize) -> bool {
        let Some(&c) = self.src.get(s) else {
            return false;
        };
        match self.pat[p] {
            b'.' => true,
            b'%' => class_matches(c, self.pat_at(p + 1)),
            b'[' => self.bracket_class(c, p, ep - 1),
            other => other == c,
        }
    }

    /// Matches the pattern from `p` against the subject from `s`: the end of the match.
    fn do_match(&mut self, s: usize, p: usize) -> Step<Option<usize>> {
        if self.depth == 0 {
            return Err(malformed("pattern too complex"));
        }
        self.depth -= 1;
        let result = self.match_items(s, p);
        self.depth += 1;
        result
    }

    fn match_items(&mut self, mut s: usize, mut p: usize) -> Step<Option<usize>> {
        loop {
            self.step()?;
            if p >= self.pat.len() {
                return Ok(Some(s));
            }
            match self.pat[p] {
                b'(' => {
                    return if self.pat_at(p + 1) == b')' {
                        self.start_capture(s, p + 2, CAP_POSITION)
                    } else {
                        self.start_capture(s, p + 1, CAP_UNFINISHED)
                    };
                }
                b')' => return self.end_capture(s, p + 1),
                b'$' if p + 1 == self.pat.len() => {
                    return Ok((s == self.src.len()).then_some(s));
                }
                b'%' if self.pat_at(p + 1) == b'b' => match self.balance(s, p + 2)? {
                    Some(next) => {
                        s = next;
                        p += 4;
                        continue;
                    }
                    None => return Ok(None),
                },
                b'%' if self.pat_at(p + 1) == b'f' => {
                    p += 2;
                    if self.pat_at(p) != b'[' {
                        return Err(malformed("missing '[' after '%f' in pattern"));
                    }
                    let ep = self.class_end(p)?;
                    let previous = if s == 0 { 0 } else { self.src[s - 1] };
                    let current = self.src.get(s).copied().unwrap_or(0);
                    if !self.bracket_class(previous, p, ep - 1)
                        && self.bracket_class(current, p, ep - 1)
                    {
                        p = ep;
                        continue;
                    }
                    return Ok(None);
                }
                b'%' if self.pat_at(p + 1).is_ascii_digit() => {
                    match self.back_reference(s, self.pat[p + 1])? {
                        Some(next) => {
                            s = next;
                            p += 2;
                            continue;
                        }
                        None => return Ok(None),
                    }
                }
                _ => {}
            }
            let ep = self.class_end(p)?;
            let suffix = self.pat_at(ep);
            if !self.single(s, p, ep) {
                if matches!(suffix, b'*' | b'?' | b'-') && ep < self.pat.len() {
                    p = ep + 1;
                    continue;
                }
                return Ok(None);
            }
            match suffix {
                b'?' if ep < self.pat.len() => {
                    if let Some(end) = self.do_match(s + 1, ep + 1)? {
                        return Ok(Some(end));
                    }
                    p = ep + 1;
                }
                b'+' if ep < self.pat.len() => return self.max_expand(s + 1, p, ep),
                b'*' if ep < self.pat.len() => return self.max_expand(s, p, ep),
                b'-' if ep < self.pat.len() => return self.min_expand(s, p, ep),
                _ => {
                    s += 1;
                    p = ep;
                }
            }
        }
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Step<Option<usize>> {
        let mut count = 0;
        while self.single(s + count, p, ep) {
            self.step()?;
            count += 1;
        }
        loop {
            if let Some(end) = self.do_match(s + count, ep + 1)? {
                return Ok(Some(end));
            }
            if count == 0 {
                return Ok(None);
            }
            count -= 1;
        }
    }

    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> Step<Option<usize>> {
        loop {
            if let Some(end) = self.do_match(s, ep + 1)? {
                return Ok(Some(end));
            }
            if !self.single(s, p, ep) {
                return Ok(None);
            }
            s += 1;
        }
    }

    fn start_capture(&mut self, s: usize, p: usize, what: isize) -> Step<Option<usize>> {
        if self.level >= CAPTURES_MAX {
            return Err(malformed("too many captures"));
        }
        self.capture[self.level] = (s, what);
        self.level += 1;
        let result = self.do_match(s, p)?;
        if result.is_none() {
            self.level -= 1;
        }
        Ok(result)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Step<Option<usize>> {
        let open = (0..self.level)
            .rev()
            .find(|&index| self.capture[index].1 == CAP_UNFINISHED)
            .ok_or_else(|| malformed("invalid pattern capture"))?;
        self.capture[open].1 = (s - self.capture[open].0) as isize;
        let result = self.do_match(s, p)?;
        if result.is_none() {
            self.capture[open].1 = CAP_UNFINISHED;
        }
        Ok(result)
    }

    fn balance(&mut self, s: usize, p: usize) -> Step<Option<usize>> {
        if p + 1 >= self.pat.len() {
            return Err(malformed("malformed pattern (missing arguments to '%b')"));
        }
        let (open, close) = (self.pat[p], self.pat[p + 1]);
        if self.src.get(s) != Some(&open) {
            return Ok(None);
        }
        let mut depth = 1;
        let mut at = s + 1;
        while at < self.src.len() {
            self.step()?;
            let c = self.src[at];
            if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(at + 1));
                }
            } else if c == open {
                depth += 1;
            }
            at += 1;
        }
        Ok(None)
    }

    fn back_reference(&mut self, s: usize, digit: u8) -> Step<Option<usize>> {
        let index = usize::from(digit).wrapping_sub(usize::from(b'1'));
        if index >= self.level || self.capture[index].1 == CAP_UNFINISHED {
            let number = i32::from(digit) - i32::from(b'0');
            return Err(MatchError::Pattern(format!(
                "invalid capture index %{number}"
            )));
        }
        let (start, len) = self.capture[index];
        // A position capture has no text: as in Lua, a reference to it never matches.
        let Ok(len) = usize::try_from(len) else {
            return Ok(None);
        };
        let rest = &self.src[s..];
        if rest.len() >= len && self.src[start..start + len] == rest[..len] {
            return Ok(Some(s + len));
        }
        Ok(None)
    }

    /// Capture `index` of the match `s..e` as a Lua value.
    fn capture_value(&self, lua: &Lua, index: usize, s: usize, e: usize) -> mlua::Result<Value> {
        if index >= self.level {
            if index == 0 {
                return Ok(Value::String(lua.create_string(&self.src[s..e])?));
            }
            return Err(mlua::Error::runtime(format!(
                "invalid capture index %{}",
                index + 1
            )));
        }
        let (start, len) = self.capture[index];
        match len {
            CAP_UNFINISHED => Err(mlua::Error::runtime("unfinished capture")),
            CAP_POSITION => Ok(Value::Integer(start as i64 + 1)),
            len => {
                let end = start + usize::try_from(len).unwrap_or(0);
                Ok(Value::String(lua.create_string(&self.src[start..end])?))
            }
        }
    }

    /// Every capture of the match `s..e` (the whole match when the pattern has none and
    /// `whole` is set).
    fn captures(&self, lua: &Lua, s: usize, e: usize, whole: bool) -> mlua::Result<MultiValue> {
        let count = if self.level == 0 && whole {
            1
        } else {
            self.level
        };
        (0..count)
            .map(|index| self.capture_value(lua, index, s, e))
            .collect()
    }
}

/// Lua's `match_class` in the C locale.
fn class_matches(c: u8, class: u8) -> bool {
    let result = match class.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        _ => return class == c,
    };
    if class.is_ascii_uppercase() {
        !result
    } else {
        result
    }
}

/// Whether the pattern has no magic character, so `find` can search for it as it is.
fn is_plain(pattern: &[u8]) -> bool {
    !pattern.iter().any(|c| b"^$*+?.([%-".contains(c))
}

/// Lua 5.4's `posrelatI`: a 1-based start position from a possibly negative one.
fn start_position(position: i64, len: usize) -> usize {
    let len_i = len as i64;
    if position > 0 {
        usize::try_from(position).unwrap_or(usize::MAX)
    } else if position == 0 || position < -len_i {
        1
    } else {
        (len_i + position + 1) as usize
    }
}

/// The byte string of argument `position` (a number is turned into its text, as Lua does).
fn string_arg(
    lua: &Lua,
    value: Value,
    position: usize,
    function: &str,
) -> mlua::Result<mlua::LuaString> {
    let type_name = value.type_name();
    lua.coerce_string(value)?.ok_or_else(|| {
        mlua::Error::runtime(format!(
            "bad argument #{position} to '{function}' (string expected, got {type_name})"
        ))
    })
}

/// Runs `body` with the call's pattern budget and charges what it used; a budget that runs out
/// aborts the call as an instruction overrun.
fn with_budget<T>(
    host: &Host,
    body: impl FnOnce(u64) -> (mlua::Result<T>, u64),
) -> mlua::Result<T> {
    let budget = host.pattern_budget();
    let (result, left) = body(budget);
    host.charge_pattern_steps(budget - left);
    result
}

fn lua_error(host: &Host, error: MatchError) -> mlua::Error {
    match error {
        MatchError::Pattern(text) => mlua::Error::runtime(text),
        MatchError::Budget => host.abort_with(ABORT_INSTRUCTIONS),
    }
}

/// `string.find` (`find`) and `string.match`.
fn find(lua: &Lua, host: &Host, args: MultiValue, is_find: bool) -> mlua::Result<MultiValue> {
    let name = if is_find { "find" } else { "match" };
    let mut args = args.into_iter();
    let subject = string_arg(lua, args.next().unwrap_or(Value::Nil), 1, name)?;
    let pattern = string_arg(lua, args.next().unwrap_or(Value::Nil), 2, name)?;
    let init = match args.next() {
        None | Some(Value::Nil) => 1,
        Some(value) => lua.unpack::<i64>(value)?,
    };
    let plain = args
        .next()
        .is_some_and(|value| !matches!(value, Value::Nil | Value::Boolean(false)));
    let (src, pat) = (subject.as_bytes(), pattern.as_bytes());
    let start = start_position(init, src.len()) - 1;
    if start > src.len() {
        return Ok(MultiValue::from_iter([Value::Nil]));
    }
    if is_find && (plain || is_plain(&pat)) {
        let found = if pat.is_empty() {
            Some(0)
        } else {
            memchr::memmem::find(&src[start..], &pat)
        };
        return Ok(match found {
            Some(at) => MultiValue::from_iter([
                Value::Integer((start + at + 1) as i64),
                Value::Integer((start + at + pat.len()) as i64),
            ]),
            None => MultiValue::from_iter([Value::Nil]),
        });
    }
    with_budget(host, |budget| {
        let (anchored, pat) = match pat.strip_prefix(b"^") {
            Some(rest) => (true, rest),
            None => (false, &pat[..]),
        };
        let mut matcher = Matcher::new(&src, pat, budget);
        let mut s = start;
        let result = loop {
            matcher.reset();
            match matcher.do_match(s, 0) {
                Err(error) => break Err(lua_error(host, error)),
                Ok(Some(end)) => {
                    break if is_find {
                        let mut values =
                            vec![Value::Integer((s + 1) as i64), Value::Integer(end as i64)];
                        match matcher.captures(lua, s, end, false) {
                            Ok(captures) => {
                                values.extend(captures);
                                Ok(MultiValue::from_iter(values))
                            }
                            Err(error) => Err(error),
                        }
                    } else {
                        matcher.captures(lua, s, end, true)
                    };
                }
                Ok(None) => {}
            }
            s += 1;
            if anchored || s > src.len() {
                break Ok(MultiValue::from_iter([Value::Nil]));
            }
        };
        (result, matcher.steps_left)
    })
}

/// `string.gmatch`: an iterator over the matches.
fn gmatch(lua: &Lua, host: &Rc<Host>, args: MultiValue) -> mlua::Result<Function> {
    let mut args = args.into_iter();
    let subject = string_arg(lua, args.next().unwrap_or(Value::Nil), 1, "gmatch")?;
    let pattern = string_arg(lua, args.next().unwrap_or(Value::Nil), 2, "gmatch")?;
    let init = match args.next() {
        None | Some(Value::Nil) => 1,
        Some(value) => lua.unpack::<i64>(value)?,
    };
    let len = subject.as_bytes().len();
    let mut position = (start_position(init, len) - 1).min(len + 1);
    let mut last_match: Option<usize> = None;
    let host = Rc::clone(host);
    lua.create_function_mut(move |lua, ()| {
        let (src, pat) = (subject.as_bytes(), pattern.as_bytes());
        with_budget(&host, |budget| {
            let mut matcher = Matcher::new(&src, &pat, budget);
            let result = loop {
                if position > src.len() {
                    break Ok(MultiValue::from_iter([Value::Nil]));
                }
                matcher.reset();
                match matcher.do_match(position, 0) {
                    Err(error) => break Err(lua_error(&host, error)),
                    Ok(Some(end)) if Some(end) != last_match => {
                        let start = position;
                        position = end;
                        last_match = Some(end);
                        break matcher.captures(lua, start, end, true);
                    }
                    Ok(_) => position += 1,
                }
            };
            (result, matcher.steps_left)
        })
    })
}

/// `string.gsub`.
fn gsub(lua: &Lua, host: &Host, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut args = args.into_iter();
    let subject = string_arg(lua, args.next().unwrap_or(Value::Nil), 1, "gsub")?;
    let pattern = string_arg(lua, args.next().unwrap_or(Value::Nil), 2, "gsub")?;
    let replacement = args.next().unwrap_or(Value::Nil);
    let replacement = match replacement {
        Value::Integer(_) | Value::Number(_) => {
            Value::String(string_arg(lua, replacement, 3, "gsub")?)
        }
        Value::String(_) | Value::Table(_) | Value::Function(_) => replacement,
        other => {
            return Err(mlua::Error::runtime(format!(
                "bad argument #3 to 'gsub' (string/function/table expected, got {})",
                other.type_name()
            )))
        }
    };
    let (src, pat) = (subject.as_bytes(), pattern.as_bytes());
    let max = match args.next() {
        None | Some(Value::Nil) => src.len() as i64 + 1,
        Some(value) => lua.unpack::<i64>(value)?,
    };
    let (anchored, pat) = match pat.strip_prefix(b"^") {
        Some(rest) => (true, rest),
        None => (false, &pat[..]),
    };
    with_budget(host, |budget| {
        let mut matcher = Matcher::new(&src, pat, budget);
        let mut out: Vec<u8> = Vec::with_capacity(src.len());
        let (mut s, mut count, mut last_match) = (0usize, 0i64, None);
        let result = (|| -> mlua::Result<()> {
            while count < max {
                matcher.reset();
                let end = matcher
                    .do_match(s, 0)
                    .map_err(|error| lua_error(host, error))?;
                match end {
                    Some(end) if Some(end) != last_match => {
                        count += 1;
                        add_value(lua, &matcher, &replacement, s, end, &mut out)?;
                        s = end;
                        last_match = Some(end);
                    }
                    _ if s < src.len() => {
                        out.push(src[s]);
                        s += 1;
                    }
                    _ => break,
                }
                if anchored {
                    break;
                }
            }
            Ok(())
        })();
        let result = result.and_then(|()| {
            out.extend_from_slice(&src[s.min(src.len())..]);
            Ok(MultiValue::from_iter([
                Value::String(lua.create_string(&out)?),
                Value::Integer(count),
            ]))
        });
        (result, matcher.steps_left)
    })
}

/// Appends the replacement of the match `s..e` (Lua's `add_value`).
fn add_value(
    lua: &Lua,
    matcher: &Matcher<'_>,
    replacement: &Value,
    s: usize,
    e: usize,
    out: &mut Vec<u8>,
) -> mlua::Result<()> {
    let value = match replacement {
        Value::String(text) => {
            let text = text.as_bytes();
            let mut at = 0;
            while at < text.len() {
                let c = text[at];
                at += 1;
                if c != b'%' {
                    out.push(c);
                    continue;
                }
                let next = text.get(at).copied().unwrap_or(0);
                at += 1;
                if next == b'%' {
                    out.push(b'%');
                } else if next.is_ascii_digit() {
                    let capture = if next == b'0' {
                        Value::String(lua.create_string(&matcher.src[s..e])?)
                    } else {
                        matcher.capture_value(lua, usize::from(next - b'1'), s, e)?
                    };
                    match capture {
                        Value::Integer(position) => {
                            out.extend_from_slice(position.to_string().as_bytes())
                        }
                        Value::String(text) => out.extend_from_slice(&text.as_bytes()),
                        _ => {}
                    }
                } else {
                    return Err(mlua::Error::runtime(
                        "invalid use of '%' in replacement string",
                    ));
                }
            }
            return Ok(());
        }
        Value::Table(table) => {
            let key = matcher.capture_value(lua, 0, s, e)?;
            Table::get::<Value>(table, key)?
        }
        Value::Function(function) => {
            let captures = matcher.captures(lua, s, e, true)?;
            function.call::<Value>(captures)?
        }
        _ => Value::Nil,
    };
    match value {
        Value::Nil | Value::Boolean(false) => out.extend_from_slice(&matcher.src[s..e]),
        Value::String(text) => out.extend_from_slice(&text.as_bytes()),
        Value::Integer(_) | Value::Number(_) => {
            if let Some(text) = lua.coerce_string(value)? {
                out.extend_from_slice(&text.as_bytes());
            }
        }
        other => {
            return Err(mlua::Error::runtime(format!(
                "invalid replacement value (a {})",
                other.type_name()
            )))
        }
    }
    Ok(())
}

/// Replaces `find`, `match`, `gmatch` and `gsub` of the `string` table with the budgeted ones.
pub(crate) fn install(lua: &Lua, host: &Rc<Host>, string: &Table) -> mlua::Result<()> {
    let h = Rc::clone(host);
    string.raw_set(
        "find",
        lua.create_function(move |lua, args: MultiValue| find(lua, &h, args, true))?,
    )?;
    let h = Rc::clone(host);
    string.raw_set(
        "match",
        lua.create_function(move |lua, args: MultiValue| find(lua, &h, args, false))?,
    )?;
    let h = Rc::clone(host);
    string.raw_set(
        "gmatch",
        lua.create_function(move |lua, args: MultiValue| gmatch(lua, &h, args))?,
    )?;
    let h = Rc::clone(host);
    string.raw_set(
        "gsub",
        lua.create_function(move |lua, args: MultiValue| gsub(lua, &h, args))?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::sandbox::tests::Harness;
    use crate::sandbox::{Sandbox, SandboxConfig, SandboxKind};

    /// Runs one string function on a subject and a pattern and describes what it returned
    /// (`ok <type:value|…>`) or that it raised an error (`err`); the same code runs in the
    /// sandbox (the budgeted functions) and in a plain Lua state (Lua's own).
    const PROBE: &str = r#"
        local function ser(...)
            local out = {}
            for i = 1, select('#', ...) do
                local v = select(i, ...)
                out[#out + 1] = type(v) .. ":" .. tostring(v)
            end
            return table.concat(out, "|")
        end
        function probe(kind, s, p, r, init)
            local ok, result = pcall(function()
                if kind == "find" then return ser(string.find(s, p, init))
                elseif kind == "plain" then return ser(string.find(s, p, init, true))
                elseif kind == "match" then return ser(string.match(s, p, init))
                elseif kind == "gmatch" then
                    local all = {}
                    for a, b in string.gmatch(s, p) do
                        all[#all + 1] = ser(a, b)
                        if #all > 200 then break end
                    end
                    return table.concat(all, ";")
                elseif kind == "gsub" then return ser(string.gsub(s, p, r))
                elseif kind == "gsubn" then return ser(string.gsub(s, p, r, 2))
                elseif kind == "gsubf" then
                    return ser(string.gsub(s, p, function(a, b) return "[" .. tostring(a) .. "]" end))
                elseif kind == "gsubt" then
                    return ser(string.gsub(s, p, { a = "A", ["1"] = 1, b = false }))
                end
            end)
            if ok then return "ok " .. result end
            return "err"
        end
    "#;

    fn sandboxed(harness: &Harness) -> Sandbox {
        let script = format!("{PROBE}\nfunction process_message() return 0 end");
        harness.sandbox(SandboxKind::Filter, &script)
    }

    fn reference() -> mlua::Lua {
        let lua = mlua::Lua::new();
        lua.load(PROBE).exec().expect("the probe loads");
        lua
    }

    fn probe(lua: &mlua::Lua, args: (&str, &str, &str, &str, i64)) -> String {
        let function: mlua::Function = lua.globals().get("probe").expect("probe");
        function.call(args).expect("probe runs")
    }

    /// A pattern piece: literals, classes, sets, anchors, captures, quantifiers, escapes.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a", "b", ".", "%a", "%d", "%s", "%w", "%A", "%p", "[ab]", "[^a]", "[a-c]", "[%d%s]",
            "*", "+", "-", "?", "(", ")", "()", "^", "$", "%1", "%b()", "%f[%w]", "%", "[", "%x",
            "%.", " ", "1", "c",
        ])
    }

    fn subject() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!['a', 'b', 'c', '(', ')', ' ', '1', '2', '.', 'X']),
            0..12,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
        #[test]
        fn every_function_answers_as_luas_own(
            s in subject(),
            pieces in prop::collection::vec(piece(), 0..6),
            kind in prop::sample::select(vec![
                "find", "plain", "match", "gmatch", "gsub", "gsubn", "gsubf", "gsubt",
            ]),
            replacement in prop::sample::select(vec!["<%0>", "%1-%1", "%%", "x", "%2", "%"]),
            init in -4i64..6,
        ) {
            thread_local! {
                static STATES: (Harness, std::cell::RefCell<Option<Sandbox>>, mlua::Lua) =
                    (Harness::new(), std::cell::RefCell::new(None), reference());
            }
            let pattern: String = pieces.concat();
            STATES.with(|(harness, sandbox, lua)| {
                let mut sandbox = sandbox.borrow_mut();
                let sandbox = sandbox.get_or_insert_with(|| sandboxed(harness));
                let args = (kind, s.as_str(), pattern.as_str(), replacement, init);
                // Each probe is a call of its own, with a fresh instruction budget.
                sandbox.host().begin_call(0);
                let ours = probe(&sandbox.lua, args);
                let theirs = probe(lua, args);
                prop_assert_eq!(ours, theirs, "{:?}", args);
                Ok(())
            })?;
        }
    }

    #[test]
    fn known_answers() {
        let harness = Harness::new();
        let sandbox = sandboxed(&harness);
        let script = r#"
            assert(string.find("hello world", "o w") == 5)
            local a, b, c = string.find("key=value", "(%w+)=(%w+)")
            assert(a == 1 and b == 9 and c == "key")
            assert(string.match("  trim  ", "^%s*(.-)%s*$") == "trim")
            assert(select(2, string.gsub("hello world", "o", "0")) == 2)
            assert(string.gsub("abc", "%w", "%0%0") == "aabbcc")
            assert(string.gsub("$name is $age", "%$(%w+)", { name = "ann", age = 7 }) == "ann is 7")
            assert(string.match("f(a(b)c)", "%b()") == "(a(b)c)")
            assert(string.find("THE (quick) fox", "%f[%a]%a+%f[%A]") == 1)
            assert(string.match("hello", "()ll()") == 3)
            local words = {}
            for w in ("one two three"):gmatch("%a+") do words[#words + 1] = w end
            assert(#words == 3 and words[3] == "three")
            assert(("x"):rep(3):gsub("", "-") == "-x-x-x-")
            assert(not pcall(string.find, "a", "(()"))
            assert(not pcall(string.gsub, "a", "a", "%2"))
            assert(string.find(12345, 34) == 3)
        "#;
        sandbox.lua.load(script).exec().expect("known answers");
    }

    /// A pattern that backtracks for hours in C stops at the instruction limit, quickly, and
    /// the script cannot catch it.
    #[test]
    fn a_backtracking_pattern_is_stopped_by_the_instruction_limit() {
        let harness = Harness::new();
        let script = r#"
            function process_message()
                local s = string.rep("a", 20000)
                pcall(string.find, s, ".-.-.-b")
                return 0
            end
        "#;
        let config = SandboxConfig {
            instruction_limit: 1_000_000,
            ..harness.config("bomb", script)
        };
        let mut sandbox =
            Sandbox::new(SandboxKind::Filter, "Bomb", &config, &harness.host).expect("loads");
        let started = std::time::Instant::now();
        let result = crate::sandbox::tests::run(&mut sandbox, &crate::sandbox::tests::sample());
        let error = result.expect_err("terminated");
        assert!(
            error.reason.contains("instruction_limit exceeded"),
            "{error:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
