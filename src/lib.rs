//! mlctl: keeps machine-learning models honest in production.
//!
//! Layers (see docs/architecture in the README): the entry layer (`cli`, the
//! binary) parses and renders; commands (`drift`, `baseline`) return a
//! `report::Report`; engines (`stats`) compute; the foundation (`data`,
//! `report`, `error`, `fsio`, `config`) reads, writes and describes.

pub mod baseline;
pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub mod drift;
pub mod error;
pub mod features;
pub mod fsio;
pub mod inspect;
pub mod predict;
pub mod quantize;
pub mod report;
pub mod runtime;
pub mod shadow;
pub mod simd;
pub mod stats;
pub mod store;
