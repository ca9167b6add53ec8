//! Operators of shape arithmetic and indexing, as transformer exports use
//! them: Shape, Constant, ConstantOfShape, Gather, Slice, Expand, Where,
//! Equal, Clip, Erf, LayerNormalization.

use candle_core::{DType, Device, Shape, Tensor};
use candle_onnx::onnx::AttributeProto;

use super::{axis, err, input, int_values, optional, Attrs, Op, OpResult, Value};
use crate::runtime::kernels::{self, rows};
use crate::runtime::tensor::from_proto;

pub struct ShapeOf {
    pub start: i64,
    pub end: Option<i64>,
}

impl Op for ShapeOf {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let dims: Vec<i64> = x.dims().iter().map(|&d| d as i64).collect();
        let r = dims.len() as i64;
        let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let (s, e) = (clamp(self.start), clamp(self.end.unwrap_or(r)));
        let part = if s < e {
            dims[s..e].to_vec()
        } else {
            Vec::new()
        };
        let n = part.len();
        Ok(vec![Value::Tensor(
            Tensor::from_vec(part, n, x.device()).map_err(err)?,
        )])
    }
}

/// A constant from the node's attributes, built once.
pub struct Constant(pub Tensor);

impl Constant {
    pub fn new(attributes: &[AttributeProto]) -> Result<Self, String> {
        let a = Attrs(attributes);
        let cpu = Device::Cpu;
        let e = err;
        let t = if let Some(t) = attributes
            .iter()
            .find(|x| x.name == "value")
            .and_then(|x| x.t.as_ref())
        {
            from_proto(t, &cpu)?
        } else if let Some(v) = attributes.iter().find(|x| x.name == "value_float") {
            Tensor::new(v.f, &cpu).map_err(e)?
        } else if let Some(v) = attributes.iter().find(|x| x.name == "value_int") {
            Tensor::new(v.i, &cpu).map_err(e)?
        } else if let Some(v) = a.floats("value_floats") {
            let n = v.len();
            Tensor::from_vec(v, n, &cpu).map_err(e)?
        } else if let Some(v) = a.ints("value_ints") {
            let n = v.len();
            Tensor::from_vec(v, n, &cpu).map_err(e)?
        } else {
            return Err(
                "Constant without a supported value attribute (string and sparse values are not)"
                    .into(),
            );
        };
        Ok(Constant(t))
    }
}

impl Op for Constant {
    fn run(&self, _inputs: &[Option<&Value>]) -> OpResult {
        Ok(vec![Value::Tensor(self.0.clone())])
    }
}

pub struct ConstantOfShape {
    /// A one-element tensor; float 0 by default.
    pub value: Tensor,
}

impl ConstantOfShape {
    pub fn new(attributes: &[AttributeProto]) -> Result<Self, String> {
        let value = match attributes
            .iter()
            .find(|a| a.name == "value")
            .and_then(|a| a.t.as_ref())
        {
            Some(t) => from_proto(t, &Device::Cpu)?.flatten_all().map_err(err)?,
            None => Tensor::new(&[0f32], &Device::Cpu).map_err(err)?,
        };
        Ok(ConstantOfShape { value })
    }
}

impl Op for ConstantOfShape {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let shape_tensor = input(inputs, 0)?;
        let dims: Vec<usize> = int_values(shape_tensor)?
            .iter()
            .map(|&d| d.max(0) as usize)
            .collect();
        super::element_count(&dims)?;
        let y = self
            .value
            .to_device(shape_tensor.device())
            .and_then(|v| v.reshape(())?.broadcast_as(dims.as_slice())?.contiguous())
            .map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}

pub struct Gather {
    pub axis: i64,
}

