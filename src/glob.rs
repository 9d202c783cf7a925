//! Redis-style glob patterns, as `KeyValueStore.keys(pattern)` takes them:
//! `*` any run, `?` one character, `[abc]`/`[a-z]`/`[^a]` a class, `\x` the
//! character `x` itself. [`escape`] makes any literal text (a prefix, a run
//! id) safe to put in front of a `*`.

/// Escape the glob metacharacters `* ? [ ] \` in `literal`.
pub fn escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() + 4);
    for ch in literal.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// [`escape`] on bytes (the WTF-8 of a JS string, say): the metacharacters
/// are ASCII, so every other byte passes through unchanged.
pub fn escape_bytes(literal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(literal.len() + 4);
    for &b in literal {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// Does `text` match the glob `pattern`? Iterative (no recursion), linear in
/// practice: one backtrack point for the last `*`, as Redis' own matcher.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<u32> = pattern.chars().map(u32::from).collect();
    let t: Vec<u32> = text.chars().map(u32::from).collect();
    matches_points(&p, &t)
}

/// [`matches`] on JS strings (UTF-16 units), exactly: a lone surrogate is a
/// character of its own, matched only by itself (or `?`, `*`, a class).
pub fn matches_units(pattern: &[u16], text: &[u16]) -> bool {
    matches_points(&points(pattern), &points(text))
}

/// The code points of `units`, a lone surrogate as its own value.
fn points(units: &[u16]) -> Vec<u32> {
    char::decode_utf16(units.iter().copied())
        .map(|r| r.map_or_else(|e| u32::from(e.unpaired_surrogate()), u32::from))
        .collect()
}

/// [`escape`] on UTF-16 units (the metacharacters are ASCII).
pub fn escape_units(literal: &[u16]) -> Vec<u16> {
    let mut out = Vec::with_capacity(literal.len() + 4);
    for &u in literal {
        if [b'*', b'?', b'[', b']', b'\\']
            .iter()
            .any(|&m| u == u16::from(m))
        {
            out.push(u16::from(b'\\'));
        }
        out.push(u);
    }
    out
}

const STAR: u32 = '*' as u32;
const QUESTION: u32 = '?' as u32;
const OPEN: u32 = '[' as u32;
const CLOSE: u32 = ']' as u32;
const BACKSLASH: u32 = '\\' as u32;
const CARET: u32 = '^' as u32;
const DASH: u32 = '-' as u32;

fn matches_points(p: &[u32], t: &[u32]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                STAR => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                QUESTION => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                OPEN => {
                    let (hit, next) = class_match(p, pi, t[ti]);
                    if hit {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                }
                BACKSLASH if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == STAR {
        pi += 1;
    }
    pi == p.len()
}

/// The literal text every match of `pattern` (UTF-16 units) starts with: its
/// characters up to the first `*`, `?` or `[`, with `\\x` read as `x` (as
/// [`matches`] reads them). `"wf\\*:*"` → `"wf*:"`.
pub fn literal_prefix_units(pattern: &[u16]) -> Vec<u16> {
    let is = |u: u16, c: u8| u == u16::from(c);
    let mut out = Vec::new();
    let mut i = 0;
    while i < pattern.len() {
        let u = pattern[i];
        if is(u, b'*') || is(u, b'?') || is(u, b'[') {
            break;
        }
        if is(u, b'\\') && i + 1 < pattern.len() {
            out.push(pattern[i + 1]);
            i += 2;
        } else {
            out.push(u);
            i += 1;
        }
    }
    out
}

fn class_match(p: &[u32], start: usize, c: u32) -> (bool, usize) {
    let mut i = start + 1;
    let negate = i < p.len() && p[i] == CARET;
    if negate {
        i += 1;
    }
    let mut hit = false;
    while i < p.len() {
        if p[i] == BACKSLASH && i + 1 < p.len() {
            if p[i + 1] == c {
                hit = true;
            }
            i += 2;
        } else if p[i] == CLOSE {
            i += 1;
            break;
        } else if i + 2 < p.len() && p[i + 1] == DASH {
            let (a, b) = if p[i] <= p[i + 2] {
                (p[i], p[i + 2])
            } else {
                (p[i + 2], p[i])
            };
            if a <= c && c <= b {
                hit = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                hit = true;
            }
            i += 1;
        }
    }
    (hit != negate, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_are_characters_of_their_own() {
        let u = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        let mut pat = escape_units(&[0x61, 0xD800]);
        pat.push(u16::from(b'*'));
        assert!(matches_units(&pat, &[0x61, 0xD800, 0x62]));
        assert!(!matches_units(&pat, &[0x61, 0xDBFF, 0x62]));
        assert!(!matches_units(&[0x61, 0xD800], &[0x61, 0xFFFD]));
        assert!(matches_units(&u("a?"), &[0x61, 0xDC00]));
        assert!(matches_units(&u("a?"), &u("a🚀")));
        assert_eq!(literal_prefix_units(&u("wf\\*:*")), u("wf*:"));
    }

    #[test]
    fn escape_then_star_matches_only_that_prefix() {
        let prefix = "wf:*[x]?\\";
        let pat = format!("{}*", escape(prefix));
        assert_eq!(pat, "wf:\\*\\[x\\]\\?\\\\*");
        assert!(matches(&pat, "wf:*[x]?\\run1"));
        assert!(matches(&pat, prefix));
        assert!(!matches(&pat, "wf:a[x]?\\run1"));
        assert!(!matches(&pat, "wf:*x?\\"));
    }

    #[test]
    fn stars_questions_classes() {
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("h?llo", "héllo"));
        assert!(matches("h[ae]llo", "hallo"));
        assert!(!matches("h[^ae]llo", "hallo"));
        assert!(matches("h[a-c]llo", "hbllo"));
        assert!(!matches("h[a-c]llo", "hdllo"));
        assert!(matches("workflow:state:*", "workflow:state:run"));
        assert!(!matches("workflow:state:*", "workflow:cache:run"));
        // Redis' reading of odd classes: `]` first closes an empty class, an
        // unclosed class runs to the end, `\]` is a literal `]` inside one
        assert!(!matches("a[", "a["));
        assert!(matches("a[bc", "ac"));
        assert!(!matches("[]a]", "a"));
        assert!(matches("[\\]a]", "]"));
        assert!(matches("[z-a]", "m"));
        assert!(matches("[^\\]]", "x"));
        assert!(!matches("[^\\]]", "]"));
    }

    #[test]
    fn literal_prefix_is_what_every_match_starts_with() {
        let lp = |p: &str| {
            String::from_utf16_lossy(&literal_prefix_units(
                &p.encode_utf16().collect::<Vec<u16>>(),
            ))
        };
        assert_eq!(lp("workflow:state:*"), "workflow:state:");
        assert_eq!(lp(&format!("{}*", escape("a*[b]?\\"))), "a*[b]?\\");
        assert_eq!(lp("ab?c"), "ab");
        assert_eq!(lp("ab[c]"), "ab");
        assert_eq!(lp("*"), "");
        assert_eq!(lp("exact"), "exact");
        assert_eq!(lp("trailing\\"), "trailing\\");
        for (pat, text) in [("a\\*b*", "a*bc"), ("x?", "xy"), ("p[q]", "pq")] {
            assert!(matches(pat, text));
            assert!(text.starts_with(&lp(pat)));
        }
    }

    #[test]
    fn no_pathological_blowup() {
        let text = "a".repeat(10_000);
        let pat = format!("{}b", "*a".repeat(50));
        assert!(!matches(&pat, &text));
    }
}
