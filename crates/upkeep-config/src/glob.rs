//! Shell-style patterns as nginx's `include` uses them: glob(3) with no
//! flags. `*` and `?` and `[…]` (with `!` for negation and `a-z` ranges)
//! match within one path component, a backslash quotes the next byte, and a
//! wildcard never matches a leading `.` of a file name.

/// Does the pattern contain a wildcard? nginx decides with
/// `strpbrk(path, "*?[")` whether to call glob(3) at all.
pub fn has_wildcard(pattern: &str) -> bool {
    pattern.bytes().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Does `name` (one path component) match `pattern` (one component)?
pub fn component_matches(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        // glob(3) without GLOB_PERIOD: a leading dot must be written out.
        return false;
    }
    matches_from(pattern, name)
}

/// Iterative wildcard matching with backtracking to the last `*`, so a
/// pattern costs O(pattern × name) at worst, never exponential time.
fn matches_from(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = bracket(pattern, p, name[n]) {
                        if matched {
                            p = next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        // An unclosed `[` is an ordinary byte.
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == name[n] {
                        p += 2;
                        n += 1;
                        continue;
                    }
                }
                c => {
                    if c == name[n] {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// `[…]` at `pattern[at]`: whether `c` is in the set, and the index after
/// the `]`. None when the bracket is not closed.
fn bracket(pattern: &[u8], at: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let negate = matches!(pattern.get(i), Some(b'!'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let lo = *pattern.get(i)?;
        if lo == b']' && !first {
            return Some((found != negate, i + 1));
        }
        first = false;
        let (lo, step) = if lo == b'\\' {
            (*pattern.get(i + 1)?, 2)
        } else {
            (lo, 1)
        };
        i += step;
        if pattern.get(i) == Some(&b'-') && pattern.get(i + 1).is_some_and(|&b| b != b']') {
            let hi = pattern[i + 1];
            i += 2;
            if lo <= c && c <= hi {
                found = true;
            }
        } else if lo == c {
            found = true;
        }
    }
}

/// Whole-path matching: the same number of `/`-separated components, each
/// matching.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let mut pc = pattern.split('/');
    let mut nc = path.split('/');
    loop {
        match (pc.next(), nc.next()) {
            (None, None) => return true,
            (Some(p), Some(n)) => {
                if !component_matches(p.as_bytes(), n.as_bytes()) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(component_matches(b"*.conf", b"a.conf"));
        assert!(!component_matches(b"*.conf", b".hidden.conf"));
        assert!(component_matches(b".*.conf", b".hidden.conf"));
        assert!(component_matches(b"a?c", b"abc"));
        assert!(component_matches(b"[a-c]x", b"bx"));
        assert!(!component_matches(b"[!a-c]x", b"bx"));
        assert!(component_matches(b"[]]x", b"]x"));
        assert!(component_matches(b"\\*", b"*"));
        assert!(!component_matches(b"\\*", b"a"));
        assert!(component_matches(b"a*b*c", b"aXbYbZc"));
        assert!(!component_matches(b"a*b*c", b"aXbYbZ"));
        assert!(component_matches(b"[x", b"[x"));
        assert!(path_matches("conf.d/*.conf", "conf.d/a.conf"));
        assert!(!path_matches("conf.d/*.conf", "conf.d/sub/a.conf"));
        assert!(path_matches("/etc/*/x", "/etc/nginx/x"));
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "*a".repeat(50);
        let name = "a".repeat(10_000) + "b";
        assert!(!component_matches(pattern.as_bytes(), name.as_bytes()));
    }
}
