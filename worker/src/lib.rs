//! The rmake worker: leases actions from a coordinator, runs them in private exec roots and
//! reports their results (being written; see docs/farm.md).
