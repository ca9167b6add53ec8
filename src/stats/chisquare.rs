//! Pearson's chi-square goodness-of-fit test of the current category counts
//! against the reference shares, as Evidently applies `scipy.stats.chisquare`:
//! expected = reference count * (n_current / n_reference).

use statrs::distribution::{ChiSquared, ContinuousCDF};

#[derive(Debug, Clone, Copy)]
pub struct ChiSquareResult {
    pub statistic: f64,
    pub p_value: f64,
}

/// `reference` and `current` are counts aligned on the union of categories.
pub fn chisquare_vs_reference(reference: &[u64], current: &[u64]) -> ChiSquareResult {
    let n_ref: u64 = reference.iter().sum();
    let n_cur: u64 = current.iter().sum();
    let k_norm = n_cur as f64 / n_ref as f64;
    let observed: Vec<f64> = current.iter().map(|&c| c as f64).collect();
    let expected: Vec<f64> = reference.iter().map(|&c| c as f64 * k_norm).collect();
    chisquare(&observed, &expected)
}

/// `scipy.stats.chisquare(f_obs, f_exp)` with `ddof = 0`. A category expected
/// zero times but observed makes the statistic infinite and p zero.
pub fn chisquare(observed: &[f64], expected: &[f64]) -> ChiSquareResult {
    let statistic: f64 = observed
        .iter()
        .zip(expected)
        .map(|(o, e)| (o - e) * (o - e) / e)
        .sum();
    let dof = observed.len() as f64 - 1.0;
    let p_value = if dof < 1.0 || statistic.is_nan() {
        f64::NAN
    } else if statistic.is_infinite() {
        0.0
    } else {
        ChiSquared::new(dof)
            .map(|d| d.sf(statistic))
            .unwrap_or(f64::NAN)
    };
    ChiSquareResult { statistic, p_value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scipy_textbook_case() {
        // scipy.stats.chisquare([16, 18, 16, 14, 12, 12]) -> 2.0, 0.8491450360846096
        let r = chisquare(&[16., 18., 16., 14., 12., 12.], &[88. / 6.0; 6]);
        assert!((r.statistic - 2.0).abs() < 1e-12);
        assert!((r.p_value - 0.8491450360846096).abs() < 1e-12);
    }
}
