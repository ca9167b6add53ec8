//! What a baseline keeps of each column: counts, exact values up to a cap and
//! a bounded-error summary beyond it. A profile is made once from a training
//! set (`mlctl baseline`), stored as versioned JSON, and profiles of
//! partitions merge into the profile of their union.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Runs;

pub const FORMAT: &str = "mlctl-profile";
pub const VERSION: u32 = 1;
/// Distinct numeric values kept exactly per column before summarising.
pub const DEFAULT_EXACT_CAP: usize = 100_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    /// integer, float, boolean, text or timestamp.
    pub value_type: String,
    pub rows: u64,
    pub nulls: u64,
    pub nan: u64,
    pub infinite: u64,
    /// Finite numbers of a numeric column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbers: Option<Runs>,
    /// Largest possible error, in observations, of any rank read from
    /// `numbers` (0 while every value is kept exactly).
    #[serde(default)]
    pub rank_error: u64,
    /// Category counts of a text or boolean column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<BTreeMap<String, u64>>,
    /// First and last timestamp (microseconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<(i64, i64)>,
}

impl ColumnProfile {
    pub fn empty(name: &str, value_type: &str) -> Self {
        ColumnProfile {
            name: name.to_string(),
            value_type: value_type.to_string(),
            rows: 0,
            nulls: 0,
            nan: 0,
            infinite: 0,
            numbers: None,
            rank_error: 0,
            categories: None,
            time_range: None,
        }
    }

    /// Observations a test can use: non-null, and finite for numbers.
    pub fn usable(&self) -> u64 {
        self.rows - self.nulls - self.nan - self.infinite
    }

    pub fn n_distinct(&self) -> usize {
        if let Some(runs) = &self.numbers {
            runs.n_distinct()
        } else if let Some(cats) = &self.categories {
            cats.len()
        } else {
            0
        }
    }

    pub fn is_exact(&self) -> bool {
        self.rank_error == 0
    }

    /// Keeps at most `cap` distinct numbers, recording the error this adds.
    pub fn cap(&mut self, cap: usize) {
        if let Some(runs) = &self.numbers {
            if runs.n_distinct() > cap {
                let n = runs.n();
                self.numbers = Some(runs.compress(cap));
                self.rank_error += n.div_ceil(cap as u64);
            }
        }
    }

    pub fn merge(&self, other: &ColumnProfile, cap: usize) -> Result<ColumnProfile, String> {
        if self.value_type != other.value_type {
            return Err(format!(
                "column '{}' is {} in one profile and {} in the other",
                self.name, self.value_type, other.value_type
            ));
        }
        let numbers = match (&self.numbers, &other.numbers) {
            (Some(a), Some(b)) => Some(a.merge(b)),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let categories = match (&self.categories, &other.categories) {
            (Some(a), Some(b)) => {
                let mut m = a.clone();
                for (k, v) in b {
                    *m.entry(k.clone()).or_insert(0) += v;
                }
                Some(m)
            }
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let time_range = match (self.time_range, other.time_range) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        };
        let mut merged = ColumnProfile {
            name: self.name.clone(),
            value_type: self.value_type.clone(),
            rows: self.rows + other.rows,
            nulls: self.nulls + other.nulls,
            nan: self.nan + other.nan,
            infinite: self.infinite + other.infinite,
            numbers,
            rank_error: self.rank_error + other.rank_error,
            categories,
            time_range,
        };
        merged.cap(cap);
        Ok(merged)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableProfile {
    pub format: String,
    pub version: u32,
    pub mlctl_version: String,
    /// The files this profile was made from.
    pub sources: Vec<String>,
    pub rows: u64,
    pub exact_cap: usize,
    pub columns: Vec<ColumnProfile>,
}

impl TableProfile {
    pub fn new(
        sources: Vec<String>,
        rows: u64,
        exact_cap: usize,
        columns: Vec<ColumnProfile>,
    ) -> Self {
        TableProfile {
            format: FORMAT.to_string(),
            version: VERSION,
            mlctl_version: env!("CARGO_PKG_VERSION").to_string(),
            sources,
            rows,
            exact_cap,
            columns,
        }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The profile of the union of both profiles' rows.
    pub fn merge(&self, other: &TableProfile) -> Result<TableProfile, String> {
        let names = |p: &TableProfile| p.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        if names(self) != names(other) {
            return Err(format!(
                "the profiles have different columns: [{}] and [{}]",
                names(self).join(", "),
                names(other).join(", ")
            ));
        }
        let cap = self.exact_cap.min(other.exact_cap);
        let columns = self
            .columns
            .iter()
            .zip(&other.columns)
            .map(|(a, b)| a.merge(b, cap))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sources = self.sources.clone();
        sources.extend(other.sources.iter().cloned());
        Ok(TableProfile::new(
            sources,
            self.rows + other.rows,
            cap,
            columns,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(name: &str, values: Vec<f64>) -> ColumnProfile {
        let mut c = ColumnProfile::empty(name, "float");
        c.rows = values.len() as u64;
        c.numbers = Some(Runs::from_values(values));
        c
    }

    #[test]
    fn merging_partitions_equals_profiling_the_union() {
        let a = numeric("x", vec![1.0, 2.0, 2.0]);
        let b = numeric("x", vec![2.0, 3.0]);
        let m = a.merge(&b, 100).unwrap();
        let whole = numeric("x", vec![1.0, 2.0, 2.0, 2.0, 3.0]);
        assert_eq!(m.numbers, whole.numbers);
        assert_eq!(m.rows, 5);
        assert!(m.is_exact());
    }

    #[test]
    fn capping_records_the_rank_error() {
        let mut c = numeric("x", (0..1000).map(|i| i as f64).collect());
        c.cap(10);
        assert_eq!(c.rank_error, 100);
        assert_eq!(c.numbers.as_ref().unwrap().n(), 1000);
    }

    #[test]
    fn type_mismatch_does_not_merge() {
        let a = numeric("x", vec![1.0]);
        let mut b = ColumnProfile::empty("x", "text");
        b.rows = 1;
        assert!(a.merge(&b, 10).is_err());
    }
}
