//! What Heka's TOML parser accepted and TOML 1.0 does not, read as Heka read it.
//!
//! Heka's configs were parsed by an early TOML parser that took any character but `.`, `]`
//! and whitespace in a table name, and any character but `=` and whitespace in a key. Real
//! configs depend on it:
//!
//! - section names with a colon, `[tcp:5565]` (one TcpInput per port);
//! - keys with a pipe, `Url|uri = "%Url%"` in PayloadRegexDecoder's `message_fields`, where the
//!   part after `|` names the field's representation.
//!
//! TOML 1.0 allows only `A-Za-z0-9_-` in a bare name, so [`normalize`] quotes each such name
//! segment before the text is parsed: `[tcp:5565]` becomes `["tcp:5565"]` and `Url|uri`
//! becomes `"Url|uri"`. The section or key keeps its name, exactly as written. Nothing else
//! changes: lines inside multi-line strings and multi-line arrays are left alone, and the line
//! count is kept, so TOML errors still point at the line the user wrote.

use std::borrow::Cow;

/// `text` with every bare table-name or key segment that TOML 1.0 would refuse quoted; the
/// text itself when there is none.
pub fn normalize(text: &str) -> Cow<'_, str> {
    let mut state = Scan::default();
    let mut out: Option<String> = None;
    let mut consumed = 0;
    for line in text.split_inclusive('\n') {
        let original_length = line.len();
        let at_top = state.at_top();
        let rewritten = if at_top { rewrite_line(line) } else { None };
        let line = match rewritten {
            Some(new_line) => {
                let buffer = out.get_or_insert_with(|| {
                    let mut buffer = String::with_capacity(text.len() + 16);
                    buffer.push_str(&text[..consumed]);
                    buffer
                });
                buffer.push_str(&new_line);
                Cow::Owned(new_line)
            }
            None => {
                if let Some(buffer) = out.as_mut() {
                    buffer.push_str(line);
                }
                Cow::Borrowed(line)
            }
        };
        state.scan(&line, at_top && is_header(&line));
        consumed += original_length;
    }
    match out {
        Some(buffer) => Cow::Owned(buffer),
        None => Cow::Borrowed(text),
    }
}

/// Where a line starts: inside a multi-line string, or inside an array value spanning lines.
#[derive(Default)]
struct Scan {
    multi_line_basic: bool,
    multi_line_literal: bool,
    array_depth: usize,
}

impl Scan {
    fn at_top(&self) -> bool {
        !self.multi_line_basic && !self.multi_line_literal && self.array_depth == 0
    }

    /// Follows strings, comments and brackets through `line`. A table header's brackets are
    /// not array brackets.
    fn scan(&mut self, line: &str, header: bool) {
        let bytes = line.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            if self.multi_line_basic {
                if bytes[at] == b'\\' {
                    at += 2;
                    continue;
                }
                if bytes[at..].starts_with(b"\"\"\"") {
                    self.multi_line_basic = false;
                    at += 3;
                    continue;
                }
                at += 1;
                continue;
            }
            if self.multi_line_literal {
                if bytes[at..].starts_with(b"'''") {
                    self.multi_line_literal = false;
                    at += 3;
                    continue;
                }
                at += 1;
                continue;
            }
            match bytes[at] {
                b'#' => return,
                b'"' if bytes[at..].starts_with(b"\"\"\"") => {
                    self.multi_line_basic = true;
                    at += 3;
                }
                b'\'' if bytes[at..].starts_with(b"'''") => {
                    self.multi_line_literal = true;
                    at += 3;
                }
                b'"' | b'\'' => at = string_end(bytes, at),
                b'[' if !header => {
                    self.array_depth += 1;
                    at += 1;
                }
                b']' if !header => {
                    self.array_depth = self.array_depth.saturating_sub(1);
                    at += 1;
                }
                _ => at += 1,
            }
        }
    }
}

/// The index just past the single-line string that opens at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' if quote == b'"' => at += 2,
            byte if byte == quote => return at + 1,
            b'\n' => return at,
            _ => at += 1,
        }
    }
    at
}

fn is_header(line: &str) -> bool {
    line.trim_start().starts_with('[')
}

/// The line with its table name or key segments quoted, or `None` when it needs nothing.
fn rewrite_line(line: &str) -> Option<String> {
    let indent = line.len() - line.trim_start().len();
    let body = &line[indent..];
    if let Some(rest) = body.strip_prefix("[[") {
        let end = name_end(rest, b']')?;
        let name = quote_segments(&rest[..end])?;
        return Some(format!("{}[[{name}{}", &line[..indent], &rest[end..]));
    }
    if let Some(rest) = body.strip_prefix('[') {
        let end = name_end(rest, b']')?;
        let name = quote_segments(&rest[..end])?;
        return Some(format!("{}[{name}{}", &line[..indent], &rest[end..]));
    }
    if body.is_empty() || body.starts_with('#') {
        return None;
    }
    let end = name_end(body, b'=')?;
    let key = quote_segments(&body[..end])?;
    Some(format!("{}{key}{}", &line[..indent], &body[end..]))
}

