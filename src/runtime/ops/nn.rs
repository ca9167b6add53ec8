//! Softmax and LogSoftmax (with their pre-13 "flatten to 2-D" semantics),
//! ArgMax and ArgMin.

use candle_core::{DType, Tensor, D};

use super::{axis, err, input, Op, OpResult, Value};
use crate::runtime::kernels::{self, rows};

/// Softmax and LogSoftmax.
pub struct Softmax {
    opset: i64,
    axis: i64,
    log: bool,
}

impl Softmax {
    pub fn new(opset: i64, axis: i64, log: bool) -> Self {
        Softmax { opset, axis, log }
    }
}

/// Over the last axis, shifted by the maximum so that exp cannot overflow.
fn softmax_last(x: &Tensor, log: bool) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?;
    let shifted = x.broadcast_sub(&max)?;
    let e = shifted.exp()?;
    let sum = e.sum_keepdim(D::Minus1)?;
    if log {
        shifted.broadcast_sub(&sum.log()?)
    } else {
        e.broadcast_div(&sum)
    }
}

impl Op for Softmax {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        super::float_only(if self.log { "LogSoftmax" } else { "Softmax" }, x)?;
        let rank = x.rank();
        let ax = axis(self.axis, rank)?;
        let dims = x.dims().to_vec();
        // Rows of the last axis (or, before opset 13, of everything from the
        // axis on) run on the CPU kernel.
        let row_len: usize = dims[ax..].iter().product();
        if !self.log && (self.opset < 13 || ax + 1 == rank) && kernels::on_cpu(x, DType::F32) {
            if let Some(mut v) = kernels::with_slice::<f32, _>(x, |v| v.to_vec()) {
                rows::softmax_rows(&mut v, row_len);
                return Ok(vec![Value::Tensor(kernels::tensor_from(v, &dims)?)]);
            }
        }
        let y = if self.opset < 13 {
            // Opsets 1-12: the input is seen as 2-D, [prod(d[..axis]), prod(d[axis..])].
            let rows: usize = dims[..ax].iter().product();
            let cols: usize = dims[ax..].iter().product();
            x.reshape((rows, cols))
                .and_then(|t| softmax_last(&t, self.log))
                .and_then(|t| t.reshape(dims.as_slice()))
        } else {
            x.transpose(ax, rank - 1)
                .and_then(|t| softmax_last(&t.contiguous()?, self.log))
                .and_then(|t| t.transpose(ax, rank - 1))
        }
        .map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}

pub struct ArgMax {
    pub axis: i64,
    pub keepdims: bool,
    pub last_index: bool,
}

impl Op for ArgMax {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let ax = axis(self.axis, x.rank())?;
        let last_axis_on_cpu = if !self.last_index && ax + 1 == x.rank() {
            first_argmax_of_rows(x)
        } else {
            None
        };
        let y = if let Some(y) = last_axis_on_cpu {
            y?
        } else if self.last_index {
            last_argmax(x, ax)?
        } else {
            x.argmax_keepdim(ax)
                .and_then(|t| t.to_dtype(DType::I64))
                .map_err(err)?
        };
        let y = if self.keepdims {
            y
        } else {
            y.squeeze(ax).map_err(err)?
        };
        Ok(vec![Value::Tensor(y)])
    }
}

/// Index of the first maximum of each row (the last axis) of a contiguous
/// f32 CPU tensor, as int64 with the axis kept: one pass instead of
/// candle's argmax and a conversion of its u32 indices (a classifier's
/// label step). The same rule as candle's: a value replaces the best so
/// far only when greater (NaN never does, unless first).
fn first_argmax_of_rows(x: &Tensor) -> Option<Result<Tensor, String>> {
    let width = *x.dims().last()?;
    if !kernels::on_cpu(x, DType::F32) || width == 0 {
        return None;
    }
    let picks = kernels::with_slice::<f32, _>(x, |values| {
        values
            .chunks_exact(width)
            .map(|row| {
                let (mut best, mut value) = (0, row[0]);
                for (i, &v) in row.iter().enumerate() {
                    if value < v {
                        (best, value) = (i, v);
                    }
                }
                best as i64
            })
            .collect::<Vec<i64>>()
    })?;
    let mut dims = x.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = 1;
    }
    Some(kernels::tensor_from(picks, &dims))
}

/// Index of the last maximum along `ax` (ties resolved to the highest index).
fn last_argmax(x: &Tensor, ax: usize) -> Result<Tensor, String> {
    let dims = x.dims().to_vec();
    let moved = x
        .transpose(ax, x.rank() - 1)
        .and_then(|t| t.contiguous())
        .map_err(err)?;
    let n = dims[ax];
    let values: Vec<f64> = moved
        .to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1())
        .map_err(err)?;
    let picks: Vec<i64> = values
        .chunks(n.max(1))
        .map(|row| {
            let mut best = 0;
            for (i, v) in row.iter().enumerate() {
                if *v >= row[best] {
                    best = i;
                }
            }
            best as i64
        })
        .collect();
    let mut out_dims: Vec<usize> = moved.dims().to_vec();
    *out_dims.last_mut().unwrap() = 1;
    Tensor::from_vec(picks, out_dims.as_slice(), x.device())
        .and_then(|t| t.transpose(ax, x.rank() - 1))
        .map_err(err)
}

pub struct ArgMin {
    pub axis: i64,
    pub keepdims: bool,
    pub last_index: bool,
}

impl Op for ArgMin {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        // The arg-max of -x is the arg-min of x, ties included.
        let x = input(inputs, 0)?;
        let negated = x.to_dtype(DType::F64).and_then(|t| t.neg()).map_err(err)?;
        let inner = ArgMax {
            axis: self.axis,
            keepdims: self.keepdims,
            last_index: self.last_index,
        };
        inner.run(&[Some(&Value::Tensor(negated))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn argmax_of_rows_gives_candles_indices_with_ties_and_nan() {
        let rows: Vec<f32> = vec![
            0.2,
            0.8,
            0.8, // a tie: the first
            f32::NAN,
            1.0,
            2.0, // NaN first: never replaced (candle's rule)
            1.0,
            f32::NAN,
            0.5, // NaN later: never chosen
            -1.0,
            -3.0,
            -2.0,
        ];
        let x = Tensor::from_vec(rows, (4, 3), &Device::Cpu).unwrap();
        let ours = first_argmax_of_rows(&x).expect("applies").unwrap();
        assert_eq!(ours.dims(), &[4, 1]);
        let theirs = x.argmax_keepdim(1).unwrap().to_dtype(DType::I64).unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<i64>().unwrap();
        assert_eq!(flat(&ours), flat(&theirs));
        assert_eq!(flat(&ours), vec![1, 0, 0, 0]);
    }
}
