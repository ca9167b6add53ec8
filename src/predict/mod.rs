//! `mlctl predict MODEL --input DATA -o OUT.parquet`: batch scoring with
//! mlctl's runtime. Tabular inputs are mapped to the model's inputs:
//! * every model input named like a column: each gets its column;
//! * otherwise a single 2-D input gets the listed columns (or every numeric
//!   column, in order, less `--exclude`) as its features.
//!
//! Outputs become columns: one per output of width 1, `NAME_k` for the k-th
//! column of a wider output, `NAME_LABEL` per class of a ZipMap output.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Tensor};

use crate::data::{write_parquet, OutColumn, Table, ValueType};
use crate::error::{Error, Result};
use crate::report::{Gate, Outcome, Report, Section};
use crate::runtime::graph::{Dim, IoSpec};
use crate::runtime::{self, tensor, Model, Value};

#[derive(Debug, Clone)]
pub struct Options {
    pub model: PathBuf,
    pub input: PathBuf,
    pub output: PathBuf,
    /// Feature columns for a single 2-D input, in order.
    pub columns: Vec<String>,
    pub exclude: Vec<String>,
    /// Columns copied to the output as they are (ids, timestamps).
    pub keep: Vec<String>,
    pub batch_size: usize,
    pub device: String,
    /// Threads for the CPU kernels; None: one per core.
    pub threads: Option<usize>,
    pub show_progress: bool,
}

/// Which table columns feed a model (also used by `quantize --eval`).
pub(crate) struct Features<'a> {
    pub input: &'a std::path::Path,
    pub model: &'a std::path::Path,
    /// Feature columns for a single 2-D input, in order (empty: every
    /// numeric column not excluded or kept).
    pub columns: &'a [String],
    pub exclude: &'a [String],
    pub keep: &'a [String],
}

/// How table columns feed the model's inputs.
pub(crate) enum Feeding {
    /// One 2-D input from several columns.
    Matrix { input: IoSpec, columns: Vec<String> },
    /// Each input from the column of the same name.
    Named(Vec<IoSpec>),
}

