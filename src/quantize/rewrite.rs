//! Dynamic int8 quantization of an ONNX graph, as ONNX Runtime's
//! `quantize_dynamic` writes it, so that ONNX Runtime and mlctl both run the
//! result with integer kernels:
//!
//! * `MatMul(x, W)` and `Gemm(x, W, C)` with a float weight W become
//!   `DynamicQuantizeLinear(x)` (uint8, one per activation, shared),
//!   `MatMulInteger(x_q, W_q, x_zero, W_zero)`, `Cast(float)`, and `Mul` by
//!   x_scale * W_scale (and `Add` of Gemm's bias).
//! * `Gather(E, ids)` on a float embedding table becomes `Gather(E_q, ids)`
//!   and `DequantizeLinear` along the embedding axis.
//!
//! Weights are int8, symmetric (zero point 0, range -127..127, as ONNX
//! Runtime recommends on current CPUs; `reduce_range` keeps 7 bits for CPUs
//! without VNNI, whose 8-bit products can saturate), with one scale per
//! output column unless `per_tensor`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use candle_core::{DType, Device};
use candle_onnx::onnx::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, ModelProto, NodeProto,
    TensorProto,
};

use crate::runtime::tensor;

#[derive(Debug, Clone)]
pub struct Settings {
    pub per_tensor: bool,
    pub reduce_range: bool,
    /// Node names or op types left in float.
    pub exclude: Vec<String>,
    /// Nodes left in float, by the label the report gives them (exactly).
    pub exclude_nodes: Vec<String>,
    /// Activations: one symmetric int8 scale per row (token, sample)
    /// instead of DynamicQuantizeLinear's one uint8 scale per tensor.
    pub per_row: bool,
    /// Static quantization: each activation's calibrated (low, high)
    /// range; activations are then quantized with fixed uint8 scales.
    pub static_ranges: Option<HashMap<String, (f32, f32)>>,
}

/// uint8 scale and zero point for a range (widened to include 0).
pub fn uint8_scale(lo: f32, hi: f32) -> (f32, u8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let zero = (-lo / scale).round_ties_even().clamp(0.0, 255.0) as u8;
    (scale, zero)
}

/// What happened to one node.
#[derive(Debug, Clone)]
pub struct NodeOutcome {
    pub node: String,
    pub op: String,
    /// The weight, when the node has one.
    pub weight: String,
    pub shape: Vec<usize>,
    /// None: quantized; Some(reason): left in float.
    pub skipped: Option<String>,
    /// ||W - dequantized(W)|| / ||W|| for a quantized weight.
    pub weight_error: f64,
}

/// Quantized weights: int8 values (k x n, row-major) and their scales.
struct QuantizedWeight {
    values: Vec<i8>,
    scales: Vec<f32>,
    relative_error: f64,
}

/// Symmetric int8 per column of a k x n matrix (or one scale for all).
fn quantize_weight(w: &[f32], k: usize, n: usize, s: &Settings) -> QuantizedWeight {
    let limit = if s.reduce_range { 63.0 } else { 127.0 };
    let groups = if s.per_tensor { 1 } else { n };
    let mut peak = vec![0f32; groups];
    for p in 0..k {
        for j in 0..n {
            let g = if s.per_tensor { 0 } else { j };
            peak[g] = peak[g].max(w[p * n + j].abs());
        }
    }
    let scales: Vec<f32> = peak
        .iter()
        .map(|&m| {
            if m > 0.0 && m.is_finite() {
                m / limit
            } else {
                1.0
            }
        })
        .collect();
    let (mut err, mut norm) = (0f64, 0f64);
    let mut values = vec![0i8; k * n];
    for p in 0..k {
        for j in 0..n {
            let scale = scales[if s.per_tensor { 0 } else { j }];
            let x = w[p * n + j];
            let q = (x / scale).round_ties_even().clamp(-limit, limit);
            values[p * n + j] = q as i8;
            err += ((q * scale - x) as f64).powi(2);
            norm += (x as f64).powi(2);
        }
    }
    QuantizedWeight {
        values,
        scales,
        relative_error: if norm > 0.0 { (err / norm).sqrt() } else { 0.0 },
    }
}

fn float_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn int8_tensor(name: &str, dims: &[i64], values: &[i8]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Int8 as i32,
        raw_data: values.iter().map(|&v| v as u8).collect(),
        ..Default::default()
    }
}

