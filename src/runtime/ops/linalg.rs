//! Matrix products: MatMul (numpy semantics, batched with broadcasting) and
//! Gemm (alpha * A' B' + beta * C, the bias optional).
//!
//! On the CPU, float32 products run on mlctl's own kernels
//! (`runtime::kernels::sgemm`): a right-hand side that is a weight is packed
//! once, on the first call, and kept with the operator. Other devices, types
//! and shapes go through candle.

use std::sync::{Arc, Mutex};

use candle_core::{DType, Tensor, TensorId};
use rayon::prelude::*;

use super::{err, input, optional, Op, OpResult, Value};
use crate::runtime::kernels::{self, sgemm::PackedB};

/// The packed form of the last right-hand side seen, by tensor identity:
/// weights keep theirs across calls (the model hands the same tensor every
/// time); activations are packed afresh. A weight packed at load time is
/// pinned: then the model keeps only its shape (`Op::pin_weights`), and the
/// pinned form answers whatever tensor comes.
pub struct PackCache<P> {
    last: Mutex<Option<(TensorId, Arc<P>)>>,
    pinned: std::sync::OnceLock<Arc<P>>,
}

impl<P> Default for PackCache<P> {
    fn default() -> Self {
        PackCache {
            last: Mutex::new(None),
            pinned: std::sync::OnceLock::new(),
        }
    }
}

impl<P> PackCache<P> {
    /// Keeps `packed` for good (the first one pinned stays).
    pub fn pin(&self, packed: P) {
        let _ = self.pinned.set(Arc::new(packed));
    }

    pub fn pinned(&self) -> Option<Arc<P>> {
        self.pinned.get().cloned()
    }

    pub fn get_or(&self, t: &Tensor, pack: impl FnOnce() -> Option<P>) -> Option<Arc<P>> {
        if let Some(pinned) = self.pinned() {
            return Some(pinned);
        }
        let mut slot = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, packed)) = slot.as_ref() {
            if *id == t.id() {
                return Some(packed.clone());
            }
        }
        let packed = Arc::new(pack()?);
        *slot = Some((t.id(), packed.clone()));
        Some(packed)
    }
}

#[derive(Default)]
pub struct MatMul {
    pub packed: PackCache<PackedB>,
}

pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    // A vector operand is a matrix with one row (left) or column (right),
    // and that dimension is dropped again from the result.
    let (a_vec, b_vec) = (a.rank() == 1, b.rank() == 1);
    let a = if a_vec {
        a.unsqueeze(0).map_err(err)?
    } else {
        a.clone()
    };
    let b = if b_vec {
        b.unsqueeze(1).map_err(err)?
    } else {
        b.clone()
    };
    let mut y = a
        .contiguous()
        .and_then(|a| a.broadcast_matmul(&b.contiguous()?))
        .map_err(err)?;
    if a_vec {
        y = y.squeeze(y.rank() - 2).map_err(err)?;
    }
    if b_vec {
        y = y.squeeze(y.rank() - 1).map_err(err)?;
    }
    Ok(y)
}

/// A (..., m, k) times a 2-D B (k, n) on the CPU kernels, the leading
/// dimensions of A folded into its rows, plus a bias per column if given:
/// the values and the shape.
pub fn matmul_weight_values(
    a: &Tensor,
    packed: &PackedB,
    bias: Option<&[f32]>,
    activation: kernels::Activation,
) -> Option<(Vec<f32>, Vec<usize>)> {
    let k = *a.dims().last()?;
    if k != packed.k || a.rank() < 2 {
        return None;
    }
    let m = a.elem_count() / k.max(1);
    let mut dims = a.dims().to_vec();
    *dims.last_mut()? = packed.n;
    // A matrix laid out column by column (a transposed view: a replay's
    // batch of features, as its columns are read) is read where it lies.
    let by_columns = !a.is_contiguous() && a.rank() == 2 && a.stride()[0] == 1;
    // SAFETY: sgemm writes all m x n values (when A is read at all; if not,
    // the buffer is dropped unread).
    let (c, done) = unsafe {
        kernels::written_by(m * packed.n, |c| match by_columns {
            true => kernels::with_strided::<f32, _>(a, |all, start, strides| {
                let lda = strides[1];
                kernels::sgemm::sgemm_laid_out::<true>(
                    m,
                    &all[start..],
                    lda,
                    packed,
                    bias,
                    activation,
                    c,
                    true,
                )
            }),
            false => kernels::with_slice::<f32, _>(a, |a| {
                kernels::sgemm::sgemm(m, a, k, packed, bias, activation, c, true)
            }),
        })
    };
    done?;
    Some((c, dims))
}

