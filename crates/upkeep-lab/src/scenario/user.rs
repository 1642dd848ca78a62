//! The `user` scenario: the user's own config, made runnable in the lab.
//!
//! The config set (main file and everything it includes) is loaded with
//! upkeep-config and rewritten with byte-range edits, so everything else
//! stays as written:
//! - every server block listens on the lab's address (`@LISTEN@`, name-based
//!   virtual hosting sorts requests out by `Host`), the traffic's target
//!   server being the `default_server`;
//! - every `server` of every upstream block, and every literal `proxy_pass`
//!   host, becomes an emulated backend (`@SERVER:key@`) whose behaviour comes
//!   from `--backend UPSTREAM=PROFILE` or `probe` output;
//! - paths nginx writes (pid, logs, temp files) move into the private prefix,
//!   and the lab adds its own stub_status server;
//! - includes point to the copies of the included files in the prefix.

use crate::backend::BackendProfile;
use crate::error::LabError;
use crate::plan::{ConfigFile, FixSettings, LabPlan, Network, ServerSlot, SourceFile};
use crate::scenario::STATUS_PATH;
use crate::traffic::{LoopMode, TrafficProfile};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;
use upkeep_config::{ConfigSet, LoadOptions};
use upkeep_rules::{BackendFacts, CheckOptions};
use upkeep_syntax::{Directive, FileId, Node, Span};

pub struct UserOptions {
    /// The main config file, or a directory holding nginx.conf.
    pub config: PathBuf,
    /// `--backend UPSTREAM=PROFILE` specs (also `latency=20ms`, `http10`,
    /// `close` for the lab's backends).
    pub backend_specs: Vec<String>,
    /// The JSON of `upkeep probe --format json`.
    pub backend_facts_json: Option<String>,
    /// `Host` of the requests, and so the server block they go to.
    pub host: Option<String>,
    /// The nginx binary's compiled-in prefix (`nginx -V`, `--prefix=`), which
    /// relative `load_module` paths resolve against; see [`compiled_prefix`].
    pub nginx_prefix: Option<String>,
}

/// The `--prefix=` an nginx binary was built with (`nginx -V`), ending in `/`.
pub fn compiled_prefix(binary: &Path) -> Option<String> {
    let out = std::process::Command::new(binary).arg("-V").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let value = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("--prefix="))?;
    Some(format!("{}/", value.trim_end_matches('/')))
}

/// Directives whose file argument nginx resolves against the directory of
/// the main config (`ngx_conf_full_name(…, 1)`): made absolute, since the
/// lab's copy of the config lives elsewhere.
const CONF_RELATIVE_FILES: &[&str] = &[
    "ssl_certificate",
    "ssl_certificate_key",
    "ssl_trusted_certificate",
    "ssl_client_certificate",
    "ssl_dhparam",
    "ssl_crl",
    "ssl_password_file",
    "ssl_stapling_file",
    "ssl_session_ticket_key",
    "auth_basic_user_file",
    "proxy_ssl_certificate",
    "proxy_ssl_certificate_key",
    "proxy_ssl_trusted_certificate",
    "proxy_ssl_crl",
    "proxy_ssl_password_file",
];

/// Keys of `--backend` specs that only the lab understands.
const LAB_KEYS: &[&str] = &["latency", "http10", "close"];

