//! Static quantization ranges of activations, measured on calibration data:
//! MinMax, Percentile (two-sided, 99.99 by default) and Entropy (the
//! threshold whose 128-level quantization loses least information, by
//! Kullback-Leibler divergence over a 2048-bin histogram of |x|, as
//! TensorRT calibrates).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::error::Result;
use crate::runtime::{Model, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    MinMax,
    /// Two-sided: the (100 - p) and p percentiles.
    Percentile(f64),
    Entropy,
}

impl Method {
    pub fn name(&self) -> String {
        match self {
            Method::MinMax => "minmax".into(),
            Method::Percentile(p) => format!("percentile {p}"),
            Method::Entropy => "entropy".into(),
        }
    }
}

const BINS: usize = 2048;

fn values(v: &Value) -> Option<Vec<f32>> {
    let Value::Tensor(t) = v else { return None };
    if !t.dtype().is_float() {
        return None;
    }
    t.to_device(&Device::Cpu)
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1())
        .ok()
}

/// Runs `model` on every batch, showing `see` each watched value.
fn observe(
    model: &Model,
    batches: &[Vec<(String, Tensor)>],
    watched: &[String],
    see: &mut dyn FnMut(&str, &[f32]),
) -> std::result::Result<(), String> {
    for feeds in batches {
        model.run_observed(feeds.clone(), &mut |name, value| {
            if watched.iter().any(|w| w == name) {
                if let Some(v) = values(value) {
                    see(name, &v);
                }
            }
        })?;
    }
    Ok(())
}

/// The (low, high) range of each watched activation over the batches.
pub fn ranges(
    model: &Model,
    batches: &[Vec<(String, Tensor)>],
    watched: &[String],
    method: Method,
) -> std::result::Result<HashMap<String, (f32, f32)>, String> {
    let mut extremes: HashMap<String, (f32, f32)> = HashMap::new();
    observe(model, batches, watched, &mut |name, v| {
        let e = extremes
            .entry(name.to_string())
            .or_insert((f32::INFINITY, f32::NEG_INFINITY));
        for &x in v.iter().filter(|x| x.is_finite()) {
            e.0 = e.0.min(x);
            e.1 = e.1.max(x);
        }
    })?;
    if method == Method::MinMax {
        return Ok(extremes);
    }
    // Second pass: histograms over the ranges found.
    let mut histograms: HashMap<String, Vec<u64>> = HashMap::new();
    observe(model, batches, watched, &mut |name, v| {
        let Some(&(lo, hi)) = extremes.get(name) else {
            return;
        };
        let h = histograms
            .entry(name.to_string())
            .or_insert_with(|| vec![0; BINS]);
        match method {
            Method::Entropy => {
                let top = lo.abs().max(hi.abs());
                for &x in v.iter().filter(|x| x.is_finite()) {
                    let b = if top > 0.0 {
                        ((x.abs() / top) * BINS as f32) as usize
                    } else {
                        0
                    };
                    h[b.min(BINS - 1)] += 1;
                }
            }
            _ => {
                let width = (hi - lo).max(f32::MIN_POSITIVE);
                for &x in v.iter().filter(|x| x.is_finite()) {
                    let b = (((x - lo) / width) * BINS as f32) as usize;
                    h[b.min(BINS - 1)] += 1;
                }
            }
        }
    })?;
    let mut out = HashMap::new();
    for (name, (lo, hi)) in extremes {
        let Some(h) = histograms.get(&name) else {
            continue;
        };
        let range = match method {
            Method::Percentile(p) => percentile_range(h, lo, hi, p),
            Method::Entropy => {
                let t = entropy_threshold(h, lo.abs().max(hi.abs()));
                (lo.max(-t), hi.min(t))
            }
            Method::MinMax => (lo, hi),
        };
        out.insert(name, range);
    }
    Ok(out)
}

/// The (100 - p) and p percentiles from a histogram over [lo, hi].
fn percentile_range(h: &[u64], lo: f32, hi: f32, p: f64) -> (f32, f32) {
    let total: u64 = h.iter().sum();
    let width = (hi - lo) / h.len() as f32;
    let edge = |fraction: f64, upper: bool| -> f32 {
        let target = (fraction * total as f64).ceil() as u64;
        let mut seen = 0;
        for (i, c) in h.iter().enumerate() {
            seen += c;
            if seen >= target.max(1) {
                return lo + width * (i + upper as usize) as f32;
            }
        }
        hi
    };
    (
        edge(1.0 - p / 100.0, false).max(lo),
        edge(p / 100.0, true).min(hi),
    )
}

