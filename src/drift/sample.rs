//! Turning counted values into `ColumnProfile`s: the one representation a
//! raw baseline file, a stored profile and the current data all reach before
//! any test runs. Counting itself happens in polars (`Table::value_counts`),
//! streaming, so memory follows the number of distinct values, not of rows.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::data::{Grouping, Table, ValueCounts, ValueType};
use crate::error::Result;
use crate::stats::profile::{ColumnProfile, TableProfile};
use crate::stats::Runs;

/// The profile of a column over all rows, and one per group (window).
pub struct GroupedProfiles {
    pub whole: ColumnProfile,
    pub groups: BTreeMap<Option<i64>, ColumnProfile>,
}

/// Applies `update` to the whole-data profile and to group `g`'s.
fn tally(
    whole: &mut ColumnProfile,
    groups: &mut BTreeMap<Option<i64>, ColumnProfile>,
    g: Option<i64>,
    empty: &impl Fn() -> ColumnProfile,
    update: impl Fn(&mut ColumnProfile),
) {
    update(whole);
    update(groups.entry(g).or_insert_with(empty));
}

/// Builds profiles from value counts; `cap` bounds the distinct numbers kept
/// per profile (beyond it a summary with a recorded rank error).
pub fn profiles_from_counts(
    name: &str,
    value_type: ValueType,
    counts: &ValueCounts,
    cap: usize,
) -> GroupedProfiles {
    let empty = || ColumnProfile::empty(name, value_type.name());
    let mut whole = empty();
    let mut groups: BTreeMap<Option<i64>, ColumnProfile> = BTreeMap::new();
    match counts {
        ValueCounts::Numbers(entries) => {
            let mut pairs: BTreeMap<Option<i64>, Vec<(f64, u64)>> = BTreeMap::new();
            let mut all = Vec::new();
            for &(g, v, n) in entries {
                tally(&mut whole, &mut groups, g, &empty, |p| {
                    p.rows += n;
                    match v {
                        None => p.nulls += n,
                        Some(x) if x.is_nan() => p.nan += n,
                        Some(x) if x.is_infinite() => p.infinite += n,
                        Some(_) => {}
                    }
                });
                if let Some(x) = v.filter(|x| x.is_finite()) {
                    pairs.entry(g).or_default().push((x, n));
                    all.push((x, n));
                }
            }
            whole.numbers = Some(Runs::from_pairs(all));
            for (g, p) in groups.iter_mut() {
                p.numbers = Some(Runs::from_pairs(pairs.remove(g).unwrap_or_default()));
            }
        }
        ValueCounts::Text(entries) => {
            let mut whole_map = BTreeMap::new();
            let mut maps: BTreeMap<Option<i64>, BTreeMap<String, u64>> = BTreeMap::new();
            for (g, v, n) in entries {
                tally(&mut whole, &mut groups, *g, &empty, |p| {
                    p.rows += n;
                    if v.is_none() {
                        p.nulls += n;
                    }
                });
                if let Some(text) = v {
                    *whole_map.entry(text.clone()).or_insert(0) += n;
                    *maps.entry(*g).or_default().entry(text.clone()).or_insert(0) += n;
                }
            }
            whole.categories = Some(whole_map);
            for (g, p) in groups.iter_mut() {
                p.categories = Some(maps.remove(g).unwrap_or_default());
            }
        }
        ValueCounts::Micros(entries) => {
            for &(g, v, n) in entries {
                tally(&mut whole, &mut groups, g, &empty, |p| {
                    p.rows += n;
                    match v {
                        None => p.nulls += n,
                        Some(t) => {
                            p.time_range =
                                Some(p.time_range.map_or((t, t), |(a, b)| (a.min(t), b.max(t))))
                        }
                    }
                });
            }
        }
    }
    whole.cap(cap);
    for p in groups.values_mut() {
        p.cap(cap);
    }
    GroupedProfiles { whole, groups }
}

/// Profiles every analysable column of a table.
pub fn profile_table(table: &Table, exact_cap: usize) -> Result<TableProfile> {
    // One query per column; two at a time keep both cores busy between
    // polars' own parallel sections.
    let columns = table
        .columns
        .par_iter()
        .filter(|(_, value_type)| !matches!(value_type, ValueType::Other | ValueType::List))
        .map(|(name, value_type)| {
            let counts = table.value_counts(name, &Grouping::Whole)?;
            Ok(profiles_from_counts(name, *value_type, &counts, exact_cap).whole)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TableProfile::new(
        vec![table.path.display().to_string()],
        table.row_count()? as u64,
        exact_cap,
        columns,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_nan_and_infinities_are_counted_apart() {
        let counts = ValueCounts::Numbers(vec![
            (Some(0), Some(1.0), 2),
            (Some(0), None, 1),
            (Some(1), Some(f64::NAN), 1),
            (Some(1), Some(f64::INFINITY), 1),
            (Some(1), Some(1.0), 3),
        ]);
        let p = profiles_from_counts("x", ValueType::Float, &counts, 100);
        let w = &p.whole;
        assert_eq!(
            (w.rows, w.nulls, w.nan, w.infinite, w.usable()),
            (8, 1, 1, 1, 5)
        );
        assert_eq!(w.numbers.as_ref().unwrap().counts, vec![5]);
        assert_eq!(p.groups[&Some(1)].usable(), 3);
    }

    #[test]
    fn categories_are_counted_per_group() {
        let counts = ValueCounts::Text(vec![
            (Some(0), Some("a".into()), 2),
            (Some(1), Some("a".into()), 1),
            (Some(1), None, 4),
        ]);
        let p = profiles_from_counts("c", ValueType::Text, &counts, 100);
        assert_eq!(p.whole.categories.as_ref().unwrap()["a"], 3);
        assert_eq!(p.groups[&Some(1)].nulls, 4);
    }
}
