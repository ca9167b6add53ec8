//! Any bytes: the loader (its pass that cuts the weights out of a model
//! file, then the model itself) either builds a model or returns an error,
//! never panics; a model that loads is run once on zero inputs of its declared
//! types (free dimensions 2), which must not panic either.
#![no_main]

#[allow(dead_code)]
#[path = "../../src/runtime/mod.rs"]
mod runtime;

use candle_core::{DType, Device, Tensor};
use runtime::graph::Dim;
use runtime::{tensor, Model};

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
            Some((spec.name.clone(), Tensor::zeros(dims.as_slice(), dtype, &Device::Cpu).ok()?))
        })
        .collect()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The loader's first pass over a model file (cutting out the weights'
    // bytes) must take any bytes too, and leave a model that decodes as
    // the original does.
    let _ = runtime::weights_in_place::cut_weights(data, "model.onnx");
    if let Ok(model) = Model::from_bytes(data, &Device::Cpu) {
        if let Some(feeds) = zero_feeds(&model) {
            let _ = model.run(feeds);
        }
    }
});
