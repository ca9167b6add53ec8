//! `mlctl predict` and `mlctl inspect` on the bundled model, checked against
//! ONNX Runtime's outputs (tests/fixtures/mlp_ort.json, made by
//! tests/fixtures/make_runtime_fixtures.py), and on broken models
//! (tests/fixtures/models, made by make_bad_models.py).

mod common;

use common::{fails_cleanly, mlctl};
use predicates::prelude::*;
use serde_json::Value;

use mlctl::data::Table;

#[test]
fn predict_matches_onnx_runtime_on_the_sample_mlp() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pred.parquet");
    mlctl()
        .args([
            "predict",
            "sample_data/model.onnx",
            "--input",
            "sample_data/test.parquet",
            "--exclude",
            "target",
        ])
        .args(["--keep", "target", "--batch-size", "50", "-o"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("scored 171 rows"));
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/mlp_ort.json").unwrap())
            .unwrap();
    let table = Table::open(&out).unwrap();
    let names: Vec<String> = [
        "output_label",
        "output_probability_0",
        "output_probability_1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (cols, nulls) = table.read_numbers(&names, 0, 1000).unwrap();
    assert_eq!(nulls, 0);
    assert_eq!(cols[0].len(), 171);
    let mut max_diff: f64 = 0.0;
    for r in 0..171 {
        assert_eq!(cols[0][r], fixture["label"][r].as_f64().unwrap(), "row {r}");
        for k in 0..2 {
            let expected = fixture["probabilities"][r][k].as_f64().unwrap();
            max_diff = max_diff.max((cols[1 + k][r] - expected).abs());
        }
    }
    assert!(
        max_diff < 1e-4,
        "max difference from ONNX Runtime {max_diff}"
    );
    assert_eq!(
        table.value_type("target"),
        Some(mlctl::data::ValueType::Text)
    );
}

#[test]
fn inspect_describes_the_model_and_passes_when_all_runs() {
    let out = mlctl()
        .args(["inspect", "sample_data/model.onnx", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["summary"]["nodes"], 19);
    assert_eq!(r["summary"]["unsupported_nodes"], 0);
    let ops = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "operators")
        .unwrap();
    assert!(ops["rows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["op"] == "ZipMap" && o["supported"] == "ok"));
    let inputs = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "inputs")
        .unwrap();
    assert_eq!(inputs["rows"][0]["shape"], "[?, 30]");
}

#[test]
fn inspect_fails_the_gate_on_unsupported_nodes_and_names_them() {
    mlctl()
        .args(["inspect", "tests/fixtures/models/unsupported.onnx"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("einsum"))
        .stdout(predicate::str::contains("LpNormalization"));
}

#[test]
fn broken_models_and_inputs_get_one_line_and_exit_2() {
    let test = "sample_data/test.parquet";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.parquet");
    let out = out.to_str().unwrap();
    let model = |m: &str| format!("tests/fixtures/models/{m}.onnx");
    for (m, needle) in [
        ("unsupported", "node 'einsum' (Einsum, opset 17)"),
        ("cycle", "cycle"),
        ("missing_initializer", "input 'w'"),
        ("bad_weight", "initializer 'w'"),
        ("truncated", "not an ONNX model"),
    ] {
        fails_cleanly(&["predict", &model(m), "--input", test, "-o", out], needle);
    }
    fails_cleanly(
        &[
            "predict",
            "sample_data/model.onnx",
            "--input",
            test,
            "-o",
            out,
        ],
        "takes 30 features, the table gives 31",
    );
    fails_cleanly(
        &[
            "predict",
            "sample_data/model.onnx",
            "--input",
            test,
            "--exclude",
            "target",
            "--device",
            "cuda",
            "-o",
            out,
        ],
        "built without CUDA support; rebuild with --features cuda",
    );
    fails_cleanly(
        &[
            "predict",
            "sample_data/model.onnx",
            "--input",
            test,
            "--columns",
            "nope",
            "-o",
            out,
        ],
        "no column 'nope'",
    );
    fails_cleanly(
        &["inspect", "sample_data/train.parquet"],
        "not an ONNX model",
    );
    assert!(
        !std::path::Path::new(out).exists(),
        "a failed run left an output file"
    );
}

#[test]
fn nan_inputs_flow_through_and_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, "a,b,c,d\n1.0,2.0,3.0,4.0\n,2.0,NaN,-4.0\n").unwrap();
    let out = dir.path().join("y.parquet");
    mlctl()
        .args([
            "predict",
            "tests/fixtures/models/relu4.onnx",
            "--input",
            csv.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("passed to the model as NaN"));
    let table = Table::open(&out).unwrap();
    let names: Vec<String> = (0..4).map(|k| format!("y_{k}")).collect();
    let (cols, _) = table.read_numbers(&names, 0, 10).unwrap();
    assert_eq!(cols[3], vec![4.0, 0.0]);
    assert!(cols[2][1].is_nan());
}

#[test]
fn the_readme_lists_exactly_the_supported_operators() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let start = readme
        .find("<!-- operators:start")
        .expect("operators block in README");
    let end = readme.find("<!-- operators:end -->").unwrap();
    let listed = &readme[start..end];
    let line = |domain: &str| -> String {
        let ops: Vec<&str> = mlctl::runtime::ops::SUPPORTED
            .iter()
            .filter(|(d, _)| *d == domain)
            .map(|(_, o)| *o)
            .collect();
        let name = if domain.is_empty() { "ai.onnx" } else { domain };
        format!("- {name} ({}): {}", ops.len(), ops.join(", "))
    };
    for domain in ["", "ai.onnx.ml"] {
        let expected = line(domain);
        assert!(
            listed.contains(&expected),
            "README's operator list is stale; it should read:\n{expected}"
        );
    }
}

#[test]
fn weights_in_an_external_data_file_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    for (model, out) in [
        ("sample_data/model.onnx", &a),
        ("tests/fixtures/models/mlp_external/model.onnx", &b),
    ] {
        mlctl()
            .args([
                "predict",
                model,
                "--input",
                "sample_data/test.parquet",
                "--exclude",
                "target",
                "-o",
            ])
            .arg(out)
            .assert()
            .success();
    }
    let names = vec!["output_probability_1".to_string()];
    let read = |p: &std::path::Path| {
        Table::open(p)
            .unwrap()
            .read_numbers(&names, 0, 1000)
            .unwrap()
            .0
    };
    assert_eq!(read(&a), read(&b));
}

