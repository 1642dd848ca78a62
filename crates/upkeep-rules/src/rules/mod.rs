//! One file per rule. Each declares `pub const INFO: RuleInfo` (metadata and
//! documentation) and `pub fn check(ctx: &Ctx) -> Vec<Finding>`. The list
//! below declares the modules and builds the registry, in ID order: a new
//! rule is a new file plus its name here.

crate::registry::registry!(
    u001, u002, u003, u004, u005, u006, u007, u008, u009, u010, u011, u012, u013, u014, u015, u016,
    u017, u018, u019, c001, c002, c003, c004, r001, r002, r003, x001, x002,
);
