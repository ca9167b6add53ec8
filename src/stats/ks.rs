//! Two-sample Kolmogorov-Smirnov test, two-sided, following
//! `scipy.stats.ks_2samp(method="auto")`:
//! * exact p-value when both samples have at most 10 000 observations
//!   (Hodges' lattice-path counting, with Viehmann's 1-p recursion for
//!   unequal sizes), falling back to the asymptotic one if it fails;
//! * otherwise the distribution of the one-sample statistic D_n at
//!   n = round(n1*n2/(n1+n2)), computed as `scipy.stats.kstwo.sf`
//!   (Simard & L'Ecuyer 2011: Durbin's matrix, Pelz-Good, Smirnov's
//!   exact one-sided sum).

use super::Runs;
use statrs::function::gamma::ln_gamma;

/// Largest sample size for which `auto` uses the exact distribution.
pub const MAX_EXACT_N: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    Exact,
    Asymptotic,
}

#[derive(Debug, Clone, Copy)]
pub struct KsResult {
    pub statistic: f64,
    pub p_value: f64,
    pub method: Method,
}

/// The largest distance between the two empirical distribution functions.
pub fn statistic(a: &Runs, b: &Runs) -> f64 {
    let (n1, n2) = (a.n() as f64, b.n() as f64);
    let (mut i, mut j) = (0, 0);
    let (mut c1, mut c2) = (0u64, 0u64);
    let mut d: f64 = 0.0;
    while i < a.values.len() || j < b.values.len() {
        let v = match (a.values.get(i), b.values.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => unreachable!(),
        };
        if a.values.get(i) == Some(&v) {
            c1 += a.counts[i];
            i += 1;
        }
        if b.values.get(j) == Some(&v) {
            c2 += b.counts[j];
            j += 1;
        }
        d = d.max((c1 as f64 / n1 - c2 as f64 / n2).abs());
    }
    d
}

/// Two-sided two-sample test; both samples must be non-empty.
pub fn ks_2samp(a: &Runs, b: &Runs) -> KsResult {
    let (n1, n2) = (a.n(), b.n());
    let d = statistic(a, b);
    if n1.max(n2) <= MAX_EXACT_N {
        if let Some((d_exact, p)) = exact(n1, n2, d) {
            return KsResult {
                statistic: d_exact,
                p_value: p.clamp(0.0, 1.0),
                method: Method::Exact,
            };
        }
    }
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = (m * n / (m + n)).round() as u64;
    KsResult {
        statistic: d,
        p_value: kolmogorov_sf(en, d).clamp(0.0, 1.0),
        method: Method::Asymptotic,
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Exact p-value; `None` when the computation leaves [0, 1].
fn exact(n1: u64, n2: u64, d: f64) -> Option<(f64, f64)> {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round() as u64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return Some((d, 1.0));
    }
    let p = if n1 == n2 {
        prob_outside_square(n1, h)
    } else {
        outer_prob_inside(n1, n2, g, h)
    };
    (p.is_finite() && (0.0..=1.0).contains(&p)).then_some((d, p))
}

/// Share of lattice paths from (0,0) to (n,n) that reach |x - y| >= h.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let mut total = 0.0;
    let mut k = (n / h) as i64;
    while k >= 0 {
        let kh = k as u64 * h;
        let mut p1 = 1.0;
        for j in 0..h {
            if n < kh + j {
                p1 = 0.0;
                break;
            }
            p1 = (n - kh - j) as f64 * p1 / (n + kh + j + 1) as f64;
        }
        total = p1 * (1.0 - total);
        k -= 1;
    }
    2.0 * total
}

