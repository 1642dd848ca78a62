//! Configurations rendered by Kubernetes controllers: recognizing the
//! controller from what its templates always write, and turning each
//! finding's file edit into the controller setting that writes the directive.
//!
//! A controller rewrites its nginx configuration from its ConfigMap, the
//! Ingress annotations or its policy resources on every change, so an edit to
//! the rendered file is lost at the next sync. The facts (which setting
//! writes which directive, the defaults, the nginx each release ships) are in
//! `upkeep_facts` (data/controllers.tsv, data/controller_settings.tsv).

use upkeep_diag::{Finding, ManagedSetting};
use upkeep_facts::{
    parse_duration, Controller, ControllerRelease, ControllerSetting, SettingKind, SettingUnit,
};
use upkeep_model::{BlockId, BlockKind, Model};
use upkeep_syntax::{Directive, Node, Span};

/// A controller recognized from its rendered configuration.
#[derive(Clone, Debug)]
pub struct Recognized {
    pub controller: Controller,
    /// The release taken: the newest in the data (a rendered configuration
    /// does not say which release rendered it).
    pub release: &'static ControllerRelease,
    /// What gave it away (`upstream upstream_balancer with
    /// balancer_by_lua_file`), for the output.
    pub evidence: String,
}

impl Recognized {
    pub fn name(&self) -> String {
        format!("{} {}", self.controller.display(), self.release.release)
    }
}

/// The `listen` sockets the controllers' templates always write for their
/// own fallback servers: F5 NGINX Ingress Controller's 502 and 418 servers
/// (internal/configs/version1/nginx.tmpl), NGINX Gateway Fabric's 503 and
/// 500 servers (internal/controller/nginx/config/servers_template.go).
const NGINX_INGRESS_SOCKETS: &[&str] = &[
    "unix:/var/lib/nginx/nginx-502-server.sock",
    "unix:/var/lib/nginx/nginx-418-server.sock",
];
const GATEWAY_FABRIC_SOCKETS: &[&str] = &[
    "unix:/var/run/nginx/nginx-503-server.sock",
    "unix:/var/run/nginx/nginx-500-server.sock",
];

fn directives<'m, 'a>(
    model: &'m Model<'a>,
    block: BlockId,
) -> impl Iterator<Item = &'a Directive> + 'm {
    model.block(block).nodes().filter_map(|n| match n {
        Node::Directive(d) => Some(d),
        Node::Comment(_) => None,
    })
}

fn first_arg(d: &Directive) -> String {
    d.args()
        .first()
        .map(|a| a.text().into_owned())
        .unwrap_or_default()
}

/// The controller whose template rendered `model`, if its markers are there.
pub fn recognize(model: &Model) -> Option<Recognized> {
    let place = |span: Span| {
        let file = model.source.source_file(span.file);
        format!("{}:{}", file.path, file.line_of(span.start))
    };
    // ingress-nginx: one `upstream upstream_balancer` in http whose peers a
    // Lua balancer picks (nginx.tmpl, "We no longer create "upstream"
    // section for every backend").
    for up in &model.upstreams {
        if up.name != "upstream_balancer" {
            continue;
        }
        let Some(lua) = up.lua_balancer else { continue };
        let in_http = model
            .block(up.block)
            .parent()
            .is_some_and(|p| model.block(p).kind == BlockKind::Http);
        if in_http {
            return Some(recognized(
                Controller::IngressNginx,
                format!(
                    "`upstream upstream_balancer` with `{}` at {}",
                    lua.name().text(),
                    place(lua.span())
                ),
            ));
        }
    }
    for server in model.servers() {
        for d in directives(model, server).filter(|d| d.name_is("listen")) {
            let addr = first_arg(d);
            let found = if NGINX_INGRESS_SOCKETS.contains(&addr.as_str()) {
                Controller::NginxIngress
            } else if GATEWAY_FABRIC_SOCKETS.contains(&addr.as_str()) {
                Controller::GatewayFabric
            } else {
                continue;
            };
            return Some(recognized(
                found,
                format!("`listen {addr}` at {}", place(d.span())),
            ));
        }
    }
    None
}

fn recognized(controller: Controller, evidence: String) -> Recognized {
    Recognized {
        controller,
        release: controller.current_release(),
        evidence,
    }
}

/// Servers the controller keeps for itself (health checks, status, the
/// fallback servers): nothing a user routes traffic through or can change.
/// ingress-nginx marks them with `set $proxy_upstream_name "internal"`; the
/// F5 controllers' have no proxied location.
pub fn internal_servers(model: &Model, recognized: &Recognized) -> Vec<Span> {
    let routed: Vec<BlockId> = model
        .routes
        .iter()
        .filter_map(|r| {
            model
                .chain(r.block)
                .into_iter()
                .find(|&b| model.block(b).kind == BlockKind::Server)
        })
        .collect();
    let mut out = Vec::new();
    for server in model.servers() {
        let Some(head) = model.block(server).directive else {
            continue;
        };
        let internal = match recognized.controller {
            Controller::IngressNginx => directives(model, server).any(|d| {
                d.name_is("set")
                    && first_arg(d) == "$proxy_upstream_name"
                    && d.args().get(1).is_some_and(|v| v.text() == "internal")
            }),
            // The F5 controllers write every user route as a proxied
            // location: a server with none is one of theirs (fallbacks on
            // unix sockets, the readiness server, the 404 default server).
            Controller::NginxIngress | Controller::GatewayFabric => !routed.contains(&server),
        };
        if internal {
            out.push(head.span());
        }
    }
    out
}