#[test]
fn tensor_models_read_and_write_npz() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.npz");
    mlctl()
        .args([
            "predict",
            "tests/fixtures/models/relu4.onnx",
            "--input",
            "tests/fixtures/models/relu4_input.npz",
            "-o",
        ])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote 1 arrays"));
    let arrays = candle_core::Tensor::read_npz(&out).unwrap();
    assert_eq!(arrays[0].0, "y");
    let y: Vec<Vec<f32>> = arrays[0].1.to_vec2().unwrap();
    assert_eq!(y, vec![vec![0.0, 0.5, 2.0, 0.0], vec![1.0, 0.0, 0.0, 4.0]]);
    fails_cleanly(
        &[
            "predict",
            "tests/fixtures/models/relu4.onnx",
            "--input",
            "tests/fixtures/models/relu4_input.npz",
            "-o",
            "y.parquet",
        ],
        "the output must be a .npz file too",
    );
}

#[test]
fn list_columns_feed_named_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.parquet");
    mlctl()
        .args([
            "predict",
            "tests/fixtures/models/relu4.onnx",
            "--input",
            "tests/fixtures/models/relu4_lists.parquet",
        ])
        .args(["--keep", "id", "-o"])
        .arg(&out)
        .assert()
        .success();
    let table = Table::open(&out).unwrap();
    // A declared width of 4 becomes four columns.
    let names: Vec<String> = (0..4).map(|k| format!("y_{k}")).collect();
    let (cols, _) = table.read_numbers(&names, 0, 10).unwrap();
    assert_eq!(cols[0], vec![0.0, 1.0]);
    assert_eq!(cols[3], vec![0.0, 4.0]);
    assert_eq!(
        table.read_text("id", 0, 10).unwrap(),
        vec![Some("a".to_string()), Some("b".to_string())]
    );
}
