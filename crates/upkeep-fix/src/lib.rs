//! `upkeep fix`: applying findings' fixes as minimal text edits.
//!
//! - [`apply`]: a set of fixes onto file texts, each fix whole or not at all,
//!   overlapping fixes skipped, identical edits made once, insertions at one
//!   point merged in order;
//! - [`converge`]: the loop that re-checks the edited text (through an
//!   in-memory [`Overlay`]) until nothing is left to fix, refusing fixes that
//!   break the config or do not remove their finding;
//! - [`diff`]: unified diffs of the result;
//! - [`write`] (not on wasm): the transactional `--write` with backups,
//!   changed-since-read refusal, validation and rollback.
//!
//! Everything but [`write`] does no I/O.

pub mod apply;
pub mod converge;
pub mod diff;
mod lineage;
pub mod verify;
#[cfg(not(target_arch = "wasm32"))]
pub mod write;

pub use apply::{apply, Applied, Outcome};
pub use converge::{
    fix, AppliedFix, Checker, FileChange, FixOptions, FixRun, Overlay, RefusedFix, Round,
    SharedText,
};
pub use diff::unified_diff;
