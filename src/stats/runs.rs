//! A numeric sample stored as its sorted distinct values with their counts.
//!
//! Every numeric test needs only the order of the values and their ties, so
//! the same type serves raw data (exact), a stored baseline profile (exact up
//! to its cap) and a compressed profile (a bounded-error summary).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

/// A fast hasher for f64 bit patterns (a multiplicative hash): the keys are
/// data values, not attacker-chosen input to a long-lived server.
#[derive(Default)]
struct BitsHasher(u64);

impl Hasher for BitsHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Runs {
    /// Distinct finite values, strictly increasing.
    pub values: Vec<f64>,
    /// How many observations hold each value (same length as `values`).
    pub counts: Vec<u64>,
}

impl Runs {
    /// Builds runs from finite values in any order.
    ///
    /// Real columns often repeat a few values many times (integer codes,
    /// rounded measurements, replicated rows): counting them in a hash map
    /// is much cheaper than sorting every observation. When the values turn
    /// out to be mostly distinct the counting stops and a sort takes over.
    pub fn from_values(mut values: Vec<f64>) -> Self {
        if let Some(runs) = Self::by_counting(values.iter().copied(), values.len()) {
            return runs;
        }
        values.sort_unstable_by(f64::total_cmp);
        Self::from_sorted(&values)
    }

    /// `from_values` of values read where they lie (a column of pairs,
    /// say): they are copied only when they have to be sorted, since a
    /// copy of a long sample is fresh memory, which costs more than the
    /// counting.
    pub fn from_read_values<I>(values: I) -> Self
    where
        I: ExactSizeIterator<Item = f64> + Clone,
    {
        let len = values.len();
        if let Some(runs) = Self::by_counting(values.clone(), len) {
            return runs;
        }
        let mut values: Vec<f64> = values.collect();
        values.sort_unstable_by(f64::total_cmp);
        Self::from_sorted(&values)
    }

    /// Counts distinct values of a long sample; gives up (None) on a short
    /// one, or past a sixteenth of its length distinct.
    fn by_counting(values: impl Iterator<Item = f64>, len: usize) -> Option<Self> {
        const TRY_COUNTING_FROM: usize = 50_000;
        if len < TRY_COUNTING_FROM {
            return None;
        }
        let max_distinct = len / 16;
        let mut counts: HashMap<u64, u64, BuildHasherDefault<BitsHasher>> = HashMap::default();
        for v in values {
            // -0.0 counts as 0.0, as everywhere else in mlctl.
            let v = if v == 0.0 { 0.0 } else { v };
            *counts.entry(v.to_bits()).or_insert(0) += 1;
            if counts.len() > max_distinct {
                return None;
            }
        }
        let mut pairs: Vec<(f64, u64)> = counts
            .into_iter()
            .map(|(b, c)| (f64::from_bits(b), c))
            .collect();
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let (values, counts) = pairs.into_iter().unzip();
        Some(Runs { values, counts })
    }

    /// Builds runs from finite values already sorted ascending.
    pub fn from_sorted(sorted: &[f64]) -> Self {
        // Room for every value being distinct, made at once: untouched room
        // costs nothing, while growing by doubling copies the runs into
        // fresh memory each time (about 1 ms a MB on a virtual machine).
        let mut runs = Runs {
            values: Vec::with_capacity(sorted.len()),
            counts: Vec::with_capacity(sorted.len()),
        };
        for &v in sorted {
            match runs.values.last() {
                // -0.0 and 0.0 are one value, as numpy's unique has it.
                Some(&last) if last == v => *runs.counts.last_mut().unwrap() += 1,
                _ => {
                    runs.values.push(v);
                    runs.counts.push(1);
                }
            }
        }
        runs
    }

    /// Builds runs from (value, count) pairs in any order; equal values merge.
    pub fn from_pairs(mut pairs: Vec<(f64, u64)>) -> Self {
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut runs = Runs::default();
        for (v, c) in pairs {
            if c == 0 {
                continue;
            }
            match runs.values.last() {
                Some(&last) if last == v => *runs.counts.last_mut().unwrap() += c,
                _ => {
                    runs.values.push(v);
                    runs.counts.push(c);
                }
            }
        }
        runs
    }

