//! Online reads from the feature store, in-process: 10,000 lookups of
//! random entities of a materialized view, timed one by one (p50, p99,
//! max in microseconds).
//!
//!     cargo bench --bench store -- STORE.db VIEW [--reads N]
//!
//! bench/features_vs_feast.py runs it on the store it materializes.

mod common;

use std::time::Instant;

use mlctl::store::{self, Location};

fn main() {
    let args = common::args();
    let [path, view] = [&args[0], &args[1]];
    let reads = common::number(&args, "--reads", 10_000);
    let entities: Vec<String> = {
        let db = rusqlite::Connection::open(path).expect("store");
        let mut query = db
            .prepare("SELECT entity FROM mlctl_feature_values WHERE view = ?1")
            .expect("query");
        query
            .query_map([view], |row| row.get(0))
            .expect("entities")
            .collect::<Result<_, _>>()
            .expect("entities")
    };
    assert!(!entities.is_empty(), "no entities of view {view} in {path}");
    let mut online = store::open(&Location::Sqlite(path.into()), false).expect("store");
    // A fixed pseudo-random sequence of entities.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut times: Vec<f64> = (0..reads)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let key = &entities[(state % entities.len() as u64) as usize];
            let start = Instant::now();
            let record = online.read(view, key).expect("read");
            let us = start.elapsed().as_secs_f64() * 1e6;
            assert!(record.is_some());
            us
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "{{\"reads\": {reads}, \"entities\": {}, \"p50_us\": {:.1}, \"p99_us\": {:.1}, \"max_us\": {:.1}}}",
        entities.len(),
        at(0.5),
        at(0.99),
        times[times.len() - 1]
    );
}
