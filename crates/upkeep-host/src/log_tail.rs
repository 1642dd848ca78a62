//! The end of the error log (and of the access log), classified with
//! upkeep-logs: which keep-alive failure signatures happened lately, to
//! which upstream, and which of them clients saw.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use upkeep_logs::access_format::LogFormat;
use upkeep_logs::input::Input;
use upkeep_logs::join::Joiner;
use upkeep_logs::run::{analyze, Options};
use upkeep_logs::Signature;

/// How much of the end of each log doctor reads by default.
pub const DEFAULT_TAIL_BYTES: u64 = 8 << 20;

/// The signatures of a stale pooled connection (facts/signatures.tsv rows
/// that point to U007 for a backend closing a connection nginx reuses):
/// H005's evidence.
pub const STALE_SIGNATURES: [Signature; 3] = [
    Signature::UpstreamPrematurelyClosed,
    Signature::UpstreamReset,
    Signature::UpstreamSendFailed,
];

/// What the tail of the error log holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogEvidence {
    pub path: PathBuf,
    /// Bytes read from the end of the file, and whether that was all of it.
    pub bytes_read: u64,
    pub whole_file: bool,
    pub lines: u64,
    /// First and last timestamps seen, as nginx wrote them (local time).
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    /// Lines per signature ID (facts/signatures.tsv), non-zero only.
    pub signatures: BTreeMap<&'static str, u64>,
    /// Per signature ID: upstream peer → lines.
    pub by_upstream: BTreeMap<&'static str, Vec<(String, u64)>>,
    /// With an access log: per signature ID, requests that ended in a 5xx
    /// for the client (`None` without an access log or when it could not
    /// be joined).
    pub client_visible: Option<BTreeMap<&'static str, u64>>,
    /// Access log lines read and notes about the join.
    pub access_log: Option<AccessEvidence>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessEvidence {
    pub path: PathBuf,
    pub records: u64,
    pub unparsed: u64,
    pub joined: bool,
    pub status_5xx: BTreeMap<u16, u64>,
    pub notes: Vec<String>,
}

impl LogEvidence {
    pub fn count(&self, sig: Signature) -> u64 {
        self.signatures.get(sig.id()).copied().unwrap_or(0)
    }

    /// Stale-connection lines (H005).
    pub fn stale_lines(&self) -> u64 {
        STALE_SIGNATURES.iter().map(|s| self.count(*s)).sum()
    }

    /// Of the stale-connection lines, requests the client saw fail.
    pub fn stale_client_visible(&self) -> Option<u64> {
        let cv = self.client_visible.as_ref()?;
        Some(
            STALE_SIGNATURES
                .iter()
                .map(|s| cv.get(s.id()).copied().unwrap_or(0))
                .sum(),
        )
    }
}

/// An access log and its format (nginx `log_format` text, or `combined`).
#[derive(Clone, Debug)]
pub struct AccessLogInput {
    pub path: PathBuf,
    pub format: String,
}

/// Reads the last `tail_bytes` of `error_log` (and of the access log) and
/// classifies them.
pub fn read_tail(
    error_log: &Path,
    access: Option<&AccessLogInput>,
    tail_bytes: u64,
) -> io::Result<LogEvidence> {
    let scratch = tempfile::Builder::new()
        .prefix("upkeep-doctor-")
        .tempdir()?;
    let (error_tail, whole_file) = tail(error_log, tail_bytes)?;
    let error_copy = scratch.path().join("error.log");
    std::fs::File::create(&error_copy)?.write_all(&error_tail)?;

    let mut access_problem = None;
    let joiner = match access {
        Some(a) => match (tail(&a.path, tail_bytes), LogFormat::parse(&a.format)) {
            (Ok((bytes, _)), Ok(format)) => {
                let copy = scratch.path().join("access.log");
                std::fs::File::create(&copy)?.write_all(&bytes)?;
                Some(Joiner::new(
                    vec![Input::file(copy)],
                    format,
                    local_utc_offset(),
                    None,
                ))
            }
            (Err(e), _) => {
                access_problem = Some(format!("{}: {e}", a.path.display()));
                None
            }
            (_, Err(e)) => {
                access_problem = Some(format!("{}: log_format: {}", a.path.display(), e.0));
                None
            }
        },
        None => None,
    };

    let analysis = analyze(&[Input::file(&error_copy)], &Options::default(), joiner);
    if let Some(err) = analysis.inputs.iter().find_map(|i| i.error.clone()) {
        return Err(io::Error::other(err));
    }
    let mut evidence = LogEvidence {
        path: error_log.to_path_buf(),
        bytes_read: error_tail.len() as u64,
        whole_file,
        lines: analysis.total_stats().lines,
        first_time: analysis.first_time.map(|t| t.display().to_string()),
        last_time: analysis.last_time.map(|t| t.display().to_string()),
        ..LogEvidence::default()
    };
    for sig in Signature::ALL {
        let n = analysis.count(sig);
        if n > 0 {
            evidence.signatures.insert(sig.id(), n);
            evidence
                .by_upstream
                .insert(sig.id(), analysis.upstreams_of(sig));
        }
    }
    if let Some(report) = &analysis.access {
        if report.joined {
            evidence.client_visible = Some(
                Signature::ALL
                    .iter()
                    .map(|s| (s.id(), report.per_signature[s.index()].client_visible))
                    .filter(|(_, n)| *n > 0)
                    .collect(),
            );
        }
        evidence.access_log = Some(AccessEvidence {
            path: access.map(|a| a.path.clone()).unwrap_or_default(),
            records: report.records,
            unparsed: report.unparsed,
            joined: report.joined,
            status_5xx: report.status_5xx.clone(),
            notes: report.notes.clone(),
        });
    } else if let (Some(a), Some(problem)) = (access, access_problem) {
        evidence.access_log = Some(AccessEvidence {
            path: a.path.clone(),
            notes: vec![problem],
            ..AccessEvidence::default()
        });
    }
    Ok(evidence)
}

