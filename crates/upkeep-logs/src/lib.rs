//! Streaming classifier for nginx error logs (and access logs): which
//! upstream and keep-alive failures happened, to which upstream, when, and
//! whether clients saw them.
//!
//! # Stable API for other crates
//!
//! Two calls cover what `upkeep lab`, `watch` and `doctor` need; they keep
//! their shape across releases:
//!
//! * [`classify_line`]`(&[u8]) -> Option<`[`Classified`]`>`: one error-log
//!   line to its [`Signature`] and fields (time, level, pid, `*N` connection,
//!   `while` phase, client, server, request, upstream, host), borrowing the
//!   line. `None` for noise and for lines of unknown shape.
//! * [`Summary::from_reader`] / [`Summary::from_path`] (plain or gzip) /
//!   [`Summary::add_line`]: signature counts; [`Summary::by_id`] gives them
//!   keyed by the stable IDs of `facts/signatures.tsv`
//!   (`"upstream-prematurely-closed"`, …).
//!
//! ```
//! use upkeep_logs::{classify_line, Signature, Summary};
//! let line = br#"2026/11/23 14:26:24 [error] 30381#0: *14 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /rst/b HTTP/1.1", upstream: "http://127.0.0.1:9102/rst/b", host: "127.0.0.1:8088""#;
//! let c = classify_line(line).unwrap();
//! assert_eq!(c.signature, Signature::UpstreamReset);
//! assert_eq!(c.line.upstream_addr(), Some(&b"127.0.0.1:9102"[..]));
//! let s = Summary::from_reader(&line[..]).unwrap();
//! assert_eq!(s.by_id()["upstream-reset"], 1);
//! ```
//!
//! # The rest
//!
//! [`run::analyze`] runs the whole `upkeep logs` analysis over many inputs
//! (files, globs, gzip, stdin; threads per file), joined with access logs
//! through [`join::Joiner`]; [`follow::Follower`] tails files like
//! `tail -F`; [`report`] renders the result for people and as JSON.
//!
//! Memory is constant in the input size: inputs are read in 1 MiB blocks,
//! lines are never copied, and only lines that contain "upstream" or are
//! logged at warn, alert, crit or emerg are parsed.

pub mod access_format;
pub mod analysis;
mod classify;
pub mod error_line;
pub mod follow;
mod fxhash;
pub mod input;
pub mod join;
mod line_walk;
pub mod minutes;
pub mod reader;
pub mod report;
pub mod run;
pub mod scan;
mod short_search;
mod signature;
mod summary;
pub mod time;
pub mod upstreams;

pub use classify::{classify_line, verdict, Classified, Verdict};
pub use error_line::{ErrorLine, Level};
pub use signature::{Signature, SignatureInfo};
pub use summary::Summary;
pub use time::LogTime;
