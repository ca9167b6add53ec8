//! Index-driven operators computed directly on the values: GatherElements,
//! OneHot, Trilu, CumSum and Pad (constant, reflect, edge and wrap modes).

use candle_core::{DType, Tensor};

use super::{axis, err, input, int_values, optional, Op, OpResult, Value};

fn values_f64(t: &Tensor) -> Result<Vec<f64>, String> {
    t.to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1())
        .map_err(err)
}

fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut v = vec![0; dims.len()];
    for a in (0..dims.len()).rev() {
        if dims[a] > 0 {
            v[a] = i % dims[a];
            i /= dims[a];
        }
    }
    v
}

fn build(values: Vec<f64>, dims: &[usize], like: &Tensor, dtype: DType) -> Result<Tensor, String> {
    Tensor::from_vec(values, dims, like.device())
        .and_then(|t| t.to_dtype(dtype))
        .map_err(err)
}

pub struct GatherElements {
    pub axis: i64,
}

impl Op for GatherElements {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let data = input(inputs, 0)?;
        let indices = input(inputs, 1)?;
        if indices.rank() != data.rank() {
            return Err("data and indices must have the same rank".into());
        }
        let ax = axis(self.axis, data.rank())?;
        let (values, idx) = (values_f64(data)?, int_values(indices)?);
        let ddims = data.dims().to_vec();
        let dstr = strides(&ddims);
        let idims = indices.dims().to_vec();
        let mut out = Vec::with_capacity(idx.len());
        for (i, &j) in idx.iter().enumerate() {
            let mut pos = unravel(i, &idims);
            let size = ddims[ax] as i64;
            let j = if j < 0 { j + size } else { j };
            if j < 0 || j >= size {
                return Err(format!(
                    "index {j} is out of range for a dimension of {size}"
                ));
            }
            pos[ax] = j as usize;
            if pos.iter().zip(&ddims).any(|(p, d)| p >= d) {
                return Err("indices reach outside the data".into());
            }
            out.push(values[pos.iter().zip(&dstr).map(|(p, s)| p * s).sum::<usize>()]);
        }
        Ok(vec![Value::Tensor(build(out, &idims, data, data.dtype())?)])
    }
}

pub struct OneHot {
    pub axis: i64,
}

impl Op for OneHot {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let indices = input(inputs, 0)?;
        let depth = values_f64(input(inputs, 1)?)?
            .first()
            .copied()
            .ok_or("OneHot needs a depth")? as i64;
        let values_t = input(inputs, 2)?;
        let values = values_f64(values_t)?;
        if depth <= 0 || values.len() != 2 {
            return Err("OneHot needs a positive depth and two values [off, on]".into());
        }
        let idx = values_f64(indices)?;
        let out_rank = indices.rank() + 1;
        let ax = axis(self.axis, out_rank)?;
        let mut dims = indices.dims().to_vec();
        dims.insert(ax, depth as usize);
        let total = super::element_count(&dims)?;
        let mut out = vec![values[0]; total];
        let ostr = strides(&dims);
        for (i, &v) in idx.iter().enumerate() {
            let v = v as i64;
            let v = if v < 0 { v + depth } else { v };
            if v < 0 || v >= depth {
                continue;
            }
            let mut pos = unravel(i, indices.dims());
            pos.insert(ax, v as usize);
            out[pos.iter().zip(&ostr).map(|(p, s)| p * s).sum::<usize>()] = values[1];
        }
        Ok(vec![Value::Tensor(build(
            out,
            &dims,
            values_t,
            values_t.dtype(),
        )?)])
    }
}

pub struct Trilu {
    pub upper: bool,
}

impl Op for Trilu {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let k = optional(inputs, 1)?
            .map(int_values)
            .transpose()?
            .and_then(|v| v.first().copied())
            .unwrap_or(0);
        if x.rank() < 2 {
            return Err("Trilu needs a tensor of rank 2 or more".into());
        }
        let dims = x.dims().to_vec();
        let (rows, cols) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        let mut values = values_f64(x)?;
        for (i, v) in values.iter_mut().enumerate() {
            let (r, c) = (((i / cols) % rows.max(1)) as i64, (i % cols.max(1)) as i64);
            let keep = if self.upper { c - r >= k } else { c - r <= k };
            if !keep {
                *v = 0.0;
            }
        }
        Ok(vec![Value::Tensor(build(values, &dims, x, x.dtype())?)])
    }
}

pub struct CumSum {
    pub exclusive: bool,
    pub reverse: bool,
}

