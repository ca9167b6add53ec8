//! Quantization operators, as ONNX Runtime's quantization tool emits them:
//! QuantizeLinear, DequantizeLinear (per tensor and per axis),
//! DynamicQuantizeLinear, MatMulInteger and QLinearMatMul.
//!
//! This is the reference path: values are computed exactly in f64 (integer
//! products of 8-bit values and their sums stay exact far beyond any real
//! inner dimension) and rounded half to even, as the ONNX specification asks.
//! Fast integer kernels are the runtime's part 2.

use candle_core::{DType, Tensor};

use super::linalg::{matmul, PackCache};
use super::{axis, err, input, optional, Op, OpResult, Value};
use crate::runtime::kernels::{self, igemm, igemm::IntA, igemm::PackedIntB, rows};

fn f64s(t: &Tensor) -> Result<Vec<f64>, String> {
    t.to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1())
        .map_err(err)
}

/// A quantized type: how its values are stored and the range they saturate to.
#[derive(Debug, Clone, Copy)]
pub struct Quantized {
    pub storage: DType,
    pub range: (f64, f64),
}

impl Quantized {
    pub const UINT8: Quantized = Quantized {
        storage: DType::U8,
        range: (0.0, 255.0),
    };

    /// From an ONNX element type (int8 and int16 share i16 storage, uint16
    /// lives in i32, so the storage alone cannot tell the range).
    pub fn from_onnx(onnx_type: i32) -> Option<Quantized> {
        use candle_onnx::onnx::tensor_proto::DataType as T;
        let (storage, range) = match T::try_from(onnx_type).ok()? {
            T::Uint8 => (DType::U8, (0.0, 255.0)),
            T::Int8 => (DType::I16, (-128.0, 127.0)),
            T::Uint16 => (DType::I32, (0.0, 65535.0)),
            T::Int16 => (DType::I16, (-32768.0, 32767.0)),
            T::Int32 => (DType::I32, (i32::MIN as f64, i32::MAX as f64)),
            _ => return None,
        };
        Some(Quantized { storage, range })
    }

    /// When the model does not say: from the zero point's storage.
    fn from_storage(dtype: DType) -> Quantized {
        match dtype {
            DType::I16 => Quantized {
                storage: dtype,
                range: (-128.0, 127.0),
            },
            DType::I32 => Quantized {
                storage: dtype,
                range: (i32::MIN as f64, i32::MAX as f64),
            },
            _ => Quantized::UINT8,
        }
    }
}

/// `scale` and `zero_point` shaped to broadcast against `x`: per tensor as
/// they are, per axis along `ax`, per block (`block_size` > 0) repeated
/// `block_size` times along `ax`.
fn along_axis(t: &Tensor, x: &Tensor, ax: usize, block_size: i64) -> Result<Tensor, String> {
    let x_rank = x.rank();
    if block_size > 0 {
        let n = x.dims()[ax];
        let idx: Vec<u32> = (0..n).map(|i| (i / block_size as usize) as u32).collect();
        let idx = Tensor::from_vec(idx, n, t.device()).map_err(err)?;
        return t.index_select(&idx, ax).map_err(err);
    }
    if t.rank() == 1 && t.elem_count() > 1 {
        let mut dims = vec![1; x_rank];
        dims[ax] = t.elem_count();
        t.reshape(dims.as_slice()).map_err(err)
    } else {
        Ok(t.clone())
    }
}

pub struct DequantizeLinear {
    pub axis: i64,
    pub block_size: i64,
}

/// (x - zero point) * scale with one float32 scale, for 8-bit x on the
/// CPU, in float32: the difference is an exact small integer, so the
/// product rounds exactly as the float64 product rounded to float32 does.
fn dequantize_per_tensor_on_cpu(x: &Tensor, scale: &Tensor, zp: Option<&Tensor>) -> Option<Tensor> {
    if scale.elem_count() != 1
        || !kernels::on_cpu(scale, DType::F32)
        || !matches!(x.device(), candle_core::Device::Cpu)
    {
        return None;
    }
    let s = kernels::with_slice::<f32, _>(scale, |v| v[0])?;
    let z = match zp {
        Some(z) if z.elem_count() == 1 => kernels::small_ints(z)?[0] as f32,
        Some(_) => return None,
        None => 0.0,
    };
    let mut y = vec![0f32; x.elem_count()];
    fn run<T: Copy + Into<f32> + Sync>(x: &[T], z: f32, s: f32, y: &mut [f32]) {
        kernels::for_row_runs(y, 1, |first, out| {
            for (o, &v) in out.iter_mut().zip(&x[first..]) {
                *o = (v.into() - z) * s;
            }
        });
    }
    match x.dtype() {
        DType::U8 => kernels::with_slice::<u8, _>(x, |v| run(v, z, s, &mut y))?,
        DType::I16 => kernels::with_slice::<i16, _>(x, |v| run(v, z, s, &mut y))?,
        _ => return None,
    }
    kernels::tensor_from(y, x.dims()).ok()
}

