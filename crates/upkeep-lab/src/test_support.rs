//! Shared scaffolding of the unit tests: a runtime and an emulated backend.

use crate::backend::{Backend, BackendProfile};
use crate::cancel::Cancel;
use tokio::task::JoinSet;

/// A single-threaded runtime with timers and I/O, one per test.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An emulated backend on a free loopback port; cancel the returned flag
/// to stop it.
pub async fn start_backend(profile: BackendProfile) -> (Backend, Cancel, JoinSet<()>) {
    let stop = Cancel::new();
    let mut tasks = JoinSet::new();
    let b = Backend::start(
        "127.0.0.1:0".parse().unwrap(),
        profile,
        stop.clone(),
        &mut tasks,
    )
    .await
    .unwrap();
    (b, stop, tasks)
}
