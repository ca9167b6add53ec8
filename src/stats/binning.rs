//! Turning two samples into aligned shares, exactly as Evidently does before
//! PSI, Kullback-Leibler, Jensen-Shannon and Hellinger (`get_binned_data`):
//! * numeric columns with more than 20 distinct reference values: Sturges
//!   bins over the pooled data (`numpy.histogram_bin_edges(..., "sturges")`),
//!   shares of each sample per bin;
//! * otherwise: shares of each distinct value over the union of values;
//! * for PSI and KL, empty shares are replaced by a small number so that the
//!   logarithms stay finite (`fill_zeroes`).

use super::Runs;

/// Above this many distinct reference values a numeric column is binned.
pub const MAX_VALUES_UNBINNED: usize = 20;

/// `numpy.histogram_bin_edges(data, bins="sturges")` for data with the given
/// extremes and size. `integer` mirrors numpy's rule for integer arrays
/// (bins at least one unit wide).
pub fn sturges_edges(min: f64, max: f64, n: u64, integer: bool) -> Vec<f64> {
    let (mut first, mut last) = (min, max);
    if first == last {
        first -= 0.5;
        last += 0.5;
    }
    let mut width = (max - min) / ((n as f64).log2() + 1.0);
    let bins = if width > 0.0 {
        if integer && width < 1.0 {
            width = 1.0;
        }
        ((last - first) / width).ceil() as usize
    } else {
        1
    };
    linspace(first, last, bins + 1)
}

/// `numpy.linspace(start, stop, num)` with the endpoint.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let div = (num - 1) as f64;
    let step = (stop - start) / div;
    let mut out: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if num > 1 {
        out[num - 1] = stop;
    }
    out
}

/// Counts per bin as `numpy.histogram(data, bins=edges)`: [e_i, e_i+1), the
/// last bin closed; values outside the edges are not counted.
pub fn histogram(runs: &Runs, edges: &[f64]) -> Vec<u64> {
    // Cumulative count of values below each edge (the last edge inclusive).
    let below = |edge: f64, inclusive: bool| -> u64 {
        let idx = runs
            .values
            .partition_point(|&v| if inclusive { v <= edge } else { v < edge });
        runs.counts[..idx].iter().sum()
    };
    let k = edges.len();
    let cum: Vec<u64> = edges
        .iter()
        .enumerate()
        .map(|(i, &e)| below(e, i == k - 1))
        .collect();
    cum.windows(2).map(|w| w[1] - w[0]).collect()
}

/// The union of distinct values of two samples with each one's counts.
pub fn align_values(a: &Runs, b: &Runs) -> (Vec<f64>, Vec<u64>, Vec<u64>) {
    let (mut keys, mut ca, mut cb) = (Vec::new(), Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < a.values.len() || j < b.values.len() {
        let v = match (a.values.get(i), b.values.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => unreachable!(),
        };
        keys.push(v);
        if a.values.get(i) == Some(&v) {
            ca.push(a.counts[i]);
            i += 1;
        } else {
            ca.push(0);
        }
        if b.values.get(j) == Some(&v) {
            cb.push(b.counts[j]);
            j += 1;
        } else {
            cb.push(0);
        }
    }
    (keys, ca, cb)
}

/// Aligned shares of two numeric samples, with bin labels for charts.
#[derive(Debug, Clone)]
pub struct Binned {
    pub labels: Vec<String>,
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
}

/// Evidently's binning of a numeric column (see the module comment).
pub fn bin_numeric(reference: &Runs, current: &Runs, integer: bool) -> Binned {
    let n_ref = reference.n() as f64;
    let n_cur = current.n() as f64;
    if reference.n_distinct() > MAX_VALUES_UNBINNED {
        let pooled_min = reference
            .min()
            .unwrap()
            .min(current.min().unwrap_or(f64::MAX));
        let pooled_max = reference
            .max()
            .unwrap()
            .max(current.max().unwrap_or(f64::MIN));
        let edges = sturges_edges(pooled_min, pooled_max, reference.n() + current.n(), integer);
        let labels = edges
            .windows(2)
            .map(|w| {
                format!(
                    "{}..{}",
                    crate::report::format_float(w[0]),
                    crate::report::format_float(w[1])
                )
            })
            .collect();
        Binned {
            labels,
            reference: histogram(reference, &edges)
                .into_iter()
                .map(|c| c as f64 / n_ref)
                .collect(),
            current: histogram(current, &edges)
                .into_iter()
                .map(|c| c as f64 / n_cur)
                .collect(),
        }
    } else {
        let (keys, ca, cb) = align_values(reference, current);
        Binned {
            labels: keys
                .iter()
                .map(|k| crate::report::format_float(*k))
                .collect(),
            reference: ca.into_iter().map(|c| c as f64 / n_ref).collect(),
            current: cb.into_iter().map(|c| c as f64 / n_cur).collect(),
        }
    }
}

/// Shares of aligned category counts.
pub fn shares(counts: &[u64]) -> Vec<f64> {
    let n: u64 = counts.iter().sum();
    counts.iter().map(|&c| c as f64 / n as f64).collect()
}

/// Replaces empty shares by min(non-zero share) / 1e6 when that minimum is at
/// most 1e-4, else by 1e-4 (Evidently's `feel_zeroes`).
pub fn fill_zeroes(shares: &mut [f64]) {
    let min_nonzero = shares
        .iter()
        .copied()
        .filter(|&s| s != 0.0)
        .fold(f64::INFINITY, f64::min);
    if !min_nonzero.is_finite() {
        return;
    }
    let fill = if min_nonzero <= 1e-4 {
        min_nonzero / 1e6
    } else {
        1e-4
    };
    for s in shares.iter_mut().filter(|s| **s == 0.0) {
        *s = fill;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sturges_edges_match_numpy() {
        // np.histogram_bin_edges(np.arange(10.0), bins="sturges")
        // -> 5 bins: [0, 1.8, 3.6, 5.4, 7.2, 9]
        let e = sturges_edges(0.0, 9.0, 10, false);
        assert_eq!(e.len(), 6);
        assert!((e[1] - 1.8).abs() < 1e-12);
        // A constant sample gets one bin around the value.
        assert_eq!(sturges_edges(3.0, 3.0, 5, false), vec![2.5, 3.5]);
    }

    #[test]
    fn histogram_closes_only_the_last_bin() {
        let r = Runs::from_values(vec![0.0, 1.0, 1.0, 2.0]);
        assert_eq!(histogram(&r, &[0.0, 1.0, 2.0]), vec![1, 3]);
    }

    #[test]
    fn zeroes_are_filled_like_evidently() {
        let mut s = vec![0.5, 0.0, 0.5];
        fill_zeroes(&mut s);
        assert_eq!(s[1], 1e-4);
        let mut s = vec![0.99995, 0.00005, 0.0];
        fill_zeroes(&mut s);
        assert!((s[2] - 5e-11).abs() < 1e-20);
    }
}
