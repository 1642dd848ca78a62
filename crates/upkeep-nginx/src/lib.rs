//! Running a real nginx binary: finding it, asking its version, testing a
//! config (`nginx -t`) and starting a private instance on loopback.
//!
//! Everything here is careful never to touch a system nginx: instances live in
//! a private prefix, their pid file and error log are inside that prefix (the
//! `-e` flag, nginx >= 1.19.5, keeps nginx from even opening the compiled-in
//! error log), and they are stopped through their own pid file.

mod binary;
mod instance;

pub use binary::{NginxBinary, TestOutcome};
pub use instance::{free_port, process_is_running, NginxInstance, Prefix};
