//! mlctl's own graph: what an ONNX model says, parsed and checked once,
//! separate from how it runs (`plan`). Problems are collected, not thrown one
//! at a time, so a user sees every unsupported node in one go.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use candle_onnx::onnx::{
    tensor_shape_proto::dimension, type_proto, AttributeProto, GraphProto, ModelProto, TensorProto,
    ValueInfoProto,
};

use crate::data::FeatureScaling;

/// Oldest and newest IR versions mlctl reads.
pub const IR_VERSIONS: std::ops::RangeInclusive<i64> = 3..=14;

#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Fixed(usize),
    /// A named dimension (batch, sequence) or an unknown one.
    Free(String),
}

/// Dimensions as a user reads them: `[batch_size, 30]`, `?` when unknown.
pub fn dims_text(dims: &[Dim]) -> String {
    let d: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Free(name) if name.is_empty() => "?".into(),
            Dim::Free(name) => name.clone(),
        })
        .collect();
    format!("[{}]", d.join(", "))
}

#[derive(Debug, Clone)]
pub struct IoSpec {
    pub name: String,
    pub elem_type: i32,
    /// `None` when the model declares no shape.
    pub dims: Option<Vec<Dim>>,
    /// A map or sequence output (ZipMap's), not a tensor.
    pub is_map: bool,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub op_type: String,
    pub domain: String,
    /// The node's inputs, then the outer values its subgraphs read.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attributes: Vec<AttributeProto>,
    /// Graph-valued attributes (If's branches), by attribute name.
    pub subgraphs: Vec<(String, Graph)>,
}

impl Node {
    /// How errors name the node: its name, or its op and first output.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            format!(
                "{} -> {}",
                self.op_type,
                self.outputs.first().map(String::as_str).unwrap_or("?")
            )
        } else {
            self.name.clone()
        }
    }
}

#[derive(Debug, Clone)]
pub struct Graph {
    pub ir_version: i64,
    pub producer: String,
    /// Opset version per domain ("" and "ai.onnx" are the default domain).
    pub opsets: BTreeMap<String, i64>,
    pub inputs: Vec<IoSpec>,
    pub outputs: Vec<IoSpec>,
    pub initializers: Vec<TensorProto>,
    pub nodes: Vec<Node>,
}

fn io_spec(v: &ValueInfoProto) -> IoSpec {
    let mut spec = IoSpec {
        name: v.name.clone(),
        elem_type: 0,
        dims: None,
        is_map: false,
    };
    match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => {
            spec.elem_type = t.elem_type;
            spec.dims = t.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(dimension::Value::DimValue(n)) if *n >= 0 => Dim::Fixed(*n as usize),
                        Some(dimension::Value::DimParam(p)) => Dim::Free(p.clone()),
                        _ => Dim::Free(String::new()),
                    })
                    .collect()
            });
        }
        Some(_) => spec.is_map = true,
        None => {}
    }
    spec
}

impl Graph {
    pub fn parse(model: &ModelProto) -> Result<Graph, Vec<String>> {
        if !IR_VERSIONS.contains(&model.ir_version) {
            return Err(vec![format!(
                "IR version {} is not supported (mlctl reads {} to {})",
                model.ir_version,
                IR_VERSIONS.start(),
                IR_VERSIONS.end()
            )]);
        }
        let graph = match &model.graph {
            Some(g) => g,
            None => return Err(vec!["the model has no graph".into()]),
        };
        let mut opsets = BTreeMap::new();
        for o in &model.opset_import {
            let domain = if o.domain == "ai.onnx" {
                String::new()
            } else {
                o.domain.clone()
            };
            opsets.insert(domain, o.version);
        }
        let producer = format!("{} {}", model.producer_name, model.producer_version)
            .trim()
            .to_string();
        Self::from_proto(graph, opsets, model.ir_version, producer)
    }

