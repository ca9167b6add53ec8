//! Two-sample Cramér-von Mises test, as `scipy.stats.cramervonmises_2samp`
//! (method "auto": exact distribution when both samples have at most 20
//! observations, else the asymptotic one of Csörgő & Faraway 1996).

use super::Runs;
use statrs::function::gamma::ln_gamma;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
pub struct CvmResult {
    pub statistic: f64,
    pub p_value: f64,
}

/// `None` when a sample has fewer than two observations.
pub fn cramervonmises_2samp(x: &Runs, y: &Runs) -> Option<CvmResult> {
    let (nx, ny) = (x.n(), y.n());
    if nx <= 1 || ny <= 1 {
        return None;
    }
    let pooled = x.merge(y);
    // Midrank of each pooled distinct value.
    let mut rank_of = Vec::with_capacity(pooled.n_distinct());
    let mut below = 0u64;
    for &c in &pooled.counts {
        rank_of.push(below as f64 + (c as f64 + 1.0) / 2.0);
        below += c;
    }
    let sum_sq = |s: &Runs| -> f64 {
        let mut total = 0.0;
        let mut index = 0u64;
        let mut p = 0;
        for (v, c) in s.values.iter().zip(&s.counts) {
            while pooled.values[p] != *v {
                p += 1;
            }
            let r = rank_of[p];
            for _ in 0..*c {
                index += 1;
                let d = r - index as f64;
                total += d * d;
            }
        }
        total
    };
    let (nxf, nyf) = (nx as f64, ny as f64);
    let u = nxf * sum_sq(x) + nyf * sum_sq(y);
    let k = nxf * nyf;
    let n = nxf + nyf;
    let t = u / (k * n) - (4.0 * k - 1.0) / (6.0 * n);
    let p_value = if nx.max(ny) <= 20 {
        exact_p(u, nx, ny)
    } else {
        let et = (1.0 + 1.0 / n) / 6.0;
        let vt = (n + 1.0) * (4.0 * k * n - 3.0 * (nxf * nxf + nyf * nyf) - 2.0 * k)
            / (45.0 * n * n * 4.0 * k);
        let tn = 1.0 / 6.0 + (t - et) / (45.0 * vt).sqrt();
        if tn < 0.003 {
            1.0
        } else {
            (1.0 - cdf_cvm_inf(tn)).max(0.0)
        }
    };
    Some(CvmResult {
        statistic: t,
        p_value,
    })
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Exact p-value by counting lattice paths by their value of the statistic
/// (the generating-function recursion of Burr 1963, as scipy does it).
fn exact_p(u: f64, m: u64, n: u64) -> f64 {
    let lcm = m / gcd(m, n) * n;
    let (a, b) = (lcm / m, lcm / n);
    let mn = (m * n) as f64;
    let zeta = ((lcm * lcm) as f64 * (m + n) as f64 * (6.0 * u - mn * (4.0 * mn - 1.0))
        / (6.0 * mn * mn))
        .floor();
    // gs[v]: distribution of the partial statistic over paths ending at (u, v).
    let mut gs: Vec<BTreeMap<i64, f64>> = vec![BTreeMap::new(); m as usize + 1];
    gs[0].insert(0, 1.0);
    for uu in 0..=n {
        let mut next = Vec::with_capacity(gs.len());
        let mut tmp: BTreeMap<i64, f64> = BTreeMap::new();
        for (v, g) in gs.iter().enumerate() {
            for (val, freq) in g {
                *tmp.entry(*val).or_insert(0.0) += freq;
            }
            let step = (a * v as u64) as i64 - (b * uu) as i64;
            let add = step * step;
            tmp = tmp.into_iter().map(|(val, f)| (val + add, f)).collect();
            next.push(tmp.clone());
        }
        gs = next;
    }
    let combinations =
        (ln_gamma((m + n) as f64 + 1.0) - ln_gamma(m as f64 + 1.0) - ln_gamma(n as f64 + 1.0))
            .exp();
    let hits: f64 = gs[m as usize]
        .iter()
        .filter(|(val, _)| **val as f64 >= zeta)
        .map(|(_, f)| f)
        .sum();
    hits / combinations
}

/// CDF of the limiting Cramér-von Mises distribution (Csörgő & Faraway 1996,
/// eq. 1.2), summed until a term falls below 1e-7 as scipy does.
fn cdf_cvm_inf(x: f64) -> f64 {
    let mut total = 0.0;
    let mut k = 0u32;
    loop {
        let kf = k as f64;
        let u = (ln_gamma(kf + 0.5) - ln_gamma(kf + 1.0)).exp()
            / (std::f64::consts::PI.powf(1.5) * x.sqrt());
        let y = 4.0 * kf + 1.0;
        let q = y * y / (16.0 * x);
        let term = u * y.sqrt() * (-q).exp() * bessel_k(0.25, q);
        total += term;
        if term.abs() < 1e-7 || k > 1000 {
            return total;
        }
        k += 1;
    }
}

/// Modified Bessel function of the second kind K_nu(z) for z > 0, from
/// K_nu(z) = integral_0^inf exp(-z cosh t) cosh(nu t) dt. The integrand is
/// analytic and decays double-exponentially, so the trapezoidal rule with a
/// fine step is accurate to rounding.
pub fn bessel_k(nu: f64, z: f64) -> f64 {
    let step: f64 = 0.05;
    let mut sum = 0.5 * (-z).exp();
    let mut t = step;
    loop {
        let term = (-z * t.cosh()).exp() * (nu * t).cosh();
        sum += term;
        if term < 1e-18 * sum || t > 50.0 {
            break;
        }
        t += step;
    }
    sum * step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bessel_k_matches_closed_form_for_half_order() {
        // K_{1/2}(z) = sqrt(pi / (2z)) e^{-z}
        for z in [0.1, 1.0, 5.0] {
            let exact = (std::f64::consts::PI / (2.0 * z)).sqrt() * (-z).exp();
            assert!((bessel_k(0.5, z) - exact).abs() < 1e-12 * exact.max(1e-300));
        }
    }

    #[test]
    fn exact_p_of_separated_small_samples() {
        // scipy: cramervonmises_2samp([1,2,3],[4,5,6]).pvalue == 0.1
        let r = cramervonmises_2samp(
            &Runs::from_values(vec![1., 2., 3.]),
            &Runs::from_values(vec![4., 5., 6.]),
        )
        .unwrap();
        assert!((r.p_value - 0.1).abs() < 1e-12, "{}", r.p_value);
    }
}