/// The Service backends (`namespace-service-port`) ingress-nginx routes
/// through the blocks of `routes`: the `$proxy_upstream_name` each location
/// sets for its Lua balancer.
pub fn ingress_nginx_backends(model: &Model, blocks: impl Iterator<Item = BlockId>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for block in blocks {
        let name = model.chain(block).into_iter().rev().find_map(|b| {
            directives(model, b)
                .filter(|d| d.name_is("set") && first_arg(d) == "$proxy_upstream_name")
                .last()
                .and_then(|d| d.args().get(1).map(|v| v.text().into_owned()))
        });
        if let Some(n) = name.filter(|n| !n.is_empty() && n != "-" && n != "internal") {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names.sort();
    names
}

/// The directive (and where the templates write it) a rule's finding is
/// about, and whether a value for it must be rounded up (a client timeout
/// that must outlast the front) or down (an upstream timeout that must end
/// before the backend's).
struct Target {
    directive: &'static str,
    contexts: &'static [&'static str],
    round_up: bool,
}

fn target(rule: &str, controller: Controller) -> Option<Target> {
    let t = |directive, contexts, round_up| {
        Some(Target {
            directive,
            contexts,
            round_up,
        })
    };
    const CLIENT: &[&str] = &["http", "server"];
    match rule {
        "U001" | "U009" => t("keepalive", &["upstream"], false),
        // ingress-nginx and the F5 controller write the empty Connection
        // header (or map `''` to it) only when upstream keep-alive is on.
        "U003" | "U005" if controller != Controller::GatewayFabric => {
            t("keepalive", &["upstream"], false)
        }
        "U007" => t("keepalive_timeout", &["upstream"], false),
        "U008" => t("keepalive_requests", &["upstream"], false),
        "U002" => t("proxy_http_version", &["location"], false),
        "U012" => t("proxy_next_upstream", &["location"], false),
        "C001" => t("keepalive_requests", CLIENT, true),
        "C002" | "C003" => t("keepalive_timeout", CLIENT, true),
        "R001" => t("worker_rlimit_nofile", &["main"], true),
        "R002" => t("worker_connections", &["events"], true),
        "R003" => t("worker_shutdown_timeout", &["main"], false),
        _ => None,
    }
}

/// The settings of the recognized release that write `target`, ConfigMap
/// keys first.
fn settings_for(recognized: &Recognized, target: &Target) -> Vec<&'static ControllerSetting> {
    let mut found: Vec<&'static ControllerSetting> = recognized
        .controller
        .settings_at(recognized.release.release)
        .into_iter()
        .filter(|s| s.directive == target.directive && target.contexts.contains(&s.context))
        .collect();
    found.sort_by_key(|s| match s.kind {
        SettingKind::ConfigMap | SettingKind::Policy => 0,
        SettingKind::Annotation => 1,
    });
    found
}

/// The value a fix writes for `directive`: the arguments of a `directive …;`
/// line it inserts, or the arguments it puts in place of the old ones.
fn fixed_value(finding: &Finding, directive: &str) -> Option<String> {
    let fix = finding.fix.as_ref()?;
    for edit in &fix.edits {
        let content = edit.content.trim();
        if let Some(at) = content.find(&format!("{directive} ")) {
            let rest = &content[at + directive.len()..];
            let value = rest.split(';').next().unwrap_or("").trim();
            if !value.is_empty() {
                return Some(value.to_string());
            }
        } else if !content.is_empty() && !content.contains([';', '\n', '{']) {
            return Some(content.to_string());
        }
    }
    None
}

/// `value` (nginx syntax) written in the setting's unit. Whole seconds are
/// rounded the safe way; `None` when the unit cannot express it (a timeout
/// under one second for a setting in seconds).
fn in_unit(value: &str, unit: SettingUnit, round_up: bool) -> Option<String> {
    match unit {
        SettingUnit::Seconds => {
            let ms = parse_duration(value).ok()?;
            let secs = if round_up {
                ms.div_ceil(1000)
            } else {
                ms / 1000
            };
            (secs > 0).then(|| secs.to_string())
        }
        SettingUnit::Duration | SettingUnit::Count | SettingUnit::Text => Some(value.to_string()),
    }
}