impl Op for Gather {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let data = input(inputs, 0)?;
        let indices = input(inputs, 1)?;
        let ax = axis(self.axis, data.rank())?;
        let size = data.dims()[ax] as i64;
        let idx: Vec<i64> = int_values(indices)?;
        let mut resolved = Vec::with_capacity(idx.len());
        for i in idx {
            let j = if i < 0 { i + size } else { i };
            if j < 0 || j >= size {
                return Err(format!(
                    "index {i} is out of range for a dimension of {size}"
                ));
            }
            resolved.push(j as u32);
        }
        let mut dims: Vec<usize> = data.dims()[..ax].to_vec();
        dims.extend_from_slice(indices.dims());
        dims.extend_from_slice(&data.dims()[ax + 1..]);
        let (outer, inner) = (
            data.dims()[..ax].iter().product(),
            data.dims()[ax + 1..].iter().product(),
        );
        let size = size as usize;
        let fast = match data.dtype() {
            DType::F32 => kernels::with_slice::<f32, _>(data, |v| {
                kernels::tensor_from(gather_rows(v, outer, size, inner, &resolved), &dims)
            }),
            DType::I64 => kernels::with_slice::<i64, _>(data, |v| {
                kernels::tensor_from(gather_rows(v, outer, size, inner, &resolved), &dims)
            }),
            _ => None,
        };
        if let Some(y) = fast {
            return Ok(vec![Value::Tensor(y?)]);
        }
        let n = resolved.len();
        let flat = Tensor::from_vec(resolved, n, data.device()).map_err(err)?;
        let picked = data
            .contiguous()
            .and_then(|d| d.index_select(&flat, ax))
            .map_err(err)?;
        Ok(vec![Value::Tensor(
            picked.reshape(dims.as_slice()).map_err(err)?,
        )])
    }
}

/// Gather on the CPU: for each of `outer` blocks of `size` x `inner`
/// values, the `inner` values at each index, copied whole (an embedding
/// lookup is a copy of one row per token).
fn gather_rows<T: Copy>(
    data: &[T],
    outer: usize,
    size: usize,
    inner: usize,
    idx: &[u32],
) -> Vec<T> {
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for block in data.chunks(size * inner).take(outer) {
        for &j in idx {
            let at = j as usize * inner;
            out.extend_from_slice(&block[at..at + inner]);
        }
    }
    out
}

/// Expand on the CPU, `x` (dims `from`, as many as `to`, each 1 or equal)
/// broadcast to dims `to`: the longest run of trailing dims that are not
/// broadcast is copied whole, and a value broadcast along the trailing dims
/// is filled (the attention mask to the hidden size, say), instead of one
/// strided read per value.
fn expand_values<T: Copy>(x: &[T], from: &[usize], to: &[usize]) -> Vec<T> {
    let rank = to.len();
    let total: usize = to.iter().product();
    if total == 0 {
        return Vec::new();
    }
    // Trailing dims kept as they are: copied as one block per position of
    // the others. Otherwise (the last dim broadcast), trailing broadcast
    // dims: one value repeated.
    let kept = (0..rank).rev().take_while(|&a| from[a] == to[a]).count();
    let (split, copy) = if kept > 0 {
        (rank - kept, true)
    } else {
        (
            rank - (0..rank).rev().take_while(|&a| from[a] == 1).count(),
            false,
        )
    };
    let block: usize = to[split..].iter().product();
    let mut strides = vec![0usize; rank];
    let mut stride = 1;
    for a in (0..rank).rev() {
        strides[a] = stride;
        stride *= from[a];
    }
    let mut out = Vec::with_capacity(total);
    let positions: usize = to[..split].iter().product();
    for position in 0..positions {
        let (mut rest, mut start) = (position, 0);
        for a in (0..split).rev() {
            let i = rest % to[a];
            rest /= to[a];
            if from[a] != 1 {
                start += i * strides[a];
            }
        }
        if copy {
            out.extend_from_slice(&x[start..start + block]);
        } else {
            out.extend(std::iter::repeat_n(x[start], block));
        }
    }
    out
}

/// Slice's bounds when they are attributes (opset < 10).
pub struct SliceAttributes {
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
    pub axes: Option<Vec<i64>>,
}

pub struct Slice {
    /// Opset < 10: the attributes; from 10 (`None`) the inputs.
    pub attributes: Option<SliceAttributes>,
}

impl Op for Slice {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let (starts, ends, axes, steps) = match &self.attributes {
            Some(a) => (a.starts.clone(), a.ends.clone(), a.axes.clone(), None),
            None => (
                int_values(input(inputs, 1)?)?,
                int_values(input(inputs, 2)?)?,
                optional(inputs, 3)?.map(int_values).transpose()?,
                optional(inputs, 4)?.map(int_values).transpose()?,
            ),
        };
        let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err("starts, ends, axes and steps differ in length".into());
        }
        let mut y = x.clone();
        for k in 0..starts.len() {
            let ax = axis(axes[k], x.rank())?;
            let dim = x.dims()[ax] as i64;
            let step = steps[k];
            if step == 0 {
                return Err("a slice step of 0".into());
            }
            // numpy's rules: clamp into range, with different bounds for
            // negative steps.
            let fix = |v: i64, lo: i64, hi: i64| {
                let v = if v < 0 { v + dim } else { v };
                v.clamp(lo, hi)
            };
            let (start, end) = if step > 0 {
                (fix(starts[k], 0, dim), fix(ends[k], 0, dim))
            } else {
                (
                    fix(starts[k], -1, dim - 1),
                    fix(ends[k].max(-dim - 1), -1, dim - 1),
                )
            };
            let mut picks = Vec::new();
            let mut i = start;
            while (step > 0 && i < end) || (step < 0 && i > end) {
                picks.push(i as u32);
                i += step;
            }
            y = if step == 1 {
                y.narrow(ax, start as usize, picks.len()).map_err(err)?
            } else {
                let n = picks.len();
                let idx = Tensor::from_vec(picks, n, x.device()).map_err(err)?;
                y.contiguous()
                    .and_then(|y| y.index_select(&idx, ax))
                    .map_err(err)?
            };
        }
        Ok(vec![Value::Tensor(y)])
    }
}

