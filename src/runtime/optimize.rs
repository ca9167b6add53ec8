//! Compile-time graph optimisation: chains of nodes that real exported
//! models spell out op by op are run as one fused step, which reads and
//! writes each tensor once instead of once per node.
//!
//! Every fused step computes the same float32 operations in the same order
//! as the nodes it replaces (only the passes over memory go), so results do
//! not change:
//!
//! * GELU, as exporters write it: `Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5)`.
//! * MatMul by a weight followed by `Add` of a bias (then, optionally, the
//!   GELU above): the bias is added to the product in place.
//! * ONNX Runtime's dynamic quantization, `MatMulInteger -> Cast(float) ->
//!   Mul(scale)` (then, optionally, `Add` of a bias): int32 sums go straight
//!   to scaled floats.
//! * Attention scores: `Softmax(Add(Div(x, c), mask))` over the last axis,
//!   and whole attention, `MatMul(that, v)` with the scores `MatMul(q, kᵀ)`,
//!   head by head.
//!
//! A chain fuses only when each intermediate value has exactly one reader
//! and is not a graph output, and when its constants are what the pattern
//! needs.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use super::graph::{Graph, Node};
use super::kernels::{self, rows, sgemm::PackedB};
use super::ops::{self, input, optional, Op, OpResult, Value};

/// One step of the plan: a node, or a fused chain of nodes.
pub struct Planned {
    /// The graph's nodes this step runs (the last one names it in errors).
    pub nodes: Vec<usize>,
    /// The fused operator, or None to build the single node as usual.
    pub fused: Option<(&'static str, Box<dyn Op>)>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

impl Planned {
    /// One node, as it is.
    pub fn single(graph: &Graph, n: usize) -> Planned {
        Planned {
            nodes: vec![n],
            fused: None,
            inputs: graph.nodes[n].inputs.clone(),
            outputs: graph.nodes[n].outputs.clone(),
        }
    }
}

/// Whether a node has the inputs and the output that the patterns read by
/// position (a malformed node is left alone here, and fails when its
/// operator is built).
fn well_formed(node: &Node) -> bool {
    let least_inputs = match node.op_type.as_str() {
        "Add" | "Sub" | "Mul" | "Div" | "Max" | "MatMul" | "MatMulInteger" | "Gather"
        | "DequantizeLinear" => 2,
        _ => 1,
    };
    !node.outputs.is_empty() && node.inputs.len() >= least_inputs
}

struct Facts<'g> {
    graph: &'g Graph,
    /// Readers of each value (graph outputs count as readers).
    readers: HashMap<&'g str, usize>,
    /// The node writing each value.
    producer: HashMap<&'g str, usize>,
    /// Which node reads each value, when exactly one does.
    only_reader: HashMap<&'g str, usize>,
}

impl<'g> Facts<'g> {
    fn new(graph: &'g Graph) -> Self {
        let mut readers: HashMap<&str, usize> = HashMap::new();
        let mut only_reader = HashMap::new();
        let mut producer = HashMap::new();
        for (i, n) in graph.nodes.iter().enumerate() {
            for inp in n.inputs.iter().filter(|s| !s.is_empty()) {
                *readers.entry(inp.as_str()).or_default() += 1;
                only_reader.insert(inp.as_str(), i);
            }
            for out in &n.outputs {
                producer.insert(out.as_str(), i);
            }
        }
        for o in &graph.outputs {
            *readers.entry(o.name.as_str()).or_default() += 1;
        }
        Facts {
            graph,
            readers,
            producer,
            only_reader,
        }
    }

    /// The node that alone reads `value`, if that node is a plain ONNX `op`.
    fn next(&self, value: &str, op: &str) -> Option<usize> {
        if self.readers.get(value) != Some(&1) {
            return None;
        }
        let n = *self.only_reader.get(value)?;
        let node = &self.graph.nodes[n];
        (node.domain.is_empty() && node.op_type == op && well_formed(node)).then_some(n)
    }

    fn node(&self, n: usize) -> &'g Node {
        &self.graph.nodes[n]
    }

    /// A constant's value: an initializer or a Constant node's tensor.
    fn constant(&self, name: &str) -> Option<Tensor> {
        if let Some(t) = self.graph.initializers.iter().find(|t| t.name == name) {
            return super::tensor::from_proto(t, &Device::Cpu).ok();
        }
        let n = self.node(*self.producer.get(name)?);
        if n.op_type != "Constant" || !n.domain.is_empty() {
            return None;
        }
        let value = n.attributes.iter().find(|a| a.name == "value")?;
        super::tensor::from_proto(value.t.as_ref()?, &Device::Cpu).ok()
    }

    fn scalar(&self, name: &str) -> Option<f32> {
        let t = self.constant(name)?;
        if t.elem_count() != 1 || t.dtype() != DType::F32 {
            return None;
        }
        t.flatten_all()
            .ok()?
            .to_vec1::<f32>()
            .ok()?
            .first()
            .copied()
    }

    /// Whether a name is a float32 initializer.
    fn float32_initializer(&self, name: &str) -> bool {
        self.graph
            .initializers
            .iter()
            .any(|t| t.name == name && t.data_type == 1)
    }

    /// An initializer's shape, from its declaration (no data is read).
    fn initializer_dims(&self, name: &str) -> Option<Vec<i64>> {
        self.graph
            .initializers
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.dims.clone())
    }

    fn is_initializer(&self, name: &str) -> bool {
        self.graph.initializers.iter().any(|t| t.name == name)
    }

    /// The other input of a two-input node, given one of them.
    fn other<'a>(&self, node: &'a Node, this: &str) -> Option<&'a str> {
        match node.inputs.as_slice() {
            [a, b] if a == this => Some(b),
            [a, b] if b == this => Some(a),
            _ => None,
        }
    }
}

