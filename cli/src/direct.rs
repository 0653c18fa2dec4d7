//! make's shell-less fast path moved to `rmake-exec` (`rmake_exec::direct`), shared with the
//! worker. This file is empty and goes away together with `mod direct;` in lib.rs.
