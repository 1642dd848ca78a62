//! `map` blocks (ngx_http_map_module).

use upkeep_syntax::{Directive, Span};

use crate::blocks::ConfBlock;

/// How a map key matches.
#[derive(Clone, Debug)]
pub enum MapKey {
    Exact(String),
    /// `~re` or `~*re` (case-insensitive).
    Regex {
        pattern: String,
        case_insensitive: bool,
    },
    /// `hostnames` wildcard keys (`*.example.com`, `.example.com`).
    Wildcard(String),
}

#[derive(Clone, Debug)]
pub struct MapEntry<'a> {
    pub key: MapKey,
    pub value: String,
    pub directive: &'a Directive,
}

impl MapEntry<'_> {
    /// The span of the value word (what a fix rewrites).
    pub fn value_span(&self) -> Span {
        self.directive
            .args()
            .first()
            .map(|w| w.span())
            .unwrap_or(self.directive.span())
    }
}

/// One `map $source $target { … }`.
#[derive(Clone, Debug)]
pub struct MapBlock<'a> {
    pub directive: &'a Directive,
    /// The source expression as written (`$http_upgrade`).
    pub source: String,
    /// The variable it defines, without `$`.
    pub target: String,
    pub entries: Vec<MapEntry<'a>>,
    pub default: Option<MapEntry<'a>>,
    pub hostnames: bool,
}

/// The result of looking up a key.
#[derive(Clone, Debug)]
pub struct MapMatch<'a> {
    pub value: String,
    /// The entry that matched; `None` for the implicit empty default.
    pub entry: Option<MapEntry<'a>>,
}

impl<'a> MapBlock<'a> {
    pub(crate) fn from_block(block: &ConfBlock<'a>) -> Option<MapBlock<'a>> {
        let d = block.directive?;
        let source = d.args().first()?.text().into_owned();
        let target = d.args().get(1)?.text().trim_start_matches('$').to_string();
        let mut map = MapBlock {
            directive: d,
            source,
            target,
            entries: Vec::new(),
            default: None,
            hostnames: false,
        };
        for line in block.directives() {
            let key = line.name().text().into_owned();
            let Some(value) = line.args().first() else {
                if key == "hostnames" {
                    map.hostnames = true;
                }
                // `volatile` and other parameters carry no value.
                continue;
            };
            let value = value.text().into_owned();
            if key == "default" && line.args().len() == 1 {
                map.default = Some(MapEntry {
                    key: MapKey::Exact("default".into()),
                    value,
                    directive: line,
                });
                continue;
            }
            if key == "include" {
                continue;
            }
            let key = if let Some(re) = key.strip_prefix("~*") {
                MapKey::Regex {
                    pattern: re.to_string(),
                    case_insensitive: true,
                }
            } else if let Some(re) = key.strip_prefix('~') {
                MapKey::Regex {
                    pattern: re.to_string(),
                    case_insensitive: false,
                }
            } else if map.hostnames
                && (key.starts_with('*') || key.starts_with('.') || key.ends_with('*'))
            {
                MapKey::Wildcard(key)
            } else {
                // `\` escapes a key that would otherwise be a keyword
                // ("\default") or start with `~`.
                MapKey::Exact(key.strip_prefix('\\').unwrap_or(&key).to_string())
            };
            map.entries.push(MapEntry {
                key,
                value,
                directive: line,
            });
        }
        Some(map)
    }

    /// Every value the map can produce, the default (explicit or the implicit
    /// empty string) included.
    pub fn all_values(&self) -> Vec<String> {
        let mut values: Vec<String> = self.entries.iter().map(|e| e.value.clone()).collect();
        values.push(
            self.default
                .as_ref()
                .map(|d| d.value.clone())
                .unwrap_or_default(),
        );
        values
    }

    /// Looks `input` up as nginx does: exact keys first (case-insensitive
    /// unless the key is a regex), then regexes in order, then the default.
    /// `None` when a regex cannot be evaluated here (a syntax the regex
    /// engine does not support), so the result would be a guess.
    pub fn lookup(&self, input: &str) -> Option<MapMatch<'a>> {
        for e in &self.entries {
            if let MapKey::Exact(k) = &e.key {
                if k.eq_ignore_ascii_case(input) {
                    return Some(MapMatch {
                        value: e.value.clone(),
                        entry: Some(e.clone()),
                    });
                }
            }
        }
        for e in &self.entries {
            match &e.key {
                MapKey::Regex {
                    pattern,
                    case_insensitive,
                } => {
                    let re = regex_lite::RegexBuilder::new(pattern)
                        .case_insensitive(*case_insensitive)
                        .build()
                        .ok()?;
                    if re.is_match(input) {
                        return Some(MapMatch {
                            value: e.value.clone(),
                            entry: Some(e.clone()),
                        });
                    }
                }
                MapKey::Wildcard(_) => {
                    // Hostname wildcards never match the header values the
                    // rules evaluate (empty or `websocket`).
                }
                MapKey::Exact(_) => {}
            }
        }
        Some(match &self.default {
            Some(d) => MapMatch {
                value: d.value.clone(),
                entry: Some(d.clone()),
            },
            None => MapMatch {
                value: String::new(),
                entry: None,
            },
        })
    }
}