/// GELU from `x`, starting at the Div (or Mul by 1/√2) node `first`:
/// returns the chain and the constants, or None.
fn gelu_chain(f: &Facts, first: usize) -> Option<(Vec<usize>, Gelu)> {
    let div = f.node(first);
    if div.inputs.len() != 2 {
        return None;
    }
    let (x, scale_name, divide) = match div.op_type.as_str() {
        "Div" => (&div.inputs[0], &div.inputs[1], true),
        "Mul" if f.scalar(&div.inputs[1]).is_some() => (&div.inputs[0], &div.inputs[1], false),
        "Mul" => (&div.inputs[1], &div.inputs[0], false),
        _ => return None,
    };
    let scale = f.scalar(scale_name)?;
    let expected = if divide {
        std::f32::consts::SQRT_2
    } else {
        std::f32::consts::FRAC_1_SQRT_2
    };
    if (scale - expected).abs() > 1e-3 {
        return None;
    }
    let erf = f.next(&div.outputs[0], "Erf")?;
    let add = f.next(&f.node(erf).outputs[0], "Add")?;
    let one = f.scalar(f.other(f.node(add), &f.node(erf).outputs[0])?)?;
    // x * (erf + 1): x is read by the Div too, so it has two readers.
    let add_out = &f.node(add).outputs[0];
    let mul = f.next(add_out, "Mul")?;
    if f.other(f.node(mul), add_out)? != x {
        return None;
    }
    let mul_out = &f.node(mul).outputs[0];
    let half_node = f.next(mul_out, "Mul")?;
    let half = f.scalar(f.other(f.node(half_node), mul_out)?)?;
    Some((
        vec![first, erf, add, mul, half_node],
        Gelu {
            scale,
            divide,
            one,
            half,
        },
    ))
}

/// A GELU chain reading `value` (twice: its Div, and its Mul by erf + 1),
/// when `value` has no other reader.
fn gelu_after(f: &Facts, value: &str) -> Option<(Vec<usize>, Gelu)> {
    if f.readers.get(value) != Some(&2) {
        return None;
    }
    f.graph.nodes.iter().enumerate().find_map(|(i, m)| {
        let reads = m.domain.is_empty()
            && matches!(m.op_type.as_str(), "Div" | "Mul")
            && m.inputs.iter().any(|x| x == value);
        if reads {
            gelu_chain(f, i)
        } else {
            None
        }
    })
}

/// The plan: the graph's nodes in `order`, with fusable chains fused.
pub fn plan(graph: &Graph, order: &[usize]) -> Vec<Planned> {
    let f = Facts::new(graph);
    let position: HashMap<usize, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let mut taken = vec![false; graph.nodes.len()];
    // Fused chains wait for the place of their last node in the order.
    let mut waiting: HashMap<usize, Planned> = HashMap::new();
    let mut steps = Vec::with_capacity(order.len());
    for &n in order {
        if let Some(step) = waiting.remove(&n) {
            steps.push(step);
            continue;
        }
        if taken[n] {
            continue;
        }
        let node = &graph.nodes[n];
        let fused = if !node.domain.is_empty() || !well_formed(node) {
            None
        } else {
            match node.op_type.as_str() {
                "MatMul" => fuse_matmul_bias(&f, n).or_else(|| fuse_attention(&f, n)),
                "MatMulInteger" => fuse_matmul_integer(&f, n),
                "Gather" => fuse_gather_dequantize(&f, n),
                "Abs" => fuse_row_quantize(&f, n),
                "Add" => fuse_add_layer_norm(&f, n),
                "Div" | "Mul" => fuse_gelu(&f, n).or_else(|| fuse_softmax(&f, n)),
                _ => None,
            }
        };
        match fused {
            // A chain runs where the last of its nodes in the order would:
            // by then every value it reads from outside is computed (each
            // was an input of one of its nodes), and nothing else reads the
            // values inside it.
            Some(step) if step.nodes.iter().all(|&m| !taken[m]) => {
                for &m in &step.nodes {
                    taken[m] = true;
                }
                let last = *step
                    .nodes
                    .iter()
                    .max_by_key(|&&m| position[&m])
                    .unwrap_or(&n);
                if last == n {
                    steps.push(step);
                } else {
                    waiting.insert(last, step);
                }
            }
            _ => {
                taken[n] = true;
                steps.push(Planned::single(graph, n));
            }
        }
    }
    steps
}

fn fuse_gelu(f: &Facts, n: usize) -> Option<Planned> {
    let (nodes, gelu) = gelu_chain(f, n)?;
    let div = f.node(n);
    let x = if div.op_type == "Mul" && f.scalar(&div.inputs[1]).is_none() {
        div.inputs[1].clone()
    } else {
        div.inputs[0].clone()
    };
    Some(Planned {
        outputs: f.node(*nodes.last()?).outputs.clone(),
        nodes,
        fused: Some(("Gelu (fused)", Box::new(FusedGelu { gelu }))),
        inputs: vec![x],
    })
}

