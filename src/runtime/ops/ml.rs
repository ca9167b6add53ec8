//! The ai.onnx.ml operators scikit-learn exports use.

use candle_core::{DType, Tensor};

use super::{err, input, int_values, Op, OpResult, Value};
use crate::runtime::kernels;

/// Y = (X - offset) * scale, per feature (last axis), as float32.
pub struct Scaler {
    pub offset: Vec<f32>,
    pub scale: Vec<f32>,
}

impl Scaler {
    /// (x - offset) * scale in one pass over contiguous f32 rows on the CPU
    /// (candle's broadcast ops take two passes, each through its own
    /// spinning thread pool); None where that does not apply.
    fn on_cpu(&self, x: &Tensor) -> Option<Result<Tensor, String>> {
        let width = *x.dims().last()?;
        let fits = |v: &[f32]| v.len() <= 1 || v.len() == width;
        if !kernels::on_cpu(x, DType::F32)
            || width == 0
            || !fits(&self.offset)
            || !fits(&self.scale)
        {
            return None;
        }
        let per_feature = |v: &[f32], default: f32| match v {
            [] => vec![default; width],
            [one] => vec![*one; width],
            v => v.to_vec(),
        };
        let (offset, scale) = (
            per_feature(&self.offset, 0.0),
            per_feature(&self.scale, 1.0),
        );
        let out = kernels::with_slice::<f32, _>(x, |x| {
            kernels::map_rows(x, width, |_, run, out| {
                for row in run.chunks(width) {
                    out.extend(
                        row.iter()
                            .zip(&offset)
                            .zip(&scale)
                            .map(|((v, o), s)| (v - o) * s),
                    );
                }
            })
        })?;
        Some(kernels::tensor_from(out, x.dims()))
    }
}

impl Op for Scaler {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?.to_dtype(DType::F32).map_err(err)?;
        if let Some(y) = self.on_cpu(&x) {
            return Ok(vec![Value::Tensor(y?)]);
        }
        let device = x.device().clone();
        let vector = |v: &[f32], default: f32| {
            let v = if v.is_empty() {
                vec![default]
            } else {
                v.to_vec()
            };
            let n = v.len();
            Tensor::from_vec(v, n, &device)
        };
        let offset = vector(&self.offset, 0.0).map_err(err)?;
        let scale = vector(&self.scale, 1.0).map_err(err)?;
        let y = x
            .broadcast_sub(&offset)
            .and_then(|t| t.broadcast_mul(&scale))
            .map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}

/// Y = X[..., indices] along the last axis; a 1-D X gives a [1, n] result,
/// as ONNX Runtime does.
pub struct ArrayFeatureExtractor;

impl Op for ArrayFeatureExtractor {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let indices = int_values(input(inputs, 1)?)?;
        let last = x
            .rank()
            .checked_sub(1)
            .ok_or("ArrayFeatureExtractor needs a tensor of rank >= 1")?;
        let size = x.dims()[last];
        if let Some(bad) = indices.iter().find(|&&i| i < 0 || i as usize >= size) {
            return Err(format!("index {bad} is out of range for {size} features"));
        }
        let idx: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let n = idx.len();
        let idx = Tensor::from_vec(idx, n, x.device()).map_err(err)?;
        let mut y = x
            .contiguous()
            .and_then(|x| x.index_select(&idx, last))
            .map_err(err)?;
        if x.rank() == 1 {
            y = y.unsqueeze(0).map_err(err)?;
        }
        Ok(vec![Value::Tensor(y)])
    }
}

/// Probabilities [N, C] to one probability per class label.
pub struct ZipMap {
    labels: Vec<String>,
}

impl ZipMap {
    pub fn new(ints: Option<Vec<i64>>, strings: Option<Vec<String>>) -> Result<Self, String> {
        let labels = match (ints, strings) {
            (Some(i), _) if !i.is_empty() => i.iter().map(|v| v.to_string()).collect(),
            (_, Some(s)) if !s.is_empty() => s,
            _ => return Err("ZipMap needs classlabels_int64s or classlabels_strings".into()),
        };
        Ok(ZipMap { labels })
    }
}

impl Op for ZipMap {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let p = input(inputs, 0)?;
        let classes = p.dims().last().copied().unwrap_or(0);
        if classes != self.labels.len() {
            return Err(format!(
                "{} probabilities per row for {} class labels",
                classes,
                self.labels.len()
            ));
        }
        Ok(vec![Value::ClassMap {
            labels: self.labels.clone(),
            probabilities: p.clone(),
        }])
    }
}
