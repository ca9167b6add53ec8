//! End-to-end tests: the real binary on the bundled sample data.

use std::path::Path;

mod common;

use common::{bare_mlctl, fails_cleanly, mlctl, sample_replay};
use predicates::prelude::*;
use serde_json::Value;

fn json_of(args: &[&str], expected_code: i32) -> Value {
    let out = mlctl()
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(expected_code),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON on stdout")
}

fn section<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no section {key}"))
}

fn row<'a>(section: &'a Value, column: &str) -> &'a Value {
    section["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["column"] == column)
        .unwrap_or_else(|| panic!("no row {column}"))
}

#[test]
fn help_lists_the_working_commands_and_exit_codes() {
    mlctl()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("drift"))
        .stdout(predicate::str::contains("baseline"))
        .stdout(predicate::str::contains("completions"))
        .stdout(predicate::str::contains("Exit codes"));
}

#[test]
fn held_out_test_split_does_not_drift() {
    let r = json_of(
        &[
            "drift",
            "sample_data/test.parquet",
            "--baseline",
            "sample_data/train.parquet",
        ],
        0,
    );
    assert_eq!(r["gate"]["outcome"], "pass");
    assert_eq!(r["summary"]["dataset_drift"], false);
    assert_eq!(r["summary"]["tested_columns"], 30);
    // `target` is the label: tested in the predictions section, not a feature.
    assert_eq!(row(section(&r, "predictions"), "target")["test"], "z");
}

#[test]
fn a_log_against_an_earlier_log_skips_identifiers_and_timestamps() {
    let r = json_of(
        &[
            "drift",
            "sample_data/logs.parquet",
            "--baseline",
            "sample_data/logs.parquet",
        ],
        0,
    );
    let skipped = section(&r, "skipped");
    assert!(row(skipped, "request_id")["reason"]
        .as_str()
        .unwrap()
        .contains("identifier"));
    assert!(row(skipped, "timestamp")["reason"]
        .as_str()
        .unwrap()
        .contains("timestamp"));
    assert_eq!(r["summary"]["drifted_columns"], 0);
    let predictions = section(&r, "predictions");
    for column in ["prediction", "confidence", "label"] {
        assert_eq!(row(predictions, column)["drift"], false, "{column}");
    }
}

#[test]
fn drifting_prediction_log_fails_and_windows_show_when_it_began() {
    let r = json_of(
        &[
            "drift",
            "sample_data/logs.parquet",
            "--baseline",
            "sample_data/train.parquet",
            "--window",
            "1d",
        ],
        1,
    );
    assert_eq!(r["gate"]["outcome"], "fail");
    assert_eq!(r["summary"]["dataset_drift"], true);
    // Days 1-7 come from the training population; the drift starts on day 8.
    assert_eq!(r["summary"]["first_drifted_window"], "2026-03-08");
    let windows = section(&r, "windows")["rows"].as_array().unwrap();
    assert_eq!(windows.len(), 14);
    for w in &windows[..7] {
        assert_eq!(w["dataset_drift"], "ok", "{w}");
    }
    // The unit change: areas 100x smaller, far outside the training range.
    let quality = section(&r, "quality");
    let area = row(quality, "mean_area");
    assert!(area["outside_range_share"].as_f64().unwrap() > 0.4);
    // The null burst on days 10-11.
    assert!(
        row(quality, "mean_texture")["null_rate_current"]
            .as_f64()
            .unwrap()
            > 4.0
    );
    // Labels and calibration from the log; late labels are missing.
    assert_eq!(r["summary"]["labelled_rows"], 3000);
    assert!(r["summary"]["ece"].as_f64().is_some());
    assert!(section(&r, "calibration")["rows"].as_array().unwrap().len() > 1);
    // Columns the training set does not have are listed, not dropped silently.
    let skipped = section(&r, "skipped");
    assert!(row(skipped, "request_id")["reason"]
        .as_str()
        .unwrap()
        .contains("not in the baseline"));
}

#[test]
fn fail_on_never_reports_without_failing() {
    let r = json_of(
        &[
            "drift",
            "sample_data/logs.parquet",
            "--baseline",
            "sample_data/train.parquet",
            "--fail-on",
            "never",
        ],
        0,
    );
    assert_eq!(r["summary"]["dataset_drift"], true);
}

fn evidently_name(display: &str) -> &'static str {
    match display {
        "Wasserstein distance (normed)" => "wasserstein",
        "Jensen-Shannon distance" => "jensenshannon",
        "K-S p_value" => "ks",
        "chi-square p_value" => "chisquare",
        "Z-test p_value" => "z",
        other => panic!("unexpected Evidently test {other}"),
    }
}