/// Add(a, b) -> LayerNormalization, the Add read by nothing else (the
/// residual connection of a transformer block): each row summed and
/// normalised in one pass, the sum never written out whole.
fn fuse_add_layer_norm(f: &Facts, n: usize) -> Option<Planned> {
    let add = f.node(n);
    let ln = f.next(&add.outputs[0], "LayerNormalization")?;
    let norm = f.node(ln);
    // The sum must be LN's input X (not its scale or bias), and only LN's
    // first output (Y) may be used.
    if norm.inputs.first()? != &add.outputs[0]
        || norm.inputs.iter().skip(1).any(|i| i == &add.outputs[0])
        || norm.outputs.iter().skip(1).any(|o| !o.is_empty())
    {
        return None;
    }
    let attribute = |name: &str| norm.attributes.iter().find(|a| a.name == name);
    let axis = attribute("axis").map_or(-1, |a| a.i);
    let epsilon = attribute("epsilon").map_or(1e-5, |a| a.f) as f64;
    let mut inputs = vec![add.inputs[0].clone(), add.inputs[1].clone()];
    inputs.extend(norm.inputs.iter().skip(1).cloned());
    Some(Planned {
        nodes: vec![n, ln],
        fused: Some((
            "Add+LayerNormalization (fused)",
            Box::new(AddLayerNorm {
                norm: ops::tensorops::LayerNormalization { axis, epsilon },
            }),
        )),
        inputs,
        outputs: vec![norm.outputs[0].clone()],
    })
}

struct AddLayerNorm {
    norm: ops::tensorops::LayerNormalization,
}

impl AddLayerNorm {
    /// Both addends float32 on the CPU with the same shape, normalised over
    /// the last axis with a scale (and bias) per column.
    fn on_cpu(
        &self,
        a: &Tensor,
        b: &Tensor,
        scale: &Tensor,
        bias: Option<&Tensor>,
    ) -> Option<Result<Tensor, String>> {
        let cols = *a.dims().last()?;
        let last_axis = self.norm.axis == -1 || self.norm.axis == a.rank() as i64 - 1;
        let per_column = |t: &Tensor| kernels::on_cpu(t, DType::F32) && t.elem_count() == cols;
        if a.dims() != b.dims()
            || cols == 0
            || !last_axis
            || !kernels::on_cpu(a, DType::F32)
            || !kernels::on_cpu(b, DType::F32)
            || !per_column(scale)
            || !bias.is_none_or(per_column)
        {
            return None;
        }
        let gamma = kernels::with_slice::<f32, _>(scale, |v| v.to_vec())?;
        let beta = match bias {
            Some(t) => Some(kernels::with_slice::<f32, _>(t, |v| v.to_vec())?),
            None => None,
        };
        let epsilon = self.norm.epsilon as f32;
        let out = kernels::with_slice::<f32, _>(a, |av| {
            kernels::with_slice::<f32, _>(b, |bv| {
                // Runs of rows on the threads, each row summed and
                // normalised in cache; the output is never zero-filled first
                // (on these shapes the pass is bound by memory).
                // SAFETY: for_row_runs hands every row of the buffer to
                // exactly one run, which writes all of it.
                unsafe {
                    kernels::written_by(av.len(), |out: &mut [f32]| {
                        kernels::for_row_runs(out, cols, |first, o| {
                            let at = first * cols..first * cols + o.len();
                            rows::add_layer_norm_rows(
                                &av[at.clone()],
                                &bv[at],
                                o,
                                &gamma,
                                beta.as_deref(),
                                epsilon,
                            );
                        })
                    })
                    .0
                }
            })
        })??;
        Some(kernels::tensor_from(out, a.dims()))
    }
}

impl Op for AddLayerNorm {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let (a, b, scale) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        let bias = optional(inputs, 3)?;
        if let Some(y) = self.on_cpu(a, b, scale, bias) {
            return Ok(vec![Value::Tensor(y?)]);
        }
        // Otherwise the two operators one after the other.
        let sum = Value::Tensor(ops::elementwise::arith(kernels::rows::Arith::Add, a, b)?);
        let mut rest: Vec<Option<&Value>> = vec![Some(&sum)];
        rest.extend(inputs.iter().skip(2).copied());
        let mut outputs = self.norm.run(&rest)?;
        outputs.truncate(1);
        Ok(outputs)
    }
}

/// MatMul(A, W) + bias, W a 2-D weight, bias a 1-D weight of W's columns;
/// a GELU chain after it joins too.
fn fuse_matmul_bias(f: &Facts, n: usize) -> Option<Planned> {
    let mm = f.node(n);
    let (a, w) = (mm.inputs.first()?, mm.inputs.get(1)?);
    if !f.is_initializer(w) {
        return None;
    }
    let add = f.next(&mm.outputs[0], "Add")?;
    let bias = f.other(f.node(add), &mm.outputs[0])?;
    let (w_dims, bias_dims) = (f.initializer_dims(w)?, f.initializer_dims(bias)?);
    // The fused kernel is float32's.
    if !f.float32_initializer(w) || !f.float32_initializer(bias) {
        return None;
    }
    // One bias per column: [n], or [1, n] as scikit-learn exports write it.
    let per_column =
        bias_dims.last() == w_dims.get(1) && bias_dims.iter().rev().skip(1).all(|&d| d == 1);
    if w_dims.len() != 2 || bias_dims.is_empty() || bias_dims.len() > 2 || !per_column {
        return None;
    }
    let mut nodes = vec![n, add];
    let add_out = &f.node(add).outputs[0];
    let after = match gelu_after(f, add_out) {
        Some((chain, g)) => {
            nodes.extend(chain);
            Some(After::Gelu(g))
        }
        None => f.next(add_out, "Relu").map(|relu| {
            nodes.push(relu);
            After::Relu
        }),
    };
    Some(Planned {
        outputs: f.node(*nodes.last()?).outputs.clone(),
        inputs: vec![a.clone(), w.clone(), bias.to_string()],
        fused: Some((
            match after {
                Some(After::Gelu(_)) => "MatMul+Add+Gelu (fused)",
                Some(After::Relu) => "MatMul+Add+Relu (fused)",
                None => "MatMul+Add (fused)",
            },
            Box::new(MatMulBias {
                matmul: Default::default(),
                after,
            }),
        )),
        nodes,
    })
}

