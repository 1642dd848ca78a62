//! Access-log lines in the operator's own `log_format`.
//!
//! A format in nginx syntax (`'$remote_addr - [$time_local] "$request" $status'`)
//! is compiled into literals and variables; a line is matched left to right,
//! each variable ending where the next literal starts. Values that may
//! contain the next literal are handled where nginx's own output makes that
//! predictable: `$time_local` has a fixed width, and the `$upstream_*` lists
//! contain `, ` and ` : ` separators.

use crate::time::{parse_iso_like, parse_msec, parse_time_local, LogTime};
use memchr::memmem;
use std::fmt;

/// nginx's predefined `combined` format (ngx_http_log_module.c).
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// The variables the join uses; everything else is skipped over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    TimeLocal,
    TimeIso8601,
    Msec,
    Status,
    Request,
    RequestMethod,
    RequestUri,
    Connection,
    ConnectionRequests,
    UpstreamStatus,
    UpstreamAddr,
    UpstreamConnectTime,
    RemoteAddr,
    Other,
}

impl Field {
    fn of(name: &str) -> Field {
        match name {
            "time_local" => Field::TimeLocal,
            "time_iso8601" => Field::TimeIso8601,
            "msec" => Field::Msec,
            "status" => Field::Status,
            "request" => Field::Request,
            "request_method" => Field::RequestMethod,
            "request_uri" => Field::RequestUri,
            "connection" => Field::Connection,
            "connection_requests" => Field::ConnectionRequests,
            "upstream_status" => Field::UpstreamStatus,
            "upstream_addr" => Field::UpstreamAddr,
            "upstream_connect_time" => Field::UpstreamConnectTime,
            "remote_addr" => Field::RemoteAddr,
            _ => Field::Other,
        }
    }

