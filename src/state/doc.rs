//! The state document (`{"version":1,"entries":{...},"metadata":...}`):
//! assembling it from JSON pieces that V8 produced, and validating JSON text
//! against its shape, with error messages that name the problem.
//!
//! Pure Rust, no napi types. User values are never interpreted: they are
//! skipped by an iterative scanner (a heap stack of closers, no recursion), so
//! no input depth can overflow the native stack.
//!
//! Text crosses the N-API boundary as UTF-8. That is lossless here because
//! JSON text made by `JSON.stringify` escapes lone UTF-16 surrogates as
//! `\udXXX`, so it is always well-formed Unicode; raw user strings (which may
//! hold lone surrogates) never cross.

use crate::error::{PersistError, Result};

/// The only document version this crate reads and writes.
pub const STATE_VERSION: u32 = 1;

/// A span `[start, end)` of code units.
type Span = (usize, usize);

/// Why a JSON value is not a state document: where, what was expected, and
/// what was found (`"missing"` for an absent member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `""` for the document itself, else e.g. `entries["a"].result.ok`.
    pub path: String,
    pub expected: String,
    pub got: String,
}

impl Problem {
    pub fn new(
        path: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        Problem {
            path: path.into(),
            expected: expected.into(),
            got: got.into(),
        }
    }

    /// The error message, shared by every reader (JS fast path and Rust).
    pub fn message(&self) -> String {
        let what = if self.path.is_empty() {
            "the document"
        } else {
            self.path.as_str()
        };
        if self.got == "missing" {
            format!(
                "not a state document: {what} is missing (expected {})",
                self.expected
            )
        } else {
            format!(
                "not a state document: {what} must be {}, got {}",
                self.expected, self.got
            )
        }
    }

    pub fn into_error(self) -> PersistError {
        PersistError::InvalidDocument(self.message())
    }
}

// ---------------------------------------------------------------------------
// JSON string escaping (exactly as JSON.stringify) and decoding
// ---------------------------------------------------------------------------

/// Quote UTF-16 code units as a JSON string literal, byte-identical to
/// `JSON.stringify(string)` (well-formed JSON.stringify: lone surrogates
/// become `\udXXX`).
pub fn quote_utf16(units: &[u16]) -> String {
    let mut out = String::with_capacity(units.len() + 2);
    out.push('"');
    for item in char::decode_utf16(units.iter().copied()) {
        match item {
            Ok(c) => match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            },
            Err(e) => out.push_str(&format!("\\u{:04x}", e.unpaired_surrogate())),
        }
    }
    out.push('"');
    out
}

