//! `mlctl quantize` end to end on the sample MLP and on small models
//! (tests/fixtures/models): the output loads in ONNX Runtime and agrees with
//! mlctl's run of the same file (tests/fixtures/quantize_ort.json, made by
//! tests/fixtures/make_quantize_fixtures.py), the evaluation and its gate,
//! and bad input.

mod common;

use common::{fails_cleanly, mlctl};
use serde_json::Value;

use mlctl::data::Table;

fn json(args: &[&str]) -> (i32, Value) {
    common::json_report(args)
}

fn section<'a>(r: &'a Value, key: &str) -> &'a Vec<Value> {
    common::section_rows(r, key)
}

#[test]
fn the_sample_mlp_keeps_its_accuracy_and_agrees_with_onnx_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.int8.onnx");
    let out_s = out.to_str().unwrap();
    let (code, r) = json(&[
        "quantize",
        "sample_data/model.onnx",
        "-o",
        out_s,
        "--eval",
        "sample_data/test.parquet",
        "--label",
        "target",
        "--max-accuracy-drop",
        "0.005",
    ]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["summary"]["nodes_quantized"], 3);
    let accuracy = &section(&r, "accuracy")[0];
    let (float, int8) = (
        accuracy["float"].as_f64().unwrap(),
        accuracy["int8"].as_f64().unwrap(),
    );
    assert!((float - 0.9649).abs() < 1e-3, "{accuracy}");
    assert!(float - int8 <= 0.005, "{accuracy}");
    for node in section(&r, "nodes") {
        assert_eq!(node["quantized"], true, "{node}");
        assert!(node["weight_error"].as_f64().unwrap() < 0.01, "{node}");
    }

    agrees_with_onnx_runtime(&out, "default");
}

/// mlctl's run of a model it wrote matches ONNX Runtime's run of the same
/// file (the quantizer is deterministic, so the file is the one
/// tests/fixtures/make_quantize_fixtures.py gave ONNX Runtime).
fn agrees_with_onnx_runtime(model: &std::path::Path, variant: &str) {
    let fixtures: Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/quantize_ort.json").unwrap())
            .unwrap();
    let fixture = &fixtures[variant];
    assert_eq!(
        std::fs::metadata(model).unwrap().len(),
        fixture["bytes"].as_u64().unwrap(),
        "{variant}"
    );
    let dir = tempfile::tempdir().unwrap();
    let predictions = dir.path().join("pred.parquet");
    mlctl()
        .args([
            "predict",
            model.to_str().unwrap(),
            "--input",
            "sample_data/test.parquet",
            "--exclude",
            "target",
            "-o",
        ])
        .arg(&predictions)
        .assert()
        .success();
    let table = Table::open(&predictions).unwrap();
    let names = [
        "output_label".to_string(),
        "output_probability_1".to_string(),
    ];
    let (cols, _) = table.read_numbers(&names, 0, 1000).unwrap();
    let mut worst: f64 = 0.0;
    for r in 0..171 {
        assert_eq!(
            cols[0][r],
            fixture["labels"][r].as_f64().unwrap(),
            "{variant} row {r}"
        );
        worst = worst.max((cols[1][r] - fixture["probability_1"][r].as_f64().unwrap()).abs());
    }
    assert!(
        worst < 1e-3,
        "{variant}: max difference from ONNX Runtime {worst}"
    );
}

#[test]
fn per_tensor_activations_lose_a_row_and_the_gate_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.int8.onnx");
    let (code, r) = json(&[
        "quantize",
        "sample_data/model.onnx",
        "-o",
        out.to_str().unwrap(),
        "--activations",
        "per-tensor",
        "--eval",
        "sample_data/test.parquet",
        "--label",
        "target",
        "--max-accuracy-drop",
        "0.005",
    ]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["gate"]["outcome"], "fail");
    assert!(
        r["gate"]["message"]
            .as_str()
            .unwrap()
            .contains("accuracy drop"),
        "{r}"
    );
    // The model is written all the same: the gate judges it.
    assert!(out.exists());
}

#[test]
fn excluded_nodes_stay_in_float_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.int8.onnx");
    let (code, r) = json(&[
        "quantize",
        "sample_data/model.onnx",
        "-o",
        out.to_str().unwrap(),
        "--exclude",
        "MatMul2",
    ]);
    assert_eq!(code, 0);
    assert_eq!(r["summary"]["nodes_quantized"], 2);
    let skipped: Vec<&Value> = section(&r, "nodes")
        .iter()
        .filter(|n| n["quantized"] == false)
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["node"], "MatMul2");
    assert!(skipped[0]["reason"].as_str().unwrap().contains("--exclude"));
}