/// `set `key: "value"` where` for the help line: a ConfigMap key in the
/// controller's ConfigMap, an annotation on the Ingress, a policy field in
/// the policy resource it belongs to.
fn how_to_set(setting: &ControllerSetting, value: Option<&str>) -> String {
    let (resource, field) = match setting.kind {
        SettingKind::Policy => setting
            .setting
            .split_once(' ')
            .unwrap_or(("", setting.setting)),
        _ => ("", setting.setting),
    };
    let assignment = match value {
        Some(v) => format!("set `{field}: \"{v}\"`"),
        None => format!("change `{field}`"),
    };
    let place = match setting.kind {
        SettingKind::ConfigMap => "in the controller's ConfigMap".to_string(),
        SettingKind::Annotation => "on the Ingress".to_string(),
        SettingKind::Policy if setting.context == "upstream" => {
            format!("in a {resource} that targets the Service")
        }
        SettingKind::Policy => format!("in a {resource} that targets the Gateway or the route"),
    };
    format!("{assignment} {place}")
}

/// Rewrites `findings` for a configuration `recognized` rendered: each names
/// the controller setting to change, file fixes are withdrawn (the controller
/// would overwrite the file), and findings inside the controller's own
/// servers are dropped. Returns lines for the output's assumptions.
pub fn attribute(
    model: &Model,
    recognized: &Recognized,
    findings: &mut Vec<Finding>,
) -> Vec<String> {
    let mut notes = vec![format!(
        "generated by {} (recognized from {}): findings name the controller setting to change, since the controller rewrites this file; {} is the newest release upkeep has data for",
        recognized.controller.display(),
        recognized.evidence,
        recognized.release.release
    )];
    let internal = internal_servers(model, recognized);
    let before = findings.len();
    findings.retain(|f| {
        !f.primary.is_some_and(|p| {
            internal
                .iter()
                .any(|s| s.file == p.file && s.start <= p.start && p.end <= s.end)
        })
    });
    let dropped = before - findings.len();
    if dropped > 0 {
        notes.push(format!(
            "{dropped} finding{} in the servers {} keeps for itself (health checks, status, fallbacks) not reported",
            if dropped == 1 { "" } else { "s" },
            recognized.controller.display()
        ));
    }
    let generator = recognized.name();
    for f in findings.iter_mut() {
        let settings = target(f.rule, recognized.controller).map(|t| {
            let value = fixed_value(f, t.directive);
            (settings_for(recognized, &t), value, t)
        });
        f.fix = None;
        // Group lines speak of file edits (`upkeep fix` sets …): each
        // finding shows its own help instead.
        f.group = None;
        match settings {
            Some((settings, value, t)) if !settings.is_empty() => {
                let main = settings[0];
                // Turning a pool back on: the controller's own default size.
                let turns_pool_on = matches!(f.rule, "U001" | "U003" | "U005");
                let value = if turns_pool_on {
                    main.default
                        .filter(|d| *d != "0")
                        .map(str::to_string)
                        .or(value)
                        .or_else(|| Some("32".into()))
                } else {
                    value
                };
                let shown = value
                    .as_deref()
                    .and_then(|v| in_unit(v, main.unit, t.round_up));
                let mut help = format!(
                    "{} ({generator} writes `{}` from it and rewrites this file on every change)",
                    how_to_set(main, shown.as_deref()),
                    t.directive
                );
                let others: Vec<String> = settings[1..]
                    .iter()
                    .map(|s| how_to_set(s, shown.as_deref()))
                    .collect();
                if !others.is_empty() {
                    help.push_str(&format!("; for one Ingress only: {}", others.join(", or ")));
                }
                if shown.is_none() && main.unit == SettingUnit::Seconds && value.is_some() {
                    help.push_str(&format!(
                        "; `{}` takes whole seconds and cannot express {}: lengthen the backend's idle timeout instead",
                        main.setting,
                        value.as_deref().unwrap_or_default()
                    ));
                }
                // The rule's own help is a file edit: replaced, not kept.
                f.help = Some(help);
                f.managed = Some(Box::new(ManagedSetting {
                    generator: generator.clone(),
                    kind: main.kind.describe().to_string(),
                    setting: main.setting.to_string(),
                    value: shown,
                }));
            }
            other => {
                let what = other
                    .map(|(_, _, t)| format!("`{}` here", t.directive))
                    .unwrap_or_else(|| "this".to_string());
                let old = f.help.take().unwrap_or_default();
                f.help = Some(format!(
                    "no ConfigMap key, annotation or policy field of {generator} writes {what}, and an edit to this file is lost at the controller's next sync (a custom template or snippet is the way left); what the rendered configuration should say: {old}"
                ));
            }
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_round_the_safe_way() {
        assert_eq!(
            in_unit("1800ms", SettingUnit::Seconds, false).as_deref(),
            Some("1")
        );
        assert_eq!(
            in_unit("66s", SettingUnit::Seconds, true).as_deref(),
            Some("66")
        );
        assert_eq!(
            in_unit("60500ms", SettingUnit::Seconds, true).as_deref(),
            Some("61")
        );
        assert_eq!(in_unit("900ms", SettingUnit::Seconds, false), None);
        assert_eq!(
            in_unit("1800ms", SettingUnit::Duration, false).as_deref(),
            Some("1800ms")
        );
    }
}
