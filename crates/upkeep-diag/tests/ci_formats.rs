//! The formats CI systems read: GitHub workflow commands, GitLab Code
//! Quality JSON and JUnit XML. Each is read back the way its consumer reads
//! it (the runner's command syntax, JSON fields GitLab requires, an XML
//! parser) rather than only compared with a snapshot.

mod common;

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use upkeep_diag::render::{github, gitlab, junit};
use upkeep_diag::{Finding, Report, Severity};
use upkeep_syntax::{FileId, SourceFile};

fn report<'a>(findings: &'a [Finding], files: &'a common::Files) -> Report<'a> {
    let mut report = Report::new(findings, files);
    report.base_dir = Some("/etc/nginx");
    report
}

/// A workflow command as the Actions runner parses it: `::name
/// k=v,k=v::data`, with percent-encoded values decoded.
#[derive(Debug)]
struct Command {
    name: String,
    props: BTreeMap<String, String>,
    data: String,
}

fn unescape(s: &str) -> String {
    s.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

fn parse_command(line: &str) -> Command {
    let rest = line.strip_prefix("::").expect("starts with ::");
    let end = rest.find("::").expect("command ends with ::");
    let (head, data) = (&rest[..end], &rest[end + 2..]);
    let (name, props) = head.split_once(' ').unwrap_or((head, ""));
    let props = props
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').expect("key=value");
            (k.to_string(), unescape(v))
        })
        .collect();
    assert!(!line.contains('\n') && !line.contains('\r'));
    Command {
        name: name.to_string(),
        props,
        data: unescape(data),
    }
}

#[test]
fn github_annotations_snapshot() {
    let files = common::files();
    let findings = common::findings(&files);
    insta::assert_snapshot!(github::render(&report(&findings, &files)));
}

#[test]
fn github_annotations_read_back_as_the_runner_reads_them() {
    let files = common::files();
    let findings = common::findings(&files);
    let text = github::render(&report(&findings, &files));
    let commands: Vec<Command> = text.lines().map(parse_command).collect();
    assert_eq!(commands.len(), 3);

    // Sorted by file, then position: nginx.conf's R003 first.
    let r003 = &commands[0];
    assert_eq!(r003.name, "notice");
    assert_eq!(r003.props["file"], "nginx.conf");
    assert_eq!(r003.props["line"], "1");
    assert_eq!(r003.props["col"], "1");
    assert_eq!(r003.props["endLine"], "1");
    // `user www-data;` is 14 characters: the last one is in column 14.
    assert_eq!(r003.props["endColumn"], "14");
    assert_eq!(r003.props["title"], "R003 no-worker-shutdown-timeout");

    // The upstream block spans three lines: no columns' end, endLine 3.
    let u001 = &commands[1];
    assert_eq!(u001.name, "warning");
    assert_eq!(u001.props["file"], "conf.d/app.conf");
    assert_eq!(u001.props["line"], "1");
    assert_eq!(u001.props["endLine"], "3");
    assert!(!u001.props.contains_key("endColumn"));
    assert!(u001
        .data
        .starts_with("upstream `app` keeps no idle connections"));
    assert!(u001
        .data
        .contains("\nhelp: add `keepalive 32;` to the upstream block"));

    let u004 = &commands[2];
    assert_eq!(u004.name, "error");
    assert_eq!(u004.props["line"], "8");
    assert!(u004
        .data
        .contains("\nnginx.conf:4:5: this setting no longer applies to location /api/"));
}

#[test]
fn github_escapes_what_would_end_a_property_or_the_command() {
    let text = "server { }\n";
    let files = common::Files(vec![SourceFile::new(
        FileId(0),
        "/srv/a,b:c%d.conf",
        text.as_bytes().to_vec(),
    )]);
    let findings = vec![Finding::new(
        "U001",
        "upstream-without-keepalive",
        Severity::Warning,
        "100% of requests\r\nopen a connection: a, b",
    )
    .at(common::span_of(&files, 0, "server"))];
    let mut r = Report::new(&findings, &files);
    r.base_dir = Some("/srv");
    let out = github::render(&r);
    assert_eq!(
        out,
        "::warning file=a%2Cb%3Ac%25d.conf,line=1,col=1,endLine=1,endColumn=6,\
         title=U001 upstream-without-keepalive::100%25 of requests%0D%0Aopen a connection: a, b\n"
    );
    let cmd = parse_command(out.trim_end());
    assert_eq!(cmd.props["file"], "a,b:c%d.conf");
    assert_eq!(cmd.data, "100% of requests\r\nopen a connection: a, b");
}

#[test]
fn github_finding_without_a_place_has_no_file() {
    let files = common::files();
    let findings = vec![Finding::new(
        "L001",
        "upstream-prematurely-closed",
        Severity::Error,
        "12 upstream connections closed while reading the response header",
    )];
    let out = github::render(&report(&findings, &files));
    let cmd = parse_command(out.trim_end());
    assert_eq!(cmd.name, "error");
    assert!(!cmd.props.contains_key("file"));
    assert_eq!(cmd.props["title"], "L001 upstream-prematurely-closed");
}