impl Op for DequantizeLinear {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let scale = input(inputs, 1)?;
        if let Some(y) = dequantize_per_tensor_on_cpu(x, scale, optional(inputs, 2)?) {
            return Ok(vec![Value::Tensor(y)]);
        }
        let ax = if x.rank() == 0 {
            0
        } else {
            axis(self.axis, x.rank())?
        };
        let out = scale.dtype();
        let s = along_axis(scale, x, ax, self.block_size)?
            .to_dtype(DType::F64)
            .map_err(err)?;
        let mut v = x.to_dtype(DType::F64).map_err(err)?;
        if let Some(zp) = optional(inputs, 2)? {
            let z = along_axis(zp, x, ax, self.block_size)?
                .to_dtype(DType::F64)
                .map_err(err)?;
            v = v.broadcast_sub(&z).map_err(err)?;
        }
        let y = v
            .broadcast_mul(&s)
            .and_then(|y| y.to_dtype(out))
            .map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}

pub struct QuantizeLinear {
    pub axis: i64,
    pub block_size: i64,
    /// The output type, when the model declares it (the zero point's type,
    /// or output_dtype).
    pub output: Option<Quantized>,
}

/// round-half-to-even(x / scale) + zero point, saturated to the type's range.
/// The division happens in float32 when x and the scale are float32, as in
/// ONNX Runtime, so that values on a rounding boundary land where they do
/// there.
fn quantize(
    x: &Tensor,
    scale: &Tensor,
    zp: Option<&Tensor>,
    out: Quantized,
) -> Result<Tensor, String> {
    let precision = if x.dtype() == DType::F32 && scale.dtype() == DType::F32 {
        DType::F32
    } else {
        DType::F64
    };
    let q = x
        .to_dtype(precision)
        .and_then(|x| x.broadcast_div(&scale.to_dtype(precision)?))
        .map_err(err)?;
    let dims = q.dims().to_vec();
    let rounded: Vec<f64> = if precision == DType::F32 {
        let v: Vec<f32> = q.flatten_all().and_then(|t| t.to_vec1()).map_err(err)?;
        v.into_iter().map(|x| x.round_ties_even() as f64).collect()
    } else {
        f64s(&q)?.into_iter().map(f64::round_ties_even).collect()
    };
    let mut y = Tensor::from_vec(rounded, dims.as_slice(), x.device()).map_err(err)?;
    if let Some(z) = zp {
        y = y
            .broadcast_add(&z.to_dtype(DType::F64).map_err(err)?)
            .map_err(err)?;
    }
    let (lo, hi) = out.range;
    let clamped: Vec<f64> = f64s(&y)?.into_iter().map(|v| v.clamp(lo, hi)).collect();
    Tensor::from_vec(clamped, dims.as_slice(), x.device())
        .and_then(|t| t.to_dtype(out.storage))
        .map_err(err)
}

impl Op for QuantizeLinear {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let scale = input(inputs, 1)?;
        let zp = optional(inputs, 2)?;
        let ax = if x.rank() == 0 {
            0
        } else {
            axis(self.axis, x.rank())?
        };
        let s = along_axis(scale, x, ax, self.block_size)?;
        let z = zp
            .map(|z| along_axis(z, x, ax, self.block_size))
            .transpose()?;
        // The zero point's type is the output type; uint8 without one.
        let out = self
            .output
            .unwrap_or_else(|| zp.map_or(Quantized::UINT8, |z| Quantized::from_storage(z.dtype())));
        // Per tensor into uint8, float32 on the CPU (static quantization's
        // activations): the vectorized kernel, same arithmetic.
        let per_tensor = scale.elem_count() == 1 && zp.is_none_or(|z| z.elem_count() == 1);
        if per_tensor
            && out.storage == DType::U8
            && kernels::on_cpu(x, DType::F32)
            && kernels::on_cpu(scale, DType::F32)
        {
            let s: f32 = scale
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(err)?[0];
            let z = match zp {
                Some(z) => z
                    .to_dtype(DType::F32)
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(err)?[0],
                None => 0.0,
            };
            if let Some(y) = kernels::with_slice::<f32, _>(x, |v| {
                let mut y = vec![0u8; v.len()];
                kernels::for_row_runs(&mut y, 1, |first, o| {
                    rows::quantize_u8(&v[first..first + o.len()], s, z, o)
                });
                y
            }) {
                return Ok(vec![Value::Tensor(kernels::tensor_from(y, x.dims())?)]);
            }
        }
        Ok(vec![Value::Tensor(quantize(x, &s, z.as_ref(), out)?)])
    }
}

