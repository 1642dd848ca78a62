//! Ruby servers, which replace their arguments with a title: Puma
//! (`puma 6.4.2 (tcp://0.0.0.0:3000) [app]`, workers `puma: cluster worker
//! 0: …`) and Unicorn (`unicorn master -c config/unicorn.rb …`).

use super::{seconds_ms, Recognition, Sourced};
use crate::backend_discovery::proc_info::{option_value, ProcessInfo};

pub fn recognize(p: &ProcessInfo, title: &str) -> Option<Recognition> {
    if title.starts_with("unicorn master") || title.starts_with("unicorn worker") {
        let r = Recognition::new("unicorn", Some("unicorn"));
        return Some(r.with_profile_defaults());
    }
    let is_puma = title.starts_with("puma ") || title.starts_with("puma: ");
    if !is_puma {
        return None;
    }
    let version = title
        .strip_prefix("puma ")
        .and_then(|t| t.split_whitespace().next())
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_string);
    let major: Option<u32> = version
        .as_deref()
        .and_then(|v| v.split('.').next()?.parse().ok());
    // Puma 7 changed the defaults (facts: persistent_timeout 65 s and
    // max_keep_alive 999; 20 s and no cap before).
    let profile = match major {
        Some(m) if m < 7 => "puma6",
        _ => "puma",
    };
    let mut r = Recognition::new("puma", Some(profile));
    if version.is_none() {
        r.notes
            .push("version not in the process title: Puma 7 defaults assumed".into());
    }
    r.version = version;
    if let Some(v) = p.env("PUMA_PERSISTENT_TIMEOUT") {
        if let Some(ms) = seconds_ms(v) {
            r.idle_timeout_ms = Some(Sourced::new(
                Some(ms),
                format!("PUMA_PERSISTENT_TIMEOUT={v} from the environment"),
            ));
        }
    }
    // The configuration: `-C FILE` when the arguments survive, else the
    // files Puma loads by default from its directory.
    let candidates: Vec<String> = match option_value(&p.argv, &["-C", "--config"]) {
        Some(c) => vec![c.to_string()],
        None => {
            let env = p
                .env("RACK_ENV")
                .or_else(|| p.env("RAILS_ENV"))
                .unwrap_or("development");
            vec![format!("config/puma/{env}.rb"), "config/puma.rb".into()]
        }
    };
    if let Some((path, text)) = candidates.iter().find_map(|c| {
        let path = p.resolve(c);
        std::fs::read_to_string(p.in_root(&path))
            .ok()
            .map(|t| (path, t))
    }) {
        for (i, line) in text.lines().enumerate() {
            let mut words = line.split('#').next().unwrap_or("").split_whitespace();
            let (Some(key), Some(value)) = (words.next(), words.next()) else {
                continue;
            };
            let value = value.trim_matches(['(', ')']);
            let place = format!("{key} {value} in {}:{}", path.display(), i + 1);
            match key {
                "persistent_timeout" if r.idle_timeout_ms.is_none() => {
                    if let Some(ms) = seconds_ms(value) {
                        r.idle_timeout_ms = Some(Sourced::new(Some(ms), place));
                    }
                }
                "max_keep_alive" => {
                    if let Ok(n) = value.parse() {
                        r.max_requests = Some(Sourced::new(Some(n), place));
                    }
                }
                _ => {}
            }
        }
    }
    Some(r.with_profile_defaults())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puma_version_picks_the_profile_and_config_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("config")).unwrap();
        std::fs::write(
            dir.path().join("config/puma.rb"),
            "workers 2\npersistent_timeout 30 # behind nginx\n",
        )
        .unwrap();
        let title = "puma 6.4.2 (tcp://127.0.0.1:3000) [app]";
        let p = ProcessInfo {
            pid: std::process::id() as i32,
            argv: vec![title.into()],
            cwd: Some(dir.path().to_path_buf()),
            ..ProcessInfo::default()
        };
        let r = recognize(&p, title).unwrap();
        assert_eq!(r.profile, Some("puma6"));
        let idle = r.idle_timeout_ms.unwrap();
        assert_eq!(idle.value, Some(30_000));
        assert!(
            idle.source.starts_with("persistent_timeout 30 in "),
            "{}",
            idle.source
        );

        let p = ProcessInfo {
            argv: vec!["puma 7.0.1 (tcp://0.0.0.0:3000) [x]".into()],
            ..ProcessInfo::default()
        };
        let r = recognize(&p, &p.command()).unwrap();
        assert_eq!(r.idle_timeout_ms.unwrap().value, Some(65_000));
        assert_eq!(r.max_requests.unwrap().value, Some(999));
        let u = recognize(&p, "unicorn master -c config/unicorn.rb").unwrap();
        assert_eq!(u.max_requests.unwrap().value, Some(1));
    }
}
