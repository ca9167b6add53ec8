//! Convolution, pooling and batch normalisation for image-like tensors
//! (N, C, spatial...). Conv runs on candle's kernels (1-D and 2-D, equal
//! strides and dilations per axis); pooling is computed directly for any
//! number of spatial axes, with pads, dilations, ceil_mode and
//! count_include_pad, as the ONNX specification defines them.

use candle_core::{DType, Tensor};

use super::{err, float_only, input, optional, Op, OpResult, Value};

/// How padding is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum AutoPad {
    /// Explicit `pads` (begins then ends), zeros by default.
    NotSet(Vec<i64>),
    Valid,
    SameUpper,
    SameLower,
}

impl AutoPad {
    pub fn parse(auto_pad: Option<String>, pads: Option<Vec<i64>>) -> Result<Self, String> {
        Ok(match auto_pad.as_deref().unwrap_or("NOTSET") {
            "NOTSET" | "" => AutoPad::NotSet(pads.unwrap_or_default()),
            "VALID" => AutoPad::Valid,
            "SAME_UPPER" => AutoPad::SameUpper,
            "SAME_LOWER" => AutoPad::SameLower,
            other => return Err(format!("auto_pad '{other}' is not known")),
        })
    }

    /// (begin, end) padding per spatial axis.
    fn resolve(
        &self,
        input: &[usize],
        kernel: &[usize],
        strides: &[usize],
        dilations: &[usize],
    ) -> Vec<(usize, usize)> {
        let n = input.len();
        match self {
            AutoPad::NotSet(p) => (0..n)
                .map(|i| {
                    (
                        p.get(i).copied().unwrap_or(0).max(0) as usize,
                        p.get(i + n).copied().unwrap_or(0).max(0) as usize,
                    )
                })
                .collect(),
            AutoPad::Valid => vec![(0, 0); n],
            AutoPad::SameUpper | AutoPad::SameLower => (0..n)
                .map(|i| {
                    let out = input[i].div_ceil(strides[i]);
                    let span = kernel[i]
                        .saturating_sub(1)
                        .saturating_mul(dilations[i])
                        .saturating_add(1);
                    let total = out
                        .saturating_sub(1)
                        .saturating_mul(strides[i])
                        .saturating_add(span)
                        .saturating_sub(input[i]);
                    let small = total / 2;
                    if *self == AutoPad::SameUpper {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    }
                })
                .collect(),
        }
    }
}

fn per_axis(v: &Option<Vec<i64>>, n: usize) -> Vec<usize> {
    match v {
        Some(v) if v.len() == n => v.iter().map(|&x| x.max(1) as usize).collect(),
        _ => vec![1; n],
    }
}

pub struct Conv {
    pub auto_pad: AutoPad,
    pub strides: Option<Vec<i64>>,
    pub dilations: Option<Vec<i64>>,
    pub group: usize,
}

impl Op for Conv {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let w = input(inputs, 1)?;
        let bias = optional(inputs, 2)?;
        float_only("Conv", x)?;
        let spatial = x
            .rank()
            .checked_sub(2)
            .ok_or("Conv needs an input of rank 3 or more")?;
        if !(1..=2).contains(&spatial) || w.rank() != x.rank() {
            return Err(format!(
                "Conv over {spatial} spatial axes is not supported (1 or 2 are)"
            ));
        }
        let kernel: Vec<usize> = w.dims()[2..].to_vec();
        let strides = per_axis(&self.strides, spatial);
        let dilations = per_axis(&self.dilations, spatial);
        if strides.iter().any(|&s| s != strides[0]) || dilations.iter().any(|&d| d != dilations[0])
        {
            return Err(
                "Conv with different strides or dilations per axis is not supported".into(),
            );
        }
        let pads = self
            .auto_pad
            .resolve(&x.dims()[2..], &kernel, &strides, &dilations);
        let mut padded_dims = x.dims().to_vec();
        for (i, (b, e)) in pads.iter().enumerate() {
            padded_dims[2 + i] = padded_dims[2 + i].saturating_add(*b).saturating_add(*e);
        }
        super::element_count(&padded_dims)?;
        // candle's kernels trust their shapes: check what they would not.
        for i in 0..spatial {
            let span = (kernel[i] - 1)
                .saturating_mul(dilations[i])
                .saturating_add(1);
            if kernel[i] == 0 || span > padded_dims[2 + i] {
                return Err(format!(
                    "the kernel ({span} with dilation) is larger than the padded input ({}) on spatial axis {i}",
                    padded_dims[2 + i]
                ));
            }
        }
        let (channels, per_group, maps) = (x.dims()[1], w.dims()[1], w.dims()[0]);
        if self.group == 0 || channels != per_group * self.group || maps % self.group != 0 {
            return Err(format!(
                "{channels} input channels, weights for {per_group} per group, {maps} maps and group {}",
                self.group
            ));
        }
        let mut padded = x.clone();
        for (i, (b, e)) in pads.iter().enumerate() {
            if *b > 0 || *e > 0 {
                padded = padded.pad_with_zeros(2 + i, *b, *e).map_err(err)?;
            }
        }
        let w = w.to_dtype(x.dtype()).map_err(err)?;
        let mut y = if spatial == 1 {
            padded.conv1d(&w, 0, strides[0], dilations[0], self.group)
        } else {
            padded.conv2d(&w, 0, strides[0], dilations[0], self.group)
        }
        .map_err(err)?;
        if let Some(b) = bias {
            let mut shape = vec![1; y.rank()];
            shape[1] = b.elem_count();
            y = y
                .broadcast_add(&b.reshape(shape.as_slice()).map_err(err)?)
                .map_err(err)?;
        }
        Ok(vec![Value::Tensor(y)])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Average { count_include_pad: bool },
}

