use upkeep_diag::{Applicability, Finding, Fix, Severity};

use crate::context::Ctx;
use crate::registry::RuleInfo;
use crate::suppress::Suppression;

pub const INFO: RuleInfo = RuleInfo {
    id: "X001",
    name: "unused-ignore",
    severity: Severity::Info,
    fixable: true,
    summary: "An `# upkeep: ignore` comment suppresses no finding.",
    doc: r#"## What it finds
An `# upkeep: ignore RULE reason` comment whose directive or block has no
finding of that rule (any more).

## Why it matters
Ignore comments outlive the problem they silenced. A stale one would hide a
future, real finding at the same place without anyone noticing.

## Example
```nginx
# upkeep: ignore U001 batch jobs, one request per connection anyway
upstream batch { server 10.0.0.5:8080; keepalive 8; }
```
The upstream has a pool now, so the comment silences nothing.

## Fix
Delete the comment (the automatic fix does).

## References
upkeep's own suppression mechanism; see `upkeep explain` for the rule named
in the comment.
"#,
};

/// Nothing to do here: the check driver reports unused ignores after all
/// rules ran (see `lib.rs`).
pub fn check(_ctx: &Ctx) -> Vec<Finding> {
    Vec::new()
}

pub(crate) fn unused(ctx: &Ctx, s: &Suppression) -> Finding {
    let file = ctx.file(s.comment);
    let line = file.line_col(s.comment.start).line;
    let start = file.line_start(line);
    let line_text = file.line_bytes(line);
    let whole_line = line_text
        .iter()
        .take((s.comment.start - start) as usize)
        .all(|b| *b == b' ' || *b == b'\t');
    let span = if whole_line {
        let end = file.line_start(line + 1).max(s.comment.end);
        upkeep_syntax::Span::new(s.comment.file, start, end)
    } else {
        s.comment
    };
    INFO.finding(format!(
        "this ignore comment suppresses nothing: no {} finding in the directive it applies to",
        s.rules.join("/")
    ))
    .at(s.comment)
    .with_label("unused ignore")
    .related(s.ranges[0], "the directive it applies to")
    .help("delete the comment")
    .with_fix(Fix {
        applicability: Applicability::Safe,
        description: "delete the unused ignore comment".into(),
        edits: vec![upkeep_diag::Edit::delete(span)],
    })
}
