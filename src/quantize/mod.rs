//! `mlctl quantize`: int8 weights, activations quantized at run time, in the
//! standard ONNX operators ONNX Runtime's own dynamic quantization writes
//! (so ONNX Runtime and mlctl both run the result with integer kernels);
//! the accuracy of the result measured, not assumed.

pub mod calibrate;
pub mod eval;
pub mod gguf;
pub mod rewrite;

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use prost::Message;

use crate::error::{Error, Result};
use crate::report::{Gate, Outcome, Report, Section};
use crate::runtime::Model;

#[derive(Debug, Clone)]
pub struct Options {
    pub model: PathBuf,
    pub output: PathBuf,
    pub per_tensor: bool,
    pub reduce_range: bool,
    /// Activations scaled per row (int8) rather than per tensor (uint8).
    pub per_row: bool,
    /// Also write the weights as candle's GGUF, in this block type.
    pub gguf: Option<(PathBuf, candle_core::quantized::GgmlDType)>,
    /// Static quantization: calibration data and the range method.
    pub calibration: Option<(PathBuf, calibrate::Method)>,
    /// Node names or op types to leave in float.
    pub exclude: Vec<String>,
    /// Rows (parquet/CSV) or arrays (.npz) to compare both models on.
    pub eval: Option<PathBuf>,
    pub label: Option<String>,
    /// Columns of the eval table that are not features.
    pub eval_exclude: Vec<String>,
    /// Absolute accuracy drop allowed (with --label), or top-1 disagreement
    /// allowed (without): exit 1 beyond it.
    pub max_accuracy_drop: Option<f64>,
    /// When the budget is exceeded, put the most sensitive layers back to
    /// float one at a time until it holds.
    pub auto: bool,
    pub batch_size: usize,
}

/// A quantized model: the rewrite, its bytes, and the model compiled.
struct Built {
    quantized: rewrite::Quantized,
    bytes: Vec<u8>,
    model: Model,
}

fn build(
    proto: &candle_onnx::onnx::ModelProto,
    folder: Option<&Path>,
    settings: &rewrite::Settings,
    source: &Path,
) -> Result<Built> {
    let quantized =
        rewrite::quantize(proto.clone(), folder, settings).map_err(|e| Error::input(source, e))?;
    let bytes = quantized.model.encode_to_vec();
    // The result must load and compile here before it is written.
    let model = Model::from_bytes(&bytes, &Device::Cpu).map_err(|e| {
        Error::input(
            source,
            format!("the quantized model does not load: {}", e.0.join("; ")),
        )
    })?;
    Ok(Built {
        quantized,
        bytes,
        model,
    })
}

/// What the budget judges: the accuracy drop with labels, else the worst
/// top-1 disagreement of any output.
fn loss(e: &eval::Evaluation) -> (f64, &'static str) {
    match e.accuracy {
        Some((a, b)) => (a - b, "accuracy drop"),
        None => (
            1.0 - e.outputs.iter().map(|o| o.agreement).fold(1.0, f64::min),
            "top-1 disagreement",
        ),
    }
}

/// Bytes of a model on disk, with the external data files it names.
fn model_bytes(path: &Path, proto: &candle_onnx::onnx::ModelProto) -> u64 {
    let mut total = std::fs::metadata(path).map_or(0, |m| m.len());
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut seen = std::collections::HashSet::new();
    for t in proto.graph.iter().flat_map(|g| g.initializer.iter()) {
        for e in t.external_data.iter().filter(|e| e.key == "location") {
            if seen.insert(e.value.clone()) {
                total += std::fs::metadata(folder.join(&e.value)).map_or(0, |m| m.len());
            }
        }
    }
    total
}

