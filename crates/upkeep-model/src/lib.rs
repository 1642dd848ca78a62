//! The effective nginx configuration, as nginx itself resolves it.
//!
//! Built from the syntax trees of a loaded configuration (includes expanded)
//! and a target nginx version, the [`Model`] answers the questions every rule
//! asks:
//!
//! * which **routes** exist (a location, nested location, `if` block,
//!   `limit_except` or named location with `proxy_pass`, `fastcgi_pass`,
//!   `grpc_pass`, `uwsgi_pass` or `scgi_pass`), with their chain of blocks
//!   from `http` down;
//! * the **effective value** of a directive at a route, and where it was set,
//!   or the default of the target version ([`Model::value`]) — the ONE
//!   inheritance resolver, with scalar inheritance level by level and the
//!   all-or-nothing inheritance of array directives such as
//!   `proxy_set_header` ([`Model::array`]);
//! * the **upstream graph**: blocks, servers, balancer, effective keep-alive
//!   pool (explicit, implicit on nginx >= 1.29.7, `keepalive 0`) and timeouts,
//!   which routes reach which upstream, literal and variable targets;
//! * **maps** and `set` variables, so a header set from a variable can be
//!   evaluated for ordinary and for upgrade requests.
//!
//! No I/O: the configuration comes in through [`ConfigSource`]. Builds for
//! `wasm32-unknown-unknown`.

mod blocks;
mod maps;
mod model;
mod resolve;
mod routes;
mod source;
mod upstreams;
mod values;
mod variables;

pub use blocks::{BlockId, BlockKind, ConfBlock};
pub use maps::{MapBlock, MapEntry, MapKey};
pub use model::{MainSettings, Model};
pub use resolve::{ArrayValue, Setting, Value};
pub use routes::{DynamicTarget, PassTarget, Protocol, Route, RouteId, Wire};
pub use source::{ConfigSource, SingleFile};
pub use upstreams::{
    Pool, Upstream, UpstreamId, UpstreamServer, BALANCER_DIRECTIVES, LUA_BALANCERS,
    OVERWRITING_BALANCERS,
};
pub use values::{check_values, first_refused_value, RefusedValue};
pub use variables::RequestKind;

pub use upkeep_facts::{Flavor, NginxVersion, Target};