/// numpy broadcasting of two shapes.
fn broadcast_dims(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let x = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let y = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (x, y) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        };
    }
    Ok(out)
}

pub struct Expand;

impl Op for Expand {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let shape: Vec<usize> = int_values(input(inputs, 1)?)?
            .iter()
            .map(|&d| d.max(0) as usize)
            .collect();
        let dims = broadcast_dims(x.dims(), &shape)?;
        super::element_count(&dims)?;
        let mut from = vec![1; dims.len() - x.rank()];
        from.extend_from_slice(x.dims());
        let fast = match x.dtype() {
            DType::F32 => kernels::with_slice::<f32, _>(x, |v| {
                kernels::tensor_from(expand_values(v, &from, &dims), &dims)
            }),
            DType::I64 => kernels::with_slice::<i64, _>(x, |v| {
                kernels::tensor_from(expand_values(v, &from, &dims), &dims)
            }),
            _ => None,
        };
        if let Some(y) = fast {
            return Ok(vec![Value::Tensor(y?)]);
        }
        let y = x
            .broadcast_as(Shape::from(dims))
            .and_then(|t| t.contiguous())
            .map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}

pub struct Where;

impl Op for Where {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let (c, a, b) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        let dims = broadcast_dims(&broadcast_dims(c.dims(), a.dims())?, b.dims())?;
        let expand = |t: &Tensor| t.broadcast_as(dims.as_slice()).and_then(|t| t.contiguous());
        let y = expand(c)
            .and_then(|c| c.where_cond(&expand(a)?, &expand(b)?))
            .map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}

pub struct Equal;

impl Op for Equal {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let y = input(inputs, 0)?
            .broadcast_eq(input(inputs, 1)?)
            .map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}

pub struct Clip {
    /// Opset < 11: bounds from the attributes.
    pub bounds: Option<(f32, f32)>,
}

impl Op for Clip {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let (lo, hi) = match self.bounds {
            Some((lo, hi)) => (
                Some(
                    Tensor::new(lo, x.device())
                        .and_then(|t| t.to_dtype(x.dtype()))
                        .map_err(err)?,
                ),
                Some(
                    Tensor::new(hi, x.device())
                        .and_then(|t| t.to_dtype(x.dtype()))
                        .map_err(err)?,
                ),
            ),
            None => (optional(inputs, 1)?.cloned(), optional(inputs, 2)?.cloned()),
        };
        let mut y = x.clone();
        if let Some(lo) = lo {
            y = y.broadcast_maximum(&lo).map_err(err)?;
        }
        if let Some(hi) = hi {
            y = y.broadcast_minimum(&hi).map_err(err)?;
        }
        Ok(vec![Value::Tensor(y)])
    }
}

/// Error function, element-wise (GELU in BERT exports).
pub struct Erf;

impl Op for Erf {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        super::float_only("Erf", x)?;
        if kernels::on_cpu(x, DType::F32) {
            if let Some(mut v) = kernels::with_slice::<f32, _>(x, |v| v.to_vec()) {
                rows::erf_in_place(&mut v);
                return Ok(vec![Value::Tensor(kernels::tensor_from(v, x.dims())?)]);
            }
        }
        Ok(vec![Value::Tensor(x.erf().map_err(err)?)])
    }
}

/// (x - mean) / sqrt(var + epsilon) * scale + bias over the axes from `axis`.
pub struct LayerNormalization {
    pub axis: i64,
    pub epsilon: f64,
}

