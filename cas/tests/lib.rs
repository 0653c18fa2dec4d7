//! Integration tests of the `rmake-cas` crate: one binary, one module per feature.

mod disk_store;
mod tree;
mod util;
