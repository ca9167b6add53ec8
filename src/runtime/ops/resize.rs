//! Resize: nearest, linear and cubic interpolation along any axes, with the
//! coordinate transformations of the ONNX specification, computed one axis
//! at a time in f64 as its reference implementation does.

use candle_core::{DType, Tensor};

use super::{axis, element_count, err, input, int_values, optional, Op, OpResult, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Nearest,
    Linear,
    Cubic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nearest {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfCropAndResize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AspectPolicy {
    Stretch,
    NotLarger,
    NotSmaller,
}

pub struct Resize {
    pub mode: Mode,
    pub nearest: Nearest,
    pub transform: Transform,
    pub cubic_a: f64,
    pub exclude_outside: bool,
    pub extrapolation: f64,
    pub axes: Option<Vec<i64>>,
    pub policy: AspectPolicy,
}

/// Where output position `x` falls in the input, or `None` outside the crop
/// (tf_crop_and_resize).
fn source(
    t: Transform,
    x: f64,
    scale: f64,
    input: f64,
    output: f64,
    roi: (f64, f64),
) -> Option<f64> {
    let out_float = scale * input;
    Some(match t {
        Transform::AlignCorners => {
            if out_float == 1.0 {
                0.0
            } else {
                x * (input - 1.0) / (out_float - 1.0)
            }
        }
        Transform::Asymmetric => x / scale,
        Transform::TfCropAndResize => {
            let v = if out_float == 1.0 {
                (roi.1 - roi.0) * (input - 1.0) / 2.0
            } else {
                x * (roi.1 - roi.0) * (input - 1.0) / (out_float - 1.0)
            } + roi.0 * (input - 1.0);
            if v < 0.0 || v > input - 1.0 {
                return None;
            }
            v
        }
        Transform::PytorchHalfPixel => {
            if out_float == 1.0 {
                -0.5
            } else {
                (x + 0.5) / scale - 0.5
            }
        }
        Transform::HalfPixel => (x + 0.5) / scale - 0.5,
        Transform::HalfPixelSymmetric => {
            let adjustment = output / out_float;
            let offset = input / 2.0 * (1.0 - adjustment);
            offset + (x + 0.5) / scale - 0.5
        }
    })
}

impl Resize {
    /// (input index, weight) pairs for one output position.
    fn taps(&self, xo: f64, n: usize) -> Vec<(usize, f64)> {
        // x0 = ceil(xo) - 1 and r in (0, 1]: a whole xo gives r = 1.
        let x0 = xo.ceil() as i64 - 1;
        let r = xo - x0 as f64;
        let (offsets, mut coeffs): (Vec<i64>, Vec<f64>) = match self.mode {
            Mode::Nearest => {
                let upper = r == 1.0
                    || match self.nearest {
                        Nearest::RoundPreferFloor => r > 0.5,
                        Nearest::RoundPreferCeil => r >= 0.5,
                        Nearest::Floor => false,
                        Nearest::Ceil => true,
                    };
                (
                    vec![0, 1],
                    if upper {
                        vec![0.0, 1.0]
                    } else {
                        vec![1.0, 0.0]
                    },
                )
            }
            Mode::Linear => (vec![0, 1], vec![1.0 - r, r]),
            Mode::Cubic => {
                let a = self.cubic_a;
                let s = 1.0 - r;
                (
                    vec![-1, 0, 1, 2],
                    vec![
                        ((a * (r + 1.0) - 5.0 * a) * (r + 1.0) + 8.0 * a) * (r + 1.0) - 4.0 * a,
                        ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
                        ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0,
                        ((a * (s + 1.0) - 5.0 * a) * (s + 1.0) + 8.0 * a) * (s + 1.0) - 4.0 * a,
                    ],
                )
            }
        };
        let idx: Vec<i64> = offsets.iter().map(|o| x0 + o).collect();
        if self.exclude_outside {
            for (c, &i) in coeffs.iter_mut().zip(&idx) {
                if i < 0 || i >= n as i64 {
                    *c = 0.0;
                }
            }
            let total: f64 = coeffs.iter().sum();
            if total != 0.0 {
                coeffs.iter_mut().for_each(|c| *c /= total);
            }
        }
        // Outside the input the edge value repeats.
        idx.iter()
            .zip(coeffs)
            .map(|(&i, c)| (i.clamp(0, n as i64 - 1) as usize, c))
            .collect()
    }
}

/// An optional input of floats (roi, scales); empty counts as absent.
fn float_list(inputs: &[Option<&Value>], i: usize) -> Result<Option<Vec<f64>>, String> {
    let values = optional(inputs, i)?
        .map(|t| {
            t.to_dtype(DType::F64)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f64>())
        })
        .transpose()
        .map_err(err)?;
    Ok(values.filter(|v| !v.is_empty()))
}

impl Op for Resize {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let rank = x.rank();
        let dims = x.dims().to_vec();
        let roi = float_list(inputs, 1)?;
        let scales = float_list(inputs, 2)?;
        let sizes = optional(inputs, 3)?
            .map(int_values)
            .transpose()?
            .filter(|v| !v.is_empty());
        let axes: Vec<usize> = match &self.axes {
            Some(a) => a.iter().map(|&v| axis(v, rank)).collect::<Result<_, _>>()?,
            None => (0..rank).collect(),
        };
        let mut scale = vec![1.0f64; rank];
        let mut out = dims.clone();
        match (scales, sizes) {
            (_, Some(sizes)) => {
                if sizes.len() != axes.len() {
                    return Err(format!("{} sizes for {} axes", sizes.len(), axes.len()));
                }
                for (k, &a) in axes.iter().enumerate() {
                    out[a] = sizes[k].max(0) as usize;
                    scale[a] = out[a] as f64 / dims[a] as f64;
                }
                if self.policy != AspectPolicy::Stretch {
                    let pick = axes.iter().map(|&a| scale[a]);
                    let s = if self.policy == AspectPolicy::NotLarger {
                        pick.fold(f64::INFINITY, f64::min)
                    } else {
                        pick.fold(f64::NEG_INFINITY, f64::max)
                    };
                    for &a in &axes {
                        scale[a] = s;
                        out[a] = (s * dims[a] as f64 + 0.5) as usize;
                    }
                }
            }
            (Some(scales), None) => {
                if scales.len() != axes.len() {
                    return Err(format!("{} scales for {} axes", scales.len(), axes.len()));
                }
                for (k, &a) in axes.iter().enumerate() {
                    if scales[k].is_nan() || scales[k] <= 0.0 {
                        return Err(format!("scale {} is not positive", scales[k]));
                    }
                    scale[a] = scales[k];
                    out[a] = (scales[k] * dims[a] as f64) as usize;
                }
            }
            (None, None) => return Err("Resize needs scales or sizes".into()),
        }
        element_count(&out)?;
        let mut values: Vec<f64> = x
            .to_dtype(DType::F64)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .map_err(err)?;
        let mut cur = dims.clone();
        for a in 0..rank {
            let roi_a = roi.as_ref().map_or((0.0, 1.0), |r| {
                let k = axes.iter().position(|&v| v == a);
                match (k, r.len()) {
                    (Some(k), l) if l == 2 * axes.len() => (r[k], r[k + axes.len()]),
                    (None, _) => (0.0, 1.0),
                    (_, l) if l == 2 * rank => (r[a], r[a + rank]),
                    _ => (0.0, 1.0),
                }
            });
            let unchanged =
                (scale[a] - 1.0).abs() < 1e-12 && out[a] == cur[a] && roi_a == (0.0, 1.0);
            if unchanged {
                continue;
            }
            if cur[a] == 0 {
                return Err(format!("cannot resize an empty axis {a}"));
            }
            let outer: usize = cur[..a].iter().product();
            let inner: usize = cur[a + 1..].iter().product();
            let n = cur[a];
            let m = out[a];
            let plan: Vec<Option<Vec<(usize, f64)>>> = (0..m)
                .map(|j| {
                    source(
                        self.transform,
                        j as f64,
                        scale[a],
                        n as f64,
                        m as f64,
                        roi_a,
                    )
                    .map(|xo| self.taps(xo, n))
                })
                .collect();
            let mut next = vec![0.0; outer * m * inner];
            for o in 0..outer {
                for (j, taps) in plan.iter().enumerate() {
                    for i in 0..inner {
                        next[(o * m + j) * inner + i] = match taps {
                            None => self.extrapolation,
                            Some(taps) => taps
                                .iter()
                                .map(|&(k, w)| w * values[(o * n + k) * inner + i])
                                .sum(),
                        };
                    }
                }
            }
            values = next;
            cur[a] = m;
        }
        // Integers saturate to their type's range, as the reference casts.
        let dtype = x.dtype();
        if !dtype.is_float() {
            let (lo, hi) = match dtype {
                DType::U8 => (0.0, 255.0),
                DType::I16 => (-32768.0, 32767.0),
                DType::I32 => (i32::MIN as f64, i32::MAX as f64),
                _ => (f64::MIN, f64::MAX),
            };
            values
                .iter_mut()
                .for_each(|v| *v = v.round_ties_even().clamp(lo, hi));
        }
        let y = Tensor::from_vec(values, cur.as_slice(), x.device())
            .and_then(|t| t.to_dtype(dtype))
            .map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}
