//! `mlctl bench`: latency and throughput of one or more models on mlctl's
//! runtime, single-stream (one request at a time), with the statistics a
//! team can trust and gates for CI.
//!
//! Models run interleaved (one run of each in turn), so that a drift of the
//! machine's speed hits all of them alike. Inputs are generated from the
//! models' declared shapes and types, or read from `--inputs` rows.

pub mod server;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::report::{Cell, Chart, Gate, Outcome, Report, Section, Series};
use crate::runtime::graph::Dim;
use crate::runtime::{self, tensor, Model, Value};
use crate::stats::latency::{self, Summary};

/// How requests reach the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    /// One request at a time, at each batch size.
    SingleStream,
    /// Poisson arrivals at `qps` through a dynamic batcher.
    Server {
        qps: f64,
        max_batch: usize,
        max_delay_ms: f64,
    },
    /// Back-to-back batches of the largest batch size: maximum throughput.
    Offline,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: Scenario,
    /// Search the highest rate whose p99 stays under this (server).
    pub find_max_qps: Option<f64>,
    pub models: Vec<PathBuf>,
    pub batch_sizes: Vec<usize>,
    pub warmup: usize,
    /// Measured runs per model and batch size; with `duration`, at most.
    pub runs: Option<usize>,
    /// Seconds to measure each batch size for (all models together).
    pub duration: Option<f64>,
    pub threads: Option<usize>,
    pub device: String,
    /// Whole shapes for named inputs (`--shape input_ids=1,128`).
    pub shapes: Vec<(String, Vec<usize>)>,
    /// For free dimensions other than the first (sequence lengths).
    pub seq_len: usize,
    /// Real rows for the inputs instead of generated ones.
    pub inputs: Option<PathBuf>,
    pub max_p99_ms: Option<f64>,
    pub max_p50_ms: Option<f64>,
    pub min_throughput: Option<f64>,
}

/// Generated inputs for `model` at `batch`: float values in [-1, 1), masks
/// of ones, token ids in 1000..2000 (valid in any vocabulary larger than
/// that), booleans true.
pub fn synthetic_inputs(
    model: &Model,
    batch: usize,
    opts: &Options,
    path: &std::path::Path,
) -> Result<Vec<(String, Tensor)>> {
    for (name, _) in &opts.shapes {
        if !model.graph.inputs.iter().any(|i| &i.name == name) {
            let names: Vec<&str> = model.graph.inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(Error::usage(format!(
                "--shape {name}: {} has no input '{name}' (its inputs: {})",
                path.display(),
                names.join(", ")
            )));
        }
    }
    let mut feeds = Vec::new();
    for spec in &model.graph.inputs {
        let dims: Vec<usize> = match opts.shapes.iter().find(|(n, _)| *n == spec.name) {
            Some((_, d)) => d.clone(),
            None => match &spec.dims {
                None => {
                    return Err(Error::input(
                        path,
                        format!("input '{}' declares no shape: give it with --shape {}=d1,d2,...", spec.name, spec.name),
                    ))
                }
                Some(dims) => dims
                    .iter()
                    .enumerate()
                    .map(|(i, d)| match (i, d) {
                        (0, Dim::Fixed(n)) if *n != batch && dims.len() > 1 => Err(Error::usage(format!(
                            "batch size {batch}: input '{}' of {} has a fixed first dimension of {n}",
                            spec.name,
                            path.display()
                        ))),
                        (_, Dim::Fixed(n)) => Ok(*n),
                        (0, Dim::Free(_)) => Ok(batch),
                        (_, Dim::Free(_)) => Ok(opts.seq_len),
                    })
                    .collect::<Result<_>>()?,
            },
        };
        let count: usize = dims.iter().product();
        let dtype = tensor::dtype_of(spec.elem_type).unwrap_or(DType::F32);
        let mut state = 0x9e37_79b9_u64 ^ count as u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as f64 / (1u64 << 31) as f64
        };
        let values: Vec<f64> = if dtype.is_float() {
            (0..count).map(|_| next() * 2.0 - 1.0).collect()
        } else if spec.name.to_ascii_lowercase().contains("mask") || dtype == DType::U8 {
            vec![1.0; count]
        } else {
            (0..count)
                .map(|_| 1000.0 + (next() * 1000.0).floor())
                .collect()
        };
        let t = Tensor::from_vec(values, dims.as_slice(), &Device::Cpu)
            .and_then(|t| t.to_dtype(dtype))
            .map_err(|e| {
                Error::usage(format!("input '{}': {}", spec.name, runtime::ops::err(e)))
            })?;
        feeds.push((spec.name.clone(), t));
    }
    Ok(feeds)
}

