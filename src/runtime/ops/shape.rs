//! Operators that move data without computing on it: Identity, Cast,
//! Reshape, Flatten, Transpose, Concat, Unsqueeze, Squeeze.

use candle_core::{DType, Tensor};
use candle_onnx::onnx::tensor_proto::DataType;

use super::{axis, err, input, int_values, optional, Op, OpResult, Value};
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
        Ok(vec![Value::Tensor(Tensor::cat(&tensors, ax).map_err(err)?)])
    }
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
