//! JSON string literals of UTF-16 code units (what a JS string is): quoted
//! exactly as `JSON.stringify` writes them (lone surrogates as `\udXXX`,
//! so the text is valid UTF-8), and unquoted back to the exact units. Used
//! for the file store's envelopes and owner files and for the keys named in
//! state-document messages. Pure Rust.

/// Encode UTF-16 code units as a JSON string literal (quotes included).
/// Lone surrogates become `\udXXX` escapes, as `JSON.stringify` writes them,
/// so the text is valid UTF-8 and `JSON.parse` gives back the exact units.
pub fn quote_utf16(units: &[u16]) -> String {
    let mut out = String::with_capacity(units.len() + 2);
    out.push('"');
    for r in char::decode_utf16(units.iter().copied()) {
        match r {
            Ok(c) => push_json_char(&mut out, c),
            Err(e) => {
                out.push_str(&format!("\\u{:04x}", e.unpaired_surrogate()));
            }
        }
    }
    out.push('"');
    out
}

fn push_json_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push(c),
    }
}

/// Decode a JSON string literal (quotes included) into UTF-16 code units,
/// keeping lone-surrogate escapes (which serde_json rejects).
pub fn unquote_utf16(text: &str) -> Option<Vec<u16>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let e = chars.next()?;
            let u: u16 = match e {
                '"' => 0x22,
                '\\' => 0x5c,
                '/' => 0x2f,
                'b' => 0x08,
                'f' => 0x0c,
                'n' => 0x0a,
                'r' => 0x0d,
                't' => 0x09,
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    if hex.len() != 4 {
                        return None;
                    }
                    u16::from_str_radix(&hex, 16).ok()?
                }
                _ => return None,
            };
            out.push(u);
        } else if c == '"' || (c as u32) < 0x20 {
            return None;
        } else {
            let mut buf = [0u16; 2];
            out.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn json_quote_roundtrips_units() {
        for key in [
            u("plain"),
            u("q\"b\\s\n\t\u{1}é😀"),
            vec![0xd800, 0x41, 0xdc00],
            vec![],
        ] {
            let q = quote_utf16(&key);
            assert_eq!(unquote_utf16(&q), Some(key.clone()));
        }
        assert_eq!(quote_utf16(&[0xd800]), "\"\\ud800\"");
        assert_eq!(unquote_utf16("\"\\u00e9\\/\""), Some(u("é/")));
        assert_eq!(unquote_utf16("\"bad\\x\""), None);
        assert_eq!(unquote_utf16("nope"), None);
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
    }
}
