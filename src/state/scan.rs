//! A JSON scanner over UTF-16 code units (what a JS string is), accepting
//! exactly what `JSON.parse` accepts. It never builds a value: callers read
//! the members they care about and skip the rest. Skipping is iterative (a
//! heap stack of closers, no recursion), so no input depth can overflow the
//! native stack. Pure Rust, no napi types.

use crate::error::{PersistError, Result};

/// A span `[start, end)` of code units.
type Span = (usize, usize);

/// Decode the inside of a JSON string literal (no quotes, already checked by
/// the scanner) into UTF-16 code units, keeping lone surrogates.
pub(super) fn decode_units(raw: &[u16]) -> Vec<u16> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        i += 1;
        if c != BACKSLASH {
            out.push(c);
            continue;
        }
        let Some(&e) = raw.get(i) else { break };
        i += 1;
        out.push(match u8::try_from(e).unwrap_or(0) {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => 0x0a,
            b'r' => 0x0d,
            b't' => 0x09,
            b'u' => {
                let hex = raw.get(i..i + 4).unwrap_or(&[]);
                i += 4;
                hex.iter()
                    .map(|&h| char::from_u32(u32::from(h)).and_then(|c| c.to_digit(16)))
                    .try_fold(0u16, |n, d| d.map(|d| n * 16 + d as u16))
                    .unwrap_or(0xfffd)
            }
            _ => e,
        });
    }
    out
}

/// Is `units` an array index (`"0"`..`"4294967294"`, canonical)? Such keys
/// are enumerated first, ascending, by every JS object; returns the index.
pub(super) fn array_index(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    (n <= 4_294_967_294).then_some(n)
}

pub(super) fn array_index_units(units: &[u16]) -> Option<u64> {
    if units.len() > 10 || units.iter().any(|&u| u > 0x7f) {
        return None;
    }
    let bytes: Vec<u8> = units.iter().map(|&u| u as u8).collect();
    array_index(&bytes)
}

// ---------------------------------------------------------------------------
// Scanner: JSON syntax exactly as JSON.parse accepts it, over UTF-16 code
// units (what a JS string is), iterative
// ---------------------------------------------------------------------------

/// An ASCII byte as a UTF-16 code unit.
pub(super) const fn u(c: u8) -> u16 {
    c as u16
}

pub(super) const QUOTE: u16 = u(b'"');
pub(super) const BACKSLASH: u16 = u(b'\\');
pub(super) const LBRACE: u16 = u(b'{');
pub(super) const RBRACE: u16 = u(b'}');
pub(super) const LBRACKET: u16 = u(b'[');
pub(super) const RBRACKET: u16 = u(b']');
pub(super) const COMMA: u16 = u(b',');
pub(super) const COLON: u16 = u(b':');

/// The kind of a JSON value, as reported in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "boolean",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        }
    }
}