pub fn build(opts: &UserOptions) -> Result<LabPlan, LabError> {
    let path = opts.config.display().to_string();
    let set = ConfigSet::load_path(&path, &LoadOptions::default())
        .map_err(|e| LabError::Usage(e.to_string()))?;
    let (specs, lab_extras) = parse_backend_specs(&opts.backend_specs)?;
    let mut facts = CheckOptions {
        backends: specs,
        ..CheckOptions::default()
    };
    if let Some(json) = &opts.backend_facts_json {
        upkeep_rules::settings::apply_probe_json(&mut facts, json).map_err(LabError::Usage)?;
    }

    let mut rewriter = Rewriter::new(&set, opts.host.as_deref())?;
    rewriter.nginx_prefix = opts.nginx_prefix.clone();
    rewriter.walk(&set.tree(set.main).nodes, Ctx::Main);
    if !rewriter.errors.is_empty() {
        return Err(LabError::Usage(rewriter.errors.join("\n")));
    }
    if !rewriter.saw_http {
        return Err(LabError::Usage(format!(
            "{path}: no http block: nothing for the lab to run"
        )));
    }
    if rewriter.slots.is_empty() {
        return Err(LabError::Usage(format!(
            "{path}: no upstream server or proxy_pass target: nothing for the lab's backends to stand in for"
        )));
    }
    for name in facts.backends.keys() {
        let known = rewriter
            .slots
            .iter()
            .any(|s| &s.upstream == name || s.original.as_deref() == Some(name.as_str()));
        if !known
            && opts
                .backend_specs
                .iter()
                .any(|s| s.split('=').next() == Some(name.as_str()))
        {
            return Err(LabError::Usage(format!(
                "--backend {name}=…: the config has no upstream {name:?}"
            )));
        }
    }

    let servers: Vec<ServerSlot> = rewriter
        .slots
        .iter()
        .map(|s| {
            let f = facts
                .backends
                .get(&s.upstream)
                .or_else(|| s.original.as_ref().and_then(|o| facts.backends.get(o)));
            let extras = lab_extras.get(&s.upstream).cloned().unwrap_or_default();
            ServerSlot {
                key: s.key.clone(),
                upstream: s.upstream.clone(),
                original: s.original.clone(),
                profile: profile_from(f, &extras),
            }
        })
        .collect();

    let host = opts.host.clone().or_else(|| {
        rewriter
            .target
            .as_ref()
            .and_then(|t| t.plain_name().map(str::to_string))
    });
    let request_path = rewriter
        .target
        .as_ref()
        .and_then(|t| t.proxied_path.clone());
    let files = rewriter.into_files()?;
    let sources = (0..set.files.len())
        .map(|i| {
            let id = FileId(i as u32);
            let file = set.file(id);
            SourceFile {
                copy: copy_path(&set, id),
                path: file.path.clone(),
                text: String::from_utf8_lossy(&file.text).into_owned(),
            }
        })
        .collect();
    let shortest_idle = servers.iter().filter_map(|s| s.profile.idle_timeout).min();
    let (mut traffic, relay_delay, traffic_note) = default_traffic(shortest_idle, host);
    if let Some(p) = request_path {
        traffic.path = p;
    }
    let backends: Vec<String> = servers
        .iter()
        .map(|s| match &s.original {
            Some(o) => format!("{} ({}): {}", s.upstream, o, s.profile.describe()),
            None => format!("{}: {}", s.upstream, s.profile.describe()),
        })
        .collect();
    let explanation = format!(
        "Your config {path}, with every server block listening on the lab's loopback address and every \
         upstream server replaced by an emulated backend behind a relay that delays traffic by {} ms each \
         way: {}. {traffic_note} Before: the config as written; after: the same with `upkeep fix` applied.",
        relay_delay.as_millis(),
        backends.join("; "),
    );
    Ok(LabPlan {
        scenario: "user".to_string(),
        explanation,
        files,
        servers,
        relay_delay: Some(relay_delay),
        traffic,
        network: Network::Loopback,
        status_path: STATUS_PATH.to_string(),
        sources,
        fix: FixSettings::default(),
    })
}

