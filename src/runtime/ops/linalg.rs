//! Matrix products: MatMul (numpy semantics, batched with broadcasting) and
//! Gemm (alpha * A' B' + beta * C, the bias optional).

use candle_core::Tensor;

use super::{err, input, optional, Op, OpResult, Value};

pub struct MatMul;

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

impl Op for MatMul {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        Ok(vec![Value::Tensor(matmul(
            input(inputs, 0)?,
            input(inputs, 1)?,
        )?)])
    }
}

pub struct Gemm {
    pub alpha: f64,
    pub beta: f64,
    pub trans_a: bool,
    pub trans_b: bool,
}

impl Op for Gemm {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
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
