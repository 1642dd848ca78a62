//! Settings from strings: `--backend` specs, upkeep.toml, probe JSON. No I/O:
//! the CLI reads the files and hands the text over.

use std::collections::BTreeMap;
use upkeep_diag::Severity;
use upkeep_facts::{backend_profile, parse_duration, BackendFacts, NginxVersion};

use crate::options::{CheckOptions, VersionSource};

/// `app=gunicorn` or `app=idle=5s,max-requests=100` → (`app`, facts).
pub fn parse_backend_spec(spec: &str) -> Result<(String, BackendFacts), String> {
    let (name, rest) = spec
        .split_once('=')
        .ok_or_else(|| format!("invalid backend spec {spec:?}: expected UPSTREAM=PROFILE or UPSTREAM=idle=5s,max-requests=100"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!(
            "invalid backend spec {spec:?}: the upstream name is empty"
        ));
    }
    let mut facts = parse_backend_facts(rest)?;
    if facts.source.is_empty() {
        facts.source = format!("declared with --backend {spec}");
    }
    Ok((name.to_string(), facts))
}

/// The facts part of a spec: a profile name, and/or `key=value` items
/// separated by commas or spaces. Keys: `idle` (duration), `max-requests`,
/// `max-connections`, `announces-close` (yes/no), `profile`.
pub fn parse_backend_facts(spec: &str) -> Result<BackendFacts, String> {
    let mut facts = BackendFacts::default();
    let mut any = false;
    for item in spec
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        any = true;
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase().replace('_', "-"), v.trim()),
            None => ("profile".to_string(), item),
        };
        match key.as_str() {
            "profile" => {
                let p = backend_profile(value).ok_or_else(|| {
                    format!(
                        "unknown backend profile {value:?} (known: {})",
                        upkeep_facts::backend_profiles()
                            .iter()
                            .map(|p| p.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                let pf = p.facts();
                facts.idle_timeout_ms = facts.idle_timeout_ms.or(pf.idle_timeout_ms);
                facts.max_requests = facts.max_requests.or(pf.max_requests);
                facts.announces_close = facts.announces_close.or(pf.announces_close);
                facts.max_connections = facts.max_connections.or(pf.max_connections);
                facts.source = pf.source;
            }
            "idle" | "idle-timeout" | "keepalive-timeout" => {
                facts.idle_timeout_ms = Some(parse_duration(value)?);
            }
            "max-requests" | "requests" => {
                facts.max_requests = Some(parse_count(&key, value)?);
            }
            // PHP-FPM's `pm.max_children`: each child serves one
            // connection at a time.
            "max-connections" | "connections" | "max-children" | "pm.max-children" => {
                facts.max_connections = Some(parse_count(&key, value)?);
            }
            "announces-close" => {
                facts.announces_close = Some(parse_bool(&key, value)?);
            }
            _ => {
                return Err(format!(
                    "unknown backend fact {key:?} (expected idle, max-requests, max-connections, max-children, announces-close or a profile name)"
                ))
            }
        }
    }
    if !any {
        return Err(
            "empty backend declaration: expected e.g. idle=5s max-requests=100".to_string(),
        );
    }
    Ok(facts)
}

fn parse_count(key: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("invalid {key} {value:?}: expected a whole number"))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("invalid {key} {value:?}: expected yes or no")),
    }
}

