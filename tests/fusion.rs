//! The compiler's fusions change how often memory is read, never the
//! arithmetic: a model run fused and unfused gives the same bits. Steps
//! kept from one run to the next give what a fresh model computes.
//! (tests/fixtures/make_fusion_model.py makes the models.)

use candle_core::{Device, Tensor};
use mlctl::runtime::{Model, Value};

fn run(model: &Model, feeds: &[(String, Tensor)]) -> Vec<f32> {
    let outputs = model.run(feeds.to_vec()).unwrap();
    let Value::Tensor(y) = &outputs[0].1 else {
        panic!("not a tensor")
    };
    y.flatten_all().unwrap().to_vec1().unwrap()
}

/// Fused and unfused values, bit for bit (`what` names the case).
fn same_bits(fused: &[f32], plain: &[f32], what: &str) {
    assert_eq!(fused.len(), plain.len(), "{what}");
    for (i, (x, y)) in fused.iter().zip(plain).enumerate() {
        assert_eq!(
            x.to_bits(),
            y.to_bits(),
            "{what} [{i}]: fused {x}, unfused {y}"
        );
    }
}

/// The model loaded with its fusions and without, the fused one running
/// every step of `steps`.
fn fused_and_plain(path: &std::path::Path, steps: &[&str]) -> (Model, Model) {
    let fused = Model::load_with(path, &Device::Cpu, true).unwrap();
    let plain = Model::load_with(path, &Device::Cpu, false).unwrap();
    let fused_steps = fused.fused_steps();
    for expected in steps {
        assert!(
            fused_steps.contains(expected),
            "{expected} not in {fused_steps:?}"
        );
    }
    assert!(plain.fused_steps().is_empty());
    (fused, plain)
}

fn inputs(batch: usize, seq: usize) -> Vec<(String, Tensor)> {
    // A period of 4093 values (a prime), so that rows read from the wrong
    // offset hold other values.
    let x: Vec<f32> = (0..batch * seq * 16)
        .map(|i| ((i as u64 * 2654435761) % 4093) as f32 / 1023.0 - 2.0)
        .collect();
    // The second sequence's last positions are padding.
    let mask: Vec<f32> = (0..batch * seq)
        .map(|i| {
            if i >= seq && i % seq >= seq - 2 {
                -10000.0
            } else {
                0.0
            }
        })
        .collect();
    vec![
        (
            "x".into(),
            Tensor::from_vec(x, (batch, seq, 16), &Device::Cpu).unwrap(),
        ),
        (
            "mask".into(),
            Tensor::from_vec(mask, (batch, 1, seq), &Device::Cpu).unwrap(),
        ),
    ]
}

#[test]
fn fused_and_unfused_runs_give_the_same_bits() {
    let path = std::path::Path::new("tests/fixtures/models/fusion_block.onnx");
    let (fused, plain) = fused_and_plain(
        path,
        &[
            "MatMul+Add+Gelu (fused)",
            "MatMul+Add (fused)",
            "attention (fused)",
            "MatMulInteger+Cast+Mul (fused)",
            "Add+LayerNormalization (fused)",
        ],
    );
    // 4 x 600 x 16 values are enough for the row-wise passes to split
    // their rows among threads (three of them, whatever the machine has).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    for (batch, seq) in [(1, 1), (2, 5), (3, 37), (4, 600)] {
        let feeds = inputs(batch, seq);
        let (a, b) = pool.install(|| (run(&fused, &feeds), run(&plain, &feeds)));
        assert_eq!(a.len(), batch * seq * 16);
        same_bits(&a, &b, &format!("{batch}x{seq}"));
    }
}

