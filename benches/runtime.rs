//! Times mlctl's runtime on one model and one input, warm, for
//! `bench/runtime_vs_ort.py` (which runs ONNX Runtime on the same arrays and
//! prints both side by side):
//!
//!     cargo bench --bench runtime -- MODEL INPUTS.npz [--runs N] [--warmup N] [--threads N]
//!
//! Prints one JSON line: p50, mean and min in milliseconds over the runs;
//! `--profile` adds the time per operator type on stderr.

use std::time::Instant;

use candle_core::{Device, Tensor};
use mlctl::runtime::{self, Model};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let flag = |name: &str, default: usize| -> usize {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().expect("a number"))
            .unwrap_or(default)
    };
    let (runs, warmup, threads) = (
        flag("--runs", 50),
        flag("--warmup", 5),
        flag("--threads", 0),
    );
    let [model_path, inputs_path] = [&args[0], &args[1]];
    if threads > 0 {
        runtime::set_threads(threads).expect("threads");
    }
    let model = Model::load(model_path.as_ref(), &Device::Cpu)
        .unwrap_or_else(|e| panic!("{}", e.0.join("; ")));
    let feeds: Vec<(String, Tensor)> = Tensor::read_npz(inputs_path).expect("inputs");
    for _ in 0..warmup {
        model.run(feeds.clone()).expect("run");
    }
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            model.run(feeds.clone()).expect("run");
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    if args.iter().any(|a| a == "--profile") {
        let mut profile = std::collections::HashMap::new();
        for _ in 0..runs {
            model
                .run_profiled(feeds.clone(), Some(&mut profile))
                .expect("run");
        }
        let mut rows: Vec<_> = profile.into_iter().collect();
        rows.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
        for (op, (calls, seconds)) in rows {
            eprintln!(
                "{op:<24} {:>6} calls {:>10.3} ms/run",
                calls / runs,
                seconds * 1e3 / runs as f64
            );
        }
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "{{\"p50_ms\": {}, \"mean_ms\": {}, \"min_ms\": {}, \"runs\": {}}}",
        times[times.len() / 2],
        mean,
        times[0],
        times.len()
    );
}