/// Applies an upkeep.toml:
///
/// ```toml
/// nginx_version = "1.28.0"
/// flavor = "nginx"           # or "angie", "freenginx"
/// front = "aws-alb"          # or front_idle = "60s"
/// cpus = 4
/// target_requests = 1000
/// [rules]
/// select = ["U", "C001"]
/// ignore = ["R003"]
/// severity = { U008 = "warning" }
/// [backends.app]
/// profile = "gunicorn"
/// idle = "5s"
/// max_requests = 100
/// max_connections = 200
/// announces_close = true
/// ```
pub fn apply_toml(opts: &mut CheckOptions, toml_text: &str) -> Result<(), String> {
    let doc: toml::Table = toml_text
        .parse()
        .map_err(|e: toml::de::Error| format!("upkeep.toml: {}", e.to_string().trim()))?;
    for (key, value) in &doc {
        match key.as_str() {
            "nginx_version" => {
                let v = as_str(key, value)?;
                opts.nginx_version = Some(NginxVersion::parse_given(v)?);
                opts.version_source = VersionSource::Given;
            }
            "flavor" => {
                opts.flavor = upkeep_facts::Flavor::parse(as_str(key, value)?)?;
                opts.flavor_given = true;
            }
            "front" => opts.front_name = Some(as_str(key, value)?.to_string()),
            "front_idle" => opts.front_idle_ms = Some(duration_value(key, value)?),
            "cpus" => {
                opts.cpus = Some(
                    u32::try_from(as_int(key, value)?)
                        .map_err(|_| format!("{key} must be at most {}", u32::MAX))?,
                )
            }
            "target_requests" => opts.target_requests = Some(as_int(key, value)?),
            "rules" => {
                let table = value
                    .as_table()
                    .ok_or("upkeep.toml: [rules] must be a table")?;
                apply_rules_table(opts, table)?;
            }
            "backends" => {
                let table = value
                    .as_table()
                    .ok_or("upkeep.toml: [backends] must be a table of upstream names")?;
                for (name, facts) in table {
                    let facts = backend_from_toml(name, facts)?;
                    opts.backends.insert(name.clone(), facts);
                }
            }
            other => return Err(format!("upkeep.toml: unknown key {other:?}")),
        }
    }
    if let Some(front) = &opts.front_name {
        if opts.front_idle_ms.is_none() && upkeep_facts::front_profile(front).is_none() {
            return Err(format!("upkeep.toml: unknown front {front:?}"));
        }
    }
    Ok(())
}

fn apply_rules_table(opts: &mut CheckOptions, table: &toml::Table) -> Result<(), String> {
    for (key, value) in table {
        match key.as_str() {
            "select" => opts.select = Some(rule_list(key, value)?),
            "ignore" => opts.ignore.extend(rule_list(key, value)?),
            "severity" => {
                let t = value.as_table().ok_or(
                    "upkeep.toml: rules.severity must be a table such as { U008 = \"warning\" }",
                )?;
                for (id, sev) in t {
                    let rule = crate::rule(id).ok_or_else(|| {
                        format!("upkeep.toml: rules.severity: unknown rule {id:?}")
                    })?;
                    let s = as_str(id, sev)?;
                    let sev = Severity::parse(s).ok_or_else(|| {
                        format!(
                            "upkeep.toml: rules.severity.{id}: {s:?} is not error, warning or info"
                        )
                    })?;
                    opts.severity_overrides.insert(rule.id.to_string(), sev);
                }
            }
            other => return Err(format!("upkeep.toml: unknown key rules.{other}")),
        }
    }
    Ok(())
}

/// A list of rule selectors; each must name a rule, a rule name or an ID
/// prefix of at least one rule.
fn rule_list(key: &str, value: &toml::Value) -> Result<Vec<String>, String> {
    let arr = value
        .as_array()
        .ok_or_else(|| format!("upkeep.toml: rules.{key} must be a list of rule IDs"))?;
    arr.iter()
        .map(|v| {
            let s = as_str(key, v)?;
            validate_selector(s).map_err(|e| format!("upkeep.toml: rules.{key}: {e}"))
        })
        .collect()
}

/// Checks a `--select`/`--ignore` value against the registry and returns it
/// normalised (IDs upper-case).
pub fn validate_selector(s: &str) -> Result<String, String> {
    if let Some(rule) = crate::rules().iter().find(|r| r.name == s) {
        return Ok(rule.name.to_string());
    }
    let up = s.to_ascii_uppercase();
    if !up.is_empty() && crate::rules().iter().any(|r| r.id.starts_with(&up)) {
        Ok(up)
    } else {
        Err(format!("unknown rule {s:?} (see `upkeep rules`)"))
    }
}

