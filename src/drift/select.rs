//! Which test each column gets, and running it.
//!
//! The default selection is Evidently's (`DataDriftPreset`), so that numbers
//! from mlctl and from the Python tool users know can be compared:
//! * reference of at most 1000 rows: numerical columns with more than 5
//!   distinct values (reference and current pooled) get Kolmogorov-Smirnov;
//!   3 to 5 values, or categorical with more than 2, chi-square; 2 or fewer,
//!   the two-proportion z-test;
//! * larger reference: numerical columns with more than 5 values get the
//!   normed Wasserstein distance (threshold 0.1), everything else
//!   Jensen-Shannon (0.1);
//! * p-value tests flag drift below 0.05.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::stats::binning::{align_values, bin_numeric, fill_zeroes, shares};
use crate::stats::profile::ColumnProfile;
use crate::stats::{anderson, chisquare, cvm, divergence, ks, wasserstein, ztest, Runs};

/// Reference sizes up to this use the small-sample tests.
pub const SMALL_REFERENCE_ROWS: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatTest {
    Ks,
    ChiSquare,
    Z,
    Psi,
    JensenShannon,
    Wasserstein,
    Hellinger,
    KlDiv,
    Anderson,
    CramerVonMises,
}

pub const ALL_TESTS: [StatTest; 10] = [
    StatTest::Ks,
    StatTest::ChiSquare,
    StatTest::Z,
    StatTest::Psi,
    StatTest::JensenShannon,
    StatTest::Wasserstein,
    StatTest::Hellinger,
    StatTest::KlDiv,
    StatTest::Anderson,
    StatTest::CramerVonMises,
];

impl StatTest {
    pub fn name(self) -> &'static str {
        match self {
            StatTest::Ks => "ks",
            StatTest::ChiSquare => "chisquare",
            StatTest::Z => "z",
            StatTest::Psi => "psi",
            StatTest::JensenShannon => "jensenshannon",
            StatTest::Wasserstein => "wasserstein",
            StatTest::Hellinger => "hellinger",
            StatTest::KlDiv => "kl_div",
            StatTest::Anderson => "anderson",
            StatTest::CramerVonMises => "cramer_von_mises",
        }
    }

    /// True when the threshold applies to a p-value (drift when p is below),
    /// false when it applies to a distance (drift when at or above).
    pub fn uses_p_value(self) -> bool {
        matches!(
            self,
            StatTest::Ks
                | StatTest::ChiSquare
                | StatTest::Z
                | StatTest::Anderson
                | StatTest::CramerVonMises
        )
    }

    pub fn default_threshold(self) -> f64 {
        if self.uses_p_value() {
            0.05
        } else {
            0.1
        }
    }

    /// Tests that need the order of values, so numbers only.
    pub fn numeric_only(self) -> bool {
        matches!(
            self,
            StatTest::Ks | StatTest::Wasserstein | StatTest::Anderson | StatTest::CramerVonMises
        )
    }
}

impl fmt::Display for StatTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StatTest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        let alias = match wanted.as_str() {
            "chi2" | "chi_square" => "chisquare",
            "js" | "jensen_shannon" => "jensenshannon",
            "kl" => "kl_div",
            "cvm" | "cramervonmises" => "cramer_von_mises",
            "wasserstein_distance" => "wasserstein",
            "ad" | "anderson_darling" => "anderson",
            other => other,
        };
        ALL_TESTS
            .iter()
            .copied()
            .find(|t| t.name() == alias)
            .ok_or_else(|| {
                format!(
                    "unknown statistical test '{s}': expected one of {}",
                    ALL_TESTS.map(|t| t.name()).join(", ")
                )
            })
    }
}

/// How a column is analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Numerical,
    Categorical,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Numerical => "numerical",
            Kind::Categorical => "categorical",
        }
    }
}

/// Evidently's default test for a column (see the module comment).
pub fn select_test(kind: Kind, reference_rows: u64, pooled_distinct: usize) -> StatTest {
    if reference_rows <= SMALL_REFERENCE_ROWS {
        match kind {
            Kind::Numerical if pooled_distinct > 5 => StatTest::Ks,
            _ if pooled_distinct > 2 => StatTest::ChiSquare,
            _ => StatTest::Z,
        }
    } else {
        match kind {
            Kind::Numerical if pooled_distinct > 5 => StatTest::Wasserstein,
            _ => StatTest::JensenShannon,
        }
    }
}