pub struct Pool {
    pub kind: PoolKind,
    pub kernel: Vec<i64>,
    pub auto_pad: AutoPad,
    pub strides: Option<Vec<i64>>,
    pub dilations: Option<Vec<i64>>,
    pub ceil_mode: bool,
}

impl Op for Pool {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        if matches!(self.kind, PoolKind::Average { .. }) {
            float_only("AveragePool", x)?;
        }
        let dims = x.dims().to_vec();
        let spatial = dims
            .len()
            .checked_sub(2)
            .ok_or("pooling needs an input of rank 3 or more")?;
        if self.kernel.len() != spatial {
            return Err(format!(
                "kernel_shape has {} axes, the input {spatial}",
                self.kernel.len()
            ));
        }
        let kernel: Vec<usize> = self.kernel.iter().map(|&k| k.max(1) as usize).collect();
        let strides = per_axis(&self.strides, spatial);
        let dilations = per_axis(&self.dilations, spatial);
        let input_sp = &dims[2..];
        let pads = self
            .auto_pad
            .resolve(input_sp, &kernel, &strides, &dilations);
        let mut out_sp = Vec::with_capacity(spatial);
        for i in 0..spatial {
            let span = kernel[i]
                .saturating_sub(1)
                .saturating_mul(dilations[i])
                .saturating_add(1);
            let avail = input_sp[i]
                .saturating_add(pads[i].0)
                .saturating_add(pads[i].1);
            if avail < span {
                return Err(format!(
                    "the kernel ({span}) is larger than the padded input ({avail})"
                ));
            }
            let mut o = if self.ceil_mode {
                (avail - span).div_ceil(strides[i]) + 1
            } else {
                (avail - span) / strides[i] + 1
            };
            // A window may not start in the end padding.
            if self.ceil_mode && (o - 1) * strides[i] >= input_sp[i] + pads[i].0 {
                o -= 1;
            }
            out_sp.push(o);
        }
        let values: Vec<f64> = x
            .to_dtype(DType::F64)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .map_err(err)?;
        let in_size: usize = input_sp.iter().product();
        let out_size = super::element_count(&out_sp)?;
        let k_size = super::element_count(&kernel)?;
        let planes = dims[0] * dims[1];
        super::element_count(&[planes, out_size])?;
        let mut out = vec![0.0; planes * out_size];
        let unravel = |mut idx: usize, shape: &[usize]| -> Vec<usize> {
            let mut v = vec![0; shape.len()];
            for a in (0..shape.len()).rev() {
                v[a] = idx % shape[a];
                idx /= shape[a];
            }
            v
        };
        for o in 0..out_size {
            let opos = unravel(o, &out_sp);
            // Input offsets under this window, and how many cells of the padded
            // area it covers (for count_include_pad).
            let mut cells = Vec::with_capacity(k_size);
            let mut padded_cells = 0;
            for k in 0..k_size {
                let kpos = unravel(k, &kernel);
                let mut flat = 0usize;
                let mut inside = true;
                let mut in_padded = true;
                for a in 0..spatial {
                    let p =
                        (opos[a] * strides[a] + kpos[a] * dilations[a]) as i64 - pads[a].0 as i64;
                    if p < -(pads[a].0 as i64) || p >= (input_sp[a] + pads[a].1) as i64 {
                        in_padded = false;
                    }
                    if p < 0 || p >= input_sp[a] as i64 {
                        inside = false;
                    } else {
                        flat = flat * input_sp[a] + p as usize;
                    }
                }
                padded_cells += in_padded as usize;
                if inside {
                    cells.push(flat);
                }
            }
            for plane in 0..planes {
                let base = plane * in_size;
                out[plane * out_size + o] = match self.kind {
                    PoolKind::Max => cells
                        .iter()
                        .map(|&c| values[base + c])
                        .fold(f64::NEG_INFINITY, f64::max),
                    PoolKind::Average { count_include_pad } => {
                        let sum: f64 = cells.iter().map(|&c| values[base + c]).sum();
                        let n = if count_include_pad {
                            padded_cells
                        } else {
                            cells.len()
                        };
                        sum / n.max(1) as f64
                    }
                };
            }
        }
        let mut out_dims = dims[..2].to_vec();
        out_dims.extend(out_sp);
        let y = Tensor::from_vec(out, out_dims.as_slice(), x.device())
            .and_then(|t| t.to_dtype(x.dtype()))
            .map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}

/// Inference: (x - mean) / sqrt(var + epsilon) * scale + bias per channel.
pub struct BatchNormalization {
    pub epsilon: f64,
}

impl Op for BatchNormalization {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        float_only("BatchNormalization", x)?;
        let mut shape = vec![1; x.rank()];
        if x.rank() < 2 {
            return Err("BatchNormalization needs an input of rank 2 or more".into());
        }
        shape[1] = x.dims()[1];
        let per_channel = |i: usize| -> Result<Tensor, String> {
            input(inputs, i)?
                .to_dtype(x.dtype())
                .and_then(|t| t.reshape(shape.as_slice()))
                .map_err(err)
        };
        let (scale, bias, mean, var) = (
            per_channel(1)?,
            per_channel(2)?,
            per_channel(3)?,
            per_channel(4)?,
        );
        let y = (|| {
            let std = (var + self.epsilon)?.sqrt()?;
            x.broadcast_sub(&mean)?
                .broadcast_div(&std)?
                .broadcast_mul(&scale)?
                .broadcast_add(&bias)
        })()
        .map_err(err)?;
        Ok(vec![Value::Tensor(y)])
    }
}
