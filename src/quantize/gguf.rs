//! The float model's weights as candle's GGUF, for Rust serving with
//! candle's quantized matrix products (`QMatMul`). The graph stays in the
//! ONNX file; the GGUF holds every float initializer under its ONNX name.
//!
//! Matrix weights are stored transposed, as GGML expects them (output rows,
//! the inner dimension contiguous, so that blocks run along the dot
//! product), in the chosen block type when the inner dimension is a multiple
//! of its block (32 for Q4_0..Q8_0, 256 for the k-quants), else in F16;
//! embedding tables keep their layout (blocks along the embedding, F16 when
//! it does not suit); every other tensor is F32 (scalars with shape [1]). The metadata lists the transposed tensors and the
//! ones that fell back.

use std::collections::HashSet;
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_onnx::onnx::{tensor_proto::DataType, ModelProto};

use crate::error::{Error, Result};
use crate::runtime::tensor;

/// Block types `--gguf-type` offers.
pub fn block_type(name: &str) -> Option<GgmlDType> {
    Some(match name {
        "q4_0" => GgmlDType::Q4_0,
        "q4_1" => GgmlDType::Q4_1,
        "q5_0" => GgmlDType::Q5_0,
        "q5_1" => GgmlDType::Q5_1,
        "q8_0" => GgmlDType::Q8_0,
        "q2k" => GgmlDType::Q2K,
        "q3k" => GgmlDType::Q3K,
        "q4k" => GgmlDType::Q4K,
        "q5k" => GgmlDType::Q5K,
        "q6k" => GgmlDType::Q6K,
        "f16" => GgmlDType::F16,
        _ => return None,
    })
}

pub struct Written {
    pub bytes: u64,
    pub tensors: usize,
    /// Tensors stored in the block type.
    pub quantized: usize,
    /// Matrix weights and tables whose inner dimension did not suit the
    /// block (stored as F16).
    pub fell_back: Vec<String>,
}

pub fn write(
    proto: &ModelProto,
    folder: Option<&Path>,
    path: &Path,
    block: GgmlDType,
    source: &Path,
) -> Result<Written> {
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| Error::input(source, "the model has no graph"))?;
    // Weights read as the right-hand side of a product, and whether stored
    // transposed already (Gemm's transB); embedding tables of Gather.
    let mut matrices: Vec<(String, bool)> = Vec::new();
    let mut tables: HashSet<String> = HashSet::new();
    for n in graph.node.iter().filter(|n| n.domain.is_empty()) {
        let trans_b = n.attribute.iter().any(|a| a.name == "transB" && a.i != 0);
        match (n.op_type.as_str(), n.input.first(), n.input.get(1)) {
            ("MatMul", _, Some(w)) => matrices.push((w.clone(), false)),
            ("Gemm", _, Some(w)) => matrices.push((w.clone(), trans_b)),
            ("Gather", Some(t), _) => {
                tables.insert(t.clone());
            }
            _ => {}
        }
    }
    let mut entries: Vec<(String, QTensor)> = Vec::new();
    let (mut transposed, mut fell_back, mut quantized) = (Vec::new(), Vec::new(), 0);
    for t in graph
        .initializer
        .iter()
        .filter(|t| t.data_type == DataType::Float as i32)
    {
        let value = tensor::from_proto_in(t, &Device::Cpu, folder)
            .and_then(|v| v.to_dtype(DType::F32).map_err(|e| e.to_string()))
            .map_err(|e| Error::input(source, format!("initializer '{}': {e}", t.name)))?;
        let matrix = matrices
            .iter()
            .find(|(w, _)| *w == t.name)
            .filter(|_| value.rank() == 2);
        let table = tables.contains(&t.name) && value.rank() == 2;
        let err =
            |e: candle_core::Error| Error::input(source, format!("initializer '{}': {e}", t.name));
        let q = if let Some((_, already)) = matrix {
            let w: Tensor = if *already {
                value
            } else {
                value.t().and_then(|v| v.contiguous()).map_err(err)?
            };
            if !*already {
                transposed.push(t.name.clone());
            }
            if w.dims()[1].is_multiple_of(block.block_size()) {
                quantized += 1;
                QTensor::quantize(&w, block).map_err(err)?
            } else {
                fell_back.push(t.name.clone());
                QTensor::quantize(&w, GgmlDType::F16).map_err(err)?
            }
        } else if table {
            if value.dims()[1].is_multiple_of(block.block_size()) {
                quantized += 1;
                QTensor::quantize(&value, block).map_err(err)?
            } else {
                fell_back.push(t.name.clone());
                QTensor::quantize(&value, GgmlDType::F16).map_err(err)?
            }
        } else {
            // GGUF has no rank-0 tensors: a scalar is stored with shape [1].
            let value = if value.rank() == 0 {
                value.reshape(1).map_err(err)?
            } else {
                value
            };
            QTensor::quantize(&value, GgmlDType::F32).map_err(err)?
        };
        entries.push((t.name.clone(), q));
    }
    let list = |names: &[String]| {
        gguf_file::Value::Array(
            names
                .iter()
                .map(|n| gguf_file::Value::String(n.clone()))
                .collect(),
        )
    };
    let metadata_values = [
        (
            "general.architecture",
            gguf_file::Value::String("onnx".into()),
        ),
        ("general.name", gguf_file::Value::String(graph.name.clone())),
        (
            "mlctl.source",
            gguf_file::Value::String(source.display().to_string()),
        ),
        (
            "mlctl.block_type",
            gguf_file::Value::String(format!("{block:?}")),
        ),
        ("mlctl.transposed", list(&transposed)),
        ("mlctl.f16_fallback", list(&fell_back)),
    ];
    let metadata: Vec<(&str, &gguf_file::Value)> =
        metadata_values.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = entries.iter().map(|(n, q)| (n.as_str(), q)).collect();
    crate::fsio::write_atomic_with(path, |tmp| {
        use std::io::Write;
        let file = std::fs::File::create(tmp).map_err(|e| e.to_string())?;
        let mut file = std::io::BufWriter::new(file);
        gguf_file::write(&mut file, &metadata, &tensors).map_err(|e| e.to_string())?;
        file.flush().map_err(|e| e.to_string())
    })?;
    Ok(Written {
        bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
        tensors: entries.len(),
        quantized,
        fell_back,
    })
}
