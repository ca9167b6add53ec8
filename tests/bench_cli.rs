//! `mlctl bench` on the sample model: the report's shape, the comparison of
//! two models, the gates and bad input. Statistics themselves are unit
//! tested in src/stats/latency.rs; nothing here depends on how fast the
//! machine is.

mod common;

use common::{fails_cleanly, mlctl};
use serde_json::Value;

fn bench(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    common::json_report(&all)
}

fn rows<'a>(r: &'a Value, key: &str) -> &'a Vec<Value> {
    common::section_rows(r, key)
}

#[test]
fn two_models_at_two_batch_sizes_are_measured_and_compared() {
    let dir = tempfile::tempdir().unwrap();
    let int8 = dir.path().join("model.int8.onnx");
    mlctl()
        .args(["-q", "quantize", "sample_data/model.onnx", "-o"])
        .arg(&int8)
        .assert()
        .success();
    let (code, r) = bench(&[
        "sample_data/model.onnx",
        int8.to_str().unwrap(),
        "--batch-sizes",
        "1,8",
        "--runs",
        "20",
        "--warmup",
        "2",
    ]);
    assert_eq!(code, 0, "{r}");
    let latency = rows(&r, "latency");
    assert_eq!(latency.len(), 4);
    for row in latency {
        assert_eq!(row["runs"], 20);
        let (min, p50, p99, max) = (
            row["min"].as_f64().unwrap(),
            row["p50"].as_f64().unwrap(),
            row["p99"].as_f64().unwrap(),
            row["max"].as_f64().unwrap(),
        );
        assert!(min <= p50 && p50 <= p99 && p99 <= max, "{row}");
        assert!(row["rows_per_second"].as_f64().unwrap() > 0.0);
    }
    let comparison = rows(&r, "comparison");
    assert_eq!(comparison.len(), 2);
    for row in comparison {
        assert!(row["speedup"].as_f64().unwrap() > 0.0);
        assert!(row["size_ratio"].as_f64().unwrap() > 0.0);
        assert!(row["agreement"].as_f64().unwrap() >= 0.9, "{row}");
    }
    // The harness is measured and reported.
    assert!(r["summary"]["timer_overhead_ns"].as_f64().unwrap() > 0.0);
    assert!(r["summary"]["empty_model_p50_us"].as_f64().unwrap() > 0.0);
    assert_eq!(
        r["settings"]["percentiles"],
        "nearest rank (a measured time)"
    );
    assert!(r["settings"]["kernels"].as_str().is_some());
}

#[test]
fn a_violated_gate_names_the_figure_and_exits_1() {
    let (code, r) = bench(&[
        "sample_data/model.onnx",
        "--runs",
        "5",
        "--max-p50-ms",
        "0.000001",
    ]);
    assert_eq!(code, 1, "{r}");
    assert!(
        r["gate"]["message"].as_str().unwrap().contains("p50"),
        "{r}"
    );
    let (code, r) = bench(&[
        "sample_data/model.onnx",
        "--runs",
        "5",
        "--min-throughput",
        "1e15",
    ]);
    assert_eq!(code, 1);
    assert!(
        r["gate"]["message"].as_str().unwrap().contains("rows/s"),
        "{r}"
    );
}

