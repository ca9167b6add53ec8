//! Accuracy, measured: the float and the quantized model run on the same
//! rows, and their outputs are compared with each other and, given labels,
//! with the truth.

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use crate::data::Table;
use crate::error::{Error, Result};
use crate::predict::{self, Features};
use crate::runtime::{Model, Value};

/// One output of both models, row by row (rows are the first dimension).
#[derive(Debug, Default)]
pub struct OutputPair {
    pub name: String,
    pub integer: bool,
    /// Values per row, float model then quantized model.
    pub reference: Vec<Vec<f32>>,
    pub quantized: Vec<Vec<f32>>,
}

/// Comparison of one output.
#[derive(Debug, Clone)]
pub struct OutputComparison {
    pub name: String,
    pub rows: usize,
    pub max_abs_diff: f64,
    pub mean_abs_diff: f64,
    /// Mean over rows of the cosine similarity of the two rows (float
    /// outputs with more than one value per row).
    pub mean_cosine: Option<f64>,
    pub min_cosine: Option<f64>,
    /// Share of rows whose top-1 (argmax, or the value itself for integer
    /// outputs such as labels) is the same.
    pub agreement: f64,
}

pub struct Evaluation {
    pub rows: usize,
    pub outputs: Vec<OutputComparison>,
    /// (float model, quantized model) accuracy against the labels, or RMSE
    /// for a regression output.
    pub accuracy: Option<(f64, f64)>,
    pub rmse: Option<(f64, f64)>,
    pub seconds: (f64, f64),
}

fn rows_of(value: &Value) -> std::result::Result<(Vec<Vec<f32>>, bool), String> {
    let t: &Tensor = match value {
        Value::Tensor(t) => t,
        Value::ClassMap { probabilities, .. } => probabilities,
    };
    let integer = !t.dtype().is_float();
    let t = t
        .to_device(&Device::Cpu)
        .and_then(|t| t.to_dtype(DType::F32))
        .map_err(|e| e.to_string())?;
    let rows = t.dims().first().copied().unwrap_or(1).max(1);
    let v: Vec<f32> = t
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .map_err(|e| e.to_string())?;
    let width = v.len() / rows;
    Ok((
        v.chunks(width.max(1)).map(<[f32]>::to_vec).collect(),
        integer,
    ))
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |best, (i, x)| if *x > v[best] { i } else { best })
}

fn compare(p: &OutputPair) -> OutputComparison {
    let (mut max, mut sum, mut count) = (0f64, 0f64, 0usize);
    let (mut cos_sum, mut cos_min, mut agree) = (0f64, f64::INFINITY, 0usize);
    let width = p.reference.first().map_or(0, Vec::len);
    for (a, b) in p.reference.iter().zip(&p.quantized) {
        let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
        for (x, y) in a.iter().zip(b) {
            let d = (*x as f64 - *y as f64).abs();
            max = max.max(d);
            sum += d;
            count += 1;
            dot += *x as f64 * *y as f64;
            na += (*x as f64).powi(2);
            nb += (*y as f64).powi(2);
        }
        let cos = if na > 0.0 && nb > 0.0 {
            dot / (na.sqrt() * nb.sqrt())
        } else {
            (na == nb) as u8 as f64
        };
        cos_sum += cos;
        cos_min = cos_min.min(cos);
        let same = if p.integer || a.len() == 1 {
            a == b
        } else {
            argmax(a) == argmax(b)
        };
        agree += same as usize;
    }
    let rows = p.reference.len();
    let cosine = !p.integer && width > 1 && rows > 0;
    OutputComparison {
        name: p.name.clone(),
        rows,
        max_abs_diff: max,
        mean_abs_diff: if count > 0 { sum / count as f64 } else { 0.0 },
        mean_cosine: cosine.then(|| cos_sum / rows as f64),
        min_cosine: cosine.then_some(cos_min),
        agreement: if rows > 0 {
            agree as f64 / rows as f64
        } else {
            1.0
        },
    }
}

fn append(pairs: &mut Vec<OutputPair>, outputs: &[(String, Value)], quantized: bool) -> Result<()> {
    for (name, value) in outputs {
        let (rows, integer) =
            rows_of(value).map_err(|e| Error::usage(format!("output '{name}': {e}")))?;
        let pair = match pairs.iter_mut().position(|p| p.name == *name) {
            Some(i) => &mut pairs[i],
            None => {
                pairs.push(OutputPair {
                    name: name.clone(),
                    integer,
                    ..Default::default()
                });
                pairs.last_mut().expect("just pushed")
            }
        };
        if quantized {
            pair.quantized.extend(rows);
        } else {
            pair.reference.extend(rows);
        }
    }
    Ok(())
}

