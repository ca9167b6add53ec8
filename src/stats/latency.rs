//! Latency statistics for `mlctl bench`: percentiles by the nearest-rank
//! definition (the smallest sample with at least p% of the samples at or
//! below it, so every reported percentile is a measured time), mean and
//! sample standard deviation, and the warnings hyperfine gives when a
//! measurement is not to be trusted.

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub mean: f64,
    pub sd: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// Nearest-rank percentile of sorted samples: the ceil(p/100 * n)-th value.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn summarize(samples: &[f64]) -> Summary {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let mean = sorted.iter().sum::<f64>() / n.max(1) as f64;
    let sd = if n > 1 {
        (sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    Summary {
        count: n,
        min: sorted.first().copied().unwrap_or(f64::NAN),
        mean,
        sd,
        p50: percentile(&sorted, 50.0),
        p90: percentile(&sorted, 90.0),
        p95: percentile(&sorted, 95.0),
        p99: percentile(&sorted, 99.0),
        p999: percentile(&sorted, 99.9),
        max: sorted.last().copied().unwrap_or(f64::NAN),
    }
}

/// Samples beyond the outer fences of a modified z-score (|x - median| /
/// (1.4826 MAD) > 14.826, hyperfine's rule): interference from other
/// processes, caches, page faults.
pub fn outliers(samples: &[f64]) -> usize {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = percentile(&sorted, 50.0);
    let mut deviations: Vec<f64> = sorted.iter().map(|x| (x - median).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    let mad = percentile(&deviations, 50.0) * 1.4826;
    if mad == 0.0 {
        return 0;
    }
    sorted
        .iter()
        .filter(|x| ((*x - median) / mad).abs() > 14.826)
        .count()
}

/// Warnings about a series, each with what to do about it.
pub fn warnings(label: &str, samples: &[f64]) -> Vec<String> {
    let s = summarize(samples);
    let mut out = Vec::new();
    let n = outliers(samples);
    if n > 0 {
        out.push(format!(
            "{label}: {n} statistical outlier(s) among {} runs: other programs or caches interfered; close them, add --warmup, or run longer",
            s.count
        ));
    }
    if s.count > 1 && s.mean > 0.0 && s.sd / s.mean > 0.25 {
        out.push(format!(
            "{label}: the spread is wide (sd {:.0}% of the mean): the figures are not to be trusted; run on a quieter machine or with more --runs",
            100.0 * s.sd / s.mean
        ));
    }
    if s.count < 10 {
        out.push(format!(
            "{label}: only {} runs: percentiles above p90 are the maximum",
            s.count
        ));
    }
    out
}

/// Ratio a / b of two means with its standard error (propagated from each
/// series' standard error of the mean).
pub fn ratio(a: &Summary, b: &Summary) -> (f64, f64) {
    let r = a.mean / b.mean;
    let ea = a.sd / (a.count.max(1) as f64).sqrt() / a.mean;
    let eb = b.sd / (b.count.max(1) as f64).sqrt() / b.mean;
    (r, r * (ea * ea + eb * eb).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_known_samples() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 90.0), 90.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 99.9), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        let s = summarize(&[3.0, 1.0, 2.0]);
        assert_eq!(
            (s.min, s.p50, s.max, s.mean, s.sd),
            (1.0, 2.0, 3.0, 2.0, 1.0)
        );
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.0);
    }

    #[test]
    fn one_slow_run_among_steady_ones_is_an_outlier() {
        let mut v: Vec<f64> = (0..50).map(|i| 10.0 + (i % 5) as f64 * 0.1).collect();
        assert_eq!(outliers(&v), 0);
        v.push(40.0);
        assert_eq!(outliers(&v), 1);
        assert!(warnings("m", &v).iter().any(|w| w.contains("outlier")));
        assert!(warnings("m", &v[..5])
            .iter()
            .any(|w| w.contains("only 5 runs")));
    }

    #[test]
    fn ratio_carries_both_errors() {
        let a = summarize(&[2.0, 2.0, 2.0, 2.0]);
        let b = summarize(&[1.0, 1.0, 1.0, 1.0]);
        assert_eq!(ratio(&a, &b), (2.0, 0.0));
        let c = summarize(&[0.9, 1.1, 0.9, 1.1]);
        let (r, e) = ratio(&a, &c);
        assert!((r - 2.0).abs() < 1e-12 && e > 0.0 && e < 0.2, "{r} {e}");
    }
}