pub fn run(opts: &Options) -> Result<Report> {
    let same = |a: &Path, b: &Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    };
    if same(&opts.output, &opts.model) {
        return Err(Error::usage(
            "refusing to overwrite the input model: choose another -o",
        ));
    }
    if let Some(d) = opts.max_accuracy_drop {
        if !(0.0..=1.0).contains(&d) {
            return Err(Error::usage("--max-accuracy-drop must be between 0 and 1"));
        }
        if opts.eval.is_none() {
            return Err(Error::usage("--max-accuracy-drop needs --eval DATA"));
        }
    }
    if let Some((g, _)) = &opts.gguf {
        if same(g, &opts.model) || same(g, &opts.output) {
            return Err(Error::usage("--gguf must name a file of its own"));
        }
    }
    if opts.auto && (opts.eval.is_none() || opts.max_accuracy_drop.is_none()) {
        return Err(Error::usage(
            "--auto needs --eval DATA and --max-accuracy-drop X",
        ));
    }
    if opts.label.is_some() && opts.eval.is_none() {
        return Err(Error::usage("--label needs --eval DATA"));
    }
    if opts.batch_size == 0 {
        return Err(Error::usage("--batch-size must be at least 1"));
    }
    let bytes = std::fs::read(&opts.model).map_err(|e| Error::input(&opts.model, e))?;
    let proto = candle_onnx::onnx::ModelProto::decode(bytes.as_slice())
        .map_err(|e| Error::input(&opts.model, format!("not an ONNX model (protobuf: {e})")))?;
    drop(bytes);
    let size_before = model_bytes(&opts.model, &proto);
    let folder = opts.model.parent().map(|p| {
        if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        }
    });
    let settings = rewrite::Settings {
        per_tensor: opts.per_tensor,
        reduce_range: opts.reduce_range,
        exclude: opts.exclude.clone(),
        exclude_nodes: Vec::new(),
        per_row: opts.per_row,
        static_ranges: None,
    };
    let started = Instant::now();
    let mut settings = settings;
    if let Some((data, method)) = &opts.calibration {
        // The float model, unfused, shows every activation a MatMul or Gemm
        // reads; their ranges over the calibration data fix the scales.
        let float = Model::load_with(&opts.model, &Device::Cpu, false)
            .map_err(|e| Error::input(&opts.model, e.0.join("; ")))?;
        let watched: Vec<String> = proto
            .graph
            .iter()
            .flat_map(|g| g.node.iter())
            .filter(|n| n.domain.is_empty() && matches!(n.op_type.as_str(), "MatMul" | "Gemm"))
            .filter_map(|n| n.input.first().cloned())
            .collect();
        let batches = calibrate::batches(
            &float,
            data,
            &opts.model,
            &opts.eval_exclude,
            opts.batch_size,
        )?;
        let ranges = calibrate::ranges(&float, &batches, &watched, *method)
            .map_err(|e| Error::input(data, e))?;
        settings.static_ranges = Some(ranges);
    }
    let settings = settings;
    let reference = match &opts.eval {
        Some(_) => Some(
            Model::load(&opts.model, &Device::Cpu)
                .map_err(|e| Error::input(&opts.model, e.0.join("; ")))?,
        ),
        None => None,
    };
    let evaluate = |model: &Model| -> Result<Option<eval::Evaluation>> {
        match (&opts.eval, &reference) {
            (Some(data), Some(reference)) => eval::evaluate(
                reference,
                model,
                data,
                &opts.model,
                opts.label.as_deref(),
                &opts.eval_exclude,
                opts.batch_size,
            )
            .map(Some),
            _ => Ok(None),
        }
    };
    let mut built = build(&proto, folder, &settings, &opts.model)?;
    let mut evaluation = evaluate(&built.model)?;
    // --auto: each quantized layer alone, then the worst back to float one
    // at a time until the budget holds.
    let mut sensitivity: Vec<(String, f64, f64, bool)> = Vec::new();
    if let (true, Some(budget), Some(e)) = (opts.auto, opts.max_accuracy_drop, &evaluation) {
        if loss(e).0 > budget {
            let layers: Vec<String> = built
                .quantized
                .nodes
                .iter()
                .filter(|n| n.skipped.is_none())
                .map(|n| n.node.clone())
                .collect();
            for layer in &layers {
                let mut alone = settings.clone();
                alone
                    .exclude
                    .extend(layers.iter().filter(|l| *l != layer).cloned());
                let b = build(&proto, folder, &alone, &opts.model)?;
                // The loss, and to break ties the largest mean difference
                // of any output from the float model.
                let (l, d) = evaluate(&b.model)?.map_or((0.0, 0.0), |e| {
                    let d = e
                        .outputs
                        .iter()
                        .map(|o| o.mean_abs_diff)
                        .fold(0.0, f64::max);
                    (loss(&e).0, d)
                });
                sensitivity.push((layer.clone(), l, d, false));
            }
            sensitivity.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.2.total_cmp(&a.2)));
            let mut back = settings.clone();
            for entry in sensitivity.iter_mut() {
                back.exclude_nodes.push(entry.0.clone());
                entry.3 = true;
                built = build(&proto, folder, &back, &opts.model)?;
                evaluation = evaluate(&built.model)?;
                if evaluation.as_ref().is_some_and(|e| loss(e).0 <= budget) {
                    break;
                }
            }
        }
    }
    let (quantized, out_bytes) = (built.quantized, built.bytes);
    let quantize_seconds = started.elapsed().as_secs_f64();
    let size_after = out_bytes.len() as u64;
    let done: Vec<&rewrite::NodeOutcome> = quantized
        .nodes
        .iter()
        .filter(|n| n.skipped.is_none())
        .collect();

    let mut report = Report::new(
        "quantize",
        format!("Dynamic int8 quantization of {}", opts.model.display()),
    );
    report.figure("size_before_bytes", "Size before (bytes)", size_before);
    report.figure("size_after_bytes", "Size after (bytes)", size_after);
    report.figure(
        "size_ratio",
        "Size ratio (before / after)",
        size_before as f64 / size_after.max(1) as f64,
    );
    report.figure("nodes_quantized", "Nodes quantized", done.len());
    report.figure(
        "nodes_skipped",
        "Nodes left in float",
        quantized.nodes.len() - done.len(),
    );
    report.figure("quantize_seconds", "Quantize (s)", quantize_seconds);
    match &opts.calibration {
        None => report.setting("mode", "Mode", "dynamic"),
        Some((data, method)) => {
            report.setting("mode", "Mode", "static");
            report.setting(
                "calibration",
                "Calibration data",
                data.display().to_string(),
            );
            report.setting("calibration_method", "Calibration method", method.name());
        }
    }
    report.setting(
        "weights",
        "Weights",
        if opts.per_tensor {
            "int8 symmetric, per tensor"
        } else {
            "int8 symmetric, per output channel"
        },
    );
    report.setting(
        "activations",
        "Activations",
        "uint8, per tensor, at run time (DynamicQuantizeLinear)",
    );
    report.setting(
        "reduce_range",
        "Reduce range (7-bit weights)",
        opts.reduce_range,
    );
    report.setting("exclude", "Excluded", opts.exclude.join(","));
    report.setting("output", "Output", opts.output.display().to_string());

    let mut nodes = Section::new(
        "nodes",
        "Nodes",
        &[
            ("node", "Node"),
            ("op", "Op"),
            ("weight", "Weight"),
            ("shape", "Shape"),
            ("quantized", "Quantized"),
            ("weight_error", "Weight error (relative)"),
            ("reason", "Reason"),
        ],
    );
    for n in &quantized.nodes {
        nodes.push(vec![
            n.node.clone().into(),
            n.op.clone().into(),
            n.weight.clone().into(),
            if n.shape.is_empty() {
                crate::report::Cell::Null
            } else {
                format!("{:?}", n.shape).into()
            },
            n.skipped.is_none().into(),
            if n.skipped.is_none() {
                n.weight_error.into()
            } else {
                crate::report::Cell::Null
            },
            n.skipped
                .clone()
                .map_or(crate::report::Cell::Null, Into::into),
        ]);
    }
    report.sections.push(nodes);

    let mut gate = Gate {
        outcome: Outcome::Pass,
        rule: "quantized model written".into(),
        message: if done.is_empty() {
            format!(
                "nothing to quantize (no float MatMul, Gemm or Gather weight); wrote an unchanged copy to {}",
                opts.output.display()
            )
        } else {
            format!(
                "quantized {} nodes, {:.2}x smaller; wrote {}",
                done.len(),
                size_before as f64 / size_after.max(1) as f64,
                opts.output.display()
            )
        },
    };

    if let Some(e) = &evaluation {
        report.figure("eval_rows", "Rows evaluated", e.rows);
        report.figure("float_seconds", "Float model run (s)", e.seconds.0);
        report.figure("int8_seconds", "Quantized model run (s)", e.seconds.1);
        report.figure(
            "speedup",
            "Speed-up (float / quantized)",
            e.seconds.0 / e.seconds.1.max(1e-12),
        );
        let mut acc = Section::new(
            "accuracy",
            "Accuracy",
            &[
                ("metric", "Metric"),
                ("float", "Float"),
                ("int8", "Int8"),
                ("change", "Change"),
            ],
        );
        if let Some((a, b)) = e.accuracy {
            acc.push(vec!["accuracy".into(), a.into(), b.into(), (b - a).into()]);
        }
        if let Some((a, b)) = e.rmse {
            acc.push(vec!["rmse".into(), a.into(), b.into(), (b - a).into()]);
        }
        if !acc.rows.is_empty() {
            report.sections.push(acc);
        }
        let mut outs = Section::new(
            "outputs",
            "Outputs, float against int8",
            &[
                ("output", "Output"),
                ("rows", "Rows"),
                ("max_abs_diff", "Max |diff|"),
                ("mean_abs_diff", "Mean |diff|"),
                ("mean_cosine", "Mean cosine"),
                ("min_cosine", "Min cosine"),
                ("agreement", "Top-1 agreement"),
            ],
        );
        for o in &e.outputs {
            outs.push(vec![
                o.name.clone().into(),
                o.rows.into(),
                o.max_abs_diff.into(),
                o.mean_abs_diff.into(),
                o.mean_cosine.map_or(crate::report::Cell::Null, Into::into),
                o.min_cosine.map_or(crate::report::Cell::Null, Into::into),
                o.agreement.into(),
            ]);
        }
        report.sections.push(outs);
        if let Some(limit) = opts.max_accuracy_drop {
            let (drop, what) = loss(e);
            report.setting("max_accuracy_drop", "Max accuracy drop", limit);
            if drop > limit {
                gate = Gate {
                    outcome: Outcome::Fail,
                    rule: format!("{what} <= {limit}"),
                    message: format!("{what} {drop:.4} exceeds --max-accuracy-drop {limit}"),
                };
            } else {
                gate.rule = format!("{what} <= {limit}");
                gate.message = format!("{} ({what} {drop:.4})", gate.message);
            }
        }
    }
    if !sensitivity.is_empty() {
        let kept = sensitivity.iter().filter(|s| s.3).count();
        report.figure("auto_kept_float", "Layers put back to float (--auto)", kept);
        let mut section = Section::new(
            "sensitivity",
            "Layer sensitivity (--auto): the loss with only that layer quantized",
            &[
                ("node", "Node"),
                ("loss", "Loss alone"),
                ("mean_abs_diff", "Mean |diff| alone"),
                ("kept_float", "Put back to float"),
            ],
        );
        for (node, l, d, back) in &sensitivity {
            section.push(vec![
                node.clone().into(),
                (*l).into(),
                (*d).into(),
                (*back).into(),
            ]);
        }
        report.sections.push(section);
    }
    report.setting("auto", "Auto fallback", opts.auto);
    // Written last: bad evaluation data is reported before any file appears.
    crate::fsio::write_atomic(&opts.output, &out_bytes)?;
    if let Some((path, block)) = &opts.gguf {
        let written = gguf::write(&proto, folder, path, *block, &opts.model)?;
        report.figure("gguf_bytes", "GGUF size (bytes)", written.bytes);
        report.figure("gguf_tensors", "GGUF tensors", written.tensors);
        report.figure(
            "gguf_quantized",
            "GGUF tensors in the block type",
            written.quantized,
        );
        report.setting("gguf", "GGUF", path.display().to_string());
        report.setting("gguf_type", "GGUF block type", format!("{block:?}"));
        report.setting(
            "gguf_f16_fallback",
            "GGUF F16 fallbacks",
            written.fell_back.join(","),
        );
        gate.message = format!("{}; weights also in {}", gate.message, path.display());
    }
    report.gate = gate;
    Ok(report)
}