/// The sorted union of two category maps' keys, by merging (both maps are
/// already sorted).
pub fn union_keys<'a>(
    a: &'a BTreeMap<String, u64>,
    b: &'a BTreeMap<String, u64>,
) -> Vec<&'a String> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut x, mut y) = (a.keys().peekable(), b.keys().peekable());
    loop {
        let next = match (x.peek(), y.peek()) {
            (Some(p), Some(q)) if p < q => x.next(),
            (Some(p), Some(q)) if q < p => y.next(),
            (Some(_), Some(_)) => {
                y.next();
                x.next()
            }
            (Some(_), None) => x.next(),
            (None, Some(_)) => y.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    out
}

fn no_categories() -> &'static BTreeMap<String, u64> {
    static EMPTY: BTreeMap<String, u64> = BTreeMap::new();
    &EMPTY
}

/// Number of distinct usable values in both samples together.
pub fn pooled_distinct(reference: &ColumnProfile, current: &ColumnProfile) -> usize {
    match (&reference.numbers, &current.numbers) {
        (Some(a), Some(b)) => align_values(a, b).0.len(),
        _ => union_keys(
            reference.categories.as_ref().unwrap_or(no_categories()),
            current.categories.as_ref().unwrap_or(no_categories()),
        )
        .len(),
    }
}

#[derive(Debug, Clone, Copy)]
pub struct TestOutcome {
    pub statistic: f64,
    pub p_value: Option<f64>,
    pub drift: bool,
}

/// Category counts of both samples aligned on the sorted union of values.
fn aligned_counts(reference: &ColumnProfile, current: &ColumnProfile) -> (Vec<u64>, Vec<u64>) {
    match (&reference.numbers, &current.numbers) {
        (Some(a), Some(b)) => {
            let (_, ca, cb) = align_values(a, b);
            (ca, cb)
        }
        _ => {
            let a = reference.categories.as_ref().unwrap_or(no_categories());
            let b = current.categories.as_ref().unwrap_or(no_categories());
            let keys = union_keys(a, b);
            (
                keys.iter()
                    .map(|k| a.get(*k).copied().unwrap_or(0))
                    .collect(),
                keys.iter()
                    .map(|k| b.get(*k).copied().unwrap_or(0))
                    .collect(),
            )
        }
    }
}

/// Shares for PSI, KL and Jensen-Shannon: Evidently's binning for numbers,
/// category shares otherwise.
fn binned_shares(
    reference: &ColumnProfile,
    current: &ColumnProfile,
    kind: Kind,
) -> (Vec<f64>, Vec<f64>) {
    match (kind, &reference.numbers, &current.numbers) {
        (Kind::Numerical, Some(a), Some(b)) => {
            let binned = bin_numeric(
                a,
                b,
                reference.value_type == "integer" && reference.nulls == 0 && current.nulls == 0,
            );
            (binned.reference, binned.current)
        }
        _ => {
            let (a, b) = aligned_counts(reference, current);
            (shares(&a), shares(&b))
        }
    }
}

fn numbers(p: &ColumnProfile, test: StatTest) -> Result<&Runs, String> {
    p.numbers.as_ref().ok_or_else(|| {
        format!(
            "{test} needs a numeric column, this one holds {}",
            p.value_type
        )
    })
}

