//! Two-proportion z-test for binary columns, as Evidently's `z` test: the
//! share of the first category (in sorted order) in each sample, pooled
//! variance, two-sided p = 2 * (1 - Phi(|z|)).

use statrs::distribution::{ContinuousCDF, Normal};

#[derive(Debug, Clone, Copy)]
pub struct ZTestResult {
    pub statistic: f64,
    pub p_value: f64,
}

/// `reference` and `current` are counts aligned on the sorted union of
/// categories (at most two, at least one).
pub fn proportions_z_test(reference: &[u64], current: &[u64]) -> ZTestResult {
    let n1: u64 = reference.iter().sum();
    let n2: u64 = current.iter().sum();
    let present = |c: &[u64]| c.iter().filter(|&&x| x > 0).count();
    // One and the same value on both sides: no difference to test.
    if present(reference) == 1
        && present(current) == 1
        && reference
            .iter()
            .zip(current)
            .all(|(a, b)| (*a > 0) == (*b > 0))
    {
        return ZTestResult {
            statistic: 0.0,
            p_value: 1.0,
        };
    }
    // Evidently codes the first sorted key as 0 and every other value as 1.
    let ones1 = (n1 - reference.first().copied().unwrap_or(0)) as f64;
    let ones2 = (n2 - current.first().copied().unwrap_or(0)) as f64;
    let (n1, n2) = (n1 as f64, n2 as f64);
    let p1 = ones1 / n1;
    let p2 = ones2 / n2;
    let pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
    let z = (p1 - p2) / (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    let normal = Normal::new(0.0, 1.0).expect("standard normal");
    ZTestResult {
        statistic: z,
        p_value: 2.0 * (1.0 - normal.cdf(z.abs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_single_value_is_no_drift() {
        let r = proportions_z_test(&[10, 0], &[5, 0]);
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn known_value() {
        // 30/100 vs 50/100: z = -2.8867513459481287, p = 0.003892417122778637
        let r = proportions_z_test(&[70, 30], &[50, 50]);
        assert!((r.statistic.abs() - 2.886751345948129).abs() < 1e-12);
        assert!((r.p_value - 0.0038924171227786).abs() < 1e-9);
    }
}