#[test]
fn real_rows_can_be_the_inputs() {
    // The test split's 30 features as CSV (without `target`).
    let table = mlctl::data::Table::open(std::path::Path::new("sample_data/test.parquet")).unwrap();
    let names: Vec<String> = table
        .columns
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| n != "target")
        .collect();
    let (columns, _) = table.read_numbers(&names, 0, 171).unwrap();
    let mut csv = names.join(",") + "\n";
    for r in 0..171 {
        let row: Vec<String> = columns.iter().map(|c| c[r].to_string()).collect();
        csv += &(row.join(",") + "\n");
    }
    let dir = tempfile::tempdir().unwrap();
    let rows_path = dir.path().join("features.csv");
    std::fs::write(&rows_path, csv).unwrap();
    let (code, r) = bench(&[
        "sample_data/model.onnx",
        "--inputs",
        rows_path.to_str().unwrap(),
        "--batch-sizes",
        "16,171",
        "--runs",
        "5",
    ]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(rows(&r, "latency").len(), 2);
    fails_cleanly(
        &[
            "bench",
            "sample_data/model.onnx",
            "--inputs",
            rows_path.to_str().unwrap(),
            "--batch-sizes",
            "500",
        ],
        "fewer than batch size 500",
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    fails_cleanly(
        &["bench", "sample_data/model.onnx", "--device", "tpu"],
        "bad device",
    );
    fails_cleanly(
        &[
            "bench",
            "sample_data/model.onnx",
            "--shape",
            "nope=1,2",
            "--runs",
            "2",
        ],
        "no input 'nope'",
    );
    fails_cleanly(
        &[
            "bench",
            "sample_data/model.onnx",
            "--shape",
            "X",
            "--runs",
            "2",
        ],
        "--shape 'X'",
    );
    fails_cleanly(
        &["bench", "sample_data/model.onnx", "--duration", "soon"],
        "--duration",
    );
    fails_cleanly(
        &["bench", "sample_data/model.onnx", "--batch-sizes", "0"],
        "--batch-sizes",
    );
    fails_cleanly(
        &[
            "bench",
            "tests/onnx_node/cases/test_relu/model.onnx",
            "--batch-sizes",
            "2",
            "--runs",
            "2",
        ],
        "fixed first dimension",
    );
    fails_cleanly(
        &[
            "bench",
            "sample_data/model.onnx",
            "--inputs",
            "sample_data/flights_2013_01.parquet",
            "--runs",
            "2",
        ],
        "features",
    );
}

#[test]
fn the_server_scenario_batches_poisson_arrivals_and_reports_queueing() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("bench.json");
    let (code, r) = bench(&[
        "sample_data/model.onnx",
        "--scenario",
        "server",
        "--qps",
        "500",
        "--max-batch",
        "4",
        "--max-delay-ms",
        "1",
        "--duration",
        "1s",
        "--export-json",
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{r}");
    let row = &rows(&r, "server")[0];
    let requests = row["requests"].as_u64().unwrap();
    // Poisson at 500/s over 1 s: 500 +- a few standard deviations (sqrt 500).
    assert!((400..600).contains(&requests), "{row}");
    assert!(row["p50"].as_f64().unwrap() <= row["p99"].as_f64().unwrap());
    let sent: u64 = rows(&r, "batch_sizes")
        .iter()
        .map(|b| b["batch"].as_u64().unwrap() * b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(sent, requests);
    assert!(rows(&r, "batch_sizes")
        .iter()
        .all(|b| (1..=4).contains(&b["batch"].as_u64().unwrap())));
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert_eq!(exported["command"], "bench");
    assert_eq!(exported["settings"]["scenario"], "server");
}

#[test]
fn offline_and_the_rate_search_report_their_figures() {
    let (code, r) = bench(&[
        "sample_data/model.onnx",
        "--scenario",
        "offline",
        "--batch-sizes",
        "64",
        "--runs",
        "20",
    ]);
    assert_eq!(code, 0, "{r}");
    assert!(rows(&r, "offline")[0]["rows_per_second"].as_f64().unwrap() > 0.0);
    let (code, r) = bench(&[
        "sample_data/model.onnx",
        "--scenario",
        "server",
        "--find-max-qps",
        "50",
        "--max-batch",
        "4",
        "--duration",
        "0.05s",
    ]);
    assert_eq!(code, 0, "{r}");
    let search = rows(&r, "qps_search");
    assert_eq!(search.len(), 8);
    assert!(r["summary"]["max_qps_0"].as_f64().unwrap() > 0.0, "{r}");
    fails_cleanly(
        &["bench", "sample_data/model.onnx", "--scenario", "server"],
        "needs --qps",
    );
    fails_cleanly(
        &["bench", "sample_data/model.onnx", "--find-max-qps", "5"],
        "--scenario server",
    );
}
