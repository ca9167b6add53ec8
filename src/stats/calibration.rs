//! Expected calibration error (Guo et al. 2017) with equal-width confidence
//! bins: ECE = sum over bins of |accuracy - mean confidence| * share of rows.
//! A row falls in bin (lo, hi]; confidence 0 joins the first bin.

#[derive(Debug, Clone)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    pub mean_confidence: f64,
    pub accuracy: f64,
}

#[derive(Debug, Clone)]
pub struct Calibration {
    pub ece: f64,
    pub bins: Vec<CalibrationBin>,
}

/// `confidence[i]` is the model's confidence in its prediction, `correct[i]`
/// whether that prediction was right. Rows with a non-finite confidence are
/// skipped. Returns `None` with no usable row.
pub fn expected_calibration_error(
    confidence: &[f64],
    correct: &[bool],
    n_bins: usize,
) -> Option<Calibration> {
    let mut rows = vec![0u64; n_bins];
    let mut conf_sum = vec![0.0; n_bins];
    let mut hits = vec![0u64; n_bins];
    for (&c, &ok) in confidence.iter().zip(correct) {
        if !c.is_finite() {
            continue;
        }
        let c = c.clamp(0.0, 1.0);
        let bin = ((c * n_bins as f64).ceil() as usize).clamp(1, n_bins) - 1;
        rows[bin] += 1;
        conf_sum[bin] += c;
        hits[bin] += ok as u64;
    }
    calibration_from_bins(&rows, &conf_sum, &hits)
}

/// The same from per-bin sums (rows, summed confidence, correct rows), as a
/// streaming aggregation produces them. `None` when every bin is empty.
pub fn calibration_from_bins(rows: &[u64], conf_sum: &[f64], hits: &[u64]) -> Option<Calibration> {
    let n_bins = rows.len();
    let total: u64 = rows.iter().sum();
    if total == 0 {
        return None;
    }
    let mut ece = 0.0;
    let mut bins = Vec::with_capacity(n_bins);
    for b in 0..n_bins {
        let (mean_confidence, accuracy) = if rows[b] > 0 {
            (
                conf_sum[b] / rows[b] as f64,
                hits[b] as f64 / rows[b] as f64,
            )
        } else {
            (f64::NAN, f64::NAN)
        };
        if rows[b] > 0 {
            ece += (accuracy - mean_confidence).abs() * rows[b] as f64 / total as f64;
        }
        bins.push(CalibrationBin {
            lower: b as f64 / n_bins as f64,
            upper: (b + 1) as f64 / n_bins as f64,
            count: rows[b],
            mean_confidence,
            accuracy,
        });
    }
    Some(Calibration { ece, bins })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfectly_calibrated_bins_have_zero_error() {
        let conf = [0.5, 0.5, 1.0, 1.0];
        let correct = [true, false, true, true];
        let c = expected_calibration_error(&conf, &correct, 10).unwrap();
        assert!(c.ece.abs() < 1e-12);
    }

    #[test]
    fn overconfidence_is_measured() {
        // Confidence 0.9, accuracy 0.5 -> ECE 0.4.
        let c = expected_calibration_error(&[0.9, 0.9], &[true, false], 15).unwrap();
        assert!((c.ece - 0.4).abs() < 1e-12);
        assert_eq!(c.bins.iter().map(|b| b.count).sum::<u64>(), 2);
    }
}