/// MatMulInteger -> Cast(float) -> Mul(scale) [-> Add(bias)].
/// Gather(T, ids) -> DequantizeLinear(scale, zero point), T a 2-D 8-bit
/// weight (a quantized embedding table) and one scale: the rows gathered
/// and dequantized in one pass, the table kept as its bytes.
fn fuse_gather_dequantize(f: &Facts, n: usize) -> Option<Planned> {
    use candle_onnx::onnx::tensor_proto::DataType;
    let gather = f.node(n);
    let (table, ids) = (gather.inputs.first()?, gather.inputs.get(1)?);
    let axis = gather
        .attributes
        .iter()
        .find(|a| a.name == "axis")
        .map_or(0, |a| a.i);
    let t = f.graph.initializers.iter().find(|t| &t.name == table)?;
    let signed = match DataType::try_from(t.data_type).ok()? {
        DataType::Int8 => true,
        DataType::Uint8 => false,
        _ => return None,
    };
    if axis != 0 || t.dims.len() != 2 {
        return None;
    }
    let dq = f.next(gather.outputs.first()?, "DequantizeLinear")?;
    let dq_node = f.node(dq);
    // One scale (and zero point), or one per column of the table along the
    // gathered rows' last axis (as mlctl quantize writes embedding tables).
    let cols = t.dims[1] as usize;
    let dq_axis = dq_node
        .attributes
        .iter()
        .find(|a| a.name == "axis")
        .map_or(1, |a| a.i);
    let scale = f.constant(dq_node.inputs.get(1)?)?;
    if scale.dtype() != DType::F32 {
        return None;
    }
    let scale: Vec<f32> = scale.flatten_all().ok()?.to_vec1().ok()?;
    let zero_point: Vec<f32> = match dq_node.inputs.get(2).filter(|z| !z.is_empty()) {
        None => vec![0.0],
        Some(z) => kernels::small_ints(&f.constant(z)?)?
            .into_iter()
            .map(|z| z as f32)
            .collect(),
    };
    let fits = |len: usize| len == 1 || (len == cols && dq_axis == -1 && scale.len() == cols);
    if !fits(scale.len()) || !fits(zero_point.len()) {
        return None;
    }
    Some(Planned {
        nodes: vec![n, dq],
        fused: Some((
            "Gather+DequantizeLinear (fused)",
            Box::new(GatherDequantized {
                scale,
                zero_point,
                signed,
                table: std::sync::OnceLock::new(),
            }),
        )),
        inputs: vec![table.clone(), ids.clone()],
        outputs: dq_node.outputs.clone(),
    })
}

/// Rows of an 8-bit table, (value - zero point) * scale in float32 (as the
/// DequantizeLinear fast path computes them), with one scale and zero point
/// or one per column.
struct GatherDequantized {
    scale: Vec<f32>,
    zero_point: Vec<f32>,
    signed: bool,
    /// The table as bytes (int8 as its bits) and its row length, once
    /// pinned at load time.
    table: std::sync::OnceLock<(Vec<u8>, usize)>,
}

impl GatherDequantized {
    fn bytes_of(&self, t: &Tensor) -> Option<(Vec<u8>, usize)> {
        let [_, cols] = t.dims() else { return None };
        let bytes = match t.dtype() {
            DType::U8 => kernels::with_slice::<u8, _>(t, |v| v.to_vec())?,
            // int8, held in 16 bits: its low byte is its bits.
            DType::I16 => {
                kernels::with_slice::<i16, _>(t, |v| v.iter().map(|&x| x as u8).collect())?
            }
            _ => return None,
        };
        Some((bytes, *cols))
    }
}

impl Op for GatherDequantized {
    fn pin_weights(&self, inputs: &[Option<&Value>], _present: &[bool]) -> Vec<usize> {
        let table = match inputs.first().copied().flatten() {
            Some(Value::Tensor(t)) if kernels::on_cpu(t, t.dtype()) => self.bytes_of(t),
            _ => None,
        };
        match table {
            Some(table) if self.table.get().is_none() => {
                let _ = self.table.set(table);
                vec![0]
            }
            _ => Vec::new(),
        }
    }

    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let (t, ids) = (input(inputs, 0)?, input(inputs, 1)?);
        let unpinned;
        let (bytes, cols) = match self.table.get() {
            Some((bytes, cols)) => (bytes.as_slice(), *cols),
            None => {
                unpinned = self.bytes_of(t).ok_or("the table is not an 8-bit matrix")?;
                (unpinned.0.as_slice(), unpinned.1)
            }
        };
        let rows = bytes.len() / cols.max(1);
        let ids: Vec<i64> = ids
            .to_dtype(DType::I64)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .map_err(ops::err)?;
        let per_column = |v: &[f32]| match v {
            [one] => vec![*one; cols],
            v => v.to_vec(),
        };
        let (scale, zero_point) = (per_column(&self.scale), per_column(&self.zero_point));
        if scale.len() != cols || zero_point.len() != cols {
            return Err(format!(
                "{} scales for a table of {cols} columns",
                self.scale.len()
            ));
        }
        // SAFETY: every row is written below, or the error returned drops
        // the buffer unread.
        let (out, done) = unsafe {
            kernels::written_by(ids.len() * cols, |out: &mut [f32]| {
                for (row, &id) in out.chunks_mut(cols.max(1)).zip(&ids) {
                    let i = if id < 0 { id + rows as i64 } else { id };
                    if i < 0 || i >= rows as i64 {
                        return Err(format!("index {id} is out of range for {rows} rows"));
                    }
                    let source = &bytes[i as usize * cols..(i as usize + 1) * cols];
                    // The signedness decided once per row, so the loop
                    // vectorizes.
                    let values = row.iter_mut().zip(source).zip(&zero_point).zip(&scale);
                    if self.signed {
                        values.for_each(|(((o, &b), z), s)| *o = (b as i8 as f32 - z) * s);
                    } else {
                        values.for_each(|(((o, &b), z), s)| *o = (b as f32 - z) * s);
                    }
                }
                Ok(())
            })
        };
        done?;
        let mut dims = input(inputs, 1)?.dims().to_vec();
        dims.push(cols);
        Ok(vec![Value::Tensor(kernels::tensor_from(out, &dims)?)])
    }
}

