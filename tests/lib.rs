//! Shared helpers for rmake's end-to-end tests (the test cluster harness grows here).
