//! Values nginx refuses in the directives the model reads.
//!
//! `nginx -t` stops at the first directive whose value it cannot read
//! (`keepalive abc;`, `keepalive_timeout 9223372036854776s;`): such a
//! configuration never runs, and no verdict may be drawn from what the value
//! would have been. [`first_refused_value`] finds that directive in nginx's
//! reading order (includes expanded); [`check_values`] turns it into the
//! load error `check` and `fix` stop at. The readers and messages are
//! upkeep-facts' (`ngx_atoi`, `ngx_parse_time`, checked with nginx 1.22).

use upkeep_config::{ConfigSet, LoadError};
use upkeep_facts::{arity, refusal, value_kind, ValueContext, ValueKind};
use upkeep_syntax::{Directive, Node, Span};

use crate::blocks::BlockKind;
use crate::model::classify;
use crate::source::ConfigSource;

/// A directive nginx refuses: a value it cannot read, or a second
/// directive of a kind a block takes once.
#[derive(Clone, Debug)]
pub struct RefusedValue<'a> {
    pub directive: &'a Directive,
    /// Index into the directive's arguments; `None` when the directive
    /// itself is refused (a duplicate).
    pub arg: Option<usize>,
    /// `nginx -t`'s message, without the ` in FILE:LINE` it appends.
    pub message: String,
}

impl RefusedValue<'_> {
    /// The refused argument, or the refused directive's name.
    pub fn span(&self) -> Span {
        // `arg` indexes the refused directive's arguments.
        let word = self.arg.and_then(|i| self.directive.arg(i));
        word.unwrap_or_else(|| self.directive.name()).span()
    }
}

/// The first directive (in nginx's reading order) with a value nginx
/// refuses, among the directives whose values the model reads.
pub fn first_refused_value(source: &dyn ConfigSource) -> Option<RefusedValue<'_>> {
    walk(source, source.root_nodes(), source.root_kind())
}

/// [`first_refused_value`] as a load error at the value.
pub fn check_values(set: &ConfigSet) -> Result<(), LoadError> {
    match first_refused_value(set) {
        Some(r) => {
            let span = r.span();
            Err(LoadError::refused_value(
                set.file(span.file),
                span,
                r.message,
            ))
        }
        None => Ok(()),
    }
}

fn value_context(kind: BlockKind) -> Option<ValueContext> {
    match kind {
        BlockKind::Main => Some(ValueContext::Main),
        BlockKind::Events => Some(ValueContext::Events),
        BlockKind::Upstream => Some(ValueContext::Upstream),
        k if k.is_http_level() => Some(ValueContext::Http),
        _ => None,
    }
}

fn walk<'a>(
    source: &'a dyn ConfigSource,
    nodes: &'a [Node],
    kind: BlockKind,
) -> Option<RefusedValue<'a>> {
    let context = value_context(kind);
    // Directives read by a `ngx_conf_set_*_slot` or a handler like it take
    // one line per block: nginx refuses a second one as "is duplicate"
    // before it reads its value (checked with nginx 1.22 for each of
    // them; an upstream's `server` lines are many by design).
    let mut seen: Vec<&'a [u8]> = Vec::new();
    for node in source.expand_nodes(nodes) {
        let Node::Directive(d) = node else { continue };
        if let Some(body) = d.block() {
            if let Some(child) = classify(kind, d) {
                if body.verbatim().is_none() {
                    if let Some(r) = walk(source, &body.nodes, child) {
                        return Some(r);
                    }
                }
            }
            continue;
        }
        let Some(context) = context else { continue };
        let once =
            value_kind(context, &d.name().text()).is_some_and(|k| k != ValueKind::UpstreamServer);
        if once {
            if seen.contains(&d.name().value()) {
                return Some(RefusedValue {
                    directive: d,
                    arg: None,
                    message: format!("\"{}\" directive is duplicate", d.name().text()),
                });
            }
            seen.push(d.name().value());
        }
        if let Some(r) = refused(context, d) {
            return Some(r);
        }
    }
    None
}

fn refused(context: ValueContext, d: &Directive) -> Option<RefusedValue<'_>> {
    let name = d.name().text();
    let kind = value_kind(context, &name)?;
    let (least, most) = arity(kind);
    if d.args().len() < least || d.args().len() > most {
        return Some(RefusedValue {
            directive: d,
            arg: None,
            message: format!("invalid number of arguments in \"{name}\" directive"),
        });
    }
    let args: Vec<std::borrow::Cow<'_, str>> = d.args().iter().map(|w| w.text()).collect();
    let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
    let r = refusal(kind, &name, &args)?;
    Some(RefusedValue {
        directive: d,
        arg: Some(r.arg),
        message: r.message,
    })
}