/// How `table` feeds a model with graph inputs `inputs`.
pub(crate) fn feeding(inputs: &[IoSpec], table: &Table, opts: &Features) -> Result<Feeding> {
    if inputs.iter().all(|i| table.value_type(&i.name).is_some()) && !inputs.is_empty() {
        return Ok(Feeding::Named(inputs.to_vec()));
    }
    let [input] = inputs else {
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        return Err(Error::input(
            opts.input,
            format!(
                "the model has inputs {}; the table must have a column for each",
                names.join(", ")
            ),
        ));
    };
    let columns: Vec<String> = if opts.columns.is_empty() {
        table
            .columns
            .iter()
            .filter(|(n, t)| t.is_numeric() && !opts.exclude.contains(n) && !opts.keep.contains(n))
            .map(|(n, _)| n.clone())
            .collect()
    } else {
        for c in opts.columns {
            match table.value_type(c) {
                None => return Err(Error::input(opts.input, format!("no column '{c}'"))),
                Some(t) if !t.is_numeric() && t != ValueType::Boolean => {
                    return Err(Error::input(
                        opts.input,
                        format!("column '{c}' is {}, not numeric", t.name()),
                    ))
                }
                _ => {}
            }
        }
        opts.columns.to_vec()
    };
    if let Some(dims) = &input.dims {
        if dims.len() != 2 {
            return Err(Error::input(
                opts.model,
                format!(
                    "input '{}' has rank {}; tabular scoring needs a 2-D input",
                    input.name,
                    dims.len()
                ),
            ));
        }
        if let Dim::Fixed(width) = dims[1] {
            if width != columns.len() {
                return Err(Error::input(
                    opts.input,
                    format!(
                        "model input '{}' takes {width} features, the table gives {} ({}); choose them with --columns or --exclude",
                        input.name,
                        columns.len(),
                        columns.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(Feeding::Matrix {
        input: input.clone(),
        columns,
    })
}

fn to_tensor(
    data: Vec<f64>,
    dims: &[usize],
    spec: &IoSpec,
    device: &candle_core::Device,
) -> Result<Tensor> {
    let dtype = tensor::dtype_of(spec.elem_type).unwrap_or(DType::F32);
    let t = Tensor::from_vec(data, dims, device)
        .and_then(|t| t.to_dtype(dtype))
        .map_err(|e| Error::usage(format!("input '{}': {e}", spec.name)))?;
    Ok(t)
}

/// Widest output written as one column per value; wider ones (embeddings),
/// outputs whose width the model does not fix, and tensors of higher rank
/// become one list column, so every batch gives the same columns.
const MAX_SPLIT_WIDTH: usize = 16;

/// Appends a batch of one output's values to its columns. `declared` is the
/// output's shape as the model declares it.
fn collect(
    name: &str,
    value: &Value,
    declared: Option<&[Dim]>,
    columns: &mut Vec<(String, OutColumn)>,
) -> std::result::Result<(), String> {
    let e = |e: candle_core::Error| e.to_string();
    let fixed_width = match declared {
        Some([_, Dim::Fixed(k)]) => Some(*k),
        _ => None,
    };
    let (names, tensor): (Vec<String>, &Tensor) = match value {
        Value::ClassMap {
            labels,
            probabilities,
        } => (
            labels.iter().map(|l| format!("{name}_{l}")).collect(),
            probabilities,
        ),
        Value::Tensor(t) => match t.dims() {
            [_] | [_, 1] => (vec![name.to_string()], t),
            [_, k] if *k <= MAX_SPLIT_WIDTH && fixed_width == Some(*k) => {
                ((0..*k).map(|i| format!("{name}_{i}")).collect(), t)
            }
            [] => {
                return Err(format!(
                    "output '{name}' is a scalar, not one value per row"
                ))
            }
            dims => {
                let rows = dims[0];
                let per_row: usize = dims[1..].iter().product();
                let flat = t.flatten_all().map_err(e)?;
                let batch = if t.dtype().is_float() {
                    let v: Vec<f32> = flat
                        .to_dtype(DType::F32)
                        .and_then(|t| t.to_vec1())
                        .map_err(e)?;
                    OutColumn::ListF32(
                        (0..rows)
                            .map(|r| v[r * per_row..(r + 1) * per_row].to_vec())
                            .collect(),
                    )
                } else {
                    let v: Vec<i64> = flat
                        .to_dtype(DType::I64)
                        .and_then(|t| t.to_vec1())
                        .map_err(e)?;
                    OutColumn::ListI64(
                        (0..rows)
                            .map(|r| v[r * per_row..(r + 1) * per_row].to_vec())
                            .collect(),
                    )
                };
                return append(columns, name, batch);
            }
        },
    };
    let rows = tensor.dims()[0];
    let width = names.len();
    let flat = tensor.flatten_all().map_err(e)?;
    let column_values = |k: usize| -> std::result::Result<OutColumn, String> {
        Ok(match tensor.dtype() {
            DType::F32 => {
                let v: Vec<f32> = flat.to_vec1().map_err(e)?;
                OutColumn::F32((0..rows).map(|r| v[r * width + k]).collect())
            }
            DType::F64 | DType::F16 | DType::BF16 => {
                let v: Vec<f64> = flat
                    .to_dtype(DType::F64)
                    .and_then(|t| t.to_vec1())
                    .map_err(e)?;
                OutColumn::F64((0..rows).map(|r| v[r * width + k]).collect())
            }
            _ => {
                let v: Vec<i64> = flat
                    .to_dtype(DType::I64)
                    .and_then(|t| t.to_vec1())
                    .map_err(e)?;
                OutColumn::I64((0..rows).map(|r| v[r * width + k]).collect())
            }
        })
    };
    for (k, col_name) in names.iter().enumerate() {
        append(columns, col_name, column_values(k)?)?;
    }
    Ok(())
}

/// Adds a batch to the column of that name, or starts it.
fn append(
    columns: &mut Vec<(String, OutColumn)>,
    name: &str,
    batch: OutColumn,
) -> std::result::Result<(), String> {
    match columns.iter_mut().find(|(n, _)| n == name) {
        None => columns.push((name.to_string(), batch)),
        Some((_, existing)) => match (existing, batch) {
            (OutColumn::F32(a), OutColumn::F32(b)) => a.extend(b),
            (OutColumn::F64(a), OutColumn::F64(b)) => a.extend(b),
            (OutColumn::I64(a), OutColumn::I64(b)) => a.extend(b),
            (OutColumn::ListF32(a), OutColumn::ListF32(b)) => a.extend(b),
            (OutColumn::ListI64(a), OutColumn::ListI64(b)) => a.extend(b),
            _ => return Err(format!("output '{name}' changed type between batches")),
        },
    }
    Ok(())
}

/// The model's inputs for rows offset..offset+n of the table, and how many
/// null feature values were read as NaN.
pub(crate) fn batch_feeds(
    table: &Table,
    feeding: &Feeding,
    offset: usize,
    n: usize,
    device: &candle_core::Device,
    input_path: &std::path::Path,
) -> Result<(Vec<(String, Tensor)>, usize)> {
    let mut null_inputs = 0;
    let feeds = match feeding {
        Feeding::Matrix { input, columns } => {
            let (values, nulls) = table.read_numbers(columns, offset, n)?;
            null_inputs += nulls;
            let width = columns.len();
            let mut data = vec![0.0; n * width];
            for (c, column) in values.iter().enumerate() {
                for (r, v) in column.iter().enumerate() {
                    data[r * width + c] = *v;
                }
            }
            vec![(
                input.name.clone(),
                to_tensor(data, &[n, width], input, device)?,
            )]
        }
        Feeding::Named(inputs) => {
            let mut feeds = Vec::with_capacity(inputs.len());
            for input in inputs {
                let (data, dims) = if table.value_type(&input.name) == Some(ValueType::List) {
                    // One list per row (token ids): padded with zeros to the
                    // longest row of the batch, as a tokenizer pads.
                    let rows = table.read_lists(&input.name, offset, n)?;
                    let width = rows.iter().flatten().map(Vec::len).max().unwrap_or(0);
                    let mut data = vec![0.0; n * width];
                    for (r, row) in rows.iter().enumerate() {
                        let row = row.as_ref().ok_or_else(|| {
                            Error::input(
                                input_path,
                                format!("column '{}' row {} is null", input.name, offset + r),
                            )
                        })?;
                        data[r * width..r * width + row.len()].copy_from_slice(row);
                    }
                    (data, vec![n, width])
                } else {
                    let (values, nulls) =
                        table.read_numbers(std::slice::from_ref(&input.name), offset, n)?;
                    null_inputs += nulls;
                    let rank = input.dims.as_ref().map_or(2, Vec::len);
                    let dims: Vec<usize> = if rank == 1 { vec![n] } else { vec![n, 1] };
                    (values.into_iter().next().unwrap_or_default(), dims)
                };
                feeds.push((input.name.clone(), to_tensor(data, &dims, input, device)?));
            }
            feeds
        }
    };
    Ok((feeds, null_inputs))
}

fn is_npz(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"))
}

/// One array per model input from a `.npz`, by name (with one input and
/// one array, the names need not agree).
pub(crate) fn npz_feeds(model: &Model, path: &std::path::Path) -> Result<Vec<(String, Tensor)>> {
    let arrays = Tensor::read_npz(path).map_err(|e| Error::input(path, runtime::ops::err(e)))?;
    let inputs = &model.graph.inputs;
    let mut feeds = Vec::with_capacity(inputs.len());
    for spec in inputs {
        let found =
            arrays
                .iter()
                .find(|(n, _)| *n == spec.name)
                .or(match (inputs.len(), arrays.len()) {
                    (1, 1) => arrays.first(),
                    _ => None,
                });
        let (_, t) = found.ok_or_else(|| {
            let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
            Error::input(
                path,
                format!(
                    "no array for model input '{}' (the file has {})",
                    spec.name,
                    names.join(", ")
                ),
            )
        })?;
        feeds.push((spec.name.clone(), t.clone()));
    }
    Ok(feeds)
}

/// Tensor models: one array per input from a `.npz`, one array per output
/// into a `.npz`, exactly as computed, in one call.
fn run_arrays(opts: &Options, model: &Model, load_seconds: f64) -> Result<Report> {
    if !is_npz(&opts.output) {
        return Err(Error::usage(
            "with a .npz input the output must be a .npz file too",
        ));
    }
    let feeds = npz_feeds(model, &opts.input)?;
    let started = Instant::now();
    let outputs = model.run(feeds).map_err(|e| Error::input(&opts.model, e))?;
    let run_seconds = started.elapsed().as_secs_f64();
    let mut arrays_out: Vec<(String, Tensor)> = Vec::with_capacity(outputs.len());
    for (name, value) in outputs {
        let t = match value {
            Value::Tensor(t) => t,
            Value::ClassMap { probabilities, .. } => probabilities,
        };
        let t = t
            .to_device(&candle_core::Device::Cpu)
            .map_err(|e| Error::input(&opts.model, runtime::ops::err(e)))?;
        arrays_out.push((name, t));
    }
    crate::fsio::write_atomic_with(&opts.output, |tmp| {
        let named: Vec<(&str, &Tensor)> = arrays_out.iter().map(|(n, t)| (n.as_str(), t)).collect();
        Tensor::write_npz(&named, tmp).map_err(runtime::ops::err)
    })?;
    let mut report = Report::new(
        "predict",
        format!(
            "Outputs of {} on {}",
            opts.model.display(),
            opts.input.display()
        ),
    );
    report.figure("load_seconds", "Model load (s)", load_seconds);
    report.figure("run_seconds", "Run (s)", run_seconds);
    report.setting("device", "Device", opts.device.clone());
    report.setting(
        "threads",
        "Threads",
        runtime::kernels::threads().to_string(),
    );
    report.setting("output", "Output", opts.output.display().to_string());
    let mut s = Section::new(
        "arrays",
        "Output arrays",
        &[("name", "Name"), ("dtype", "Type"), ("shape", "Shape")],
    );
    for (n, t) in &arrays_out {
        s.push(vec![
            n.clone().into(),
            format!("{:?}", t.dtype()).to_lowercase().into(),
            format!("{:?}", t.dims()).into(),
        ]);
    }
    report.sections.push(s);
    report.gate = Gate {
        outcome: Outcome::Pass,
        rule: "outputs written".into(),
        message: format!(
            "wrote {} arrays to {}",
            arrays_out.len(),
            opts.output.display()
        ),
    };
    Ok(report)
}

pub fn run(opts: &Options) -> Result<Report> {
    if opts.batch_size == 0 {
        return Err(Error::usage("--batch-size must be at least 1"));
    }
    if opts.output == opts.input || opts.output == opts.model {
        return Err(Error::usage(
            "refusing to overwrite an input with the predictions",
        ));
    }
    if let Some(n) = opts.threads {
        runtime::set_threads(n).map_err(Error::usage)?;
    }
    let device = runtime::device(&opts.device).map_err(Error::usage)?;
    let started = Instant::now();
    let model =
        Model::load(&opts.model, &device).map_err(|e| Error::input(&opts.model, e.0.join("; ")))?;
    let load_seconds = started.elapsed().as_secs_f64();
    if is_npz(&opts.input) {
        return run_arrays(opts, &model, load_seconds);
    }
    let table = Table::open(&opts.input)?;
    for k in &opts.keep {
        if table.value_type(k).is_none() {
            return Err(Error::input(
                &opts.input,
                format!("no column '{k}' to keep"),
            ));
        }
    }
    let features = Features {
        input: &opts.input,
        model: &opts.model,
        columns: &opts.columns,
        exclude: &opts.exclude,
        keep: &opts.keep,
    };
    let feeding = feeding(&model.graph.inputs, &table, &features)?;
    let rows = table.row_count()?;
    let progress = if opts.show_progress {
        indicatif::ProgressBar::new(rows as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut columns: Vec<(String, OutColumn)> = Vec::new();
    let mut kept: Vec<(String, OutColumn)> = opts
        .keep
        .iter()
        .map(|k| (k.clone(), OutColumn::Text(Vec::new())))
        .collect();
    let mut null_inputs = 0;
    let mut batches = 0usize;
    let run_started = Instant::now();
    let mut offset = 0;
    while offset < rows {
        let n = opts.batch_size.min(rows - offset);
        let (feeds, nulls) = batch_feeds(&table, &feeding, offset, n, &device, &opts.input)?;
        null_inputs += nulls;
        let outputs = model.run(feeds).map_err(|e| {
            Error::input(&opts.model, format!("rows {offset}..{}: {e}", offset + n))
        })?;
        for (name, value) in &outputs {
            let declared = model
                .graph
                .outputs
                .iter()
                .find(|o| &o.name == name)
                .and_then(|o| o.dims.as_deref());
            collect(name, value, declared, &mut columns)
                .map_err(|e| Error::input(&opts.model, e))?;
        }
        for (name, column) in kept.iter_mut() {
            if let OutColumn::Text(v) = column {
                v.extend(table.read_text(name, offset, n)?);
            }
        }
        offset += n;
        batches += 1;
        progress.set_position(offset as u64);
    }
    progress.finish_and_clear();
    let run_seconds = run_started.elapsed().as_secs_f64();
    let out_names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
    kept.extend(columns);
    write_parquet(&opts.output, kept)?;

    let mut report = Report::new(
        "predict",
        format!(
            "Predictions of {} on {}",
            opts.model.display(),
            opts.input.display()
        ),
    );
    report.figure("rows", "Rows scored", rows);
    report.figure("batches", "Batches", batches);
    report.figure("load_seconds", "Model load (s)", load_seconds);
    report.figure("run_seconds", "Scoring (s)", run_seconds);
    report.figure(
        "rows_per_second",
        "Rows per second",
        if run_seconds > 0.0 {
            rows as f64 / run_seconds
        } else {
            0.0
        },
    );
    report.setting("device", "Device", opts.device.clone());
    report.setting(
        "threads",
        "Threads",
        runtime::kernels::threads().to_string(),
    );
    report.setting("batch_size", "Batch size", opts.batch_size);
    report.setting("output", "Output", opts.output.display().to_string());
    let mut s = Section::new(
        "columns",
        "Output columns",
        &[("column", "Column"), ("source", "From")],
    );
    for k in &opts.keep {
        s.push(vec![k.clone().into(), "input (kept)".into()]);
    }
    for n in &out_names {
        s.push(vec![n.clone().into(), "model".into()]);
    }
    if let Feeding::Matrix { input, columns } = &feeding {
        s.notes.push(format!(
            "input '{}' took columns {}",
            input.name,
            columns.join(", ")
        ));
    }
    report.sections.push(s);
    if null_inputs > 0 {
        report.warnings.push(format!(
            "{null_inputs} input values were null and were passed to the model as NaN"
        ));
    }
    report.gate = Gate {
        outcome: Outcome::Pass,
        rule: "predictions written".into(),
        message: format!("scored {rows} rows into {}", opts.output.display()),
    };
    Ok(report)
}
