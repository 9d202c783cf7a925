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
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    let (hit, next) = class_match(&p, pi, t[ti]);
                    if hit {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() => {
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
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The literal text every match of `pattern` starts with: its characters up
/// to the first `*`, `?` or `[`, with `\x` read as `x` (as [`matches`] reads
/// them). `"wf\\*:*"` → `"wf*:"`.
pub fn literal_prefix(pattern: &str) -> String {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' | '?' | '[' => break,
            '\\' if i + 1 < p.len() => {
                out.push(p[i + 1]);
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Match one character against the class starting at `p[start] == '['`,
/// as Redis' `stringmatchlen` reads it: `^` first negates; `\x` is `x`; a `]`
/// closes the class (even first: `[]` is an empty class); `a-z` is a range
/// (either order); a class never closed runs to the end of the pattern.
/// Returns (matched, index after the class).
fn class_match(p: &[char], start: usize, c: char) -> (bool, usize) {
    let mut i = start + 1;
    let negate = i < p.len() && p[i] == '^';
    if negate {
        i += 1;
    }
    let mut hit = false;
    while i < p.len() {
        if p[i] == '\\' && i + 1 < p.len() {
            if p[i + 1] == c {
                hit = true;
            }
            i += 2;
        } else if p[i] == ']' {
            i += 1;
            break;
        } else if i + 2 < p.len() && p[i + 1] == '-' {
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
        assert_eq!(literal_prefix("workflow:state:*"), "workflow:state:");
        assert_eq!(
            literal_prefix(&format!("{}*", escape("a*[b]?\\"))),
            "a*[b]?\\"
        );
        assert_eq!(literal_prefix("ab?c"), "ab");
        assert_eq!(literal_prefix("ab[c]"), "ab");
        assert_eq!(literal_prefix("*"), "");
        assert_eq!(literal_prefix("exact"), "exact");
        assert_eq!(literal_prefix("trailing\\"), "trailing\\");
        for (pat, text) in [("a\\*b*", "a*bc"), ("x?", "xy"), ("p[q]", "pq")] {
            assert!(matches(pat, text));
            assert!(text.starts_with(&literal_prefix(pat)));
        }
    }

    #[test]
    fn no_pathological_blowup() {
        let text = "a".repeat(10_000);
        let pat = format!("{}b", "*a".repeat(50));
        assert!(!matches(&pat, &text));
    }
}
