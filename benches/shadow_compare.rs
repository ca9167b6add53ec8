//! Times the comparing of a replay alone (`Comparison::add`), batch by
//! batch, on answers shaped like the sample models' on the bench log: a
//! classification with labels, four slices, about 8% flips.
//!
//!     cargo bench --bench shadow_compare -- [--rows N] [--batch N] [--runs N]
//!
//! Prints nanoseconds a row (median and least over the runs). Each run
//! starts a new comparison, as a replay does, so the score sample's fresh
//! memory is in the figure. The batches cycle through the answers to one
//! range of a replay (131,072 rows), which a replay compares while they
//! are in cache.

mod common;

use std::time::Instant;

use mlctl::shadow::compare::{Answers, ClassLabels, Comparison, Labels, Paired, Task};

/// xorshift64*: the same answers on every run.
struct Numbers(u64);

impl Numbers {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Side {
    classes: Vec<i64>,
    scores: Vec<f64>,
}

fn main() {
    let args = common::args();
    let flag = |name: &str, default: usize| common::number(&args, name, default);
    let (rows, batch, runs) = (
        flag("--rows", 1_000_000),
        flag("--batch", 4096),
        flag("--runs", 15),
    );
    let distinct = rows.min(131_072);
    let mut numbers = Numbers(0x9E37_79B9_7F4A_7C15);
    let mut primary = Side {
        classes: Vec::with_capacity(distinct),
        scores: Vec::with_capacity(distinct),
    };
    let mut candidate = Side {
        classes: Vec::with_capacity(distinct),
        scores: Vec::with_capacity(distinct),
    };
    let mut labels = Vec::with_capacity(distinct);
    let mut slices = Vec::with_capacity(distinct);
    for _ in 0..distinct {
        // Float32 probabilities, as a model gives them.
        let p = numbers.unit() as f32;
        let c = (p + (numbers.unit() as f32 - 0.5) * 0.2).clamp(0.0, 1.0);
        primary.scores.push(f64::from(p));
        candidate.scores.push(f64::from(c));
        primary.classes.push(i64::from(p > 0.5));
        candidate.classes.push(i64::from(c > 0.5));
        let right = numbers.unit() < 0.92;
        labels.push(if right {
            i64::from(p > 0.5)
        } else {
            i64::from(p <= 0.5)
        });
        slices.push((numbers.next() % 4) as u32);
    }
    let mut times = Vec::with_capacity(runs);
    let mut flips = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let mut comparison = Comparison::new(Task::Classification, false);
        comparison.scores.expect_rows(rows);
        for first in (0..rows).step_by(batch.max(1)) {
            let start = first % distinct;
            let range = start..(start + batch).min(distinct).min(start + rows - first);
            comparison.add(&Paired {
                primary: Answers {
                    classes: &primary.classes[range.clone()],
                    scores: &primary.scores[range.clone()],
                },
                candidate: Answers {
                    classes: &candidate.classes[range.clone()],
                    scores: &candidate.scores[range.clone()],
                },
                noise: None,
                labels: Labels::Classes(ClassLabels {
                    values: &labels[range.clone()],
                    missing: i64::MAX,
                }),
                slices: Some(&slices[range]),
            });
        }
        times.push(started.elapsed().as_secs_f64());
        flips = comparison.overall.flips;
    }
    times.sort_by(f64::total_cmp);
    let per_row = |s: f64| s * 1e9 / rows as f64;
    println!(
        "{{\"rows\": {rows}, \"batch\": {batch}, \"ns_per_row_median\": {:.2}, \"ns_per_row_least\": {:.2}, \"flips\": {flips}}}",
        per_row(times[times.len() / 2]),
        per_row(times[0])
    );
}