#[test]
fn matches_evidentlys_data_drift_preset_column_by_column() {
    let text = std::fs::read_to_string("tests/fixtures/evidently_drift.json").unwrap();
    let fixtures: Value = serde_json::from_str(&text).unwrap();
    for preset in fixtures["presets"].as_array().unwrap() {
        let base = format!("sample_data/{}", preset["baseline"].as_str().unwrap());
        let cur = format!("sample_data/{}", preset["current"].as_str().unwrap());
        let expected_code = if preset["dataset_drift"].as_bool().unwrap() {
            1
        } else {
            0
        };
        let r = json_of(&["drift", &cur, "--baseline", &base], expected_code);
        assert_eq!(
            r["summary"]["drifted_columns"], preset["drifted_columns"],
            "{cur}"
        );
        let columns = section(&r, "columns");
        for (name, ev) in preset["columns"].as_object().unwrap() {
            let mine = row(columns, name);
            let test = evidently_name(ev["stattest"].as_str().unwrap());
            assert_eq!(mine["test"], test, "{cur} {name}");
            let score = ev["score"].as_f64().unwrap();
            let value = if test == "ks" || test == "chisquare" || test == "z" {
                mine["p_value"].as_f64().unwrap()
            } else {
                mine["statistic"].as_f64().unwrap()
            };
            assert!(
                (value - score).abs() <= 1e-6 * score.abs() || (value - score).abs() < 1e-13,
                "{cur} {name}: mlctl {value:e}, Evidently {score:e}"
            );
            assert_eq!(mine["drift"], ev["drift"], "{cur} {name}");
        }
    }
}

#[test]
fn a_stored_profile_gives_the_same_verdicts_as_the_raw_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("train.mlprofile");
    mlctl()
        .args(["baseline", "sample_data/train.parquet", "-o"])
        .arg(&profile)
        .assert()
        .success();
    let raw = json_of(
        &[
            "drift",
            "sample_data/logs.parquet",
            "--baseline",
            "sample_data/train.parquet",
        ],
        1,
    );
    let stored = json_of(
        &[
            "drift",
            "sample_data/logs.parquet",
            "--baseline",
            profile.to_str().unwrap(),
        ],
        1,
    );
    assert_eq!(
        section(&raw, "columns")["rows"],
        section(&stored, "columns")["rows"]
    );
}

#[test]
fn partition_profiles_merge_into_the_profile_of_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, merged, whole) = (
        dir.path().join("a.mlprofile"),
        dir.path().join("b.mlprofile"),
        dir.path().join("merged.mlprofile"),
        dir.path().join("whole.mlprofile"),
    );
    for (input, out) in [
        ("sample_data/flights_2013_01.parquet", &a),
        ("sample_data/flights_2013_07.parquet", &b),
    ] {
        mlctl()
            .args(["baseline", input, "-o"])
            .arg(out)
            .assert()
            .success();
    }
    mlctl()
        .args(["baseline", "--merge"])
        .arg(&a)
        .arg(&b)
        .arg("-o")
        .arg(&merged)
        .assert()
        .success();
    mlctl()
        .args([
            "baseline",
            "sample_data/flights_2013_01.parquet",
            "sample_data/flights_2013_07.parquet",
            "-o",
        ])
        .arg(&whole)
        .assert()
        .success();
    let read =
        |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let (m, w) = (read(&merged), read(&whole));
    assert_eq!(m["rows"], 27004 + 29425);
    assert_eq!(m["columns"], w["columns"]);
}

#[test]
fn every_format_renders_and_output_files_are_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    for (ext, marker) in [
        ("json", "\"schema_version\""),
        ("md", "| Column |"),
        ("html", "<svg"),
    ] {
        let out = dir.path().join(format!("report.{ext}"));
        mlctl()
            .args([
                "drift",
                "sample_data/logs.parquet",
                "--baseline",
                "sample_data/train.parquet",
                "--window",
                "1d",
                "-o",
            ])
            .arg(&out)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("FAIL"));
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains(marker), "{ext} lacks {marker}");
        if ext == "html" {
            assert!(
                !text.contains("http://")
                    && !text.contains("https://")
                    && !text.contains("<script")
            );
        }
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "temporary files left behind: {names:?}");
}