#[test]
fn a_model_without_weights_to_quantize_says_so_and_passes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("relu.int8.onnx");
    let (code, r) = json(&[
        "quantize",
        "tests/fixtures/models/relu4.onnx",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(r["summary"]["nodes_quantized"], 0);
    assert!(
        r["gate"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing to quantize"),
        "{r}"
    );
    assert!(out.exists());
}

#[test]
fn an_already_quantized_model_is_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("again.onnx");
    let (code, r) = json(&[
        "quantize",
        "tests/fixtures/real_cases/mlp_int8_labels/model.onnx",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["summary"]["nodes_quantized"], 0);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.onnx");
    let out_s = out.to_str().unwrap();
    fails_cleanly(
        &[
            "quantize",
            "sample_data/model.onnx",
            "-o",
            "sample_data/model.onnx",
        ],
        "overwrite",
    );
    fails_cleanly(
        &[
            "quantize",
            "tests/fixtures/models/truncated.onnx",
            "-o",
            out_s,
        ],
        "truncated.onnx",
    );
    fails_cleanly(
        &["quantize", "sample_data/README.md", "-o", out_s],
        "not an ONNX model",
    );
    fails_cleanly(
        &[
            "quantize",
            "sample_data/model.onnx",
            "-o",
            out_s,
            "--max-accuracy-drop",
            "0.01",
        ],
        "needs --eval",
    );
    fails_cleanly(
        &[
            "quantize",
            "sample_data/model.onnx",
            "-o",
            out_s,
            "--eval",
            "sample_data/test.parquet",
            "--label",
            "nope",
        ],
        "no label column 'nope'",
    );
    assert!(
        !out.exists(),
        "no output is written on bad input... except when the model itself was fine"
    );
}

#[test]
fn auto_puts_the_most_sensitive_layer_back_until_the_budget_holds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.int8.onnx");
    // Per-tensor activations lose a test row; --auto must win it back.
    let (code, r) = json(&[
        "quantize",
        "sample_data/model.onnx",
        "-o",
        out.to_str().unwrap(),
        "--activations",
        "per-tensor",
        "--eval",
        "sample_data/test.parquet",
        "--label",
        "target",
        "--max-accuracy-drop",
        "0.005",
        "--auto",
    ]);
    assert_eq!(code, 0, "{r}");
    let kept = r["summary"]["auto_kept_float"].as_u64().unwrap();
    assert!((1..3).contains(&kept), "{r}");
    assert_eq!(r["summary"]["nodes_quantized"].as_u64().unwrap(), 3 - kept);
    let sensitivity = section(&r, "sensitivity");
    assert_eq!(sensitivity.len(), 3);
    // Sorted by sensitivity; the ones put back are the first ones.
    assert_eq!(sensitivity[0]["kept_float"], true);
    let back: Vec<&Value> = section(&r, "nodes")
        .iter()
        .filter(|n| n["quantized"] == false)
        .collect();
    assert!(back[0]["reason"].as_str().unwrap().contains("--auto"));
    let accuracy = &section(&r, "accuracy")[0];
    assert!(accuracy["float"].as_f64().unwrap() - accuracy["int8"].as_f64().unwrap() <= 0.005);
    fails_cleanly(
        &[
            "quantize",
            "sample_data/model.onnx",
            "-o",
            out.to_str().unwrap(),
            "--auto",
        ],
        "--auto needs",
    );
}

#[test]
fn static_quantization_calibrates_on_rows_and_keeps_the_mlp_accurate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.static.onnx");
    let (code, r) = json(&[
        "quantize",
        "sample_data/model.onnx",
        "-o",
        out.to_str().unwrap(),
        "--mode",
        "static",
        "--calibration",
        "sample_data/train.parquet",
        "--calibrate",
        "minmax",
        "--eval-exclude",
        "target",
        "--eval",
        "sample_data/test.parquet",
        "--label",
        "target",
        "--max-accuracy-drop",
        "0.005",
    ]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["settings"]["mode"], "static");
    assert_eq!(r["settings"]["calibration_method"], "minmax");
    assert_eq!(r["summary"]["nodes_quantized"], 3);
    agrees_with_onnx_runtime(&out, "static_minmax");
    // Fixed scales: QuantizeLinear, no run-time range.
    let bytes = std::fs::read(&out).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("QuantizeLinear") && !text.contains("DynamicQuantizeLinear"));
    for method in ["percentile", "entropy"] {
        let (code, r) = json(&[
            "quantize",
            "sample_data/model.onnx",
            "-o",
            out.to_str().unwrap(),
            "--mode",
            "static",
            "--calibration",
            "sample_data/train.parquet",
            "--calibrate",
            method,
            "--eval-exclude",
            "target",
        ]);
        assert_eq!(code, 0, "{method}: {r}");
        assert_eq!(r["summary"]["nodes_quantized"], 3, "{method}");
    }
    fails_cleanly(
        &[
            "quantize",
            "sample_data/model.onnx",
            "-o",
            out.to_str().unwrap(),
            "--mode",
            "static",
        ],
        "needs --calibration",
    );
    fails_cleanly(
        &[
            "quantize",
            "sample_data/model.onnx",
            "-o",
            out.to_str().unwrap(),
            "--calibration",
            "sample_data/train.parquet",
        ],
        "--mode static",
    );
}