/// The last `max` bytes of a file, starting at a line boundary; `true` when
/// that is the whole file.
pub fn tail(path: &Path, max: u64) -> io::Result<(Vec<u8>, bool)> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let len = f.metadata()?.len();
    if len <= max {
        let mut all = Vec::with_capacity(len as usize);
        f.read_to_end(&mut all)?;
        return Ok((all, true));
    }
    f.seek(SeekFrom::Start(len - max))?;
    let mut buf = Vec::with_capacity(max as usize);
    f.take(max).read_to_end(&mut buf)?;
    // Drop the partial first line.
    let start = buf
        .iter()
        .position(|&b| b == b'\n')
        .map_or(buf.len(), |i| i + 1);
    Ok((buf.split_off(start), false))
}

/// Seconds east of UTC, for access logs that log `$msec`.
fn local_utc_offset() -> i64 {
    // SAFETY: time() and localtime_r() write only into the tm we own.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if !libc::localtime_r(&now, &mut tm).is_null() {
            return tm.tm_gmtoff;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as nginx 1.31.5 logged them (facts/behaviors.md §a, §h).
    const ERRORS: &str = r#"2026/11/23 14:26:24 [error] 30381#0: *14 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /rst/b HTTP/1.1", upstream: "http://127.0.0.1:9102/rst/b", host: "127.0.0.1:8088"
2026/11/23 14:26:24 [info] 30381#0: *1 client 127.0.0.1 closed keepalive connection
2026/11/23 14:26:25 [error] 30381#0: *16 upstream prematurely closed connection while reading response header from upstream, client: 127.0.0.1, server: , request: "POST /fin/b HTTP/1.1", upstream: "http://127.0.0.1:9101/fin/b", host: "127.0.0.1:8088"
2026/11/23 14:27:29 [error] 7198#0: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET /refused/x HTTP/1.1", upstream: "http://127.0.0.1:9199/refused/x", host: "127.0.0.1:8092", referrer: "http://ref.example/"
"#;

    #[test]
    fn classifies_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("error.log");
        std::fs::write(&path, ERRORS).unwrap();
        let e = read_tail(&path, None, DEFAULT_TAIL_BYTES).unwrap();
        assert!(e.whole_file);
        assert_eq!(e.lines, 4);
        assert_eq!(e.count(Signature::UpstreamReset), 1);
        assert_eq!(e.count(Signature::UpstreamPrematurelyClosed), 1);
        assert_eq!(e.count(Signature::ConnectRefused), 1);
        assert_eq!(e.stale_lines(), 2);
        assert_eq!(e.stale_client_visible(), None);
        assert_eq!(
            e.by_upstream["upstream-reset"],
            vec![("127.0.0.1:9102".to_string(), 1)]
        );
        assert_eq!(e.first_time.as_deref(), Some("2026-11-23 14:26:24"));
    }

    #[test]
    fn tail_starts_at_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("error.log");
        std::fs::write(&path, "aaaa\nbbbb\ncccc\n").unwrap();
        let (t, whole) = tail(&path, 7).unwrap();
        assert!(!whole);
        assert_eq!(t, b"cccc\n");
        assert!(tail(&dir.path().join("missing"), 10)
            .unwrap_err()
            .to_string()
            .contains("missing"));
    }
}
