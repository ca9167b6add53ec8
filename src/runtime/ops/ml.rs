//! The ai.onnx.ml operators scikit-learn exports use.

use candle_core::{DType, Tensor};

use super::{err, input, int_values, Op, OpResult, Value};
use crate::data::FeatureScaling;
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
        // Offset and scale repeated over as many rows as make a multiple of
        // 16 values, so that a run is one long vector loop instead of a
        // short loop per row (30 features: 16 + 8 + 6 values a row, and
        // the row's overhead, made the step a tenth of a small MLP).
        // 16 over the largest power of two (at most 16) dividing the width.
        let period_rows = 16 >> width.trailing_zeros().min(4);
        let period_rows = if width * period_rows <= 4096 {
            period_rows
        } else {
            1
        };
        let (offset, scale) = (
            per_feature(&self.offset, 0.0).repeat(period_rows),
            per_feature(&self.scale, 1.0).repeat(period_rows),
        );
        let period = offset.len();
        let out = kernels::with_slice::<f32, _>(x, |x| {
            // SAFETY: the periods and the remainder cover `out` (as long as
            // `run`, whole rows), and `apply` writes each of their values.
            unsafe {
                kernels::map_rows(x, width, |_, run, out| {
                    let apply = |o: &mut [f32], v: &[f32]| {
                        for (((o, v), off), s) in o.iter_mut().zip(v).zip(&offset).zip(&scale) {
                            *o = FeatureScaling::scale_one(*v, *off, *s);
                        }
                    };
                    let mut outs = out.chunks_exact_mut(period);
                    let mut ins = run.chunks_exact(period);
                    for (o, v) in (&mut outs).zip(&mut ins) {
                        apply(o, v);
                    }
                    // The last rows, fewer than a period (whole rows: the
                    // pattern starts over at each period).
                    apply(outs.into_remainder(), ins.remainder());
                })
            }
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
        let direct = match x.dtype() {
            DType::I64 => gather_last::<i64>(x, &indices, size),
            DType::I32 => gather_last::<i32>(x, &indices, size),
            DType::F32 => gather_last::<f32>(x, &indices, size),
            DType::F64 => gather_last::<f64>(x, &indices, size),
            _ => None,
        };
        if let Some(y) = direct {
            return Ok(vec![Value::Tensor(y?)]);
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

/// ArrayFeatureExtractor on the CPU: the values at `indices` (checked to
/// be in 0..size) of every row of `x`'s last axis, read where they lie (a
/// classifier's label from its class list: candle's index_select needs an
/// index tensor and a copy of `x` first). Rank 1 gives [1, n], as ONNX
/// Runtime does.
fn gather_last<T: candle_core::WithDType>(
    x: &Tensor,
    indices: &[i64],
    size: usize,
) -> Option<Result<Tensor, String>> {
    if !kernels::on_cpu(x, T::DTYPE) || size == 0 {
        return None;
    }
    let out = kernels::with_slice::<T, _>(x, |values| {
        let mut out = Vec::with_capacity(values.len() / size * indices.len());
        for row in values.chunks_exact(size) {
            out.extend(indices.iter().map(|&i| row[i as usize]));
        }
        out
    })?;
    let mut dims = x.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = indices.len();
    }
    if x.rank() == 1 {
        dims.insert(0, 1);
    }
    Some(kernels::tensor_from(out, &dims))
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn scaler_repeats_its_pattern_over_rows_for_every_width() {
        // Widths whose pattern spans 1, 2, 4, 8 and 16 rows, and one too
        // wide to repeat; row counts that end inside a pattern.
        for width in [1, 2, 3, 8, 12, 16, 30, 301] {
            for rows in [1, 7, 33] {
                let x: Vec<f32> = (0..width * rows).map(|i| i as f32 * 0.25 - 3.0).collect();
                let offset: Vec<f32> = (0..width).map(|j| j as f32 * 0.5).collect();
                let scale: Vec<f32> = (0..width).map(|j| 1.0 + j as f32 / 7.0).collect();
                let scaler = Scaler {
                    offset: offset.clone(),
                    scale: scale.clone(),
                };
                let t = Tensor::from_vec(x.clone(), (rows, width), &Device::Cpu).unwrap();
                let y = scaler.on_cpu(&t).expect("applies").unwrap();
                let got = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let want: Vec<f32> = x
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v - offset[i % width]) * scale[i % width])
                    .collect();
                assert_eq!(got, want, "width {width}, {rows} rows");
            }
        }
    }

    #[test]
    fn array_feature_extractor_reads_the_indices_of_every_row() {
        let classes = Tensor::new(&[10i32, 20], &Device::Cpu).unwrap();
        let y = gather_last::<i32>(&classes, &[1, 0, 1], 2)
            .expect("applies")
            .unwrap();
        assert_eq!(y.dims(), &[1, 3]);
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<i32>().unwrap(),
            vec![20, 10, 20]
        );
        let x = Tensor::new(&[[1f32, 2., 3.], [4., 5., 6.]], &Device::Cpu).unwrap();
        let y = gather_last::<f32>(&x, &[2, 2, 0], 3)
            .expect("applies")
            .unwrap();
        assert_eq!(y.dims(), &[2, 3]);
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![3., 3., 1., 6., 6., 4.]
        );
    }
}