/// The first `batch` rows of `--inputs` as the model's inputs.
fn rows_inputs(
    model: &Model,
    data: &std::path::Path,
    path: &std::path::Path,
    batch: usize,
) -> Result<Vec<(String, Tensor)>> {
    let table = crate::data::Table::open(data)?;
    let rows = table.row_count()?;
    if rows < batch {
        return Err(Error::input(
            data,
            format!("{rows} rows, fewer than batch size {batch}"),
        ));
    }
    let features = crate::predict::Features {
        input: data,
        model: path,
        columns: &[],
        exclude: &[],
        keep: &[],
    };
    let feeding = crate::predict::feeding(&model.graph.inputs, &table, &features)?;
    Ok(crate::predict::batch_feeds(&table, &feeding, 0, batch, &Device::Cpu, data)?.0)
}

fn run_once(
    model: &Model,
    feeds: &[(String, Tensor)],
    path: &std::path::Path,
) -> Result<Vec<(String, Value)>> {
    let out = model
        .run(feeds.to_vec())
        .map_err(|e| Error::input(path, e))?;
    // A device that queues work must finish before the clock stops.
    model
        .device()
        .synchronize()
        .map_err(|e| Error::input(path, runtime::ops::err(e)))?;
    Ok(out)
}

/// CPU time (user + system) of this process so far, in seconds.
fn cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage fills the struct it is given.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
            let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
            return t(usage.ru_utime) + t(usage.ru_stime);
        }
    }
    0.0
}

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// What the timer itself costs per measurement, in nanoseconds.
fn timer_overhead_ns() -> f64 {
    let n = 10_000;
    let start = Instant::now();
    let mut sink = 0u128;
    for _ in 0..n {
        let t = Instant::now();
        sink = sink.wrapping_add(t.elapsed().as_nanos());
    }
    std::hint::black_box(sink);
    start.elapsed().as_nanos() as f64 / n as f64
}

/// An empty model (one Identity node): the floor of a call into the runtime.
fn empty_model_latency_us() -> Option<f64> {
    use candle_onnx::onnx::{
        type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto,
        TypeProto, ValueInfoProto,
    };
    use prost::Message;
    let info = |name: &str| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: vec![candle_onnx::onnx::tensor_shape_proto::Dimension {
                        value: Some(
                            candle_onnx::onnx::tensor_shape_proto::dimension::Value::DimValue(1),
                        ),
                        ..Default::default()
                    }],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "empty".into(),
            node: vec![NodeProto {
                op_type: "Identity".into(),
                input: vec!["x".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![info("x")],
            output: vec![info("y")],
            ..Default::default()
        }),
        ..Default::default()
    };
    let m = Model::from_bytes(&model.encode_to_vec(), &Device::Cpu).ok()?;
    let x = Tensor::zeros(1, DType::F32, &Device::Cpu).ok()?;
    let mut times = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let start = Instant::now();
        m.run(vec![("x".into(), x.clone())]).ok()?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Some(latency::summarize(&times).p50)
}

