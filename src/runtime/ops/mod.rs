//! Operators. Each is built once from its node (attributes read, opset
//! semantics chosen) and then run on every call. `SUPPORTED` lists them; the
//! README's table is checked against it by a test.

mod conv;
pub(crate) mod elementwise;
mod index;
pub(crate) mod linalg;
mod logic;
mod ml;
mod nn;
pub(crate) mod quant;
mod reduce;
mod resize;
mod rnn;
mod shape;
pub(crate) mod tensorops;

use candle_core::Tensor;
use candle_onnx::onnx::AttributeProto;

use super::graph::Node;

/// A value flowing between nodes.
#[derive(Debug, Clone)]
pub enum Value {
    Tensor(Tensor),
    /// ZipMap's output: one probability column per class label.
    ClassMap {
        labels: Vec<String>,
        probabilities: Tensor,
    },
}

impl Value {
    pub fn tensor(&self) -> Result<&Tensor, String> {
        match self {
            Value::Tensor(t) => Ok(t),
            Value::ClassMap { .. } => Err("expected a tensor, got ZipMap's map output".into()),
        }
    }
}

pub type OpResult = Result<Vec<Value>, String>;

pub trait Op: Send + Sync {
    /// `inputs[i]` is `None` for an optional input left empty.
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult;

    /// At load time: packs for good the weights the operator reads only in
    /// a packed form, and says which inputs those are. `inputs` holds the
    /// weights (None for the rest), `present` which inputs the node has.
    /// A weight that only such inputs read is then kept as its shape and
    /// type alone, so the model does not hold it twice.
    fn pin_weights(&self, _inputs: &[Option<&Value>], _present: &[bool]) -> Vec<usize> {
        Vec::new()
    }

    /// Whether input `input`, a float32 matrix on the CPU, is read where it
    /// lies when it is laid out column by column (a transposed view), as
    /// fast as row by row; other operators copy such a view into rows
    /// first.
    fn reads_by_columns(&self, _input: usize) -> bool {
        false
    }

    /// Whether the first output is input `input` itself, as it is laid out,
    /// when that is a float32 tensor (a Cast to float32): what reads that
    /// output reads the input.
    fn passes_on_float32(&self, _input: usize) -> bool {
        false
    }
}

/// (domain, op type) of every operator mlctl runs (If is built by the model
/// compiler, which owns control flow).
pub const SUPPORTED: &[(&str, &str)] = &[
    ("", "Abs"),
    ("", "Add"),
    ("", "And"),
    ("", "ArgMax"),
    ("", "ArgMin"),
    ("", "AveragePool"),
    ("", "BatchNormalization"),
    ("", "Cast"),
    ("", "Ceil"),
    ("", "Clip"),
    ("", "Concat"),
    ("", "Constant"),
    ("", "ConstantOfShape"),
    ("", "Conv"),
    ("", "Cos"),
    ("", "CumSum"),
    ("", "DequantizeLinear"),
    ("", "Div"),
    ("", "Dropout"),
    ("", "DynamicQuantizeLinear"),
    ("", "Elu"),
    ("", "Equal"),
    ("", "Erf"),
    ("", "Exp"),
    ("", "Expand"),
    ("", "Flatten"),
    ("", "Floor"),
    ("", "GRU"),
    ("", "Gather"),
    ("", "GatherElements"),
    ("", "Gelu"),
    ("", "Gemm"),
    ("", "GlobalAveragePool"),
    ("", "GlobalMaxPool"),
    ("", "Greater"),
    ("", "GreaterOrEqual"),
    ("", "HardSigmoid"),
    ("", "HardSwish"),
    ("", "Identity"),
    ("", "If"),
    ("", "LSTM"),
    ("", "LayerNormalization"),
    ("", "LeakyRelu"),
    ("", "Less"),
    ("", "LessOrEqual"),
    ("", "Log"),
    ("", "LogSoftmax"),
    ("", "MatMul"),
    ("", "MatMulInteger"),
    ("", "Max"),
    ("", "MaxPool"),
    ("", "Mean"),
    ("", "Min"),
    ("", "Mul"),
    ("", "Neg"),
    ("", "Not"),
    ("", "OneHot"),
    ("", "Or"),
    ("", "PRelu"),
    ("", "Pad"),
    ("", "Pow"),
    ("", "QLinearMatMul"),
    ("", "QuantizeLinear"),
    ("", "RNN"),
    ("", "Range"),
    ("", "Reciprocal"),
    ("", "ReduceL1"),
    ("", "ReduceL2"),
    ("", "ReduceLogSumExp"),
    ("", "ReduceMax"),
    ("", "ReduceMean"),
    ("", "ReduceMin"),
    ("", "ReduceProd"),
    ("", "ReduceSum"),
    ("", "ReduceSumSquare"),
    ("", "Relu"),
    ("", "Reshape"),
    ("", "Resize"),
    ("", "Round"),
    ("", "ScatterND"),
    ("", "Selu"),
    ("", "Shape"),
    ("", "Sigmoid"),
    ("", "Sign"),
    ("", "Sin"),
    ("", "Size"),
    ("", "Slice"),
    ("", "Softmax"),
    ("", "Softplus"),
    ("", "Softsign"),
    ("", "Split"),
    ("", "Sqrt"),
    ("", "Squeeze"),
    ("", "Sub"),
    ("", "Sum"),
    ("", "Tanh"),
    ("", "Tile"),
    ("", "Transpose"),
    ("", "Trilu"),
    ("", "Unsqueeze"),
    ("", "Where"),
    ("", "Xor"),
    ("ai.onnx.ml", "ArrayFeatureExtractor"),
    ("ai.onnx.ml", "Scaler"),
    ("ai.onnx.ml", "ZipMap"),
];

