use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;
use upkeep_syntax::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" | "warn" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

/// A secondary place that explains a finding ("the parent block whose headers
/// were lost").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// Replace the bytes of `span` with `content`. An insertion is an empty span.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Edit {
    pub span: Span,
    pub content: String,
}

impl Edit {
    pub fn insert(at: Span, content: impl Into<String>) -> Edit {
        Edit {
            span: Span::new(at.file, at.start, at.start),
            content: content.into(),
        }
    }

    pub fn replace(span: Span, content: impl Into<String>) -> Edit {
        Edit {
            span,
            content: content.into(),
        }
    }

    pub fn delete(span: Span) -> Edit {
        Edit {
            span,
            content: String::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Applicability {
    /// Keeps the config's meaning apart from the keep-alive behaviour fixed.
    Safe,
    /// Correct in the usual case, but changes behaviour someone may rely on;
    /// applied only when asked.
    Unsafe,
}

impl Applicability {
    pub fn as_str(self) -> &'static str {
        match self {
            Applicability::Safe => "safe",
            Applicability::Unsafe => "unsafe",
        }
    }
}

/// A set of edits applied whole or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    pub applicability: Applicability,
    /// One line saying what the fix does ("add `keepalive 32;` to upstream app").
    pub description: String,
    /// Sorted by position; non-overlapping.
    pub edits: Vec<Edit>,
}

/// The setting of the program that generated the configuration (a
/// Kubernetes ingress controller) that writes the directive a finding is
/// about. That program rewrites the file on every change, so the setting is
/// what to change, not the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedSetting {
    /// The generator and its release (`ingress-nginx 1.15.1`).
    pub generator: String,
    /// `ConfigMap key`, `Ingress annotation`, `policy field`.
    pub kind: String,
    /// `upstream-keepalive-timeout`.
    pub setting: String,
    /// The value to give it, when the rule knows one.
    pub value: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Stable rule ID, e.g. "U001".
    pub rule: &'static str,
    /// Kebab-case rule name, e.g. "upstream-without-keepalive".
    pub name: &'static str,
    pub severity: Severity,
    /// What is wrong here, in one sentence.
    pub message: String,
    /// Where; `None` for findings from logs or the host with no config place.
    pub primary: Option<Span>,
    /// The text under the primary span's underline.
    pub label: Option<String>,
    pub related: Vec<Label>,
    /// Further explanation lines ("assuming nginx 1.28.0", evidence counts).
    pub notes: Vec<String>,
    /// How to fix it, in one sentence.
    pub help: Option<String>,
    pub fix: Option<Fix>,
    /// Findings of one rule that share a group are one line in human output
    /// (the group's text, how many, where): the same note on two thousand
    /// upstreams would drown everything else. JSON and SARIF keep each
    /// finding, with the group named.
    /// One allocation shared by the findings that carry the same text (a
    /// large configuration gives tens of thousands of them).
    pub group: Option<Arc<str>>,
    /// Set when the configuration is generated: the generator's setting to
    /// change instead of the file (no file fix is offered then). Boxed:
    /// almost every finding has none, and each of them would otherwise
    /// carry its four strings' headers.
    pub managed: Option<Box<ManagedSetting>>,
}

impl Finding {
    pub fn new(
        rule: &'static str,
        name: &'static str,
        severity: Severity,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            rule,
            name,
            severity,
            message: exact(message.into()),
            primary: None,
            label: None,
            related: Vec::new(),
            notes: Vec::new(),
            help: None,
            fix: None,
            group: None,
            managed: None,
        }
    }

    pub fn at(mut self, span: Span) -> Self {
        self.primary = Some(span);
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(exact(label.into()));
        self
    }

    pub fn related(mut self, span: Span, message: impl Into<String>) -> Self {
        self.related.reserve_exact(1);
        self.related.push(Label {
            span,
            message: exact(message.into()),
        });
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.reserve_exact(1);
        self.notes.push(exact(note.into()));
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(exact(help.into()));
        self
    }

    /// Puts the finding in a summary group (see [`Finding::group`]).
    pub fn grouped(mut self, group: impl Into<String>) -> Self {
        self.group = Some(shared_group(group.into()));
        self
    }

    pub fn with_fix(mut self, mut fix: Fix) -> Self {
        fix.description = exact(fix.description);
        self.fix = Some(fix);
        self
    }
}

/// `s` without spare capacity. A rule's text is built with `format!`,
/// which leaves room to grow (up to as much again as the text); a finding
/// keeps its text until the report is printed, and a large configuration
/// has tens of thousands of findings. The text is copied rather than
/// shrunk in place: mimalloc keeps a block that would still be at least
/// half used, so `shrink_to_fit` frees nothing there.
fn exact(s: String) -> String {
    if s.capacity() == s.len() {
        s
    } else {
        s.as_str().to_owned()
    }
}

/// How many distinct group texts a thread remembers for sharing. Group
/// texts name a kind of backend, not a place, so a run has a handful; the
/// bound only keeps a long-running process (watch) from collecting them.
const SHARED_GROUPS: usize = 256;

thread_local! {
    static GROUPS: RefCell<HashSet<Arc<str>>> = RefCell::new(HashSet::new());
}

/// The group text, as the allocation already made for an equal text on
/// this thread if there is one (a rule gives the same group to thousands
/// of findings).
fn shared_group(text: String) -> Arc<str> {
    GROUPS.with(|groups| {
        let mut groups = groups.borrow_mut();
        if let Some(known) = groups.get(text.as_str()) {
            return Arc::clone(known);
        }
        if groups.len() >= SHARED_GROUPS {
            groups.clear();
        }
        let shared: Arc<str> = Arc::from(text);
        groups.insert(Arc::clone(&shared));
        shared
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_with_one_group_text_share_its_allocation() {
        let a = Finding::new("U007", "x", Severity::Info, "a").grouped(format!("group {}", 1));
        let b = Finding::new("U007", "x", Severity::Info, "b").grouped("group 1".to_string());
        let c = Finding::new("U007", "x", Severity::Info, "c").grouped("group 2");
        let (a, b, c) = (a.group.unwrap(), b.group.unwrap(), c.group.unwrap());
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*c, "group 2");
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[test]
    fn texts_and_lists_are_kept_at_their_exact_size() {
        let mut message = String::with_capacity(500);
        message.push_str("short");
        let f = Finding::new("U001", "x", Severity::Warning, message)
            .note("one note")
            .related(Span::default(), "here");
        assert_eq!(f.message.capacity(), f.message.len());
        assert_eq!(f.notes.capacity(), 1);
        assert_eq!(f.related.capacity(), 1);
    }
}
