pub mod logs;
pub mod parse;
pub mod probe;
