//! Recurrent layers: RNN, LSTM and GRU (forward, reverse, bidirectional; optional
//! biases, initial states, peepholes, sequence lengths, clip, batch-first
//! layout), computed step by step in float32 as the ONNX specification
//! writes them. RNN exports of speech and time-series models use these.

use candle_core::{DType, Tensor};

use super::{err, input, optional, Op, OpResult, Value};

fn values(t: &Tensor) -> Result<Vec<f32>, String> {
    t.to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1())
        .map_err(err)
}

#[derive(Debug, Clone, Copy)]
pub enum Activation {
    Sigmoid,
    Tanh,
    Relu,
}

impl Activation {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "sigmoid" => Ok(Activation::Sigmoid),
            "tanh" => Ok(Activation::Tanh),
            "relu" => Ok(Activation::Relu),
            other => Err(format!("recurrent activation '{other}' is not supported")),
        }
    }

    fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Relu => x.max(0.0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
    Bidirectional,
}

impl Direction {
    pub fn parse(s: Option<String>) -> Result<Self, String> {
        match s.as_deref().unwrap_or("forward") {
            "forward" => Ok(Direction::Forward),
            "reverse" => Ok(Direction::Reverse),
            "bidirectional" => Ok(Direction::Bidirectional),
            other => Err(format!("direction '{other}' is not known")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// The plain (Elman) recurrent cell.
    Simple,
    Lstm {
        input_forget: bool,
    },
    Gru {
        linear_before_reset: bool,
    },
}

pub struct Recurrent {
    pub cell: Cell,
    pub direction: Direction,
    pub hidden: usize,
    /// Gate activations per direction: [f, g, h] for LSTM, [f, g] for GRU.
    pub activations: Vec<Activation>,
    pub clip: Option<f32>,
    pub batch_first: bool,
}

/// Row-major (rows x cols) matrix times a vector, added into `out`.
fn gemv_add(m: &[f32], cols: usize, v: &[f32], out: &mut [f32]) {
    for (r, o) in out.iter_mut().enumerate() {
        let row = &m[r * cols..(r + 1) * cols];
        *o += row.iter().zip(v).map(|(a, b)| a * b).sum::<f32>();
    }
}

impl Op for Recurrent {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult {
        let x = input(inputs, 0)?;
        let (w, r) = (input(inputs, 1)?, input(inputs, 2)?);
        let b = optional(inputs, 3)?;
        let seq_lens = optional(inputs, 4)?;
        let h0 = optional(inputs, 5)?;
        let is_lstm = matches!(self.cell, Cell::Lstm { .. });
        let c0 = if is_lstm { optional(inputs, 6)? } else { None };
        let peep = if is_lstm { optional(inputs, 7)? } else { None };
        if x.rank() != 3 {
            return Err("X must have rank 3".into());
        }
        let (seq, batch, features) = if self.batch_first {
            (x.dims()[1], x.dims()[0], x.dims()[2])
        } else {
            (x.dims()[0], x.dims()[1], x.dims()[2])
        };
        let dirs = if self.direction == Direction::Bidirectional {
            2
        } else {
            1
        };
        let h = self.hidden;
        let gates = match self.cell {
            Cell::Simple => 1,
            Cell::Lstm { .. } => 4,
            Cell::Gru { .. } => 3,
        };
        let xs = values(x)?;
        let ws = values(w)?;
        let rs = values(r)?;
        if ws.len() != dirs * gates * h * features || rs.len() != dirs * gates * h * h {
            return Err(format!(
                "W or R does not match {dirs} direction(s), hidden size {h}, input size {features}"
            ));
        }
        let bs = match b {
            Some(b) => values(b)?,
            None => vec![0.0; dirs * 2 * gates * h],
        };
        let lens: Vec<usize> = match seq_lens {
            Some(t) => super::int_values(t)?
                .iter()
                .map(|&v| (v.max(0) as usize).min(seq))
                .collect(),
            None => vec![seq; batch],
        };
        let state = |t: Option<&Tensor>| -> Result<Vec<f32>, String> {
            match t {
                Some(t) => values(t),
                None => Ok(vec![0.0; dirs * batch * h]),
            }
        };
        let mut hs = state(h0)?;
        let mut cs = state(c0)?;
        let ps = match peep {
            Some(p) => values(p)?,
            None => vec![0.0; dirs * 3 * h],
        };
        let x_at = |t: usize, n: usize| -> &[f32] {
            let offset = if self.batch_first {
                (n * seq + t) * features
            } else {
                (t * batch + n) * features
            };
            &xs[offset..offset + features]
        };
        let per_dir = self.activations.len() / dirs.max(1);
        let expect = |what: &str, got: usize, want: usize| -> Result<(), String> {
            if got == want {
                Ok(())
            } else {
                Err(format!("{what} holds {got} values, {want} expected"))
            }
        };
        expect("B", bs.len(), dirs * 2 * gates * h)?;
        expect("P", ps.len(), dirs * 3 * h)?;
        expect("initial_h", hs.len(), dirs * batch * h)?;
        expect("initial_c", cs.len(), dirs * batch * h)?;
        expect("sequence_lens", lens.len(), batch)?;
        if !self.activations.len().is_multiple_of(dirs) {
            return Err("activations do not divide among the directions".into());
        }
        super::element_count(&[seq, dirs, batch, h])?;
        let mut y = vec![0.0f32; seq * dirs * batch * h];
        // A clip that is not a positive number clips nothing.
        let clip = |v: f32| match self.clip {
            Some(c) if c > 0.0 => v.clamp(-c, c),
            _ => v,
        };
        for d in 0..dirs {
            let reverse = self.direction == Direction::Reverse || d == 1;
            let act = &self.activations[d * per_dir..(d + 1) * per_dir];
            let wd = &ws[d * gates * h * features..(d + 1) * gates * h * features];
            let rd = &rs[d * gates * h * h..(d + 1) * gates * h * h];
            let wb = &bs[d * 2 * gates * h..d * 2 * gates * h + gates * h];
            let rb = &bs[d * 2 * gates * h + gates * h..(d + 1) * 2 * gates * h];
            let pd = &ps[d * 3 * h..(d + 1) * 3 * h];
            for n in 0..batch {
                let len = lens[n];
                let hs_n = &mut hs[(d * batch + n) * h..(d * batch + n + 1) * h];
                let cs_n = &mut cs[(d * batch + n) * h..(d * batch + n + 1) * h];
                for step in 0..len {
                    let t = if reverse { len - 1 - step } else { step };
                    let xt = x_at(t, n);
                    // x W^T + b_w and h R^T + b_r, gate by gate.
                    let mut xw = wb.to_vec();
                    gemv_add(wd, features, xt, &mut xw);
                    let mut hr = rb.to_vec();
                    gemv_add(rd, h, hs_n, &mut hr);
                    match self.cell {
                        Cell::Simple => {
                            for k in 0..h {
                                hs_n[k] = act[0].apply(clip(xw[k] + hr[k]));
                            }
                        }
                        Cell::Lstm { input_forget } => {
                            // Gate order i, o, f, c.
                            for k in 0..h {
                                let pre = |g: usize| xw[g * h + k] + hr[g * h + k];
                                let c_prev = cs_n[k];
                                let i = act[0].apply(clip(pre(0) + pd[k] * c_prev));
                                let f = if input_forget {
                                    1.0 - i
                                } else {
                                    act[0].apply(clip(pre(2) + pd[2 * h + k] * c_prev))
                                };
                                let cand = act[1].apply(clip(pre(3)));
                                let c = f * c_prev + i * cand;
                                let o = act[0].apply(clip(pre(1) + pd[h + k] * c));
                                cs_n[k] = c;
                                hs_n[k] = o * act[2].apply(c);
                            }
                        }
                        Cell::Gru {
                            linear_before_reset,
                        } => {
                            // Gate order z, r, h.
                            let mut next = vec![0.0f32; h];
                            let mut reset = vec![0.0f32; h];
                            for k in 0..h {
                                reset[k] = act[0].apply(clip(xw[h + k] + hr[h + k]));
                            }
                            let candidate: Vec<f32> = if linear_before_reset {
                                (0..h)
                                    .map(|k| xw[2 * h + k] + reset[k] * hr[2 * h + k])
                                    .collect()
                            } else {
                                // (r . h) R_h^T + Rb_h
                                let rh: Vec<f32> = (0..h).map(|k| reset[k] * hs_n[k]).collect();
                                let mut out = rb[2 * h..3 * h].to_vec();
                                gemv_add(&rd[2 * h * h..3 * h * h], h, &rh, &mut out);
                                (0..h).map(|k| xw[2 * h + k] + out[k]).collect()
                            };
                            for k in 0..h {
                                let z = act[0].apply(clip(xw[k] + hr[k]));
                                let cand = act[1].apply(clip(candidate[k]));
                                next[k] = (1.0 - z) * cand + z * hs_n[k];
                            }
                            hs_n.copy_from_slice(&next);
                        }
                    }
                    let base = ((t * dirs + d) * batch + n) * h;
                    y[base..base + h].copy_from_slice(hs_n);
                }
            }
        }
        let device = x.device();
        let y = if self.batch_first {
            // [seq, dirs, batch, h] -> [batch, seq, dirs, h]
            Tensor::from_vec(y, (seq, dirs, batch, h), device)
                .and_then(|t| t.permute((2, 0, 1, 3))?.contiguous())
        } else {
            Tensor::from_vec(y, (seq, dirs, batch, h), device)
        }
        .map_err(err)?;
        let state_tensor = |v: Vec<f32>| -> Result<Tensor, String> {
            if self.batch_first {
                Tensor::from_vec(v, (dirs, batch, h), device)
                    .and_then(|t| t.permute((1, 0, 2))?.contiguous())
            } else {
                Tensor::from_vec(v, (dirs, batch, h), device)
            }
            .map_err(err)
        };
        let dtype = x.dtype();
        let cast = |t: Tensor| t.to_dtype(dtype).map_err(err);
        let mut out = vec![
            Value::Tensor(cast(y)?),
            Value::Tensor(cast(state_tensor(hs)?)?),
        ];
        if is_lstm {
            out.push(Value::Tensor(cast(state_tensor(cs)?)?));
        }
        Ok(out)
    }
}
