//! The GNU Make language: parsing and evaluating Makefiles, and planning builds. Pure: no I/O but through `Host`.
