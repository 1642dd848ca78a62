//! R001 (worker-connections-over-nofile) with the real limit: when the
//! configuration sets no `worker_rlimit_nofile`, the static rule cannot see
//! the limit the workers inherit; doctor reads it from the master.

use upkeep_diag::{Applicability, Edit, Fix};
use upkeep_syntax::{SourceMap, Span};

use super::h004::{effective_limit, limits_note};
use super::{Measured, Ranked};

pub fn evaluate(m: &Measured<'_>) -> Vec<Ranked> {
    let settings = &m.live.settings;
    // With worker_rlimit_nofile set, static R001 compares the two lines.
    if settings.worker_rlimit_nofile.is_some() {
        return Vec::new();
    }
    let Some(p) = m.processes else {
        return Vec::new();
    };
    let Some((limit, from)) = effective_limit(m, p) else {
        return Vec::new();
    };
    let wc = settings.worker_connections;
    if wc <= limit {
        return Vec::new();
    }
    let wanted = wc * 2;
    let info = upkeep_rules::rule("R001").expect("R001 is in the registry");
    let mut f = info
        .finding(format!(
            "`worker_connections {wc}` exceeds the open-file limit nginx runs with ({from}): under load workers fail with \"Too many open files\""
        ))
        .note(limits_note(p))
        .note(format!(
            "nginx warns at start: \"{wc} worker_connections exceed open file resource limit: {limit}\""
        ))
        .help(format!(
            "set `worker_rlimit_nofile {wanted};` (twice worker_connections) in the main context"
        ));
    if let Some(span) = settings.worker_connections_span {
        f = f
            .at(span)
            .with_label("more connections than file descriptors");
    }
    if let Some(events) = settings.events_span {
        f = f.with_fix(Fix {
            applicability: Applicability::Safe,
            description: format!("add `worker_rlimit_nofile {wanted};` before `events`"),
            edits: vec![insert_before_line(
                m,
                events,
                &format!("worker_rlimit_nofile {wanted};"),
            )],
        });
    }
    vec![Ranked {
        finding: f,
        evidence: wc - limit,
        measured: true,
    }]
}

/// `text` on its own line before the directive at `at`, indented like it.
fn insert_before_line(m: &Measured<'_>, at: Span, text: &str) -> Edit {
    let file = m.config.source(at.file);
    let indent = upkeep_rules::edits::indent_at(file, at.start);
    let eol = upkeep_rules::edits::eol(file);
    Edit::insert(at, format!("{text}{eol}{indent}"))
}
