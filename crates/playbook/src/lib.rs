//! placeholder
pub mod catalog;
pub mod duration;
pub mod error;
pub mod expr;
pub mod script;
pub mod spec;
pub mod validate;
