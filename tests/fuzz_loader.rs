//! A mutation fuzzer for the model loader that runs on the stable toolchain
//! (cargo fuzz needs nightly): every model in tests/fuzz_corpus is truncated,
//! bit-flipped, byte-overwritten and spliced many times, deterministically,
//! and each mutant must load or fail with an error, never panic; mutants that
//! load are run once on zero inputs, which must not panic either.

use std::panic::{catch_unwind, AssertUnwindSafe};

use candle_core::{DType, Device, Tensor};
use mlctl::runtime::graph::Dim;
use mlctl::runtime::{tensor, Model};

/// xorshift64*: a small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut m = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 => m.truncate(rng.below(m.len())),
            1 => {
                if !m.is_empty() {
                    let i = rng.below(m.len());
                    m[i] ^= 1 << rng.below(8);
                }
            }
            2 => {
                if !m.is_empty() {
                    let i = rng.below(m.len());
                    m[i] = [0u8, 0xff, 0x7f, 0x80, 1][rng.below(5)];
                }
            }
            3 => {
                let at = rng.below(m.len() + 1);
                let from = rng.below(other.len());
                let len = rng.below(64).min(other.len() - from);
                m.splice(at..at, other[from..from + len].iter().copied());
            }
            _ => {
                if m.len() > 8 {
                    let i = rng.below(m.len() - 4);
                    m.drain(i..i + 1 + rng.below(4));
                }
            }
        }
    }
    m
}

/// Zero inputs of the declared types, free dimensions set to 2.
fn zero_feeds(model: &Model) -> Option<Vec<(String, Tensor)>> {
    model
        .graph
        .inputs
        .iter()
        .map(|spec| {
            let dtype = tensor::dtype_of(spec.elem_type).unwrap_or(DType::F32);
            let dims: Vec<usize> = spec
                .dims
                .as_ref()?
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => (*n).min(64),
                    Dim::Free(_) => 2,
                })
                .collect();
            Some((
                spec.name.clone(),
                Tensor::zeros(dims.as_slice(), dtype, &Device::Cpu).ok()?,
            ))
        })
        .collect()
}

#[test]
fn mutated_models_never_panic() {
    let mut corpus: Vec<(String, Vec<u8>)> = std::fs::read_dir("tests/fuzz_corpus")
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    corpus.sort();
    let runs_per_seed: usize = std::env::var("MLCTL_FUZZ_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut executions, mut loaded, mut ran) = (0usize, 0usize, 0usize);
    for (i, (name, seed)) in corpus.iter().enumerate() {
        let other = &corpus[(i + 1) % corpus.len()].1;
        for run in 0..runs_per_seed {
            let bytes = mutate(seed, other, &mut rng);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                if let Ok(model) = Model::from_bytes(&bytes, &Device::Cpu) {
                    let feeds = zero_feeds(&model);
                    let executed = feeds.map(|f| model.run(f).is_ok());
                    (true, executed == Some(true))
                } else {
                    (false, false)
                }
            }));
            executions += 1;
            match outcome {
                Ok((l, r)) => {
                    loaded += l as usize;
                    ran += r as usize;
                }
                Err(_) => {
                    let kept = std::env::temp_dir().join("mlctl-fuzz-crash.onnx");
                    std::fs::write(&kept, &bytes).unwrap();
                    panic!(
                        "{name}, mutant {run}: the loader or the run panicked (mutant saved to {})",
                        kept.display()
                    )
                }
            }
        }
    }
    println!("fuzz: {executions} mutants, {loaded} loaded, {ran} ran, no panic");
    assert!(executions >= corpus.len() * runs_per_seed);
}