fn fuse_matmul_integer(f: &Facts, n: usize) -> Option<Planned> {
    let mmi = f.node(n);
    let cast = f.next(&mmi.outputs[0], "Cast")?;
    let to = f.node(cast).attributes.iter().find(|a| a.name == "to")?.i;
    if to != 1 {
        return None;
    }
    let cast_out = &f.node(cast).outputs[0];
    let mul = f.next(cast_out, "Mul")?;
    let mut nodes = vec![n, cast, mul];
    let mut inputs = mmi.inputs.clone();
    inputs.resize(4, String::new());
    inputs.push(f.other(f.node(mul), cast_out)?.to_string());
    let mut last = f.node(mul).outputs[0].clone();
    // A second scale (rows, then columns: activations quantized per row).
    let mut second = String::new();
    if let Some(mul2) = f.next(&last, "Mul") {
        if let Some(s2) = f
            .other(f.node(mul2), &last)
            .filter(|s2| f.is_initializer(s2))
        {
            second = s2.to_string();
            nodes.push(mul2);
            last = f.node(mul2).outputs[0].clone();
        }
    }
    inputs.push(second);
    if let Some(add) = f.next(&last, "Add") {
        let bias = f.other(f.node(add), &last)?;
        if f.initializer_dims(bias).is_some_and(|d| d.len() == 1) {
            nodes.push(add);
            inputs.push(bias.to_string());
            last = f.node(add).outputs[0].clone();
        }
    }
    // A GELU chain reading the result (twice: its Div and its Mul) joins.
    let gelu = gelu_after(f, &last).map(|(chain, g)| {
        nodes.extend(chain);
        g
    });
    Some(Planned {
        outputs: f.node(*nodes.last()?).outputs.clone(),
        inputs,
        fused: Some((
            if gelu.is_some() {
                "MatMulInteger+Cast+Mul+Gelu (fused)"
            } else {
                "MatMulInteger+Cast+Mul (fused)"
            },
            Box::new(MatMulIntegerToFloat {
                matmul: Default::default(),
                gelu,
            }),
        )),
        nodes,
    })
}

/// Per-row symmetric quantization as `mlctl quantize` writes it:
/// `scale = Max(Div(ReduceMax(Abs(x), -1), 127), tiny)`,
/// `q = Cast<uint8>(Clip(Add(Round(Div(x, scale)), 128), 1, 255))` (zero
/// point 128); the step gives q and scale.
fn fuse_row_quantize(f: &Facts, n: usize) -> Option<Planned> {
    let abs = f.node(n);
    let x = abs.inputs.first()?;
    let reduce = f.next(&abs.outputs[0], "ReduceMax")?;
    let r = f.node(reduce);
    let keepdims = r
        .attributes
        .iter()
        .find(|a| a.name == "keepdims")
        .map_or(1, |a| a.i);
    let axes: Vec<i64> = match r.inputs.get(1).filter(|s| !s.is_empty()) {
        Some(name) => {
            let t = f.constant(name)?;
            t.to_dtype(DType::I64)
                .ok()?
                .flatten_all()
                .ok()?
                .to_vec1()
                .ok()?
        }
        None => r.attributes.iter().find(|a| a.name == "axes")?.ints.clone(),
    };
    if keepdims != 1 || axes != [-1] {
        return None;
    }
    let div = f.next(&r.outputs[0], "Div")?;
    let limit = f.scalar(f.node(div).inputs.get(1)?)?;
    let max = f.next(&f.node(div).outputs[0], "Max")?;
    let floor = f.scalar(f.other(f.node(max), &f.node(div).outputs[0])?)?;
    let scale = &f.node(max).outputs[0];
    // The scale is read by the division of x and by the rescaling after
    // the product: find the division.
    let divide = f.graph.nodes.iter().position(|m| {
        m.domain.is_empty()
            && m.op_type == "Div"
            && m.inputs.len() == 2
            && m.inputs[0] == *x
            && m.inputs[1] == *scale
    })?;
    let round = f.next(&f.node(divide).outputs[0], "Round")?;
    let add = f.next(&f.node(round).outputs[0], "Add")?;
    let offset = f.scalar(f.other(f.node(add), &f.node(round).outputs[0])?)?;
    let clip = f.next(&f.node(add).outputs[0], "Clip")?;
    let c = f.node(clip);
    let (lo, hi) = (f.scalar(c.inputs.get(1)?)?, f.scalar(c.inputs.get(2)?)?);
    let cast = f.next(&c.outputs[0], "Cast")?;
    let to = f.node(cast).attributes.iter().find(|a| a.name == "to")?.i;
    let fits = to == 2
        && offset == 128.0
        && lo == offset - limit
        && hi == offset + limit
        && (1.0..=127.0).contains(&limit);
    if !fits {
        return None;
    }
    Some(Planned {
        nodes: vec![n, reduce, div, max, divide, round, add, clip, cast],
        fused: Some((
            "per-row quantize (fused)",
            Box::new(RowQuantize { limit, floor }),
        )),
        inputs: vec![x.clone()],
        outputs: vec![f.node(cast).outputs[0].clone(), scale.clone()],
    })
}

