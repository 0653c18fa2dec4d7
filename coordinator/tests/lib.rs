//! Integration tests of the coordinator: handlers through `oneshot`, and real servers on
//! 127.0.0.1:0 driven through the `rmake-proto` client (and the real binary for crashes).

mod harness;

mod auth;
mod batch;
mod binary;
mod blobs;
mod cache;
mod client;
mod crash;
mod full_disk;
mod handlers;
mod readsets;
mod sched;
