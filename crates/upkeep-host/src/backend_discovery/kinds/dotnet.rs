//! .NET (Kestrel): the `dotnet` host, or a self-contained app that maps
//! `libcoreclr.so`. `Kestrel__Limits__KeepAliveTimeout` in the
//! environment overrides the default (ASP.NET Core reads configuration
//! from environment variables, `__` separating sections).

use super::{Recognition, Sourced};
use crate::backend_discovery::proc_info::ProcessInfo;

pub fn recognize(p: &ProcessInfo) -> Option<Recognition> {
    let dotnet = p.exe_name() == "dotnet"
        || std::fs::read_to_string(format!("/proc/{}/maps", p.pid))
            .is_ok_and(|m| m.contains("/libcoreclr.so"));
    if !dotnet {
        return None;
    }
    let mut r = Recognition::new(".NET Kestrel", Some("kestrel"));
    for key in [
        "Kestrel__Limits__KeepAliveTimeout",
        "ASPNETCORE_Kestrel__Limits__KeepAliveTimeout",
    ] {
        if let Some(v) = p.env(key) {
            if let Some(ms) = timespan_ms(v) {
                r.idle_timeout_ms = Some(Sourced::new(
                    Some(ms),
                    format!("{key}={v} from the environment"),
                ));
            }
        }
    }
    r.notes
        .push("a limit set in the program's code or appsettings.json is not read".into());
    Some(r.with_profile_defaults())
}

/// A .NET TimeSpan as configuration binds it: `hh:mm:ss[.fff]` or
/// `d.hh:mm:ss`.
fn timespan_ms(v: &str) -> Option<u64> {
    let parts: Vec<&str> = v.trim().split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        return None;
    };
    let (days, hours) = match h.split_once('.') {
        Some((d, h)) => (d.parse::<u64>().ok()?, h.parse::<u64>().ok()?),
        None => (0, h.parse::<u64>().ok()?),
    };
    let secs: f64 = s.parse().ok()?;
    let total = (days * 24 + hours) * 3600 + m.parse::<u64>().ok()? * 60;
    Some(total * 1000 + (secs * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timespans() {
        assert_eq!(super::timespan_ms("00:02:10"), Some(130_000));
        assert_eq!(super::timespan_ms("00:00:05.5"), Some(5500));
        assert_eq!(super::timespan_ms("1.00:00:00"), Some(86_400_000));
        assert_eq!(super::timespan_ms("30"), None);
    }
}