    fn is_upstream_list(self) -> bool {
        matches!(
            self,
            Field::UpstreamStatus | Field::UpstreamAddr | Field::UpstreamConnectTime
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Lit(Vec<u8>),
    Var(Field),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

/// A compiled `log_format`.
#[derive(Clone, Debug)]
pub struct LogFormat {
    tokens: Vec<Token>,
    /// Each literal's finder, by token index (empty for variables).
    finders: Vec<Option<memmem::Finder<'static>>>,
    source: String,
}

impl LogFormat {
    /// Compiles the text of a `log_format` (what follows its name, quotes
    /// removed), or the name `combined`.
    pub fn parse(text: &str) -> Result<LogFormat, FormatError> {
        let text = text.trim();
        let text = if text == "combined" { COMBINED } else { text };
        let b = text.as_bytes();
        let mut tokens = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'$' {
                lit.push(b[i]);
                i += 1;
                continue;
            }
            let (name, next) = if b.get(i + 1) == Some(&b'{') {
                let close = b[i..].iter().position(|&c| c == b'}').ok_or_else(|| {
                    FormatError(format!("log format: unclosed \"${{\" at column {}", i + 1))
                })?;
                (&text[i + 2..i + close], i + close + 1)
            } else {
                let len = b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                (&text[i + 1..i + 1 + len], i + 1 + len)
            };
            if name.is_empty() {
                return Err(FormatError(format!(
                    "log format: \"$\" without a variable name at column {}",
                    i + 1
                )));
            }
            if !lit.is_empty() {
                tokens.push(Token::Lit(std::mem::take(&mut lit)));
            }
            tokens.push(Token::Var(Field::of(name)));
            i = next;
        }
        if !lit.is_empty() {
            tokens.push(Token::Lit(lit));
        }
        if !tokens.iter().any(|t| matches!(t, Token::Var(_))) {
            return Err(FormatError("log format has no variables".into()));
        }
        let finders = tokens
            .iter()
            .map(|t| match t {
                Token::Lit(l) => Some(memmem::Finder::new(l).into_owned()),
                Token::Var(_) => None,
            })
            .collect();
        Ok(LogFormat {
            tokens,
            finders,
            source: text.to_string(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn has(&self, field: Field) -> bool {
        self.tokens.contains(&Token::Var(field))
    }

    pub fn has_time(&self) -> bool {
        self.has(Field::TimeLocal) || self.has(Field::TimeIso8601) || self.has(Field::Msec)
    }

    /// Splits one line (without `\n`). `None` if it does not fit the format.
    pub fn parse_line<'a>(&self, line: &'a [u8], msec_offset: i64) -> Option<AccessRecord<'a>> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut rec = AccessRecord::default();
        let mut pos = 0;
        let mut i = 0;
        while i < self.tokens.len() {
            match &self.tokens[i] {
                Token::Lit(l) => {
                    if !line[pos..].starts_with(l) {
                        return None;
                    }
                    pos += l.len();
                }
                Token::Var(field) => {
                    let end = self.value_end(line, pos, i, *field)?;
                    rec.set(*field, &line[pos..end], msec_offset)?;
                    pos = end;
                }
            }
            i += 1;
        }
        (pos == line.len()).then_some(rec)
    }

    fn value_end(&self, line: &[u8], pos: usize, i: usize, field: Field) -> Option<usize> {
        let Some(Token::Lit(next)) = self.tokens.get(i + 1) else {
            // The last token takes the rest of the line. Two variables back
            // to back cannot be split: the first one is left empty.
            return Some(if i + 1 == self.tokens.len() {
                line.len()
            } else {
                pos
            });
        };
        if field == Field::TimeLocal && line.len() >= pos + 26 && line[pos..].starts_with_digit() {
            return Some(pos + 26);
        }
        let finder = self.finders[i + 1].as_ref()?;
        let mut from = pos;
        loop {
            let at = from + finder.find(&line[from..])?;
            let is_list_separator = field.is_upstream_list()
                && next.first() == Some(&b' ')
                && (line[..at].ends_with(b",")
                    || line[..at].ends_with(b" :")
                    || line[at..].starts_with(b" : "));
            if !is_list_separator {
                return Some(at);
            }
            from = at + 1;
        }
    }
}

trait StartsWithDigit {
    fn starts_with_digit(&self) -> bool;
}

impl StartsWithDigit for [u8] {
    fn starts_with_digit(&self) -> bool {
        self.first().is_some_and(u8::is_ascii_digit)
    }
}

/// The join-relevant fields of one access-log line; slices borrow it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccessRecord<'a> {
    pub time: Option<LogTime>,
    pub status: Option<u16>,
    pub method: Option<&'a [u8]>,
    pub uri: Option<&'a [u8]>,
    pub connection: Option<u64>,
    pub connection_requests: Option<u64>,
    pub upstream_status: Option<&'a [u8]>,
    pub upstream_addr: Option<&'a [u8]>,
    pub upstream_connect_time: Option<&'a [u8]>,
    pub remote_addr: Option<&'a [u8]>,
}

impl<'a> AccessRecord<'a> {
    fn set(&mut self, field: Field, v: &'a [u8], msec_offset: i64) -> Option<()> {
        match field {
            Field::TimeLocal => self.time = Some(parse_time_local(v)?),
            Field::TimeIso8601 => self.time = Some(parse_iso_like(v)?),
            Field::Msec => self.time = Some(parse_msec(v, msec_offset)?),
            Field::Status => self.status = Some(parse_num(v)? as u16),
            Field::Request => {
                // "GET /x HTTP/1.1"; a malformed request line is logged as is.
                let mut parts = v.splitn(3, |&c| c == b' ');
                self.method = self.method.or(parts.next());
                self.uri = self.uri.or(parts.next());
            }
            Field::RequestMethod => self.method = Some(v),
            Field::RequestUri => self.uri = Some(v),
            Field::Connection => self.connection = parse_num(v),
            Field::ConnectionRequests => self.connection_requests = parse_num(v),
            Field::UpstreamStatus => self.upstream_status = nonempty(v),
            Field::UpstreamAddr => self.upstream_addr = nonempty(v),
            Field::UpstreamConnectTime => self.upstream_connect_time = nonempty(v),
            Field::RemoteAddr => self.remote_addr = Some(v),
            Field::Other => {}
        }
        Some(())
    }

    /// The per-attempt statuses of `$upstream_status` ("502, 200" → 502,
    /// 200; " : " between upstream groups counts as a separator too; `-`
    /// entries are skipped).
    pub fn upstream_statuses(&self) -> impl Iterator<Item = u16> + 'a {
        list_items(self.upstream_status.unwrap_or(b""))
            .filter_map(|s| parse_num(s).map(|n| n as u16))
    }

    /// The peers of `$upstream_addr`, one per attempt, in order (the last
    /// one gave the response); `-` entries are skipped.
    pub fn upstream_addrs(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        list_items(self.upstream_addr.unwrap_or(b"")).filter(|a| *a != b"-")
    }

    /// Number of upstream attempts listed in `$upstream_addr` (or, without
    /// it, `$upstream_status`).
    pub fn attempts(&self) -> usize {
        list_items(self.upstream_addr.or(self.upstream_status).unwrap_or(b"")).count()
    }

    /// The `$upstream_connect_time` entry of attempt `i` (from 0).
    pub fn connect_time(&self, i: usize) -> Option<&'a [u8]> {
        list_items(self.upstream_connect_time?).nth(i)
    }
}

/// Items of an `$upstream_*` list: separated by `, ` within a group and
/// ` : ` between groups (after an internal redirect).
fn list_items(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&c| c == b',')
        .flat_map(|part| SplitStr {
            rest: Some(part),
            sep: b" : ",
        })
        .map(<[u8]>::trim_ascii)
        .filter(|s| !s.is_empty())
}

