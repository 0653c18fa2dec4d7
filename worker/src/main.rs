//! `rmake-worker` (being written).

fn main() {}