#[test]
fn gitlab_code_quality_has_the_required_fields() {
    let files = common::files();
    let findings = common::findings(&files);
    let out = gitlab::render(&report(&findings, &files));
    let issues: Value = serde_json::from_str(&out).unwrap();
    let issues = issues.as_array().expect("a JSON array");
    assert_eq!(issues.len(), 3);
    let mut fingerprints = HashSet::new();
    for issue in issues {
        for key in ["description", "check_name", "fingerprint", "severity"] {
            assert!(issue[key].is_string(), "{key} missing in {issue}");
        }
        assert!(issue["location"]["path"].is_string());
        assert!(issue["location"]["lines"]["begin"].as_u64().unwrap() >= 1);
        assert!(["info", "minor", "major", "critical", "blocker"]
            .contains(&issue["severity"].as_str().unwrap()));
        assert!(fingerprints.insert(issue["fingerprint"].as_str().unwrap().to_string()));
    }
    let u001 = &issues[1];
    assert_eq!(u001["check_name"], "U001");
    assert_eq!(u001["severity"], "minor");
    assert_eq!(u001["location"]["path"], "conf.d/app.conf");
    assert_eq!(u001["location"]["lines"]["begin"], 1);
    assert_eq!(u001["location"]["lines"]["end"], 3);
    assert_eq!(issues[2]["severity"], "major");
    insta::assert_snapshot!(out);
}

#[test]
fn gitlab_fingerprints_survive_lines_added_above_and_stay_unique() {
    let shifted_text = format!("# a comment added above\n\n{}", common::APP);
    let mk = |app: &str| {
        common::Files(vec![
            SourceFile::new(
                FileId(0),
                "/etc/nginx/nginx.conf",
                common::MAIN.as_bytes().to_vec(),
            ),
            SourceFile::new(
                FileId(1),
                "/etc/nginx/conf.d/app.conf",
                app.as_bytes().to_vec(),
            ),
        ])
    };
    let before = mk(common::APP);
    let after = mk(&shifted_text);
    let fp = |files: &common::Files| -> Vec<String> {
        let findings = common::findings(files);
        let v: Value = serde_json::from_str(&gitlab::render(&report(&findings, files))).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["fingerprint"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(fp(&before), fp(&after));

    // The same finding twice at the same text: two fingerprints.
    let files = common::files();
    let one = common::findings(&files).remove(0);
    let twice = vec![one.clone(), one];
    let v: Value = serde_json::from_str(&gitlab::render(&report(&twice, &files))).unwrap();
    assert_ne!(v[0]["fingerprint"], v[1]["fingerprint"]);
}

#[test]
fn junit_parses_and_counts_one_failure_per_finding() {
    let files = common::files();
    let findings = common::findings(&files);
    let out = junit::render(&report(&findings, &files));
    let doc = roxmltree::Document::parse(&out).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("3"));
    assert_eq!(root.attribute("failures"), Some("3"));
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    let names: Vec<_> = suites
        .iter()
        .map(|s| s.attribute("name").unwrap())
        .collect();
    assert_eq!(names, ["nginx.conf", "conf.d/app.conf"]);
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 3);
    let u004 = cases[2];
    assert_eq!(
        u004.attribute("name"),
        Some("U004 proxy-set-header-inheritance-lost at conf.d/app.conf:8:9")
    );
    let failure = u004.children().find(|n| n.has_tag_name("failure")).unwrap();
    assert_eq!(failure.attribute("type"), Some("error"));
    // The quotes of `Connection ""` survive the round trip through XML.
    assert!(failure
        .attribute("message")
        .unwrap()
        .contains("including `Connection \"\"`"));
    assert!(failure
        .text()
        .unwrap()
        .contains("help: repeat the lost headers"));
    insta::assert_snapshot!(out);
}

#[test]
fn junit_clean_run_is_one_passing_case_and_garbage_stays_well_formed() {
    let files = common::files();
    let out = junit::render(&report(&[], &files));
    let doc = roxmltree::Document::parse(&out).unwrap();
    assert_eq!(doc.root_element().attribute("failures"), Some("0"));
    let cases = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .count();
    assert_eq!(cases, 1);

    let findings = vec![Finding::new(
        "U001",
        "upstream-without-keepalive",
        Severity::Warning,
        "bytes \u{1}\u{7}<&>\u{0} from a binary file",
    )
    .at(common::span_of(&files, 0, "user"))];
    let out = junit::render(&report(&findings, &files));
    let doc = roxmltree::Document::parse(&out).expect("control characters do not break the XML");
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("bytes \u{FFFD}\u{FFFD}<&>\u{FFFD} from a binary file")
    );
}
