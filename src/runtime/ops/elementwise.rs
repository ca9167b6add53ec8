//! Element-wise operators with numpy broadcasting.

use candle_core::{DType, Tensor};

use super::{err, float_only, input, Op, OpResult, Value};
use crate::runtime::kernels::{self, rows, rows::Arith};

type Binary = fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>;
type Unary = fn(&Tensor) -> candle_core::Result<Tensor>;

struct BinaryOp(Arith);

/// numpy's broadcast shape of two shapes, or None when they do not fit.
fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |d: &[usize], i: usize| {
        if i + d.len() >= rank {
            d[i + d.len() - rank]
        } else {
            1
        }
    };
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// float32 on the CPU when one operand has the output's shape: the other
/// is a scalar, the same shape, a suffix of it (a bias over the last axis),
/// or broadcast some other way (an attention mask [b, 1, 1, s]), which goes
/// row by row. Anything else broadcasts through candle.
fn arith_on_cpu(op: Arith, a: &Tensor, b: &Tensor) -> Option<Result<Tensor, String>> {
    if !kernels::on_cpu(a, DType::F32) || !kernels::on_cpu(b, DType::F32) {
        return None;
    }
    let out_dims = broadcast_shape(a.dims(), b.dims())?;
    let (big, small, small_first) = if a.dims() == out_dims.as_slice() {
        (a, b, false)
    } else if b.dims() == out_dims.as_slice() {
        (b, a, true)
    } else {
        return None;
    };
    let small_dims = small.dims();
    let tail: Vec<usize> = small_dims.iter().copied().skip_while(|&x| x == 1).collect();
    let mut out = vec![0f32; big.elem_count()];
    kernels::with_slice::<f32, _>(big, |x| {
        kernels::with_slice::<f32, _>(small, |y| {
            if y.len() == 1 {
                kernels::for_row_runs(&mut out, 1, |first, o| {
                    rows::arith_scalar(op, &x[first..first + o.len()], y[0], small_first, o)
                });
            } else if y.len() == out.len() {
                kernels::for_row_runs(&mut out, 1, |first, o| {
                    let (x, y) = (&x[first..first + o.len()], &y[first..first + o.len()]);
                    rows::arith_cycle(op, x, y, small_first, o)
                });
            } else if out_dims.ends_with(&tail) {
                // Runs of whole periods of y.
                kernels::for_row_runs(&mut out, y.len(), |first, o| {
                    let start = first * y.len();
                    rows::arith_cycle(op, &x[start..start + o.len()], y, small_first, o)
                });
            } else {
                by_rows(op, x, &out_dims, y, small_dims, small_first, &mut out);
            }
        })
    })??;
    Some(kernels::tensor_from(out, &out_dims))
}

/// For broadcasting `y_dims` against `out_dims` row by row (rows of the
/// last axis): where each output row's values start in y, and whether y
/// has a whole row there (else one value repeats along the row).
pub fn row_offsets(out_dims: &[usize], y_dims: &[usize]) -> (Vec<usize>, bool) {
    let rank = out_dims.len();
    // y's strides over the output's axes (0 where y has 1 or lacks the axis).
    let mut strides = vec![0usize; rank];
    let mut stride = 1;
    for i in (0..y_dims.len().min(rank)).rev() {
        let axis = rank - y_dims.len() + i;
        strides[axis] = if y_dims[i] == 1 { 0 } else { stride };
        stride *= y_dims[i];
    }
    let rows: usize = out_dims[..rank.saturating_sub(1)].iter().product();
    let offsets = (0..rows)
        .map(|r| {
            let (mut rest, mut offset) = (r, 0);
            for axis in (0..rank.saturating_sub(1)).rev() {
                offset += (rest % out_dims[axis]) * strides[axis];
                rest /= out_dims[axis];
            }
            offset
        })
        .collect();
    (offsets, rank > 0 && strides[rank - 1] != 0)
}

/// General broadcasting of `y` (shape `y_dims`) against `x` (shape
/// `out_dims`), one row of the last axis at a time.
fn by_rows(
    op: Arith,
    x: &[f32],
    out_dims: &[usize],
    y: &[f32],
    y_dims: &[usize],
    y_first: bool,
    out: &mut [f32],
) {
    let last = out_dims.last().copied().unwrap_or(1).max(1);
    let (offsets, whole_rows) = row_offsets(out_dims, y_dims);
    for ((o, xr), &offset) in out.chunks_mut(last).zip(x.chunks(last)).zip(&offsets) {
        if whole_rows {
            rows::arith_cycle(op, xr, &y[offset..offset + last], y_first, o);
        } else {
            rows::arith_scalar(op, xr, y[offset], y_first, o);
        }
    }
}