/// Attention: `MatMul(Softmax(Add(Div(MatMul(q, kt), c), mask)), v)`, the
/// softmax over the last axis (opset 13 and later), run head by head
/// without writing the scores of every head to memory.
fn fuse_attention(f: &Facts, n: usize) -> Option<Planned> {
    let scores = f.node(n);
    let (q, kt) = (scores.inputs.first()?, scores.inputs.get(1)?);
    if f.is_initializer(kt) {
        return None;
    }
    let div = f.next(&scores.outputs[0], "Div")?;
    if f.node(div).inputs.first() != Some(&scores.outputs[0]) {
        return None;
    }
    let c = f.scalar(f.node(div).inputs.get(1)?)?;
    let add = f.next(&f.node(div).outputs[0], "Add")?;
    let mask = f.other(f.node(add), &f.node(div).outputs[0])?.to_string();
    let softmax = f.next(&f.node(add).outputs[0], "Softmax")?;
    let axis = f
        .node(softmax)
        .attributes
        .iter()
        .find(|a| a.name == "axis")
        .map_or(-1, |a| a.i);
    if axis != -1 || f.graph.opset("") < 13 {
        return None;
    }
    let probabilities = &f.node(softmax).outputs[0];
    let context = f.next(probabilities, "MatMul")?;
    if f.node(context).inputs.first() != Some(probabilities) {
        return None;
    }
    let v = f.node(context).inputs.get(1)?.clone();
    Some(Planned {
        nodes: vec![n, div, add, softmax, context],
        fused: Some(("attention (fused)", Box::new(Attention { divisor: c }))),
        inputs: vec![q.clone(), kt.clone(), mask, v],
        outputs: f.node(context).outputs.clone(),
    })
}

/// Softmax(Add(Div(x, c), mask)) over the last axis (opset 13 and later).
fn fuse_softmax(f: &Facts, n: usize) -> Option<Planned> {
    let div = f.node(n);
    if div.op_type != "Div" || div.inputs.len() != 2 {
        return None;
    }
    let c = f.scalar(&div.inputs[1])?;
    let add = f.next(&div.outputs[0], "Add")?;
    let mask = f.other(f.node(add), &div.outputs[0])?.to_string();
    let softmax = f.next(&f.node(add).outputs[0], "Softmax")?;
    let axis = f
        .node(softmax)
        .attributes
        .iter()
        .find(|a| a.name == "axis")
        .map_or(-1, |a| a.i);
    if axis != -1 || f.graph.opset("") < 13 {
        return None;
    }
    Some(Planned {
        nodes: vec![n, add, softmax],
        fused: Some((
            "Div+Add+Softmax (fused)",
            Box::new(ScaledMaskedSoftmax { divisor: c }),
        )),
        inputs: vec![div.inputs[0].clone(), mask],
        outputs: f.node(softmax).outputs.clone(),
    })
}

#[derive(Debug, Clone, Copy)]
struct Gelu {
    scale: f32,
    divide: bool,
    one: f32,
    half: f32,
}

impl Gelu {
    /// The chain's own operations, in its order.
    fn apply(&self, v: &mut [f32]) {
        rows::gelu_in_place(v, self.scale, self.divide, self.one, self.half);
    }
}

struct FusedGelu {
    gelu: Gelu,
}

impl Op for FusedGelu {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let g = self.gelu;
        let mut y = vec![0f32; x.elem_count()];
        kernels::with_slice::<f32, _>(x, |v| {
            rows::gelu_into(v, &mut y, g.scale, g.divide, g.one, g.half)
        })
        .ok_or("fused GELU needs float32 on the CPU")?;
        Ok(vec![Value::Tensor(kernels::tensor_from(y, x.dims())?)])
    }
}

/// The activation a fused float product applies to its finished rows.
#[derive(Clone, Copy)]
enum After {
    Gelu(Gelu),
    /// max(0, x), NaN kept (as the Relu operator computes it).
    Relu,
}

impl After {
    fn apply(self, row: &mut [f32]) {
        match self {
            After::Gelu(g) => g.apply(row),
            After::Relu => row
                .iter_mut()
                .for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v }),
        }
    }
}

struct MatMulBias {
    matmul: ops::linalg::MatMul,
    after: Option<After>,
}

impl Op for MatMulBias {
    fn pin_weights(&self, inputs: &[Option<&Value>], _present: &[bool]) -> Vec<usize> {
        self.matmul.pin_weight(inputs.get(1).copied().flatten())
    }

