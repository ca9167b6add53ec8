//! Comparisons and boolean logic; booleans are u8 tensors of 0 and 1.

use candle_core::{DType, Tensor};

use super::{err, input, Op, OpResult, Value};

type Compare = fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>;

struct Comparison(Compare);

impl Op for Comparison {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let y = (self.0)(input(inputs, 0)?, input(inputs, 1)?).map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}

pub fn comparison(op: &str) -> Result<Box<dyn Op>, String> {
    let f: Compare = match op {
        "Greater" => |a, b| a.broadcast_gt(b),
        "Less" => |a, b| a.broadcast_lt(b),
        "GreaterOrEqual" => |a, b| a.broadcast_ge(b),
        "LessOrEqual" => |a, b| a.broadcast_le(b),
        // x != 0 on both sides, then combined.
        "And" => |a, b| {
            a.ne(&a.zeros_like()?)?
                .broadcast_mul(&b.ne(&b.zeros_like()?)?)
        },
        "Or" => |a, b| {
            a.ne(&a.zeros_like()?)?
                .broadcast_maximum(&b.ne(&b.zeros_like()?)?)
        },
        "Xor" => |a, b| {
            a.ne(&a.zeros_like()?)?
                .broadcast_ne(&b.ne(&b.zeros_like()?)?)
        },
        other => return Err(format!("{other} is not a comparison")),
    };
    Ok(Box::new(Comparison(f)))
}

pub struct Not;

impl Op for Not {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let y = x
            .eq(&x.zeros_like().map_err(err)?)
            .and_then(|t| t.to_dtype(DType::U8))
            .map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}
