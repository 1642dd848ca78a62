//! One file per rule. Each declares `pub const INFO: RuleInfo` (metadata and
//! documentation) and `pub fn check(ctx: &Ctx) -> Vec<Finding>`, and is listed
//! once in `registry.rs`.

pub mod u001;
pub mod u002;
pub mod u003;
pub mod u004;
pub mod u005;
pub mod u006;
pub mod u007;
pub mod u008;
pub mod u010;
pub mod u011;
pub mod u012;
pub mod x001;
pub mod x002;
