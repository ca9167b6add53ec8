//! `mlctl shadow-compare` end to end on the sample shadow deployment
//! (sample_data/shadow_*.parquet, model.onnx live, model_v2.onnx in shadow):
//! every figure against statsmodels / scipy / ONNX Runtime values in
//! tests/fixtures/shadow_stats.json (made by make_shadow_fixtures.py), the
//! verdicts and gates, and bad input.

mod common;

use common::{fails_cleanly, json_report, sample_replay, section_rows};
use serde_json::Value;

use mlctl::stats::paired::{self, Moments};
use mlctl::stats::{binning, divergence, ks, Runs};

fn fixtures() -> Value {
    let text = std::fs::read_to_string("tests/fixtures/shadow_stats.json").expect("fixtures");
    serde_json::from_str(&text).unwrap()
}

/// Equal to 1e-6 relative (or 1e-12 absolute near zero).
fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= 1e-6 * expected.abs().max(1e-6)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f).collect()
}

#[test]
fn paired_statistics_match_statsmodels_and_scipy() {
    let fx = fixtures();
    let t = &fx["tests"];
    for case in t["mcnemar"].as_array().unwrap() {
        let r = paired::mcnemar(u(&case["b"]), u(&case["c"]));
        assert_eq!(r.exact, case["exact"].as_bool().unwrap(), "{case}");
        assert!(close(r.statistic, f(&case["statistic"])), "{case} {r:?}");
        assert!(close(r.p_value, f(&case["p_value"])), "{case} {r:?}");
    }
    for case in t["wilson"].as_array().unwrap() {
        let (lo, hi) = paired::wilson(u(&case["hits"]), u(&case["n"]), 0.95).unwrap();
        assert!(
            close(lo, f(&case["low"])) && close(hi, f(&case["high"])),
            "{case}"
        );
    }
    for case in t["paired_difference"].as_array().unwrap() {
        let (d, lo, hi) =
            paired::paired_difference(u(&case["b"]), u(&case["c"]), u(&case["n"]), 0.95).unwrap();
        assert!(close(d, f(&case["difference"])), "{case}");
        assert!(
            close(lo, f(&case["low"])) && close(hi, f(&case["high"])),
            "{case}"
        );
    }
    for case in t["mean_interval"].as_array().unwrap() {
        let mut m = Moments::default();
        floats(&case["values"]).into_iter().for_each(|x| m.push(x));
        let (lo, hi) = paired::mean_interval(&m, 0.95).unwrap();
        assert!(
            close(lo, f(&case["low"])) && close(hi, f(&case["high"])),
            "{lo} {hi}"
        );
    }
    for case in t["paired_t"].as_array().unwrap() {
        let mut d = Moments::default();
        for (a, b) in floats(&case["a"]).into_iter().zip(floats(&case["b"])) {
            d.push(a - b);
        }
        let r = paired::paired_t(&d).unwrap();
        assert!(close(r.statistic, f(&case["statistic"])), "{r:?}");
        assert!(close(r.p_value, f(&case["p_value"])), "{r:?}");
    }
    for case in t["holm"].as_array().unwrap() {
        let adjusted = paired::holm(&floats(&case["p_values"]));
        for (a, e) in adjusted.iter().zip(floats(&case["adjusted"])) {
            assert!(close(*a, e), "{a} {e}");
        }
    }
    for case in t["distances"].as_array().unwrap() {
        let a = Runs::from_values(floats(&case["primary"]));
        let b = Runs::from_values(floats(&case["candidate"]));
        let r = ks::ks_2samp(&a, &b);
        assert!(close(r.statistic, f(&case["ks_statistic"])));
        assert!(close(r.p_value, f(&case["ks_p_value"])), "{r:?}");
        let mut binned = binning::bin_numeric(&a, &b, false);
        binning::fill_zeroes(&mut binned.reference);
        binning::fill_zeroes(&mut binned.current);
        let psi = divergence::psi(&binned.reference, &binned.current);
        assert!(close(psi, f(&case["psi"])), "{psi}");
    }
}