/// Traffic for a user config: bursts just over the shortest backend idle
/// timeout when it is short enough to race within a run (the stale
/// connection race), steady traffic otherwise.
fn default_traffic(
    shortest_idle: Option<Duration>,
    host: Option<String>,
) -> (TrafficProfile, Duration, String) {
    let host = host.unwrap_or_else(|| "localhost".to_string());
    match shortest_idle {
        Some(idle) if idle <= Duration::from_secs(10) => {
            let delay = Duration::from_millis(20);
            // The race window for a period P is idle < P < idle + 2 × delay.
            let traffic = TrafficProfile {
                concurrency: 8,
                post_ratio: 0.5,
                gap_min: idle + Duration::from_millis(10),
                gap_max: idle + Duration::from_millis(30),
                mode: LoopMode::Open,
                duration: (idle * 10).max(Duration::from_secs(10)),
                host,
                ..TrafficProfile::default()
            };
            let note = format!(
                "The shortest backend idle timeout is {}: 8 clients send together every {}–{}, so pooled \
                 connections are reused just as the backend closes them.",
                crate::duration::format(idle),
                crate::duration::format(traffic.gap_min),
                crate::duration::format(traffic.gap_max)
            );
            (traffic, delay, note)
        }
        _ => {
            let traffic = TrafficProfile {
                host,
                ..crate::scenario::busy_traffic()
            };
            let note = "Steady traffic from 4 clients shows how many upstream connections each request costs.".to_string();
            (traffic, Duration::from_millis(5), note)
        }
    }
}

type BackendFactsByUpstream = BTreeMap<String, BackendFacts>;

#[derive(Clone, Debug, Default)]
struct LabExtras {
    latency: Option<Duration>,
    http10: bool,
    close: bool,
}

/// `--backend` specs: the facts upkeep check understands, and the lab-only
/// extras, by upstream.
fn parse_backend_specs(
    specs: &[String],
) -> Result<(BackendFactsByUpstream, HashMap<String, LabExtras>), LabError> {
    let mut facts = BTreeMap::new();
    let mut extras: HashMap<String, LabExtras> = HashMap::new();
    for spec in specs {
        let (name, rest) = spec.split_once('=').ok_or_else(|| {
            LabError::Usage(format!("--backend {spec:?}: expected UPSTREAM=PROFILE"))
        })?;
        let mut kept = Vec::new();
        let mut x = LabExtras::default();
        for item in rest
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let key = item.split('=').next().unwrap_or("");
            match (key, item.split_once('=')) {
                ("latency", Some((_, v))) => {
                    x.latency = Some(
                        crate::duration::parse(v)
                            .map_err(|e| LabError::Usage(format!("--backend {spec:?}: {e}")))?,
                    )
                }
                ("http10", None) => x.http10 = true,
                ("close", None) => x.close = true,
                _ if LAB_KEYS.contains(&key) => {
                    return Err(LabError::Usage(format!(
                        "--backend {spec:?}: bad {key:?} item"
                    )))
                }
                _ => kept.push(item),
            }
        }
        let f = if kept.is_empty() {
            BackendFacts {
                source: format!("--backend {spec}"),
                ..BackendFacts::default()
            }
        } else {
            upkeep_rules::settings::parse_backend_spec(&format!("{name}={}", kept.join(",")))
                .map_err(|e| LabError::Usage(format!("--backend: {e}")))?
                .1
        };
        facts.insert(name.trim().to_string(), f);
        extras.insert(name.trim().to_string(), x);
    }
    Ok((facts, extras))
}

fn profile_from(facts: Option<&BackendFacts>, extras: &LabExtras) -> BackendProfile {
    let mut p = match facts {
        Some(f) => BackendProfile {
            name: f.source.clone(),
            idle_timeout: f.idle_timeout_ms.map(Duration::from_millis),
            max_requests: f.max_requests,
            announce_close: f.announces_close.unwrap_or(true),
            latency: Duration::ZERO,
            http10_only: false,
            always_close: false,
        },
        None => BackendProfile::keepalive("HTTP/1.1 keep-alive server (no --backend given)", None),
    };
    p.latency = extras.latency.unwrap_or(Duration::ZERO);
    p.http10_only = extras.http10;
    p.always_close = extras.close;
    p
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    Main,
    Events,
    Http,
    Server,
    Location,
    /// Blocks whose contents are not directives of interest (map, types…).
    Opaque,
}

struct Slot {
    key: String,
    upstream: String,
    original: Option<String>,
}