/// a op b with numpy broadcasting, on the CPU kernels when they apply.
pub fn arith(op: Arith, a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    if let Some(y) = arith_on_cpu(op, a, b) {
        return y;
    }
    match op {
        Arith::Add => a.broadcast_add(b),
        Arith::Sub => a.broadcast_sub(b),
        Arith::Mul => a.broadcast_mul(b),
        Arith::Div => a.broadcast_div(b),
    }
    .map_err(err)
}

impl Op for BinaryOp {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        Ok(vec![Value::Tensor(arith(self.0, a, b)?)])
    }
}

pub fn binary(op: &str) -> Result<Box<dyn Op>, String> {
    let arith = match op {
        "Add" => Arith::Add,
        "Sub" => Arith::Sub,
        "Mul" => Arith::Mul,
        "Div" => Arith::Div,
        other => return Err(format!("{other} is not a binary operator")),
    };
    Ok(Box::new(BinaryOp(arith)))
}

/// Sum, Max, Min and Mean over any number of inputs.
struct Variadic {
    fold: Binary,
    mean: bool,
}

impl Op for Variadic {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let mut acc = input(inputs, 0)?.clone();
        for i in 1..inputs.len() {
            acc = (self.fold)(&acc, input(inputs, i)?).map_err(err)?;
        }
        if self.mean {
            acc = acc.affine(1.0 / inputs.len() as f64, 0.0).map_err(err)?;
        }
        Ok(vec![Value::Tensor(acc)])
    }
}

pub fn variadic(op: &str) -> Result<Box<dyn Op>, String> {
    let (fold, mean): (Binary, bool) = match op {
        "Sum" => (|a, b| a.broadcast_add(b), false),
        "Mean" => (|a, b| a.broadcast_add(b), true),
        "Max" => (|a, b| a.broadcast_maximum(b), false),
        "Min" => (|a, b| a.broadcast_minimum(b), false),
        other => return Err(format!("{other} is not a variadic operator")),
    };
    Ok(Box::new(Variadic { fold, mean }))
}

struct UnaryOp {
    name: &'static str,
    f: Unary,
    /// Abs, Neg and Relu also apply to integers.
    any_type: bool,
}

/// `f` of every value of a float32 CPU tensor, in one pass (its runs of
/// values on the threads when there are enough); None elsewhere.
fn map_on_cpu(x: &Tensor, f: impl Fn(f32) -> f32 + Sync) -> Option<Result<Tensor, String>> {
    if !kernels::on_cpu(x, DType::F32) {
        return None;
    }
    let out = kernels::with_slice::<f32, _>(x, |x| {
        // SAFETY: the zip writes every value of `out` (as long as `run`).
        unsafe {
            kernels::map_rows(x, 1, |_, run, out| {
                for (o, &v) in out.iter_mut().zip(run) {
                    *o = f(v);
                }
            })
        }
    })?;
    Some(kernels::tensor_from(out, x.dims()))
}

/// max(0, x) keeping NaN, in one pass over f32 on the CPU (candle's
/// comparison and select take four passes).
fn relu_on_cpu(x: &Tensor) -> Option<Result<Tensor, String>> {
    map_on_cpu(x, |v| if v < 0.0 { 0.0 } else { v })
}

/// 1 / (1 + e^-x) in one pass over f32 on the CPU, the same operations in
/// the same order as the candle chain below (negate, exp, + 1, reciprocal)
/// and so the same bits, without its four passes and buffers (a
/// classifier's last step: a tenth of a small MLP's time).
fn sigmoid_on_cpu(x: &Tensor) -> Option<Result<Tensor, String>> {
    map_on_cpu(x, |v| 1.0 / ((-v).exp() + 1.0))
}

impl Op for UnaryOp {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let on_cpu = match self.name {
            "Relu" => relu_on_cpu(x),
            "Sigmoid" => sigmoid_on_cpu(x),
            _ => None,
        };
        if let Some(y) = on_cpu {
            return Ok(vec![Value::Tensor(y?)]);
        }
        if !self.any_type {
            float_only(self.name, x)?;
        }
        Ok(vec![Value::Tensor((self.f)(x).map_err(err)?)])
    }
}