fn matmul_weight(a: &Tensor, packed: &PackedB) -> Option<Tensor> {
    let (c, dims) = matmul_weight_values(a, packed, None, None)?;
    kernels::tensor_from(c, &dims).ok()
}

/// Batched A (..., m, k) times B (..., k, n) with the same leading
/// dimensions: batches in parallel when there are enough of them.
fn matmul_batched(a: &Tensor, b: &Tensor) -> Option<Tensor> {
    let (ad, bd) = (a.dims(), b.dims());
    let r = ad.len();
    if r < 3 || bd.len() != r || ad[..r - 2] != bd[..r - 2] || ad[r - 1] != bd[r - 2] {
        return None;
    }
    let (m, k, n) = (ad[r - 2], ad[r - 1], bd[r - 1]);
    let batch_dims = &ad[..r - 2];
    let batches: usize = batch_dims.iter().product();
    let mut dims = ad.to_vec();
    dims[r - 1] = n;
    // A's rows may be any distance apart but each row must be contiguous;
    // B may have any strides (attention's K^T is a transposed view).
    let a = if a.stride()[r - 1] == 1 {
        a.clone()
    } else {
        a.contiguous().ok()?
    };
    // SAFETY: every batch's sgemm writes its m x n values (or nothing is
    // read: the buffer is dropped when A or B cannot be read).
    let (c, done) = unsafe {
        kernels::written_by(batches * m * n, |c: &mut [f32]| {
            kernels::with_strided::<f32, _>(&a, |av, a0, astr| {
                kernels::with_strided::<f32, _>(b, |bv, b0, bstr| {
                    let start = |i: usize, base: usize, strides: &[usize]| {
                        kernels::batch_start(i, base, batch_dims, strides)
                    };
                    let one = |(i, c): (usize, &mut [f32]), parallel: bool| {
                        let (ai, bi) = (start(i, a0, astr), start(i, b0, bstr));
                        let packed = PackedB::pack(&bv[bi..], k, n, bstr[r - 2], bstr[r - 1]);
                        kernels::sgemm::sgemm(
                            m,
                            &av[ai..],
                            astr[r - 2],
                            &packed,
                            None,
                            None,
                            c,
                            parallel,
                        );
                    };
                    if batches >= kernels::threads()
                        && kernels::threads() > 1
                        && m * n * k * batches >= 1 << 17
                    {
                        c.par_chunks_mut((m * n).max(1))
                            .enumerate()
                            .for_each(|x| one(x, false));
                    } else {
                        c.chunks_mut((m * n).max(1))
                            .enumerate()
                            .for_each(|x| one(x, true));
                    }
                })
            })
        })
    };
    done??;
    kernels::tensor_from(c, &dims).ok()
}

impl MatMul {
    /// Packs a float32 matrix weight B for good (see `Op::pin_weights`).
    pub fn pin_weight(&self, b: Option<&Value>) -> Vec<usize> {
        let Some(Value::Tensor(b)) = b else {
            return Vec::new();
        };
        if !kernels::on_cpu(b, DType::F32) || b.rank() != 2 {
            return Vec::new();
        }
        let (k, n) = (b.dims()[0], b.dims()[1]);
        match kernels::with_slice::<f32, _>(b, |v| PackedB::pack(v, k, n, n, 1)) {
            Some(packed) if self.packed.pinned().is_none() => {
                self.packed.pin(packed);
                vec![1]
            }
            _ => Vec::new(),
        }
    }