fn backend_from_toml(name: &str, value: &toml::Value) -> Result<BackendFacts, String> {
    let table = value
        .as_table()
        .ok_or_else(|| format!("upkeep.toml: backends.{name} must be a table"))?;
    let mut facts = BackendFacts::default();
    if let Some(p) = table.get("profile") {
        let pname = as_str("profile", p)?;
        facts =
            parse_backend_facts(pname).map_err(|e| format!("upkeep.toml: backends.{name}: {e}"))?;
    }
    for (key, v) in table {
        let err = |e: String| format!("upkeep.toml: backends.{name}.{key}: {e}");
        match key.as_str() {
            "profile" => {}
            "idle" | "idle_timeout" => {
                facts.idle_timeout_ms = Some(duration_value(key, v).map_err(err)?)
            }
            "max_requests" => facts.max_requests = Some(as_int(key, v).map_err(err)?),
            "max_connections" | "max_children" => {
                facts.max_connections = Some(as_int(key, v).map_err(err)?)
            }
            "announces_close" => {
                facts.announces_close = Some(
                    v.as_bool()
                        .ok_or_else(|| err("expected true or false".into()))?,
                )
            }
            other => {
                return Err(format!(
                    "upkeep.toml: backends.{name}: unknown key {other:?}"
                ))
            }
        }
    }
    facts.source = format!("declared in upkeep.toml [backends.{name}]");
    Ok(facts)
}

fn as_str<'v>(key: &str, v: &'v toml::Value) -> Result<&'v str, String> {
    v.as_str()
        .ok_or_else(|| format!("upkeep.toml: {key} must be a string"))
}

fn as_int(key: &str, v: &toml::Value) -> Result<u64, String> {
    v.as_integer()
        .filter(|i| *i >= 0)
        .map(|i| i as u64)
        .ok_or_else(|| format!("{key} must be a non-negative whole number"))
}

/// A duration as a string (`"5s"`) or a number of seconds.
fn duration_value(key: &str, v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::String(s) => parse_duration(s),
        toml::Value::Integer(i) if *i >= 0 => (*i as u64)
            .checked_mul(1000)
            .ok_or_else(|| format!("{key} is too large: {i} seconds")),
        _ => Err(format!("{key} must be a duration such as \"5s\"")),
    }
}

/// Applies the output of `upkeep probe --format json`: facts keyed by each
/// probed address, and by upstream name when the probe ran from a config.
/// An upstream's facts are those of its worst server, because nginx hands a
/// request to any of them: the shortest idle timeout, the lowest request cap,
/// and a silent close if any server closes without announcing it.
pub fn apply_probe_json(opts: &mut CheckOptions, json: &str) -> Result<(), String> {
    let doc: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("backend facts: invalid JSON: {e}"))?;
    match doc.get("schema").and_then(|v| v.as_u64()) {
        Some(1) => {}
        Some(n) => return Err(format!("backend facts: schema {n} is not supported (expected 1)")),
        None => return Err("backend facts: no \"schema\" field; expected the output of `upkeep probe --format json`".into()),
    }
    let targets = doc
        .get("targets")
        .and_then(|t| t.as_array())
        .ok_or("backend facts: expected {\"schema\":1,\"targets\":[…]} as written by `upkeep probe --format json`")?;
    let mut per_upstream: BTreeMap<String, BackendFacts> = BTreeMap::new();
    for t in targets {
        let target = t
            .get("target")
            .and_then(|v| v.as_str())
            .ok_or("backend facts: a target without \"target\"")?;
        if t.get("error").is_some_and(|e| !e.is_null()) {
            continue;
        }
        let num = |k: &str| t.get(k).and_then(|v| v.as_u64());
        let closes_every = t.get("closes_after_response").and_then(|v| v.as_bool()) == Some(true);
        let facts = BackendFacts {
            idle_timeout_ms: num("idle_timeout_ms"),
            max_requests: if closes_every {
                Some(1)
            } else {
                num("max_requests")
            },
            announces_close: t
                .get("announces_close")
                .and_then(|v| v.as_bool())
                .or(closes_every.then_some(true)),
            max_connections: num("max_connections"),
            source: format!("probed at {target}"),
        };
        if let Some(up) = t.get("upstream").and_then(|v| v.as_str()) {
            per_upstream
                .entry(up.to_string())
                .and_modify(|worst| merge_worst(worst, &facts))
                .or_insert_with(|| facts.clone());
        }
        let key = target
            .strip_prefix("http://")
            .or_else(|| target.strip_prefix("https://"))
            .unwrap_or(target)
            .trim_end_matches('/')
            .to_string();
        opts.backends.insert(key, facts);
    }
    opts.backends.extend(per_upstream);
    Ok(())
}

