//! Wire types of the coordinator API and its typed HTTP client.