fn summary_matches(r: &Value, expected: &Value) {
    let s = &r["summary"];
    assert_eq!(s["rows"], expected["rows"], "{s}");
    assert_eq!(s["flips"], expected["flips"]);
    assert_eq!(s["labelled_rows"], expected["labelled"]);
    assert_eq!(s["negative_flips"], expected["negative_flips"]);
    assert_eq!(s["positive_flips"], expected["positive_flips"]);
    assert!(close(
        f(&s["primary_accuracy"]),
        f(&expected["primary_accuracy"])
    ));
    assert!(close(
        f(&s["candidate_accuracy"]),
        f(&expected["candidate_accuracy"])
    ));
    assert!(close(f(&s["p_value"]), f(&expected["mcnemar"]["p_value"])));
    let change = &expected["accuracy_change"];
    assert!(close(f(&s["accuracy_change"]), f(&change["difference"])));
    assert!(close(f(&s["accuracy_change_low"]), f(&change["low"])));
    assert!(close(f(&s["accuracy_change_high"]), f(&change["high"])));
    let tests = section_rows(r, "tests");
    let mcnemar = tests.iter().find(|t| t["test"] == "mcnemar").unwrap();
    assert!(close(
        f(&mcnemar["statistic"]),
        f(&expected["mcnemar"]["statistic"])
    ));
    let models = section_rows(r, "models");
    for (row, key) in models.iter().zip(["primary_wilson", "candidate_wilson"]) {
        assert!(
            close(f(&row["accuracy_low"]), f(&expected[key]["low"])),
            "{row}"
        );
        assert!(
            close(f(&row["accuracy_high"]), f(&expected[key]["high"])),
            "{row}"
        );
    }
    let slices = section_rows(r, "slices");
    for e in expected["slices"].as_array().unwrap() {
        let row = slices.iter().find(|s| s["slice"] == e["slice"]).unwrap();
        assert_eq!(row["rows"], e["rows"]);
        assert_eq!(row["negative_flips"], e["b"]);
        assert_eq!(row["positive_flips"], e["c"]);
        assert!(close(f(&row["p_value"]), f(&e["p_value"])), "{row}");
        assert!(close(f(&row["p_adjusted"]), f(&e["p_adjusted"])), "{row}");
        let flagged = row["status"] == "drift";
        assert_eq!(flagged, e["flagged"].as_bool().unwrap(), "{row}");
    }
    // Worst first: the flagged slice leads.
    assert_eq!(slices[0]["slice"], "latam");
}

fn scores_match(r: &Value, expected: &Value, tolerance: f64) {
    let tests = section_rows(r, "tests");
    let ks = tests.iter().find(|t| t["test"] == "ks_scores").unwrap();
    let psi = tests.iter().find(|t| t["test"] == "psi_scores").unwrap();
    let near = |a: f64, e: f64| (a - e).abs() <= tolerance * e.abs().max(1e-6);
    assert!(
        near(f(&ks["statistic"]), f(&expected["ks_statistic"])),
        "{ks}"
    );
    assert!(near(f(&ks["p_value"]), f(&expected["ks_p_value"])), "{ks}");
    assert!(near(f(&psi["statistic"]), f(&expected["psi"])), "{psi}");
}

/// A replay of the sample models on `inputs`, sliced by region.
fn replay_by_region(inputs: &str) -> Vec<&str> {
    [&sample_replay(inputs)[..], &["--slice-by", "region"]].concat()
}

/// The sample deployment's log.
const SAMPLE_LOG: &str = "sample_data/shadow_primary.parquet";

const LOGS: [&str; 6] = [
    "shadow-compare",
    "--primary-log",
    "sample_data/shadow_primary.parquet",
    "--candidate-log",
    "sample_data/shadow_candidate.parquet",
    "--slice-by=region",
];

#[test]
fn logs_mode_matches_statsmodels_and_counts_every_unjoined_row() {
    let fx = fixtures();
    let (code, r) = json_report(&LOGS);
    // Significantly worse overall, one slice flagged, no gate: marginal.
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["gate"]["outcome"], "marginal", "{}", r["gate"]);
    assert!(r["gate"]["message"]
        .as_str()
        .unwrap()
        .contains("significantly worse overall"));
    let expected = &fx["logs"];
    summary_matches(&r, expected);
    scores_match(&r, &expected["scores"], 1e-6);
    let coverage = section_rows(&r, "coverage");
    let count = |what: &str| {
        coverage
            .iter()
            .find(|c| c["what"].as_str().unwrap().starts_with(what))
            .unwrap()["rows"]
            .clone()
    };
    assert_eq!(count("only in the primary"), expected["only_primary"]);
    assert_eq!(count("only in the candidate"), expected["only_candidate"]);
    assert_eq!(
        count("duplicate ids in the candidate"),
        expected["candidate_duplicates"]
    );
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("23 rows are in one log only"),
        "{warnings}"
    );
    assert!(warnings.contains("repeat a request id"), "{warnings}");
}