#[test]
fn the_terminal_table_names_columns_and_the_verdict() {
    mlctl()
        .args([
            "drift",
            "sample_data/flights_2013_07.parquet",
            "--baseline",
            "sample_data/flights_2013_01.parquet",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("dep_delay"))
        .stdout(predicate::str::contains(
            "PASS: no dataset drift: 5 of 15 columns drifted",
        ));
}

#[test]
fn whole_data_figures_without_windows() {
    let r = json_of(
        &[
            "drift",
            "sample_data/logs.parquet",
            "--baseline",
            "sample_data/train.parquet",
        ],
        1,
    );
    assert_eq!(r["summary"]["current_rows"], 3500);
    assert_eq!(r["summary"]["labelled_rows"], 3000);
    let accuracy = r["summary"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.9 && accuracy < 1.0, "{accuracy}");
    let f = json_of(
        &[
            "drift",
            "sample_data/flights_2013_07.parquet",
            "--baseline",
            "sample_data/flights_2013_01.parquet",
        ],
        0,
    );
    assert_eq!(f["summary"]["current_rows"], 29425);
    assert_eq!(f["summary"]["baseline_rows"], 27004);
}

#[test]
fn columns_of_types_mlctl_does_not_read_are_named_in_one_line() {
    // Decimals and 16-bit floats stopped polars with an internal error,
    // 16-bit unsigned integers with a message that named no column.
    for (file, needle) in [
        (
            "price",
            "column 'price' holds decimals (9 digits, 2 after the point)",
        ),
        ("half", "column 'half' holds 16-bit floats"),
        (
            "flags",
            "column 'flags' holds 8- or 16-bit unsigned integers",
        ),
    ] {
        let path = format!("tests/fixtures/unread_types/{file}.parquet");
        fails_cleanly(
            &["drift", &path, "--baseline", "sample_data/train.parquet"],
            needle,
        );
        fails_cleanly(&sample_replay(&path), needle);
    }
}

#[test]
fn bad_input_gets_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.parquet");
    std::fs::write(&fake, "this is not parquet").unwrap();
    let empty = dir.path().join("empty.parquet");
    std::fs::write(&empty, "").unwrap();
    let train = "sample_data/train.parquet";
    fails_cleanly(
        &["drift", "missing.parquet", "--baseline", train],
        "missing.parquet: no such file",
    );
    fails_cleanly(
        &["drift", fake.to_str().unwrap(), "--baseline", train],
        "not a parquet file",
    );
    fails_cleanly(
        &["drift", empty.to_str().unwrap(), "--baseline", train],
        "the file is empty",
    );
    fails_cleanly(
        &[
            "drift",
            "sample_data/flights_2013_01.parquet",
            "--baseline",
            train,
        ],
        "no column in common",
    );
    fails_cleanly(
        &[
            "drift",
            "sample_data/test.parquet",
            "--baseline",
            train,
            "--stattest",
            "t-test",
        ],
        "unknown statistical test",
    );
    fails_cleanly(
        &[
            "drift",
            "sample_data/test.parquet",
            "--baseline",
            train,
            "--window",
            "fortnight",
        ],
        "bad window",
    );
    fails_cleanly(
        &[
            "drift",
            "sample_data/test.parquet",
            "--baseline",
            train,
            "--window",
            "1d",
        ],
        "needs a timestamp column",
    );
    fails_cleanly(&["drift", "sample_data/test.parquet"], "needs a baseline");
    fails_cleanly(
        &[
            "drift",
            "sample_data/test.parquet",
            "--baseline",
            fake.to_str().unwrap(),
        ],
        "not a parquet file",
    );
}

#[test]
fn awkward_columns_become_error_rows_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.csv");
    let cur = dir.path().join("cur.csv");
    let mut b = String::from("num,mixed,empty,weird,many\n");
    let mut c = String::from("num,mixed,empty,weird,many\n");
    for i in 0..200 {
        b.push_str(&format!(
            "{},{},,{},c{}\n",
            i % 17,
            i,
            i as f64 / 3.0,
            i % 50
        ));
        let weird = match i % 10 {
            0 => "NaN".to_string(),
            1 => "inf".to_string(),
            2 => "-inf".to_string(),
            _ => format!("{}", i as f64 / 2.0),
        };
        c.push_str(&format!(
            "{},text{},,{},c{}\n",
            (i % 17) + 3,
            i,
            weird,
            100_000 + i
        ));
    }
    std::fs::write(&base, b).unwrap();
    std::fs::write(&cur, c).unwrap();
    let r = json_of(
        &[
            "drift",
            cur.to_str().unwrap(),
            "--baseline",
            base.to_str().unwrap(),
            "--fail-on",
            "never",
        ],
        0,
    );
    let skipped = section(&r, "skipped");
    assert!(row(skipped, "mixed")["reason"]
        .as_str()
        .unwrap()
        .contains("type differs"));
    let columns = section(&r, "columns");
    assert_eq!(row(columns, "empty")["status"], "error");
    assert_eq!(row(columns, "num")["status"], "drift");
    let quality = section(&r, "quality");
    assert!(row(quality, "weird")["flags"]
        .as_str()
        .unwrap()
        .contains("NaN or infinite"));
    assert_eq!(row(quality, "many")["unseen_categories"], 200);
}

