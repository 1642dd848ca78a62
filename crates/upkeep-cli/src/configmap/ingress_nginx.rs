//! The nginx configuration ingress-nginx renders from its ConfigMap, reduced
//! to what the keep-alive rules read: the directives its template
//! (rootfs/etc/nginx/template/nginx.tmpl) writes from the ConfigMap keys that
//! matter for connection reuse, each line remembering the key that wrote it.
//!
//! Defaults are those of the release upkeep has data for
//! (upkeep-facts data/controller_settings.tsv); the keys are read the way
//! the controller reads them (internal/ingress/controller/template/
//! configmap.go: strings decoded into the Configuration struct with
//! mapstructure's weakly typed input).

use upkeep_facts::{parse_duration, refusal, Controller, ControllerRelease, ValueKind};

use super::manifest::{ConfigMap, Entry};

/// How a key's value is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A whole number (Go `int`).
    Int,
    /// A whole number of seconds: the template appends `s`.
    Seconds,
    /// nginx time syntax, copied into the directive as is.
    Duration,
    /// `1.0` or `1.1`.
    HttpVersion,
    /// `proxy_next_upstream` conditions, space-separated.
    NextUpstream,
    /// Go `strconv.ParseBool`.
    Bool,
    /// A number, or `auto` (the controller writes the CPU count for it).
    WorkerProcesses,
}

/// The largest time in seconds nginx takes for a directive kept in
/// milliseconds (`keepalive_timeout 9223372036854775s`: ngx_parse_time
/// refuses more, as the maximum integer over 1000; tested against nginx).
const MAX_SECONDS: i64 = i64::MAX / 1000;

/// The keys read, in the order the template writes them.
const KEYS: &[(&str, Kind)] = &[
    ("worker-processes", Kind::WorkerProcesses),
    ("max-worker-open-files", Kind::Int),
    ("worker-shutdown-timeout", Kind::Duration),
    ("max-worker-connections", Kind::Int),
    ("keep-alive", Kind::Seconds),
    ("keep-alive-requests", Kind::Int),
    ("upstream-keepalive-connections", Kind::Int),
    ("upstream-keepalive-time", Kind::Duration),
    ("upstream-keepalive-timeout", Kind::Seconds),
    ("upstream-keepalive-requests", Kind::Int),
    ("proxy-http-version", Kind::HttpVersion),
    ("proxy-next-upstream", Kind::NextUpstream),
    ("retry-non-idempotent", Kind::Bool),
];

/// Defaults of keys that write no keep-alive directive of their own, so
/// are not in controller_settings.tsv: `retry-non-idempotent` is a Go bool
/// NewDefault leaves false (internal/ingress/controller/config/config.go:219
/// at controller-v1.15.1).
const OTHER_DEFAULTS: &[(&str, &str)] = &[("retry-non-idempotent", "false")];

/// The `proxy_next_upstream` conditions nginx accepts
/// (ngx_http_proxy_module.c, `ngx_http_proxy_next_upstream_masks`).
const NEXT_UPSTREAM: &[&str] = &[
    "error",
    "timeout",
    "invalid_header",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "http_403",
    "http_404",
    "http_429",
    "non_idempotent",
    "off",
];

/// One key's effective value.
#[derive(Clone, Debug)]
pub struct Effective {
    pub key: &'static str,
    /// As the template writes it (`60`, `1h`, `error timeout`).
    pub value: String,
    /// Where the ConfigMap sets it; `None`: the release's default.
    pub entry: Option<Entry>,
}

/// A key's value that the controller cannot use.
#[derive(Debug)]
pub struct InvalidValue {
    pub entry: Entry,
    pub message: String,
}

/// The rendered configuration.
#[derive(Debug)]
pub struct Rendered {
    pub release: &'static ControllerRelease,
    pub text: String,
    /// For each line (index 0 is line 1), the key that wrote it.
    pub line_keys: Vec<Option<&'static str>>,
    pub values: Vec<Effective>,
    /// What the report should state.
    pub assumptions: Vec<String>,
    /// Rules the ConfigMap cannot decide (a value the controller derives
    /// from the pod), with why.
    pub not_checked: Vec<(&'static str, String)>,
    /// Keys that look like keep-alive keys but are none of ingress-nginx's.
    pub unknown: Vec<(Entry, String)>,
}

impl Rendered {
    pub fn value(&self, key: &str) -> Option<&Effective> {
        self.values.iter().find(|v| v.key == key)
    }
}

fn default_of(release: &ControllerRelease, key: &str) -> Option<&'static str> {
    Controller::IngressNginx
        .settings_at(release.release)
        .into_iter()
        .find(|s| s.setting == key)
        .and_then(|s| s.default)
        .or_else(|| {
            OTHER_DEFAULTS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
        })
}

