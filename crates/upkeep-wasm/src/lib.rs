//! upkeep's analysis for the browser playground: `check`, the fix diffs,
//! `explain` and the `nginx -T` split, exported through wasm-bindgen as
//! functions taking and returning JSON text.
//!
//! Every export answers `{"ok": true, …}` or `{"ok": false, "error":
//! {"message", "file", "line", "column", "rendered"}}`; bad input is an
//! error answer, never a trap. The work is in [`api`], which is plain Rust
//! and tested natively.

pub mod api;

use serde_json::Value;
use wasm_bindgen::prelude::wasm_bindgen;

fn answer(result: Result<Value, api::ApiError>) -> String {
    match result {
        Ok(v) => v.to_string(),
        Err(e) => e.to_json().to_string(),
    }
}

/// Findings of the configuration described by `request` (see
/// [`api::Input`]), in the schema of `upkeep check --format json`, each
/// with its own fix's diff.
#[wasm_bindgen]
pub fn analyse(request: &str) -> String {
    answer(api::Input::parse(request).and_then(|input| api::analyse(&input)))
}

/// `upkeep fix` (diff only) on the configuration described by `request`.
#[wasm_bindgen]
pub fn fix_all(request: &str) -> String {
    answer(api::Input::parse(request).and_then(|input| api::fix_all(&input)))
}

/// A rule's documentation, by ID or name.
#[wasm_bindgen]
pub fn explain(rule: &str) -> String {
    answer(api::explain(rule))
}

/// The files of `nginx -T` output.
#[wasm_bindgen]
pub fn split_nginx_t(dump: &str) -> String {
    answer(api::split_nginx_t(dump))
}

/// The profiles, versions and rules the page's selectors offer.
#[wasm_bindgen]
pub fn options() -> String {
    api::options().to_string()
}