    fn reads_by_columns(&self, input: usize) -> bool {
        input == 0
    }

    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let (a, w, bias) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        let (k, n) = match w.dims() {
            [k, n] => (*k, *n),
            _ => return Err("the weight is not a matrix".into()),
        };
        let packed = self
            .matmul
            .packed
            .get_or(w, || {
                kernels::with_slice::<f32, _>(w, |v| PackedB::pack(v, k, n, n, 1))
            })
            .ok_or("fused MatMul needs float32 on the CPU")?;
        // The activation inside the product, on each finished stretch of rows.
        let after = self.after.map(|g| move |row: &mut [f32]| g.apply(row));
        let activation: kernels::Activation = after.as_ref().map(|f| f as _);
        let (v, dims) = kernels::with_slice::<f32, _>(bias, |b| {
            ops::linalg::matmul_weight_values(a, &packed, Some(b), activation)
        })
        .flatten()
        .ok_or_else(|| format!("cannot multiply {:?} by {:?}", a.dims(), w.dims()))?;
        let y = kernels::tensor_from(v, &dims)?;
        Ok(vec![Value::Tensor(y)])
    }
}

struct MatMulIntegerToFloat {
    matmul: ops::quant::MatMulInteger,
    gelu: Option<Gelu>,
}

/// How a scale applies to an m x n product: one value, one per column, or
/// one per row.
fn scale_kind(t: &Tensor, rows: usize, n: usize) -> Option<(Vec<f32>, ops::quant::ScaleKind)> {
    use ops::quant::ScaleKind;
    let v = kernels::with_slice::<f32, _>(t, |v| v.to_vec())?;
    let last = t.dims().last().copied().unwrap_or(1);
    match v.len() {
        1 => Some((v, ScaleKind::One)),
        len if len == n && last == n => Some((v, ScaleKind::PerColumn)),
        len if len == rows && last == 1 => Some((v, ScaleKind::PerRow)),
        _ => None,
    }
}

impl Op for MatMulIntegerToFloat {
    fn pin_weights(&self, inputs: &[Option<&Value>], present: &[bool]) -> Vec<usize> {
        let n = inputs.len().min(4);
        self.matmul
            .pin_weights(&inputs[..n], &present[..present.len().min(4)])
    }

    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let first = input(inputs, 4)?;
        let second = optional(inputs, 5)?;
        let bias = optional(inputs, 6)?;
        // Straight to floats in the integer kernel's tiles, when the scales
        // and the bias have shapes it takes.
        if let Some((rows, n)) = ops::quant::MatMulInteger::product_shape(inputs) {
            let first_kind = scale_kind(first, rows, n);
            let second_kind = second.map(|s| scale_kind(s, rows, n));
            let bias_values = bias.and_then(|b| kernels::with_slice::<f32, _>(b, |b| b.to_vec()));
            if let (Some(first), true, true) = (
                first_kind,
                !matches!(second_kind, Some(None)),
                bias.is_none() || bias_values.is_some(),
            ) {
                let to_float = ops::quant::ToFloat {
                    first,
                    second: second_kind.flatten(),
                    bias: bias_values,
                    gelu: self.gelu.map(|g| (g.scale, g.divide, g.one, g.half)),
                };
                if let Some(y) = self.matmul.on_cpu_to(&inputs[..4], Some(&to_float))? {
                    return Ok(vec![Value::Tensor(y)]);
                }
            }
        }
        let sums = self.matmul.run(&inputs[..4])?;
        self.unfused(sums[0].tensor()?, first, second, bias)
    }
}

impl MatMulIntegerToFloat {
    /// The nodes' own operations one after the other, for scales of other
    /// shapes.
    fn unfused(
        &self,
        sums: &Tensor,
        first: &Tensor,
        second: Option<&Tensor>,
        bias: Option<&Tensor>,
    ) -> OpResult {
        let floats = sums.to_dtype(DType::F32).map_err(ops::err)?;
        let mut y = ops::elementwise::arith(rows::Arith::Mul, &floats, first)?;
        if let Some(s) = second {
            y = ops::elementwise::arith(rows::Arith::Mul, &y, s)?;
        }
        if let Some(b) = bias {
            y = ops::elementwise::arith(rows::Arith::Add, &y, b)?;
        }
        if let Some(g) = &self.gelu {
            let mut v =
                kernels::with_slice::<f32, _>(&y, |v| v.to_vec()).ok_or("not on the CPU")?;
            g.apply(&mut v);
            y = kernels::tensor_from(v, y.dims())?;
        }
        Ok(vec![Value::Tensor(y)])
    }
}

struct RowQuantize {
    limit: f32,
    floor: f32,
}

impl Op for RowQuantize {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let row = *x.dims().last().ok_or("quantizing a scalar")?;
        let (q, scales) = kernels::with_slice::<f32, _>(x, |v| {
            rows::quantize_rows_u8(v, row.max(1), self.limit, self.floor)
        })
        .ok_or("per-row quantization needs float32 on the CPU")?;
        let mut scale_dims = x.dims().to_vec();
        *scale_dims.last_mut().expect("rank checked above") = 1;
        Ok(vec![
            Value::Tensor(kernels::tensor_from(q, x.dims())?),
            Value::Tensor(kernels::tensor_from(scales, &scale_dims)?),
        ])
    }
}

struct ScaledMaskedSoftmax {
    divisor: f32,
}

impl Op for ScaledMaskedSoftmax {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let mask = input(inputs, 1)?;
        let row = *x.dims().last().ok_or("softmax of a scalar")?;
        let fits = mask.rank() <= x.rank()
            && mask
                .dims()
                .iter()
                .rev()
                .zip(x.dims().iter().rev())
                .all(|(m, d)| *m == 1 || m == d);
        if !fits || !kernels::on_cpu(mask, DType::F32) {
            return Err(format!(
                "mask of shape {:?} does not broadcast to scores of shape {:?}",
                mask.dims(),
                x.dims()
            ));
        }
        let (offsets, whole_rows) = ops::elementwise::row_offsets(x.dims(), mask.dims());
        let mut out = vec![0f32; x.elem_count()];
        kernels::with_slice::<f32, _>(x, |v| {
            kernels::with_slice::<f32, _>(mask, |m| {
                rows::scaled_masked_softmax(v, m, &offsets, whole_rows, row, self.divisor, &mut out)
            })
        })
        .flatten()
        .ok_or("fused softmax needs float32 on the CPU")?;
        Ok(vec![Value::Tensor(kernels::tensor_from(out, x.dims())?)])
    }
}

