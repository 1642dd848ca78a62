//! What the lab measures besides the clients' own records.

pub mod error_log;
pub mod percentile;
pub mod time_wait;
