//! The host rules (RULES.md H001–H005): measured on a live host, not read
//! from the configuration. One file per rule, each with its metadata and
//! documentation ([`RuleInfo`], the type of upkeep-rules' registry) and an
//! `evaluate` over the [`Measured`] facts. Their findings have no config
//! span: the evidence is in their notes.
//!
//! `r001_live` is rule R001 with the master's real open-file limit in place
//! of `worker_rlimit_nofile`.

pub mod h001;
pub mod h002;
pub mod h003;
pub mod h004;
pub mod h005;
pub mod r001_live;

use upkeep_config::ConfigSet;
use upkeep_diag::Finding;
use upkeep_model::NginxVersion;
use upkeep_rules::RuleInfo;
use upkeep_syntax::{SourceMap, Span};

use crate::live_config::LiveConfig;
use crate::log_tail::LogEvidence;
use crate::process::Processes;
use crate::sampling::Sampling;
use crate::sysctl::Sysctls;

/// Every host rule, in ID order.
pub static INFOS: [RuleInfo; 5] = [h001::INFO, h002::INFO, h003::INFO, h004::INFO, h005::INFO];

/// A host rule by ID (`H003`, case-insensitive) or name.
pub fn rule(id_or_name: &str) -> Option<&'static RuleInfo> {
    INFOS
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(id_or_name) || r.name == id_or_name)
}

/// Everything measured, for the rules to judge.
pub struct Measured<'a> {
    pub config: &'a ConfigSet,
    pub version: NginxVersion,
    pub live: &'a LiveConfig,
    pub sampling: &'a Sampling,
    pub sysctls: &'a Sysctls,
    pub processes: Option<&'a Processes>,
    pub logs: Option<&'a LogEvidence>,
}

impl Measured<'_> {
    /// `file:line:col` of a span, for notes.
    pub fn place(&self, span: Span) -> String {
        let file = self.config.source(span.file);
        let lc = file.line_col(span.start);
        let main = &self.config.file(self.config.main).path;
        let base = main.rfind('/').map(|i| &main[..i]);
        let path = upkeep_diag::display_path(&file.path, base);
        format!("{path}:{}:{}", lc.line, lc.col)
    }
}

/// A finding with how much evidence stands behind it, for ranking.
#[derive(Clone, Debug)]
pub struct Ranked {
    pub finding: Finding,
    /// The measured quantity the finding rests on (sockets, lines,
    /// connections); 0 for static findings.
    pub evidence: u64,
    /// From the host (H rules, R001 with the real limit) rather than from
    /// the configuration alone.
    pub measured: bool,
}

/// `n` with a unit, singular or plural.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

pub(crate) fn seconds(d: std::time::Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Synthetic measurements for the rules' threshold tests.
#[cfg(test)]
pub(crate) mod fixture {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::time::Duration;

    use upkeep_config::{ConfigSet, LoadOptions, MemoryLoader};
    use upkeep_model::NginxVersion;

    use crate::live_config::LiveConfig;
    use crate::sampling::Sampling;
    use crate::sockets::{AddressCount, Census};
    use crate::sysctl::Sysctls;

    pub const VERSION: NginxVersion = NginxVersion::new(1, 22, 1);

    pub fn config(text: &str) -> ConfigSet {
        let mut loader = MemoryLoader::new();
        loader.insert("/etc/nginx/nginx.conf", text.as_bytes().to_vec());
        ConfigSet::load("/etc/nginx/nginx.conf", &loader, &LoadOptions::default()).unwrap()
    }

    pub fn live(config: &ConfigSet) -> LiveConfig {
        LiveConfig::of(config, VERSION)
    }

    /// A window of `polls` censuses that ended with `counts`.
    pub fn sampling(counts: &[(&str, AddressCount)], new: &[(&str, u64)], polls: u32) -> Sampling {
        let by_address: BTreeMap<SocketAddr, AddressCount> = counts
            .iter()
            .map(|(a, c)| (a.parse().unwrap(), *c))
            .collect();
        Sampling {
            elapsed: Duration::from_secs(5),
            polls,
            source: None,
            census_error: None,
            census_start: Census::default(),
            census_end: Census { by_address },
            peak_time_wait: BTreeMap::new(),
            new_connections: new.iter().map(|(a, n)| (a.parse().unwrap(), *n)).collect(),
            status: None,
            status_error: None,
        }
    }

    pub fn sysctls(range: (u16, u16)) -> Sysctls {
        Sysctls {
            ip_local_port_range: Some(range),
            tcp_tw_reuse: Some(2),
            ..Sysctls::default()
        }
    }
}