#[test]
fn replay_matches_onnx_runtime_and_statsmodels() {
    let fx = fixtures();
    let (code, r) =
        json_report(&[&replay_by_region(SAMPLE_LOG)[..], &["--batch-size", "333"]].concat());
    assert_eq!(code, 0, "{r}");
    let expected = &fx["replay"];
    summary_matches(&r, expected);
    // Scores come from mlctl's runtime, not ONNX Runtime: float32 sums in
    // another order move them by about 1e-7.
    scores_match(&r, &expected["scores"], 1e-4);
    let s = &r["summary"];
    assert!(
        (f(&s["mean_abs_score_difference"]) - f(&expected["mean_abs_score_difference"])).abs()
            < 1e-6
    );
    assert!(
        (f(&s["max_abs_score_difference"]) - f(&expected["max_abs_score_difference"])).abs() < 1e-6
    );
    // The label, slices and the log's prediction columns are not features.
    let settings = &r["settings"];
    assert_eq!(settings["label"], "label");
    let models = section_rows(&r, "models");
    assert!(f(&models[0]["rows_per_second"]) > 0.0 && f(&models[1]["rows_per_second"]) > 0.0);
}

/// The report without what timing moves.
fn without_timings(mut r: Value) -> Value {
    r["summary"]
        .as_object_mut()
        .expect("a summary")
        .remove("replay_rows_per_second");
    let sections = r["sections"].as_array_mut().expect("sections");
    sections.retain(|s| s["key"] != "models");
    r["settings"] = Value::Null;
    r
}

#[test]
fn replay_in_many_short_ranges_is_the_same_on_one_thread_and_on_two() {
    // Batches of 7 rows: the log is handed out in ranges of 224 rows, laid
    // out in parts of 28 (the last range, 208 rows, in parts of 28 and one
    // of 12), the last batch of the log is partial, and with two
    // threads each model runs ahead on its own thread; the answers must
    // still pair up row by row, in order.
    let run = |threads: &str, batch: &str| {
        let extra = [
            "--baseline-noise",
            "--batch-size",
            batch,
            "--threads",
            threads,
        ];
        let (code, r) = json_report(&[&replay_by_region(SAMPLE_LOG)[..], &extra].concat());
        assert_eq!(code, 0, "{r}");
        r
    };
    let one = without_timings(run("1", "7"));
    let two = without_timings(run("2", "7"));
    assert_eq!(one, two);
    // Four workers taking turns at judging 286 small batches: every batch
    // judged once, in order, whoever judges it.
    let four = without_timings(run("4", "7"));
    assert_eq!(one, four);
    // The counts match a replay in one range of large batches.
    let large = run("2", "333");
    for key in [
        "rows",
        "flips",
        "negative_flips",
        "positive_flips",
        "labelled_rows",
        "slices",
        "slices_flagged",
    ] {
        assert_eq!(one["summary"][key], large["summary"][key], "{key}");
    }
    assert_eq!(u(&one["summary"]["rows"]), 2000);
}

#[test]
fn a_log_read_from_disk_page_by_page_replays_as_the_same_log_held_in_memory_on_any_thread_count() {
    // The sample log's features, labels and regions 150 times over: once
    // alone (a small file, decoded into memory when opened) and once with a
    // column of random text besides (over 32 MB: read from disk range by
    // range, its float features page by page by data::FloatRows; its one
    // row group of 300,000 rows in three ranges, two of them read from the
    // middle of the row group). The two replays must agree on every figure.
    use mlctl::data::{write_parquet, Frame, OutColumn, Values};
    const TIMES: usize = 150;
    let sample = Frame::read(
        std::path::Path::new("sample_data/shadow_primary.parquet"),
        None,
    )
    .expect("the sample log");
    let mut columns = Vec::new();
    for name in sample.names() {
        if ["request_id", "timestamp", "prediction", "confidence"].contains(&name.as_str()) {
            continue;
        }
        fn repeated<T: Clone>(v: &[T]) -> Vec<T> {
            v.iter().cloned().cycle().take(v.len() * TIMES).collect()
        }
        fn present<T>(v: Vec<Option<T>>) -> Vec<T> {
            v.into_iter().map(|x| x.expect("no nulls")).collect()
        }
        let column = match sample.values(&name).expect("values") {
            Values::Float(v) => OutColumn::F64(repeated(&present(v))),
            Values::Int(v) => OutColumn::I64(repeated(&present(v))),
            Values::Text(v) => OutColumn::Text(repeated(&v)),
            Values::Bool(_) => panic!("no boolean column in the sample log"),
        };
        columns.push((name, column));
    }
    let rows = 2000 * TIMES;
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("in_memory.parquet");
    write_parquet(&small, columns.clone()).unwrap();
    // 400 hexadecimal digits a row from a simple generator (200 bytes that
    // do not compress).
    let mut state = 0x9e3779b97f4a7c15u64;
    let payload = (0..rows)
        .map(|_| {
            let text: String = (0..50)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    format!("{:08x}", state as u32)
                })
                .collect();
            Some(text)
        })
        .collect();
    columns.push(("payload".to_string(), OutColumn::Text(payload)));
    let large = dir.path().join("from_disk.parquet");
    write_parquet(&large, columns).unwrap();
    assert!(std::fs::metadata(&large).unwrap().len() > 32 << 20);
    let table = mlctl::data::Table::open(&large).unwrap();
    assert_eq!(table.chunks(1 << 17).unwrap(), vec![(0, rows)]);
    let replay = |log: &std::path::Path, threads: &str| {
        let mut args = replay_by_region(log.to_str().unwrap());
        args.extend(["--exclude", "payload", "--threads", threads]);
        let (code, r) = json_report(&args);
        assert_eq!(code, 0, "{r}");
        r
    };
    let in_memory = without_timings(replay(&small, "2"));
    // From disk, each worker answers whole row groups or pieces of one:
    // the same on one thread as on three.
    for threads in ["1", "3"] {
        let from_disk = without_timings(replay(&large, threads));
        assert_eq!(u(&from_disk["summary"]["rows"]), rows as u64);
        assert_eq!(in_memory["summary"], from_disk["summary"], "{threads}");
        assert_eq!(in_memory["sections"], from_disk["sections"], "{threads}");
    }
    // The sample models, their Scaler out, read the features laid out
    // column by column (page by page from disk) and in rows (in memory).
    // With a primary whose Scaler stays (an Identity before it), neither
    // model's Scaler comes out, so neither reads by columns: from disk the
    // features are laid out in rows too. The same figures both ways.
    let replay_with_scalers = |log: &std::path::Path| {
        let mut args = replay_by_region(log.to_str().unwrap());
        args[2] = "tests/fixtures/models/model_identity_first.onnx";
        args.extend(["--exclude", "payload", "--threads", "2"]);
        let (code, r) = json_report(&args);
        assert_eq!(code, 0, "{r}");
        without_timings(r)
    };
    let in_memory = replay_with_scalers(&small);
    let from_disk = replay_with_scalers(&large);
    assert_eq!(in_memory["summary"], from_disk["summary"]);
    assert_eq!(in_memory["sections"], from_disk["sections"]);
}