impl LayerNormalization {
    /// float32 on the CPU with a scale (and bias) of one value per column.
    fn on_cpu(
        &self,
        x: &Tensor,
        scale: &Tensor,
        bias: Option<&Tensor>,
        rows: usize,
        cols: usize,
        stats_dims: &[usize],
    ) -> Option<OpResult> {
        let f32_cpu = |t: &Tensor| kernels::on_cpu(t, DType::F32) && t.elem_count() == cols;
        if !kernels::on_cpu(x, DType::F32) || !f32_cpu(scale) || !bias.is_none_or(f32_cpu) {
            return None;
        }
        let gamma = kernels::with_slice::<f32, _>(scale, |v| v.to_vec())?;
        let beta = match bias {
            Some(b) => Some(kernels::with_slice::<f32, _>(b, |v| v.to_vec())?),
            None => None,
        };
        let (mut means, mut inv_stds) = (vec![0f32; rows], vec![0f32; rows]);
        let mut y = vec![0f32; x.elem_count()];
        // Runs of rows on the threads; each row's statistics go into a
        // buffer per run, copied out after.
        let stats = std::sync::Mutex::new(Vec::new());
        kernels::with_slice::<f32, _>(x, |v| {
            kernels::for_row_runs(&mut y, cols, |first, out| {
                let count = out.len() / cols.max(1);
                let (mut m, mut s) = (vec![0f32; count], vec![0f32; count]);
                rows::layer_norm_rows(
                    &v[first * cols..first * cols + out.len()],
                    out,
                    &gamma,
                    beta.as_deref(),
                    self.epsilon as f32,
                    &mut m,
                    &mut s,
                );
                stats.lock().map(|mut all| all.push((first, m, s))).ok();
            })
        })?;
        for (first, m, s) in stats.into_inner().ok()? {
            means[first..first + m.len()].copy_from_slice(&m);
            inv_stds[first..first + s.len()].copy_from_slice(&s);
        }
        let tensors = || -> Result<Vec<Value>, String> {
            Ok(vec![
                Value::Tensor(kernels::tensor_from(y, x.dims())?),
                Value::Tensor(kernels::tensor_from(means, stats_dims)?),
                Value::Tensor(kernels::tensor_from(inv_stds, stats_dims)?),
            ])
        };
        Some(tensors())
    }
}

impl Op for LayerNormalization {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let scale = input(inputs, 1)?;
        let bias = optional(inputs, 2)?;
        let ax = axis(self.axis, x.rank())?;
        let dims = x.dims().to_vec();
        let rows: usize = dims[..ax].iter().product();
        let cols: usize = dims[ax..].iter().product();
        // The optional outputs Mean and InvStdDev keep the normalised axes as 1s.
        let mut stats_dims = dims[..ax].to_vec();
        stats_dims.extend(std::iter::repeat_n(1, dims.len() - ax));
        if let Some(outputs) = self.on_cpu(x, scale, bias, rows, cols, &stats_dims) {
            return outputs;
        }
        let (y, mean, inv_std) = (|| {
            let dtype = x.dtype();
            let flat = x.reshape((rows, cols))?.to_dtype(DType::F32)?;
            let mean = flat.mean_keepdim(1)?;
            let centred = flat.broadcast_sub(&mean)?;
            let var = centred.sqr()?.mean_keepdim(1)?;
            let inv_std = (var + self.epsilon)?.sqrt()?.recip()?;
            let normed = centred.broadcast_mul(&inv_std)?;
            let mut y = normed
                .reshape(dims.as_slice())?
                .to_dtype(dtype)?
                .broadcast_mul(scale)?;
            if let Some(b) = bias {
                y = y.broadcast_add(b)?;
            }
            Ok::<_, candle_core::Error>((
                y,
                mean.reshape(stats_dims.as_slice())?,
                inv_std.reshape(stats_dims.as_slice())?,
            ))
        })()
        .map_err(err)?;
        Ok(vec![
            Value::Tensor(y),
            Value::Tensor(mean),
            Value::Tensor(inv_std),
        ])
    }
}

/// Inference: the input unchanged, and a mask of ones when asked for.
pub struct Dropout;

impl Op for Dropout {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let mask = x
            .ones_like()
            .and_then(|m| m.to_dtype(DType::U8))
            .map_err(err)?;
        Ok(vec![Value::Tensor(x.clone()), Value::Tensor(mask)])
    }
}

pub struct Split {
    pub axis: i64,
    /// Opset < 13: the `split` attribute.
    pub split: Option<Vec<i64>>,
    pub outputs: usize,
}