/// Output agreement of two runs on the same inputs: max |difference| over
/// float outputs and the share of rows whose argmax agrees.
fn agreement(a: &[(String, Value)], b: &[(String, Value)]) -> (f64, f64) {
    let (mut max, mut same, mut rows) = (0f64, 0usize, 0usize);
    for (name, va) in a {
        let Some((_, vb)) = b.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let values = |v: &Value| -> Option<(Vec<f32>, usize)> {
            let t = match v {
                Value::Tensor(t) => t,
                Value::ClassMap { probabilities, .. } => probabilities,
            };
            let rows = t.dims().first().copied().unwrap_or(1).max(1);
            let v: Vec<f32> = t
                .to_device(&Device::Cpu)
                .ok()?
                .to_dtype(DType::F32)
                .ok()?
                .flatten_all()
                .ok()?
                .to_vec1()
                .ok()?;
            Some((v, rows))
        };
        let (Some((x, r)), Some((y, _))) = (values(va), values(vb)) else {
            continue;
        };
        if x.len() != y.len() {
            continue;
        }
        for (p, q) in x.iter().zip(&y) {
            max = max.max((*p as f64 - *q as f64).abs());
        }
        let width = x.len() / r;
        let argmax = |v: &[f32]| {
            v.iter()
                .enumerate()
                .fold(0, |best, (i, z)| if *z > v[best] { i } else { best })
        };
        for (rx, ry) in x.chunks(width.max(1)).zip(y.chunks(width.max(1))) {
            rows += 1;
            same += (if width == 1 {
                rx == ry
            } else {
                argmax(rx) == argmax(ry)
            }) as usize;
        }
    }
    (
        max,
        if rows == 0 {
            1.0
        } else {
            same as f64 / rows as f64
        },
    )
}