#[test]
fn a_scaler_taken_out_of_both_models_gives_the_answers_they_give_with_it() {
    // The sample models both scale their input first: the replay scales
    // the features as it lays them out and runs the models without their
    // Scaler. model_identity_first.onnx is model.onnx with an Identity
    // before its Scaler (tests/fixtures/make_replay_models.py): its Scaler
    // stays, and so does the candidate's. Every figure must be the same,
    // to the last bit of the mean score difference, on one thread and two,
    // with a noise run.
    let replay = |primary: &str, threads: &str| {
        let mut args = replay_by_region(SAMPLE_LOG);
        args[2] = primary;
        args.extend([
            "--baseline-noise",
            "--batch-size",
            "97",
            "--threads",
            threads,
        ]);
        let (code, r) = json_report(&args);
        assert_eq!(code, 0, "{r}");
        r
    };
    let note = |r: &Value| {
        let models = r["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == "models");
        let notes = models.expect("a models section")["notes"]
            .as_array()
            .unwrap();
        notes.iter().any(|n| {
            n.as_str()
                .unwrap()
                .contains("input Scaler (the same in both) was applied")
        })
    };
    for threads in ["1", "2"] {
        let scaled_as_read = replay("sample_data/model.onnx", threads);
        let scaled_by_models = replay("tests/fixtures/models/model_identity_first.onnx", threads);
        assert!(note(&scaled_as_read), "{scaled_as_read}");
        assert!(!note(&scaled_by_models), "{scaled_by_models}");
        let (a, b) = (
            without_timings(scaled_as_read),
            without_timings(scaled_by_models),
        );
        assert_eq!(a["summary"], b["summary"], "{threads}");
        assert!(f(&a["summary"]["mean_abs_score_difference"]) > 0.0);
        assert_eq!(a["sections"], b["sections"], "{threads}");
    }
}

#[test]
fn the_sample_model_against_itself_has_no_flips_and_passes() {
    let (code, r) = json_report(&[
        "shadow-compare",
        "--primary",
        "sample_data/model.onnx",
        "--candidate",
        "sample_data/model.onnx",
        "--inputs",
        "sample_data/logs.parquet",
        "--baseline-noise",
        "--max-flip-rate",
        "0",
        "--fail-on-slice-regression",
        "--slice-by",
        "model_version",
    ]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["gate"]["outcome"], "pass");
    let s = &r["summary"];
    assert_eq!(s["rows"], 3500);
    assert_eq!(s["flips"], 0);
    assert_eq!(s["noise_flip_rate"], 0.0);
    assert_eq!(s["max_abs_score_difference"], 0.0);
    assert_eq!(s["scores_changed"], 0);
    assert_eq!(s["labelled_rows"], 3000, "days 13 and 14 have no label yet");
    assert!(r["gate"]["message"]
        .as_str()
        .unwrap()
        .contains("noise floor is zero"));
}

#[test]
fn gates_fail_with_the_violated_figure_named() {
    let mut args = LOGS.to_vec();
    args.extend(["--max-accuracy-drop", "0.01", "--max-flip-rate", "0.2"]);
    let (code, r) = json_report(&args);
    assert_eq!(code, 1, "{r}");
    let message = r["gate"]["message"].as_str().unwrap();
    assert!(
        message.contains("--max-accuracy-drop: accuracy drop 0.0192 > 0.01"),
        "{message}"
    );
    assert!(!message.contains("--max-flip-rate"), "{message}");
    let gates = section_rows(&r, "gates");
    assert_eq!(gates.len(), 2);

    let mut args = LOGS.to_vec();
    args.push("--fail-on-slice-regression");
    let (code, r) = json_report(&args);
    assert_eq!(code, 1);
    assert!(r["gate"]["message"]
        .as_str()
        .unwrap()
        .contains("--fail-on-slice-regression"));

    let mut args = LOGS.to_vec();
    args.extend(["--max-negative-flip-rate", "0.1", "--max-psi", "1"]);
    let (code, r) = json_report(&args);
    assert_eq!(code, 0);
    assert!(close(f(&r["summary"]["negative_flip_rate"]), 97.0 / 1977.0));
}

#[test]
fn a_gate_that_needs_labels_fails_closed_without_them() {
    // The shadow log has no label column: the accuracy gate cannot be
    // checked, and a gate that cannot be checked fails.
    let (code, r) = json_report(&[
        "shadow-compare",
        "--primary-log",
        "sample_data/shadow_candidate.parquet",
        "--candidate-log",
        "sample_data/shadow_primary.parquet",
        "--max-accuracy-drop",
        "0.01",
    ]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["summary"]["labelled_rows"], 0);
    assert!(r["gate"]["message"]
        .as_str()
        .unwrap()
        .contains("--max-accuracy-drop: cannot be checked"));
}

#[test]
fn a_label_column_that_is_not_classes_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.md");
    let code = common::mlctl()
        .args([
            "shadow-compare",
            "--primary-log",
            "sample_data/shadow_primary.parquet",
            "--candidate-log",
            "sample_data/shadow_candidate.parquet",
            "--label",
            "confidence",
            "--max-accuracy-drop",
            "0.01",
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    // A label column of probabilities is not classes: a clear error.
    assert_eq!(code.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&code.stderr).contains("not classes"));
    assert!(!out.exists());
}

#[test]
fn reports_render_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    for ext in ["md", "html", "json", "csv"] {
        let out = dir.path().join(format!("report.{ext}"));
        let run = common::mlctl()
            .args(LOGS)
            .args(["-o", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(0));
        // The line on stderr names the verdict as it is.
        assert!(String::from_utf8_lossy(&run.stderr).starts_with("mlctl: MARGINAL: "));
        let text = std::fs::read_to_string(&out).unwrap();
        match ext {
            "md" => {
                // Verdict and summary first, the worst slices next.
                let verdict = text.find("MARGINAL").unwrap();
                let slices = text.find("Slices by region").unwrap();
                let tests = text.find("Tests and distances").unwrap();
                assert!(verdict < slices && slices < tests, "{text}");
            }
            "html" => {
                assert!(text.contains("Score distributions"));
                assert!(text.contains("accuracy per slice"));
            }
            "csv" => assert!(text.contains("outcome,marginal"), "{text}"),
            _ => assert!(!text.is_empty()),
        }
    }
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    fails_cleanly(&["shadow-compare"], "needs --primary MODEL");
    // The sample logs with one more flag.
    let logs_and = |extra: &[&'static str]| [&LOGS[..5], extra].concat();
    fails_cleanly(
        &logs_and(&["--slice-by", "nope"]),
        "no column 'nope' to slice by",
    );
    fails_cleanly(
        &logs_and(&["--join", "missing_id"]),
        "no join column 'missing_id'",
    );
    fails_cleanly(
        &[
            "shadow-compare",
            "--primary-log",
            "sample_data/shadow_primary.parquet",
            "--candidate-log",
            "sample_data/logs.parquet",
            "--max-flip-rate",
            "1.5",
        ],
        "--max-flip-rate must be a share between 0 and 1",
    );
    fails_cleanly(
        &[
            "shadow-compare",
            "--primary",
            "sample_data/model.onnx",
            "--candidate",
            "sample_data/missing.onnx",
            "--inputs",
            "sample_data/shadow_primary.parquet",
        ],
        "missing.onnx",
    );
    // The candidate takes other inputs than the log gives.
    fails_cleanly(
        &sample_replay("sample_data/flights_2013_01.parquet"),
        "takes 30 features",
    );
}

/// A replay of the feature-sum regression models (shadow_sum.onnx against
/// shadow_sum_batch7.onnx, which fails on any batch but one of 7 rows) on
/// `inputs`, in batches of 7.
fn batch7_replay(inputs: &str) -> [&str; 9] {
    [
        "shadow-compare",
        "--primary",
        "tests/fixtures/models/shadow_sum.onnx",
        "--candidate",
        "tests/fixtures/models/shadow_sum_batch7.onnx",
        "--inputs",
        inputs,
        "--batch-size",
        "7",
    ]
}

#[test]
fn a_model_failing_late_in_a_replay_is_one_line_naming_it_and_its_rows() {
    // shadow_sum_batch7.onnx answers batches of exactly 7 rows (made by
    // tests/fixtures/make_replay_models.py): 285 batches succeed, then the
    // log's last 5 rows fail, with one worker or two. The replay must stop
    // with that error, not hang or panic.
    for threads in ["1", "2"] {
        let args = [&batch7_replay(SAMPLE_LOG)[..], &["--threads", threads]].concat();
        fails_cleanly(&args, "shadow_sum_batch7.onnx: rows 1995..2000");
    }
    // The same model as the primary fails on its noise run's half batches,
    // in every batch: the error reported is the first batch's, whichever
    // worker fails first.
    fails_cleanly(
        &[
            "shadow-compare",
            "--primary",
            "tests/fixtures/models/shadow_sum_batch7.onnx",
            "--candidate",
            "tests/fixtures/models/shadow_sum.onnx",
            "--inputs",
            "sample_data/shadow_primary.parquet",
            "--batch-size",
            "7",
            "--baseline-noise",
        ],
        "shadow_sum_batch7.onnx: rows 0..4",
    );
}

#[test]
fn every_batch_before_a_failed_one_is_judged_so_the_first_error_in_the_log_is_reported() {
    // 100 rows with a text column taken as the label: the regression
    // models' answers cannot be judged against classes, an error at the
    // first batch; the batch-of-7 candidate fails on the last, short batch
    // of the same range. The label error comes first in the log, so it is
    // the one reported, with one worker or two.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.csv");
    let mut csv = (0..30)
        .map(|j| format!("f{j}"))
        .collect::<Vec<_>>()
        .join(",");
    csv.push_str(",region\n");
    for i in 0..100 {
        let row: Vec<String> = (0..30).map(|j| format!("{}", (i * 31 + j) % 17)).collect();
        csv.push_str(&format!(
            "{},{}\n",
            row.join(","),
            ["north", "south"][i % 2]
        ));
    }
    std::fs::write(&log, csv).unwrap();
    for threads in ["1", "2"] {
        let replay = batch7_replay(log.to_str().unwrap());
        let args = [&replay[..], &["--label", "region", "--threads", threads]].concat();
        fails_cleanly(&args, "label column 'region' holds classes");
    }
}

#[test]
fn models_with_other_output_names_and_shapes_are_read_by_role() {
    // The candidate gives "class" and a plain [N, 2] "scores" tensor; the
    // primary gives "output_label" and a ZipMap.
    let (code, r) = json_report(&[
        "shadow-compare",
        "--primary",
        "sample_data/model.onnx",
        "--candidate",
        "tests/fixtures/models/tensor_outputs_mlp.onnx",
        "--inputs",
        "sample_data/shadow_primary.parquet",
    ]);
    assert_eq!(code, 0, "{r}");
    let settings = &r["settings"];
    assert_eq!(
        settings["candidate_outputs"],
        "class from 'class', probabilities from 'scores'"
    );
    assert_eq!(
        settings["primary_outputs"],
        "class from 'output_label', probabilities from 'output_probability'"
    );
    assert_eq!(r["summary"]["rows"], 2000);
    assert!(u(&r["summary"]["flips"]) > 0);
}

/// Writes a log of `n` rows with `distinct` slice values.
fn write_log(path: &std::path::Path, n: usize, distinct: usize, with_label: bool, shift: i64) {
    use mlctl::data::{write_parquet, OutColumn};
    let mut columns = vec![
        (
            "request_id".to_string(),
            OutColumn::Text((0..n).map(|i| Some(format!("r{i}"))).collect()),
        ),
        (
            "user".to_string(),
            OutColumn::Text(
                (0..n)
                    .map(|i| Some(format!("u{}", i % distinct.max(1))))
                    .collect(),
            ),
        ),
        (
            "prediction".to_string(),
            OutColumn::I64((0..n).map(|i| ((i as i64 + shift) / 7) % 2).collect()),
        ),
    ];
    if with_label {
        columns.push((
            "label".to_string(),
            OutColumn::I64((0..n).map(|i| (i as i64 / 7) % 2).collect()),
        ));
    }
    write_parquet(path, columns).unwrap();
}

#[test]
fn a_slice_column_with_100k_values_is_compared_and_listed_worst_first() {
    let dir = tempfile::tempdir().unwrap();
    let (p, c) = (dir.path().join("p.parquet"), dir.path().join("c.parquet"));
    write_log(&p, 200_000, 100_000, true, 0);
    write_log(&c, 200_000, 100_000, false, 1);
    let (code, r) = json_report(&[
        "shadow-compare",
        "--primary-log",
        p.to_str().unwrap(),
        "--candidate-log",
        c.to_str().unwrap(),
        "--slice-by",
        "user",
        "--top-slices",
        "5",
    ]);
    assert_eq!(code, 0, "{}", r["gate"]);
    assert_eq!(r["summary"]["slices"], 100_000);
    // Every seventh row flips (the candidate's runs are shifted by one).
    assert_eq!(r["summary"]["flips"], 200_000 / 7);
    let slices = section_rows(&r, "slices");
    assert_eq!(slices.len(), 5);
}

#[test]
fn an_empty_log_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (p, c) = (dir.path().join("p.parquet"), dir.path().join("c.parquet"));
    write_log(&p, 0, 1, true, 0);
    write_log(&c, 10, 1, false, 0);
    fails_cleanly(
        &[
            "shadow-compare",
            "--primary-log",
            p.to_str().unwrap(),
            "--candidate-log",
            c.to_str().unwrap(),
        ],
        "has no rows",
    );
    fails_cleanly(
        &[
            "shadow-compare",
            "--primary",
            "sample_data/model.onnx",
            "--candidate",
            "sample_data/model.onnx",
            "--inputs",
            p.to_str().unwrap(),
        ],
        "no rows",
    );
}

#[test]
fn regression_logs_match_scipy_rmse_intervals_and_paired_t() {
    let fx = fixtures();
    let e = &fx["regression"];
    let (code, r) = json_report(&[
        "shadow-compare",
        "--primary-log",
        "tests/fixtures/shadow_regression_primary.parquet",
        "--candidate-log",
        "tests/fixtures/shadow_regression_candidate.parquet",
        "--slice-by",
        "origin",
        "--max-rmse-increase",
        "0.1",
    ]);
    // RMSE up by 0.41 minutes: over the 0.1 budget.
    assert_eq!(code, 1, "{}", r["gate"]);
    let s = &r["summary"];
    assert_eq!(s["task"], "regression");
    assert_eq!(s["rows"], e["rows"]);
    assert!(s.get("flips").is_none(), "no flips for a regression");
    assert!(close(f(&s["primary_rmse"]), f(&e["primary_rmse"])));
    assert!(close(f(&s["candidate_rmse"]), f(&e["candidate_rmse"])));
    assert!(close(f(&s["p_value"]), f(&e["p_value"])));
    let tests = section_rows(&r, "tests");
    let t = tests
        .iter()
        .find(|t| t["test"] == "paired_t_squared_error")
        .unwrap();
    assert!(close(f(&t["statistic"]), f(&e["t_statistic"])));
    scores_match(&r, &e["scores"], 1e-6);
    let models = section_rows(&r, "models");
    for (row, key) in models.iter().zip(["primary_rmse_ci", "candidate_rmse_ci"]) {
        assert!(close(f(&row["rmse_low"]), f(&e[key][0])), "{row}");
        assert!(close(f(&row["rmse_high"]), f(&e[key][1])), "{row}");
    }
    let slices = section_rows(&r, "slices");
    for x in e["slices"].as_array().unwrap() {
        let row = slices.iter().find(|s| s["slice"] == x["slice"]).unwrap();
        assert_eq!(row["rows"], x["rows"]);
        assert!(close(f(&row["p_value"]), f(&x["p_value"])), "{row}");
        assert!(close(f(&row["p_adjusted"]), f(&x["p_adjusted"])), "{row}");
        assert_eq!(
            row["status"] == "drift",
            x["flagged"].as_bool().unwrap(),
            "{row}"
        );
    }
    // The classifier gates make no sense here.
    fails_cleanly(
        &[
            "shadow-compare",
            "--primary-log",
            "tests/fixtures/shadow_regression_primary.parquet",
            "--candidate-log",
            "tests/fixtures/shadow_regression_candidate.parquet",
            "--max-flip-rate",
            "0.1",
        ],
        "--max-flip-rate is for classifiers",
    );
}

#[test]
fn text_classes_compare_by_name_and_missing_predictions_never_agree() {
    use mlctl::data::{write_parquet, OutColumn};
    let dir = tempfile::tempdir().unwrap();
    let (p, c) = (dir.path().join("p.parquet"), dir.path().join("c.parquet"));
    let text =
        |v: &[Option<&str>]| OutColumn::Text(v.iter().map(|s| s.map(str::to_string)).collect());
    let ids = [Some("a"), Some("b"), Some("c"), Some("d")];
    write_parquet(
        &p,
        vec![
            ("request_id".into(), text(&ids)),
            (
                "prediction".into(),
                text(&[Some("cat"), Some("dog"), None, Some("bird")]),
            ),
            (
                "label".into(),
                text(&[Some("cat"), Some("cat"), Some("dog"), None]),
            ),
        ],
    )
    .unwrap();
    write_parquet(
        &c,
        vec![
            ("request_id".into(), text(&ids)),
            (
                "prediction".into(),
                text(&[Some("cat"), Some("cat"), None, Some("bird")]),
            ),
        ],
    )
    .unwrap();
    let (code, r) = json_report(&[
        "shadow-compare",
        "--primary-log",
        p.to_str().unwrap(),
        "--candidate-log",
        c.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{r}");
    let s = &r["summary"];
    // b changed class; c is missing on both sides, which is no agreement.
    assert_eq!(s["flips"], 2);
    assert_eq!(s["labelled_rows"], 3);
    assert_eq!(s["negative_flips"], 0);
    assert_eq!(s["positive_flips"], 1);
    assert!(r["warnings"].to_string().contains("no prediction"));
    // Numbers that are not classes are refused for a classifier.
    fails_cleanly(
        &[
            "shadow-compare",
            "--primary-log",
            "tests/fixtures/shadow_regression_primary.parquet",
            "--candidate-log",
            "tests/fixtures/shadow_regression_candidate.parquet",
            "--task",
            "classification",
        ],
        "not a class",
    );
}

#[test]
fn gates_and_slices_come_from_the_config_file_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mlctl.toml");
    std::fs::write(
        &config,
        "[shadow]\nslice_by = [\"region\"]\nmax_accuracy_drop = 0.01\nalpha = 0.01\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = common::bare_mlctl()
            .args(["--config", config.to_str().unwrap(), "--format", "json"])
            .args(&LOGS[..5])
            .args(extra)
            .output()
            .unwrap();
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code().unwrap(), r)
    };
    let (code, r) = run(&[]);
    assert_eq!(code, 1, "{}", r["gate"]);
    assert_eq!(r["settings"]["slice_by"], "region");
    assert_eq!(r["settings"]["max_accuracy_drop"], 0.01);
    assert_eq!(r["settings"]["alpha"], 0.01);
    let (code, r) = run(&["--max-accuracy-drop", "0.05"]);
    assert_eq!(code, 0, "{}", r["gate"]);
    assert_eq!(r["settings"]["max_accuracy_drop"], 0.05);
    std::fs::write(&config, "[shadow]\nmax_flips = 3\n").unwrap();
    let out = common::bare_mlctl()
        .args(["--config", config.to_str().unwrap()])
        .args(&LOGS[..5])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_flips"));
}

/// Logs too long to join at once are joined partition by partition of the
/// ids, reading each log range by range: the report is the same.
#[test]
fn a_join_in_partitions_gives_the_same_report() {
    use mlctl::shadow::{Gates, LogOptions, Options, Source};
    let report = |partition_rows: usize| {
        let opts = Options {
            source: Source::Logs(LogOptions {
                primary: "sample_data/shadow_primary.parquet".into(),
                candidate: "sample_data/shadow_candidate.parquet".into(),
                noise: None,
                join: None,
                prediction: "prediction".into(),
                score: None,
                partition_rows,
            }),
            label: None,
            slice_by: vec!["region".into()],
            task: None,
            gates: Gates::default(),
            alpha: 0.05,
            max_psi: 0.2,
            top_slices: 20,
            show_progress: false,
        };
        let r: Value = serde_json::from_str(&mlctl::shadow::run(&opts).unwrap().to_json()).unwrap();
        r
    };
    let (whole, parts) = (report(mlctl::shadow::PARTITION_ROWS), report(700));
    assert_eq!(whole["summary"], parts["summary"]);
    assert_eq!(whole["warnings"], parts["warnings"]);
    for key in ["slices", "tests", "models", "coverage"] {
        assert_eq!(
            section_rows(&whole, key),
            section_rows(&parts, key),
            "{key}"
        );
    }
    let notes = |r: &Value| {
        r["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == "coverage")
            .unwrap()["notes"]
            .to_string()
    };
    assert!(
        notes(&parts).contains("in 6 partitions"),
        "{}",
        notes(&parts)
    );
    assert!(!notes(&whole).contains("partitions"));
}