/// Share of lattice paths from (0,0) to (m,n) that leave the band
/// |x/m - y/n| < h/lcm(m,n), computed directly as 1-p (Viehmann 2021).
fn outer_prob_inside(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (mg, ng) = ((m / g) as i64, (n / g) as i64);
    let (m, n, h) = (m as i64, n as i64, h as i64);
    let ceil_div = |a: i64, b: i64| -> i64 { (a as f64 / b as f64).ceil() as i64 };
    let floor_div = |a: i64, b: i64| -> i64 { (a as f64 / b as f64).floor() as i64 };
    let mut minj = 0i64;
    let mut maxj = ceil_div(h, mg).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for v in a.iter_mut().take(maxj as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = (floor_div(ng * i - h, mg) + 1).max(0).min(n);
        maxj = ceil_div(ng * i + h, mg).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let idx = (jj + minj - lastminj) as usize;
            let prev = a.get(idx).copied().unwrap_or(1.0);
            val = (prev * i as f64 + val * j as f64) / (i + j) as f64;
            a[jj as usize] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let start = ((maxj - minj) as usize).min(a.len());
            let end = (start + (lastlen - curlen) as usize).min(a.len());
            for v in &mut a[start..end] {
                *v = 1.0;
            }
        }
    }
    a[(maxj - minj - 1) as usize]
}

/// Survival function of the two-sided one-sample statistic D_n:
/// P(D_n >= x), as `scipy.stats.kstwo.sf(x, n)`.
pub fn kolmogorov_sf(n: u64, x: f64) -> f64 {
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben-Gambino: P(D_n <= x) = n!/n^n (2t-1)^n for 1/2n <= x <= 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = if n <= 140 {
            (1..=n).fold(1.0, |p, i| p * (i as f64 / nf) * (2.0 * t - 1.0))
        } else {
            (ln_gamma(nf + 1.0) - nf * nf.ln() + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip(1.0 - cdf);
    }
    if t >= nf - 1.0 {
        return clip(2.0 * (1.0 - x).powf(nf));
    }
    if x >= 0.5 {
        return clip(2.0 * smirnov_sf(n, x));
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 4.0 {
            // Durbin's matrix is exact here (scipy switches to Pomeranz's
            // equally exact recursion above 0.754693, for speed).
            return clip(1.0 - durbin_cdf(n, x));
        }
        return clip(2.0 * smirnov_sf(n, x));
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return clip(2.0 * smirnov_sf(n, x));
    }
    let cdf = if nxsquared >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        durbin_cdf(n, x)
    } else {
        pelz_good_cdf(n, x)
    };
    clip(1.0 - cdf)
}

fn clip(p: f64) -> f64 {
    p.clamp(0.0, 1.0)
}

/// One-sided Smirnov survival P(D_n^+ >= x), by the exact Birnbaum-Tingey sum
/// x * sum_j C(n,j) (1-x-j/n)^(n-j) (x+j/n)^(j-1), summed in log space.
pub fn smirnov_sf(n: u64, x: f64) -> f64 {
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let maxj = (nf * (1.0 - x)).floor() as u64;
    let ln_n_fact = ln_gamma(nf + 1.0);
    let mut logs = Vec::with_capacity(maxj as usize + 1);
    for j in 0..=maxj {
        let jf = j as f64;
        let a = 1.0 - x - jf / nf;
        if a <= 0.0 && j < n {
            continue;
        }
        let ln_binom = ln_n_fact - ln_gamma(jf + 1.0) - ln_gamma(nf - jf + 1.0);
        let term = ln_binom + (nf - jf) * a.ln() + (jf - 1.0) * (x + jf / nf).ln();
        logs.push(term);
    }
    let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return 0.0;
    }
    let sum: f64 = logs.iter().map(|l| (l - top).exp()).sum();
    x * (top.exp() * sum)
}