/// A whole number the way Go's `strconv.ParseInt(s, 0, 64)` reads decimal
/// text (mapstructure turns an empty string into 0). Other bases are
/// refused: `010` would be octal to the controller.
fn whole_number(text: &str) -> Option<i64> {
    if text.is_empty() {
        return Some(0);
    }
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

fn go_bool(text: &str) -> Option<bool> {
    match text {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        _ => None,
    }
}

/// The value the template writes for `key`, or why the controller cannot
/// use `text`.
fn read_value(key: &str, kind: Kind, text: &str, default: Option<&str>) -> Result<String, String> {
    let keeps_default = || match default {
        Some(d) => format!("; ingress-nginx logs a warning and keeps its default `{d}`"),
        None => String::new(),
    };
    match kind {
        Kind::Int | Kind::Seconds => {
            let Some(n) = whole_number(text.trim()).filter(|_| text.trim() == text) else {
                let hint = match parse_duration(text) {
                    Ok(ms) if ms % 1000 == 0 && text.ends_with(|c: char| c.is_ascii_alphabetic()) => {
                        format!(" (write `\"{}\"`: the template appends `s` itself)", ms / 1000)
                    }
                    _ => String::new(),
                };
                return Err(format!(
                    "`{key}` takes a whole number, not `{text}`{hint}{}",
                    keeps_default()
                ));
            };
            if n < 0 {
                return Err(format!(
                    "`{key}` cannot be negative (`{text}`): nginx refuses the configuration rendered from it"
                ));
            }
            if kind == Kind::Seconds && n > MAX_SECONDS {
                return Err(format!(
                    "`{key}` is at most {MAX_SECONDS} (seconds), not `{text}`: nginx refuses the configuration rendered from it"
                ));
            }
            Ok(n.to_string())
        }
        Kind::Duration => {
            let directive = directive_of(key);
            if parse_duration(text).is_err() {
                return Err(format!(
                    "`{key}` takes an nginx time such as `1h` or `90s`, not `{text}`: nginx refuses the configuration rendered from it, so the controller cannot load it"
                ));
            }
            // The template writes the value as is: a space splits it into
            // arguments.
            if text.contains(' ') {
                return Err(format!(
                    "`{key}` is written into `{directive}` unquoted, so `{text}` is several arguments: nginx refuses the configuration rendered from it with `invalid number of arguments in \"{directive}\" directive`"
                ));
            }
            // A time nginx reads in milliseconds: no `y` or `M`, and at most
            // 9223372036854775s (ngx_parse_time; tested against nginx).
            match refusal(ValueKind::Msec, directive, &[text]) {
                None => Ok(text.to_string()),
                Some(r) => Err(format!(
                    "`{key}` cannot be `{text}`: nginx refuses the configuration rendered from it with `{}`",
                    r.message
                )),
            }
        }
        Kind::HttpVersion => match text {
            "1.0" | "1.1" => Ok(text.to_string()),
            _ => Err(format!(
                "`{key}` is `1.0` or `1.1`, not `{text}`: nginx refuses the configuration rendered from it"
            )),
        },
        Kind::NextUpstream => {
            let bad: Vec<&str> = text
                .split(' ')
                .filter(|w| !w.is_empty() && !NEXT_UPSTREAM.contains(w))
                .collect();
            if bad.is_empty() {
                Ok(text.to_string())
            } else {
                Err(format!(
                    "`{key}`: `{}` is not a proxy_next_upstream condition (nginx takes {}): nginx refuses the configuration rendered from it",
                    bad.join(" "),
                    NEXT_UPSTREAM.join(", ")
                ))
            }
        }
        Kind::Bool => go_bool(text).map(|b| b.to_string()).ok_or_else(|| {
            format!(
                "`{key}` is true or false, not `{text}`{}",
                keeps_default()
            )
        }),
        Kind::WorkerProcesses => {
            if text == "auto" || whole_number(text).is_some_and(|n| n > 0) {
                Ok(text.to_string())
            } else {
                Err(format!(
                    "`{key}` is `auto` or a number of processes, not `{text}`: nginx refuses the configuration rendered from it"
                ))
            }
        }
    }
}

/// The directive the template writes a time key's value into.
fn directive_of(key: &str) -> &'static str {
    match key {
        "worker-shutdown-timeout" => "worker_shutdown_timeout",
        "upstream-keepalive-time" => "keepalive_time",
        _ => "the directive",
    }
}

