//! The rmake coordinator service.
