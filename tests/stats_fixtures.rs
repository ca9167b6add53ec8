//! Every statistic mlctl reports, checked against scipy and Evidently on the
//! values stored in tests/fixtures/stats.json (made by make_stats_fixtures.py).

use std::collections::BTreeMap;
use std::path::Path;

use mlctl::data::{Grouping, Table, ValueCounts};
use mlctl::drift::select::{run_test, Kind, StatTest};
use mlctl::stats::profile::ColumnProfile;
use mlctl::stats::{ks, wasserstein, Runs};
use serde_json::Value;

const REL: f64 = 1e-6;

fn close(actual: f64, expected: f64) -> bool {
    if actual == expected || (actual.is_nan() && expected.is_nan()) {
        return true;
    }
    (actual - expected).abs() <= REL * expected.abs() || (actual - expected).abs() < 1e-13
}

fn fixtures() -> Value {
    let text = std::fs::read_to_string("tests/fixtures/stats.json").expect("fixtures");
    serde_json::from_str(&text).unwrap()
}

fn numeric_profile(values: Vec<f64>, integer: bool) -> ColumnProfile {
    let mut p = ColumnProfile::empty("x", if integer { "integer" } else { "float" });
    p.rows = values.len() as u64;
    p.numbers = Some(Runs::from_values(values));
    p
}

fn categorical_profile(values: Vec<String>) -> ColumnProfile {
    let mut p = ColumnProfile::empty("x", "text");
    p.rows = values.len() as u64;
    let mut counts = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_insert(0u64) += 1;
    }
    p.categories = Some(counts);
    p
}

/// Counts one column of a bundled file; nulls and non-finite values are left
/// out, as Evidently does.
fn sample_column(file: &str, column: &str) -> ValueCounts {
    let table = Table::open(&Path::new("sample_data").join(file)).unwrap();
    table.value_counts(column, &Grouping::Whole).unwrap()
}

fn profiles(case: &Value) -> (ColumnProfile, ColumnProfile, Kind) {
    let kind = if case["kind"] == "numerical" {
        Kind::Numerical
    } else {
        Kind::Categorical
    };
    let integer = case["integer"].as_bool().unwrap_or(false);
    let side = |key: &str| -> ColumnProfile {
        if let Some(src) = case.get("source") {
            let file = src[key].as_str().unwrap();
            match sample_column(file, src["column"].as_str().unwrap()) {
                ValueCounts::Numbers(v) => numeric_profile(
                    v.into_iter()
                        .filter_map(|(_, x, n)| {
                            x.filter(|x| x.is_finite()).map(|x| vec![x; n as usize])
                        })
                        .flatten()
                        .collect(),
                    integer,
                ),
                ValueCounts::Text(v) => categorical_profile(
                    v.into_iter()
                        .filter_map(|(_, x, n)| x.map(|x| vec![x; n as usize]))
                        .flatten()
                        .collect(),
                ),
                ValueCounts::Micros(_) => panic!("timestamp column in a fixture"),
            }
        } else {
            let key = if key == "baseline" {
                "reference"
            } else {
                "current"
            };
            let values = case[key].as_array().unwrap();
            if kind == Kind::Numerical {
                numeric_profile(
                    values.iter().map(|v| v.as_f64().unwrap()).collect(),
                    integer,
                )
            } else {
                categorical_profile(
                    values
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect(),
                )
            }
        }
    };
    (side("baseline"), side("current"), kind)
}

#[test]
fn every_test_matches_its_reference_implementation() {
    let fixtures = fixtures();
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in fixtures["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (reference, current, kind) = profiles(case);
        let checks: [(&str, StatTest, bool); 14] = [
            ("ks_statistic", StatTest::Ks, false),
            ("ks_p_value", StatTest::Ks, true),
            ("wasserstein_normed", StatTest::Wasserstein, false),
            ("psi", StatTest::Psi, false),
            ("jensenshannon", StatTest::JensenShannon, false),
            ("kl_div", StatTest::KlDiv, false),
            ("hellinger", StatTest::Hellinger, false),
            ("anderson_statistic", StatTest::Anderson, false),
            ("anderson_p_value", StatTest::Anderson, true),
            ("cvm_statistic", StatTest::CramerVonMises, false),
            ("cvm_p_value", StatTest::CramerVonMises, true),
            ("chisquare_p_value", StatTest::ChiSquare, true),
            ("z_p_value", StatTest::Z, true),
            ("wasserstein", StatTest::Wasserstein, false),
        ];
        for (key, test, is_p) in checks {
            let Some(expected) = case.get(key) else {
                continue;
            };
            // null: the reference implementation finds the value undefined.
            let expected = expected.as_f64().unwrap_or(f64::NAN);
            let actual = if key == "wasserstein" {
                wasserstein::wasserstein_distance(
                    reference.numbers.as_ref().unwrap(),
                    current.numbers.as_ref().unwrap(),
                )
            } else {
                let outcome = run_test(test, 0.05, kind, &reference, &current)
                    .unwrap_or_else(|e| panic!("{name}: {key}: {e}"));
                if is_p {
                    outcome.p_value.unwrap()
                } else {
                    outcome.statistic
                }
            };
            checked += 1;
            if !close(actual, expected) {
                failures.push(format!(
                    "{name}: {key}: mlctl {actual:e}, reference {expected:e}"
                ));
            }
        }
    }
    assert!(checked > 200, "only {checked} values checked");
    assert!(
        failures.is_empty(),
        "{} of {checked} values differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn kolmogorov_distribution_matches_scipy_kstwo() {
    let fixtures = fixtures();
    let mut failures = Vec::new();
    for point in fixtures["kolmogorov_sf"].as_array().unwrap() {
        let n = point["n"].as_u64().unwrap();
        let x = point["x"].as_f64().unwrap();
        let expected = point["sf"].as_f64().unwrap();
        let actual = ks::kolmogorov_sf(n, x);
        if !close(actual, expected) {
            failures.push(format!(
                "kstwo.sf({x}, {n}): mlctl {actual:e}, scipy {expected:e}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
