use upkeep_diag::{Finding, Severity};

use crate::context::{CommentProblem, Ctx};
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "X002",
    name: "invalid-upkeep-comment",
    severity: Severity::Warning,
    fixable: false,
    summary: "An `# upkeep:` comment that upkeep cannot understand.",
    doc: r#"## What it finds
A comment starting with `# upkeep:` that is not a valid `ignore` or `backend`
declaration: an unknown rule ID, an unknown backend fact or profile, a bad
duration, or an ignore comment with nothing after it to apply to.

## Why it matters
Such a comment does nothing, so whatever it was meant to say (silence a rule,
declare the backend's idle timeout for U007/U008) silently does not happen.

## Example
```nginx
upstream app {
    # upkeep: backend idle=5 seconds
    server 127.0.0.1:8000;
}
```

## Fix
Write `# upkeep: ignore RULE reason` on the line before a directive or block,
or `# upkeep: backend idle=5s max-requests=100` (or a profile name such as
`gunicorn`) inside an upstream block. Durations use nginx's syntax
(`500ms`, `5s`, `1m30s`).

## References
`upkeep rules` lists rule IDs; `upkeep profiles` lists the backend profiles.
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    ctx.comment_problems.iter().map(problem).collect()
}

pub(crate) fn problem(p: &CommentProblem) -> Finding {
    INFO.finding(p.message.clone())
        .at(p.span)
        .with_label("not understood")
}
