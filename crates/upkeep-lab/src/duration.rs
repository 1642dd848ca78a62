//! Durations in nginx's syntax (`500ms`, `5s`, `1m30s`), for flags and output;
//! a `Duration`-typed face over upkeep-facts' parser and formatter.

use std::time::Duration;

pub fn parse(text: &str) -> Result<Duration, String> {
    upkeep_facts::parse_duration(text).map(Duration::from_millis)
}

pub fn format(d: Duration) -> String {
    upkeep_facts::format_duration(d.as_millis() as u64)
}