struct Attention {
    divisor: f32,
}

impl Op for Attention {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let (q, kt, mask, v) = (
            input(inputs, 0)?,
            input(inputs, 1)?,
            input(inputs, 2)?,
            input(inputs, 3)?,
        );
        let (qd, kd, vd) = (q.dims(), kt.dims(), v.dims());
        let r = qd.len();
        let fits = r >= 3
            && kd.len() == r
            && vd.len() == r
            && qd[..r - 2] == kd[..r - 2]
            && qd[..r - 2] == vd[..r - 2]
            && qd[r - 1] == kd[r - 2]
            && kd[r - 1] == vd[r - 2]
            && [q, kt, mask, v]
                .iter()
                .all(|t| kernels::on_cpu(t, DType::F32));
        if !fits {
            return Err(format!(
                "attention of q {qd:?}, k^T {kd:?}, v {vd:?} and mask {:?} is not supported",
                mask.dims()
            ));
        }
        let (m, d, n, dv) = (qd[r - 2], qd[r - 1], kd[r - 1], vd[r - 1]);
        let batch_dims = &qd[..r - 2];
        let batches: usize = batch_dims.iter().product();
        let mut score_dims = qd.to_vec();
        score_dims[r - 1] = n;
        let mask_fits = mask.rank() <= r
            && mask
                .dims()
                .iter()
                .rev()
                .zip(score_dims.iter().rev())
                .all(|(a, b)| *a == 1 || a == b);
        if !mask_fits {
            return Err(format!(
                "mask of shape {:?} does not broadcast to scores of shape {score_dims:?}",
                mask.dims()
            ));
        }
        let (offsets, whole_rows) = ops::elementwise::row_offsets(&score_dims, mask.dims());
        let mut out_dims = qd.to_vec();
        out_dims[r - 1] = dv;
        // Rows of q must be contiguous (a copy otherwise); k^T and v are read
        // through their strides.
        let q = if q.stride()[r - 1] == 1 {
            q.clone()
        } else {
            q.contiguous().map_err(ops::err)?
        };
        // SAFETY: every head's last product writes its m x dv values (or the
        // buffer is dropped unread when an operand cannot be read).
        let (out, done) = unsafe {
            kernels::written_by(batches * m * dv, |out: &mut [f32]| {
                kernels::with_strided::<f32, _>(&q, |qv, q0, qs| {
                    kernels::with_strided::<f32, _>(kt, |kv, k0, ks| {
                        kernels::with_strided::<f32, _>(v, |vv, v0, vs| {
                            kernels::with_slice::<f32, _>(mask, |mv| {
                                let start = |i: usize, base: usize, strides: &[usize]| {
                                    kernels::batch_start(i, base, batch_dims, strides)
                                };
                                // Scores, probabilities and the packed keys and values go
                                // to buffers made once per thread's run of heads: each is
                                // written whole before it is read, so one set serves every
                                // head.
                                let buffers = || {
                                    (
                                        vec![0f32; m * n],
                                        vec![0f32; m * n],
                                        PackedB::empty(),
                                        PackedB::empty(),
                                    )
                                };
                                let head =
                            |(scores, probabilities, keys, values): &mut (
                                Vec<f32>,
                                Vec<f32>,
                                PackedB,
                                PackedB,
                            ),
                             (i, o): (usize, &mut [f32])| {
                                keys.repack(
                                    &kv[start(i, k0, ks)..],
                                    d,
                                    n,
                                    ks[r - 2],
                                    ks[r - 1],
                                );
                                kernels::sgemm::sgemm(
                                    m,
                                    &qv[start(i, q0, qs)..],
                                    qs[r - 2],
                                    keys,
                                    None,
                                    None,
                                    scores,
                                    false,
                                );
                                rows::scaled_masked_softmax(
                                    scores,
                                    mv,
                                    &offsets[i * m..(i + 1) * m],
                                    whole_rows,
                                    n,
                                    self.divisor,
                                    probabilities,
                                );
                                values.repack(
                                    &vv[start(i, v0, vs)..],
                                    n,
                                    dv,
                                    vs[r - 2],
                                    vs[r - 1],
                                );
                                kernels::sgemm::sgemm(
                                    m,
                                    probabilities,
                                    n,
                                    values,
                                    None,
                                    None,
                                    o,
                                    false,
                                );
                            };
                                use rayon::prelude::*;
                                if kernels::threads() > 1 && batches > 1 {
                                    out.par_chunks_mut((m * dv).max(1))
                                        .enumerate()
                                        .for_each_init(buffers, head);
                                } else {
                                    let mut own = buffers();
                                    out.chunks_mut((m * dv).max(1))
                                        .enumerate()
                                        .for_each(|unit| head(&mut own, unit));
                                }
                            })
                        })
                    })
                })
                .flatten()
                .flatten()
                .flatten()
            })
        };
        done.ok_or("attention needs float32 on the CPU")?;
        Ok(vec![Value::Tensor(kernels::tensor_from(out, &out_dims)?)])
    }
}
