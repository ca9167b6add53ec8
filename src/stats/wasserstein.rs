//! First Wasserstein distance between two empirical distributions, as
//! `scipy.stats.wasserstein_distance`: the area between the two CDFs.
//! Evidently's drift test divides it by the reference standard deviation
//! (at least 0.001) and calls the result "normed Wasserstein".

use super::Runs;

pub fn wasserstein_distance(a: &Runs, b: &Runs) -> f64 {
    let (n1, n2) = (a.n() as f64, b.n() as f64);
    let (mut i, mut j) = (0, 0);
    let (mut c1, mut c2) = (0u64, 0u64);
    let mut total = 0.0;
    let mut prev: Option<f64> = None;
    while i < a.values.len() || j < b.values.len() {
        let v = match (a.values.get(i), b.values.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => unreachable!(),
        };
        if let Some(p) = prev {
            total += (c1 as f64 / n1 - c2 as f64 / n2).abs() * (v - p);
        }
        if a.values.get(i) == Some(&v) {
            c1 += a.counts[i];
            i += 1;
        }
        if b.values.get(j) == Some(&v) {
            c2 += b.counts[j];
            j += 1;
        }
        prev = Some(v);
    }
    total
}

/// Distance in units of the reference's standard deviation (floor 0.001).
pub fn normed_wasserstein(reference: &Runs, current: &Runs) -> f64 {
    wasserstein_distance(reference, current) / reference.std().max(0.001)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scipy_doc_example() {
        // wasserstein_distance([0, 1, 3], [5, 6, 8]) == 5.0
        let a = Runs::from_values(vec![0., 1., 3.]);
        let b = Runs::from_values(vec![5., 6., 8.]);
        assert!((wasserstein_distance(&a, &b) - 5.0).abs() < 1e-12);
        // wasserstein_distance([3.4, 3.9, 7.5, 7.8], [4.5, 1.4]) == 2.7
        let a = Runs::from_values(vec![3.4, 3.9, 7.5, 7.8]);
        let b = Runs::from_values(vec![4.5, 1.4]);
        assert!((wasserstein_distance(&a, &b) - 2.7).abs() < 1e-12);
    }
}
