//! `profile`: record a vLLM server's Prometheus `/metrics` and its GPUs' NVML state, and
//! explain from those recordings why the server runs below what its hardware allows.
//!
//! Data flows one way, and each stage only returns values to the next:
//!
//! ```text
//! record (scrape + NVML poll) -> recording (Parquet) -> reader -> windows -> aggregate -> rules -> report
//! ```
//!
//! The command-line interface lives in the binary (`src/cli/`); nothing in this library
//! knows about flags.
#![deny(missing_docs)]

pub mod aggregate;
pub mod analyze;
pub mod availability;
pub mod bundle;
pub mod capacity;
pub mod catalog;
pub mod compare;
pub mod diagnose;
#[doc(hidden)]
pub mod fuzz_support;
pub mod gpu;
pub mod host;
pub mod import;
pub mod inputs;
pub mod inspect;
pub mod promtext;
pub mod record;
pub mod recording;
pub mod redact;
pub mod replay;
pub mod report;
pub mod rules;
pub mod units;
pub mod vllm;
pub mod window;
