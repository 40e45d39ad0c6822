//! End-to-end tests of the real server in-process: SQL golden files three ways, tiering and
//! retention under an injected clock, crash recovery, back-pressure and error shapes.
//! One test binary for the crate (each extra binary costs a multi-second link).

#![allow(clippy::unwrap_used)]

mod day_layout;
mod grouping;
mod harness;
mod last_rows;
mod lifecycle;
mod plan_cache;
mod retention;
mod security;
mod slt;
mod writes;