/// Where a name ends: the first `terminator` outside quotes, if there is one on the line.
fn name_end(text: &str, terminator: u8) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' | b'\'' => at = string_end(bytes, at),
            b'\n' | b'#' => return None,
            byte if byte == terminator => return Some(at),
            _ => at += 1,
        }
    }
    None
}

/// `name` (a dotted table name or key) with each bare segment TOML 1.0 refuses quoted, or
/// `None` when every segment is already valid.
fn quote_segments(name: &str) -> Option<String> {
    let mut segments = Vec::new();
    let bytes = name.as_bytes();
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' | b'\'' => at = string_end(bytes, at),
            b'.' => {
                segments.push(&name[start..at]);
                at += 1;
                start = at;
            }
            _ => at += 1,
        }
    }
    segments.push(&name[start..]);
    let mut changed = false;
    let mut out = String::with_capacity(name.len() + 8);
    for (index, segment) in segments.iter().enumerate() {
        if index > 0 {
            out.push('.');
        }
        let trimmed = segment.trim();
        let needs_quotes = !trimmed.is_empty()
            && !trimmed.starts_with('"')
            && !trimmed.starts_with('\'')
            && !trimmed
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
            && !trimmed.bytes().any(|byte| byte.is_ascii_whitespace());
        if needs_quotes {
            changed = true;
            let leading = segment.len() - segment.trim_start().len();
            out.push_str(&segment[..leading]);
            out.push('"');
            for character in trimmed.chars() {
                if character == '"' || character == '\\' {
                    out.push('\\');
                }
                out.push(character);
            }
            out.push('"');
            out.push_str(&segment[leading + trimmed.len()..]);
        } else {
            out.push_str(segment);
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    fn parsed(text: &str) -> toml::Table {
        normalize(text).parse().expect("normalized text parses")
    }

    #[test]
    fn a_section_name_with_a_colon_keeps_its_name() {
        let table = parsed("[tcp:5565]\ntype = \"TcpInput\"\naddress = \":5565\"\n");
        let section = table["tcp:5565"].as_table().expect("a table");
        assert_eq!(section["type"].as_str(), Some("TcpInput"));
        assert_eq!(section["address"].as_str(), Some(":5565"));
    }

    #[test]
    fn a_key_with_a_pipe_keeps_its_name() {
        let text = "[decoder]\ntype = \"PayloadRegexDecoder\"\n\n\
                    [decoder.message_fields]\nUrl|uri = \"%Url%\"\nStatus = \"%Status%\"\n";
        let table = parsed(text);
        let fields = table["decoder"]["message_fields"]
            .as_table()
            .expect("a table");
        assert_eq!(fields["Url|uri"].as_str(), Some("%Url%"));
        assert_eq!(fields["Status"].as_str(), Some("%Status%"));
    }

    #[test]
    fn nested_table_names_are_quoted_segment_by_segment() {
        let table = parsed("[tcp:5565.signer.ops_0]\nhmac_key = \"k\"\n");
        assert_eq!(
            table["tcp:5565"]["signer"]["ops_0"]["hmac_key"].as_str(),
            Some("k")
        );
    }

    #[test]
    fn valid_toml_is_returned_as_it_was() {
        let text = "[a]\nb = 1 # [x:y]\n\"c|d\" = 2\n[\"e:f\"]\n";
        assert!(matches!(normalize(text), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn strings_and_arrays_spanning_lines_are_left_alone() {
        let text = "[a]\n\
                    script = \"\"\"\n[not:a.header]\nx|y = 1\n\"\"\"\n\
                    list = [\n  [1, 2],\n  [3],\n]\n\
                    lit = '''\nk|v = 2\n'''\n\
                    [b:c]\nz|w = 3\n";
        let table = parsed(text);
        assert_eq!(
            table["a"]["script"].as_str(),
            Some("[not:a.header]\nx|y = 1\n")
        );
        assert_eq!(table["a"]["lit"].as_str(), Some("k|v = 2\n"));
        assert_eq!(table["a"]["list"].as_array().map(Vec::len), Some(2));
        assert_eq!(table["b:c"]["z|w"].as_integer(), Some(3));
    }

    #[test]
    fn lines_keep_their_numbers() {
        let text = "[tcp:1]\nUrl|uri = \"x\"\nbroken = \n";
        let normalized = normalize(text);
        assert_eq!(normalized.lines().count(), text.lines().count());
        let error = normalized
            .parse::<toml::Table>()
            .expect_err("the third line is broken");
        let start = error.span().expect("a span").start;
        assert_eq!(normalized[..start].matches('\n').count(), 2);
    }
}