    pub fn n(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn n_distinct(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn min(&self) -> Option<f64> {
        self.values.first().copied()
    }

    pub fn max(&self) -> Option<f64> {
        self.values.last().copied()
    }

    pub fn mean(&self) -> f64 {
        let n = self.n() as f64;
        self.values
            .iter()
            .zip(&self.counts)
            .map(|(v, c)| v * *c as f64)
            .sum::<f64>()
            / n
    }

    /// Population standard deviation (ddof = 0), as `numpy.std`.
    pub fn std(&self) -> f64 {
        let n = self.n() as f64;
        let mean = self.mean();
        let ss: f64 = self
            .values
            .iter()
            .zip(&self.counts)
            .map(|(v, c)| (v - mean) * (v - mean) * *c as f64)
            .sum();
        (ss / n).sqrt()
    }

    /// Merges two samples into one, as if their observations were pooled.
    pub fn merge(&self, other: &Runs) -> Runs {
        let mut out = Runs::default();
        let (mut i, mut j) = (0, 0);
        while i < self.values.len() || j < other.values.len() {
            let take_left = j >= other.values.len()
                || (i < self.values.len() && self.values[i] <= other.values[j]);
            let (v, c) = if take_left {
                i += 1;
                (self.values[i - 1], self.counts[i - 1])
            } else {
                j += 1;
                (other.values[j - 1], other.counts[j - 1])
            };
            match out.values.last() {
                Some(&last) if last == v => *out.counts.last_mut().unwrap() += c,
                _ => {
                    out.values.push(v);
                    out.counts.push(c);
                }
            }
        }
        out
    }

    /// Share of observations strictly below `lo` or strictly above `hi`.
    pub fn share_outside(&self, lo: f64, hi: f64) -> f64 {
        let n = self.n();
        if n == 0 {
            return 0.0;
        }
        let outside: u64 = self
            .values
            .iter()
            .zip(&self.counts)
            .filter(|(v, _)| **v < lo || **v > hi)
            .map(|(_, c)| *c)
            .sum();
        outside as f64 / n as f64
    }

    /// Keeps at most `cap` runs: a summary whose ranks are off by at most
    /// `n / cap` observations. Each kept value is a real observation at
    /// evenly spaced ranks, weighted by the observations it stands for.
    pub fn compress(&self, cap: usize) -> Runs {
        if self.values.len() <= cap || cap < 2 {
            return self.clone();
        }
        let n = self.n();
        let mut pairs = Vec::with_capacity(cap);
        let mut run = 0usize;
        let mut seen_before_run = 0u64;
        let mut assigned = 0u64;
        for k in 0..cap {
            // Observations with rank in [k*n/cap, (k+1)*n/cap) are represented
            // by the observation at the middle of that range.
            let lo = (k as u128 * n as u128 / cap as u128) as u64;
            let hi = ((k as u128 + 1) * n as u128 / cap as u128) as u64;
            if hi == lo {
                continue;
            }
            let mid = lo + (hi - lo) / 2;
            while seen_before_run + self.counts[run] <= mid {
                seen_before_run += self.counts[run];
                run += 1;
            }
            pairs.push((self.values[run], hi - lo));
            assigned += hi - lo;
        }
        debug_assert_eq!(assigned, n);
        Runs::from_pairs(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_collapse_into_counts() {
        let r = Runs::from_values(vec![3.0, 1.0, 3.0, 2.0, 3.0]);
        assert_eq!(r.values, vec![1.0, 2.0, 3.0]);
        assert_eq!(r.counts, vec![1, 1, 3]);
        assert_eq!(r.n(), 5);
    }

    #[test]
    fn mean_and_population_std_match_numpy() {
        let r = Runs::from_values(vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(r.mean(), 2.5);
        assert!((r.std() - 1.118033988749895).abs() < 1e-15);
    }

    #[test]
    fn counting_and_sorting_build_the_same_runs() {
        let values: Vec<f64> = (0..200_000)
            .map(|i| ((i * 7919) % 1000) as f64 - 500.0)
            .collect();
        let counted = Runs::from_values(values.clone());
        let mut sorted = values;
        sorted.sort_unstable_by(f64::total_cmp);
        assert_eq!(counted, Runs::from_sorted(&sorted));
        assert_eq!(counted.n_distinct(), 1000);
    }

    #[test]
    fn values_read_in_place_build_the_runs_of_their_copy() {
        // Every other value of pairs: counted (few distinct) and sorted
        // (all distinct), and a short sample.
        for (len, distinct) in [(200_000, 1000), (200_000, 200_000), (10, 10)] {
            let pairs: Vec<[f64; 2]> = (0..len)
                .map(|i| [((i * 7919) % distinct) as f64 * 0.5 - 3.0, -1.0])
                .collect();
            let read = Runs::from_read_values(pairs.iter().map(|p| p[0]));
            let copied = Runs::from_values(pairs.iter().map(|p| p[0]).collect());
            assert_eq!(read, copied);
            assert_eq!((read.n(), read.n_distinct()), (len as u64, distinct));
        }
    }

    #[test]
    fn merge_pools_observations() {
        let a = Runs::from_values(vec![1.0, 2.0]);
        let b = Runs::from_values(vec![2.0, 5.0]);
        let m = a.merge(&b);
        assert_eq!(m.values, vec![1.0, 2.0, 5.0]);
        assert_eq!(m.counts, vec![1, 2, 1]);
    }

    #[test]
    fn compression_keeps_the_count_and_bounds_rank_error() {
        let r = Runs::from_values((0..10_000).map(|i| i as f64).collect());
        let c = r.compress(100);
        assert_eq!(c.n(), 10_000);
        assert!(c.n_distinct() <= 100);
        // The median moves by at most n / cap ranks.
        let median_rank = |runs: &Runs| {
            let mut seen = 0;
            for (v, cnt) in runs.values.iter().zip(&runs.counts) {
                seen += cnt;
                if seen >= runs.n() / 2 {
                    return *v;
                }
            }
            f64::NAN
        };
        assert!((median_rank(&c) - median_rank(&r)).abs() <= 100.0);
    }

    #[test]
    fn share_outside_counts_strictly_outside() {
        let r = Runs::from_values(vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(r.share_outside(1.0, 2.0), 0.5);
    }
}