/// Runs `test` on one column. Both sides must hold at least one usable value.
pub fn run_test(
    test: StatTest,
    threshold: f64,
    kind: Kind,
    reference: &ColumnProfile,
    current: &ColumnProfile,
) -> Result<TestOutcome, String> {
    let p_test = |statistic: f64, p: f64, at_or_below: bool| TestOutcome {
        statistic,
        p_value: Some(p),
        drift: if at_or_below {
            p <= threshold
        } else {
            p < threshold
        },
    };
    let distance = |d: f64| TestOutcome {
        statistic: d,
        p_value: None,
        drift: d >= threshold,
    };
    let outcome = match test {
        StatTest::Ks => {
            let r = ks::ks_2samp(numbers(reference, test)?, numbers(current, test)?);
            p_test(r.statistic, r.p_value, false)
        }
        StatTest::Wasserstein => distance(wasserstein::normed_wasserstein(
            numbers(reference, test)?,
            numbers(current, test)?,
        )),
        StatTest::Anderson => {
            let r = anderson::anderson_ksamp(numbers(reference, test)?, numbers(current, test)?)
                .ok_or("anderson needs at least two distinct values in the pooled data")?;
            p_test(r.statistic, r.p_value, false)
        }
        StatTest::CramerVonMises => {
            let r = cvm::cramervonmises_2samp(numbers(reference, test)?, numbers(current, test)?)
                .ok_or("cramer_von_mises needs at least two values on each side")?;
            p_test(r.statistic, r.p_value, true)
        }
        StatTest::ChiSquare => {
            let (a, b) = aligned_counts(reference, current);
            let r = chisquare::chisquare_vs_reference(&a, &b);
            p_test(r.statistic, r.p_value, false)
        }
        StatTest::Z => {
            let (a, b) = aligned_counts(reference, current);
            if a.len() > 2 {
                return Err(format!(
                    "z needs a column with at most two values, this one has {}",
                    a.len()
                ));
            }
            let r = ztest::proportions_z_test(&a, &b);
            p_test(r.statistic, r.p_value, false)
        }
        StatTest::Psi => {
            let (mut a, mut b) = binned_shares(reference, current, kind);
            fill_zeroes(&mut a);
            fill_zeroes(&mut b);
            distance(divergence::psi(&a, &b))
        }
        StatTest::KlDiv => {
            let (mut a, mut b) = binned_shares(reference, current, kind);
            fill_zeroes(&mut a);
            fill_zeroes(&mut b);
            distance(divergence::kl_divergence(&a, &b))
        }
        StatTest::JensenShannon => {
            let (a, b) = binned_shares(reference, current, kind);
            distance(divergence::jensen_shannon(&a, &b))
        }
        StatTest::Hellinger => match (kind, &reference.numbers, &current.numbers) {
            (Kind::Numerical, Some(a), Some(b)) => distance(divergence::hellinger_numeric(
                a,
                b,
                reference.value_type == "integer" && reference.nulls == 0 && current.nulls == 0,
            )),
            _ => {
                let (a, b) = aligned_counts(reference, current);
                distance(divergence::hellinger_shares(&shares(&a), &shares(&b)))
            }
        },
    };
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_selection_follows_evidently() {
        assert_eq!(select_test(Kind::Numerical, 500, 30), StatTest::Ks);
        assert_eq!(select_test(Kind::Numerical, 500, 4), StatTest::ChiSquare);
        assert_eq!(select_test(Kind::Numerical, 500, 2), StatTest::Z);
        assert_eq!(select_test(Kind::Categorical, 500, 3), StatTest::ChiSquare);
        assert_eq!(select_test(Kind::Categorical, 1000, 2), StatTest::Z);
        assert_eq!(select_test(Kind::Numerical, 1001, 6), StatTest::Wasserstein);
        assert_eq!(
            select_test(Kind::Numerical, 5000, 5),
            StatTest::JensenShannon
        );
        assert_eq!(
            select_test(Kind::Categorical, 5000, 50),
            StatTest::JensenShannon
        );
    }

    #[test]
    fn union_of_sorted_keys() {
        let a: BTreeMap<String, u64> = [("a".to_string(), 1), ("c".to_string(), 1)].into();
        let b: BTreeMap<String, u64> = [("b".to_string(), 1), ("c".to_string(), 2)].into();
        assert_eq!(union_keys(&a, &b), vec!["a", "b", "c"]);
    }

    #[test]
    fn names_and_aliases_parse() {
        for t in ALL_TESTS {
            assert_eq!(t.name().parse::<StatTest>().unwrap(), t);
        }
        assert_eq!("JS".parse::<StatTest>().unwrap(), StatTest::JensenShannon);
        assert!("t-test"
            .parse::<StatTest>()
            .unwrap_err()
            .contains("expected one of"));
    }
}