struct Rewriter<'a> {
    set: &'a ConfigSet,
    upstream_names: Vec<String>,
    /// The server block the traffic goes to (gets `default_server`).
    target: Option<ServerInfo>,
    /// Edits by file: (start, end) -> replacement; one per place.
    edits: BTreeMap<FileId, BTreeMap<(u32, u32), String>>,
    slots: Vec<Slot>,
    slot_by_span: HashMap<Span, String>,
    errors: Vec<String>,
    saw_http: bool,
    nginx_prefix: Option<String>,
}

const LOG_FORMAT: &str = "log_format lab 'lab $request_method $status \"$upstream_status\"';";
const ACCESS_LOG: &str = "access_log logs/access.log lab;";
const TEMP_PATH_DIRECTIVES: &[&str] = &[
    "client_body_temp_path",
    "proxy_temp_path",
    "fastcgi_temp_path",
    "uwsgi_temp_path",
    "scgi_temp_path",
];
const OTHER_PASSES: &[&str] = &[
    "fastcgi_pass",
    "uwsgi_pass",
    "scgi_pass",
    "grpc_pass",
    "memcached_pass",
];

impl<'a> Rewriter<'a> {
    fn new(set: &'a ConfigSet, host: Option<&str>) -> Result<Rewriter<'a>, LabError> {
        let mut upstream_names = Vec::new();
        let mut servers: Vec<ServerInfo> = Vec::new();
        survey(
            set,
            &set.tree(set.main).nodes,
            Ctx::Main,
            &mut upstream_names,
            &mut servers,
        );
        let target = match host {
            Some(h) => Some(
                servers
                    .into_iter()
                    .find(|s| s.names.iter().any(|n| n == h))
                    .ok_or_else(|| {
                        LabError::Usage(format!("--host {h}: no server block has server_name {h}"))
                    })?,
            ),
            None => servers.into_iter().find(|s| s.proxies),
        };
        Ok(Rewriter {
            set,
            upstream_names,
            target,
            edits: BTreeMap::new(),
            slots: Vec::new(),
            slot_by_span: HashMap::new(),
            errors: Vec::new(),
            saw_http: false,
            nginx_prefix: None,
        })
    }

    fn edit(&mut self, span: Span, text: impl Into<String>) {
        self.edits
            .entry(span.file)
            .or_default()
            .insert((span.start, span.end), text.into());
    }

    /// Removes a directive; with its whole line when nothing else is on it.
    fn delete(&mut self, span: Span) {
        let text = &self.set.file(span.file).text;
        let (start, end) = (span.start as usize, span.end as usize);
        let line_start = text[..start]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let line_end = text[end..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(text.len(), |i| end + i + 1);
        let blank = |bytes: &[u8]| {
            bytes
                .iter()
                .all(|b| *b == b' ' || *b == b'\t' || *b == b'\r' || *b == b'\n')
        };
        if blank(&text[line_start..start]) && blank(&text[end..line_end]) {
            self.edit(Span::new(span.file, line_start as u32, line_end as u32), "");
        } else {
            self.edit(span, "");
        }
    }

    fn insert(&mut self, at: u32, file: FileId, text: impl Into<String>) {
        self.edit(Span::new(file, at, at), text);
    }

    fn place(&self, span: Span) -> String {
        let file = self.set.file(span.file);
        let lc = file.line_col(span.start);
        format!("{}:{}:{}", file.path, lc.line, lc.col)
    }

    fn walk(&mut self, nodes: &[Node], ctx: Ctx) {
        for node in nodes {
            let Node::Directive(d) = node else { continue };
            self.directive(d, ctx);
        }
    }

    fn directive(&mut self, d: &Directive, ctx: Ctx) {
        let name = d.name().text().to_string();
        if name == "include" {
            self.include(d, ctx);
            return;
        }
        if ctx == Ctx::Opaque {
            return;
        }
        match (ctx, name.as_str()) {
            (Ctx::Main, "pid" | "user" | "daemon" | "master_process") => self.delete(d.span()),
            // Relative to nginx's compiled-in prefix, not the config's directory.
            (Ctx::Main, "load_module") => {
                if let (Some(arg), Some(prefix)) = (d.arg(0), &self.nginx_prefix) {
                    if !arg.text().starts_with('/') {
                        self.edit(arg.span(), format!("{prefix}{}", arg.text()));
                    }
                }
            }
            (_, n) if CONF_RELATIVE_FILES.contains(&n) => {
                if let Some(arg) = d.arg(0) {
                    let text = arg.text();
                    if !text.starts_with('/')
                        && !text.starts_with("data:")
                        && !text.starts_with("engine:")
                        && !text.contains('$')
                    {
                        self.edit(arg.span(), format!("{}{text}", self.set.prefix));
                    }
                }
            }
            (Ctx::Main, "stream" | "mail") => {
                self.edit(d.span(), format!("# {name} {{…}} left out by upkeep lab"))
            }
            (_, "error_log") => self.delete(d.span()),
            (_, "access_log") => self.edit(d.span(), ACCESS_LOG),
            (_, n) if TEMP_PATH_DIRECTIVES.contains(&n) => self.delete(d.span()),
            (Ctx::Main, "events") => self.block(d, Ctx::Events),
            (Ctx::Main, "http") => {
                self.saw_http = true;
                if let Some(b) = d.block() {
                    self.insert(
                        b.open().end,
                        d.span().file,
                        format!("\n    @TEMP_PATHS@\n    {LOG_FORMAT}\n    {ACCESS_LOG}\n"),
                    );
                    self.insert(b.close().start, d.span().file, "\n    @STATUS_SERVER@\n");
                }
                self.block(d, Ctx::Http)
            }
            (Ctx::Http, "server") => self.server(d),
            (Ctx::Http, "upstream") => self.upstream(d),
            (Ctx::Server | Ctx::Location, "location" | "if" | "limit_except") => {
                self.block(d, Ctx::Location)
            }
            (Ctx::Http, "map" | "geo" | "split_clients" | "types" | "charset_map" | "match") => {}
            (Ctx::Server, "listen") => {}
            (Ctx::Http | Ctx::Server | Ctx::Location, "proxy_pass") => self.proxy_pass(d),
            (_, n) if OTHER_PASSES.contains(&n) => self.errors.push(format!(
                "{}: {n}: the lab's emulated backends speak HTTP/1.x only (proxy_pass)",
                self.place(d.span())
            )),
            _ => {
                if d.block().is_some() {
                    self.block(d, Ctx::Opaque)
                }
            }
        }
    }

    fn block(&mut self, d: &Directive, ctx: Ctx) {
        if let Some(b) = d.block() {
            self.walk(&b.nodes, ctx);
        }
    }

    fn include(&mut self, d: &Directive, ctx: Ctx) {
        let set = self.set;
        let files = set.included(d);
        self.include_path(d, files);
        for &f in files {
            self.walk(&set.tree(f).nodes, ctx);
        }
    }

    /// Points an `include` at the prefix copies of the files it reached.
    fn include_path(&mut self, d: &Directive, files: &[FileId]) {
        let text = if files.is_empty() {
            format!(
                "# {} (no file) left out by upkeep lab",
                String::from_utf8_lossy(self.set.file(d.span().file).slice(d.span()))
            )
        } else {
            files
                .iter()
                .map(|f| format!("include {};", copy_path(self.set, *f)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        self.edit(d.span(), text);
    }

    fn server(&mut self, d: &Directive) {
        let Some(b) = d.block() else { return };
        let is_target = self.target.as_ref().is_some_and(|t| t.span == d.span());
        let listens: Vec<&Directive> = self
            .set
            .expand(&b.nodes)
            .into_iter()
            .filter(|c| c.name_is("listen"))
            .collect();
        let listen = if is_target {
            "listen @LISTEN@ default_server;"
        } else {
            "listen @LISTEN@;"
        };
        match listens.split_first() {
            None => self.insert(b.open().end, d.span().file, format!("\n        {listen}")),
            Some((first, rest)) => {
                self.edit(first.span(), listen);
                for l in rest {
                    self.delete(l.span());
                }
            }
        }
        self.walk(&b.nodes, Ctx::Server);
    }

    fn upstream(&mut self, d: &Directive) {
        let Some(name) = d.arg(0).map(|w| w.text().to_string()) else {
            return;
        };
        if let Some(b) = d.block() {
            self.upstream_nodes(&name, &b.nodes);
        }
    }

    fn upstream_nodes(&mut self, name: &str, nodes: &[Node]) {
        for node in nodes {
            let Node::Directive(s) = node else { continue };
            if s.name_is("include") {
                let set = self.set;
                let files = set.included(s);
                self.include_path(s, files);
                for &f in files {
                    self.upstream_nodes(name, &set.tree(f).nodes);
                }
                continue;
            }
            if !s.name_is("server") {
                continue;
            }
            let Some(addr) = s.arg(0) else { continue };
            let key = self.slot(s.span(), name, Some(addr.text().to_string()));
            // Parameters a plain loopback server cannot take are dropped.
            let params: Vec<String> = s
                .args()
                .after(1)
                .iter()
                .map(|w| w.text().to_string())
                .filter(|p| {
                    !(p == "resolve"
                        || p.starts_with("service=")
                        || p.starts_with("route=")
                        || p.starts_with("slow_start="))
                })
                .collect();
            let mut text = format!("server @SERVER:{key}@");
            for p in params {
                text.push(' ');
                text.push_str(&p);
            }
            text.push(';');
            self.edit(s.span(), text);
        }
    }

    fn slot(&mut self, span: Span, upstream: &str, original: Option<String>) -> String {
        if let Some(k) = self.slot_by_span.get(&span) {
            return k.clone();
        }
        let n = self.slots.iter().filter(|s| s.upstream == upstream).count();
        let key = format!("{upstream}#{n}");
        self.slots.push(Slot {
            key: key.clone(),
            upstream: upstream.to_string(),
            original,
        });
        self.slot_by_span.insert(span, key.clone());
        key
    }

    fn proxy_pass(&mut self, d: &Directive) {
        let Some(url) = d.arg(0) else { return };
        let url_text = url.text().to_string();
        // The scheme goes: the emulated backends speak plain HTTP.
        let Some((_scheme, rest)) = url_text.split_once("://") else {
            return;
        };
        let (hostport, uri) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if hostport.contains('$') {
            self.errors.push(format!(
                "{}: proxy_pass with a variable host ({url_text}) cannot be pointed at an emulated backend",
                self.place(d.span())
            ));
            return;
        }
        let is_upstream = self.upstream_names.iter().any(|n| n == hostport);
        let target = if is_upstream {
            hostport.to_string()
        } else {
            let key = self.slot(d.span(), hostport, Some(hostport.to_string()));
            format!("@SERVER:{key}@")
        };
        self.edit(url.span(), format!("http://{target}{uri}"));
    }

    fn into_files(self) -> Result<Vec<ConfigFile>, LabError> {
        let mut out = Vec::new();
        for (i, file) in self.set.files.iter().enumerate() {
            let id = FileId(i as u32);
            let mut text = file.text.to_vec();
            if let Some(edits) = self.edits.get(&id) {
                // Back to front, so earlier offsets stay valid.
                for ((start, end), replacement) in edits.iter().rev() {
                    text.splice(*start as usize..*end as usize, replacement.bytes());
                }
            }
            let text = String::from_utf8(text).map_err(|_| {
                LabError::Usage(format!("{}: the lab needs UTF-8 config files", file.path))
            })?;
            out.push(ConfigFile {
                path: copy_path(self.set, id),
                text,
            });
        }
        Ok(out)
    }
}

/// Where a file of the set lives in the prefix: the main file as
/// `nginx.conf`, included files under `conf/`, numbered to stay unique.
fn copy_path(set: &ConfigSet, id: FileId) -> String {
    if id == set.main {
        return "nginx.conf".to_string();
    }
    let base = Path::new(&set.file(id).path)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "file".to_string());
    format!("conf/{}-{base}", id.0)
}

/// A server block as the first pass sees it.
struct ServerInfo {
    span: Span,
    names: Vec<String>,
    /// The path of its first proxied prefix location (`location /api/`).
    proxied_path: Option<String>,
    proxies: bool,
}

impl ServerInfo {
    /// A name a client can send as `Host` (not `_`, a wildcard or a regex).
    fn plain_name(&self) -> Option<&str> {
        self.names.iter().map(String::as_str).find(|n| {
            !n.is_empty()
                && *n != "_"
                && !n.contains('*')
                && !n.starts_with('~')
                && !n.starts_with('.')
        })
    }
}

/// First pass: upstream names, and every server block.
fn survey(
    set: &ConfigSet,
    nodes: &[Node],
    ctx: Ctx,
    upstreams: &mut Vec<String>,
    servers: &mut Vec<ServerInfo>,
) {
    for d in set.expand(nodes) {
        match (ctx, d.name().text().as_ref()) {
            (Ctx::Main, "http") => {
                if let Some(b) = d.block() {
                    survey(set, &b.nodes, Ctx::Http, upstreams, servers)
                }
            }
            (Ctx::Http, "upstream") => {
                if let Some(n) = d.arg(0) {
                    upstreams.push(n.text().to_string());
                }
            }
            (Ctx::Http, "server") => {
                let Some(b) = d.block() else { continue };
                let names = set
                    .expand(&b.nodes)
                    .into_iter()
                    .filter(|c| c.name_is("server_name"))
                    .flat_map(|c| c.args().iter().map(|w| w.text().to_string()))
                    .collect();
                servers.push(ServerInfo {
                    span: d.span(),
                    names,
                    proxied_path: proxied_prefix(set, &b.nodes),
                    proxies: proxies(set, &b.nodes),
                });
            }
            _ => {}
        }
    }
}

fn proxies(set: &ConfigSet, nodes: &[Node]) -> bool {
    set.expand(nodes)
        .into_iter()
        .any(|d| d.name_is("proxy_pass") || d.block().is_some_and(|b| proxies(set, &b.nodes)))
}

/// The first `location PREFIX` (no modifier, or `^~`) that proxies.
fn proxied_prefix(set: &ConfigSet, nodes: &[Node]) -> Option<String> {
    set.expand(nodes).into_iter().find_map(|d| {
        if !d.name_is("location") {
            return None;
        }
        let b = d.block()?;
        let args = d.args();
        let path = match (args.get(0), args.get(1), args.len()) {
            (Some(p), None, 1) => p.text().to_string(),
            (Some(m), Some(p), 2) if m.is("^~") => p.text().to_string(),
            _ => return None,
        };
        (path.starts_with('/') && proxies(set, &b.nodes)).then_some(path)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A config as found on a Debian host: system paths, includes, two
    /// servers, an upstream with two servers and a literal proxy_pass.
    pub fn write_host_config(dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        std::fs::write(
            dir.join("nginx.conf"),
            "user www-data;\nworker_processes 1;\npid /run/nginx.pid;\nerror_log /var/log/nginx/error.log;\n\
             load_module modules/ngx_http_echo_module.so;\n\n\
             events {\n    worker_connections 512;\n}\n\n\
             http {\n    access_log /var/log/nginx/access.log;\n    proxy_temp_path /var/lib/nginx/proxy;\n    include conf.d/*.conf;\n}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("conf.d/app.conf"),
            "upstream app_backend {\n    server 10.20.30.40:8080 max_fails=3;\n    server 10.20.30.41:8080;\n}\n\n\
             server {\n    listen 80;\n    listen [::]:80;\n    server_name app.example.com;\n    ssl_certificate certs/app.pem;\n\n\
             \x20   location /api/ {\n        proxy_pass http://app_backend;\n    }\n\n\
             \x20   location / {\n        return 200 \"static\\n\";\n    }\n}\n\n\
             server {\n    listen 8080 default_server;\n    server_name other.example.com;\n\
             \x20   location / {\n        proxy_pass http://10.9.9.9:9000;\n    }\n}\n",
        )
        .unwrap();
        dir.join("nginx.conf")
    }

    #[test]
    fn rewrites_a_host_config_for_the_lab() {
        let dir = tempfile::tempdir().unwrap();
        let config = write_host_config(dir.path());
        let plan = build(&UserOptions {
            config,
            backend_specs: vec!["app_backend=gunicorn".to_string()],
            backend_facts_json: None,
            host: None,
            nginx_prefix: Some("/usr/share/nginx/".into()),
        })
        .unwrap();
        let all: String = plan.files.iter().map(|f| f.text.as_str()).collect();
        for gone in [
            "/var/log",
            "/run/nginx.pid",
            "user www-data",
            "/var/lib/nginx",
            "listen 80",
            "[::]",
            "8080 default_server",
            "10.20.30.40",
        ] {
            assert!(!all.contains(gone), "{gone} still in:\n{all}");
        }
        let app = plan
            .files
            .iter()
            .find(|f| f.path.ends_with("app.conf"))
            .unwrap();
        assert!(
            app.text
                .contains("server @SERVER:app_backend#0@ max_fails=3;"),
            "{}",
            app.text
        );
        assert!(
            app.text.contains("server @SERVER:app_backend#1@;"),
            "{}",
            app.text
        );
        assert!(
            app.text.contains("listen @LISTEN@ default_server;"),
            "{}",
            app.text
        );
        assert!(
            app.text
                .contains("proxy_pass http://@SERVER:10.9.9.9:9000#0@;"),
            "{}",
            app.text
        );
        assert!(
            plan.files[0]
                .text
                .contains(&format!("include {};", app.path)),
            "{}",
            plan.files[0].text
        );
        assert!(plan.files[0].text.contains("@STATUS_SERVER@"));
        assert!(plan.files[0]
            .text
            .contains("load_module /usr/share/nginx/modules/ngx_http_echo_module.so;"));
        let conf_dir = format!("{}/", dir.path().display());
        assert!(
            app.text
                .contains(&format!("ssl_certificate {conf_dir}certs/app.pem;")),
            "{}",
            app.text
        );
        assert_eq!(plan.servers.len(), 3);
        let gunicorn = &plan.servers[0].profile;
        assert_eq!(gunicorn.idle_timeout, Some(Duration::from_secs(2)));
        assert_eq!(
            plan.servers[0].original.as_deref(),
            Some("10.20.30.40:8080")
        );
        // Requests go where the config proxies them.
        assert_eq!(plan.traffic.host, "app.example.com");
        assert_eq!(plan.traffic.path, "/api/");
        // gunicorn idles out after 2 s: bursts just over it.
        assert_eq!(plan.traffic.mode, LoopMode::Open);
        assert!(plan.traffic.gap_min > Duration::from_secs(2));
    }

    #[test]
    fn refuses_what_it_cannot_emulate_with_the_place() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(
            &conf,
            "events {}\nhttp {\n    server {\n        location / {\n            fastcgi_pass 127.0.0.1:9000;\n        }\n    }\n}\n",
        )
        .unwrap();
        let opts = UserOptions {
            config: conf.clone(),
            backend_specs: vec![],
            backend_facts_json: None,
            host: None,
            nginx_prefix: None,
        };
        let err = build(&opts).unwrap_err().to_string();
        assert!(
            err.contains("nginx.conf:5:13") && err.contains("fastcgi_pass"),
            "{err}"
        );

        std::fs::write(
            &conf,
            "events {}\nhttp {\n    server {\n        listen 80\n    }\n}\n",
        )
        .unwrap();
        let err = build(&opts).unwrap_err().to_string();
        assert!(err.contains("nginx.conf:"), "{err}");

        let err = build(&UserOptions {
            backend_specs: vec!["nope=gunicorn".into()],
            config: write_host_config(dir.path()),
            ..opts
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("no upstream \"nope\""), "{err}");
    }
}
