//! Loading an nginx configuration: the main file, every file its `include`
//! directives reach (relative to nginx's prefix, globs in sorted order), or
//! the output of `nginx -T` split back into its files.
//!
//! All input goes through the [`Loader`] trait, so this crate does no I/O of
//! its own (apart from [`FsLoader`]) and builds for `wasm32-unknown-unknown`.

mod context;
pub mod crossplane;
mod dump;
mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod file_read;
pub mod glob;
pub mod json;
mod loader;
mod readahead;
mod set;
pub mod tree_json;

pub use context::Context;
pub use error::{LoadError, LoadErrorKind, LoadWarning};
#[cfg(not(target_arch = "wasm32"))]
pub use loader::FsLoader;
pub use loader::{Loader, MemoryLoader};
pub use set::{ConfigSet, LoadOptions};

/// The files of `nginx -T` output, `(path, bytes)` in the order nginx read
/// them (the first is the main file); empty when the text has no
/// `# configuration file PATH:` lines.
pub fn split_nginx_t(dump: &[u8]) -> Vec<(String, Vec<u8>)> {
    dump::split_dump(dump)
}
