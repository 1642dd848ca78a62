//! The host side of `upkeep doctor`: what a live nginx host shows about
//! connection reuse, and the host rules (RULES.md H001–H005) judged on it.
//!
//! * [`sockets`]: the socket census per backend address, read like `ss`
//!   (netlink `NETLINK_SOCK_DIAG`), with `/proc/net/tcp{,6}` as the
//!   fallback; for nginx in another network namespace, read from inside it
//!   ([`netns`]);
//! * [`process`]: the nginx master and its workers, their RLIMIT_NOFILE;
//! * [`sysctl`]: `ip_local_port_range`, `tcp_tw_reuse`, `tcp_fin_timeout`,
//!   `somaxconn`;
//! * [`stub_status`]: fetching and parsing nginx's counters, and
//!   [`sampling`] them with the census over a window;
//! * [`log_tail`]: the end of the error log (and access log) classified by
//!   upkeep-logs;
//! * [`live_config`]: what the running configuration says about all that;
//! * [`backend_discovery`]: the process listening on each upstream
//!   address (through Docker's port proxy too), what server it is and the
//!   idle timeout, request cap and capacity it runs with, each with where
//!   it came from; fed to the static rules like `--backend`;
//! * [`rules`]: H001–H005 (and R001 with the real limit);
//! * [`watch`]: the same sources interval by interval, for `upkeep watch`
//!   (rates, and a Prometheus exposition);
//! * [`doctor::run`] puts it together into one ranked [`DoctorReport`],
//!   rendered by [`report`].
//!
//! Linux only: everything here reads `/proc` or netlink.

pub mod backend_discovery;
pub mod build_info;
pub mod doctor;
pub mod live_config;
pub mod log_tail;
pub mod netns;
pub mod process;
pub mod report;
pub mod rules;
pub mod sampling;
pub mod sockets;
pub mod stub_status;
pub mod sysctl;
pub mod watch;

pub use doctor::{run, DoctorInput, DoctorReport};