    fn from_proto(
        graph: &GraphProto,
        opsets: BTreeMap<String, i64>,
        ir_version: i64,
        producer: String,
    ) -> Result<Graph, Vec<String>> {
        let mut problems = Vec::new();
        let initializer_names: HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs = graph
            .input
            .iter()
            .filter(|i| !initializer_names.contains(i.name.as_str()))
            .map(io_spec)
            .collect();
        let mut nodes = Vec::with_capacity(graph.node.len());
        for n in &graph.node {
            let mut node = Node {
                name: n.name.clone(),
                op_type: n.op_type.clone(),
                domain: if n.domain == "ai.onnx" {
                    String::new()
                } else {
                    n.domain.clone()
                },
                inputs: n.input.clone(),
                outputs: n.output.clone(),
                attributes: n.attribute.clone(),
                subgraphs: Vec::new(),
            };
            for attr in &n.attribute {
                if let Some(g) = &attr.g {
                    match Self::from_proto(g, opsets.clone(), ir_version, producer.clone()) {
                        Ok(mut sub) => {
                            // Values the subgraph reads from outside become
                            // inputs of the subgraph and of this node, so that
                            // ordering and freeing see them.
                            for name in sub.free_values() {
                                if !node.inputs.contains(&name) {
                                    node.inputs.push(name.clone());
                                }
                                sub.inputs.push(IoSpec {
                                    name,
                                    elem_type: 0,
                                    dims: None,
                                    is_map: false,
                                });
                            }
                            node.subgraphs.push((attr.name.clone(), sub));
                        }
                        Err(p) => problems.extend(
                            p.into_iter()
                                .map(|e| format!("in {} of node '{}': {e}", attr.name, n.name)),
                        ),
                    }
                }
            }
            nodes.push(node);
        }
        for n in &nodes {
            if !opsets.contains_key(&n.domain) {
                problems.push(format!(
                    "node '{}' ({}): its domain '{}' is not imported by the model",
                    n.label(),
                    n.op_type,
                    n.domain
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Graph {
            ir_version,
            producer,
            opsets,
            inputs,
            outputs: graph.output.iter().map(io_spec).collect(),
            initializers: graph.initializer.clone(),
            nodes,
        })
    }

    /// Names the graph reads that neither its inputs, its initializers nor
    /// its nodes provide: values of an enclosing graph.
    pub fn free_values(&self) -> Vec<String> {
        let mut known: HashSet<&str> = self
            .inputs
            .iter()
            .map(|i| i.name.as_str())
            .chain(self.initializers.iter().map(|t| t.name.as_str()))
            .collect();
        for n in &self.nodes {
            known.extend(n.outputs.iter().map(String::as_str));
        }
        let mut free = Vec::new();
        for name in self
            .nodes
            .iter()
            .flat_map(|n| n.inputs.iter())
            .chain(self.outputs.iter().map(|o| &o.name))
        {
            if !name.is_empty() && !known.contains(name.as_str()) && !free.contains(name) {
                free.push(name.clone());
            }
        }
        free
    }

    pub fn opset(&self, domain: &str) -> i64 {
        self.opsets.get(domain).copied().unwrap_or(0)
    }

    /// Node indices in an order where every input is computed before use.
    /// Errors name a node whose input nothing produces, or the nodes of a cycle.
    pub fn topological_order(&self) -> Result<Vec<usize>, String> {
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for o in n.outputs.iter().filter(|o| !o.is_empty()) {
                if producer.insert(o.as_str(), i).is_some() {
                    return Err(format!("value '{o}' is produced by more than one node"));
                }
            }
        }
        let available: HashSet<&str> = self
            .inputs
            .iter()
            .map(|i| i.name.as_str())
            .chain(self.initializers.iter().map(|t| t.name.as_str()))
            .collect();
        let mut waiting = vec![0usize; self.nodes.len()];
        let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for input in n.inputs.iter().filter(|x| !x.is_empty()) {
                if available.contains(input.as_str()) {
                    continue;
                }
                match producer.get(input.as_str()) {
                    Some(&p) => {
                        waiting[i] += 1;
                        consumers[p].push(i);
                    }
                    None => {
                        return Err(format!(
                            "node '{}' ({}): input '{}' is neither a graph input, an initializer nor any node's output",
                            n.label(),
                            n.op_type,
                            input
                        ))
                    }
                }
            }
        }
        let mut ready: VecDeque<usize> =
            (0..self.nodes.len()).filter(|&i| waiting[i] == 0).collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(i) = ready.pop_front() {
            order.push(i);
            for &c in &consumers[i] {
                waiting[c] -= 1;
                if waiting[c] == 0 {
                    ready.push_back(c);
                }
            }
        }
        if order.len() < self.nodes.len() {
            let stuck: Vec<String> = (0..self.nodes.len())
                .filter(|&i| waiting[i] > 0)
                .take(5)
                .map(|i| format!("'{}'", self.nodes[i].label()))
                .collect();
            return Err(format!(
                "the graph has a cycle: nodes {} can never run",
                stuck.join(", ")
            ));
        }
        for o in &self.outputs {
            if !producer.contains_key(o.name.as_str()) && !available.contains(o.name.as_str()) {
                return Err(format!(
                    "graph output '{}' is not produced by any node",
                    o.name
                ));
            }
        }
        Ok(order)
    }

    /// When float input `input`, of `width` features, goes only into an
    /// ONNX-ML Scaler, `(x - offset) * scale` feature by feature: its
    /// offsets and scales, one each a feature. None when the input is read
    /// otherwise, is not float32, or the Scaler's lists fit neither one
    /// value nor `width`.
    pub fn input_scaler(&self, input: &str, width: usize) -> Option<FeatureScaling> {
        self.find_input_scaler(input, width)
            .map(|(_, scaling)| scaling)
    }

    /// Takes out the Scaler `input_scaler` finds: the nodes that read the
    /// scaled values read them from `input` itself. A caller that lays out
    /// the input then scales it as it does (a shadow replay scales a log's
    /// dictionaries, not every row). Returns the Scaler's offsets and
    /// scales; None (the graph unchanged) where `input_scaler` finds none.
    pub fn take_input_scaler(&mut self, input: &str, width: usize) -> Option<FeatureScaling> {
        let (at, scaling) = self.find_input_scaler(input, width)?;
        let scaler = self.nodes.remove(at);
        let scaled = &scaler.outputs[0];
        for name in self.nodes.iter_mut().flat_map(|n| n.inputs.iter_mut()) {
            if name == scaled {
                *name = input.to_string();
            }
        }
        Some(scaling)
    }

    /// The Scaler on `input` (see `input_scaler`): its node and its map.
    fn find_input_scaler(&self, input: &str, width: usize) -> Option<(usize, FeatureScaling)> {
        let spec = self.inputs.iter().find(|i| i.name == input)?;
        if spec.elem_type != 1 || width == 0 || self.outputs.iter().any(|o| o.name == input) {
            return None;
        }
        let mut readers = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.inputs.iter().any(|i| i == input));
        let (at, scaler) = readers.next()?;
        let scaled = match (scaler.domain.as_str(), scaler.op_type.as_str()) {
            ("ai.onnx.ml", "Scaler") if scaler.inputs.len() == 1 && readers.next().is_none() => {
                scaler.outputs.first()?
            }
            _ => return None,
        };
        // A branch reading the scaled values would still read them by the
        // old name; such a graph keeps its Scaler.
        let read_in_branches = self
            .nodes
            .iter()
            .any(|n| !n.subgraphs.is_empty() && n.inputs.contains(scaled));
        if scaled.is_empty()
            || scaler.outputs.len() != 1
            || read_in_branches
            || self.outputs.iter().any(|o| &o.name == scaled)
        {
            return None;
        }
        let attrs = super::ops::Attrs(&scaler.attributes);
        let per_feature = |name: &str, default: f32| match attrs.floats(name) {
            None => Some(vec![default; width]),
            Some(v) if v.is_empty() => Some(vec![default; width]),
            Some(v) if v.len() == 1 => Some(vec![v[0]; width]),
            Some(v) if v.len() == width => Some(v),
            Some(_) => None,
        };
        let scaling = FeatureScaling {
            offset: per_feature("offset", 0.0)?,
            scale: per_feature("scale", 1.0)?,
        };
        Some((at, scaling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, inputs: &[&str], outputs: &[&str]) -> Node {
        Node {
            name: name.into(),
            op_type: "Relu".into(),
            domain: String::new(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            attributes: vec![],
            subgraphs: vec![],
        }
    }

    fn graph(nodes: Vec<Node>) -> Graph {
        Graph {
            ir_version: 8,
            producer: String::new(),
            opsets: [(String::new(), 17)].into(),
            inputs: vec![IoSpec {
                name: "x".into(),
                elem_type: 1,
                dims: None,
                is_map: false,
            }],
            outputs: vec![],
            initializers: vec![],
            nodes,
        }
    }

    #[test]
    fn orders_nodes_listed_out_of_order() {
        let g = graph(vec![node("b", &["t"], &["y"]), node("a", &["x"], &["t"])]);
        assert_eq!(g.topological_order().unwrap(), vec![1, 0]);
    }

    #[test]
    fn a_cycle_is_named() {
        let g = graph(vec![
            node("a", &["x", "u"], &["t"]),
            node("b", &["t"], &["u"]),
        ]);
        assert!(g.topological_order().unwrap_err().contains("cycle"));
    }

    fn scaler(input: &str, output: &str, offset: &[f32], scale: &[f32]) -> Node {
        let floats = |name: &str, v: &[f32]| AttributeProto {
            name: name.into(),
            floats: v.to_vec(),
            ..Default::default()
        };
        Node {
            name: "scaler".into(),
            op_type: "Scaler".into(),
            domain: "ai.onnx.ml".into(),
            inputs: vec![input.into()],
            outputs: vec![output.into()],
            attributes: vec![floats("offset", offset), floats("scale", scale)],
            subgraphs: vec![],
        }
    }

    #[test]
    fn an_input_scaler_is_taken_out_and_its_readers_read_the_input() {
        let g = graph(vec![
            node("a", &["scaled"], &["t"]),
            scaler("x", "scaled", &[1.0, 2.0, 3.0], &[0.5]),
            node("b", &["t", "scaled"], &["y"]),
        ]);
        let mut stripped = g.clone();
        let scaling = stripped.take_input_scaler("x", 3).expect("a Scaler on x");
        assert_eq!(scaling.offset, vec![1.0, 2.0, 3.0]);
        assert_eq!(scaling.scale, vec![0.5; 3]);
        let found = g.input_scaler("x", 3).expect("the same Scaler found");
        assert!(found.same_as(&scaling));
        let inputs: Vec<Vec<String>> = stripped.nodes.iter().map(|n| n.inputs.clone()).collect();
        assert_eq!(
            inputs,
            vec![vec!["x".to_string()], vec!["t".into(), "x".into()]]
        );
        assert!(stripped.topological_order().is_ok());
        // Lists left out: no offset, a scale of one.
        let g = graph(vec![
            scaler("x", "scaled", &[], &[]),
            node("a", &["scaled"], &["y"]),
        ]);
        let scaling = g.input_scaler("x", 2).expect("a Scaler on x");
        assert_eq!(
            (scaling.offset, scaling.scale),
            (vec![0.0; 2], vec![1.0; 2])
        );
    }

    #[test]
    fn a_scaler_stays_where_it_cannot_be_taken_out() {
        let uses = |nodes: Vec<Node>| {
            let mut g = graph(nodes);
            let before = g.nodes.len();
            g.take_input_scaler("x", 3).is_none() && g.nodes.len() == before
        };
        // The input read by another node too.
        assert!(uses(vec![
            scaler("x", "s", &[1.0], &[2.0]),
            node("a", &["s", "x"], &["y"])
        ]));
        // Lists that fit neither one value nor the input's width.
        assert!(uses(vec![
            scaler("x", "s", &[1.0, 2.0], &[2.0]),
            node("a", &["s"], &["y"])
        ]));
        // No Scaler first.
        assert!(uses(vec![node("a", &["x"], &["s"])]));
        // The scaled values are a graph output.
        let mut g = graph(vec![scaler("x", "s", &[1.0], &[2.0])]);
        g.outputs.push(IoSpec {
            name: "s".into(),
            elem_type: 1,
            dims: None,
            is_map: false,
        });
        assert!(g.input_scaler("x", 3).is_none());
        // A float64 input (the Scaler casts it to float32).
        let mut g = graph(vec![
            scaler("x", "s", &[1.0], &[2.0]),
            node("a", &["s"], &["y"]),
        ]);
        g.inputs[0].elem_type = 11;
        assert!(g.input_scaler("x", 3).is_none());
    }

    #[test]
    fn a_missing_input_names_the_node() {
        let g = graph(vec![node("a", &["nothing"], &["t"])]);
        let e = g.topological_order().unwrap_err();
        assert!(e.contains("node 'a'") && e.contains("'nothing'"));
    }
}
