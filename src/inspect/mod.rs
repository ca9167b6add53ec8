//! `mlctl inspect MODEL`: what a model takes and gives, what it is made of,
//! and whether mlctl can run all of it. The gate fails (exit 1) when some
//! node is not supported, so a CI job can check a model before deploying it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use prost::Message;

use crate::error::{Error, Result};
use crate::report::{Cell, Gate, Outcome, Report, Section, Status};
use crate::runtime::graph::{dims_text, Graph, IoSpec};
use crate::runtime::tensor;

/// Operators that carry quantized (integer) arithmetic or its conversions.
const QUANTIZATION_OPS: &[&str] = &[
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "MatMulInteger",
    "QLinearMatMul",
    "ConvInteger",
    "QLinearConv",
    "QGemm",
];

#[derive(Debug, Clone)]
pub struct Options {
    pub model: PathBuf,
}

fn shape_text(spec: &IoSpec) -> String {
    match &spec.dims {
        None if spec.is_map => "map".into(),
        None => "unknown".into(),
        Some(dims) => dims_text(dims),
    }
}

fn io_section(key: &str, title: &str, specs: &[IoSpec]) -> Section {
    let mut s = Section::new(
        key,
        title,
        &[("name", "Name"), ("type", "Type"), ("shape", "Shape")],
    );
    for spec in specs {
        let ty = if spec.is_map {
            "map / sequence".to_string()
        } else {
            tensor::type_name(spec.elem_type)
        };
        s.push(vec![
            spec.name.clone().into(),
            ty.into(),
            shape_text(spec).into(),
        ]);
    }
    s
}

pub fn run(opts: &Options) -> Result<Report> {
    let path = &opts.model;
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, e))?;
    let proto = candle_onnx::onnx::ModelProto::decode(bytes.as_slice())
        .map_err(|e| Error::input(path, format!("not an ONNX model (protobuf: {e})")))?;
    let graph = Graph::parse(&proto).map_err(|p| Error::input(path, p.join("; ")))?;

    let mut unsupported = Section::new(
        "unsupported",
        "Not supported by mlctl",
        &[
            ("node", "Node"),
            ("op", "Operator"),
            ("opset", "Opset"),
            ("reason", "Reason"),
        ],
    );
    let mut histogram: BTreeMap<(String, String), (usize, bool)> = BTreeMap::new();
    let mut quantized = Vec::new();
    for node in &graph.nodes {
        let opset = graph.opset(&node.domain);
        let ok = match crate::runtime::check_node(node, opset) {
            Ok(()) => true,
            Err(e) => {
                unsupported.push(vec![
                    node.label().into(),
                    node.op_type.clone().into(),
                    opset.into(),
                    e.into(),
                ]);
                false
            }
        };
        let entry = histogram
            .entry((node.domain.clone(), node.op_type.clone()))
            .or_insert((0, true));
        entry.0 += 1;
        entry.1 &= ok;
        if QUANTIZATION_OPS.contains(&node.op_type.as_str()) {
            quantized.push(node.label());
        }
    }
    if let Err(e) = graph.topological_order() {
        unsupported.push(vec!["(graph)".into(), Cell::Null, Cell::Null, e.into()]);
    }

    let mut params: BTreeMap<String, (usize, u64, u64)> = BTreeMap::new();
    for t in &graph.initializers {
        let elements: u64 = t.dims.iter().map(|&d| d.max(0) as u64).product();
        let bytes = tensor::element_size(t.data_type).map_or(0, |s| s as u64 * elements);
        let e = params
            .entry(tensor::type_name(t.data_type))
            .or_insert((0, 0, 0));
        e.0 += 1;
        e.1 += elements;
        e.2 += bytes;
    }

    let mut report = Report::new("inspect", format!("Model {}", path.display()));
    report.figure("ir_version", "IR version", graph.ir_version);
    report.figure("producer", "Producer", graph.producer.clone());
    let opsets: Vec<String> = graph
        .opsets
        .iter()
        .map(|(d, v)| format!("{}={v}", if d.is_empty() { "ai.onnx" } else { d }))
        .collect();
    report.figure("opsets", "Opsets", opsets.join(", "));
    report.figure("nodes", "Nodes", graph.nodes.len());
    report.figure(
        "parameters",
        "Parameters",
        params.values().map(|p| p.1).sum::<u64>(),
    );
    report.figure(
        "weight_bytes",
        "Weight bytes",
        params.values().map(|p| p.2).sum::<u64>(),
    );
    report.figure("quantized_nodes", "Quantized nodes", quantized.len());
    report.figure(
        "unsupported_nodes",
        "Unsupported nodes",
        unsupported.rows.len(),
    );
    report
        .sections
        .push(io_section("inputs", "Inputs", &graph.inputs));
    report
        .sections
        .push(io_section("outputs", "Outputs", &graph.outputs));
    let mut ops_section = Section::new(
        "operators",
        "Operators",
        &[
            ("domain", "Domain"),
            ("op", "Operator"),
            ("count", "Nodes"),
            ("supported", "Supported"),
        ],
    );
    for ((domain, op), (count, ok)) in &histogram {
        let domain = if domain.is_empty() {
            "ai.onnx"
        } else {
            domain.as_str()
        };
        ops_section.push(vec![
            domain.into(),
            op.clone().into(),
            (*count).into(),
            Cell::Status(if *ok { Status::Ok } else { Status::Error }),
        ]);
    }
    report.sections.push(ops_section);
    let mut p = Section::new(
        "parameters",
        "Weights by element type",
        &[
            ("type", "Type"),
            ("tensors", "Tensors"),
            ("elements", "Elements"),
            ("bytes", "Bytes"),
        ],
    );
    for (ty, (n, elements, bytes)) in &params {
        p.push(vec![
            ty.clone().into(),
            (*n).into(),
            (*elements).into(),
            (*bytes).into(),
        ]);
    }
    report.sections.push(p);
    if !quantized.is_empty() {
        let mut q = Section::new("quantized", "Quantized nodes", &[("node", "Node")]);
        for n in quantized {
            q.push(vec![n.into()]);
        }
        report.sections.push(q);
    }
    let failing = unsupported.rows.len();
    if failing > 0 {
        report.sections.push(unsupported);
    }
    report.gate = Gate {
        outcome: if failing == 0 {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        rule: "every node is supported by mlctl's runtime".into(),
        message: if failing == 0 {
            format!("mlctl can run all {} nodes", graph.nodes.len())
        } else {
            format!("{failing} problem(s) stop mlctl from running this model")
        },
    };
    Ok(report)
}
