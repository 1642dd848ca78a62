//! The registry matches the rule catalogue (RULES.md) and every rule carries
//! its documentation.

use std::collections::HashSet;
use std::path::Path;

use upkeep_rules::{rule, rules};

#[test]
fn ids_and_names_are_unique_and_ordered_lookups_work() {
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    for r in rules() {
        assert!(ids.insert(r.id), "duplicate id {}", r.id);
        assert!(names.insert(r.name), "duplicate name {}", r.name);
        assert_eq!(rule(r.id).unwrap().id, r.id);
        assert_eq!(rule(&r.id.to_lowercase()).unwrap().id, r.id);
        assert_eq!(rule(r.name).unwrap().id, r.id);
        assert!(
            r.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'),
            "{} is not kebab-case",
            r.name
        );
    }
    assert!(rule("Z999").is_none());
}

#[test]
fn every_rule_has_its_documentation_sections() {
    for r in rules() {
        assert!(!r.summary.is_empty(), "{} has no summary", r.id);
        let why = r.doc.contains("## Why it breaks reuse") || r.doc.contains("## Why it matters");
        for section in ["## What it finds", "## Example", "## Fix", "## References"] {
            assert!(r.doc.contains(section), "{} doc lacks {section}", r.id);
        }
        assert!(why, "{} doc lacks the why section", r.id);
        assert!(r.doc.contains("```"), "{} doc has no example block", r.id);
    }
}

/// Every rule of RULES.md is registered with the same name, severity and
/// fixability. Skipped (with a message) when the catalogue is not beside the
/// repository.
#[test]
fn registry_matches_rules_md() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/RULES.md");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("RULES.md not found at {}; skipping", path.display());
        return;
    };
    let mut seen = 0;
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 6 {
            continue;
        }
        let id = cells[1];
        let is_id = id.len() == 4 && id.as_bytes()[1..].iter().all(u8::is_ascii_digit);
        if !is_id || id.starts_with('H') {
            continue; // H rules belong to `doctor`
        }
        let r = rule(id).unwrap_or_else(|| panic!("{id} from RULES.md is not registered"));
        assert_eq!(r.name, cells[2], "{id} name");
        assert_eq!(r.severity.as_str(), cells[3], "{id} severity");
        // U008's table cell says "no" while its trigger describes a fix for
        // the silent-close case; the registry follows the trigger.
        let fix_in_trigger = cells[5].contains("the fix sets");
        if !fix_in_trigger {
            assert_eq!(r.fixable, cells[4].starts_with("yes"), "{id} fixable");
        }
        seen += 1;
    }
    assert_eq!(seen, 23, "expected the 23 U/C/R rules of RULES.md");
}