pub fn unary(op: &str) -> Result<Box<dyn Op>, String> {
    let (name, any_type, f): (&'static str, bool, Unary) = match op {
        "Abs" => ("Abs", true, |x| x.abs()),
        // 0 - x: candle's neg exists for floats only.
        "Neg" => ("Neg", true, |x| x.zeros_like()?.sub(x)),
        // max(0, x) keeping NaN, as numpy and ONNX Runtime do (candle's relu
        // maps NaN to 0).
        "Relu" => ("Relu", true, |x| {
            x.lt(&x.zeros_like()?)?.where_cond(&x.zeros_like()?, x)
        }),
        "Exp" => ("Exp", false, |x| x.exp()),
        "Log" => ("Log", false, |x| x.log()),
        "Reciprocal" => ("Reciprocal", false, |x| x.recip()),
        // 1 / (1 + e^-x): saturates to 0 and 1 without NaN.
        "Sigmoid" => ("Sigmoid", false, |x| {
            x.neg()?.exp()?.affine(1.0, 1.0)?.recip()
        }),
        "Softplus" => ("Softplus", false, |x| x.exp()?.affine(1.0, 1.0)?.log()),
        "Sqrt" => ("Sqrt", false, |x| x.sqrt()),
        "Tanh" => ("Tanh", false, |x| x.tanh()),
        other => return Err(format!("{other} is not a unary operator")),
    };
    Ok(Box::new(UnaryOp { name, f, any_type }))
}

/// x where x >= 0, else `negative(x)`.
fn piecewise(x: &Tensor, negative: &Tensor) -> candle_core::Result<Tensor> {
    let below = x.lt(&x.zeros_like()?)?;
    below.where_cond(negative, x)
}

struct Elu(f64);

impl Op for Elu {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        float_only("Elu", x)?;
        let neg = x
            .exp()
            .and_then(|e| e.affine(self.0, -self.0))
            .map_err(err)?;
        Ok(vec![Value::Tensor(piecewise(x, &neg).map_err(err)?)])
    }
}

pub fn elu(alpha: f32) -> Box<dyn Op> {
    Box::new(Elu(alpha as f64))
}

struct LeakyRelu(f64);

impl Op for LeakyRelu {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        float_only("LeakyRelu", x)?;
        let neg = x.affine(self.0, 0.0).map_err(err)?;
        Ok(vec![Value::Tensor(piecewise(x, &neg).map_err(err)?)])
    }
}

pub fn leaky_relu(alpha: f32) -> Box<dyn Op> {
    Box::new(LeakyRelu(alpha as f64))
}

struct HardSigmoid(f64, f64);

impl Op for HardSigmoid {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        float_only("HardSigmoid", x)?;
        let y = x
            .affine(self.0, self.1)
            .and_then(|y| y.broadcast_maximum(&y.zeros_like()?))
            .and_then(|y| y.broadcast_minimum(&y.ones_like()?))
            .map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}

pub fn hard_sigmoid(alpha: f32, beta: f32) -> Box<dyn Op> {
    Box::new(HardSigmoid(alpha as f64, beta as f64))
}

/// Applies `f` to every value in f64 and casts back: for the operators whose
/// rounding or domain candle's kernels do not match (Round rounds half to
/// even, Pow takes negative bases).
fn map_f64(x: &Tensor, f: impl Fn(f64) -> f64) -> Result<Tensor, String> {
    let dims = x.dims().to_vec();
    let values: Vec<f64> = x
        .to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1())
        .map_err(err)?;
    let out: Vec<f64> = values.into_iter().map(f).collect();
    Tensor::from_vec(out, dims.as_slice(), x.device())
        .and_then(|t| t.to_dtype(x.dtype()))
        .map_err(err)
}

/// Floor, Ceil, Round, Sign, Sin, Cos, Softsign, and the parametric
/// activations Selu, Gelu and HardSwish.
/// A function of one value and the operator's parameters.
type MathFn = fn(f64, &[f64]) -> f64;

pub struct MathOp {
    name: &'static str,
    f: MathFn,
    params: Vec<f64>,
}

impl Op for MathOp {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        if self.name != "Sign" {
            float_only(self.name, x)?;
        }
        let p = &self.params;
        Ok(vec![Value::Tensor(map_f64(x, |v| (self.f)(v, p))?)])
    }
}