#[test]
fn gguf_holds_the_weights_block_quantized_and_transposed() {
    use candle_core::quantized::{gguf_file, GgmlDType};
    use candle_core::Device;
    use prost::Message;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.int8.onnx");
    let gguf = dir.path().join("model.gguf");
    let (code, r) = json(&[
        "quantize",
        "sample_data/model.onnx",
        "-o",
        out.to_str().unwrap(),
        "--gguf",
        gguf.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{r}");
    // W2 is 32 x 16: transposed to 16 x 32, its rows are one Q8_0 block.
    // W1 (inner 30) and W3 (inner 16) do not fit a block: F16.
    assert_eq!(r["summary"]["gguf_quantized"], 1);
    assert_eq!(
        r["settings"]["gguf_f16_fallback"],
        "coefficient,coefficient2"
    );
    let mut file = std::fs::File::open(&gguf).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    assert_eq!(
        content.tensor_infos.len(),
        r["summary"]["gguf_tensors"].as_u64().unwrap() as usize
    );
    let q = content
        .tensor(&mut file, "coefficient1", &Device::Cpu)
        .unwrap();
    assert_eq!(q.dtype(), GgmlDType::Q8_0);
    assert_eq!(q.shape().dims(), &[16, 32]);
    let back: Vec<Vec<f32>> = q.dequantize(&Device::Cpu).unwrap().to_vec2().unwrap();
    // The original weight, 32 x 16.
    let proto = candle_onnx::onnx::ModelProto::decode(
        std::fs::read("sample_data/model.onnx").unwrap().as_slice(),
    )
    .unwrap();
    let w = proto
        .graph
        .unwrap()
        .initializer
        .into_iter()
        .find(|t| t.name == "coefficient1")
        .unwrap();
    let w: Vec<Vec<f32>> = mlctl::runtime::tensor::from_proto(&w, &Device::Cpu)
        .unwrap()
        .to_vec2()
        .unwrap();
    for (j, row) in back.iter().enumerate() {
        let peak = (0..32).map(|p| w[p][j].abs()).fold(0f32, f32::max);
        for (p, v) in row.iter().enumerate() {
            // Q8_0: one scale per 32 values (peak / 127, stored as f16):
            // |error| <= scale / 2 plus the f16 rounding of the scale.
            assert!(
                (v - w[p][j]).abs() <= peak / 254.0 + peak * 1e-3,
                "[{j},{p}]: {v} vs {}",
                w[p][j]
            );
        }
    }
    let scalar = content.tensor(&mut file, "unity", &Device::Cpu).unwrap();
    assert_eq!(scalar.shape().dims(), &[1]);
}

#[test]
fn a_model_with_external_data_is_written_as_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("external.int8.onnx");
    let (code, r) = json(&[
        "quantize",
        "tests/fixtures/models/mlp_external/model.onnx",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{r}");
    assert!(r["summary"]["nodes_quantized"].as_u64().unwrap() > 0, "{r}");
    // Nothing else was written next to it, and it loads on its own.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    mlctl::runtime::Model::load(&out, &candle_core::Device::Cpu).unwrap();
}
