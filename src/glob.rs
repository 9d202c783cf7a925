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
                    if let Some((hit, next)) = class_match(&p, pi, t[ti]) {
                        if hit {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        // unterminated class: '[' is literal
                        pi += 1;
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

/// Match one character against the class starting at `p[start] == '['`.
/// Returns (matched, index after the class), or None if the class never closes.
fn class_match(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && p[i] == '^';
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        let mut lo = p[i];
        if lo == '\\' && i + 1 < p.len() {
            i += 1;
            lo = p[i];
        }
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            let mut hi = p[i + 2];
            let mut step = 3;
            if hi == '\\' && i + 3 < p.len() {
                hi = p[i + 3];
                step = 4;
            }
            let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            if a <= c && c <= b {
                hit = true;
            }
            i += step;
        } else {
            if lo == c {
                hit = true;
            }
            i += 1;
        }
    }
    None
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
        assert!(matches("a[", "a["));
    }

    #[test]
    fn no_pathological_blowup() {
        let text = "a".repeat(10_000);
        let pat = format!("{}b", "*a".repeat(50));
        assert!(!matches(&pat, &text));
    }
}
