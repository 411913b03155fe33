//! The `bulwark` binary's building blocks, exposed as a library so tests and benchmarks can run
//! the real server in-process.

pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod memory;
pub mod playbook_cmd;
pub mod server;
pub mod worker;