/// Builds the operator for `node` at `opset` (the version its domain imports).
/// `types` gives the ONNX element type of the values whose type the model
/// declares (initializers, graph inputs): quantized outputs need it.
pub fn build(
    node: &Node,
    opset: i64,
    types: &std::collections::HashMap<String, i32>,
) -> Result<Box<dyn Op>, String> {
    let declared = |i: usize| {
        node.inputs
            .get(i)
            .and_then(|n| types.get(n))
            .and_then(|&t| quant::Quantized::from_onnx(t))
    };
    let a = Attrs(&node.attributes);
    let op: Box<dyn Op> = match (node.domain.as_str(), node.op_type.as_str()) {
        ("", "Add" | "Sub" | "Mul" | "Div") => elementwise::binary(&node.op_type)?,
        ("", "Sum" | "Max" | "Min" | "Mean") => elementwise::variadic(&node.op_type)?,
        (
            "",
            "Abs" | "Exp" | "Log" | "Neg" | "Reciprocal" | "Relu" | "Sigmoid" | "Softplus" | "Sqrt"
            | "Tanh",
        ) => elementwise::unary(&node.op_type)?,
        ("", "Elu") => elementwise::elu(a.float("alpha", 1.0)),
        ("", "LeakyRelu") => elementwise::leaky_relu(a.float("alpha", 0.01)),
        ("", "HardSigmoid") => {
            elementwise::hard_sigmoid(a.float("alpha", 0.2), a.float("beta", 0.5))
        }
        ("", "MatMul") => Box::new(linalg::MatMul::default()),
        ("", "Gemm") => Box::new(linalg::Gemm {
            alpha: a.float("alpha", 1.0) as f64,
            beta: a.float("beta", 1.0) as f64,
            trans_a: a.int("transA", 0) != 0,
            trans_b: a.int("transB", 0) != 0,
            packed: Default::default(),
        }),
        ("", "ArgMax") => Box::new(nn::ArgMax {
            axis: a.int("axis", 0),
            keepdims: a.int("keepdims", 1) != 0,
            last_index: a.int("select_last_index", 0) != 0,
        }),
        ("", "Identity") => Box::new(shape::Identity),
        ("", "ArgMin") => Box::new(nn::ArgMin {
            axis: a.int("axis", 0),
            keepdims: a.int("keepdims", 1) != 0,
            last_index: a.int("select_last_index", 0) != 0,
        }),
        ("", "Softmax" | "LogSoftmax") => Box::new(nn::Softmax::new(
            opset,
            a.int("axis", if opset >= 13 { -1 } else { 1 }),
            node.op_type == "LogSoftmax",
        )),
        ("", "PRelu") => Box::new(elementwise::PRelu),
        ("", "Resize") => {
            if opset < 11 {
                return Err("Resize before opset 11 is not supported".into());
            }
            if a.int("antialias", 0) != 0 {
                return Err("Resize with antialias is not supported".into());
            }
            let mode = match a.string("mode").as_deref().unwrap_or("nearest") {
                "nearest" => resize::Mode::Nearest,
                "linear" => resize::Mode::Linear,
                "cubic" => resize::Mode::Cubic,
                other => return Err(format!("Resize mode '{other}' is not known")),
            };
            let nearest = match a
                .string("nearest_mode")
                .as_deref()
                .unwrap_or("round_prefer_floor")
            {
                "round_prefer_floor" => resize::Nearest::RoundPreferFloor,
                "round_prefer_ceil" => resize::Nearest::RoundPreferCeil,
                "floor" => resize::Nearest::Floor,
                "ceil" => resize::Nearest::Ceil,
                other => return Err(format!("nearest_mode '{other}' is not known")),
            };
            let transform = match a
                .string("coordinate_transformation_mode")
                .as_deref()
                .unwrap_or("half_pixel")
            {
                "half_pixel" => resize::Transform::HalfPixel,
                "half_pixel_symmetric" => resize::Transform::HalfPixelSymmetric,
                "pytorch_half_pixel" => resize::Transform::PytorchHalfPixel,
                "align_corners" => resize::Transform::AlignCorners,
                "asymmetric" => resize::Transform::Asymmetric,
                "tf_crop_and_resize" => resize::Transform::TfCropAndResize,
                other => {
                    return Err(format!(
                        "coordinate_transformation_mode '{other}' is not known"
                    ))
                }
            };
            let policy = match a
                .string("keep_aspect_ratio_policy")
                .as_deref()
                .unwrap_or("stretch")
            {
                "stretch" => resize::AspectPolicy::Stretch,
                "not_larger" => resize::AspectPolicy::NotLarger,
                "not_smaller" => resize::AspectPolicy::NotSmaller,
                other => return Err(format!("keep_aspect_ratio_policy '{other}' is not known")),
            };
            Box::new(resize::Resize {
                mode,
                nearest,
                transform,
                cubic_a: a.float("cubic_coeff_a", -0.75) as f64,
                exclude_outside: a.int("exclude_outside", 0) != 0,
                extrapolation: a.float("extrapolation_value", 0.0) as f64,
                axes: a.ints("axes"),
                policy,
            })
        }
        ("", "RNN" | "LSTM" | "GRU") => {
            let direction = rnn::Direction::parse(a.string("direction"))?;
            let dirs = if direction == rnn::Direction::Bidirectional {
                2
            } else {
                1
            };
            let defaults: &[&str] = match node.op_type.as_str() {
                "LSTM" => &["Sigmoid", "Tanh", "Tanh"],
                "GRU" => &["Sigmoid", "Tanh"],
                _ => &["Tanh"],
            };
            let names = a.strings("activations").unwrap_or_else(|| {
                defaults
                    .iter()
                    .cycle()
                    .take(defaults.len() * dirs)
                    .map(|s| s.to_string())
                    .collect()
            });
            if a.floats("activation_alpha").is_some() || a.floats("activation_beta").is_some() {
                return Err("parametric recurrent activations are not supported".into());
            }
            let activations = names
                .iter()
                .map(|n| rnn::Activation::parse(n))
                .collect::<Result<Vec<_>, _>>()?;
            if activations.len() != defaults.len() * dirs {
                return Err(format!(
                    "{} activations for {dirs} direction(s)",
                    activations.len()
                ));
            }
            Box::new(rnn::Recurrent {
                cell: match node.op_type.as_str() {
                    "LSTM" => rnn::Cell::Lstm {
                        input_forget: a.int("input_forget", 0) != 0,
                    },
                    "GRU" => rnn::Cell::Gru {
                        linear_before_reset: a.int("linear_before_reset", 0) != 0,
                    },
                    _ => rnn::Cell::Simple,
                },
                direction,
                hidden: a.int("hidden_size", 0).max(0) as usize,
                activations,
                clip: a.0.iter().find(|x| x.name == "clip").map(|x| x.f),
                batch_first: a.int("layout", 0) == 1,
            })
        }
        ("", "ScatterND") => {
            let reduction: Option<fn(f64, f64) -> f64> = match a.string("reduction").as_deref() {
                None | Some("none") => None,
                Some("add") => Some(|a, b| a + b),
                Some("mul") => Some(|a, b| a * b),
                Some("max") => Some(f64::max),
                Some("min") => Some(f64::min),
                Some(other) => return Err(format!("ScatterND reduction '{other}' is not known")),
            };
            Box::new(index::ScatterND { reduction })
        }
        ("", "GatherElements") => Box::new(index::GatherElements {
            axis: a.int("axis", 0),
        }),
        ("", "OneHot") => Box::new(index::OneHot {
            axis: a.int("axis", -1),
        }),
        ("", "Trilu") => Box::new(index::Trilu {
            upper: a.int("upper", 1) != 0,
        }),
        ("", "CumSum") => Box::new(index::CumSum {
            exclusive: a.int("exclusive", 0) != 0,
            reverse: a.int("reverse", 0) != 0,
        }),
        ("", "Pad") => {
            let mode = match a.string("mode").as_deref().unwrap_or("constant") {
                "constant" => index::PadMode::Constant,
                "reflect" => index::PadMode::Reflect,
                "edge" => index::PadMode::Edge,
                "wrap" => index::PadMode::Wrap,
                other => return Err(format!("Pad mode '{other}' is not known")),
            };
            Box::new(index::Pad {
                mode,
                attributes: (opset < 11).then(|| {
                    (
                        a.ints("pads").unwrap_or_default(),
                        a.float("value", 0.0) as f64,
                    )
                }),
            })
        }
        ("", "Conv") => Box::new(conv::Conv {
            auto_pad: conv::AutoPad::parse(a.string("auto_pad"), a.ints("pads"))?,
            strides: a.ints("strides"),
            dilations: a.ints("dilations"),
            group: a.int("group", 1).max(1) as usize,
        }),
        ("", "MaxPool" | "AveragePool") => {
            if node.op_type == "MaxPool" && node.outputs.len() > 1 && !node.outputs[1].is_empty() {
                return Err("MaxPool's Indices output is not supported".into());
            }
            let kind = if node.op_type == "MaxPool" {
                conv::PoolKind::Max
            } else {
                conv::PoolKind::Average {
                    count_include_pad: a.int("count_include_pad", 0) != 0,
                }
            };
            Box::new(conv::Pool {
                kind,
                kernel: a.ints("kernel_shape").ok_or("pooling needs kernel_shape")?,
                auto_pad: conv::AutoPad::parse(a.string("auto_pad"), a.ints("pads"))?,
                strides: a.ints("strides"),
                dilations: a.ints("dilations"),
                ceil_mode: a.int("ceil_mode", 0) != 0,
            })
        }
        ("", "BatchNormalization") => {
            if node.outputs.iter().skip(1).any(|o| !o.is_empty()) {
                return Err("BatchNormalization in training mode (running statistics outputs) is not supported".into());
            }
            Box::new(conv::BatchNormalization {
                epsilon: a.float("epsilon", 1e-5) as f64,
            })
        }
        ("", "Greater" | "Less" | "GreaterOrEqual" | "LessOrEqual" | "And" | "Or" | "Xor") => {
            logic::comparison(&node.op_type)?
        }
        ("", "Not") => Box::new(logic::Not),
        ("", "Floor" | "Ceil" | "Round" | "Sign" | "Sin" | "Cos" | "Softsign" | "HardSwish") => {
            elementwise::math(&node.op_type, vec![])?
        }
        ("", "Selu") => elementwise::math(
            "Selu",
            vec![
                a.float("alpha", 1.673_263_2) as f64,
                a.float("gamma", 1.050_701) as f64,
            ],
        )?,
        ("", "Gelu") => {
            let tanh = match a.string("approximate").as_deref() {
                None | Some("none") => 0.0,
                Some("tanh") => 1.0,
                Some(other) => return Err(format!("Gelu approximate='{other}' is not supported")),
            };
            elementwise::math("Gelu", vec![tanh])?
        }
        ("", "Pow") => Box::new(elementwise::Pow),
        (
            "",
            "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd"
            | "ReduceSumSquare" | "ReduceL1" | "ReduceL2" | "ReduceLogSumExp",
        ) => {
            let kind = match node.op_type.as_str() {
                "ReduceSum" => reduce::Kind::Sum,
                "ReduceMean" => reduce::Kind::Mean,
                "ReduceMax" => reduce::Kind::Max,
                "ReduceMin" => reduce::Kind::Min,
                "ReduceProd" => reduce::Kind::Prod,
                "ReduceSumSquare" => reduce::Kind::SumSquare,
                "ReduceL1" => reduce::Kind::L1,
                "ReduceL2" => reduce::Kind::L2,
                _ => reduce::Kind::LogSumExp,
            };
            Box::new(reduce::Reduce {
                kind,
                axes: (opset < reduce::axes_input_from(&node.op_type)).then(|| a.ints("axes")),
                keepdims: a.int("keepdims", 1) != 0,
                noop_with_empty_axes: a.int("noop_with_empty_axes", 0) != 0,
            })
        }
        ("", "GlobalAveragePool") => Box::new(reduce::GlobalPool {
            kind: reduce::Kind::Mean,
        }),
        ("", "GlobalMaxPool") => Box::new(reduce::GlobalPool {
            kind: reduce::Kind::Max,
        }),
        ("", "Dropout") => Box::new(tensorops::Dropout),
        ("", "Split") => Box::new(tensorops::Split {
            axis: a.int("axis", 0),
            split: if opset < 13 { a.ints("split") } else { None },
            outputs: node.outputs.len(),
        }),
        ("", "Range") => Box::new(tensorops::Range),
        ("", "Tile") => Box::new(tensorops::Tile),
        ("", "Size") => Box::new(tensorops::Size),
        ("", "Cast") => Box::new(shape::Cast::new(a.int("to", 0))?),
        ("", "Reshape") => Box::new(shape::Reshape {
            allow_zero: a.int("allowzero", 0) != 0,
        }),
        ("", "Flatten") => Box::new(shape::Flatten {
            axis: a.int("axis", 1),
        }),
        ("", "Transpose") => Box::new(shape::Transpose {
            perm: a.ints("perm"),
        }),
        ("", "Concat") => Box::new(shape::Concat {
            axis: a.int("axis", 0),
        }),
        // Before opset 13 the axes are an attribute, from 13 an input.
        ("", "Unsqueeze") => Box::new(shape::Unsqueeze {
            axes: (opset < 13).then(|| a.ints("axes").unwrap_or_default()),
        }),
        ("", "Squeeze") => Box::new(shape::Squeeze {
            axes: if opset < 13 {
                Some(a.ints("axes"))
            } else {
                None
            },
        }),
        ("", "Shape") => Box::new(tensorops::ShapeOf {
            start: a.int("start", 0),
            end: a.0.iter().find(|x| x.name == "end").map(|x| x.i),
        }),
        ("", "Constant") => Box::new(tensorops::Constant::new(&node.attributes)?),
        ("", "ConstantOfShape") => Box::new(tensorops::ConstantOfShape::new(&node.attributes)?),
        ("", "Gather") => Box::new(tensorops::Gather {
            axis: a.int("axis", 0),
        }),
        ("", "Slice") => Box::new(tensorops::Slice {
            attributes: (opset < 10).then(|| tensorops::SliceAttributes {
                starts: a.ints("starts").unwrap_or_default(),
                ends: a.ints("ends").unwrap_or_default(),
                axes: a.ints("axes"),
            }),
        }),
        ("", "Expand") => Box::new(tensorops::Expand),
        ("", "Where") => Box::new(tensorops::Where),
        ("", "Equal") => Box::new(tensorops::Equal),
        ("", "Erf") => Box::new(tensorops::Erf),
        ("", "Clip") => Box::new(tensorops::Clip {
            bounds: (opset < 11).then(|| (a.float("min", f32::MIN), a.float("max", f32::MAX))),
        }),
        ("", "QuantizeLinear") => Box::new(quant::QuantizeLinear {
            axis: a.int("axis", 1),
            block_size: a.int("block_size", 0),
            output: a
                .0
                .iter()
                .find(|x| x.name == "output_dtype" && x.i != 0)
                .and_then(|x| quant::Quantized::from_onnx(x.i as i32))
                .or_else(|| declared(2)),
        }),
        ("", "DequantizeLinear") => Box::new(quant::DequantizeLinear {
            axis: a.int("axis", 1),
            block_size: a.int("block_size", 0),
        }),
        ("", "DynamicQuantizeLinear") => Box::new(quant::DynamicQuantizeLinear),
        ("", "MatMulInteger") => Box::new(quant::MatMulInteger::default()),
        ("", "QLinearMatMul") => Box::new(quant::QLinearMatMul {
            output: declared(7),
        }),
        ("", "LayerNormalization") => Box::new(tensorops::LayerNormalization {
            axis: a.int("axis", -1),
            epsilon: a.float("epsilon", 1e-5) as f64,
        }),
        ("ai.onnx.ml", "Scaler") => Box::new(ml::Scaler {
            offset: a.floats("offset").unwrap_or_default(),
            scale: a.floats("scale").unwrap_or_default(),
        }),
        ("ai.onnx.ml", "ArrayFeatureExtractor") => Box::new(ml::ArrayFeatureExtractor),
        ("ai.onnx.ml", "ZipMap") => Box::new(ml::ZipMap::new(
            a.ints("classlabels_int64s"),
            a.strings("classlabels_strings"),
        )?),
        (domain, op) => {
            let domain = if domain.is_empty() { "ai.onnx" } else { domain };
            return Err(format!("operator {domain}::{op} is not supported"));
        }
    };
    Ok(op)
}

