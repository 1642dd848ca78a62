//! The one inheritance resolver: "the effective value of X at this block, and
//! where it was set, or the default of the target version".
//!
//! nginx merges each http level (http > server > location > nested location
//! or `if`) into the next one with two different rules (facts/behaviors.md §e,
//! directives.tsv column "inheritance"):
//!
//! * scalar directives (`ngx_conf_merge_*_value`): the nearest enclosing
//!   level that sets the directive wins;
//! * array directives (`proxy_set_header`, `fastcgi_param`, `grpc_set_header`…,
//!   `ngx_conf_merge_ptr_value(headers_source, …)`): a level with ANY line of
//!   the directive keeps only its own lines and inherits NONE of its parent's.

use upkeep_facts::Inheritance;
use upkeep_syntax::Directive;

use crate::blocks::BlockId;
use crate::model::Model;

/// A directive and the block where it is written.
#[derive(Clone, Copy, Debug)]
pub struct Setting<'a> {
    pub directive: &'a Directive,
    pub block: BlockId,
}

impl<'a> Setting<'a> {
    /// The first argument's value as text.
    pub fn arg(&self, i: usize) -> Option<String> {
        self.directive.args().get(i).map(|w| w.text().into_owned())
    }

    /// Whether argument `i` is the keyword `keyword`, in any case, as
    /// nginx reads `on`/`off` and other keywords (`ngx_strcasecmp` in
    /// `ngx_conf_set_flag_slot`, `_enum_slot` and `_bitmask_slot`).
    pub fn arg_is(&self, i: usize, keyword: &str) -> bool {
        self.directive
            .args()
            .get(i)
            .is_some_and(|w| w.is_keyword(keyword))
    }

    /// All arguments joined with spaces.
    pub fn args_text(&self) -> String {
        self.directive
            .args()
            .iter()
            .map(|w| w.text().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The effective value of a scalar directive.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    /// Set explicitly at this level or inherited from an enclosing one.
    Set(Setting<'a>),
    /// Not set anywhere on the chain: the target version's default.
    Default(&'static str),
    /// Not set, and no default (or the directive does not exist in the
    /// target version).
    Absent,
}

impl<'a> Value<'a> {
    /// The value as text (arguments joined by spaces), `None` when absent.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Set(s) => Some(s.args_text()),
            Value::Default(d) => Some((*d).to_string()),
            Value::Absent => None,
        }
    }

    /// Whether the value is exactly `s` (one argument, or the default text),
    /// without building a string.
    /// Whether the value is the single word `s`, in any case, as nginx
    /// reads keywords (see [`Setting::arg_is`]).
    pub fn is(&self, s: &str) -> bool {
        match self {
            Value::Set(set) => set.directive.args().len() == 1 && set.arg_is(0, s),
            Value::Default(d) => *d == s,
            Value::Absent => false,
        }
    }

    pub fn setting(&self) -> Option<Setting<'a>> {
        match self {
            Value::Set(s) => Some(*s),
            _ => None,
        }
    }

    pub fn is_default(&self) -> bool {
        !matches!(self, Value::Set(_))
    }
}

/// The effective lines of an array directive at a block.
#[derive(Clone, Debug)]
pub struct ArrayValue<'a> {
    /// The level whose lines are in effect (`None`: no level on the chain sets
    /// any, so only nginx's built-in defaults apply).
    pub level: Option<BlockId>,
    pub entries: Vec<&'a Directive>,
}

impl<'a> ArrayValue<'a> {
    /// The entry whose first argument equals `key` (case-insensitive, as header
    /// names are); the last one when repeated. Only for asking whether
    /// there is one: nginx does not let a later line replace an earlier one
    /// (see [`ArrayValue::entries_for`]).
    pub fn entry(&self, key: &str) -> Option<&'a Directive> {
        self.entries_for(key).pop()
    }

    /// Every entry whose first argument equals `key`, in order. nginx acts on
    /// all of them: `proxy_set_header` sends one header line per entry whose
    /// value is not empty (`ngx_http_proxy_init_headers` keeps every line;
    /// verified with Debian's nginx 1.22: `Connection close` and, later at the
    /// same level, `Connection ""` still send `Connection: close`).
    pub fn entries_for(&self, key: &str) -> Vec<&'a Directive> {
        self.entries
            .iter()
            .filter(|d| {
                d.args()
                    .first()
                    .is_some_and(|a| a.value().eq_ignore_ascii_case(key.as_bytes()))
            })
            .copied()
            .collect()
    }
}

impl<'a> Model<'a> {
    /// Where `name` is set for `block`: the nearest http level on the chain
    /// that has it (scalar inheritance).
    pub fn setting(&self, block: BlockId, name: &str) -> Option<Setting<'a>> {
        self.ancestors(block)
            .filter(|&b| self.blocks[b].kind.is_http_level())
            .find_map(|b| {
                self.blocks[b].last(name).map(|directive| Setting {
                    directive,
                    block: b,
                })
            })
    }

    /// The effective value of the http-level scalar directive `name` at
    /// `block`, or the default of the target version (facts/directives.tsv).
    pub fn value(&self, block: BlockId, name: &str) -> Value<'a> {
        if let Some(s) = self.setting(block, name) {
            return Value::Set(s);
        }
        if let Some(d) = self.target.default_override(name) {
            return Value::Default(d);
        }
        match upkeep_facts::directive(name, false).and_then(|f| f.default_in(self.version)) {
            Some(d) => Value::Default(d),
            None => Value::Absent,
        }
    }

    /// The effective lines of the array directive `name` at `block`: those of
    /// the nearest level that has ANY line of it.
    pub fn array(&self, block: BlockId, name: &str) -> ArrayValue<'a> {
        debug_assert!(upkeep_facts::directive(name, false)
            .is_none_or(|f| f.inheritance == Inheritance::Array));
        for b in self.ancestors(block) {
            if !self.blocks[b].kind.is_http_level() {
                continue;
            }
            if self.blocks[b].has(name) {
                let entries: Vec<&'a Directive> = self.blocks[b].directives_named(name).collect();
                return ArrayValue {
                    level: Some(b),
                    entries,
                };
            }
        }
        ArrayValue {
            level: None,
            entries: Vec::new(),
        }
    }

    /// The array lines `block`'s level would inherit if it had none of its
    /// own: the effective lines of its parent level.
    pub fn inherited_array(&self, block: BlockId, name: &str) -> ArrayValue<'a> {
        match self.blocks[block].parent() {
            Some(parent) if self.blocks[parent].kind.is_http_level() => self.array(parent, name),
            _ => ArrayValue {
                level: None,
                entries: Vec::new(),
            },
        }
    }
}
