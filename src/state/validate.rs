//! The state document (`{"version":1,"entries":{...},"metadata":...}`):
//! validating JSON text against its shape, with error messages that name the
//! first problem in the order a JS reader meets it. User values are never
//! interpreted: the scanner (`scan`) skips them.
//!
//! The text is the JS string's UTF-16 code units, as `state/binding.rs`
//! reads them (`napi_get_value_string_utf16`): lossless for any JS string,
//! lone surrogates included, so keys are compared and quoted in messages
//! exactly as JavaScript sees them.

use crate::error::{PersistError, Result};
use crate::json_string::quote_utf16;
use crate::state::scan::{array_index_units, decode_units, Kind, Scanner, LBRACE};

/// The only document version this crate reads and writes.
pub const STATE_VERSION: u32 = 1;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> String {
        match validate_state(text) {
            Err(PersistError::InvalidDocument(m)) => m,
            other => panic!("expected InvalidDocument for {text}, got {other:?}"),
        }
    }

    #[test]
    fn deep_values_do_not_recurse() {
        let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
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
