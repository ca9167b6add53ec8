//! Operators that move data without computing on it: Identity, Cast,
//! Reshape, Flatten, Transpose, Concat, Unsqueeze, Squeeze.

use candle_core::{DType, Tensor};
use candle_onnx::onnx::tensor_proto::DataType;

use super::{axis, err, input, int_values, optional, Op, OpResult, Value};
use crate::runtime::kernels;
use crate::runtime::tensor::{dtype_of, type_name};

pub struct Identity;

impl Op for Identity {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        Ok(vec![Value::Tensor(input(inputs, 0)?.clone())])
    }
}

pub struct Cast {
    to: DType,
    to_bool: bool,
}

impl Cast {
    pub fn new(to: i64) -> Result<Self, String> {
        let onnx_type = to as i32;
        let dtype = dtype_of(onnx_type)
            .ok_or_else(|| format!("Cast to {} is not supported", type_name(onnx_type)))?;
        Ok(Cast {
            to: dtype,
            to_bool: onnx_type == DataType::Bool as i32,
        })
    }
}

impl Op for Cast {
    /// A cast to the type it has is the tensor itself (`to_dtype`).
    fn passes_on_float32(&self, input: usize) -> bool {
        input == 0 && self.to == DType::F32 && !self.to_bool
    }

    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let y = if self.to_bool {
            // Any non-zero value is true, not just values that truncate to 1.
            x.ne(&x.zeros_like().map_err(err)?).map_err(err)?
        } else {
            x.to_dtype(self.to).map_err(err)?
        };
        Ok(vec![Value::Tensor(y)])
    }
}

pub struct Reshape {
    pub allow_zero: bool,
}

impl Op for Reshape {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let spec = int_values(input(inputs, 1)?)?;
        let mut dims = Vec::with_capacity(spec.len());
        let mut infer = None;
        for (i, &d) in spec.iter().enumerate() {
            match d {
                -1 if infer.is_none() => {
                    infer = Some(i);
                    dims.push(1);
                }
                0 if !self.allow_zero => dims.push(*x.dims().get(i).ok_or_else(|| {
                    format!("shape entry {i} copies a dimension the input does not have")
                })?),
                d if d >= 0 => dims.push(d as usize),
                d => return Err(format!("invalid shape entry {d}")),
            }
        }
        if let Some(i) = infer {
            let known: usize = dims.iter().product();
            if known == 0 || x.elem_count() % known != 0 {
                return Err(format!("cannot reshape {:?} into {:?}", x.dims(), spec));
            }
            dims[i] = x.elem_count() / known;
        }
        let y = x.reshape(dims.as_slice()).map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}

pub struct Flatten {
    pub axis: i64,
}

impl Op for Flatten {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let r = x.rank() as i64;
        let a = if self.axis < 0 {
            self.axis + r
        } else {
            self.axis
        };
        if !(0..=r).contains(&a) {
            return Err(format!("axis {} is out of range for rank {r}", self.axis));
        }
        let rows: usize = x.dims()[..a as usize].iter().product();
        let cols: usize = x.dims()[a as usize..].iter().product();
        Ok(vec![Value::Tensor(x.reshape((rows, cols)).map_err(err)?)])
    }
}

pub struct Transpose {
    pub perm: Option<Vec<i64>>,
}

impl Op for Transpose {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let perm: Vec<usize> = match &self.perm {
            Some(p) => p
                .iter()
                .map(|&a| axis(a, x.rank()))
                .collect::<Result<_, _>>()?,
            None => (0..x.rank()).rev().collect(),
        };
        Ok(vec![Value::Tensor(x.permute(perm).map_err(err)?)])
    }
}

pub struct Concat {
    pub axis: i64,
}

impl Op for Concat {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let tensors: Vec<&Tensor> = (0..inputs.len())
            .map(|i| input(inputs, i))
            .collect::<Result<_, _>>()?;
        let first = tensors.first().ok_or("Concat needs at least one input")?;
        let ax = axis(self.axis, first.rank())?;
        let on_cpu = match first.dtype() {
            DType::F32 => concat_on_cpu::<f32>(&tensors, ax),
            DType::I64 => concat_on_cpu::<i64>(&tensors, ax),
            _ => None,
        };
        if let Some(out) = on_cpu {
            return Ok(vec![Value::Tensor(out?)]);
        }
        Ok(vec![Value::Tensor(Tensor::cat(&tensors, ax).map_err(err)?)])
    }
}

