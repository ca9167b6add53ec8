//! Distances between two discrete distributions given as aligned shares:
//! PSI, Kullback-Leibler (`scipy.stats.entropy`), Jensen-Shannon
//! (`scipy.spatial.distance.jensenshannon`, natural log) and Hellinger
//! (Evidently's definition, which bins numeric data over its distinct values).

use super::binning::{histogram, sturges_edges};
use super::Runs;

/// Population stability index: sum (r - c) * ln(r / c). Shares must be
/// zero-filled first.
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(r, c)| (r - c) * (r / c).ln())
        .sum()
}

fn normalized(p: &[f64]) -> Vec<f64> {
    let s: f64 = p.iter().sum();
    p.iter().map(|x| x / s).collect()
}

/// x * ln(x / y) with the conventions of `scipy.special.rel_entr`.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Kullback-Leibler divergence D(reference || current) after normalising
/// both to sum to one, as `scipy.stats.entropy(pk, qk)`.
pub fn kl_divergence(reference: &[f64], current: &[f64]) -> f64 {
    let (p, q) = (normalized(reference), normalized(current));
    p.iter().zip(&q).map(|(a, b)| rel_entr(*a, *b)).sum()
}

/// Jensen-Shannon distance (the square root of the divergence), natural log.
pub fn jensen_shannon(reference: &[f64], current: &[f64]) -> f64 {
    let (p, q) = (normalized(reference), normalized(current));
    let m: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a + b) / 2.0).collect();
    let left: f64 = p.iter().zip(&m).map(|(a, b)| rel_entr(*a, *b)).sum();
    let right: f64 = q.iter().zip(&m).map(|(a, b)| rel_entr(*a, *b)).sum();
    ((left + right) / 2.0).sqrt()
}

/// Hellinger distance between category shares: sqrt(1 - sum sqrt(p q)).
pub fn hellinger_shares(reference: &[f64], current: &[f64]) -> f64 {
    let bc: f64 = reference
        .iter()
        .zip(current)
        .map(|(p, q)| (p * q).sqrt())
        .sum();
    (1.0 - bc.clamp(0.0, 1.0)).sqrt()
}

/// Hellinger distance of numeric samples as Evidently computes it: Sturges
/// bins over the distinct values of both samples, density histograms.
pub fn hellinger_numeric(reference: &Runs, current: &Runs, integer: bool) -> f64 {
    let keys = reference.merge(current);
    let edges = sturges_edges(
        keys.min().unwrap_or(0.0),
        keys.max().unwrap_or(0.0),
        keys.n_distinct() as u64,
        integer,
    );
    let density = |runs: &Runs| -> Vec<f64> {
        let counts = histogram(runs, &edges);
        let total: u64 = counts.iter().sum();
        counts
            .iter()
            .zip(edges.windows(2))
            .map(|(c, w)| *c as f64 / (w[1] - w[0]) / total as f64)
            .collect()
    };
    let (h1, h2) = (density(reference), density(current));
    let lo = edges.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = edges.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let width = (hi - lo) / (edges.len() - 1) as f64;
    let bc: f64 = h1
        .iter()
        .zip(&h2)
        .map(|(p, q)| (p * q).sqrt() * width)
        .sum();
    (1.0 - bc.clamp(0.0, 1.0)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_are_at_distance_zero() {
        let p = [0.2, 0.3, 0.5];
        assert!(psi(&p, &p).abs() < 1e-15);
        assert!(kl_divergence(&p, &p).abs() < 1e-15);
        assert!(jensen_shannon(&p, &p).abs() < 1e-7);
        assert!(hellinger_shares(&p, &p).abs() < 1e-7);
    }

    #[test]
    fn jensen_shannon_matches_scipy_doc() {
        // jensenshannon([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]) == sqrt(ln 2)
        let d = jensen_shannon(&[1.0, 0.0, 0.0], &[0.0, 1.0, 0.0]);
        assert!((d - 2f64.ln().sqrt()).abs() < 1e-12);
    }
}