fn erf(x: f64) -> f64 {
    statrs::function::erf::erf(x)
}

pub fn math(op: &str, params: Vec<f64>) -> Result<Box<dyn Op>, String> {
    let (name, f): (&'static str, MathFn) = match op {
        "Floor" => ("Floor", |v, _| v.floor()),
        "Ceil" => ("Ceil", |v, _| v.ceil()),
        "Round" => ("Round", |v, _| v.round_ties_even()),
        "Sign" => ("Sign", |v, _| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        }),
        "Sin" => ("Sin", |v, _| v.sin()),
        "Cos" => ("Cos", |v, _| v.cos()),
        "Softsign" => ("Softsign", |v, _| v / (1.0 + v.abs())),
        // params: alpha, gamma
        "Selu" => ("Selu", |v, p| {
            if v > 0.0 {
                p[1] * v
            } else {
                p[1] * (p[0] * v.exp() - p[0])
            }
        }),
        // params: 1 for the tanh approximation
        "Gelu" => ("Gelu", |v, p| {
            if p[0] == 1.0 {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * v * (1.0 + (c * (v + 0.044715 * v * v * v)).tanh())
            } else {
                0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2))
            }
        }),
        "HardSwish" => ("HardSwish", |v, _| v * (v / 6.0 + 0.5).clamp(0.0, 1.0)),
        other => return Err(format!("{other} is not a math operator")),
    };
    Ok(Box::new(MathOp { name, f, params }))
}

/// x ^ y with numpy broadcasting; the result has x's type.
pub struct Pow;

impl Op for Pow {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let (x, y) = (input(inputs, 0)?, input(inputs, 1)?);
        // Broadcast by adding zeros of the other operand's shape.
        let xb = x
            .to_dtype(DType::F64)
            .and_then(|a| a.broadcast_add(&y.to_dtype(DType::F64)?.zeros_like()?))
            .map_err(err)?;
        let yb = y
            .to_dtype(DType::F64)
            .and_then(|b| b.broadcast_add(&x.to_dtype(DType::F64)?.zeros_like()?))
            .map_err(err)?;
        let dims = xb.dims().to_vec();
        let a: Vec<f64> = xb.flatten_all().and_then(|t| t.to_vec1()).map_err(err)?;
        let b: Vec<f64> = yb.flatten_all().and_then(|t| t.to_vec1()).map_err(err)?;
        let out: Vec<f64> = a.iter().zip(&b).map(|(u, v)| u.powf(*v)).collect();
        let t = Tensor::from_vec(out, dims.as_slice(), x.device())
            .and_then(|t| t.to_dtype(x.dtype()))
            .map_err(err)?;
        Ok(vec![Value::Tensor(t)])
    }
}

/// x where x >= 0, slope * x elsewhere; the slope broadcasts.
pub struct PRelu;

impl Op for PRelu {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let (x, slope) = (input(inputs, 0)?, input(inputs, 1)?);
        let neg = x
            .broadcast_mul(&slope.to_dtype(x.dtype()).map_err(err)?)
            .map_err(err)?;
        let y = x
            .lt(&x.zeros_like().map_err(err)?)
            .and_then(|m| m.where_cond(&neg, x))
            .map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn sigmoid_in_one_pass_has_the_bits_of_candles_chain() {
        let values: Vec<f32> = [
            -1e4f32, -100.0, -88.7, -20.0, -1.5, -0.0, 0.0, 1e-8, 0.7, 16.0, 90.0,
        ]
        .into_iter()
        .chain([f32::NAN, f32::INFINITY, f32::NEG_INFINITY])
        .chain((0..200).map(|i| i as f32 * 0.173 - 17.0))
        .collect();
        let x = Tensor::from_vec(values.clone(), values.len(), &Device::Cpu).unwrap();
        let ours = sigmoid_on_cpu(&x).expect("applies").unwrap();
        let chain = x
            .neg()
            .unwrap()
            .exp()
            .unwrap()
            .affine(1.0, 1.0)
            .unwrap()
            .recip()
            .unwrap();
        let bits = |t: &Tensor| -> Vec<u32> {
            t.to_vec1::<f32>()
                .unwrap()
                .into_iter()
                .map(f32::to_bits)
                .collect()
        };
        assert_eq!(bits(&ours), bits(&chain));
    }
}