#[test]
fn a_mask_that_does_not_fit_the_scores_is_an_error_naming_the_node() {
    let path = std::path::Path::new("tests/fixtures/models/fusion_block.onnx");
    let fused = Model::load(path, &Device::Cpu).unwrap();
    let mut feeds = inputs(2, 5);
    feeds[1].1 = Tensor::zeros((2, 1, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = fused.run(feeds).unwrap_err();
    assert!(err.contains("attention") && err.contains("mask"), "{err}");
}

#[test]
fn a_model_quantized_per_row_runs_the_same_fused_and_unfused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("block.int8.onnx");
    assert_cmd::Command::cargo_bin("mlctl")
        .unwrap()
        .args([
            "-q",
            "quantize",
            "tests/fixtures/models/fusion_block.onnx",
            "-o",
        ])
        .arg(&out)
        .assert()
        .success();
    let (fused, plain) = fused_and_plain(
        &out,
        &["per-row quantize (fused)", "MatMulInteger+Cast+Mul (fused)"],
    );
    for (batch, seq) in [(1, 3), (2, 5)] {
        let feeds = inputs(batch, seq);
        let (a, b) = (run(&fused, &feeds), run(&plain, &feeds));
        same_bits(&a, &b, &format!("{batch}x{seq}"));
    }
}

#[test]
fn a_float64_product_is_not_fused_and_runs() {
    let path = std::path::Path::new("tests/fixtures/models/matmul_add_f64.onnx");
    let model = Model::load(path, &Device::Cpu).unwrap();
    assert!(model.fused_steps().is_empty(), "{:?}", model.fused_steps());
    let x = Tensor::from_vec(vec![1f64, 2.0, 3.0], (1, 3), &Device::Cpu).unwrap();
    let out = model.run(vec![("x".into(), x)]).unwrap();
    let Value::Tensor(y) = &out[0].1 else {
        panic!()
    };
    assert_eq!(y.dims(), &[1, 2]);
    assert_eq!(y.dtype(), candle_core::DType::F64);
}

/// Weights are read from the model file in place and kept once, packed:
/// the results must not notice (a Gather of an int8 table fused with its
/// DequantizeLinear; a packed weight also multiplied by a vector; a weight
/// that a Mul reads as values).
#[test]
fn weights_kept_packed_or_as_bytes_give_the_reference_results() {
    let dir = std::path::Path::new("tests/fixtures/models");
    let data = Tensor::read_npz(dir.join("embedding_block.npz")).unwrap();
    let get = |name: &str| {
        data.iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
            .unwrap()
    };
    let feeds = vec![("ids".to_string(), get("ids")), ("v".to_string(), get("v"))];
    let (fused, plain) = fused_and_plain(
        &dir.join("embedding_block.onnx"),
        &["Gather+DequantizeLinear (fused)"],
    );
    for model in [&fused, &plain] {
        let outputs = model.run(feeds.clone()).unwrap();
        for (name, value) in outputs {
            let Value::Tensor(got) = value else { panic!() };
            let expected = get(&format!("expected_{name}"));
            assert_eq!(got.dims(), expected.dims(), "{name}");
            let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
            let expected: Vec<f32> = expected.flatten_all().unwrap().to_vec1().unwrap();
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
                    "{name}[{i}]: {g} vs {e}"
                );
            }
        }
    }
    // An index past the table is an error naming the node, not a panic.
    let mut bad = feeds.clone();
    bad[0].1 = Tensor::from_vec(vec![100i64], (1, 1), &Device::Cpu).unwrap();
    for model in [&fused, &plain] {
        let err = model.run(bad.clone()).unwrap_err();
        assert!(err.contains("Gather") || err.contains("index"), "{err}");
    }
}

/// A table dequantized per column fuses with its Gather and gives the same
/// bits as the two nodes, and as ONNX's formula (q - zero point) * scale.
#[test]
fn a_table_dequantized_per_column_fuses_and_keeps_its_values() {
    let path = std::path::Path::new("tests/fixtures/models/gather_per_column.onnx");
    let (fused, plain) = fused_and_plain(path, &["Gather+DequantizeLinear (fused)"]);
    let ids = Tensor::from_vec(vec![0i64, 49, -1, 7, 7, 23], (2, 3), &Device::Cpu).unwrap();
    let feeds = vec![("ids".to_string(), ids)];
    let (a, b) = (run(&fused, &feeds), run(&plain, &feeds));
    assert_eq!(a.len(), 2 * 3 * 6);
    same_bits(&a, &b, "2x3 ids");
}

