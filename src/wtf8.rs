//! JavaScript strings (UTF-16, possibly with lone surrogates) <-> bytes,
//! losslessly: WTF-8. A well-formed string becomes exactly its UTF-8 bytes
//! (what the npm Redis clients send); a lone surrogate becomes the 3-byte
//! sequence of its code point (`ED A0..BF xx`), which no well-formed string
//! produces, so distinct JS strings always get distinct bytes.
//!
//! Decoding accepts UTF-8 plus lone surrogates; anything else (bytes another
//! program wrote that no JS string maps to, or a surrogate pair written as two
//! 3-byte sequences) is `None`, for the caller to report as corrupt.

/// Whether every unit is ASCII. Each block of units is OR-ed whole, with
/// no exit inside it, so the compiler vectorizes the test (a unit-by-unit
/// early exit costs about a nanosecond a unit: a microsecond per 1 KB value).
pub fn is_ascii_units(units: &[u16]) -> bool {
    units
        .chunks(64)
        .all(|block| block.iter().fold(0u16, |acc, &u| acc | u) < 0x80)
}

/// Append the WTF-8 bytes of `units` to `out`.
pub fn encode_into(units: &[u16], out: &mut Vec<u8>) {
    if is_ascii_units(units) {
        out.extend(units.iter().map(|&u| u as u8));
        return;
    }
    for r in char::decode_utf16(units.iter().copied()) {
        match r {
            Ok(c) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            Err(e) => {
                let u = e.unpaired_surrogate();
                out.extend_from_slice(&[
                    0xE0 | (u >> 12) as u8,
                    0x80 | ((u >> 6) & 0x3F) as u8,
                    0x80 | (u & 0x3F) as u8,
                ]);
            }
        }
    }
}

/// The WTF-8 bytes of `units`.
pub fn encode(units: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(units.len());
    encode_into(units, &mut out);
    out
}

/// Append the UTF-16 units of WTF-8 `bytes` to `out`; false (and `out`
/// unchanged) if `bytes` is not WTF-8.
pub fn decode_into(bytes: &[u8], out: &mut Vec<u16>) -> bool {
    if bytes.is_ascii() {
        out.extend(bytes.iter().map(|&b| u16::from(b)));
        return true;
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        out.extend(s.encode_utf16());
        return true;
    }
    let start = out.len();
    let ok = decode_slow(bytes, out);
    if !ok {
        out.truncate(start);
    }
    ok
}

/// The UTF-16 units of WTF-8 `bytes`, or None.
pub fn decode(bytes: &[u8]) -> Option<Vec<u16>> {
    let mut out = Vec::with_capacity(bytes.len());
    decode_into(bytes, &mut out).then_some(out)
}

fn decode_slow(b: &[u8], out: &mut Vec<u16>) -> bool {
    let cont = |i: usize| b.get(i).copied().filter(|&x| x & 0xC0 == 0x80);
    let mut i = 0;
    // whether the last unit pushed was a lone high surrogate from an ED sequence
    let mut after_high = false;
    while i < b.len() {
        let x = b[i];
        let (cp, len) = match x {
            0x00..=0x7F => (u32::from(x), 1),
            0xC2..=0xDF => match cont(i + 1) {
                Some(y) => ((u32::from(x & 0x1F) << 6) | u32::from(y & 0x3F), 2),
                None => return false,
            },
            0xE0..=0xEF => {
                let (Some(y), Some(z)) = (cont(i + 1), cont(i + 2)) else {
                    return false;
                };
                if x == 0xE0 && y < 0xA0 {
                    return false; // overlong
                }
                let cp =
                    (u32::from(x & 0x0F) << 12) | (u32::from(y & 0x3F) << 6) | u32::from(z & 0x3F);
                (cp, 3)
            }
            0xF0..=0xF4 => {
                let (Some(y), Some(z), Some(w)) = (cont(i + 1), cont(i + 2), cont(i + 3)) else {
                    return false;
                };
                if (x == 0xF0 && y < 0x90) || (x == 0xF4 && y > 0x8F) {
                    return false;
                }
                let cp = (u32::from(x & 0x07) << 18)
                    | (u32::from(y & 0x3F) << 12)
                    | (u32::from(z & 0x3F) << 6)
                    | u32::from(w & 0x3F);
                (cp, 4)
            }
            _ => return false,
        };
        let is_low = (0xDC00..=0xDFFF).contains(&cp);
        if is_low && after_high {
            // a pair written as two 3-byte sequences: not what we write
            return false;
        }
        after_high = (0xD800..=0xDBFF).contains(&cp);
        match char::from_u32(cp) {
            Some(c) => {
                let mut buf = [0u16; 2];
                out.extend_from_slice(c.encode_utf16(&mut buf));
            }
            None => out.push(cp as u16), // a lone surrogate
        }
        i += len;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn well_formed_strings_are_their_utf8() {
        for s in [
            "",
            "abc",
            "é",
            "🚀 x",
            "日本語",
            "\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}",
        ] {
            assert_eq!(encode(&units(s)), s.as_bytes());
            assert_eq!(decode(s.as_bytes()), Some(units(s)));
        }
    }

    #[test]
    fn one_non_ascii_unit_anywhere_in_any_block_is_seen() {
        for len in [1, 63, 64, 65, 200] {
            let ascii = vec![u16::from(b'a'); len];
            assert!(is_ascii_units(&ascii));
            assert_eq!(encode(&ascii), vec![b'a'; len]);
            for at in [0, len / 2, len - 1] {
                for odd in [0x80, 0xE9, 0xD800, 0xFFFF] {
                    let mut u = ascii.clone();
                    u[at] = odd;
                    assert!(!is_ascii_units(&u), "len {len} at {at} unit {odd:#x}");
                    assert_eq!(decode(&encode(&u)), Some(u));
                }
            }
        }
        assert!(is_ascii_units(&[]));
    }

    #[test]
    fn lone_surrogates_round_trip_and_stay_distinct() {
        let cases: Vec<Vec<u16>> = vec![
            vec![0xD800],
            vec![0xDBFF],
            vec![0xDC00],
            vec![0xDFFF],
            vec![0x61, 0xD800, 0x62],
            vec![0xDC00, 0xD800], // low then high: two lone ones
            vec![0xD83D, 0xDE80, 0xD800],
        ];
        let mut seen = std::collections::HashSet::new();
        for c in &cases {
            let b = encode(c);
            assert!(
                std::str::from_utf8(&b).is_err() || !c.iter().any(|u| (0xD800..0xE000).contains(u))
            );
            assert_eq!(decode(&b).as_ref(), Some(c), "{c:x?}");
            assert!(seen.insert(b));
        }
        assert_ne!(encode(&[0xD800]), encode(&[0xFFFD]));
    }

    #[test]
    fn foreign_bytes_are_rejected() {
        for b in [
            &[0xFF][..],
            &[0xC0, 0x80],                         // overlong
            &[0xE0, 0x80, 0x80],                   // overlong
            &[0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80], // CESU-8 pair
            &[0x61, 0xE2, 0x82],                   // truncated
            &[0xF4, 0x90, 0x80, 0x80],             // > U+10FFFF
        ] {
            assert_eq!(decode(b), None, "{b:x?}");
        }
    }
}
