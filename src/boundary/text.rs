//! JS text across the boundary. In: UTF-16 code units, lossless for any JS
//! string, lone surrogates included, and a widening copy rather than a
//! UTF-8 transcode. Out: [`JsText`], ASCII as one-byte latin1.

use napi::bindgen_prelude::*;
use napi::JsString;

/// The code units of a JS string (napi-rs appends a NUL; drop it).
pub fn units_of(s: JsString<'_>) -> Result<Vec<u16>> {
    let utf16 = s.into_utf16()?;
    let units: &[u16] = &utf16;
    let n = units.len().saturating_sub(1);
    Ok(units[..n].to_vec())
}

/// Text going back to JS: ASCII as a one-byte (latin1) V8 string, which JS
/// slices and parses faster and stores in half the memory; anything else as
/// UTF-16 (exact, lone surrogates included).
pub type JsText = Either<Latin1String, Utf16String>;

pub fn js_text(units: Vec<u16>) -> JsText {
    if crate::wtf8::is_ascii_units(&units) {
        let bytes: Vec<u8> = units.iter().map(|&u| u as u8).collect();
        if let Ok(ascii) = String::from_utf8(bytes) {
            return Either::A(Latin1String::from(ascii));
        }
    }
    Either::B(Utf16String::from(units))
}