/// DynamicQuantizeLinear's scale and zero point for a range that includes 0.
fn range_to_scale(lo: f32, hi: f32) -> (f32, f32) {
    let scale = (hi - lo) / 255.0;
    let zero_point = if scale == 0.0 {
        0.0
    } else {
        (0.0 - lo / scale).clamp(0.0, 255.0).round()
    };
    (scale, zero_point)
}

/// uint8 quantization with the scale and zero point computed from the data's
/// range (which always includes 0).
pub struct DynamicQuantizeLinear;

impl Op for DynamicQuantizeLinear {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        // As ONNX Runtime computes it, in float32: the range always
        // includes 0, the zero point is rounded half away from zero.
        if kernels::on_cpu(x, DType::F32) {
            let quantized = kernels::with_slice::<f32, _>(x, |values| {
                // Both passes on the threads when large: the range of
                // each run, then the quantization of each.
                let (lo, hi) = if values.len() >= 1 << 15 && kernels::threads() > 1 {
                    use rayon::prelude::*;
                    values
                        .par_chunks(1 << 14)
                        .map(rows::min_max_with_zero)
                        .reduce(|| (0.0, 0.0), |a, b| (a.0.min(b.0), a.1.max(b.1)))
                } else {
                    rows::min_max_with_zero(values)
                };
                let (scale, zero_point) = range_to_scale(lo, hi);
                let mut y = vec![0u8; values.len()];
                if scale != 0.0 {
                    kernels::for_row_runs(&mut y, 1, |first, out| {
                        rows::quantize_u8(&values[first..first + out.len()], scale, zero_point, out)
                    });
                }
                (y, scale, zero_point)
            });
            if let Some((y, scale, zero_point)) = quantized {
                let device = x.device();
                return Ok(vec![
                    Value::Tensor(kernels::tensor_from(y, x.dims())?),
                    Value::Tensor(Tensor::new(scale, device).map_err(err)?),
                    Value::Tensor(Tensor::new(zero_point as u8, device).map_err(err)?),
                ]);
            }
        }
        let values: Vec<f32> = x
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .map_err(err)?;
        let lo = values.iter().copied().fold(0.0f32, f32::min);
        let hi = values.iter().copied().fold(0.0f32, f32::max);
        let (scale, zero_point) = range_to_scale(lo, hi);
        let device = x.device();
        let y = if scale == 0.0 {
            x.zeros_like()
                .and_then(|z| z.to_dtype(DType::U8))
                .map_err(err)?
        } else {
            let s = Tensor::new(scale, device).map_err(err)?;
            let z = Tensor::new(zero_point, device).map_err(err)?;
            quantize(
                &x.to_dtype(DType::F32).map_err(err)?,
                &s,
                Some(&z),
                Quantized::UINT8,
            )?
        };
        Ok(vec![
            Value::Tensor(y),
            Value::Tensor(Tensor::new(scale, device).map_err(err)?),
            Value::Tensor(Tensor::new(zero_point as u8, device).map_err(err)?),
        ])
    }
}

/// (A - a_zero_point) x (B - b_zero_point) in int32. B's zero point may be
/// per output column. On the CPU, with a 2-D B, the integer kernels run
/// (`runtime::kernels::igemm`, B packed once when it is a weight); the f64
/// path below is the reference for everything else.
#[derive(Default)]
pub struct MatMulInteger {
    packed: PackCache<PackedIntB>,
}

/// How a fused step turns the int32 sums into floats: scales (one value,
/// one per column, or one per row) and a bias per column.
pub struct ToFloat {
    pub first: (Vec<f32>, ScaleKind),
    pub second: Option<(Vec<f32>, ScaleKind)>,
    pub bias: Option<Vec<f32>>,
    /// GELU after it all: (scale, divide, one, half) of `rows::gelu_in_place`.
    pub gelu: Option<(f32, bool, f32, f32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleKind {
    One,
    PerColumn,
    PerRow,
}

fn scale_of(s: &(Vec<f32>, ScaleKind)) -> igemm::Scale<'_> {
    match s.1 {
        ScaleKind::One => igemm::Scale::One(s.0[0]),
        ScaleKind::PerColumn => igemm::Scale::PerColumn(&s.0),
        ScaleKind::PerRow => igemm::Scale::PerRow(&s.0),
    }
}

impl MatMulInteger {
    /// (rows of the product, columns) for these inputs, when the CPU
    /// kernels take them.
    pub fn product_shape(inputs: &[Option<&Value>]) -> Option<(usize, usize)> {
        let (a, b) = (input(inputs, 0).ok()?, input(inputs, 1).ok()?);
        let (k, n) = match b.dims() {
            [k, n] => (*k, *n),
            _ => return None,
        };
        (a.rank() >= 2 && a.dims()[a.rank() - 1] == k).then(|| (a.elem_count() / k.max(1), n))
    }