/// Reads a node's attributes.
pub struct Attrs<'a>(pub &'a [AttributeProto]);

impl Attrs<'_> {
    fn find(&self, name: &str) -> Option<&AttributeProto> {
        self.0.iter().find(|a| a.name == name)
    }
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.find(name).map_or(default, |a| a.i)
    }
    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.find(name).map_or(default, |a| a.f)
    }
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.find(name).map(|a| a.ints.clone())
    }
    pub fn floats(&self, name: &str) -> Option<Vec<f32>> {
        self.find(name).map(|a| a.floats.clone())
    }
    pub fn string(&self, name: &str) -> Option<String> {
        self.find(name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }
    pub fn strings(&self, name: &str) -> Option<Vec<String>> {
        self.find(name).map(|a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
    }
}

/// The input at `i`, which must be present and a tensor.
pub fn input<'a>(inputs: &'a [Option<&Value>], i: usize) -> Result<&'a Tensor, String> {
    inputs
        .get(i)
        .copied()
        .flatten()
        .ok_or_else(|| format!("input {i} is missing"))?
        .tensor()
}

/// An optional input.
pub fn optional<'a>(inputs: &'a [Option<&Value>], i: usize) -> Result<Option<&'a Tensor>, String> {
    match inputs.get(i).copied().flatten() {
        None => Ok(None),
        Some(v) => v.tensor().map(Some),
    }
}

/// Reads a small integer tensor (shapes, axes) into a vector.
pub fn int_values(t: &Tensor) -> Result<Vec<i64>, String> {
    t.to_dtype(candle_core::DType::I64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<i64>())
        .map_err(|e| e.to_string())
}

/// The most elements an operator may create from sizes it reads from
/// attributes or input values (pads, repeats, shapes): 2^31, 8 GiB of f32.
/// Bigger requests are errors, not attempts to allocate.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// Number of elements of `dims`, refused beyond `MAX_ELEMENTS`.
pub fn element_count(dims: &[usize]) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| format!("a tensor of shape {dims:?} is too large"))
}

/// A possibly negative axis, resolved against `rank`.
pub fn axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(a as usize)
}

/// candle's element-wise math (exp, log, tanh, ...) exists for float types
/// only and panics on integers: the operators that use it check first.
pub fn float_only(op: &str, t: &Tensor) -> Result<(), String> {
    if t.dtype().is_float() {
        Ok(())
    } else {
        Err(format!("{op} needs a float tensor, got {:?}", t.dtype()))
    }
}

/// candle's message, without the backtrace it appends when RUST_BACKTRACE
/// is set.
pub fn err(e: candle_core::Error) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or("").trim().to_string()
}