pub fn run(opts: &Options) -> Result<Report> {
    if opts.models.is_empty() {
        return Err(Error::usage("give at least one model"));
    }
    if opts.batch_sizes.is_empty() || opts.batch_sizes.contains(&0) {
        return Err(Error::usage("--batch-sizes must be 1 or more"));
    }
    if opts.runs == Some(0) {
        return Err(Error::usage("--runs must be at least 1"));
    }
    if let Some(n) = opts.threads {
        runtime::set_threads(n).map_err(Error::usage)?;
    }
    let device = runtime::device(&opts.device).map_err(Error::usage)?;
    let mut models = Vec::new();
    for path in &opts.models {
        let started = Instant::now();
        let model = Model::load(path, &device).map_err(|e| Error::input(path, e.0.join("; ")))?;
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        models.push((path.clone(), model, load_ms, bytes));
    }
    let timer_ns = timer_overhead_ns();
    let empty_us = empty_model_latency_us();
    if opts.scenario != Scenario::SingleStream {
        return run_loaded(opts, &models, &device, timer_ns, empty_us);
    }

    let mut report = Report::new(
        "bench",
        format!(
            "Latency of {}",
            opts.models
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let mut table = Section::new(
        "latency",
        "Latency (ms) and throughput, single-stream",
        &[
            ("model", "Model"),
            ("batch", "Batch"),
            ("load_ms", "Load ms"),
            ("first_ms", "First call ms"),
            ("runs", "Runs"),
            ("min", "Min"),
            ("mean", "Mean"),
            ("sd", "Sd"),
            ("p50", "p50"),
            ("p90", "p90"),
            ("p95", "p95"),
            ("p99", "p99"),
            ("p999", "p99.9"),
            ("max", "Max"),
            ("rows_per_second", "Rows/s"),
            ("cpu_ms", "CPU ms/run"),
        ],
    );
    let mut comparison = Section::new(
        "comparison",
        "Against the first model",
        &[
            ("batch", "Batch"),
            ("model", "Model"),
            ("speedup", "Speed-up (x faster)"),
            ("error", "+-"),
            ("size_ratio", "Size ratio (first / this)"),
            ("max_abs_diff", "Max |diff| of outputs"),
            ("agreement", "Top-1 agreement"),
        ],
    );
    let mut shortest_p50_ms = f64::INFINITY;
    let mut violations: Vec<String> = Vec::new();
    for &batch in &opts.batch_sizes {
        // Inputs, the first call, the warm-up.
        let mut per_model = Vec::new();
        for (path, model, _, _) in &models {
            let feeds = InputCache::new(model, path, &device, opts)
                .at(batch)?
                .clone();
            let started = Instant::now();
            let outputs = run_once(model, &feeds, path)?;
            let first_ms = started.elapsed().as_secs_f64() * 1e3;
            for _ in 0..opts.warmup {
                run_once(model, &feeds, path)?;
            }
            per_model.push((feeds, first_ms, outputs, Vec::<f64>::new(), 0f64));
        }
        // Interleaved measurement.
        let budget = opts.duration;
        let max_runs = opts
            .runs
            .unwrap_or(if budget.is_some() { usize::MAX } else { 100 });
        let started = Instant::now();
        let mut i = 0;
        while i < max_runs {
            for (k, (path, model, _, _)) in models.iter().enumerate() {
                let (feeds, _, _, times, cpu) = &mut per_model[k];
                let cpu0 = cpu_seconds();
                let t = Instant::now();
                run_once(model, feeds, path)?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
                *cpu += cpu_seconds() - cpu0;
            }
            i += 1;
            if budget.is_some_and(|d| started.elapsed().as_secs_f64() >= d) && i >= 3 {
                break;
            }
        }
        let summaries: Vec<Summary> = per_model.iter().map(|m| latency::summarize(&m.3)).collect();
        table.charts.push(latency_histogram(
            batch,
            &models,
            &per_model.iter().map(|m| m.3.clone()).collect::<Vec<_>>(),
        ));
        for (k, (path, _, load_ms, _)) in models.iter().enumerate() {
            let s = &summaries[k];
            let (_, first_ms, _, times, cpu) = &per_model[k];
            let label = format!("{} at batch {batch}", path.display());
            report.warnings.extend(latency::warnings(&label, times));
            shortest_p50_ms = shortest_p50_ms.min(s.p50);
            let throughput = batch as f64 / (s.mean / 1e3);
            table.push(vec![
                path.display().to_string().into(),
                batch.into(),
                (*load_ms).into(),
                (*first_ms).into(),
                s.count.into(),
                s.min.into(),
                s.mean.into(),
                s.sd.into(),
                s.p50.into(),
                s.p90.into(),
                s.p95.into(),
                s.p99.into(),
                s.p999.into(),
                s.max.into(),
                throughput.into(),
                (cpu / s.count.max(1) as f64 * 1e3).into(),
            ]);
            if let Some(limit) = opts.max_p99_ms.filter(|l| s.p99 > *l) {
                violations.push(format!(
                    "{label}: p99 {:.3} ms > --max-p99-ms {limit}",
                    s.p99
                ));
            }
            if let Some(limit) = opts.max_p50_ms.filter(|l| s.p50 > *l) {
                violations.push(format!(
                    "{label}: p50 {:.3} ms > --max-p50-ms {limit}",
                    s.p50
                ));
            }
            if let Some(limit) = opts.min_throughput.filter(|l| throughput < *l) {
                violations.push(format!(
                    "{label}: {throughput:.1} rows/s < --min-throughput {limit}"
                ));
            }
        }
        for k in 1..models.len() {
            let (speedup, error) = latency::ratio(&summaries[0], &summaries[k]);
            let (diff, agree) = agreement(&per_model[0].2, &per_model[k].2);
            comparison.push(vec![
                batch.into(),
                models[k].0.display().to_string().into(),
                speedup.into(),
                error.into(),
                (models[0].3 as f64 / models[k].3.max(1) as f64).into(),
                diff.into(),
                agree.into(),
            ]);
        }
    }
    describe_machine(&mut report, opts, timer_ns, empty_us);
    report.figure(
        "harness_share",
        "Harness share of the shortest p50",
        timer_ns / (shortest_p50_ms * 1e6),
    );
    report.sections.push(table);
    if models.len() > 1 {
        report.sections.push(comparison);
    }
    report.setting("scenario", "Scenario", "single-stream");
    report.setting(
        "percentiles",
        "Percentiles",
        "nearest rank (a measured time)",
    );
    report.setting("warmup", "Warm-up runs", opts.warmup);
    report.setting("runs", "Runs", opts.runs.map_or(Cell::Null, Cell::from));
    report.setting(
        "duration_s",
        "Duration (s)",
        opts.duration.map_or(Cell::Null, Cell::from),
    );
    report.gate = verdict(
        violations,
        format!(
            "{} model(s) at {} batch size(s) measured",
            models.len(),
            opts.batch_sizes.len()
        ),
    );
    Ok(report)
}

type Loaded = (PathBuf, Model, f64, u64);

/// Inputs for one model at any batch size, made once per size.
struct InputCache<'a> {
    model: &'a Model,
    path: &'a std::path::Path,
    device: &'a Device,
    opts: &'a Options,
    made: HashMap<usize, Vec<(String, Tensor)>>,
}

impl<'a> InputCache<'a> {
    fn new(
        model: &'a Model,
        path: &'a std::path::Path,
        device: &'a Device,
        opts: &'a Options,
    ) -> Self {
        InputCache {
            model,
            path,
            device,
            opts,
            made: HashMap::new(),
        }
    }

    fn at(&mut self, batch: usize) -> Result<&Vec<(String, Tensor)>> {
        if !self.made.contains_key(&batch) {
            let feeds = match &self.opts.inputs {
                Some(data) => rows_inputs(self.model, data, self.path, batch)?,
                None => synthetic_inputs(self.model, batch, self.opts, self.path)?,
            };
            let feeds = feeds
                .into_iter()
                .map(|(n, t)| {
                    t.to_device(self.device)
                        .map(|t| (n, t))
                        .map_err(|e| Error::usage(runtime::ops::err(e)))
                })
                .collect::<Result<_>>()?;
            self.made.insert(batch, feeds);
        }
        Ok(&self.made[&batch])
    }
}

/// The server and offline scenarios.
fn run_loaded(
    opts: &Options,
    models: &[Loaded],
    device: &Device,
    timer_ns: f64,
    empty_us: Option<f64>,
) -> Result<Report> {
    let mut report = Report::new(
        "bench",
        format!(
            "Latency of {}",
            opts.models
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let mut violations = Vec::new();
    let duration = opts.duration.unwrap_or(5.0);
    match opts.scenario {
        Scenario::Offline => {
            let batch = *opts.batch_sizes.iter().max().unwrap_or(&1);
            let mut section = Section::new(
                "offline",
                "Offline: back-to-back batches",
                &[
                    ("model", "Model"),
                    ("batch", "Batch"),
                    ("runs", "Runs"),
                    ("mean_ms", "Mean ms"),
                    ("rows_per_second", "Rows/s"),
                ],
            );
            for (path, model, _, _) in models {
                let mut cache = InputCache::new(model, path, device, opts);
                let feeds = cache.at(batch)?.clone();
                for _ in 0..opts.warmup {
                    run_once(model, &feeds, path)?;
                }
                let mut times = Vec::new();
                let started = Instant::now();
                while times.len() < opts.runs.unwrap_or(usize::MAX)
                    && (times.len() < 3 || started.elapsed().as_secs_f64() < duration)
                {
                    let t = Instant::now();
                    run_once(model, &feeds, path)?;
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
                let s = latency::summarize(&times);
                let throughput = batch as f64 / (s.mean / 1e3);
                if let Some(limit) = opts.min_throughput.filter(|l| throughput < *l) {
                    violations.push(format!(
                        "{}: {throughput:.1} rows/s < --min-throughput {limit}",
                        path.display()
                    ));
                }
                section.push(vec![
                    path.display().to_string().into(),
                    batch.into(),
                    s.count.into(),
                    s.mean.into(),
                    throughput.into(),
                ]);
            }
            report.sections.push(section);
            report.setting("scenario", "Scenario", "offline");
        }
        Scenario::Server {
            qps,
            max_batch,
            max_delay_ms,
        } => {
            let mut section = Section::new(
                "server",
                "Server: Poisson arrivals through a dynamic batcher (latency includes queueing)",
                &[
                    ("model", "Model"),
                    ("offered_qps", "Offered QPS"),
                    ("achieved_qps", "Achieved QPS"),
                    ("requests", "Requests"),
                    ("p50", "p50 ms"),
                    ("p90", "p90 ms"),
                    ("p99", "p99 ms"),
                    ("max", "Max ms"),
                    ("mean_batch", "Mean batch"),
                ],
            );
            let mut histogram = Section::new(
                "batch_sizes",
                "Batch sizes sent",
                &[("model", "Model"), ("batch", "Batch"), ("count", "Count")],
            );
            let mut curve = Section::new(
                "qps_search",
                "Rate search (--find-max-qps): p99 at each offered rate",
                &[
                    ("model", "Model"),
                    ("offered_qps", "Offered QPS"),
                    ("p99", "p99 ms"),
                    ("holds", "Holds"),
                ],
            );
            for (path, model, _, _) in models {
                let mut cache = InputCache::new(model, path, device, opts);
                for b in 1..=max_batch.min(64) {
                    let feeds = cache.at(b)?.clone();
                    run_once(model, &feeds, path)?;
                }
                let mut service = |b: usize| -> std::result::Result<f64, String> {
                    let feeds = cache.at(b).map_err(|e| e.to_string())?.clone();
                    let t = Instant::now();
                    run_once(model, &feeds, path).map_err(|e| e.to_string())?;
                    Ok(t.elapsed().as_secs_f64())
                };
                // The worker's time for a full batch bounds the rate search.
                let full_batch_seconds = match opts.find_max_qps {
                    Some(_) => cache_time(&mut service, max_batch)?,
                    None => 0.0,
                };
                let mut simulate = |rate: f64, seconds: f64| -> Result<server::Served> {
                    let arrivals = server::poisson_arrivals(rate, seconds, 42);
                    server::serve(&arrivals, max_batch, max_delay_ms / 1e3, &mut service)
                        .map_err(|e| Error::input(path, e))
                };
                let served = simulate(qps, duration)?;
                let ms: Vec<f64> = served.latencies.iter().map(|l| l * 1e3).collect();
                let s = latency::summarize(&ms);
                let mean_batch = served.batches.iter().sum::<usize>() as f64
                    / served.batches.len().max(1) as f64;
                section.push(vec![
                    path.display().to_string().into(),
                    qps.into(),
                    (served.latencies.len() as f64 / served.span.max(1e-12)).into(),
                    served.latencies.len().into(),
                    s.p50.into(),
                    s.p90.into(),
                    s.p99.into(),
                    s.max.into(),
                    mean_batch.into(),
                ]);
                let mut counts: std::collections::BTreeMap<usize, usize> = Default::default();
                for b in &served.batches {
                    *counts.entry(*b).or_default() += 1;
                }
                for (b, c) in counts {
                    histogram.push(vec![path.display().to_string().into(), b.into(), c.into()]);
                }
                if let Some(limit) = opts.max_p99_ms.filter(|l| s.p99 > *l) {
                    violations.push(format!(
                        "{} at {qps} QPS: p99 {:.3} ms > --max-p99-ms {limit}",
                        path.display(),
                        s.p99
                    ));
                }
                if let Some(limit) = opts.max_p50_ms.filter(|l| s.p50 > *l) {
                    violations.push(format!(
                        "{} at {qps} QPS: p50 {:.3} ms > --max-p50-ms {limit}",
                        path.display(),
                        s.p50
                    ));
                }
                if let Some(target) = opts.find_max_qps {
                    // Bisection between a rate that holds and one that does
                    // not; the top starts at the worker's full-batch rate.
                    let mut hi = max_batch as f64 / full_batch_seconds.max(1e-9) * 1.5;
                    let mut lo = 0.0;
                    let seconds = duration.min(2.0);
                    for _ in 0..8 {
                        let mid = if lo == 0.0 { hi / 2.0 } else { (lo + hi) / 2.0 };
                        let served = simulate(mid, seconds)?;
                        let ms: Vec<f64> = served.latencies.iter().map(|l| l * 1e3).collect();
                        let p99 = latency::summarize(&ms).p99;
                        let holds = p99 <= target;
                        curve.push(vec![
                            path.display().to_string().into(),
                            mid.into(),
                            p99.into(),
                            holds.into(),
                        ]);
                        if holds {
                            lo = mid;
                        } else {
                            hi = mid;
                        }
                    }
                    report.figure(
                        &format!(
                            "max_qps_{}",
                            models.iter().position(|m| m.0 == *path).unwrap_or(0)
                        ),
                        &format!("Max QPS with p99 <= {target} ms: {}", path.display()),
                        lo,
                    );
                }
            }
            report.sections.push(section);
            report.sections.push(histogram);
            if let Some(target) = opts.find_max_qps {
                // The latency-vs-QPS curve, by rate.
                let mut points: Vec<(f64, f64)> = curve
                    .rows
                    .iter()
                    .filter_map(|r| match (&r[1], &r[2]) {
                        (Cell::Float(q), Cell::Float(p)) => Some((*q, *p)),
                        _ => None,
                    })
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                curve.charts.push(Chart::Trend {
                    title: "p99 latency (ms) against offered QPS".into(),
                    points: points.iter().map(|(q, _)| format!("{q:.0}")).collect(),
                    series: vec![Series {
                        name: "p99 ms".into(),
                        values: points.iter().map(|(_, p)| *p).collect(),
                    }],
                    threshold: Some(target),
                });
                report.sections.push(curve);
            }
            report.setting("scenario", "Scenario", "server");
            report.setting("qps", "Offered QPS", qps);
            report.setting("max_batch", "Max batch", max_batch);
            report.setting("max_delay_ms", "Max delay (ms)", max_delay_ms);
            report.setting(
                "timing",
                "Timing",
                "Poisson arrivals drawn up front; each batch's real run time, one worker",
            );
        }
        Scenario::SingleStream => unreachable!("handled by run"),
    }
    describe_machine(&mut report, opts, timer_ns, empty_us);
    report.gate = verdict(violations, format!("{} model(s) measured", models.len()));
    Ok(report)
}

/// The harness's own cost and the machine the figures come from: every
/// scenario's report carries them.
fn describe_machine(report: &mut Report, opts: &Options, timer_ns: f64, empty_us: Option<f64>) {
    report.figure(
        "timer_overhead_ns",
        "Timer cost per measurement (ns)",
        timer_ns,
    );
    if let Some(us) = empty_us {
        report.figure("empty_model_p50_us", "Empty model p50 (us)", us);
    }
    if let Some(mib) = peak_rss_mib() {
        report.figure(
            "peak_rss_mib",
            "Peak resident memory, whole process (MiB)",
            mib,
        );
    }
    report.setting("device", "Device", opts.device.clone());
    report.setting("threads", "Threads", runtime::kernels::threads());
    report.setting("cpu", "CPU", cpu_model());
    report.setting(
        "cores",
        "Cores",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    report.setting("kernels", "Kernels", runtime::kernels::kernels_in_use());
    let env: Vec<String> = [
        "RAYON_NUM_THREADS",
        "MLCTL_ISA",
        "CANDLE_NUM_THREADS",
        "OMP_NUM_THREADS",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v}")))
    .collect();
    report.setting("environment", "Environment", env.join(" "));
}

/// Median time of a few full batches, seconds.
fn cache_time(
    service: &mut dyn FnMut(usize) -> std::result::Result<f64, String>,
    batch: usize,
) -> Result<f64> {
    let mut times = Vec::new();
    for _ in 0..5 {
        times.push(service(batch).map_err(Error::usage)?);
    }
    Ok(latency::summarize(&times).p50)
}

/// The latency distribution of each model at one batch size, over common
/// bins from the fastest run to the slowest p99 (slower runs in the last
/// bin), as shares of each model's runs.
fn latency_histogram(batch: usize, models: &[Loaded], times: &[Vec<f64>]) -> Chart {
    let bins = 20;
    let lo = times
        .iter()
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let hi = times
        .iter()
        .map(|t| latency::summarize(t).p99)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(lo + 1e-9);
    let width = (hi - lo) / bins as f64;
    let series = models
        .iter()
        .zip(times)
        .map(|((path, _, _, _), t)| {
            let mut counts = vec![0f64; bins];
            for x in t {
                let b = (((x - lo) / width) as usize).min(bins - 1);
                counts[b] += 1.0;
            }
            let n = t.len().max(1) as f64;
            Series {
                name: path.display().to_string(),
                values: counts.into_iter().map(|c| c / n).collect(),
            }
        })
        .collect();
    Chart::Histogram {
        title: format!("Latency at batch {batch} (ms), share of runs"),
        bins: (0..bins)
            .map(|i| format!("{:.3}", lo + width * (i as f64 + 0.5)))
            .collect(),
        series,
    }
}

/// The gate: failed with every violated figure named, or passed.
fn verdict(violations: Vec<String>, passed: String) -> Gate {
    Gate {
        outcome: if violations.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        rule: "latency and throughput gates".into(),
        message: if violations.is_empty() {
            passed
        } else {
            violations.join("; ")
        },
    }
}
