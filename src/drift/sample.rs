//! Turning a table's columns into `ColumnProfile`s: the one representation
//! both a raw baseline file, a stored profile and the current data reach
//! before any test runs.

use std::collections::BTreeMap;

use crate::data::{Table, ValueType, Values, NULL_CODE};
use crate::error::Result;
use crate::stats::profile::{ColumnProfile, TableProfile};
use crate::stats::Runs;

/// Profiles the rows `rows` of one column (all rows when `None`).
pub fn profile_values(
    name: &str,
    value_type: ValueType,
    values: &Values,
    rows: Option<&[usize]>,
) -> ColumnProfile {
    let mut p = ColumnProfile::empty(name, value_type.name());
    match values {
        Values::Numbers(v) => {
            let mut finite = Vec::with_capacity(rows.map_or(v.len(), |r| r.len()));
            let mut visit = |x: Option<f64>| {
                p.rows += 1;
                match x {
                    None => p.nulls += 1,
                    Some(f) if f.is_nan() => p.nan += 1,
                    Some(f) if f.is_infinite() => p.infinite += 1,
                    Some(f) => finite.push(f),
                }
            };
            match rows {
                Some(idx) => idx.iter().for_each(|&i| visit(v[i])),
                None => v.iter().for_each(|&x| visit(x)),
            }
            p.numbers = Some(Runs::from_values(finite));
        }
        Values::Text { codes, names } => {
            let mut counts = vec![0u64; names.len()];
            let mut visit = |c: u32| {
                p.rows += 1;
                if c == NULL_CODE {
                    p.nulls += 1;
                } else {
                    counts[c as usize] += 1;
                }
            };
            match rows {
                Some(idx) => idx.iter().for_each(|&i| visit(codes[i])),
                None => codes.iter().for_each(|&c| visit(c)),
            }
            let map: BTreeMap<String, u64> = names
                .iter()
                .zip(counts)
                .filter(|(_, c)| *c > 0)
                .map(|(n, c)| (n.clone(), c))
                .collect();
            p.categories = Some(map);
        }
        Values::Micros(v) => {
            let mut range: Option<(i64, i64)> = None;
            let mut visit = |x: Option<i64>| {
                p.rows += 1;
                match x {
                    None => p.nulls += 1,
                    Some(t) => {
                        range = Some(range.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
                    }
                }
            };
            match rows {
                Some(idx) => idx.iter().for_each(|&i| visit(v[i])),
                None => v.iter().for_each(|&x| visit(x)),
            }
            p.time_range = range;
        }
    }
    p
}

/// Profiles every analysable column of a table.
pub fn profile_table(table: &Table, exact_cap: usize) -> Result<TableProfile> {
    let names: Vec<String> = table
        .columns
        .iter()
        .filter(|(_, t)| *t != ValueType::Other)
        .map(|(n, _)| n.clone())
        .collect();
    let values = table.read(&names)?;
    let mut rows = 0;
    let mut columns = Vec::with_capacity(names.len());
    for name in &names {
        let vt = table.value_type(name).expect("listed column");
        let mut p = profile_values(name, vt, &values[name], None);
        p.cap(exact_cap);
        rows = p.rows;
        columns.push(p);
    }
    Ok(TableProfile::new(
        vec![table.path.display().to_string()],
        rows,
        exact_cap,
        columns,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_nan_and_infinities_are_counted_apart() {
        let v = Values::Numbers(vec![
            Some(1.0),
            None,
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(2.0),
        ]);
        let p = profile_values("x", ValueType::Float, &v, None);
        assert_eq!(
            (p.rows, p.nulls, p.nan, p.infinite, p.usable()),
            (5, 1, 1, 1, 2)
        );
    }

    #[test]
    fn a_row_subset_profiles_only_those_rows() {
        let v = Values::Text {
            codes: vec![0, 1, NULL_CODE, 0],
            names: vec!["a".into(), "b".into()],
        };
        let p = profile_values("c", ValueType::Text, &v, Some(&[0, 2, 3]));
        assert_eq!(p.rows, 3);
        assert_eq!(p.nulls, 1);
        assert_eq!(p.categories.unwrap().get("a"), Some(&2));
    }
}