struct SplitStr<'a> {
    rest: Option<&'a [u8]>,
    sep: &'static [u8],
}

impl<'a> Iterator for SplitStr<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match memmem::find(rest, self.sep) {
            Some(i) => {
                self.rest = Some(&rest[i + self.sep.len()..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

fn nonempty(v: &[u8]) -> Option<&[u8]> {
    (!v.is_empty() && v != b"-").then_some(v)
}

fn parse_num(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &c| n * 10 + u64::from(c - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIAG: &str = r#"$remote_addr "$request" $status ua="$upstream_addr" us="$upstream_status" uct="$upstream_connect_time" uht="$upstream_header_time" urt="$upstream_response_time" rt=$request_time cr=$connection_requests c=$connection"#;

    #[test]
    fn verified_diag_format_lines() {
        let f = LogFormat::parse(DIAG).unwrap();
        let l = br#"127.0.0.1 "GET /multi/3 HTTP/1.1" 502 ua="127.0.0.1:9106, 127.0.0.1:9107, multi_fin" us="502, 502, 502" uct="0.000, 0.000, -" uht="-, -, -" urt="0.001, 0.000, 0.000" rt=0.001 cr=1 c=38"#;
        let r = f.parse_line(l, 0).unwrap();
        assert_eq!(r.status, Some(502));
        assert_eq!(r.method, Some(&b"GET"[..]));
        assert_eq!(r.uri, Some(&b"/multi/3"[..]));
        assert_eq!(r.connection, Some(38));
        assert_eq!(r.connection_requests, Some(1));
        assert_eq!(
            r.upstream_statuses().collect::<Vec<_>>(),
            vec![502, 502, 502]
        );
        assert_eq!(r.attempts(), 3);
        assert_eq!(r.time, None);
        assert!(!f.has_time());
    }

    #[test]
    fn unquoted_upstream_lists_and_combined() {
        let f =
            LogFormat::parse("[$time_local] $status $upstream_addr $upstream_status $connection")
                .unwrap();
        let r = f
            .parse_line(b"[23/Nov/2026:14:26:24 +0000] 200 10.0.0.1:80, 10.0.0.2:80 : app 502, 502 : 200 17", 0)
            .unwrap();
        assert_eq!(
            r.upstream_addr,
            Some(&b"10.0.0.1:80, 10.0.0.2:80 : app"[..])
        );
        assert_eq!(
            r.upstream_statuses().collect::<Vec<_>>(),
            vec![502, 502, 200]
        );
        assert_eq!(r.connection, Some(17));
        assert_eq!(r.attempts(), 3);
        assert!(r.time.is_some());

        let c = LogFormat::parse("combined").unwrap();
        let r = c
            .parse_line(br#"10.1.2.3 - - [23/Nov/2026:14:26:24 +0100] "POST /api HTTP/1.1" 504 0 "-" "curl/8""#, 0)
            .unwrap();
        assert_eq!(r.status, Some(504));
        assert_eq!(r.method, Some(&b"POST"[..]));
        assert_eq!(r.remote_addr, Some(&b"10.1.2.3"[..]));
        assert!(c.parse_line(b"garbage", 0).is_none());
    }

    #[test]
    fn format_errors() {
        assert!(LogFormat::parse("no variables").is_err());
        assert!(LogFormat::parse("${unclosed").is_err());
        assert!(LogFormat::parse("a $ b").is_err());
        assert!(LogFormat::parse("${status}|$msec").unwrap().has_time());
    }
}