fn node(op: &str, name: String, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name,
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

fn attribute<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

/// The result of quantizing a model.
pub struct Quantized {
    pub model: ModelProto,
    pub nodes: Vec<NodeOutcome>,
}

/// Quantizes `model` (read from `folder`, where its external data lives).
pub fn quantize(
    mut model: ModelProto,
    folder: Option<&Path>,
    s: &Settings,
) -> Result<Quantized, String> {
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version);
    let graph = model.graph.as_mut().ok_or("the model has no graph")?;
    // Everything inline: the output is one file.
    for t in graph.initializer.iter_mut() {
        tensor::inline_external(t, folder).map_err(|e| format!("initializer '{}': {e}", t.name))?;
    }
    let initializers: HashMap<String, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut used: HashSet<String> = HashSet::new();
    let mut names: HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().chain(n.input.iter()).cloned())
        .chain(initializers.keys().cloned())
        .chain(graph.input.iter().map(|i| i.name.clone()))
        .collect();
    // A fresh name, never one the graph uses.
    let mut fresh = |base: String| -> String {
        let mut name = base.clone();
        let mut k = 1;
        while !names.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    };
    let float_matrix = |name: &str| -> Option<(Vec<f32>, usize, usize)> {
        let t = &graph.initializer[*initializers.get(name)?];
        if t.data_type != DataType::Float as i32 || t.dims.len() != 2 {
            return None;
        }
        let v = tensor::from_proto(t, &Device::Cpu).ok()?;
        let (k, n) = (t.dims[0] as usize, t.dims[1] as usize);
        let v: Vec<f32> = v
            .to_dtype(DType::F32)
            .ok()?
            .flatten_all()
            .ok()?
            .to_vec1()
            .ok()?;
        Some((v, k, n))
    };

    let mut outcomes = Vec::new();
    let mut new_nodes: Vec<NodeProto> = Vec::with_capacity(graph.node.len());
    let mut new_initializers: Vec<TensorProto> = Vec::new();
    // One DynamicQuantizeLinear per activation: (quantized, scale, zero point).
    let mut activations: HashMap<String, (String, String, String)> = HashMap::new();
    let nodes = std::mem::take(&mut graph.node);
    for (index, n) in nodes.into_iter().enumerate() {
        let label = if n.name.is_empty() {
            format!("{}_{index}", n.op_type)
        } else {
            n.name.clone()
        };
        let quantizable =
            n.domain.is_empty() && matches!(n.op_type.as_str(), "MatMul" | "Gemm" | "Gather");
        if !quantizable {
            new_nodes.push(n);
            continue;
        }
        let weight_input = if n.op_type == "Gather" { 0 } else { 1 };
        let weight = n.input.get(weight_input).cloned().unwrap_or_default();
        let mut outcome = NodeOutcome {
            node: label.clone(),
            op: n.op_type.clone(),
            weight: weight.clone(),
            shape: Vec::new(),
            skipped: None,
            weight_error: 0.0,
        };
        let skip =
            |reason: &str, outcome: &mut NodeOutcome| outcome.skipped = Some(reason.to_string());
        if s.exclude
            .iter()
            .any(|e| *e == label || *e == n.op_type || (!n.name.is_empty() && *e == n.name))
        {
            skip("excluded by --exclude", &mut outcome);
        } else if s.exclude_nodes.contains(&label) {
            skip("put back to float by --auto (most sensitive)", &mut outcome);
        } else if opset < 11 {
            skip("opset below 11 has no DynamicQuantizeLinear", &mut outcome);
        }
        let matrix = if outcome.skipped.is_none() {
            float_matrix(&weight)
        } else {
            None
        };
        let Some((w, rows, cols)) = matrix else {
            if outcome.skipped.is_none() {
                skip(
                    "no float 2-D weight (an activation or another type)",
                    &mut outcome,
                );
            }
            outcomes.push(outcome);
            new_nodes.push(n);
            continue;
        };
        outcome.shape = vec![rows, cols];
        match n.op_type.as_str() {
            "Gather" => {
                let axis = attribute(&n, "axis").map_or(0, |a| a.i);
                if axis != 0 {
                    skip("Gather along an axis other than 0", &mut outcome);
                    outcomes.push(outcome);
                    new_nodes.push(n);
                    continue;
                }
                // One scale per embedding dimension (column).
                let q = quantize_weight(&w, rows, cols, s);
                outcome.weight_error = q.relative_error;
                let wq = fresh(format!("{weight}_quantized"));
                let ws = fresh(format!("{weight}_scale"));
                let wz = fresh(format!("{weight}_zero_point"));
                let zeros = vec![0i8; q.scales.len()];
                let dims: Vec<i64> = if s.per_tensor {
                    vec![]
                } else {
                    vec![cols as i64]
                };
                new_initializers.push(int8_tensor(&wq, &[rows as i64, cols as i64], &q.values));
                new_initializers.push(float_tensor(&ws, &dims, &q.scales));
                new_initializers.push(int8_tensor(&wz, &dims, &zeros));
                let gathered = fresh(format!("{}_quantized", n.output[0]));
                let mut gather = n.clone();
                gather.input[0] = wq.clone();
                gather.output = vec![gathered.clone()];
                let mut dq = node(
                    "DequantizeLinear",
                    fresh(format!("{label}_dequantize")),
                    &[&gathered, &ws, &wz],
                    &[&n.output[0]],
                );
                dq.attribute.push(int_attribute("axis", -1));
                new_nodes.push(gather);
                new_nodes.push(dq);
            }
            _ => {
                let gemm = n.op_type == "Gemm";
                let (alpha, beta) = (
                    attribute(&n, "alpha").map_or(1.0, |a| a.f),
                    attribute(&n, "beta").map_or(1.0, |a| a.f),
                );
                if gemm && attribute(&n, "transA").is_some_and(|a| a.i != 0) {
                    skip("Gemm with transA", &mut outcome);
                    outcomes.push(outcome);
                    new_nodes.push(n);
                    continue;
                }
                // W as k x n (Gemm's transB stores it n x k).
                let (w, k, cols) = if gemm && attribute(&n, "transB").is_some_and(|a| a.i != 0) {
                    let mut t = vec![0f32; rows * cols];
                    for i in 0..rows {
                        for j in 0..cols {
                            t[j * rows + i] = w[i * cols + j];
                        }
                    }
                    (t, cols, rows)
                } else {
                    (w, rows, cols)
                };
                let x = n.input[0].clone();
                let fixed = match &s.static_ranges {
                    None => None,
                    Some(ranges) => match ranges.get(&x) {
                        Some(range) => Some(*range),
                        None => {
                            skip("no calibrated range for its input", &mut outcome);
                            outcomes.push(outcome);
                            new_nodes.push(n);
                            continue;
                        }
                    },
                };
                let q = quantize_weight(&w, k, cols, s);
                outcome.weight_error = q.relative_error;
                let (xq, xs, xz) = match activations.get(&x) {
                    Some(found) => found.clone(),
                    None => {
                        let found = (
                            fresh(format!("{x}_quantized")),
                            fresh(format!("{x}_scale")),
                            fresh(format!("{x}_zero_point")),
                        );
                        if let Some((lo, hi)) = fixed {
                            // Static: QuantizeLinear with the calibrated scale.
                            let (scale, zero) = uint8_scale(lo, hi);
                            new_initializers.push(float_tensor(&found.1, &[], &[scale]));
                            new_initializers.push(TensorProto {
                                name: found.2.clone(),
                                data_type: DataType::Uint8 as i32,
                                raw_data: vec![zero],
                                ..Default::default()
                            });
                            new_nodes.push(node(
                                "QuantizeLinear",
                                fresh(format!("{x}_QuantizeLinear")),
                                &[&x, &found.1, &found.2],
                                &[&found.0],
                            ));
                        } else if s.per_row {
                            let (q, scale, zero) = (&found.0, &found.1, &found.2);
                            // scale = max(|x| over the last axis) / 127, kept
                            // above 0; q = uint8(clip(round(x / scale) + 128,
                            // 1, 255)) with zero point 128: symmetric values
                            // in the uint8 x int8 form every integer kernel
                            // (ONNX Runtime's included) runs fastest.
                            let t = |suffix: &str, names: &mut dyn FnMut(String) -> String| {
                                names(format!("{x}_{suffix}"))
                            };
                            let (abs, peak, raw, divided, rounded, clipped) = (
                                t("abs", &mut fresh),
                                t("row_max", &mut fresh),
                                t("row_scale", &mut fresh),
                                t("divided", &mut fresh),
                                t("rounded", &mut fresh),
                                t("clipped", &mut fresh),
                            );
                            let constant = |name: String, v: f32, inits: &mut Vec<TensorProto>| {
                                inits.push(float_tensor(&name, &[], &[v]));
                                name
                            };
                            let c127 =
                                constant(fresh(format!("{x}_127")), 127.0, &mut new_initializers);
                            let c128 =
                                constant(fresh(format!("{x}_128")), 128.0, &mut new_initializers);
                            let c1 = constant(fresh(format!("{x}_1")), 1.0, &mut new_initializers);
                            let c255 =
                                constant(fresh(format!("{x}_255")), 255.0, &mut new_initializers);
                            let tiny =
                                constant(fresh(format!("{x}_tiny")), 1e-30, &mut new_initializers);
                            new_initializers.push(TensorProto {
                                name: zero.clone(),
                                data_type: DataType::Uint8 as i32,
                                raw_data: vec![128],
                                ..Default::default()
                            });
                            new_nodes.push(node("Abs", fresh(format!("{x}_Abs")), &[&x], &[&abs]));
                            let mut reduce = if opset >= 18 {
                                let axes = fresh(format!("{x}_axes"));
                                new_initializers.push(TensorProto {
                                    name: axes.clone(),
                                    dims: vec![1],
                                    data_type: DataType::Int64 as i32,
                                    raw_data: (-1i64).to_le_bytes().to_vec(),
                                    ..Default::default()
                                });
                                node(
                                    "ReduceMax",
                                    fresh(format!("{x}_ReduceMax")),
                                    &[&abs, &axes],
                                    &[&peak],
                                )
                            } else {
                                let mut r = node(
                                    "ReduceMax",
                                    fresh(format!("{x}_ReduceMax")),
                                    &[&abs],
                                    &[&peak],
                                );
                                r.attribute.push(AttributeProto {
                                    name: "axes".into(),
                                    r#type: AttributeType::Ints as i32,
                                    ints: vec![-1],
                                    ..Default::default()
                                });
                                r
                            };
                            reduce.attribute.push(int_attribute("keepdims", 1));
                            new_nodes.push(reduce);
                            new_nodes.push(node(
                                "Div",
                                fresh(format!("{x}_Div127")),
                                &[&peak, &c127],
                                &[&raw],
                            ));
                            new_nodes.push(node(
                                "Max",
                                fresh(format!("{x}_Max")),
                                &[&raw, &tiny],
                                &[scale],
                            ));
                            new_nodes.push(node(
                                "Div",
                                fresh(format!("{x}_DivScale")),
                                &[&x, scale],
                                &[&divided],
                            ));
                            new_nodes.push(node(
                                "Round",
                                fresh(format!("{x}_Round")),
                                &[&divided],
                                &[&rounded],
                            ));
                            let shifted = fresh(format!("{x}_shifted"));
                            new_nodes.push(node(
                                "Add",
                                fresh(format!("{x}_Add128")),
                                &[&rounded, &c128],
                                &[&shifted],
                            ));
                            new_nodes.push(node(
                                "Clip",
                                fresh(format!("{x}_Clip")),
                                &[&shifted, &c1, &c255],
                                &[&clipped],
                            ));
                            let mut cast =
                                node("Cast", fresh(format!("{x}_CastUint8")), &[&clipped], &[q]);
                            cast.attribute
                                .push(int_attribute("to", DataType::Uint8 as i64));
                            new_nodes.push(cast);
                        } else {
                            new_nodes.push(node(
                                "DynamicQuantizeLinear",
                                fresh(format!("{x}_DynamicQuantizeLinear")),
                                &[&x],
                                &[&found.0, &found.1, &found.2],
                            ));
                        }
                        activations.insert(x.clone(), found.clone());
                        found
                    }
                };
                let wq = fresh(format!("{weight}_quantized"));
                let ws = fresh(format!("{weight}_scale"));
                let wz = fresh(format!("{weight}_zero_point"));
                let scales: Vec<f32> = q.scales.iter().map(|v| v * alpha).collect();
                let dims: Vec<i64> = if s.per_tensor {
                    vec![]
                } else {
                    vec![cols as i64]
                };
                new_initializers.push(int8_tensor(&wq, &[k as i64, cols as i64], &q.values));
                if fixed.is_none() {
                    new_initializers.push(float_tensor(&ws, &dims, &scales));
                }
                new_initializers.push(int8_tensor(&wz, &dims, &vec![0i8; scales.len()]));
                let out = n.output[0].clone();
                let sums = fresh(format!("{out}_int32"));
                let floats = fresh(format!("{out}_float"));
                let scale = fresh(format!("{out}_scale"));
                new_nodes.push(node(
                    "MatMulInteger",
                    fresh(format!("{label}_MatMulInteger")),
                    &[&xq, &wq, &xz, &wz],
                    &[&sums],
                ));
                let mut cast = node("Cast", fresh(format!("{label}_Cast")), &[&sums], &[&floats]);
                cast.attribute
                    .push(int_attribute("to", DataType::Float as i64));
                new_nodes.push(cast);
                // Per tensor: one Mul by x_scale * W_scale, as ONNX Runtime
                // writes it. Per row: by the row scales, then by W's scales
                // (their product would be a full matrix).
                let (floats, scale) = if let Some((lo, hi)) = fixed {
                    // Both scales are known: their product is one weight.
                    let x_scale = uint8_scale(lo, hi).0;
                    let combined: Vec<f32> = scales.iter().map(|w| x_scale * w).collect();
                    new_initializers.push(float_tensor(&scale, &dims, &combined));
                    (floats, scale)
                } else if s.per_row {
                    let by_row = fresh(format!("{out}_row_scaled"));
                    new_nodes.push(node(
                        "Mul",
                        fresh(format!("{label}_row_scale")),
                        &[&floats, &xs],
                        &[&by_row],
                    ));
                    (by_row, ws.clone())
                } else {
                    new_nodes.push(node(
                        "Mul",
                        fresh(format!("{label}_scale")),
                        &[&xs, &ws],
                        &[&scale],
                    ));
                    (floats, scale)
                };
                let bias = if gemm {
                    n.input.get(2).filter(|b| !b.is_empty()).cloned()
                } else {
                    None
                };
                match bias {
                    None => new_nodes.push(node("Mul", label.clone(), &[&floats, &scale], &[&out])),
                    Some(c) => {
                        let scaled = fresh(format!("{out}_scaled"));
                        new_nodes.push(node(
                            "Mul",
                            fresh(format!("{label}_rescale")),
                            &[&floats, &scale],
                            &[&scaled],
                        ));
                        let c = if beta != 1.0 {
                            let b = fresh(format!("{c}_beta"));
                            let beta_name = fresh(format!("{label}_beta"));
                            new_initializers.push(float_tensor(&beta_name, &[], &[beta]));
                            new_nodes.push(node(
                                "Mul",
                                fresh(format!("{label}_bias_beta")),
                                &[&c, &beta_name],
                                &[&b],
                            ));
                            b
                        } else {
                            c
                        };
                        new_nodes.push(node("Add", label.clone(), &[&scaled, &c], &[&out]));
                    }
                }
            }
        }
        outcomes.push(outcome);
    }
    // Float weights nothing reads any more are dropped.
    for n in &new_nodes {
        used.extend(n.input.iter().cloned());
    }
    for o in &graph.output {
        used.insert(o.name.clone());
    }
    graph.node = new_nodes;
    graph.initializer.retain(|t| used.contains(&t.name));
    graph.initializer.extend(new_initializers);
    Ok(Quantized {
        model,
        nodes: outcomes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_column_scales_are_symmetric_and_round_half_to_even() {
        let s = Settings {
            per_tensor: false,
            reduce_range: false,
            exclude: vec![],
            exclude_nodes: vec![],
            per_row: false,
            static_ranges: None,
        };
        // Two columns: peaks 2.54 and 0.127.
        let w = [2.54f32, 0.127, -1.27, 0.0635, 0.01, -0.127];
        let q = quantize_weight(&w, 3, 2, &s);
        assert_eq!(q.scales, vec![0.02, 0.001]);
        assert_eq!(q.values, vec![127, 127, -64, 64, 0, -127]);
        assert!(q.relative_error < 0.01);
        let t = quantize_weight(
            &w,
            3,
            2,
            &Settings {
                per_tensor: true,
                ..s.clone()
            },
        );
        assert_eq!(t.scales, vec![0.02]);
        let r = quantize_weight(
            &w,
            3,
            2,
            &Settings {
                reduce_range: true,
                ..s
            },
        );
        assert_eq!(r.values[0], 63);
    }

    #[test]
    fn a_zero_column_gets_scale_one_not_a_division_by_zero() {
        let s = Settings {
            per_tensor: false,
            reduce_range: false,
            exclude: vec![],
            exclude_nodes: vec![],
            per_row: false,
            static_ranges: None,
        };
        let q = quantize_weight(&[0.0, 1.0, 0.0, -1.0], 2, 2, &s);
        assert_eq!(q.scales[0], 1.0);
        assert_eq!(q.values, vec![0, 127, 0, -127]);
    }
}
