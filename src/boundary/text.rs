//! JS text crossing into Rust as UTF-16 code units: lossless for any JS
//! string, lone surrogates included, and a widening copy rather than a UTF-8
//! transcode.

use napi::bindgen_prelude::*;
use napi::JsString;

/// The code units of a JS string (napi-rs appends a NUL; drop it).
pub fn units_of(s: JsString<'_>) -> Result<Vec<u16>> {
    let utf16 = s.into_utf16()?;
    let units: &[u16] = &utf16;
    let n = units.len().saturating_sub(1);
    Ok(units[..n].to_vec())
}
