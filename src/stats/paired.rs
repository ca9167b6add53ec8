//! Comparing two models on the same rows: McNemar's test on paired right /
//! wrong outcomes, confidence intervals for accuracy and mean errors, the
//! paired t-test for errors, and Holm's correction when many slices are
//! tested at once.
//!
//! References (checked against values they produced, in
//! `tests/fixtures/shadow_stats.json` made by `tests/fixtures/make_shadow_fixtures.py`):
//! statsmodels `mcnemar`, `proportion_confint(method="wilson")` and
//! `multipletests(method="holm")`; scipy `ttest_rel` and `t.interval`.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

/// Below this many discordant pairs McNemar's test uses the exact binomial
/// distribution; from it on, chi-square with continuity correction (the
/// usual rule: the chi-square approximation needs b + c of about 25).
pub const EXACT_BELOW: u64 = 25;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct McNemar {
    /// min(b, c) for the exact test, the chi-square statistic otherwise
    /// (statsmodels' convention).
    pub statistic: f64,
    pub p_value: f64,
    pub exact: bool,
}

/// McNemar's test, two-sided. `b`: pairs where the first model was right
/// and the second wrong; `c`: the other way round. Pairs where both agree
/// on right or wrong carry no information and are not needed.
pub fn mcnemar(b: u64, c: u64) -> McNemar {
    let n = b + c;
    if n < EXACT_BELOW {
        let k = b.min(c);
        // P(X <= k) for X ~ Binomial(n, 1/2), counted exactly: n < 25, so
        // the binomial coefficients and 2^n fit in 64 bits.
        let mut coefficient = 1u64;
        let mut below = 0u64;
        for i in 0..=k {
            below += coefficient;
            coefficient = coefficient * (n - i) / (i + 1);
        }
        let p_value = (2.0 * below as f64 / (1u64 << n) as f64).min(1.0);
        return McNemar {
            statistic: k as f64,
            p_value,
            exact: true,
        };
    }
    let d = (b as f64 - c as f64).abs() - 1.0;
    let statistic = d * d / n as f64;
    let chi2 = ChiSquared::new(1.0).expect("one degree of freedom is valid");
    McNemar {
        statistic,
        p_value: chi2.sf(statistic),
        exact: false,
    }
}

fn normal_quantile(confidence: f64) -> f64 {
    let normal = Normal::new(0.0, 1.0).expect("standard normal");
    normal.inverse_cdf(1.0 - (1.0 - confidence) / 2.0)
}

/// Wilson score interval for a proportion `hits / n` (None when n is 0).
pub fn wilson(hits: u64, n: u64, confidence: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let z = normal_quantile(confidence);
    let (n, q) = (n as f64, hits as f64 / n as f64);
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let center = (q + z2 / (2.0 * n)) / denominator;
    let half = z * (q * (1.0 - q) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Some((center - half, center + half))
}

/// Wald interval for the difference of two paired proportions (second
/// minus first): (c - b) / n, with the variance of matched pairs
/// ((b + c) / n - d^2) / n (Agresti, Categorical Data Analysis, 10.1).
pub fn paired_difference(b: u64, c: u64, n: u64, confidence: f64) -> Option<(f64, f64, f64)> {
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let d = (c as f64 - b as f64) / nf;
    let variance = (((b + c) as f64 / nf) - d * d) / nf;
    let half = normal_quantile(confidence) * variance.max(0.0).sqrt();
    Some((d, d - half, d + half))
}

/// Count, mean and sum of squared deviations, updated one value at a time
/// (Welford) and mergeable (Chan et al.): stable where sums of squares are
/// not.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    pub n: u64,
    pub mean: f64,
    pub m2: f64,
}

impl Moments {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    pub fn merge(&mut self, other: &Moments) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        let (a, b) = (self.n as f64, other.n as f64);
        self.mean += delta * b / n as f64;
        self.m2 += other.m2 + delta * delta * a * b / n as f64;
        self.n = n;
    }

    /// Sample variance (n - 1 in the denominator).
    pub fn variance(&self) -> Option<f64> {
        (self.n >= 2).then(|| self.m2 / (self.n - 1) as f64)
    }
}

/// Student-t interval for a mean, as `scipy.stats.t.interval(confidence,
/// n - 1, loc=mean, scale=sem)`.
pub fn mean_interval(m: &Moments, confidence: f64) -> Option<(f64, f64)> {
    let variance = m.variance()?;
    let sem = (variance / m.n as f64).sqrt();
    if sem == 0.0 {
        return Some((m.mean, m.mean));
    }
    let t = StudentsT::new(0.0, 1.0, (m.n - 1) as f64).ok()?;
    let half = t.inverse_cdf(1.0 - (1.0 - confidence) / 2.0) * sem;
    Some((m.mean - half, m.mean + half))
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    pub statistic: f64,
    pub p_value: f64,
}

/// Two-sided one-sample t-test that the mean of `d` is zero: the paired
/// t-test of `scipy.stats.ttest_rel(a, b)` when d = a - b. None when fewer
/// than two values or all differences are equal.
pub fn paired_t(d: &Moments) -> Option<TTest> {
    let variance = d.variance()?;
    if variance <= 0.0 {
        return None;
    }
    let statistic = d.mean / (variance / d.n as f64).sqrt();
    let t = StudentsT::new(0.0, 1.0, (d.n - 1) as f64).ok()?;
    Some(TTest {
        statistic,
        p_value: (2.0 * t.sf(statistic.abs())).min(1.0),
    })
}

/// Holm's step-down adjustment of p-values (family-wise error), as
/// `statsmodels.stats.multitest.multipletests(p, method="holm")[1]`; the
/// result is in the order of the input.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(p_values[i] * (m - rank) as f64);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_switches_to_chi_square_at_25_discordant_pairs() {
        let small = mcnemar(3, 10);
        assert!(small.exact);
        assert_eq!(small.statistic, 3.0);
        let large = mcnemar(10, 15);
        assert!(!large.exact);
        assert!((large.statistic - 16.0 / 25.0).abs() < 1e-12);
        assert_eq!(mcnemar(0, 0).p_value, 1.0);
    }

    #[test]
    fn moments_merge_as_if_pushed_together() {
        let values = [1.0, 4.0, 2.5, 10.0, -3.0, 7.25];
        let mut whole = Moments::default();
        values.iter().for_each(|&x| whole.push(x));
        let (mut a, mut b) = (Moments::default(), Moments::default());
        values[..2].iter().for_each(|&x| a.push(x));
        values[2..].iter().for_each(|&x| b.push(x));
        a.merge(&b);
        assert_eq!(a.n, whole.n);
        assert!((a.mean - whole.mean).abs() < 1e-12);
        assert!((a.m2 - whole.m2).abs() < 1e-9);
    }

    #[test]
    fn holm_keeps_the_input_order_and_is_monotone() {
        let adjusted = holm(&[0.04, 0.01, 0.03]);
        assert!((adjusted[1] - 0.03).abs() < 1e-15);
        assert!((adjusted[2] - 0.06).abs() < 1e-15);
        assert!((adjusted[0] - 0.06).abs() < 1e-15);
    }

    #[test]
    fn constant_differences_have_no_t_test() {
        let mut d = Moments::default();
        d.push(1.0);
        d.push(1.0);
        assert!(paired_t(&d).is_none());
    }
}
