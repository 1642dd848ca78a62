//! One file per rule. Each declares `pub const INFO: RuleInfo` (metadata and
//! documentation) and `pub fn check(ctx: &Ctx) -> Vec<Finding>`, and is listed
//! once in `registry.rs`.

pub mod c001;
pub mod c002;
pub mod c003;
pub mod c004;
pub mod r001;
pub mod r002;
pub mod r003;
pub mod u001;
pub mod u002;
pub mod u003;
pub mod u004;
pub mod u005;
pub mod u006;
pub mod u007;
pub mod u008;
pub mod u009;
pub mod u010;
pub mod u011;
pub mod u012;
pub mod u013;
pub mod u014;
pub mod u015;
pub mod u016;
pub mod x001;
pub mod x002;
