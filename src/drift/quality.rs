//! Data-quality checks of the current data against the baseline: the failures
//! that break a model without moving a distribution test much (a unit change
//! pushes values out of the training range, an upstream join starts to drop
//! values, a new category appears).

use crate::stats::profile::ColumnProfile;

/// Flag a null-rate change of at least this much (absolute share).
pub const NULL_RATE_CHANGE: f64 = 0.05;
/// Flag when at least this share of current values lies outside the baseline
/// range, or belongs to categories the baseline never saw.
pub const OUTSIDE_SHARE: f64 = 0.01;
/// Flag a mean shift beyond this many baseline standard deviations.
pub const MEAN_SHIFT_SD: f64 = 2.0;

#[derive(Debug, Clone, Default)]
pub struct Quality {
    pub null_rate_reference: f64,
    pub null_rate_current: f64,
    pub non_finite_current: u64,
    pub outside_range_share: Option<f64>,
    pub unseen_categories: Option<usize>,
    pub unseen_share: Option<f64>,
    pub mean_shift_sd: Option<f64>,
    pub constant_current: bool,
    pub flags: Vec<String>,
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

pub fn check(reference: &ColumnProfile, current: &ColumnProfile) -> Quality {
    let mut q = Quality {
        null_rate_reference: rate(reference.nulls, reference.rows),
        null_rate_current: rate(current.nulls, current.rows),
        non_finite_current: current.nan + current.infinite,
        ..Default::default()
    };
    let change = q.null_rate_current - q.null_rate_reference;
    if change.abs() >= NULL_RATE_CHANGE {
        q.flags.push(format!(
            "null rate {:.1}% -> {:.1}%",
            100.0 * q.null_rate_reference,
            100.0 * q.null_rate_current
        ));
    }
    if current.nan + current.infinite > 0 && reference.nan + reference.infinite == 0 {
        q.flags.push(format!(
            "{} NaN or infinite values (none in baseline)",
            current.nan + current.infinite
        ));
    }
    if let (Some(r), Some(c)) = (&reference.numbers, &current.numbers) {
        if let (Some(lo), Some(hi)) = (r.min(), r.max()) {
            if !c.is_empty() {
                let share = c.share_outside(lo, hi);
                q.outside_range_share = Some(share);
                if share >= OUTSIDE_SHARE {
                    q.flags.push(format!(
                        "{:.1}% outside baseline range {}..{}",
                        100.0 * share,
                        crate::report::format_float(lo),
                        crate::report::format_float(hi)
                    ));
                }
                let sd = r.std();
                if sd > 0.0 {
                    let shift = (c.mean() - r.mean()) / sd;
                    q.mean_shift_sd = Some(shift);
                    if shift.abs() > MEAN_SHIFT_SD {
                        q.flags.push(format!("mean shifted {shift:+.2} sd"));
                    }
                }
            }
        }
        q.constant_current = c.n_distinct() == 1 && r.n_distinct() > 1;
    }
    if let (Some(r), Some(c)) = (&reference.categories, &current.categories) {
        let unseen: Vec<(&String, &u64)> = c.iter().filter(|(k, _)| !r.contains_key(*k)).collect();
        let unseen_rows: u64 = unseen.iter().map(|(_, n)| **n).sum();
        let share = rate(unseen_rows, current.usable());
        q.unseen_categories = Some(unseen.len());
        q.unseen_share = Some(share);
        if share >= OUTSIDE_SHARE {
            let examples: Vec<&str> = unseen.iter().take(3).map(|(k, _)| k.as_str()).collect();
            q.flags.push(format!(
                "{} unseen categories in {:.1}% of rows (e.g. {})",
                unseen.len(),
                100.0 * share,
                examples.join(", ")
            ));
        }
        q.constant_current = c.len() == 1 && r.len() > 1;
    }
    if q.constant_current {
        q.flags.push("constant in current data".to_string());
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Runs;

    fn numeric(values: Vec<f64>, nulls: u64) -> ColumnProfile {
        let mut p = ColumnProfile::empty("x", "float");
        p.rows = values.len() as u64 + nulls;
        p.nulls = nulls;
        p.numbers = Some(Runs::from_values(values));
        p
    }

    #[test]
    fn a_unit_change_is_flagged_as_out_of_range_and_mean_shift() {
        let r = numeric((0..100).map(|i| 100.0 + i as f64).collect(), 0);
        let c = numeric((0..100).map(|i| (100.0 + i as f64) / 100.0).collect(), 0);
        let q = check(&r, &c);
        assert_eq!(q.outside_range_share, Some(1.0));
        assert!(q.mean_shift_sd.unwrap() < -2.0);
        assert_eq!(q.flags.len(), 2);
    }

    #[test]
    fn a_null_burst_is_flagged() {
        let r = numeric(vec![1.0, 2.0, 3.0, 4.0], 0);
        let c = numeric(vec![1.0, 2.0, 3.0], 1);
        let q = check(&r, &c);
        assert_eq!(q.null_rate_current, 0.25);
        assert!(q.flags[0].starts_with("null rate"));
    }
}