/// The |x| threshold minimizing KL(P || Q), P the histogram clipped at the
/// threshold (outliers folded into its last bin), Q its quantization to
/// 128 levels spread back over the bins that were not empty.
fn entropy_threshold(h: &[u64], top: f32) -> f32 {
    let levels = 128;
    let width = top / h.len() as f32;
    let mut best = (f64::INFINITY, h.len());
    for i in (levels..=h.len()).step_by(16) {
        let mut p: Vec<f64> = h[..i].iter().map(|&c| c as f64).collect();
        p[i - 1] += h[i..].iter().map(|&c| c as f64).sum::<f64>();
        let total: f64 = p.iter().sum();
        if total == 0.0 {
            continue;
        }
        // Q: each of `levels` groups of bins gets its mass spread evenly
        // over the group's bins that held any values.
        let mut q = vec![0f64; i];
        for g in 0..levels {
            let (a, b) = (
                g * i / levels,
                ((g + 1) * i / levels).max(g * i / levels + 1),
            );
            let mass: f64 = h[a..b].iter().map(|&c| c as f64).sum();
            let nonzero = h[a..b].iter().filter(|&&c| c > 0).count();
            if nonzero > 0 {
                for k in a..b {
                    if h[k] > 0 {
                        q[k] = mass / nonzero as f64;
                    }
                }
            }
        }
        let q_total: f64 = q.iter().sum();
        let mut kl = 0.0;
        for (pk, qk) in p.iter().zip(&q) {
            if *pk > 0.0 {
                let (pn, qn) = (pk / total, (qk / q_total).max(1e-12));
                kl += pn * (pn / qn).ln();
            }
        }
        if kl < best.0 {
            best = (kl, i);
        }
    }
    (best.1 as f32 + 0.5).min(h.len() as f32) * width
}

/// Every batch of inputs of the calibration data, in memory (calibration
/// sets are small): parquet/CSV rows as `mlctl predict` feeds them, or the
/// arrays of a `.npz`.
pub fn batches(
    model: &Model,
    data: &std::path::Path,
    model_path: &std::path::Path,
    exclude: &[String],
    batch_size: usize,
) -> Result<Vec<Vec<(String, Tensor)>>> {
    if data
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"))
    {
        return Ok(vec![crate::predict::npz_feeds(model, data)?]);
    }
    let table = crate::data::Table::open(data)?;
    let features = crate::predict::Features {
        input: data,
        model: model_path,
        columns: &[],
        exclude,
        keep: &[],
    };
    let feeding = crate::predict::feeding(&model.graph.inputs, &table, &features)?;
    let rows = table.row_count()?;
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < rows {
        let n = batch_size.min(rows - offset);
        out.push(crate::predict::batch_feeds(&table, &feeding, offset, n, &Device::Cpu, data)?.0);
        offset += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_clip_the_tails() {
        // 10,000 values spread evenly over [0, 100), one outlier at 1000.
        let mut h = vec![0u64; BINS];
        let (lo, hi) = (0.0f32, 1000.0f32);
        for k in 0..10_000 {
            let x = k as f32 * 0.01;
            h[(((x - lo) / (hi - lo)) * BINS as f32) as usize] += 1;
        }
        h[BINS - 1] += 1;
        let (a, b) = percentile_range(&h, lo, hi, 99.9);
        assert!(a <= 0.5, "{a}");
        assert!((99.0..101.0).contains(&b), "{b}");
        assert_eq!(percentile_range(&h, lo, hi, 100.0).1, hi);
    }

    #[test]
    fn entropy_ignores_a_lone_outlier_but_keeps_a_real_tail() {
        let mut h = vec![0u64; BINS];
        for (k, c) in h.iter_mut().enumerate().take(200) {
            *c = 1000 - 4 * k as u64;
        }
        h[BINS - 1] = 1;
        let t = entropy_threshold(&h, 2048.0);
        assert!(t < 400.0, "{t}");
        let flat = vec![10u64; BINS];
        assert!(entropy_threshold(&flat, 2048.0) > 1800.0);
    }
}
