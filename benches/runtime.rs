//! Times mlctl's runtime on one model and one input, warm, for
//! `bench/runtime_vs_ort.py` (which runs ONNX Runtime on the same arrays and
//! prints both side by side):
//!
//!     cargo bench --bench runtime -- MODEL INPUTS.npz [--runs N] [--warmup N] [--threads N]
//!
//! Prints one JSON line: p50, mean and min in milliseconds over the runs;
//! `--profile` adds the time per operator type on stderr, and how much of a
//! run the operators take (the rest is the runtime between them).

mod common;

use std::time::Instant;

use candle_core::{Device, Tensor};
use mlctl::runtime::{self, Model};

fn main() {
    let args = common::args();
    let flag = |name: &str, default: usize| common::number(&args, name, default);
    let (runs, warmup, threads) = (
        flag("--runs", 50),
        flag("--warmup", 5),
        flag("--threads", 0),
    );
    runtime::keep_freed_memory(runtime::Heaps::Shared);
    if threads > 0 {
        runtime::set_threads(threads).expect("threads");
    }
    if args[0] == "--gemm" {
        return gemm_speed(&args[1], runs);
    }
    let [model_path, inputs_path] = [&args[0], &args[1]];
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
        let start = Instant::now();
        for _ in 0..runs {
            model
                .run_profiled(feeds.clone(), Some(&mut profile))
                .expect("run");
        }
        let whole = start.elapsed().as_secs_f64() * 1e3 / runs as f64;
        let in_steps: f64 = profile.values().map(|(_, s)| s).sum::<f64>() * 1e3 / runs as f64;
        eprintln!("whole run {whole:.3} ms, in its steps {in_steps:.3} ms");
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

/// `--gemm M,N,K`: the float and the int8 kernels alone, in GFLOP/s (int8
/// multiply-adds counted as two operations too).
fn gemm_speed(shape: &str, runs: usize) {
    use mlctl::runtime::kernels::{igemm, sgemm};
    let d: Vec<usize> = shape
        .split(',')
        .map(|v| v.parse().expect("M,N,K"))
        .collect();
    let (m, n, k) = (d[0], d[1], d[2]);
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
    let packed = sgemm::PackedB::pack(&b, k, n, n, 1);
    let mut c = vec![0f32; m * n];
    let flops = 2.0 * (m * n * k) as f64;
    // On one of the pool's threads, as a model's run is.
    let time = |f: &mut (dyn FnMut() + Send)| {
        rayon::scope(|_| {
            f();
            let start = Instant::now();
            for _ in 0..runs {
                f();
            }
            start.elapsed().as_secs_f64() / runs as f64
        })
    };
    let t = time(&mut || sgemm::sgemm(m, &a, k, &packed, None, None, &mut c, true));
    println!(
        "sgemm {m}x{n}x{k}: {:.3} ms, {:.1} GFLOP/s",
        t * 1e3,
        flops / t / 1e9
    );
    let ai: Vec<u8> = (0..m * k).map(|i| (i % 251) as u8).collect();
    let bi: Vec<i32> = (0..k * n).map(|i| (i % 255) as i32 - 127).collect();
    let packed = igemm::PackedIntB::pack(&bi, k, n, true, &[0]);
    // Into scaled floats, as the fused MatMulInteger+Cast+Mul of quantized
    // models does.
    let mut cf = vec![0f32; m * n];
    let t = time(&mut || {
        igemm::matmul_integer(
            m,
            igemm::IntA::Unsigned(&ai),
            &[3],
            &packed,
            igemm::Output::Float {
                out: &mut cf,
                s1: igemm::Scale::One(0.01),
                s2: None,
                bias: None,
                activation: None,
            },
            true,
        )
    });
    println!(
        "igemm {m}x{n}x{k}: {:.3} ms, {:.1} GOP/s",
        t * 1e3,
        flops / t / 1e9
    );
}
