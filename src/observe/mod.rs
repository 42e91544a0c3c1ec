//! What an operator reads of a running server: the log (`log`) and the
//! Prometheus metrics (`metrics`). Protocol code records through the
//! `tracing` and `metrics` macros; this folder decides where it goes.

pub mod log;
pub mod metrics;