#[test]
fn windows_before_1970_and_by_row_count() {
    let dir = tempfile::tempdir().unwrap();
    let (base, cur) = (dir.path().join("b.csv"), dir.path().join("c.csv"));
    let mut b = String::from("timestamp,x\n");
    let mut c = String::from("timestamp,x\n");
    for i in 0..48 {
        // Hourly from 1969-12-31T00:00Z: one day before the epoch, one after.
        let day = if i < 24 { "1969-12-31" } else { "1970-01-01" };
        let ts = format!("{day}T{:02}:00:00", i % 24);
        b.push_str(&format!("{ts},{}\n", i % 7));
        c.push_str(&format!(
            "{ts},{}\n",
            if i < 24 { i % 7 } else { 50 + i % 7 }
        ));
    }
    std::fs::write(&base, b).unwrap();
    std::fs::write(&cur, c).unwrap();
    let (b, c) = (base.to_str().unwrap(), cur.to_str().unwrap());
    let r = json_of(
        &[
            "drift",
            c,
            "--baseline",
            b,
            "--window",
            "1d",
            "--fail-on",
            "never",
        ],
        0,
    );
    let windows = section(&r, "windows")["rows"].as_array().unwrap();
    assert_eq!(windows.len(), 2);
    assert_eq!(windows[0]["window"], "1969-12-31");
    assert_eq!(windows[0]["rows"], 24);
    assert_eq!(windows[0]["dataset_drift"], "ok");
    assert_eq!(windows[1]["dataset_drift"], "drift");
    let r = json_of(
        &[
            "drift",
            c,
            "--baseline",
            b,
            "--window",
            "20rows",
            "--fail-on",
            "never",
        ],
        0,
    );
    let labels: Vec<&str> = section(&r, "windows")["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["window"].as_str().unwrap())
        .collect();
    assert_eq!(labels, vec!["rows 0..20", "rows 20..40", "rows 40..48"]);
}

#[test]
fn a_hundred_thousand_categories_are_fine() {
    let dir = tempfile::tempdir().unwrap();
    let (base, cur) = (dir.path().join("b.csv"), dir.path().join("c.csv"));
    let mut b = String::from("user\n");
    let mut c = String::from("user\n");
    for i in 0..100_000 {
        b.push_str(&format!("u{}\n", i % 50_000));
        c.push_str(&format!("u{}\n", (i * 7) % 100_000));
    }
    std::fs::write(&base, b).unwrap();
    std::fs::write(&cur, c).unwrap();
    let r = json_of(
        &[
            "drift",
            cur.to_str().unwrap(),
            "--baseline",
            base.to_str().unwrap(),
            "--fail-on",
            "never",
        ],
        0,
    );
    assert_eq!(row(section(&r, "columns"), "user")["test"], "jensenshannon");
}

#[test]
fn the_sample_projects_mlctl_toml_sets_baseline_and_gates() {
    let out = bare_mlctl()
        .args([
            "drift",
            "sample_data/logs.parquet",
            "--window",
            "1d",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["settings"]["baseline"], "sample_data/train.parquet");
    assert_eq!(r["settings"]["window"], "1d");
    assert_eq!(r["summary"]["first_drifted_window"], "2026-03-08");
    let area = row(section(&r, "columns"), "mean_area");
    assert_eq!(area["threshold"], 0.01);
    // A flag wins over the file.
    bare_mlctl()
        .args([
            "drift",
            "sample_data/logs.parquet",
            "--fail-on",
            "never",
            "-q",
        ])
        .assert()
        .success();
}

#[test]
fn a_bad_settings_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("mlctl.toml");
    std::fs::write(&bad, "[drift]\nstat_test = \"ks\"\n").unwrap();
    fails_cleanly(
        &[
            "drift",
            "sample_data/test.parquet",
            "--baseline",
            "sample_data/train.parquet",
            "--config",
            bad.to_str().unwrap(),
        ],
        "stat_test",
    );
}

#[test]
fn committed_completions_are_up_to_date() {
    for (shell, file) in [
        ("bash", "completions/mlctl.bash"),
        ("zsh", "completions/_mlctl"),
        ("fish", "completions/mlctl.fish"),
        ("powershell", "completions/_mlctl.ps1"),
    ] {
        let out = mlctl().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        let committed = std::fs::read(file).unwrap_or_default();
        assert!(
            committed == out.stdout,
            "{file} is stale: regenerate with `mlctl completions {shell} > {file}`"
        );
    }
    let man = mlctl().arg("manpage").output().unwrap();
    assert_eq!(
        std::fs::read("completions/mlctl.1").unwrap_or_default(),
        man.stdout,
        "completions/mlctl.1 is stale"
    );
}