/// P(D_n <= d) by Durbin's matrix method (Marsaglia, Tsang & Wang 2003).
fn durbin_cdf(n: u64, d: f64) -> f64 {
    const E128: i32 = 128;
    let ep128 = 2f64.powi(E128);
    let em128 = 2f64.powi(-E128);
    let nd = n as f64 * d;
    if d >= 1.0 {
        return 1.0;
    }
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut v = vec![0.0; m];
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] = (1.0 - h.powi(j as i32)) * fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32);
    v[m - 1] = (1.0 + tt) * fac;
    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    let matmul = |a: &[f64], b: &[f64]| -> Vec<f64> {
        let mut out = vec![0.0; m * m];
        for i in 0..m {
            for l in 0..m {
                let ail = a[i * m + l];
                if ail == 0.0 {
                    continue;
                }
                for j in 0..m {
                    out[i * m + j] += ail * b[l * m + j];
                }
            }
        }
        out
    };
    let mut power = vec![0.0; m * m];
    for i in 0..m {
        power[i * m + i] = 1.0;
    }
    let (mut nn, mut expnt, mut h_expnt) = (n, 0i32, 0i32);
    while nn > 0 {
        if nn % 2 == 1 {
            power = matmul(&power, &hm);
            expnt += h_expnt;
        }
        hm = matmul(&hm, &hm);
        h_expnt *= 2;
        if hm[(k - 1) * m + (k - 1)].abs() > ep128 {
            for x in hm.iter_mut() {
                *x /= ep128;
            }
            h_expnt += E128;
        }
        nn /= 2;
    }
    let mut p = power[(k - 1) * m + (k - 1)];
    let nf = n as f64;
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < em128 {
            p *= ep128;
            expnt -= E128;
        }
    }
    p * 2f64.powi(expnt)
}

/// P(D_n <= x) by the Pelz-Good asymptotic series (1976).
fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    use std::f64::consts::PI;
    let sqrt2pi = (2.0 * PI).sqrt();
    let (pi2, pi4, pi6) = (PI * PI, PI.powi(4), PI.powi(6));
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let z = (n as f64).sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let qlog = -pi2 / 8.0 / z2;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let k1a = -z2;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let mut k = [0.0f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for kk in (1..=maxk).rev() {
        let m = (2 * kk - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let qpower = q.powf(8.0 * kk as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (acc, c) in k.iter_mut().zip(coeffs) {
            *acc = *acc * qpower + c;
        }
    }
    let div = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (acc, d) in k.iter_mut().zip(div) {
        *acc = *acc * q * sqrt2pi / d;
    }
    let q = (-pi2 / 2.0 / z2).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let (mut k2extra, mut k3extra) = (0.0, 0.0);
    for kk in (1..=maxk).rev() {
        let kf = kk as f64;
        let qp = q.powf(kf * kf);
        let kspi = PI * kf;
        k2extra += kf * kf * qp;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * kf * kf * qp;
    }
    k[2] += k2extra * pi2 * sqrt2pi / (-36.0 * z3);
    k[3] += k3extra * pi2 * sqrt2pi / (216.0 * z6);
    let nf = n as f64;
    (0..4).map(|i| k[i] / nf.powf(i as f64 / 2.0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(v: &[f64]) -> Runs {
        Runs::from_values(v.to_vec())
    }

    #[test]
    fn identical_samples_have_p_one() {
        let a = runs(&[1.0, 2.0, 3.0]);
        let r = ks_2samp(&a, &a);
        assert_eq!(r.statistic, 0.0);
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn equal_sizes_exact_value_from_scipy() {
        // scipy.stats.ks_2samp([1,2,3,4,5],[6,7,8,9,10]) -> D=1, p=0.007936507936507936
        let r = ks_2samp(&runs(&[1., 2., 3., 4., 5.]), &runs(&[6., 7., 8., 9., 10.]));
        assert_eq!(r.statistic, 1.0);
        assert!((r.p_value - 0.007936507936507936).abs() < 1e-15);
    }

    #[test]
    fn kolmogorov_sf_branches_are_continuous_enough() {
        // scipy.stats.kstwo.sf(0.05, 1000) = 0.013012074781090332 (2 x Smirnov)
        let p = kolmogorov_sf(1000, 0.05);
        assert!((p - 0.013012074781090332).abs() < 1e-12, "{p}");
    }
}