/// `proxy_next_upstream` as the template's `buildNextUpstream` writes it:
/// `non_idempotent` moved to the end, and added when `retry-non-idempotent`
/// is true.
fn next_upstream(conditions: &str, retry_non_idempotent: bool) -> String {
    let mut out: Vec<&str> = conditions
        .split(' ')
        .filter(|w| !w.is_empty() && *w != "non_idempotent")
        .collect();
    if retry_non_idempotent || conditions.split(' ').any(|w| w == "non_idempotent") {
        out.push("non_idempotent");
    }
    out.join(" ")
}

/// Keys ingress-nginx does not have but that look like keep-alive keys
/// (a typo is silently ignored by the controller).
fn looks_like_keepalive_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    (k.contains("keepalive") || k.contains("keep-alive") || k.contains("keep_alive"))
        && !KEYS.iter().any(|(name, _)| *name == key)
}

/// A line of the rendered configuration and the key that wrote it.
struct Writer {
    text: String,
    line_keys: Vec<Option<&'static str>>,
}

impl Writer {
    fn line(&mut self, key: Option<&'static str>, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
        self.line_keys.push(key);
    }
}

/// Renders what ingress-nginx writes from `cm` for routes to `services`
/// (Service backends, `namespace-service-port`; none: one route of an
/// unknown Service). Errors are the values the controller cannot use.
pub fn render(cm: &ConfigMap, services: &[String]) -> Result<Rendered, Vec<InvalidValue>> {
    let release = Controller::IngressNginx.current_release();
    let mut values = Vec::new();
    let mut invalid = Vec::new();
    for &(key, kind) in KEYS {
        let default = default_of(release, key);
        match cm.data.get(key) {
            Some(entry) => match read_value(key, kind, &entry.value, default) {
                Ok(value) => values.push(Effective {
                    key,
                    value,
                    entry: Some(entry.clone()),
                }),
                Err(message) => invalid.push(InvalidValue {
                    entry: entry.clone(),
                    message,
                }),
            },
            None => values.push(Effective {
                key,
                value: default.unwrap_or_default().to_string(),
                entry: None,
            }),
        }
    }
    if !invalid.is_empty() {
        return Err(invalid);
    }
    let get = |key: &str| -> &str {
        values
            .iter()
            .find(|v| v.key == key)
            .map_or("", |v| v.value.as_str())
    };
    let int = |key: &str| get(key).parse::<u64>().unwrap_or(0);

    let mut assumptions = vec![format!(
        "judged as the configuration ingress-nginx {} renders from ConfigMap {} (its template's keep-alive directives; nginx {} as its image ships, {}); keys not set take that release's defaults",
        release.release,
        cm.name.as_deref().map_or("(unnamed)".to_string(), |n| format!("`{n}`")),
        release.nginx,
        release.source
    )];
    let mut not_checked = Vec::new();
    let mut w = Writer {
        text: String::new(),
        line_keys: Vec::new(),
    };
    w.line(
        None,
        format!(
            "# ingress-nginx {} nginx.tmpl, keep-alive directives only",
            release.release
        ),
    );
    w.line(
        Some("worker-processes"),
        format!("worker_processes {};", get("worker-processes")),
    );
    // 0, the default, makes the controller compute the limit from the
    // pod's RLIMIT_NOFILE minus 1024 (internal/ingress/controller/nginx.go):
    // nothing this file says.
    let open_files = int("max-worker-open-files");
    if open_files > 0 {
        w.line(
            Some("max-worker-open-files"),
            format!("worker_rlimit_nofile {open_files};"),
        );
    } else {
        not_checked.push((
            "R001",
            "`max-worker-open-files` is 0: ingress-nginx derives `worker_rlimit_nofile` from the pod's open-file limit (minus 1024), which the ConfigMap does not say".to_string(),
        ));
    }
    w.line(
        Some("worker-shutdown-timeout"),
        format!(
            "worker_shutdown_timeout {} ;",
            get("worker-shutdown-timeout")
        ),
    );
    w.line(None, "events {");
    // 0 makes the controller use three quarters of worker_rlimit_nofile
    // (computed without overflow: the key may be as large as an i64).
    let connections = match int("max-worker-connections") {
        0 => open_files / 4 * 3 + open_files % 4 * 3 / 4,
        n => n,
    };
    if connections > 0 {
        w.line(
            Some("max-worker-connections"),
            format!("    worker_connections  {connections};"),
        );
    } else {
        not_checked.push((
            "R002",
            "`max-worker-connections` and `max-worker-open-files` are 0: ingress-nginx derives `worker_connections` from the pod's open-file limit".to_string(),
        ));
    }
    w.line(None, "}");
    w.line(None, "http {");
    w.line(
        Some("keep-alive"),
        format!("    keepalive_timeout  {}s;", get("keep-alive")),
    );
    w.line(
        Some("keep-alive-requests"),
        format!("    keepalive_requests {};", get("keep-alive-requests")),
    );
    let pool = int("upstream-keepalive-connections");
    let key = Some("upstream-keepalive-connections");
    w.line(key, "    map $http_upgrade $connection_upgrade {");
    w.line(key, "        default          upgrade;");
    if pool > 0 {
        w.line(key, "        ''               '';");
    } else {
        w.line(key, "        ''               close;");
    }
    w.line(key, "    }");
    w.line(key, "    upstream upstream_balancer {");
    w.line(key, "        server 0.0.0.1; # placeholder");
    w.line(
        key,
        "        balancer_by_lua_file /etc/nginx/lua/nginx/ngx_conf_balancer.lua;",
    );
    if pool > 0 {
        w.line(key, format!("        keepalive {pool};"));
        w.line(
            Some("upstream-keepalive-time"),
            format!("        keepalive_time {};", get("upstream-keepalive-time")),
        );
        w.line(
            Some("upstream-keepalive-timeout"),
            format!(
                "        keepalive_timeout  {}s;",
                get("upstream-keepalive-timeout")
            ),
        );
        w.line(
            Some("upstream-keepalive-requests"),
            format!(
                "        keepalive_requests {};",
                get("upstream-keepalive-requests")
            ),
        );
    } else {
        let ignored: Vec<&str> = [
            "upstream-keepalive-time",
            "upstream-keepalive-timeout",
            "upstream-keepalive-requests",
        ]
        .into_iter()
        .filter(|k| cm.data.contains_key(*k))
        .collect();
        if !ignored.is_empty() {
            assumptions.push(format!(
                "`{}` {} no effect: with `upstream-keepalive-connections` 0 the template writes no upstream keep-alive directives",
                ignored.join("`, `"),
                if ignored.len() == 1 { "has" } else { "have" }
            ));
        }
    }
    w.line(key, "    }");
    let next = next_upstream(
        get("proxy-next-upstream"),
        get("retry-non-idempotent") == "true",
    );
    let routes: Vec<(String, &str)> = if services.is_empty() {
        // `-` is the template's name for "no Service" in
        // `$proxy_upstream_name`.
        vec![("/".to_string(), "-")]
    } else {
        services
            .iter()
            .map(|s| (format!("/{s}/"), s.as_str()))
            .collect()
    };
    w.line(None, "    server {");
    w.line(None, "        listen 80 default_server;");
    for (path, service) in &routes {
        w.line(None, format!("        location {path} {{"));
        w.line(
            None,
            format!("            set $proxy_upstream_name \"{service}\";"),
        );
        w.line(None, "            proxy_set_header Upgrade $http_upgrade;");
        w.line(
            key,
            "            proxy_set_header Connection $connection_upgrade;",
        );
        w.line(
            Some("proxy-http-version"),
            format!(
                "            proxy_http_version {};",
                get("proxy-http-version")
            ),
        );
        w.line(
            Some("proxy-next-upstream"),
            format!("            proxy_next_upstream {next};"),
        );
        w.line(None, "            proxy_pass http://upstream_balancer;");
        w.line(None, "        }");
    }
    w.line(None, "    }");
    w.line(None, "}");

    let unknown = cm
        .data
        .iter()
        .filter(|(k, _)| looks_like_keepalive_key(k))
        .map(|(k, e)| {
            (
                e.clone(),
                format!(
                    "ingress-nginx {} has no ConfigMap key `{k}` and ignores it; its keep-alive keys are `keep-alive`, `keep-alive-requests`, `upstream-keepalive-connections`, `upstream-keepalive-time`, `upstream-keepalive-timeout` and `upstream-keepalive-requests`",
                    release.release
                ),
            )
        })
        .collect();

    Ok(Rendered {
        release,
        text: w.text,
        line_keys: w.line_keys,
        values,
        assumptions,
        not_checked,
        unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configmap::manifest;
    use upkeep_syntax::{FileId, SourceFile};

    fn configmap(data: &str) -> ConfigMap {
        let text = format!("kind: ConfigMap\ndata:\n{data}");
        manifest::read(&SourceFile::new(FileId(0), "cm.yaml", text.into_bytes())).unwrap()
    }

    #[test]
    fn defaults_follow_the_data() {
        let r = render(&configmap("  {}\n"), &[]).unwrap();
        for (key, value) in [
            ("keep-alive", "75"),
            ("keep-alive-requests", "1000"),
            ("upstream-keepalive-connections", "320"),
            ("upstream-keepalive-timeout", "60"),
            ("upstream-keepalive-requests", "10000"),
            ("upstream-keepalive-time", "1h"),
            ("proxy-http-version", "1.1"),
            ("proxy-next-upstream", "error timeout"),
            ("max-worker-connections", "16384"),
        ] {
            assert_eq!(r.value(key).unwrap().value, value, "{key}");
            assert!(r.value(key).unwrap().entry.is_none());
        }
        // Every key read has a default (from the data, or OTHER_DEFAULTS).
        for v in &r.values {
            assert!(!v.value.is_empty(), "no default for {}", v.key);
        }
        assert!(r.text.contains("worker_processes auto;\n"));
        assert!(r.text.contains("        keepalive 320;\n"));
        assert!(r.text.contains("        keepalive_timeout  60s;\n"));
        assert!(r.text.contains("    keepalive_timeout  75s;\n"));
        assert!(r.text.contains("set $proxy_upstream_name \"-\";"));
        assert_eq!(r.text.lines().count(), r.line_keys.len());
        assert!(r.not_checked.iter().any(|(rule, _)| *rule == "R001"));
    }

    #[test]
    fn connections_zero_drops_the_pool_and_maps_close() {
        let r = render(
            &configmap(
                "  upstream-keepalive-connections: \"0\"\n  upstream-keepalive-timeout: \"5\"\n",
            ),
            &["default-web-8000".into()],
        )
        .unwrap();
        assert!(!r.text.contains("keepalive 0"));
        assert!(!r.text.contains("keepalive_timeout  5s"));
        assert!(r.text.contains("''               close;"));
        assert!(r.text.contains("location /default-web-8000/ {"));
        assert!(r.assumptions.iter().any(|a| a.contains("has no effect")));
    }

    #[test]
    fn values_the_controller_cannot_use_are_errors() {
        let e = render(&configmap("  upstream-keepalive-timeout: \"60s\"\n"), &[]).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].message.contains("write `\"60\"`"), "{}", e[0].message);
        assert!(e[0].message.contains("keeps its default `60`"));
        let e = render(
            &configmap("  upstream-keepalive-time: \"soon\"\n  proxy-http-version: \"2\"\n  keep-alive: \"-1\"\n"),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.len(), 3);
        assert!(render(&configmap("  keep-alive: \"010\"\n"), &[]).is_err());
        // mapstructure reads an empty string as 0.
        let r = render(&configmap("  keep-alive: \"\"\n"), &[]).unwrap();
        assert!(r.text.contains("keepalive_timeout  0s;"));
    }

    #[test]
    fn next_upstream_as_the_template_builds_it() {
        assert_eq!(next_upstream("error timeout", false), "error timeout");
        assert_eq!(
            next_upstream("non_idempotent error", false),
            "error non_idempotent"
        );
        assert_eq!(
            next_upstream("error timeout", true),
            "error timeout non_idempotent"
        );
    }

    #[test]
    fn keepalive_typos_are_named() {
        let r = render(&configmap("  upstream-keepalive-timeouts: \"5\"\n"), &[]).unwrap();
        assert_eq!(r.unknown.len(), 1);
        assert!(render(&configmap("  proxy-body-size: \"5m\"\n"), &[])
            .unwrap()
            .unknown
            .is_empty());
    }

    /// `nginx -t` of the configuration `r` renders, with Debian's nginx
    /// and its Lua module; `None` (skipped loudly, except in CI, whose setup
    /// installs them) when they are missing. Whether nginx accepted it, and
    /// what it said.
    fn nginx_t_rendered(text: &str) -> Option<(bool, String)> {
        let nginx = std::path::Path::new("/usr/sbin/nginx");
        let modules = std::path::Path::new("/usr/lib/nginx/modules");
        let lua = ["ndk_http_module.so", "ngx_http_lua_module.so"];
        if !nginx.is_file() || lua.iter().any(|m| !modules.join(m).is_file()) {
            assert!(
                std::env::var_os("CI").is_none(),
                "nginx or its Lua module missing in CI (.ci/setup installs nginx and libnginx-mod-http-lua)"
            );
            eprintln!("SKIPPED: install Debian's nginx and libnginx-mod-http-lua");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let balancer = dir.path().join("balancer.lua");
        std::fs::write(&balancer, "").unwrap();
        let mut conf_text = String::new();
        for m in lua {
            conf_text.push_str(&format!("load_module {};\n", modules.join(m).display()));
        }
        conf_text.push_str(&text.replace(
            "/etc/nginx/lua/nginx/ngx_conf_balancer.lua",
            balancer.to_str().unwrap(),
        ));
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, conf_text).unwrap();
        let out = std::process::Command::new(nginx)
            .arg("-t")
            .arg("-p")
            .arg(format!("{}/", dir.path().display()))
            .args(["-e", "stderr", "-c"])
            .arg(&conf)
            .output()
            .unwrap();
        Some((
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// The time keys (written into `worker_shutdown_timeout` and the
    /// upstream `keepalive_time` as they are) take what nginx takes for a
    /// time in milliseconds: up to 9223372036854775s or
    /// 9223372036854775807ms, no `y` or `M`, no space. What the rendering
    /// refuses, nginx refuses in the rendered directive (same words), and
    /// the largest values are accepted by both.
    #[test]
    fn time_keys_are_refused_where_nginx_refuses_them() {
        let defaults = render(&configmap("  {}\n"), &[]).unwrap();
        let shutdown = |v: &str| format!("worker_shutdown_timeout {v} ;");
        let time = |v: &str| format!("keepalive_time {v};");
        let default_shutdown = shutdown(&defaults.value("worker-shutdown-timeout").unwrap().value);
        let default_time = time(&defaults.value("upstream-keepalive-time").unwrap().value);
        assert!(defaults.text.contains(&default_shutdown) && defaults.text.contains(&default_time));
        for (key, value, nginx_says) in [
            (
                "worker-shutdown-timeout",
                "9223372036854776s",
                "\"worker_shutdown_timeout\" directive invalid value",
            ),
            (
                "worker-shutdown-timeout",
                "18446744073709551s",
                "\"worker_shutdown_timeout\" directive invalid value",
            ),
            (
                "worker-shutdown-timeout",
                "9223372036854775808ms",
                "\"worker_shutdown_timeout\" directive invalid value",
            ),
            (
                "worker-shutdown-timeout",
                "1y",
                "\"worker_shutdown_timeout\" directive invalid value",
            ),
            (
                "worker-shutdown-timeout",
                "1h 30m",
                "invalid number of arguments in \"worker_shutdown_timeout\" directive",
            ),
            (
                "upstream-keepalive-time",
                "9223372036854776s",
                "\"keepalive_time\" directive invalid value",
            ),
            (
                "upstream-keepalive-time",
                "1M",
                "\"keepalive_time\" directive invalid value",
            ),
        ] {
            let e = render(&configmap(&format!("  {key}: \"{value}\"\n")), &[]).unwrap_err();
            assert_eq!(e.len(), 1, "{key}: {value}");
            assert!(
                e[0].message.contains(nginx_says),
                "{key}: {value}: {}",
                e[0].message
            );
            assert!(e[0]
                .message
                .contains("nginx refuses the configuration rendered from it"));
            let text = defaults
                .text
                .replace(
                    &default_shutdown,
                    &if key == "worker-shutdown-timeout" {
                        shutdown(value)
                    } else {
                        default_shutdown.clone()
                    },
                )
                .replace(
                    &default_time,
                    &if key == "upstream-keepalive-time" {
                        time(value)
                    } else {
                        default_time.clone()
                    },
                );
            let Some((ok, stderr)) = nginx_t_rendered(&text) else {
                return;
            };
            assert!(
                !ok && stderr.contains(nginx_says),
                "{key}: {value}\n{stderr}"
            );
        }
        let largest = "  worker-shutdown-timeout: \"9223372036854775s\"\n  upstream-keepalive-time: \"9223372036854775807ms\"\n";
        let r = render(&configmap(largest), &[]).unwrap();
        assert!(r.text.contains(&shutdown("9223372036854775s")));
        assert!(r.text.contains(&time("9223372036854775807ms")));
        if let Some((ok, stderr)) = nginx_t_rendered(&r.text) {
            assert!(ok, "{}\n{stderr}", r.text);
        }
    }

    /// nginx accepts what is rendered, for the defaults and for set keys:
    /// Debian's nginx with its Lua module (for `balancer_by_lua_file`,
    /// pointed at an empty file). Missing: skipped loudly, except in CI,
    /// whose setup installs them.
    #[test]
    fn nginx_accepts_the_rendered_configuration() {
        let nginx = std::path::Path::new("/usr/sbin/nginx");
        let modules = std::path::Path::new("/usr/lib/nginx/modules");
        let lua = ["ndk_http_module.so", "ngx_http_lua_module.so"];
        if !nginx.is_file() || lua.iter().any(|m| !modules.join(m).is_file()) {
            assert!(
                std::env::var_os("CI").is_none(),
                "nginx or its Lua module missing in CI (.ci/setup installs nginx and libnginx-mod-http-lua)"
            );
            eprintln!("SKIPPED: install Debian's nginx and libnginx-mod-http-lua");
            return;
        }
        let cases = [
            "  {}\n",
            "  upstream-keepalive-connections: \"16\"\n  upstream-keepalive-timeout: \"30\"\n  upstream-keepalive-time: \"30m\"\n  upstream-keepalive-requests: \"500\"\n  keep-alive: \"90\"\n  keep-alive-requests: \"2000\"\n  proxy-next-upstream: \"error timeout http_502\"\n  retry-non-idempotent: \"true\"\n  worker-processes: \"2\"\n  max-worker-open-files: \"4096\"\n  max-worker-connections: \"0\"\n  worker-shutdown-timeout: \"10s\"\n  proxy-http-version: \"1.0\"\n",
            "  upstream-keepalive-connections: \"0\"\n  keep-alive: \"0\"\n",
            // The largest times in seconds nginx takes.
            "  keep-alive: \"9223372036854775\"\n  upstream-keepalive-timeout: \"9223372036854775\"\n",
        ];
        // One second more is refused by nginx, and so by the rendering.
        let over = "  keep-alive: \"9223372036854776\"\n  upstream-keepalive-timeout: \"9223372036854776\"\n";
        let refused = render(&configmap(over), &[]).unwrap_err();
        assert_eq!(
            refused[0].message,
            "`keep-alive` is at most 9223372036854775 (seconds), not `9223372036854776`: nginx refuses the configuration rendered from it"
        );
        assert_eq!(refused.len(), 2);
        let mut nginx_refuses = false;
        for data in cases {
            let r = render(
                &configmap(data),
                &["default-web-8000".into(), "shop-api-80".into()],
            )
            .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let balancer = dir.path().join("balancer.lua");
            std::fs::write(&balancer, "").unwrap();
            let mut text = String::new();
            for m in lua {
                text.push_str(&format!("load_module {};\n", modules.join(m).display()));
            }
            text.push_str(&r.text.replace(
                "/etc/nginx/lua/nginx/ngx_conf_balancer.lua",
                balancer.to_str().unwrap(),
            ));
            // `nginx -t` of `text` in the case's directory: accepted, and
            // what nginx said.
            let nginx_t = |text: &str| {
                let conf = dir.path().join("nginx.conf");
                std::fs::write(&conf, text).unwrap();
                let out = std::process::Command::new(nginx)
                    .arg("-t")
                    .arg("-p")
                    .arg(format!("{}/", dir.path().display()))
                    .args(["-e", "stderr", "-c"])
                    .arg(&conf)
                    .output()
                    .unwrap();
                (
                    out.status.success(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            };
            let (ok, stderr) = nginx_t(&text);
            assert!(ok, "{data}\n{text}\n{stderr}");
            if data.contains("9223372036854775") {
                let text = text.replace("9223372036854775s", "9223372036854776s");
                let (ok, stderr) = nginx_t(&text);
                assert!(!ok && stderr.contains("invalid value"), "{text}\n{stderr}");
                nginx_refuses = true;
            }
        }
        assert!(nginx_refuses);
    }
}
