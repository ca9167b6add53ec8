//! k-sample Anderson-Darling test for two samples, as
//! `scipy.stats.anderson_ksamp` with the midrank statistic (Scholz &
//! Stephens 1987). The p-value is interpolated from the published critical
//! values and, like scipy's, capped to [0.001, 0.25].

use super::binning::align_values;
use super::Runs;

#[derive(Debug, Clone, Copy)]
pub struct AndersonResult {
    /// The standardized statistic.
    pub statistic: f64,
    pub p_value: f64,
}

/// `None` when the pooled data hold fewer than two distinct values.
pub fn anderson_ksamp(a: &Runs, b: &Runs) -> Option<AndersonResult> {
    let (z_star, ca, cb) = align_values(a, b);
    if z_star.len() < 2 {
        return None;
    }
    let k = 2.0;
    let n = [a.n() as f64, b.n() as f64];
    let nn = n[0] + n[1];
    let mut a2akn = 0.0;
    for (sample, counts) in [&ca, &cb].into_iter().enumerate() {
        let mut below_pooled = 0.0;
        let mut below_sample = 0.0;
        let mut sum = 0.0;
        for (idx, _) in z_star.iter().enumerate() {
            let lj = (ca[idx] + cb[idx]) as f64;
            let fij = counts[idx] as f64;
            let bj = below_pooled + lj / 2.0;
            let mij = below_sample + fij - fij / 2.0;
            let num = nn * mij - bj * n[sample];
            sum += lj / nn * num * num / (bj * (nn - bj) - nn * lj / 4.0);
            below_pooled += lj;
            below_sample += fij;
        }
        a2akn += sum / n[sample];
    }
    a2akn *= (nn - 1.0) / nn;

    let h_sum: f64 = n.iter().map(|x| 1.0 / x).sum();
    // h = sum_{i=1}^{N-1} 1/i ; g = sum_{i=1}^{N-2} sum_{j=i+1}^{N-1} 1/((N-i) j)
    let total = nn as u64;
    let mut hs_cs = 0.0;
    let mut g = 0.0;
    for (t, denom) in (2..total).rev().enumerate() {
        hs_cs += 1.0 / denom as f64;
        g += hs_cs / (t as f64 + 2.0);
    }
    let h = hs_cs + 1.0;
    let a = (4.0 * g - 6.0) * (k - 1.0) + (10.0 - 6.0 * g) * h_sum;
    let bb = (2.0 * g - 4.0) * k * k + 8.0 * h * k + (2.0 * g - 14.0 * h - 4.0) * h_sum - 8.0 * h
        + 4.0 * g
        - 6.0;
    let c = (6.0 * h + 2.0 * g - 2.0) * k * k
        + (4.0 * h - 4.0 * g + 6.0) * k
        + (2.0 * h - 6.0) * h_sum
        + 4.0 * h;
    let d = (2.0 * h + 6.0) * k * k - 4.0 * h * k;
    let sigmasq =
        (a * nn.powi(3) + bb * nn * nn + c * nn + d) / ((nn - 1.0) * (nn - 2.0) * (nn - 3.0));
    let m = k - 1.0;
    let statistic = (a2akn - m) / sigmasq.sqrt();
    Some(AndersonResult {
        statistic,
        p_value: p_value(statistic, m),
    })
}

fn p_value(a2: f64, m: f64) -> f64 {
    const B0: [f64; 7] = [0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085];
    const B1: [f64; 7] = [-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615];
    const B2: [f64; 7] = [-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154];
    const SIG: [f64; 7] = [0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001];
    let critical: Vec<f64> = (0..7)
        .map(|i| B0[i] + B1[i] / m.sqrt() + B2[i] / m)
        .collect();
    let lo = critical.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = critical.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if a2.is_nan() {
        return f64::NAN;
    }
    if a2 < lo {
        return 0.25;
    }
    if a2 > hi {
        return 0.001;
    }
    let logs: Vec<f64> = SIG.iter().map(|s| s.ln()).collect();
    let coef = quadratic_fit(&critical, &logs);
    (coef[0] * a2 * a2 + coef[1] * a2 + coef[2]).exp()
}

/// Least-squares fit y ~ c0 x^2 + c1 x + c2 (what `numpy.polyfit(x, y, 2)`
/// returns), solved from the normal equations on centred x for stability.
fn quadratic_fit(x: &[f64], y: &[f64]) -> [f64; 3] {
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let mut ata = [[0.0; 3]; 3];
    let mut aty = [0.0; 3];
    for (&xi, &yi) in x.iter().zip(y) {
        let t = xi - mean;
        let row = [t * t, t, 1.0];
        for r in 0..3 {
            for c in 0..3 {
                ata[r][c] += row[r] * row[c];
            }
            aty[r] += row[r] * yi;
        }
    }
    let s = solve3(ata, aty);
    // Expand c0 (x-mean)^2 + c1 (x-mean) + c2 back into powers of x.
    [
        s[0],
        s[1] - 2.0 * s[0] * mean,
        s[0] * mean * mean - s[1] * mean + s[2],
    ]
}

fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> [f64; 3] {
    for col in 0..3 {
        let pivot = (col..3)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap();
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..3 {
            let f = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (x, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let mut s = b[row];
        for c in row + 1..3 {
            s -= a[row][c] * x[c];
        }
        x[row] = s / a[row][row];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_samples_hit_the_floor() {
        let a = Runs::from_values((0..50).map(|i| i as f64).collect());
        let b = Runs::from_values((100..150).map(|i| i as f64).collect());
        assert_eq!(anderson_ksamp(&a, &b).unwrap().p_value, 0.001);
    }

    #[test]
    fn one_distinct_value_has_no_test() {
        let a = Runs::from_values(vec![1.0, 1.0]);
        assert!(anderson_ksamp(&a, &a).is_none());
    }
}
