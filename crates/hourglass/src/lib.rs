//! The Hourglass server and command line.
//!
//! [`cli`] parses the command line; [`server`] wires storage, query engine and the HTTP interface
//! ([`http`]) together and shuts them down in order; [`sql_shell`] is the `hourglass sql` client.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod alerts;
pub mod allocator;
pub mod bench;
pub mod cli;
pub mod config_cli;
pub mod file_modes;
pub mod http;
pub mod import_cli;
pub mod server;
pub mod sql_shell;
pub mod tls;
pub mod users_cli;