/// Folds one more server's measurements into an upstream's worst case.
fn merge_worst(worst: &mut BackendFacts, next: &BackendFacts) {
    fn min_known(a: Option<u64>, b: Option<u64>) -> Option<u64> {
        match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    }
    if next.idle_timeout_ms.is_some()
        && min_known(worst.idle_timeout_ms, next.idle_timeout_ms) == next.idle_timeout_ms
        && worst.idle_timeout_ms != next.idle_timeout_ms
    {
        worst.source = next.source.clone();
    }
    worst.idle_timeout_ms = min_known(worst.idle_timeout_ms, next.idle_timeout_ms);
    worst.max_requests = min_known(worst.max_requests, next.max_requests);
    worst.max_connections = min_known(worst.max_connections, next.max_connections);
    worst.announces_close = match (worst.announces_close, next.announces_close) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (a, b) => a.or(b),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_too_large_for_their_setting_are_refused() {
        let mut opts = CheckOptions::default();
        assert_eq!(
            apply_toml(&mut opts, "front_idle = 9223372036854775807\n"),
            Err("front_idle is too large: 9223372036854775807 seconds".into())
        );
        assert_eq!(
            apply_toml(&mut opts, "[backends.app]\nidle = 9223372036854775807\n"),
            Err(
                "upkeep.toml: backends.app.idle: idle is too large: 9223372036854775807 seconds"
                    .into()
            )
        );
        assert_eq!(
            apply_toml(&mut opts, "cpus = 4294967297\n"),
            Err("cpus must be at most 4294967295".into())
        );
        assert_eq!(opts.cpus, None);
        apply_toml(
            &mut opts,
            "cpus = 4294967295\nfront_idle = 9223372036854775\n",
        )
        .unwrap();
        assert_eq!(opts.cpus, Some(u32::MAX));
        assert_eq!(opts.front_idle_ms, Some(9_223_372_036_854_775_000));
    }

    #[test]
    fn backend_specs() {
        let (name, f) = parse_backend_spec("app=gunicorn").unwrap();
        assert_eq!(name, "app");
        assert_eq!(f.idle_timeout_ms, Some(2000));
        let (_, f) = parse_backend_spec("app=idle=5s,max-requests=100").unwrap();
        assert_eq!((f.idle_timeout_ms, f.max_requests), (Some(5000), Some(100)));
        let f = parse_backend_facts("idle=3s max-requests=50 announces-close=no").unwrap();
        assert_eq!(f.announces_close, Some(false));
        let f = parse_backend_facts("tomcat idle=10s").unwrap();
        assert_eq!(
            (f.idle_timeout_ms, f.max_requests),
            (Some(10_000), Some(100))
        );
        assert!(parse_backend_spec("app").is_err());
        assert!(parse_backend_spec("app=idle=5x").is_err());
        assert!(parse_backend_spec("app=nosuchserver").is_err());
        assert!(parse_backend_facts("").is_err());
    }

    #[test]
    fn toml_settings() {
        let mut o = CheckOptions::default();
        apply_toml(
            &mut o,
            r#"
            nginx_version = "1.22.1"
            front = "aws-alb"
            [rules]
            select = ["U", "C001"]
            ignore = ["u016"]
            severity = { U008 = "warning" }
            [backends.app]
            profile = "gunicorn"
            max_requests = 500
            "#,
        )
        .unwrap();
        assert_eq!(o.version(), NginxVersion::new(1, 22, 1));
        assert_eq!(o.version_source, VersionSource::Given);
        assert_eq!(o.front().unwrap().0, 60_000);
        assert!(o.is_enabled("U001", "upstream-without-keepalive"));
        assert!(!o.is_enabled("U016", "keepalive-timeout-without-pool"));
        assert!(!o.is_enabled("R001", "worker-connections-over-nofile"));
        assert_eq!(o.severity_overrides["U008"], Severity::Warning);
        let app = &o.backends["app"];
        assert_eq!(
            (app.idle_timeout_ms, app.max_requests),
            (Some(2000), Some(500))
        );

        let mut o = CheckOptions::default();
        assert!(apply_toml(&mut o, "[rules]\nselect = [\"Z999\"]").is_err());
        assert!(apply_toml(&mut o, "bogus = 1").is_err());
        assert!(apply_toml(&mut o, "front = \"nowhere\"").is_err());
        assert!(apply_toml(&mut o, "not toml [").is_err());
    }

    #[test]
    fn a_named_flavor_is_given_even_when_it_is_the_default() {
        let mut o = CheckOptions::default();
        apply_toml(&mut o, "front_idle = \"60s\"").unwrap();
        assert!(!o.flavor_given);
        apply_toml(&mut o, "flavor = \"nginx\"").unwrap();
        assert_eq!(
            (o.flavor, o.flavor_given),
            (upkeep_facts::Flavor::Nginx, true)
        );
    }

    #[test]
    fn probe_json() {
        let mut o = CheckOptions::default();
        apply_probe_json(
            &mut o,
            r#"{"schema":1,"targets":[
                {"target":"127.0.0.1:8080","http_version":"1.1","keepalive":true,
                 "closes_after_response":false,"idle_timeout_ms":5003,"max_requests":100,"error":null},
                {"target":"127.0.0.1:8081","error":"connection refused"}]}"#,
        )
        .unwrap();
        let f = &o.backends["127.0.0.1:8080"];
        assert_eq!((f.idle_timeout_ms, f.max_requests), (Some(5003), Some(100)));
        assert!(!o.backends.contains_key("127.0.0.1:8081"));
        assert!(apply_probe_json(&mut o, "{}").is_err());
        assert!(apply_probe_json(&mut o, r#"{"schema":2,"targets":[]}"#).is_err());
    }

    #[test]
    fn probe_json_upstream_takes_its_worst_server() {
        let mut o = CheckOptions::default();
        apply_probe_json(
            &mut o,
            r#"{"schema":1,"targets":[
                {"target":"10.0.0.5:8080","upstream":"app","keepalive":true,"idle_timeout_ms":30000,
                 "max_requests":null,"announces_close":null,"error":null},
                {"target":"10.0.0.6:8080","upstream":"app","keepalive":true,"idle_timeout_ms":5003,
                 "max_requests":100,"announces_close":false,"error":null},
                {"target":"10.0.0.7:8080","upstream":"app","error":"connection refused"}]}"#,
        )
        .unwrap();
        let app = &o.backends["app"];
        assert_eq!(app.idle_timeout_ms, Some(5003));
        assert_eq!(app.max_requests, Some(100));
        assert_eq!(app.announces_close, Some(false));
        assert_eq!(app.source, "probed at 10.0.0.6:8080");
        assert_eq!(o.backends["10.0.0.5:8080"].idle_timeout_ms, Some(30000));
    }
}
