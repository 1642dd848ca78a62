pub mod check;
pub mod explain;
pub mod fix;
pub mod lab;
pub mod logs;
pub mod parse;
pub mod probe;
pub mod rules;