impl Op for CumSum {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let a = int_values(input(inputs, 1)?)?
            .first()
            .copied()
            .ok_or("CumSum needs an axis")?;
        let ax = axis(a, x.rank())?;
        let dims = x.dims().to_vec();
        let values = values_f64(x)?;
        let st = strides(&dims);
        let n = dims[ax];
        let mut out = vec![0.0; values.len()];
        for (i, o) in out.iter_mut().enumerate() {
            let pos = unravel(i, &dims);
            let p = pos[ax];
            let base = i - p * st[ax];
            let range: Box<dyn Iterator<Item = usize>> = match (self.reverse, self.exclusive) {
                (false, false) => Box::new(0..=p),
                (false, true) => Box::new(0..p),
                (true, false) => Box::new(p..n),
                (true, true) => Box::new(p + 1..n),
            };
            *o = range.map(|j| values[base + j * st[ax]]).sum();
        }
        Ok(vec![Value::Tensor(build(out, &dims, x, x.dtype())?)])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
    Wrap,
}

pub struct Pad {
    pub mode: PadMode,
    /// Opset < 11: pads and value are attributes.
    pub attributes: Option<(Vec<i64>, f64)>,
}

impl Op for Pad {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let rank = x.rank();
        let (mut pads, value) = match &self.attributes {
            Some((p, v)) => (p.clone(), *v),
            None => (
                int_values(input(inputs, 1)?)?,
                optional(inputs, 2)?
                    .map(values_f64)
                    .transpose()?
                    .and_then(|v| v.first().copied())
                    .unwrap_or(0.0),
            ),
        };
        // Opset 18: pads may cover only the listed axes.
        if let Some(axes) = optional(inputs, 3)?.map(int_values).transpose()? {
            let mut full = vec![0i64; 2 * rank];
            for (i, &a) in axes.iter().enumerate() {
                let ax = axis(a, rank)?;
                full[ax] = pads[i];
                full[ax + rank] = pads[i + axes.len()];
            }
            pads = full;
        }
        if pads.len() != 2 * rank {
            return Err(format!("{} pads for a tensor of rank {rank}", pads.len()));
        }
        let dims = x.dims().to_vec();
        let out_dims: Vec<usize> = (0..rank)
            .map(|a| (dims[a] as i64 + pads[a] + pads[a + rank]).max(0) as usize)
            .collect();
        let values = values_f64(x)?;
        let st = strides(&dims);
        let total = super::element_count(&out_dims)?;
        let mut out = Vec::with_capacity(total);
        for i in 0..total {
            let pos = unravel(i, &out_dims);
            let mut src = 0usize;
            let mut constant = false;
            for a in 0..rank {
                let n = dims[a] as i64;
                let mut p = pos[a] as i64 - pads[a];
                if p < 0 || p >= n {
                    match self.mode {
                        PadMode::Constant => constant = true,
                        _ if n == 0 => constant = true,
                        PadMode::Edge => p = p.clamp(0, n - 1),
                        PadMode::Wrap => p = p.rem_euclid(n),
                        PadMode::Reflect => {
                            if n == 1 {
                                p = 0;
                            } else {
                                let period = 2 * (n - 1);
                                p = p.rem_euclid(period);
                                if p >= n {
                                    p = period - p;
                                }
                            }
                        }
                    }
                }
                if !constant {
                    src += p as usize * st[a];
                }
            }
            out.push(if constant { value } else { values[src] });
        }
        Ok(vec![Value::Tensor(build(out, &out_dims, x, x.dtype())?)])
    }
}

/// Copies `data` and writes `updates` at the positions `indices` name,
/// replacing or combining (add, mul, max, min) with what is there.
pub struct ScatterND {
    pub reduction: Option<fn(f64, f64) -> f64>,
}

impl Op for ScatterND {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let data = input(inputs, 0)?;
        let indices = input(inputs, 1)?;
        let updates = input(inputs, 2)?;
        let ddims = data.dims().to_vec();
        let idims = indices.dims().to_vec();
        let k = *idims
            .last()
            .ok_or("ScatterND needs indices of rank 1 or more")?;
        if k == 0 || k > ddims.len() {
            return Err(format!(
                "index tuples of length {k} for data of rank {}",
                ddims.len()
            ));
        }
        let mut values = values_f64(data)?;
        let idx = int_values(indices)?;
        let upd = values_f64(updates)?;
        let dstr = strides(&ddims);
        let slice: usize = ddims[k..].iter().product();
        let tuples = idx.len() / k;
        if upd.len() != tuples * slice {
            return Err(format!(
                "{} update values for {tuples} slices of {slice}",
                upd.len()
            ));
        }
        for t in 0..tuples {
            let mut base = 0usize;
            for (a, &i) in idx[t * k..(t + 1) * k].iter().enumerate() {
                let n = ddims[a] as i64;
                let i = if i < 0 { i + n } else { i };
                if i < 0 || i >= n {
                    return Err(format!("index {i} is out of range for a dimension of {n}"));
                }
                base += i as usize * dstr[a];
            }
            for j in 0..slice {
                let (dst, src) = (base + j, upd[t * slice + j]);
                values[dst] = match self.reduction {
                    None => src,
                    Some(f) => f(values[dst], src),
                };
            }
        }
        Ok(vec![Value::Tensor(build(
            values,
            &ddims,
            data,
            data.dtype(),
        )?)])
    }
}
