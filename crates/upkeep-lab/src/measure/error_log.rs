//! Error-log signatures per phase, classified by upkeep-logs (the same
//! classifier `upkeep logs` uses, facts/signatures.tsv).

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::path::Path;

#[derive(Clone, Debug, Default)]
pub struct SignatureCounts {
    /// Signature id -> lines.
    pub counts: BTreeMap<String, u64>,
    /// Signature id -> the first such line.
    pub samples: BTreeMap<String, String>,
}

/// Classifies every line of the error log at `path` (missing file: nothing).
pub fn count_signatures(path: &Path) -> io::Result<SignatureCounts> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SignatureCounts::default()),
        Err(e) => return Err(e),
    };
    let mut out = SignatureCounts::default();
    let mut reader = io::BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if let Some(classified) = upkeep_logs::classify_line(&line) {
            let id = classified.signature.id().to_string();
            *out.counts.entry(id.clone()).or_default() += 1;
            out.samples
                .entry(id)
                .or_insert_with(|| String::from_utf8_lossy(&line).trim_end().to_string());
        }
    }
    Ok(out)
}