    fn on_cpu(&self, inputs: &[Option<&Value>]) -> Result<Option<Tensor>, String> {
        self.on_cpu_to(inputs, None)
    }

    /// The product on the CPU kernels, as int32 or (with `to_float`) as
    /// floats; None when the kernels do not take these inputs.
    pub fn on_cpu_to(
        &self,
        inputs: &[Option<&Value>],
        to_float: Option<&ToFloat>,
    ) -> Result<Option<Tensor>, String> {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        let eight_bit = |t: &Tensor| matches!(t.dtype(), DType::U8 | DType::I16);
        if !kernels::on_cpu(a, a.dtype())
            || !eight_bit(a)
            || !eight_bit(b)
            || b.rank() != 2
            || a.rank() < 2
        {
            return Ok(None);
        }
        let (k, n) = (b.dims()[0], b.dims()[1]);
        if a.dims()[a.rank() - 1] != k {
            return Ok(None);
        }
        let m = a.elem_count() / k.max(1);
        let zero_points = |t: Option<&Tensor>, allowed: usize| -> Option<Vec<i32>> {
            match t {
                None => Some(vec![0]),
                Some(z) if z.elem_count() == 1 || z.elem_count() == allowed => {
                    kernels::small_ints(z)
                }
                Some(_) => None,
            }
        };
        // A per-row zero point of A only when A is the matrix itself.
        let rows_of_a = if a.rank() == 2 { m } else { 1 };
        let (Some(za), Some(zb)) = (
            zero_points(optional(inputs, 2)?, rows_of_a),
            zero_points(optional(inputs, 3)?, n),
        ) else {
            return Ok(None);
        };
        let b_signed = b.dtype() == DType::I16;
        let Some(packed) = self.packed.get_or(b, || {
            kernels::small_ints(b).map(|v| PackedIntB::pack(&v, k, n, b_signed, &zb))
        }) else {
            return Ok(None);
        };
        let mut dims = a.dims().to_vec();
        dims[a.rank() - 1] = n;
        let run = |output: igemm::Output| {
            if a.dtype() == DType::U8 {
                kernels::with_slice::<u8, _>(a, |v| {
                    igemm::matmul_integer(m, IntA::Unsigned(v), &za, &packed, output, true)
                })
            } else {
                kernels::with_slice::<i16, _>(a, |v| {
                    igemm::matmul_integer(m, IntA::Signed(v), &za, &packed, output, true)
                })
            }
        };
        match to_float {
            None => {
                // SAFETY: the product writes all m x n sums (or the buffer
                // is dropped unread).
                let (c, done) =
                    unsafe { kernels::written_by(m * n, |c| run(igemm::Output::Int32(c))) };
                if done.is_none() {
                    return Ok(None);
                }
                kernels::tensor_from(c, &dims).map(Some)
            }
            Some(f) => {
                let fits = |s: &(Vec<f32>, ScaleKind)| match s.1 {
                    ScaleKind::One => !s.0.is_empty(),
                    ScaleKind::PerColumn => s.0.len() == n,
                    ScaleKind::PerRow => s.0.len() == m,
                };
                if !fits(&f.first)
                    || !f.second.as_ref().is_none_or(fits)
                    || f.bias.as_ref().is_some_and(|b| b.len() != n)
                {
                    return Ok(None);
                }
                // Floats from the kernel's tiles (in registers on AVX-512),
                // GELU on each finished stretch of rows.
                let gelu = f.gelu.map(|(scale, divide, one, half)| {
                    move |row: &mut [f32]| rows::gelu_in_place(row, scale, divide, one, half)
                });
                // SAFETY: the product writes all m x n floats before the
                // activation reads them (or the buffer is dropped unread).
                let (c, done) = unsafe {
                    kernels::written_by(m * n, |c| {
                        run(igemm::Output::Float {
                            out: c,
                            s1: scale_of(&f.first),
                            s2: f.second.as_ref().map(scale_of),
                            bias: f.bias.as_deref(),
                            activation: gelu.as_ref().map(|g| g as _),
                        })
                    })
                };
                if done.is_none() {
                    return Ok(None);
                }
                kernels::tensor_from(c, &dims).map(Some)
            }
        }
    }
}

fn centred(
    t: &Tensor,
    zp: Option<&Tensor>,
    per_column_rank: Option<usize>,
) -> Result<Tensor, String> {
    let v = t.to_dtype(DType::F64).map_err(err)?;
    match zp {
        None => Ok(v),
        Some(z) => {
            let z = z.to_dtype(DType::F64).map_err(err)?;
            // A 1-D zero point of A is per row: shape it [M, 1].
            let z = match per_column_rank {
                None if z.rank() == 1 && z.elem_count() > 1 => z.unsqueeze(1).map_err(err)?,
                _ => z,
            };
            v.broadcast_sub(&z).map_err(err)
        }
    }
}

impl MatMulInteger {
    /// B as the reference path reads it: the pinned weight's values when B
    /// is only its shape.
    fn b_values(&self, b: &Tensor) -> Result<Tensor, String> {
        match self.packed.pinned() {
            Some(packed) => {
                let dtype = if packed.signed { DType::I16 } else { DType::U8 };
                Tensor::from_vec(packed.unpack(), b.dims(), b.device())
                    .and_then(|t| t.to_dtype(dtype))
                    .map_err(err)
            }
            None => Ok(b.clone()),
        }
    }
}

impl Op for MatMulInteger {
    /// Packs an 8-bit matrix weight B with its zero point (a weight too, or
    /// absent).
    fn pin_weights(&self, inputs: &[Option<&Value>], present: &[bool]) -> Vec<usize> {
        let Some(Some(Value::Tensor(b))) = inputs.get(1) else {
            return Vec::new();
        };
        if !kernels::on_cpu(b, b.dtype())
            || !matches!(b.dtype(), DType::U8 | DType::I16)
            || b.rank() != 2
        {
            return Vec::new();
        }
        let (k, n) = (b.dims()[0], b.dims()[1]);
        let zb = match (
            present.get(3).copied().unwrap_or(false),
            inputs.get(3).copied().flatten(),
        ) {
            (false, _) => Some(vec![0]),
            (true, Some(Value::Tensor(z))) if z.elem_count() == 1 || z.elem_count() == n => {
                kernels::small_ints(z)
            }
            _ => None,
        };
        let packed = zb.and_then(|zb| {
            kernels::small_ints(b).map(|v| PackedIntB::pack(&v, k, n, b.dtype() == DType::I16, &zb))
        });
        match packed {
            Some(packed) if self.packed.pinned().is_none() => {
                self.packed.pin(packed);
                vec![1]
            }
            _ => Vec::new(),
        }
    }

    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        if let Some(y) = self.on_cpu(inputs)? {
            return Ok(vec![Value::Tensor(y)]);
        }
        let a = centred(input(inputs, 0)?, optional(inputs, 2)?, None)?;
        let b = self.b_values(input(inputs, 1)?)?;
        let b = centred(&b, optional(inputs, 3)?, Some(1))?;
        let y = matmul(&a, &b)?.to_dtype(DType::I32).map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}

/// Quantized matrix product with requantization to y_scale / y_zero_point.
pub struct QLinearMatMul {
    pub output: Option<Quantized>,
}

impl Op for QLinearMatMul {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let a = centred(input(inputs, 0)?, optional(inputs, 2)?, None)?;
        let a_scale = input(inputs, 1)?.to_dtype(DType::F64).map_err(err)?;
        let b = centred(input(inputs, 3)?, optional(inputs, 5)?, Some(1))?;
        let b_scale = input(inputs, 4)?.to_dtype(DType::F64).map_err(err)?;
        let y_scale = input(inputs, 6)?;
        let y_zp = optional(inputs, 7)?;
        let a_scale = if a_scale.rank() == 1 && a_scale.elem_count() > 1 {
            a_scale.unsqueeze(1).map_err(err)?
        } else {
            a_scale
        };
        let real = matmul(
            &a.broadcast_mul(&a_scale).map_err(err)?,
            &b.broadcast_mul(&b_scale).map_err(err)?,
        )?;
        let out = self.output.unwrap_or_else(|| {
            y_zp.map_or(Quantized::UINT8, |z| Quantized::from_storage(z.dtype()))
        });
        Ok(vec![Value::Tensor(quantize(&real, y_scale, y_zp, out)?)])
    }
}
