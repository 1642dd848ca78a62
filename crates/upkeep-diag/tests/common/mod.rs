//! Hand-built findings over in-memory files, shared by the renderer tests.

#![allow(dead_code)]

use upkeep_diag::{Applicability, Edit, Finding, Fix, Severity};
use upkeep_syntax::{FileId, SourceFile, SourceMap, Span};

/// In-memory files indexed by `FileId`.
pub struct Files(pub Vec<SourceFile>);

impl SourceMap for Files {
    fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.0.get(id.0 as usize)
    }
}

impl std::ops::Deref for Files {
    type Target = [SourceFile];
    fn deref(&self) -> &[SourceFile] {
        &self.0
    }
}

pub const MAIN: &str = "\
user www-data;
http {
    proxy_set_header Host $host;
    proxy_set_header Connection \"\";
    include conf.d/*.conf;
}
";

pub const APP: &str = "\
upstream app {
    server 127.0.0.1:8080;
}

server {
    listen 80;
    location /api/ {
        proxy_set_header X-Real-IP $remote_addr;
        proxy_pass http://app;
    }
}
";

pub fn files() -> Files {
    Files(vec![
        SourceFile::new(FileId(0), "/etc/nginx/nginx.conf", MAIN.as_bytes().to_vec()),
        SourceFile::new(
            FileId(1),
            "/etc/nginx/conf.d/app.conf",
            APP.as_bytes().to_vec(),
        ),
    ])
}

/// The span of the first occurrence of `needle` in file `file`.
pub fn span_of(files: &[SourceFile], file: u32, needle: &str) -> Span {
    let text = &files[file as usize].text;
    let start = text
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap_or_else(|| panic!("{needle:?} not in file {file}"));
    Span::new(FileId(file), start as u32, (start + needle.len()) as u32)
}

/// The insertion point just after `needle`.
pub fn after(files: &[SourceFile], file: u32, needle: &str) -> Span {
    let s = span_of(files, file, needle);
    Span::new(s.file, s.end, s.end)
}

/// Three findings of the kinds the rules produce: one on a whole block, one
/// with a secondary span in another file, one informational with no fix.
pub fn findings(files: &[SourceFile]) -> Vec<Finding> {
    let upstream_block = span_of(files, 1, "upstream app {\n    server 127.0.0.1:8080;\n}");
    let u001 = Finding::new(
        "U001",
        "upstream-without-keepalive",
        Severity::Warning,
        "upstream `app` keeps no idle connections: every request opens a new TCP connection",
    )
    .at(upstream_block)
    .with_label("no `keepalive` in this upstream")
    .note("assuming nginx 1.28.0 (default): upstreams pool only with an explicit `keepalive`")
    .help("add `keepalive 32;` to the upstream block")
    .with_fix(Fix {
        applicability: Applicability::Safe,
        description: "add `keepalive 32;` to upstream app".into(),
        edits: vec![Edit::insert(
            after(files, 1, "server 127.0.0.1:8080;"),
            "\n    keepalive 32;",
        )],
    });

    let u004 = Finding::new(
        "U004",
        "proxy-set-header-inheritance-lost",
        Severity::Error,
        "this `proxy_set_header` drops every header set in the enclosing blocks, including `Connection \"\"`",
    )
    .at(span_of(files, 1, "proxy_set_header X-Real-IP $remote_addr;"))
    .with_label("defining a header here stops inheritance from `http`")
    .related(
        span_of(files, 0, "proxy_set_header Connection \"\";"),
        "this setting no longer applies to location /api/",
    )
    .related(span_of(files, 1, "proxy_pass http://app;"), "the keep-alive route")
    .help("repeat the lost headers in the location")
    .with_fix(Fix {
        applicability: Applicability::Safe,
        description: "repeat the inherited headers in location /api/".into(),
        edits: vec![Edit::insert(
            after(files, 1, "proxy_set_header X-Real-IP $remote_addr;"),
            "\n        proxy_set_header Host $host;\n        proxy_set_header Connection \"\";",
        )],
    });

    let r003 = Finding::new(
        "R003",
        "no-worker-shutdown-timeout",
        Severity::Info,
        "no `worker_shutdown_timeout`: after a reload, old workers may hold keep-alive connections indefinitely",
    )
    .at(span_of(files, 0, "user www-data;"));

    vec![u001, u004, r003]
}
