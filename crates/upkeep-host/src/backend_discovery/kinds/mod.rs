//! Recognizing the server behind a listening socket from its executable
//! and arguments, and reading its idle timeout and request cap from where
//! that server takes them (arguments, environment, configuration files),
//! falling back to the server's documented default (upkeep-facts'
//! backend profiles). Every number says where it came from.

mod apache;
mod dotnet;
mod go;
mod java;
mod nginx;
mod node;
mod php_fpm;
mod python;
mod ruby;

use super::proc_info::ProcessInfo;
use super::Endpoint;

/// One value and where it came from ("--keep-alive 7 from argv",
/// "gunicorn default 2s, profile gunicorn").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: String,
}

impl<T> Sourced<T> {
    pub fn new(value: T, source: impl Into<String>) -> Sourced<T> {
        Sourced {
            value,
            source: source.into(),
        }
    }
}

/// What a listening process was recognized as, and what it does with
/// idle and reused connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recognition {
    /// What it is, for people: `gunicorn`, `php-fpm`, `Apache httpd`.
    pub kind: &'static str,
    /// The backend profile its defaults come from (`upkeep profiles`).
    pub profile: Option<&'static str>,
    pub version: Option<String>,
    /// How long it keeps an idle connection: `Some(None)` when it keeps
    /// them forever or never keeps them; `None` when not known.
    pub idle_timeout_ms: Option<Sourced<Option<u64>>>,
    /// Requests per connection before it closes; `Some(None)` unlimited.
    pub max_requests: Option<Sourced<Option<u64>>>,
    /// Connections (or requests) it serves at once (php-fpm's
    /// `pm.max_children`).
    pub max_connections: Option<Sourced<u64>>,
    pub announces_close: Option<bool>,
    /// Whether what was found may stand for the backend in the rules. Not
    /// when the idle timeout is set in the program's code and the default
    /// would hide a shorter one (a Go program).
    pub feeds_rules: bool,
    pub notes: Vec<String>,
}

impl Recognition {
    pub fn new(kind: &'static str, profile: Option<&'static str>) -> Recognition {
        Recognition {
            kind,
            profile,
            version: None,
            idle_timeout_ms: None,
            max_requests: None,
            max_connections: None,
            announces_close: None,
            feeds_rules: true,
            notes: Vec::new(),
        }
    }

    /// Fills what is still unknown from the profile's defaults, saying so.
    pub fn with_profile_defaults(mut self) -> Recognition {
        let Some(p) = self.profile.and_then(upkeep_facts::backend_profile) else {
            return self;
        };
        if self.idle_timeout_ms.is_none() {
            let text = match p.idle_timeout_ms {
                Some(ms) => upkeep_facts::describe_duration(ms),
                None => "no idle timeout".to_string(),
            };
            self.idle_timeout_ms = Some(Sourced::new(
                p.idle_timeout_ms,
                format!("{} default {text}, profile {}", self.kind, p.name),
            ));
        }
        if self.max_requests.is_none() {
            let text = match p.max_requests {
                Some(n) => format!("{n} requests per connection"),
                None => "no request cap per connection".to_string(),
            };
            self.max_requests = Some(Sourced::new(
                p.max_requests,
                format!("{} default {text}, profile {}", self.kind, p.name),
            ));
        }
        if self.announces_close.is_none() {
            self.announces_close = p.announces_close;
        }
        self
    }
}

/// Whole or fractional seconds (`7`, `2.5`) as milliseconds.
pub fn seconds_ms(text: &str) -> Option<u64> {
    let s: f64 = text.trim().trim_matches(['"', '\'']).parse().ok()?;
    (s.is_finite() && s >= 0.0).then(|| (s * 1000.0).round() as u64)
}

/// Recognizes `p`, listening on `endpoint`. `None`: not a server upkeep
/// knows.
pub fn recognize(p: &ProcessInfo, endpoint: &Endpoint) -> Option<Recognition> {
    let title = p.command();
    // Servers that set their process title first: the title is all that
    // is left of their arguments.
    if let Some(r) = nginx::recognize(p, &title, endpoint) {
        return Some(r);
    }
    if let Some(r) = php_fpm::recognize(p, &title, endpoint) {
        return Some(r);
    }
    if let Some(r) = ruby::recognize(p, &title) {
        return Some(r);
    }
    if let Some(r) = python::recognize(p, &title) {
        return Some(r);
    }
    if let Some(r) = node::recognize(p) {
        return Some(r);
    }
    if let Some(r) = apache::recognize(p) {
        return Some(r);
    }
    if let Some(r) = java::recognize(p, endpoint) {
        return Some(r);
    }
    if let Some(r) = dotnet::recognize(p) {
        return Some(r);
    }
    go::recognize(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(seconds_ms("7"), Some(7000));
        assert_eq!(seconds_ms("2.5"), Some(2500));
        assert_eq!(seconds_ms("\"5\""), Some(5000));
        assert_eq!(seconds_ms("-1"), None);
        assert_eq!(seconds_ms("x"), None);
    }

    #[test]
    fn profile_defaults_say_where_they_come_from() {
        let r = Recognition::new("gunicorn", Some("gunicorn")).with_profile_defaults();
        let idle = r.idle_timeout_ms.unwrap();
        assert_eq!(idle.value, Some(2000));
        assert_eq!(idle.source, "gunicorn default 2s, profile gunicorn");
    }
}
