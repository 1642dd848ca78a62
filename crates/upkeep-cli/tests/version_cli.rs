//! `upkeep --version` names the nginx versions whose defaults are modelled.

mod common;

use common::{text, upkeep};
use upkeep_facts::{landmarks, NginxVersion};

#[test]
fn version_states_the_modelled_nginx_versions() {
    let out = upkeep(&["--version"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!("upkeep {}\n", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    for v in [
        landmarks::UPSTREAM_KEEPALIVE_MODULE,
        landmarks::KEEPALIVE_REQUESTS_1000,
        landmarks::KEEPALIVE_BY_DEFAULT,
    ] {
        assert!(stdout.contains(&v.to_string()), "{v} missing: {stdout}");
    }
    assert!(
        stdout.contains(&format!(
            "assumed when neither given nor detected: {}",
            NginxVersion::DEFAULT_ASSUMED
        )),
        "{stdout}"
    );
    // -V stays one line.
    let short = text(&upkeep(&["-V"]).stdout);
    assert_eq!(short.lines().count(), 1, "{short}");
}