impl Op for Split {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let ax = axis(self.axis, x.rank())?;
        let dim = x.dims()[ax];
        let sizes: Vec<usize> = match (&self.split, optional(inputs, 1)?) {
            (Some(s), _) if !s.is_empty() => s.iter().map(|&v| v.max(0) as usize).collect(),
            (_, Some(t)) => int_values(t)?.iter().map(|&v| v.max(0) as usize).collect(),
            _ => {
                // Equal parts, the last one smaller when it does not divide.
                let n = self.outputs.max(1);
                let part = dim.div_ceil(n);
                (0..n)
                    .map(|i| part.min(dim.saturating_sub(i * part)))
                    .collect()
            }
        };
        if sizes.iter().sum::<usize>() != dim {
            return Err(format!("split sizes {sizes:?} do not add up to {dim}"));
        }
        let mut start = 0;
        let mut out = Vec::with_capacity(sizes.len());
        for s in sizes {
            out.push(Value::Tensor(x.narrow(ax, start, s).map_err(err)?));
            start += s;
        }
        Ok(out)
    }
}

/// start, start + delta, ... up to (not including) limit.
pub struct Range;

impl Op for Range {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let scalar = |i: usize| -> Result<(f64, DType), String> {
            let t = input(inputs, i)?;
            let v: Vec<f64> = t
                .to_dtype(DType::F64)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1())
                .map_err(err)?;
            Ok((*v.first().ok_or("Range needs scalar inputs")?, t.dtype()))
        };
        let ((start, dtype), (limit, _), (delta, _)) = (scalar(0)?, scalar(1)?, scalar(2)?);
        if delta == 0.0 {
            return Err("Range with delta 0".into());
        }
        let n = ((limit - start) / delta).ceil().max(0.0) as usize;
        if n > 100_000_000 {
            return Err(format!("Range of {n} values"));
        }
        let values: Vec<f64> = (0..n).map(|i| start + i as f64 * delta).collect();
        let t = Tensor::from_vec(values, n, input(inputs, 0)?.device())
            .and_then(|t| t.to_dtype(dtype))
            .map_err(err)?;
        Ok(vec![Value::Tensor(t)])
    }
}

pub struct Tile;

impl Op for Tile {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let repeats = int_values(input(inputs, 1)?)?;
        if repeats.len() != x.rank() {
            return Err(format!(
                "{} repeats for a tensor of rank {}",
                repeats.len(),
                x.rank()
            ));
        }
        let tiled: Vec<usize> = x
            .dims()
            .iter()
            .zip(&repeats)
            .map(|(&d, &r)| d.saturating_mul(r.max(0) as usize))
            .collect();
        super::element_count(&tiled)?;
        let mut y = x.clone();
        for (d, &r) in repeats.iter().enumerate() {
            if r < 0 {
                return Err(format!("negative repeat {r}"));
            }
            let copies: Vec<Tensor> = std::iter::repeat_n(y.clone(), r as usize).collect();
            y = if copies.is_empty() {
                y.narrow(d, 0, 0).map_err(err)?
            } else {
                Tensor::cat(&copies, d).map_err(err)?
            };
        }
        Ok(vec![Value::Tensor(y)])
    }
}

pub struct Size;

impl Op for Size {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        Ok(vec![Value::Tensor(
            Tensor::new(x.elem_count() as i64, x.device()).map_err(err)?,
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_matches_candles_broadcast_on_every_pattern() {
        for (from, to) in [
            (vec![2, 3, 1], vec![2, 3, 4]),
            (vec![1, 3, 1], vec![2, 3, 4]),
            (vec![2, 1, 4], vec![2, 3, 4]),
            (vec![1, 1, 4], vec![5, 3, 4]),
            (vec![2, 3, 4], vec![2, 3, 4]),
            (vec![1, 1, 1], vec![2, 3, 4]),
            (vec![3, 1], vec![3, 0]),
            (vec![2, 1, 3, 1], vec![2, 4, 3, 5]),
        ] {
            let n: usize = from.iter().product();
            let values: Vec<f32> = (0..n).map(|i| i as f32 * 1.5 - 2.0).collect();
            let x = Tensor::from_vec(values.clone(), from.as_slice(), &Device::Cpu).unwrap();
            let expected: Vec<f32> = x
                .broadcast_as(to.as_slice())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(
                expand_values(&values, &from, &to),
                expected,
                "{from:?} -> {to:?}"
            );
        }
    }

    #[test]
    fn gather_copies_the_rows_of_every_outer_block() {
        // data 2 x 3 x 2, gathered along the middle axis at [2, 0, 2].
        let data: Vec<i64> = (0..12).collect();
        assert_eq!(
            gather_rows(&data, 2, 3, 2, &[2, 0, 2]),
            vec![4, 5, 0, 1, 4, 5, 10, 11, 6, 7, 10, 11]
        );
    }
}