    /// B as the product reads it: the pinned weight's values when B is
    /// only its shape.
    fn b_values(&self, b: &Tensor) -> Result<Tensor, String> {
        match self.packed.pinned() {
            Some(packed) => Tensor::from_vec(packed.unpack(), b.dims(), b.device()).map_err(err),
            None => Ok(b.clone()),
        }
    }
}

impl Op for MatMul {
    fn pin_weights(&self, inputs: &[Option<&Value>], _present: &[bool]) -> Vec<usize> {
        self.pin_weight(inputs.get(1).copied().flatten())
    }

    /// A by a matrix B: `matmul_weight_values`.
    fn reads_by_columns(&self, input: usize) -> bool {
        input == 0
    }

    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        if kernels::on_cpu(a, DType::F32) && kernels::on_cpu(b, DType::F32) {
            let fast = if b.rank() == 2 {
                let (k, n) = (b.dims()[0], b.dims()[1]);
                self.packed
                    .get_or(b, || {
                        kernels::with_slice::<f32, _>(b, |v| PackedB::pack(v, k, n, n, 1))
                    })
                    .and_then(|packed| matmul_weight(a, &packed))
            } else {
                matmul_batched(a, b)
            };
            if let Some(y) = fast {
                return Ok(vec![Value::Tensor(y)]);
            }
        }
        Ok(vec![Value::Tensor(matmul(a, &self.b_values(b)?)?)])
    }
}

pub struct Gemm {
    pub alpha: f64,
    pub beta: f64,
    pub trans_a: bool,
    pub trans_b: bool,
    pub packed: PackCache<PackedB>,
}

impl Gemm {
    /// alpha A' B' on the CPU kernels (B' packed through its strides).
    fn product_on_cpu(&self, a: &Tensor, b: &Tensor) -> Option<Tensor> {
        if !kernels::on_cpu(a, DType::F32) || !kernels::on_cpu(b, DType::F32) || b.rank() != 2 {
            return None;
        }
        let a = if self.trans_a {
            a.t().ok()?.contiguous().ok()?
        } else {
            a.clone()
        };
        let (rows, cols) = (b.dims()[0], b.dims()[1]);
        let (k, n) = if self.trans_b {
            (cols, rows)
        } else {
            (rows, cols)
        };
        let packed = self.packed.get_or(b, || {
            kernels::with_slice::<f32, _>(b, |v| {
                if self.trans_b {
                    PackedB::pack(v, k, n, 1, k)
                } else {
                    PackedB::pack(v, k, n, n, 1)
                }
            })
        })?;
        let y = matmul_weight(&a, &packed)?;
        if self.alpha != 1.0 {
            return y.affine(self.alpha, 0.0).ok();
        }
        Some(y)
    }
}

impl Op for Gemm {
    /// A untransposed: `matmul_weight_values`.
    fn reads_by_columns(&self, input: usize) -> bool {
        input == 0 && !self.trans_a
    }

    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let mut y = match self.product_on_cpu(input(inputs, 0)?, input(inputs, 1)?) {
            Some(y) => y,
            None => {
                let mut a = input(inputs, 0)?.clone();
                let mut b = input(inputs, 1)?.clone();
                if self.trans_a {
                    a = a.t().map_err(err)?;
                }
                if self.trans_b {
                    b = b.t().map_err(err)?;
                }
                let mut y = matmul(&a, &b)?;
                if self.alpha != 1.0 {
                    y = y.affine(self.alpha, 0.0).map_err(err)?;
                }
                y
            }
        };
        if let Some(c) = optional(inputs, 2)? {
            let c = if self.beta != 1.0 {
                c.affine(self.beta, 0.0).map_err(err)?
            } else {
                c.clone()
            };
            y = y.broadcast_add(&c).map_err(err)?;
        }
        Ok(vec![Value::Tensor(y)])
    }
}
