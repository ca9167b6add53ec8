//! Model performance from a prediction log with (possibly delayed) labels:
//! accuracy for classifiers, RMSE and MAE for regressors, and calibration.

use crate::data::{Values, NULL_CODE};
use crate::stats::calibration::{expected_calibration_error, Calibration};

/// Bins of the reliability table, as in Guo et al. (2017).
pub const CALIBRATION_BINS: usize = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Classification,
    Regression,
}

#[derive(Debug, Clone, Default)]
pub struct Performance {
    pub labelled: usize,
    pub accuracy: Option<f64>,
    pub rmse: Option<f64>,
    pub mae: Option<f64>,
}

/// A classifier predicts classes: text, booleans or whole numbers with few
/// distinct values. Anything else is a regressor.
pub fn task_of(prediction: &Values) -> Task {
    match prediction {
        Values::Numbers(v) => {
            let mut distinct: Vec<u64> = Vec::new();
            for x in v.iter().flatten() {
                if x.fract() != 0.0 {
                    return Task::Regression;
                }
                let bits = x.to_bits();
                if !distinct.contains(&bits) {
                    distinct.push(bits);
                    if distinct.len() > 50 {
                        return Task::Regression;
                    }
                }
            }
            Task::Classification
        }
        _ => Task::Classification,
    }
}

fn text_at(v: &Values, i: usize) -> Option<String> {
    match v {
        Values::Numbers(n) => n[i].map(crate::report::format_float),
        Values::Text { codes, names } => {
            (codes[i] != NULL_CODE).then(|| names[codes[i] as usize].clone())
        }
        Values::Micros(t) => t[i].map(|x| x.to_string()),
    }
}

fn number_at(v: &Values, i: usize) -> Option<f64> {
    match v {
        Values::Numbers(n) => n[i].filter(|x| x.is_finite()),
        _ => None,
    }
}

/// Whether each labelled row was predicted right (classification), by row.
pub fn correctness(prediction: &Values, label: &Values, rows: &[usize]) -> Vec<(usize, bool)> {
    rows.iter()
        .filter_map(|&i| {
            let ok = match (number_at(prediction, i), number_at(label, i)) {
                (Some(p), Some(l)) => Some(p == l),
                _ => match (text_at(prediction, i), text_at(label, i)) {
                    (Some(p), Some(l)) => Some(p == l),
                    _ => None,
                },
            };
            ok.map(|ok| (i, ok))
        })
        .collect()
}

pub fn performance(task: Task, prediction: &Values, label: &Values, rows: &[usize]) -> Performance {
    match task {
        Task::Classification => {
            let c = correctness(prediction, label, rows);
            let hits = c.iter().filter(|(_, ok)| *ok).count();
            Performance {
                labelled: c.len(),
                accuracy: (!c.is_empty()).then(|| hits as f64 / c.len() as f64),
                ..Default::default()
            }
        }
        Task::Regression => {
            let (mut n, mut se, mut ae) = (0usize, 0.0, 0.0);
            for &i in rows {
                if let (Some(p), Some(l)) = (number_at(prediction, i), number_at(label, i)) {
                    n += 1;
                    se += (p - l) * (p - l);
                    ae += (p - l).abs();
                }
            }
            Performance {
                labelled: n,
                rmse: (n > 0).then(|| (se / n as f64).sqrt()),
                mae: (n > 0).then(|| ae / n as f64),
                ..Default::default()
            }
        }
    }
}

pub fn calibration(
    prediction: &Values,
    label: &Values,
    confidence: &Values,
    rows: &[usize],
) -> Option<Calibration> {
    let c = correctness(prediction, label, rows);
    let (conf, ok): (Vec<f64>, Vec<bool>) = c
        .iter()
        .filter_map(|&(i, ok)| number_at(confidence, i).map(|x| (x, ok)))
        .unzip();
    expected_calibration_error(&conf, &ok, CALIBRATION_BINS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_skips_rows_without_label() {
        let p = Values::Numbers(vec![Some(1.0), Some(0.0), Some(1.0)]);
        let l = Values::Numbers(vec![Some(1.0), Some(1.0), None]);
        let perf = performance(Task::Classification, &p, &l, &[0, 1, 2]);
        assert_eq!(perf.labelled, 2);
        assert_eq!(perf.accuracy, Some(0.5));
    }

    #[test]
    fn fractional_predictions_are_regression() {
        assert_eq!(task_of(&Values::Numbers(vec![Some(0.5)])), Task::Regression);
        assert_eq!(
            task_of(&Values::Numbers(vec![Some(1.0)])),
            Task::Classification
        );
        let perf = performance(
            Task::Regression,
            &Values::Numbers(vec![Some(1.0), Some(3.0)]),
            &Values::Numbers(vec![Some(2.0), Some(3.0)]),
            &[0, 1],
        );
        assert!((perf.rmse.unwrap() - 0.5f64.sqrt()).abs() < 1e-12);
    }
}
