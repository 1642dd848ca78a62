//! Variables: what `set` and `map` can make them, and evaluating a value for
//! a typical request.

use crate::model::Model;
use crate::routes::single_variable;

/// The kind of client request a value is evaluated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// An ordinary request: no `Upgrade` header.
    Ordinary,
    /// A WebSocket handshake: `Upgrade: websocket`, `Connection: upgrade`.
    Upgrade,
}

/// The values a variable can take.
#[derive(Clone, Debug, Default)]
pub struct VariableValues {
    pub values: Vec<String>,
    /// `true` when every value is a literal from `set` or `map`.
    pub complete: bool,
}

const MAX_DEPTH: usize = 8;

impl<'a> Model<'a> {
    /// Literal values that `$var` can take through `set` and `map`.
    pub fn variable_values(&self, var: &str) -> VariableValues {
        let mut out = VariableValues {
            values: Vec::new(),
            complete: true,
        };
        let mut defined = false;
        if let Some(sets) = self.sets.get(var) {
            defined = true;
            for d in sets {
                match d.args().get(1) {
                    Some(w) if !w.value().contains(&b'$') => out.values.push(w.text().into_owned()),
                    _ => out.complete = false,
                }
            }
        }
        if let Some(map) = self.map_defining(var) {
            defined = true;
            for value in map.all_values() {
                if value.contains('$') {
                    out.complete = false;
                } else {
                    out.values.push(value);
                }
            }
        }
        if !defined {
            out.complete = false;
        }
        out
    }

    /// Evaluates a directive value for a request of `kind`: literals as they
    /// are, `$http_upgrade`, and variables defined by `map` blocks (chains of
    /// maps included). `None` when the value depends on something the model
    /// cannot know.
    pub fn evaluate(&self, text: &str, kind: RequestKind) -> Option<String> {
        self.evaluate_depth(text, kind, 0)
    }

    fn evaluate_depth(&self, text: &str, kind: RequestKind, depth: usize) -> Option<String> {
        if !text.contains('$') {
            return Some(text.to_string());
        }
        if depth >= MAX_DEPTH {
            return None;
        }
        let var = single_variable(text)?;
        if var.eq_ignore_ascii_case("http_upgrade") {
            return Some(match kind {
                RequestKind::Ordinary => String::new(),
                RequestKind::Upgrade => "websocket".to_string(),
            });
        }
        let map = self.map_defining(&var)?;
        let input = self.evaluate_depth(&map.source, kind, depth + 1)?;
        let value = map.lookup(&input)?;
        self.evaluate_depth(&value.value, kind, depth + 1)
    }
}
