//! Model performance from a prediction log with (possibly delayed) labels:
//! accuracy for classifiers, RMSE for regressors, and calibration.

use crate::data::{ConfidenceBin, OutcomeCounts, ValueCounts};
use crate::stats::calibration::{calibration_from_bins, Calibration};

/// Bins of the reliability table, as in Guo et al. (2017).
pub const CALIBRATION_BINS: usize = 15;
/// Numeric predictions with more distinct values than this are a regressor's.
const MAX_CLASSES: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Classification,
    Regression,
}

/// A classifier predicts classes: text, booleans, or whole numbers with few
/// distinct values. Anything else is a regressor.
pub fn task_of(prediction: &ValueCounts) -> Task {
    match prediction {
        ValueCounts::Numbers(entries) => {
            let mut distinct: Vec<u64> = Vec::new();
            for x in entries.iter().filter_map(|(_, v, _)| *v) {
                if x.fract() != 0.0 {
                    return Task::Regression;
                }
                if !distinct.contains(&x.to_bits()) {
                    distinct.push(x.to_bits());
                }
            }
            if distinct.len() > MAX_CLASSES {
                Task::Regression
            } else {
                Task::Classification
            }
        }
        _ => Task::Classification,
    }
}

#[derive(Debug, Clone, Default)]
pub struct Performance {
    pub labelled: u64,
    pub accuracy: Option<f64>,
    pub rmse: Option<f64>,
}

pub fn performance(task: Task, counts: &OutcomeCounts) -> Performance {
    let n = counts.labelled;
    let (accuracy, rmse) = match task {
        Task::Classification => ((n > 0).then(|| counts.hits as f64 / n as f64), None),
        Task::Regression => (
            None,
            (n > 0).then(|| (counts.squared_error / n as f64).sqrt()),
        ),
    };
    Performance {
        labelled: n,
        accuracy,
        rmse,
    }
}

/// Sums outcome counts (the whole data from its windows).
pub fn add_outcomes(total: &mut OutcomeCounts, part: &OutcomeCounts) {
    total.labelled += part.labelled;
    total.hits += part.hits;
    total.squared_error += part.squared_error;
}

/// The reliability table and ECE from per-bin sums.
pub fn calibration(bins: &[ConfidenceBin]) -> Option<Calibration> {
    let rows: Vec<u64> = bins.iter().map(|b| b.rows).collect();
    let sums: Vec<f64> = bins.iter().map(|b| b.confidence_sum).collect();
    let hits: Vec<u64> = bins.iter().map(|b| b.hits).collect();
    calibration_from_bins(&rows, &sums, &hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_or_many_numbers_are_regression() {
        let v =
            |xs: &[f64]| ValueCounts::Numbers(xs.iter().map(|x| (Some(0), Some(*x), 1)).collect());
        assert_eq!(task_of(&v(&[0.5, 1.0])), Task::Regression);
        assert_eq!(task_of(&v(&[0.0, 1.0])), Task::Classification);
        let many: Vec<f64> = (0..60).map(f64::from).collect();
        assert_eq!(task_of(&v(&many)), Task::Regression);
    }

    #[test]
    fn accuracy_and_rmse_from_counts() {
        let c = OutcomeCounts {
            labelled: 4,
            hits: 3,
            squared_error: 4.0,
        };
        assert_eq!(performance(Task::Classification, &c).accuracy, Some(0.75));
        assert_eq!(performance(Task::Regression, &c).rmse, Some(1.0));
        assert_eq!(
            performance(Task::Classification, &OutcomeCounts::default()).accuracy,
            None
        );
    }
}