pub(super) struct Scanner<'a> {
    pub(super) b: &'a [u16],
    pub(super) pos: usize,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(units: &'a [u16]) -> Self {
        Scanner { b: units, pos: 0 }
    }

    pub(super) fn syntax(&self, what: &str) -> PersistError {
        PersistError::Syntax(format!("{what} in JSON at position {}", self.pos))
    }

    pub(super) fn peek(&self) -> Option<u16> {
        self.b.get(self.pos).copied()
    }

    pub(super) fn is(&self, c: u8) -> bool {
        self.peek() == Some(u(c))
    }

    pub(super) fn ws(&mut self) {
        while let Some(0x20 | 0x09 | 0x0a | 0x0d) = self.peek() {
            self.pos += 1;
        }
    }

    pub(super) fn expect(&mut self, c: u16) -> Result<()> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    pub(super) fn unexpected(&self) -> PersistError {
        match self.peek() {
            None => self.syntax("Unexpected end of JSON input"),
            Some(_) => self.syntax("Unexpected token"),
        }
    }

    pub(super) fn at_end(&mut self) -> Result<()> {
        self.ws();
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err(self.syntax("Unexpected non-whitespace character after JSON"))
        }
    }

    pub(super) fn is_digit(&self) -> bool {
        matches!(self.peek(), Some(c) if (u(b'0')..=u(b'9')).contains(&c))
    }

    /// At a `"`: scan the string, return the span of its inside.
    pub(super) fn string(&mut self) -> Result<Span> {
        if self.peek() != Some(QUOTE) {
            return Err(self.unexpected());
        }
        self.pos += 1;
        let start = self.pos;
        loop {
            // Tight loop over plain units.
            let rest = &self.b[self.pos..];
            let off = rest
                .iter()
                .position(|&c| c == QUOTE || c == BACKSLASH || c < 0x20);
            match off {
                None => {
                    self.pos = self.b.len();
                    return Err(self.syntax("Unterminated string"));
                }
                Some(off) => self.pos += off,
            }
            match self.b[self.pos] {
                QUOTE => {
                    let end = self.pos;
                    self.pos += 1;
                    return Ok((start, end));
                }
                BACKSLASH => {
                    self.pos += 1;
                    match self.peek().and_then(|c| u8::try_from(c).ok()) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            for _ in 0..4 {
                                match self.peek().and_then(|c| u8::try_from(c).ok()) {
                                    Some(c) if c.is_ascii_hexdigit() => self.pos += 1,
                                    _ => return Err(self.syntax("Bad Unicode escape")),
                                }
                            }
                        }
                        _ => return Err(self.syntax("Bad escaped character")),
                    }
                }
                _ => return Err(self.syntax("Bad control character in string literal")),
            }
        }
    }

    pub(super) fn number(&mut self) -> Result<Span> {
        let start = self.pos;
        if self.is(b'-') {
            self.pos += 1;
        }
        if self.is(b'0') {
            self.pos += 1;
        } else if self.is_digit() {
            while self.is_digit() {
                self.pos += 1;
            }
        } else {
            return Err(self.syntax("No number after minus sign"));
        }
        if self.is(b'.') {
            self.pos += 1;
            if !self.is_digit() {
                return Err(self.syntax("Unterminated fractional number"));
            }
            while self.is_digit() {
                self.pos += 1;
            }
        }
        if self.is(b'e') || self.is(b'E') {
            self.pos += 1;
            if self.is(b'+') || self.is(b'-') {
                self.pos += 1;
            }
            if !self.is_digit() {
                return Err(self.syntax("Exponent part is missing a number"));
            }
            while self.is_digit() {
                self.pos += 1;
            }
        }
        Ok((start, self.pos))
    }

    pub(super) fn literal(&mut self, word: &[u8]) -> Result<()> {
        let rest = &self.b[self.pos..];
        if rest.len() >= word.len() && rest.iter().zip(word).all(|(&a, &w)| a == u(w)) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// A scalar at the cursor (after whitespace).
    pub(super) fn scalar(&mut self) -> Result<Kind> {
        match self.peek().and_then(|c| u8::try_from(c).ok()) {
            Some(b'"') => self.string().map(|_| Kind::String),
            Some(b't') => self.literal(b"true").map(|_| Kind::Bool),
            Some(b'f') => self.literal(b"false").map(|_| Kind::Bool),
            Some(b'n') => self.literal(b"null").map(|_| Kind::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| Kind::Number),
            _ => Err(self.unexpected()),
        }
    }

    pub(super) fn at_opener(&self) -> bool {
        matches!(self.peek(), Some(LBRACE | LBRACKET))
    }

    /// Skip any value, however deep, without recursion. Returns its kind.
    pub(super) fn skip_value(&mut self) -> Result<Kind> {
        self.ws();
        let kind = match self.peek() {
            Some(LBRACE) => Kind::Object,
            Some(LBRACKET) => Kind::Array,
            _ => return self.scalar(),
        };
        let mut closers: Vec<u16> = Vec::new();
        'open: loop {
            // At an opener.
            let is_obj = self.b[self.pos] == LBRACE;
            self.pos += 1;
            closers.push(if is_obj { RBRACE } else { RBRACKET });
            self.ws();
            if self.peek() == closers.last().copied() {
                self.pos += 1;
                closers.pop();
            } else {
                if is_obj {
                    self.string()?;
                    self.expect(COLON)?;
                    self.ws();
                }
                if self.at_opener() {
                    continue 'open;
                }
                self.scalar()?;
            }
            // After a complete value inside the containers on the stack.
            while let Some(&top) = closers.last() {
                self.ws();
                match self.peek() {
                    Some(COMMA) => {
                        self.pos += 1;
                        self.ws();
                        if top == RBRACE {
                            self.string()?;
                            self.expect(COLON)?;
                            self.ws();
                        }
                        if self.at_opener() {
                            continue 'open;
                        }
                        self.scalar()?;
                    }
                    Some(c) if c == top => {
                        self.pos += 1;
                        closers.pop();
                    }
                    _ => return Err(self.unexpected()),
                }
            }
            return Ok(kind);
        }
    }

    /// Iterate the members of the object at the cursor (`{` expected), calling
    /// `member(scanner, key_units)` which must consume the value.
    pub(super) fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, Vec<u16>) -> Result<()>,
    ) -> Result<()> {
        self.expect(LBRACE)?;
        self.ws();
        if self.peek() == Some(RBRACE) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let (s, e) = self.string()?;
            let key = decode_units(&self.b[s..e]);
            self.expect(COLON)?;
            self.ws();
            member(self, key)?;
            self.ws();
            match self.peek() {
                Some(COMMA) => self.pos += 1,
                Some(RBRACE) => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected()),
            }
        }
    }
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_string_contents_to_exact_units() {
        let units: Vec<u16> = vec![
            0xd800,
            b'a' as u16,
            0x22,
            0x5c,
            0x0a,
            0x01,
            0xdc00,
            0xd83d,
            0xde00,
        ];
        let raw: Vec<u16> = "\\ud800a\\\"\\\\\\n\\u0001\\udc00😀"
            .encode_utf16()
            .collect();
        assert_eq!(decode_units(&raw), units);
    }
}