/// scikit-learn's MLP export: MatMul, a [1, n] bias and Relu fuse into one
/// product, with the same bits as the three nodes (NaN inputs included).
#[test]
fn a_scikit_learn_mlp_fuses_its_bias_and_relu_and_keeps_its_bits() {
    let path = std::path::Path::new("sample_data/model.onnx");
    let (fused, plain) = fused_and_plain(path, &["MatMul+Add+Relu (fused)"]);
    let steps = fused.fused_steps();
    assert!(
        steps
            .iter()
            .filter(|s| **s == "MatMul+Add+Relu (fused)")
            .count()
            == 2,
        "{steps:?}"
    );
    let mut x: Vec<f32> = (0..37 * 30)
        .map(|i| ((i * 7919) % 1000) as f32 / 10.0 - 20.0)
        .collect();
    x[5] = f32::NAN;
    let feeds = vec![(
        "X".to_string(),
        Tensor::from_vec(x, (37, 30), &Device::Cpu).unwrap(),
    )];
    let bits = |model: &Model| -> Vec<u32> {
        model
            .run(feeds.clone())
            .unwrap()
            .into_iter()
            .flat_map(|(_, v)| {
                let t = match v {
                    Value::Tensor(t) => t,
                    Value::ClassMap { probabilities, .. } => probabilities,
                };
                let t = t.to_dtype(candle_core::DType::F32).unwrap();
                let values: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
                values.into_iter().map(f32::to_bits).collect::<Vec<_>>()
            })
            .collect()
    };
    assert_eq!(bits(&fused), bits(&plain));
}

/// Feeds of shape_arithmetic.onnx at batch x seq x 8, and what it must
/// give: Reshape(x, [batch, -1]) * 6 + the element count.
fn shape_arithmetic_case(batch: usize, seq: usize) -> (Vec<(String, Tensor)>, Vec<f32>) {
    let x: Vec<f32> = (0..batch * seq * 8).map(|i| i as f32 * 0.5 - 3.0).collect();
    let expected = x.iter().map(|v| v * 6.0 + x.len() as f32).collect();
    let feeds = vec![(
        "x".to_string(),
        Tensor::from_vec(x, (batch, seq, 8), &Device::Cpu).unwrap(),
    )];
    (feeds, expected)
}

/// The shape arithmetic of an exported model is kept between runs and
/// redone when the input's dims change: runs at alternating shapes give what
/// a freshly loaded model gives, and a second run at the same dims runs none
/// of those steps.
#[test]
fn shape_arithmetic_is_kept_between_runs_and_redone_for_new_dims() {
    let path = std::path::Path::new("tests/fixtures/models/shape_arithmetic.onnx");
    let model = Model::load(path, &Device::Cpu).unwrap();
    for (batch, seq) in [(1, 3), (2, 5), (2, 5), (1, 3), (3, 1), (2, 5)] {
        let (feeds, expected) = shape_arithmetic_case(batch, seq);
        let outputs = model.run(feeds.clone()).unwrap();
        let Value::Tensor(y) = &outputs[0].1 else {
            panic!("not a tensor")
        };
        assert_eq!(y.dims(), &[batch, seq * 8], "{batch}x{seq}");
        let fresh = Model::load(path, &Device::Cpu).unwrap();
        same_bits(&run(&model, &feeds), &run(&fresh, &feeds), "kept vs fresh");
        same_bits(&run(&model, &feeds), &expected, "kept vs expected");
        // Same dims again: only the steps that read x's values run.
        let mut profile = std::collections::HashMap::new();
        model.run_profiled(feeds, Some(&mut profile)).unwrap();
        let mut ran: Vec<&str> = profile.keys().map(String::as_str).collect();
        ran.sort();
        assert_eq!(ran, ["Add", "Mul", "Reshape"], "{batch}x{seq}");
    }
}

/// Runs of one model from several threads at once, at different shapes:
/// each gives its own shape's values (a run that finds the kept steps in
/// use computes them itself).
#[test]
fn concurrent_runs_at_different_shapes_each_get_their_own_values() {
    let path = std::path::Path::new("tests/fixtures/models/shape_arithmetic.onnx");
    let model = Model::load(path, &Device::Cpu).unwrap();
    std::thread::scope(|scope| {
        for thread in 0..4usize {
            let model = &model;
            scope.spawn(move || {
                for round in 0..50 {
                    let (batch, seq) = (1 + (thread + round) % 3, 1 + thread);
                    let (feeds, expected) = shape_arithmetic_case(batch, seq);
                    same_bits(&run(model, &feeds), &expected, "concurrent run");
                }
            });
        }
    });
}