/// Concatenation of contiguous CPU tensors of one type along `ax`, block
/// by block: candle copies each input's block of every outer index with a
/// call to memcpy, which for the usual [n, 1] + [n, 1] of a classifier's
/// probabilities is a call per value. None where that does not apply
/// (candle's path then checks the shapes and reports any mismatch).
fn concat_on_cpu<T: candle_core::WithDType>(
    tensors: &[&Tensor],
    ax: usize,
) -> Option<Result<Tensor, String>> {
    let dims = tensors[0].dims();
    let fits = tensors.iter().all(|t| {
        kernels::on_cpu(t, T::DTYPE)
            && t.is_contiguous()
            && t.rank() == dims.len()
            && t.dims()
                .iter()
                .zip(dims)
                .enumerate()
                .all(|(i, (a, b))| i == ax || a == b)
    });
    if !fits {
        return None;
    }
    let outer: usize = dims[..ax].iter().product();
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let mut parts: Vec<(&[T], usize)> = Vec::with_capacity(tensors.len());
    for (storage, layout) in &guards {
        let candle_core::Storage::Cpu(cpu) = &**storage else {
            return None;
        };
        let (start, end) = layout.contiguous_offsets()?;
        let values: &[T] = cpu.as_slice::<T>().ok()?;
        let block = layout.dims()[ax..].iter().product::<usize>();
        parts.push((&values[start..end], block));
    }
    // Each input fills its columns of every output row: short blocks as
    // strided runs of single values, long ones by copies.
    let row: usize = parts.iter().map(|(_, block)| block).sum();
    let mut out: Vec<T> = vec![T::from_f64(0.0); outer * row];
    let mut column = 0;
    for &(values, block) in &parts {
        if block < 8 {
            for i in 0..block {
                let to = out.iter_mut().skip(column + i).step_by(row.max(1));
                for (o, v) in to.zip(values.iter().skip(i).step_by(block)) {
                    *o = *v;
                }
            }
        } else {
            for (o, part) in out.chunks_exact_mut(row).zip(values.chunks_exact(block)) {
                o[column..column + block].copy_from_slice(part);
            }
        }
        column += block;
    }
    let mut out_dims = dims.to_vec();
    out_dims[ax] = tensors.iter().map(|t| t.dims()[ax]).sum();
    Some(kernels::tensor_from(out, &out_dims))
}

pub struct Unsqueeze {
    /// From the attribute before opset 13; `None`: from the second input.
    pub axes: Option<Vec<i64>>,
}

impl Op for Unsqueeze {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let axes = match &self.axes {
            Some(a) => a.clone(),
            None => int_values(input(inputs, 1)?)?,
        };
        let out_rank = x.rank() + axes.len();
        let mut resolved: Vec<usize> = axes
            .iter()
            .map(|&a| axis(a, out_rank))
            .collect::<Result<_, _>>()?;
        resolved.sort_unstable();
        if resolved.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!("repeated axis in {axes:?}"));
        }
        let mut dims = x.dims().to_vec();
        for a in resolved {
            dims.insert(a, 1);
        }
        Ok(vec![Value::Tensor(
            x.reshape(dims.as_slice()).map_err(err)?,
        )])
    }
}

pub struct Squeeze {
    /// Before opset 13: the attribute (or `Some(None)`: every unit axis).
    /// From 13 (`None`): the optional second input.
    pub axes: Option<Option<Vec<i64>>>,
}

impl Op for Squeeze {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let axes = match &self.axes {
            Some(a) => a.clone(),
            None => optional(inputs, 1)?.map(int_values).transpose()?,
        };
        let dims: Vec<usize> = match axes {
            None => x.dims().iter().copied().filter(|&d| d != 1).collect(),
            Some(axes) => {
                let drop: Vec<usize> = axes
                    .iter()
                    .map(|&a| axis(a, x.rank()))
                    .collect::<Result<_, _>>()?;
                for &a in &drop {
                    if x.dims()[a] != 1 {
                        return Err(format!("cannot squeeze axis {a} of size {}", x.dims()[a]));
                    }
                }
                x.dims()
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !drop.contains(i))
                    .map(|(_, d)| *d)
                    .collect()
            }
        };
        Ok(vec![Value::Tensor(
            x.reshape(dims.as_slice()).map_err(err)?,
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn concat_on_the_cpu_matches_candles_cat_for_short_and_long_blocks() {
        // Blocks of 1 (a classifier's [n, 1] + [n, 1]), mixed short ones,
        // and blocks of 8 and more, which are copied whole.
        for (shapes, ax) in [
            (vec![vec![5, 1], vec![5, 1]], 1),
            (vec![vec![3, 2, 1], vec![3, 2, 3]], 2),
            (vec![vec![2, 3, 4], vec![2, 1, 4], vec![2, 2, 4]], 1),
            (vec![vec![4, 9], vec![4, 16]], 1),
            (vec![vec![2, 5], vec![3, 5]], 0),
            (vec![vec![0, 3], vec![0, 2]], 1),
        ] {
            let mut next = 0f32;
            let tensors: Vec<Tensor> = shapes
                .iter()
                .map(|dims| {
                    let n: usize = dims.iter().product();
                    let v: Vec<f32> = (0..n).map(|i| next + i as f32).collect();
                    next += 100.0;
                    Tensor::from_vec(v, dims.as_slice(), &Device::Cpu).unwrap()
                })
                .collect();
            let refs: Vec<&Tensor> = tensors.iter().collect();
            let ours = concat_on_cpu::<f32>(&refs, ax).expect("applies").unwrap();
            let theirs = Tensor::cat(&refs, ax).unwrap();
            assert_eq!(ours.dims(), theirs.dims(), "{shapes:?} on {ax}");
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(flat(&ours), flat(&theirs), "{shapes:?} on {ax}");
            let as_i64: Vec<Tensor> = tensors
                .iter()
                .map(|t| t.to_dtype(DType::I64).unwrap())
                .collect();
            let refs: Vec<&Tensor> = as_i64.iter().collect();
            let ours = concat_on_cpu::<i64>(&refs, ax).expect("applies").unwrap();
            let theirs = Tensor::cat(&refs, ax).unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<i64>().unwrap();
            assert_eq!(flat(&ours), flat(&theirs), "int64 {shapes:?} on {ax}");
        }
        // A view that is not contiguous is left to candle.
        let t = Tensor::arange(0f32, 6., &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap()
            .t()
            .unwrap();
        assert!(concat_on_cpu::<f32>(&[&t, &t], 1).is_none());
    }
}