/// Decode the inside of a JSON string literal (no quotes, already checked by
/// the scanner) into UTF-16 code units, keeping lone surrogates.
fn decode_units(raw: &[u16]) -> Vec<u16> {
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
fn array_index(digits: &[u8]) -> Option<u64> {
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

fn array_index_units(units: &[u16]) -> Option<u64> {
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
const fn u(c: u8) -> u16 {
    c as u16
}

const QUOTE: u16 = u(b'"');
const BACKSLASH: u16 = u(b'\\');
const LBRACE: u16 = u(b'{');
const RBRACE: u16 = u(b'}');
const LBRACKET: u16 = u(b'[');
const RBRACKET: u16 = u(b']');
const COMMA: u16 = u(b',');
const COLON: u16 = u(b':');

/// The kind of a JSON value, as reported in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    fn name(self) -> &'static str {
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

struct Scanner<'a> {
    b: &'a [u16],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(units: &'a [u16]) -> Self {
        Scanner { b: units, pos: 0 }
    }

    fn syntax(&self, what: &str) -> PersistError {
        PersistError::Syntax(format!("{what} in JSON at position {}", self.pos))
    }

    fn peek(&self) -> Option<u16> {
        self.b.get(self.pos).copied()
    }

    fn is(&self, c: u8) -> bool {
        self.peek() == Some(u(c))
    }

    fn ws(&mut self) {
        while let Some(0x20 | 0x09 | 0x0a | 0x0d) = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u16) -> Result<()> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn unexpected(&self) -> PersistError {
        match self.peek() {
            None => self.syntax("Unexpected end of JSON input"),
            Some(_) => self.syntax("Unexpected token"),
        }
    }

    fn at_end(&mut self) -> Result<()> {
        self.ws();
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err(self.syntax("Unexpected non-whitespace character after JSON"))
        }
    }

    fn is_digit(&self) -> bool {
        matches!(self.peek(), Some(c) if (u(b'0')..=u(b'9')).contains(&c))
    }

    /// At a `"`: scan the string, return the span of its inside.
    fn string(&mut self) -> Result<Span> {
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

    fn number(&mut self) -> Result<Span> {
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

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        let rest = &self.b[self.pos..];
        if rest.len() >= word.len() && rest.iter().zip(word).all(|(&a, &w)| a == u(w)) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// A scalar at the cursor (after whitespace).
    fn scalar(&mut self) -> Result<Kind> {
        match self.peek().and_then(|c| u8::try_from(c).ok()) {
            Some(b'"') => self.string().map(|_| Kind::String),
            Some(b't') => self.literal(b"true").map(|_| Kind::Bool),
            Some(b'f') => self.literal(b"false").map(|_| Kind::Bool),
            Some(b'n') => self.literal(b"null").map(|_| Kind::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| Kind::Number),
            _ => Err(self.unexpected()),
        }
    }

    fn at_opener(&self) -> bool {
        matches!(self.peek(), Some(LBRACE | LBRACKET))
    }

    /// Skip any value, however deep, without recursion. Returns its kind.
    fn skip_value(&mut self) -> Result<Kind> {
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
    fn members(&mut self, mut member: impl FnMut(&mut Self, Vec<u16>) -> Result<()>) -> Result<()> {
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
// Validation of a state document
// ---------------------------------------------------------------------------

/// An entry key (UTF-16 code units) and the entry's first problem, if any.
type EntryCheck = (Vec<u16>, Option<Problem>);

/// What a member held, as far as the rules need to know.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Missing,
    Kind(Kind),
    Bool(bool),
    Number(f64),
    Str(Vec<u16>),
}

impl Seen {
    /// The `got` of a message (same words as the JS fast path's `kindOf`).
    fn got(&self) -> String {
        match self {
            Seen::Missing => "missing".into(),
            Seen::Kind(k) => k.name().into(),
            Seen::Bool(_) => "boolean".into(),
            Seen::Number(_) => "number".into(),
            Seen::Str(_) => "string".into(),
        }
    }

    /// Like `got`, but shows short literal values (for version, type, origin).
    fn got_value(&self) -> String {
        match self {
            Seen::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Seen::Str(u) if u.len() <= MAX_SHOWN_STRING => quote_utf16(u),
            other => other.got(),
        }
    }

    fn is_absent(&self) -> bool {
        matches!(self, Seen::Missing | Seen::Kind(Kind::Null))
    }
}

/// Longest string (UTF-16 units) a message quotes; longer ones show as `string`.
const MAX_SHOWN_STRING: usize = 64;

/// Read a value we only need to classify (objects and arrays are skipped).
fn classify(sc: &mut Scanner<'_>) -> Result<Seen> {
    sc.ws();
    Ok(match sc.peek().and_then(|c| u8::try_from(c).ok()) {
        Some(b'"') => {
            let (s, e) = sc.string()?;
            Seen::Str(decode_units(&sc.b[s..e]))
        }
        Some(b't') => {
            sc.literal(b"true")?;
            Seen::Bool(true)
        }
        Some(b'f') => {
            sc.literal(b"false")?;
            Seen::Bool(false)
        }
        Some(b'-' | b'0'..=b'9') => {
            let (s, e) = sc.number()?;
            let text: String = sc.b[s..e].iter().map(|&c| char::from(c as u8)).collect();
            Seen::Number(text.parse::<f64>().unwrap_or(f64::NAN))
        }
        _ => Seen::Kind(sc.skip_value()?),
    })
}

fn is_obj(sc: &mut Scanner<'_>) -> bool {
    sc.ws();
    sc.peek() == Some(LBRACE)
}

/// A cause (`result.cause`, `meta.resultCause`, `meta.thrown`): `Ok(None)`
/// when fine, else the problem relative to the cause.
fn read_cause(sc: &mut Scanner<'_>) -> Result<Option<Problem>> {
    if !is_obj(sc) {
        let seen = classify(sc)?;
        return Ok(if seen.is_absent() {
            None
        } else {
            Some(Problem::new("", "an object", seen.got()))
        });
    }
    let mut ty = Seen::Missing;
    sc.members(|sc, key| {
        if key == utf16("type") {
            ty = classify(sc)?;
        } else {
            sc.skip_value()?;
        }
        Ok(())
    })?;
    let ok = matches!(&ty, Seen::Str(u) if *u == utf16("error") || *u == utf16("value") || *u == utf16("undefined"));
    Ok((!ok).then(|| {
        Problem::new(
            ".type",
            "\"error\", \"value\" or \"undefined\"",
            ty.got_value(),
        )
    }))
}

fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn at(path: &str, sub: Option<Problem>) -> Option<Problem> {
    sub.map(|p| Problem::new(format!("{path}{}", p.path), p.expected, p.got))
}

/// One entry: `Ok(None)` when fine, else the problem relative to the entry.
fn read_entry(sc: &mut Scanner<'_>) -> Result<Option<Problem>> {
    if !is_obj(sc) {
        let seen = classify(sc)?;
        return Ok(Some(Problem::new("", "an object", seen.got())));
    }
    // result: None = missing/not object (with what was seen), Some(ok, cause problem)
    let mut result: std::result::Result<(Seen, Option<Problem>), Seen> = Err(Seen::Missing);
    let mut meta: Option<Problem> = None;
    sc.members(|sc, key| {
        if key == utf16("result") {
            if is_obj(sc) {
                let mut ok = Seen::Missing;
                let mut cause: Option<Problem> = None;
                sc.members(|sc, key| {
                    if key == utf16("ok") {
                        ok = classify(sc)?;
                    } else if key == utf16("cause") {
                        cause = at(".cause", read_cause(sc)?);
                    } else {
                        sc.skip_value()?;
                    }
                    Ok(())
                })?;
                result = Ok((ok, cause));
            } else {
                result = Err(classify(sc)?);
            }
        } else if key == utf16("meta") {
            meta = at(".meta", read_meta(sc)?);
        } else {
            sc.skip_value()?;
        }
        Ok(())
    })?;
    Ok(match result {
        Err(seen) => Some(Problem::new(".result", "an object", seen.got())),
        Ok((ok, cause)) => match ok {
            Seen::Bool(true) => meta,
            Seen::Bool(false) => at(".result", cause).or(meta),
            other => Some(Problem::new(".result.ok", "a boolean", other.got())),
        },
    })
}

fn read_meta(sc: &mut Scanner<'_>) -> Result<Option<Problem>> {
    if !is_obj(sc) {
        let seen = classify(sc)?;
        return Ok(if seen.is_absent() {
            None
        } else {
            Some(Problem::new("", "an object", seen.got()))
        });
    }
    let mut origin = Seen::Missing;
    let mut result_cause: Option<Problem> = None;
    let mut thrown: Option<Problem> = None;
    sc.members(|sc, key| {
        if key == utf16("origin") {
            origin = classify(sc)?;
        } else if key == utf16("resultCause") {
            result_cause = at(".resultCause", read_cause(sc)?);
        } else if key == utf16("thrown") {
            thrown = at(".thrown", read_cause(sc)?);
        } else {
            sc.skip_value()?;
        }
        Ok(())
    })?;
    Ok(match &origin {
        Seen::Str(u) if *u == utf16("result") => result_cause,
        Seen::Str(u) if *u == utf16("throw") => thrown,
        other => Some(Problem::new(
            ".origin",
            "\"result\" or \"throw\"",
            other.got_value(),
        )),
    })
}

/// Check that `text` is a state document. `Err(Syntax)` for text that is not
/// JSON, `Err(InvalidDocument)` naming the first problem (in the order a JS
/// reader meets them: version, entries, then each entry in property order).
pub fn validate_state_units(units: &[u16]) -> Result<()> {
    let mut sc = Scanner::new(units);
    let problem = read_document(&mut sc)?;
    sc.at_end()?;
    match problem {
        None => Ok(()),
        Some(p) => Err(p.into_error()),
    }
}

/// [`validate_state_units`] for Rust text.
pub fn validate_state(text: &str) -> Result<()> {
    validate_state_units(&text.encode_utf16().collect::<Vec<u16>>())
}

fn read_document(sc: &mut Scanner<'_>) -> Result<Option<Problem>> {
    if !is_obj(sc) {
        let seen = classify(sc)?;
        return Ok(Some(Problem::new("", "an object", seen.got())));
    }
    let mut version = Seen::Missing;
    // entries: Err(seen) when not an object; Ok(list) in first-seen order,
    // later duplicates replacing the value (as JSON.parse does).
    let mut entries: std::result::Result<Vec<EntryCheck>, Seen> = Err(Seen::Missing);
    sc.members(|sc, key| {
        if key == utf16("version") {
            version = classify(sc)?;
        } else if key == utf16("entries") {
            if is_obj(sc) {
                let mut list: Vec<EntryCheck> = Vec::new();
                let mut index: std::collections::HashMap<Vec<u16>, usize> =
                    std::collections::HashMap::new();
                sc.members(|sc, key| {
                    let problem = read_entry(sc)?;
                    match index.get(&key) {
                        Some(&i) => list[i].1 = problem,
                        None => {
                            index.insert(key.clone(), list.len());
                            list.push((key, problem));
                        }
                    }
                    Ok(())
                })?;
                entries = Ok(list);
            } else {
                entries = Err(classify(sc)?);
            }
        } else {
            sc.skip_value()?;
        }
        Ok(())
    })?;
    if version != Seen::Number(f64::from(STATE_VERSION)) {
        return Ok(Some(Problem::new(
            "version",
            STATE_VERSION.to_string(),
            version.got_value(),
        )));
    }
    let list = match entries {
        Err(seen) => return Ok(Some(Problem::new("entries", "an object", seen.got()))),
        Ok(list) => list,
    };
    // Property order: array-index keys ascending, then the rest as inserted.
    let mut ordered: Vec<(Option<u64>, &EntryCheck)> =
        list.iter().map(|e| (array_index_units(&e.0), e)).collect();
    ordered.sort_by_key(|(idx, _)| match idx {
        Some(n) => (0u8, *n),
        None => (1u8, 0),
    });
    Ok(ordered.into_iter().find_map(|(_, (key, problem))| {
        at(&format!("entries[{}]", quote_utf16(key)), problem.clone())
    }))
}

// ---------------------------------------------------------------------------
// Envelope assembly
// ---------------------------------------------------------------------------

/// Build the state document from `chunks`, each the JSON text (UTF-16 code
/// units, as V8 made it with `JSON.stringify`) of an array; together their
/// elements are `key1, entry1, ..., keyN, entryN, {"metadata": m}` (the last
/// is `{}` when metadata is absent). Chunks keep each string V8 builds small
/// (a string over ~128 KB costs V8 a large-object allocation, paid once more
/// for every such copy).
///
/// Returns `{"version":1,"entries":{key1:entry1,...},"metadata":m}`,
/// byte-identical to `JSON.stringify(serializeState(state, metadata))`,
/// including JS property order (array-index keys first, ascending). Keys and
/// values are copied as V8 escaped them (lone surrogates as `\udXXX`).
pub fn assemble_state_units(chunks: &[&[u16]]) -> Result<Vec<u16>> {
    let bad = |what: &str| PersistError::InvalidArgument(format!("assembleState: {what}"));
    // (chunk, span, is_string) of every element, in order.
    let mut elements: Vec<(usize, Span, bool)> = Vec::new();
    let mut total = 0;
    for (ci, chunk) in chunks.iter().enumerate() {
        total += chunk.len();
        let mut sc = Scanner::new(chunk);
        sc.expect(LBRACKET)?;
        sc.ws();
        if sc.peek() == Some(RBRACKET) {
            sc.pos += 1;
        } else {
            loop {
                sc.ws();
                let start = sc.pos;
                let is_string = sc.peek() == Some(QUOTE);
                match sc.peek() {
                    Some(QUOTE) => {
                        sc.string()?;
                    }
                    Some(LBRACE) => {
                        sc.skip_value()?;
                    }
                    _ => return Err(bad("elements must be key strings and objects")),
                }
                elements.push((ci, (start, sc.pos), is_string));
                sc.ws();
                match sc.peek() {
                    Some(COMMA) => sc.pos += 1,
                    Some(RBRACKET) => {
                        sc.pos += 1;
                        break;
                    }
                    _ => return Err(sc.unexpected()),
                }
            }
        }
        sc.at_end()?;
    }
    let Some((&(wc, (ws, we), w_is_string), pairs)) = elements.split_last() else {
        return Err(bad("the metadata object is missing"));
    };
    if w_is_string || pairs.len() % 2 != 0 {
        return Err(bad("expected key/entry pairs then the metadata object"));
    }
    let wrapper = &chunks[wc][ws..we];
    let prefix: Vec<u16> = "{\"metadata\":".encode_utf16().collect();
    let metadata = if wrapper.len() == 2 {
        None
    } else if wrapper.len() > prefix.len() + 1 && wrapper.starts_with(&prefix) {
        Some(&wrapper[prefix.len()..wrapper.len() - 1])
    } else {
        return Err(bad("the last element must be {} or {\"metadata\":...}"));
    };
    let mut indexed: Vec<(u64, usize)> = Vec::new();
    let mut order: Vec<usize> = Vec::with_capacity(pairs.len() / 2);
    for (i, pair) in pairs.chunks_exact(2).enumerate() {
        let (kc, (ks, ke), k_is_string) = pair[0];
        let (_, _, v_is_string) = pair[1];
        if !k_is_string || v_is_string {
            return Err(bad("expected key/entry pairs then the metadata object"));
        }
        match array_index_units(&chunks[kc][ks + 1..ke - 1]) {
            Some(n) => indexed.push((n, i)),
            None => order.push(i),
        }
    }
    indexed.sort_by_key(|&(n, _)| n);
    let mut out: Vec<u16> = Vec::with_capacity(total + 32);
    out.extend("{\"version\":1,\"entries\":{".encode_utf16());
    let mut first = true;
    for i in indexed.iter().map(|&(_, i)| i).chain(order) {
        if !first {
            out.push(COMMA);
        }
        first = false;
        let (kc, (ks, ke), _) = pairs[2 * i];
        let (vc, (vs, ve), _) = pairs[2 * i + 1];
        out.extend_from_slice(&chunks[kc][ks..ke]);
        out.push(COLON);
        out.extend_from_slice(&chunks[vc][vs..ve]);
    }
    out.push(RBRACE);
    if let Some(m) = metadata {
        out.extend(",\"metadata\":".encode_utf16());
        out.extend_from_slice(m);
    }
    out.push(RBRACE);
    Ok(out)
}

/// [`assemble_state_units`] for Rust text, one chunk.
pub fn assemble_state(parts: &str) -> Result<String> {
    let units: Vec<u16> = parts.encode_utf16().collect();
    let out = assemble_state_units(&[&units])?;
    Ok(String::from_utf16_lossy(&out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn problem(text: &str) -> String {
        match validate_state(text) {
            Err(PersistError::InvalidDocument(m)) => m,
            other => panic!("expected InvalidDocument for {text}, got {other:?}"),
        }
    }

    #[test]
    fn assembles_envelope_without_and_with_metadata() {
        assert_eq!(
            assemble_state("[{}]").unwrap(),
            r#"{"version":1,"entries":{}}"#
        );
        assert_eq!(
            assemble_state(r#"["a",{"result":{"ok":true,"value":1}},{"metadata":{"x":[1,"]"]}}]"#)
                .unwrap(),
            r#"{"version":1,"entries":{"a":{"result":{"ok":true,"value":1}}},"metadata":{"x":[1,"]"]}}"#
        );
        assert_eq!(
            assemble_state(r#"[{"metadata":null}]"#).unwrap(),
            r#"{"version":1,"entries":{},"metadata":null}"#
        );
    }

    #[test]
    fn orders_array_index_keys_first_like_js_objects() {
        let parts = r#"["b",{"r":1},"10",{"r":2},"2",{"r":3},"01",{"r":4},"4294967295",{"r":5},"4294967294",{"r":6},{}]"#;
        assert_eq!(
            assemble_state(parts).unwrap(),
            r#"{"version":1,"entries":{"2":{"r":3},"10":{"r":2},"4294967294":{"r":6},"b":{"r":1},"01":{"r":4},"4294967295":{"r":5}}}"#
        );
    }

    #[test]
    fn keys_with_escapes_and_lone_surrogates_pass_through_unchanged() {
        // JSON.stringify("\ud800\"\n") === "\"\\ud800\\\"\\n\""
        let parts = "[\"\\ud800\\\"\\n\",{\"result\":{\"ok\":true,\"value\":\"\\udc00\"}},{}]";
        assert_eq!(
            assemble_state(parts).unwrap(),
            "{\"version\":1,\"entries\":{\"\\ud800\\\"\\n\":{\"result\":{\"ok\":true,\"value\":\"\\udc00\"}}}}"
        );
    }

    #[test]
    fn assembles_across_chunks_and_keeps_code_units() {
        let u = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        let a = u(r#"["b",{"r":1},"7",{"r":2}]"#);
        let mut b = u(r#"["k",{"v":"x"}]"#);
        // a raw lone surrogate unit inside a value passes through unchanged
        b[11] = 0xd800;
        let c = u(r#"[{"metadata":[1]}]"#);
        let empty = u("[]");
        let out = assemble_state_units(&[&a, &empty, &b, &c]).unwrap();
        let mut want =
            u(r#"{"version":1,"entries":{"7":{"r":2},"b":{"r":1},"k":{"v":"x"}},"metadata":[1]}"#);
        let at = want.iter().position(|&c| c == u16::from(b'x')).unwrap();
        want[at] = 0xd800;
        assert_eq!(out, want);
        // a pair split across chunks
        let k = u(r#"["a"]"#);
        let v = u(r#"[{"r":1},{}]"#);
        assert_eq!(
            assemble_state_units(&[&k, &v]).unwrap(),
            u(r#"{"version":1,"entries":{"a":{"r":1}}}"#)
        );
        assert!(assemble_state_units(&[]).is_err());
        assert!(assemble_state_units(&[&empty]).is_err());
    }

    #[test]
    fn quotes_like_json_stringify() {
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
        assert_eq!(
            quote_utf16(&units),
            "\"\\ud800a\\\"\\\\\\n\\u0001\\udc00😀\""
        );
        let raw: Vec<u16> = "\\ud800a\\\"\\\\\\n\\u0001\\udc00😀"
            .encode_utf16()
            .collect();
        assert_eq!(decode_units(&raw), units);
    }

    #[test]
    fn assembly_rejects_garbage_without_panicking() {
        for bad in [
            "",
            "[",
            "[1]",
            "[\"a\",1,{}]",
            "[\"a\",{}]",
            "[{\"x\":1}]",
            "[{}] x",
            "[\"a\",{\"b\":}, {}]",
        ] {
            assert!(assemble_state(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deep_values_do_not_recurse() {
        let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
        let parts = format!("[\"a\",{{\"result\":{{\"ok\":true,\"value\":{deep}}}}},{{}}]");
        assert!(assemble_state(&parts).is_ok());
        let doc = format!("{{\"version\":1,\"entries\":{{\"a\":{{\"result\":{{\"ok\":true,\"value\":{deep}}}}}}}}}");
        assert!(validate_state(&doc).is_ok());
        let unclosed = format!(
            "{{\"version\":1,\"entries\":{{\"a\":{{\"result\":{{\"ok\":true,\"value\":{}",
            "[".repeat(200_000)
        );
        assert!(matches!(
            validate_state(&unclosed),
            Err(PersistError::Syntax(_))
        ));
    }

    #[test]
    fn accepts_valid_documents() {
        for ok in [
            r#"{"version":1,"entries":{}}"#,
            " \n{\"version\":1.0,\"entries\":{},\"metadata\":5} ",
            r#"{"version":1,"entries":{"a":{"result":{"ok":false,"error":"E","cause":{"type":"error","errorName":"E"}},"meta":{"origin":"throw","thrown":{"type":"value","value":[1]}}}}}"#,
            r#"{"version":1,"entries":{"a":{"result":{"ok":true,"cause":7}}}}"#,
            r#"{"version":1,"entries":{"a":1,"a":{"result":{"ok":true}}}}"#,
            r#"{"version":1,"entries":{"a":{"result":{"ok":false,"cause":null},"meta":null}}}"#,
            r#"{"version":1,"entries":{"a":{"result":{"ok":"x","ok":true}}}}"#,
        ] {
            assert!(validate_state(ok).is_ok(), "{ok}: {:?}", validate_state(ok));
        }
    }

    #[test]
    fn names_the_problem() {
        assert_eq!(
            problem("null"),
            "not a state document: the document must be an object, got null"
        );
        assert_eq!(
            problem("[]"),
            "not a state document: the document must be an object, got array"
        );
        assert_eq!(
            problem("\"s\""),
            "not a state document: the document must be an object, got string"
        );
        assert_eq!(
            problem(r#"{"entries":{}}"#),
            "not a state document: version is missing (expected 1)"
        );
        assert_eq!(
            problem(r#"{"version":99,"entries":{}}"#),
            "not a state document: version must be 1, got 99"
        );
        assert_eq!(
            problem(r#"{"version":"1","entries":{}}"#),
            "not a state document: version must be 1, got \"1\""
        );
        assert_eq!(
            problem(r#"{"version":1}"#),
            "not a state document: entries is missing (expected an object)"
        );
        assert_eq!(
            problem(r#"{"version":1,"entries":[]}"#),
            "not a state document: entries must be an object, got array"
        );
        assert_eq!(
            problem(r#"{"version":1,"entries":{"a":1}}"#),
            "not a state document: entries[\"a\"] must be an object, got number"
        );
        assert_eq!(
            problem(r#"{"version":1,"entries":{"a":{}}}"#),
            "not a state document: entries[\"a\"].result is missing (expected an object)"
        );
        assert_eq!(
            problem(r#"{"version":1,"entries":{"a":{"result":{"ok":1}}}}"#),
            "not a state document: entries[\"a\"].result.ok must be a boolean, got number"
        );
        assert_eq!(
            problem(r#"{"version":1,"entries":{"a":{"result":{"ok":false,"cause":{"type":"weird"}}}}}"#),
            "not a state document: entries[\"a\"].result.cause.type must be \"error\", \"value\" or \"undefined\", got \"weird\""
        );
        assert_eq!(
            problem(r#"{"version":1,"entries":{"a":{"result":{"ok":false,"cause":"x"}}}}"#),
            "not a state document: entries[\"a\"].result.cause must be an object, got string"
        );
        assert_eq!(
            problem(r#"{"version":1,"entries":{"a":{"result":{"ok":true},"meta":{"origin":"x"}}}}"#),
            "not a state document: entries[\"a\"].meta.origin must be \"result\" or \"throw\", got \"x\""
        );
        assert_eq!(
            problem(r#"{"version":1,"entries":{"a":{"result":{"ok":true},"meta":{"origin":"throw","thrown":{}}}}}"#),
            "not a state document: entries[\"a\"].meta.thrown.type is missing (expected \"error\", \"value\" or \"undefined\")"
        );
        // Key in the path is quoted like JSON.stringify, lone surrogate kept.
        assert_eq!(
            problem("{\"version\":1,\"entries\":{\"\\ud800\\u0041\":{}}}"),
            "not a state document: entries[\"\\ud800A\"].result is missing (expected an object)"
        );
    }

    #[test]
    fn quotes_short_strings_only() {
        let at = |n: usize| format!("{{\"version\":\"{}\",\"entries\":{{}}}}", "v".repeat(n));
        assert_eq!(
            problem(&at(64)),
            format!(
                "not a state document: version must be 1, got \"{}\"",
                "v".repeat(64)
            )
        );
        assert_eq!(
            problem(&at(65)),
            "not a state document: version must be 1, got string"
        );
    }

    #[test]
    fn reports_first_problem_in_js_property_order() {
        // "5" is enumerated before "b" even though it comes later in the text.
        assert_eq!(
            problem(r#"{"version":1,"entries":{"b":1,"5":2}}"#),
            "not a state document: entries[\"5\"] must be an object, got number"
        );
        // A later duplicate replaces the earlier value.
        assert_eq!(
            problem(r#"{"version":1,"entries":{"a":{"result":{"ok":true}},"a":2}}"#),
            "not a state document: entries[\"a\"] must be an object, got number"
        );
    }

    #[test]
    fn rejects_what_json_parse_rejects() {
        for bad in [
            "",
            "{",
            "{\"version\":1,\"entries\":{}} x",
            "\u{feff}{\"version\":1,\"entries\":{}}",
            "{'a':1}",
            "[1,]",
            "{\"a\":01}",
            "{\"a\":\"\t\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":1.}",
            "{\"a\":-}",
            "{\"a\":tru}",
        ] {
            assert!(
                matches!(validate_state(bad), Err(PersistError::Syntax(_))),
                "{bad:?}"
            );
        }
    }
}
