//! Statistical tests and distances used by the reports.
//!
//! Every function takes plain data (sorted runs of numbers, or aligned count
//! vectors) and returns plain numbers. Each follows a reference implementation
//! named in its module and is checked against values that implementation
//! produced (`tests/fixtures/stats.json`, made by `tests/fixtures/make_stats_fixtures.py`).

pub mod anderson;
pub mod binning;
pub mod calibration;
pub mod chisquare;
pub mod cvm;
pub mod divergence;
pub mod ks;
pub mod latency;
pub mod paired;
pub mod profile;
pub mod runs;
pub mod wasserstein;
pub mod ztest;

pub use runs::Runs;