/// Runs both models on `data` (parquet/CSV rows in batches, or a `.npz` of
/// arrays for tensor models).
pub fn evaluate(
    reference: &Model,
    quantized: &Model,
    data: &Path,
    reference_path: &Path,
    label: Option<&str>,
    exclude: &[String],
    batch_size: usize,
) -> Result<Evaluation> {
    let mut pairs: Vec<OutputPair> = Vec::new();
    let mut seconds = (0f64, 0f64);
    let mut labels: Vec<Option<String>> = Vec::new();
    // Both models on one batch, each timed, their outputs kept by row.
    let mut both = |feeds: Vec<(String, Tensor)>| -> Result<()> {
        for (model, which, quantized_side) in
            [(reference, "float", false), (quantized, "quantized", true)]
        {
            let started = Instant::now();
            let out = model
                .run(feeds.clone())
                .map_err(|e| Error::input(data, format!("the {which} model: {e}")))?;
            let took = started.elapsed().as_secs_f64();
            if quantized_side {
                seconds.1 += took;
            } else {
                seconds.0 += took;
            }
            append(&mut pairs, &out, quantized_side)?;
        }
        Ok(())
    };
    if data
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"))
    {
        if label.is_some() {
            return Err(Error::usage(
                "--label needs a table (parquet or CSV), not a .npz",
            ));
        }
        both(predict::npz_feeds(reference, data)?)?;
    } else {
        let table = Table::open(data)?;
        if let Some(l) = label {
            if table.value_type(l).is_none() {
                return Err(Error::input(data, format!("no label column '{l}'")));
            }
        }
        let mut excluded: Vec<String> = exclude.to_vec();
        excluded.extend(label.map(str::to_string));
        let features = Features {
            input: data,
            model: reference_path,
            columns: &[],
            exclude: &excluded,
            keep: &[],
        };
        let feeding = predict::feeding(&reference.graph.inputs, &table, &features)?;
        let rows = table.row_count()?;
        let mut offset = 0;
        while offset < rows {
            let n = batch_size.min(rows - offset);
            let (feeds, _) = predict::batch_feeds(&table, &feeding, offset, n, &Device::Cpu, data)?;
            both(feeds)?;
            if let Some(l) = label {
                labels.extend(table.read_text(l, offset, n)?);
            }
            offset += n;
        }
    }
    let outputs: Vec<OutputComparison> = pairs.iter().map(compare).collect();
    let rows = outputs.iter().map(|o| o.rows).max().unwrap_or(0);
    let (mut accuracy, mut rmse) = (None, None);
    if label.is_some() {
        // The prediction: the first integer output (a class label), else the
        // argmax of the first float output with several values per row, else
        // a regression value.
        let classes = pairs.iter().find(|p| p.integer).or_else(|| {
            pairs
                .iter()
                .find(|p| p.reference.first().is_some_and(|r| r.len() > 1))
        });
        match classes {
            Some(p) => {
                let predicted = |row: &Vec<f32>| -> String {
                    if p.integer || row.len() == 1 {
                        format!("{}", row[0] as i64)
                    } else {
                        argmax(row).to_string()
                    }
                };
                let score = |rows: &Vec<Vec<f32>>| -> f64 {
                    let hits = rows
                        .iter()
                        .zip(&labels)
                        .filter(|(r, l)| {
                            l.as_deref().map(truth_text).as_deref() == Some(predicted(r).as_str())
                        })
                        .count();
                    hits as f64 / rows.len().max(1) as f64
                };
                accuracy = Some((score(&p.reference), score(&p.quantized)));
            }
            None => {
                if let Some(p) = pairs.first() {
                    let truth: Vec<Option<f64>> = labels
                        .iter()
                        .map(|l| l.as_deref().and_then(|v| v.parse().ok()))
                        .collect();
                    let error = |rows: &Vec<Vec<f32>>| -> f64 {
                        let (mut sum, mut n) = (0f64, 0usize);
                        for (r, t) in rows.iter().zip(&truth) {
                            if let Some(t) = t {
                                sum += (r[0] as f64 - t).powi(2);
                                n += 1;
                            }
                        }
                        (sum / n.max(1) as f64).sqrt()
                    };
                    rmse = Some((error(&p.reference), error(&p.quantized)));
                }
            }
        }
    }
    Ok(Evaluation {
        rows,
        outputs,
        accuracy,
        rmse,
        seconds,
    })
}

/// A label as text the way predictions are printed: integers without a
/// decimal part ("1.0" and "1" are the same class).
fn truth_text(label: &str) -> String {
    match label.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        _ => label.to_string(),
    }
}
