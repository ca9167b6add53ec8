//! The ONNX runtime: load and check a model once, compile it into a plan of
//! operators with weights already on the device, and run that plan many
//! times. Parsing (`graph`) is separate from execution (`ops`, `Model::run`).

pub mod graph;
pub mod kernels;
pub mod ops;
pub mod optimize;
pub mod tensor;
pub mod weights_in_place;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{Device, Tensor};
use prost::Message;

use graph::{Dim, Graph};
pub use ops::Value;

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn device(spec: &str) -> Result<Device, String> {
    let spec = spec.trim().to_ascii_lowercase();
    if spec == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match spec.strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| format!("bad device '{spec}': expected cpu, cuda or cuda:N"))?,
        None => return Err(format!("bad device '{spec}': expected cpu, cuda or cuda:N")),
    };
    cuda_device(ordinal)
}

#[cfg(feature = "cuda")]
fn cuda_device(ordinal: usize) -> Result<Device, String> {
    Device::new_cuda(ordinal).map_err(|e| format!("cuda:{ordinal}: {e}"))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_ordinal: usize) -> Result<Device, String> {
    Err("built without CUDA support; rebuild with --features cuda".into())
}

/// How the allocator shares its heaps between threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heaps {
    /// One heap for every thread: a run executes on the pool's threads
    /// (`Model::run_profiled`), and glibc's heap per thread kept each
    /// thread's freed activations apart, which raised the int8
    /// MiniLM-L3's peak at 8 x 128 from 34 to 45 MB.
    Shared,
    /// A heap per thread, for threads that each run whole models side by
    /// side (a shadow replay's workers): with one heap, a block one worker
    /// freed is handed to the other, and writing an operator's output into
    /// it first pulls its lines from the other core's cache; with a heap
    /// each, a worker's next batch reuses memory still in its own cache
    /// (a 1M-row replay of the sample models 5.38M -> 7.91M rows/s, 360 ->
    /// 265 ms of CPU, in interleaved runs; peak 95 -> 117 MB).
    PerThread,
}

/// Keeps freed memory in the process for the next call instead of handing
/// it back to the system: every operator allocates its output, and with
/// glibc's defaults large blocks are mapped and unmapped each time, so a
/// run would spend a fifth of its time in page faults. Call before any
/// other thread starts.
pub fn keep_freed_memory(heaps: Heaps) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings; called before the
    // model runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        if heaps == Heaps::Shared {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = heaps;
}

/// Asks the kernel to back a long buffer not written yet with huge pages
/// (2 MB) where it can: a fresh page costs a fault each, and 4 KB ones cost
/// about 0.4 ms a MB on the machines mlctl was measured on, 2 MB ones a
/// fifth of that or less. Only the whole 2 MB pages inside the buffer are
/// asked for; a hint, which does nothing where the system does not allow
/// it.
pub fn ask_for_huge_pages<T>(buffer: &[std::mem::MaybeUninit<T>]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE_PAGE: usize = 2 << 20;
        let start = buffer.as_ptr() as usize;
        let end = start + std::mem::size_of_val(buffer);
        let (first, last) = (
            start.next_multiple_of(HUGE_PAGE),
            end / HUGE_PAGE * HUGE_PAGE,
        );
        if first < last {
            // SAFETY: the range lies inside `buffer`'s allocation, and
            // MADV_HUGEPAGE changes how its pages are backed, not what it
            // holds.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buffer;
}

/// Hands memory freed so far back to the system (after loading a model,
/// whose file and parsed form are gone once its weights are converted).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Sets the number of threads every kernel uses. Must run before the first
/// operator: rayon builds its pool once, and candle's matrix products read
/// RAYON_NUM_THREADS on every call, so both are set here.
pub fn set_threads(n: usize) -> Result<(), String> {
    if n == 0 {
        return Err("--threads must be at least 1".into());
    }
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| format!("cannot set {n} threads: {e}"))
}

struct Step {
    node: usize,
    /// A fused step's name (for profiles and errors); None for one node.
    fused: Option<&'static str>,
    op: Box<dyn ops::Op>,
    inputs: Vec<Option<usize>>,
    outputs: Vec<Option<usize>>,
    /// Slots no later step reads: freed once this step has run.
    free: Vec<usize>,
    /// Whether the step's outputs are kept from one run to the next.
    memo: Memo,
}

/// Steps whose outputs do not depend on the values fed: Constant nodes,
/// operators on weights alone, and the shape arithmetic of exported
/// transformers (`Shape -> Gather -> Unsqueeze -> Concat -> Reshape`'s
/// target), which is a third of MiniLM's steps. They run on the first call
/// and again only when what they read changed: a Shape step when its
/// input's dims differ from the last run's, any other when a value it reads
/// was recomputed (from the weights alone: never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Memo {
    /// Reads values computed from the inputs' data: runs every time.
    No,
    /// `Shape` or `Size`: its outputs are a function of its input's dims.
    DimsOf,
    /// Reads weights and the outputs of other memo steps only.
    Kept,
}

/// Above this many values a memo step's output is recomputed on each run
/// rather than kept (an operator on a large weight, say a transpose of it,
/// would otherwise hold the weight twice). Shape values are a handful.
const MEMO_VALUES: usize = 1 << 16;

/// What a memo step computed on an earlier run.
#[derive(Default, Clone)]
struct Remembered {
    /// DimsOf steps: the dims their input had.
    dims: Vec<usize>,
    /// The outputs, when all are small enough to keep.
    outputs: Option<Vec<Value>>,
}

/// Whether mlctl can run `node` (for `inspect`): its operator is built, and
/// for control flow every node of its branches too.
pub fn check_node(node: &graph::Node, opset: i64) -> Result<(), String> {
    if node.domain.is_empty() && node.op_type == "If" {
        for (name, sub) in &node.subgraphs {
            for n in &sub.nodes {
                check_node(n, sub.opset(&n.domain))
                    .map_err(|e| format!("{name}: node '{}': {e}", n.label()))?;
            }
        }
        return Ok(());
    }
    ops::build(node, opset, &HashMap::new()).map(|_| ())
}

/// `If`: runs one of two compiled branches on the values they read from the
/// enclosing graph (the node's inputs after the condition).
struct IfElse {
    then_branch: Model,
    else_branch: Model,
    captured: Vec<String>,
}

impl IfElse {
    fn compile(
        node: &graph::Node,
        device: &Device,
        folder: Option<&Path>,
    ) -> Result<IfElse, String> {
        let branch = |name: &str| -> Result<Model, String> {
            let sub = node
                .subgraphs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, g)| g.clone())
                .ok_or_else(|| format!("If without {name}"))?;
            Model::compile(sub, device, folder, true)
                .map_err(|e| format!("{name}: {}", e.0.join("; ")))
        };
        Ok(IfElse {
            then_branch: branch("then_branch")?,
            else_branch: branch("else_branch")?,
            captured: node.inputs.iter().skip(1).cloned().collect(),
        })
    }
}

impl ops::Op for IfElse {
    fn run(&self, inputs: &[Option<&Value>]) -> ops::OpResult {
        let cond = ops::input(inputs, 0)?
            .to_dtype(candle_core::DType::F64)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f64>())
            .map_err(ops::err)?;
        let branch = if cond.first().copied().unwrap_or(0.0) != 0.0 {
            &self.then_branch
        } else {
            &self.else_branch
        };
        let mut feeds = Vec::with_capacity(branch.graph.inputs.len());
        for spec in &branch.graph.inputs {
            let i = self
                .captured
                .iter()
                .position(|c| *c == spec.name)
                .ok_or_else(|| {
                    format!(
                        "the branch reads '{}', which the enclosing graph does not give",
                        spec.name
                    )
                })?;
            feeds.push((spec.name.clone(), ops::input(inputs, 1 + i)?.clone()));
        }
        Ok(branch.run(feeds)?.into_iter().map(|(_, v)| v).collect())
    }
}

/// Packs weights for the steps that read them only packed
/// (`Op::pin_weights`) as soon as each step's weights have all been
/// converted, and keeps a weight that nothing else reads (no other step,
/// not a graph output) as its shape and type alone: a zero broadcast to its
/// dims, one value of storage. Weight by weight, so that a matrix weight is
/// not held twice, not even while the model loads.
struct Pinning {
    /// Per step: how many of its weight inputs are still to be converted.
    waiting: Vec<usize>,
    /// Per weight slot: the (step, input) pairs that read it.
    readers: HashMap<usize, Vec<(usize, usize)>>,
    /// Per weight slot: reads not yet offered to their step.
    unresolved: HashMap<usize, usize>,
    /// Weight slots that something reads as values.
    read_otherwise: std::collections::HashSet<usize>,
    /// Weight slots converted so far (a name given twice arrives twice).
    arrived: std::collections::HashSet<usize>,
}

impl Pinning {
    fn new(steps: &[Step], weight_slots: &[usize], outputs: &[usize]) -> Pinning {
        let is_weight: std::collections::HashSet<usize> = weight_slots.iter().copied().collect();
        let mut readers: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
        let mut waiting = vec![0; steps.len()];
        for (i, step) in steps.iter().enumerate() {
            for (position, slot) in step.inputs.iter().enumerate() {
                if let Some(slot) = slot.filter(|s| is_weight.contains(s)) {
                    readers.entry(slot).or_default().push((i, position));
                    waiting[i] += 1;
                }
            }
        }
        let unresolved = readers.iter().map(|(s, r)| (*s, r.len())).collect();
        Pinning {
            waiting,
            readers,
            unresolved,
            read_otherwise: outputs.iter().copied().collect(),
            arrived: std::collections::HashSet::new(),
        }
    }

    /// Weight `slot` was converted (the last of `weights`).
    fn arrived(&mut self, slot: usize, steps: &[Step], weights: &mut [(usize, Tensor)]) {
        if !self.arrived.insert(slot) {
            return;
        }
        let Some(readers) = self.readers.get(&slot).cloned() else {
            return;
        };
        for (step, _) in readers {
            self.waiting[step] = self.waiting[step].saturating_sub(1);
            if self.waiting[step] == 0 {
                self.offer(step, steps, weights);
            }
        }
    }

    fn offer(&mut self, step: usize, steps: &[Step], weights: &mut [(usize, Tensor)]) {
        let index: HashMap<usize, usize> = weights
            .iter()
            .enumerate()
            .map(|(i, (slot, _))| (*slot, i))
            .collect();
        let inputs = &steps[step].inputs;
        let values: Vec<Option<Value>> = inputs
            .iter()
            .map(|s| Some(Value::Tensor(weights[*index.get(&(*s)?)?].1.clone())))
            .collect();
        let refs: Vec<Option<&Value>> = values.iter().map(|v| v.as_ref()).collect();
        let present: Vec<bool> = inputs.iter().map(|s| s.is_some()).collect();
        let pinned = steps[step].op.pin_weights(&refs, &present);
        drop(values);
        for (position, slot) in inputs.iter().enumerate() {
            let Some(&i) = slot.as_ref().and_then(|s| index.get(s)) else {
                continue;
            };
            let slot = weights[i].0;
            if !pinned.contains(&position) {
                self.read_otherwise.insert(slot);
            }
            let left = self.unresolved.entry(slot).or_default();
            *left = left.saturating_sub(1);
            if *left == 0 && !self.read_otherwise.contains(&slot) {
                let w = &mut weights[i].1;
                if let Ok(shape_only) =
                    Tensor::zeros((), w.dtype(), w.device()).and_then(|z| z.broadcast_as(w.dims()))
                {
                    *w = shape_only;
                }
            }
        }
    }
}

/// A compiled model.
pub struct Model {
    pub graph: Graph,
    steps: Vec<Step>,
    /// Slot of every named value.
    slots: HashMap<String, usize>,
    /// The name of every slot.
    slot_names: Vec<String>,
    /// Weights, converted once, by slot.
    weights: Vec<(usize, Tensor)>,
    device: Device,
    /// Per step, what a memo step computed last. A run that finds it taken
    /// (another run of the same model in progress) computes everything.
    remembered: std::sync::Mutex<Vec<Remembered>>,
    /// How long the last run took, which decides where the next one runs
    /// (`run_profiled`); u64::MAX before the first.
    last_run_micros: AtomicU64,
    /// Where runs called from outside the pool have been going.
    placement: std::sync::Mutex<Placement>,
}

/// Runs at least this long move to the thread pool (`Model::run_profiled`).
const POOL_RUN_MICROS: u64 = 250;

/// Where a model's runs called from outside the pool go, and how long they
/// took there as the caller saw them. A run of about POOL_RUN_MICROS
/// flipped between the two places at every run, paying the hop each time
/// (the sample MLP at 4,096 rows ran slower on two threads than on one):
/// once in the pool, runs stay there while they are faster there than
/// they were on the calling thread.
#[derive(Debug, Default)]
struct Placement {
    pooled: bool,
    /// Runs in the pool since the last on the calling thread.
    pooled_runs: u32,
    /// The last run in the pool, hop included (us).
    pooled_micros: u64,
    /// Runs on the calling thread, smoothed (us; None before the first):
    /// three quarters of the old, a quarter of the new (at most twice the
    /// old), so that one preempted run does not move the choice.
    serial_micros: Option<u64>,
    /// Runs left on the calling thread before the pool is tried again,
    /// after it was found slower.
    hold: u32,
}

impl Placement {
    /// Runs on the calling thread before a pool found slower is tried again.
    const HOLD_RUNS: u32 = 64;

    /// Whether the next run goes to the pool, the last run having taken
    /// `last_run` (us, where it ran). From the calling thread, runs go when
    /// they take at least POOL_RUN_MICROS there (smoothed: one slow run
    /// does not send them; the first run goes). In the pool, runs stay
    /// while they take half of that or more and, once both places are
    /// timed, while the pool is faster as the caller sees it (judged from
    /// the second run there: the first wakes a sleeping pool); found
    /// slower, they go back for HOLD_RUNS runs.
    fn next_pooled(&mut self, last_run: u64) -> bool {
        self.pooled = if self.pooled {
            let slower = self
                .serial_micros
                .is_some_and(|serial| self.pooled_runs >= 2 && self.pooled_micros >= serial);
            if slower {
                self.hold = Self::HOLD_RUNS;
            }
            let long_enough = match self.serial_micros {
                None => last_run >= POOL_RUN_MICROS,
                Some(_) => last_run >= POOL_RUN_MICROS / 2,
            };
            long_enough && !slower
        } else if self.hold > 0 {
            self.hold -= 1;
            false
        } else {
            self.serial_micros.unwrap_or(last_run) >= POOL_RUN_MICROS
        };
        self.pooled
    }

    /// Counts a run and how long the caller waited for it (us).
    fn record(&mut self, pooled: bool, micros: u64) {
        if pooled {
            self.pooled_runs += 1;
            self.pooled_micros = micros;
        } else {
            self.pooled_runs = 0;
            // A run counts for at most twice the average so far: one
            // preempted run must not make the pool look faster.
            self.serial_micros = Some(match self.serial_micros {
                Some(old) => (old.saturating_mul(3) + micros.min(old.saturating_mul(2))) / 4,
                None => micros,
            });
        }
    }
}

/// Marks the steps whose outputs depend on no fed value (`Memo`): in plan
/// order, a plain node reading only weights and memo outputs, or a Shape.
fn mark_memo_steps(steps: &mut [Step], graph: &Graph, weights: &[(usize, Tensor)]) {
    let mut constant: std::collections::HashSet<usize> = weights.iter().map(|(s, _)| *s).collect();
    for step in steps.iter_mut() {
        let node = &graph.nodes[step.node];
        let plain = step.fused.is_none() && node.domain.is_empty() && node.subgraphs.is_empty();
        step.memo = if plain && matches!(node.op_type.as_str(), "Shape" | "Size") {
            Memo::DimsOf
        } else if plain && step.inputs.iter().flatten().all(|s| constant.contains(s)) {
            Memo::Kept
        } else {
            Memo::No
        };
        if step.memo != Memo::No {
            constant.extend(step.outputs.iter().flatten());
        }
    }
}

/// Shown each value a run computes, by name (`Model::run_observed`).
pub type Observer<'a> = &'a mut dyn FnMut(&str, &Value);

/// Why a model cannot be loaded: one line per problem.
#[derive(Debug)]
pub struct LoadError(pub Vec<String>);

impl Model {
    pub fn load(path: &Path, device: &Device) -> Result<Model, LoadError> {
        Self::load_with(path, device, true)
    }

    /// `load`, with or without the fusions of `optimize` (tests compare
    /// the two).
    pub fn load_with(path: &Path, device: &Device, fuse: bool) -> Result<Model, LoadError> {
        let graph = Self::read_graph(path)?;
        Self::from_graph(graph, device, Self::folder_of(path), fuse)
    }

    /// The folder a model's external data files are named from.
    pub fn folder_of(path: &Path) -> Option<&Path> {
        path.parent().map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
    }

    /// A model file's graph, parsed and checked, not compiled: a caller
    /// may change it (`Graph::take_input_scaler`) before
    /// `from_graph`.
    pub fn read_graph(path: &Path) -> Result<Graph, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError(vec![e.to_string()]))?;
        // Large weights are read from the file into their tensors later
        // (weights_in_place), so the file and the decoded model are not
        // held at once. A file this cannot walk is decoded whole and gets
        // the protobuf decoder's own error.
        let cut = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| weights_in_place::cut_weights(&bytes, name).ok());
        let proto = match cut {
            Some(cut) => {
                drop(bytes);
                Self::decode(&cut)?
            }
            None => {
                let proto = Self::decode(&bytes)?;
                drop(bytes);
                proto
            }
        };
        Graph::parse(&proto).map_err(LoadError)
    }

    /// Compiles a graph read by `read_graph` (`folder`: where its external
    /// data files are, `folder_of` the model's path).
    pub fn from_graph(
        graph: Graph,
        device: &Device,
        folder: Option<&Path>,
        fuse: bool,
    ) -> Result<Model, LoadError> {
        let model = Self::compile(graph, device, folder, fuse);
        release_freed_memory();
        model
    }

    /// A model from memory; external data files cannot be found from here.
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Model, LoadError> {
        Self::from_proto(Self::decode(bytes)?, device, None, true)
    }

    fn decode(bytes: &[u8]) -> Result<candle_onnx::onnx::ModelProto, LoadError> {
        candle_onnx::onnx::ModelProto::decode(bytes)
            .map_err(|e| LoadError(vec![format!("not an ONNX model (protobuf: {e})")]))
    }

    fn from_proto(
        proto: candle_onnx::onnx::ModelProto,
        device: &Device,
        folder: Option<&Path>,
        fuse: bool,
    ) -> Result<Model, LoadError> {
        let graph = Graph::parse(&proto).map_err(LoadError)?;
        drop(proto);
        Self::from_graph(graph, device, folder, fuse)
    }

    fn compile(
        graph: Graph,
        device: &Device,
        folder: Option<&Path>,
        fuse: bool,
    ) -> Result<Model, LoadError> {
        let order = graph.topological_order().map_err(|e| LoadError(vec![e]))?;
        let mut problems = Vec::new();
        let mut slots: HashMap<String, usize> = HashMap::new();
        let slot = |name: &str, slots: &mut HashMap<String, usize>| -> usize {
            let n = slots.len();
            *slots.entry(name.to_string()).or_insert(n)
        };
        // The fused kernels run float32 on the CPU only. Planned before the
        // weights are converted: the patterns read small constants.
        let plan = if fuse && matches!(device, Device::Cpu) {
            optimize::plan(&graph, &order)
        } else {
            order
                .iter()
                .map(|&n| optimize::Planned::single(&graph, n))
                .collect()
        };
        let mut graph = graph;
        let weight_slots: Vec<usize> = graph
            .initializers
            .iter()
            .map(|t| slot(&t.name, &mut slots))
            .collect();
        for i in &graph.inputs {
            slot(&i.name, &mut slots);
        }
        let declared_types: HashMap<String, i32> = graph
            .initializers
            .iter()
            .map(|t| (t.name.clone(), t.data_type))
            .chain(graph.inputs.iter().map(|i| (i.name.clone(), i.elem_type)))
            .collect();
        let mut steps = Vec::with_capacity(plan.len());
        for planned in plan {
            let n = *planned.nodes.last().expect("a step runs at least one node");
            let node = &graph.nodes[n];
            let opset = graph.opset(&node.domain);
            let (built, fused) = match planned.fused {
                Some((name, op)) => (Ok(op), Some(name)),
                None if node.domain.is_empty() && node.op_type == "If" => (
                    IfElse::compile(node, device, folder)
                        .map(|op| Box::new(op) as Box<dyn ops::Op>),
                    None,
                ),
                None => (ops::build(node, opset, &declared_types), None),
            };
            match built {
                Ok(op) => {
                    let inputs = planned
                        .inputs
                        .iter()
                        .map(|i| (!i.is_empty()).then(|| slot(i, &mut slots)))
                        .collect();
                    let outputs = planned
                        .outputs
                        .iter()
                        .map(|o| (!o.is_empty()).then(|| slot(o, &mut slots)))
                        .collect();
                    steps.push(Step {
                        node: n,
                        fused,
                        op,
                        inputs,
                        outputs,
                        free: Vec::new(),
                        memo: Memo::No,
                    });
                }
                Err(e) => problems.push(format!(
                    "node '{}' ({}, opset {opset}): {e}",
                    node.label(),
                    node.op_type
                )),
            }
        }
        let outputs: Vec<usize> = graph
            .outputs
            .iter()
            .filter_map(|o| slots.get(&o.name).copied())
            .collect();
        // Each weight is converted once, and its bytes in the parsed model
        // are dropped straight away, so the model is not held twice; the
        // steps pack theirs as soon as they are all there.
        let mut pinning = Pinning::new(&steps, &weight_slots, &outputs);
        let mut weights = Vec::new();
        for (t, &slot) in graph.initializers.iter_mut().zip(&weight_slots) {
            match tensor::from_proto_in(t, device, folder) {
                Ok(w) => {
                    weights.push((slot, w));
                    pinning.arrived(slot, &steps, &mut weights);
                }
                Err(e) => problems.push(format!("initializer '{}': {e}", t.name)),
            }
            tensor::drop_data(t);
        }
        if !problems.is_empty() {
            return Err(LoadError(problems));
        }
        // Free each intermediate after its last reader; keep weights and outputs.
        let keep: Vec<usize> = graph
            .outputs
            .iter()
            .filter_map(|o| slots.get(&o.name).copied())
            .chain(weights.iter().map(|(s, _)| *s))
            .collect();
        let mut last_use: HashMap<usize, usize> = HashMap::new();
        for (i, s) in steps.iter().enumerate() {
            for slot in s.inputs.iter().flatten() {
                last_use.insert(*slot, i);
            }
        }
        for (slot, step) in last_use {
            if !keep.contains(&slot) {
                steps[step].free.push(slot);
            }
        }
        mark_memo_steps(&mut steps, &graph, &weights);
        let mut slot_names = vec![String::new(); slots.len()];
        for (name, &slot) in &slots {
            slot_names[slot] = name.clone();
        }
        let remembered = std::sync::Mutex::new(vec![Remembered::default(); steps.len()]);
        Ok(Model {
            graph,
            steps,
            slots,
            slot_names,
            weights,
            device: device.clone(),
            remembered,
            last_run_micros: AtomicU64::new(u64::MAX),
            placement: Default::default(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether the graph input `name` may be fed as a float32 matrix laid
    /// out column by column (a transposed view): every step that reads it
    /// reads it where it lies (`Op::reads_by_columns`), and it is not an
    /// output. Fed so to any other model it would be copied into rows.
    pub fn reads_by_columns(&self, name: &str) -> bool {
        match self.slots.get(name) {
            Some(&slot) => matches!(self.device, Device::Cpu) && self.slot_read_by_columns(slot),
            None => false,
        }
    }

    /// `reads_by_columns` of a slot: through the steps that pass it on as
    /// it is (the sample models' Cast to float), to those that read it.
    fn slot_read_by_columns(&self, slot: usize) -> bool {
        if self
            .graph
            .outputs
            .iter()
            .any(|o| self.slots.get(&o.name) == Some(&slot))
        {
            return false;
        }
        let mut read = false;
        for step in &self.steps {
            for (i, input) in step.inputs.iter().enumerate() {
                if *input != Some(slot) {
                    continue;
                }
                let passed_on = match step.outputs.first() {
                    Some(&Some(out)) if step.op.passes_on_float32(i) => {
                        self.slot_read_by_columns(out)
                    }
                    _ => false,
                };
                if !passed_on && !step.op.reads_by_columns(i) {
                    return false;
                }
                read = true;
            }
        }
        read
    }

    /// The fused steps of the plan, by name, in order.
    pub fn fused_steps(&self) -> Vec<&'static str> {
        self.steps.iter().filter_map(|s| s.fused).collect()
    }

    /// Runs the model. Every graph input must be fed, with its declared
    /// element type and rank, and its fixed dimensions.
    pub fn run(&self, feeds: Vec<(String, Tensor)>) -> Result<Vec<(String, Value)>, String> {
        self.run_profiled(feeds, None)
    }

    /// `run`, adding each step's wall time to `profile` by operator type
    /// (calls, seconds) when given.
    pub fn run_profiled(
        &self,
        feeds: Vec<(String, Tensor)>,
        profile: Option<&mut HashMap<String, (usize, f64)>>,
    ) -> Result<Vec<(String, Value)>, String> {
        // A long run goes to one of the pool's threads, so that each
        // parallel operator wakes only the others: called from outside the
        // pool, every operator would hand its work over and put the caller
        // to sleep until it is done, two thread wake-ups per operator, which
        // cost more than a small product itself (a quarter of a 16 x 384 x
        // 384 product's time here); and it keeps the other threads awake
        // between operators. A short one stays where it is, and its
        // operators run on this thread alone: the hop would cost more than
        // it saves (a batch of one row through the sample MLP takes 5-15
        // us). `Placement` decides which is which.
        let last = self.last_run_micros.load(Ordering::Relaxed);
        let outside_pool = rayon::current_thread_index().is_none();
        // (With one thread in the pool there are no others to wake: the hop
        // would only add two thread switches to every run.)
        if outside_pool && rayon::current_num_threads() > 1 {
            let placement = || self.placement.lock().unwrap_or_else(|e| e.into_inner());
            let pooled = placement().next_pooled(last);
            let start = std::time::Instant::now();
            let result = if pooled {
                rayon::scope(|_| {
                    let _awake = kernels::KeepAwake::start();
                    self.timed_run(feeds, profile)
                })
            } else {
                let _serial = kernels::Serial::start();
                self.timed_run(feeds, profile)
            };
            let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            placement().record(pooled, micros);
            return result;
        }
        // Already on a pool's thread (a caller's own pool), or a pool of
        // one.
        let long = last >= POOL_RUN_MICROS;
        let _serial = (!long && outside_pool).then(kernels::Serial::start);
        let _awake = long.then(kernels::KeepAwake::start);
        self.timed_run(feeds, profile)
    }

    /// `run_inner`, keeping how long it took (`last_run_micros`).
    fn timed_run(
        &self,
        feeds: Vec<(String, Tensor)>,
        profile: Option<&mut HashMap<String, (usize, f64)>>,
    ) -> Result<Vec<(String, Value)>, String> {
        let start = std::time::Instant::now();
        let result = self.run_inner(feeds, profile, None);
        let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_run_micros.store(micros, Ordering::Relaxed);
        result
    }

    /// `run`, showing `observe` every value the plan computes (and every
    /// input) by name, as soon as it exists: calibration reads
    /// intermediate activations this way.
    pub fn run_observed(
        &self,
        feeds: Vec<(String, Tensor)>,
        observe: &mut dyn FnMut(&str, &Value),
    ) -> Result<Vec<(String, Value)>, String> {
        self.run_inner(feeds, None, Some(observe))
    }

    fn run_inner(
        &self,
        feeds: Vec<(String, Tensor)>,
        mut profile: Option<&mut HashMap<String, (usize, f64)>>,
        mut observe: Option<Observer>,
    ) -> Result<Vec<(String, Value)>, String> {
        let mut values: Vec<Option<Value>> = vec![None; self.slots.len()];
        for (slot, w) in &self.weights {
            values[*slot] = Some(Value::Tensor(w.clone()));
        }
        let mut fed: HashMap<String, Tensor> = feeds.into_iter().collect();
        for spec in &self.graph.inputs {
            let t = fed
                .remove(&spec.name)
                .ok_or_else(|| format!("input '{}' was not given", spec.name))?;
            if let Some(expected) = tensor::dtype_of(spec.elem_type) {
                if t.dtype() != expected {
                    return Err(format!(
                        "input '{}' must be {}, got {:?}",
                        spec.name,
                        tensor::type_name(spec.elem_type),
                        t.dtype()
                    ));
                }
            }
            if let Some(dims) = &spec.dims {
                let ok = dims.len() == t.rank()
                    && dims.iter().zip(t.dims()).all(|(d, n)| match d {
                        Dim::Fixed(f) => f == n,
                        Dim::Free(_) => true,
                    });
                if !ok {
                    return Err(format!(
                        "input '{}' must have shape {}, got {:?}",
                        spec.name,
                        graph::dims_text(dims),
                        t.dims()
                    ));
                }
            }
            let t = t.to_device(&self.device).map_err(ops::err)?;
            let value = Value::Tensor(t);
            if let Some(observe) = observe.as_deref_mut() {
                observe(&spec.name, &value);
            }
            values[self.slots[&spec.name]] = Some(value);
        }
        if let Some(extra) = fed.keys().next() {
            return Err(format!("the model has no input '{extra}'"));
        }
        // Memo steps are kept only by a run that has the memory to itself.
        let mut remembered = self.remembered.try_lock().ok();
        // Per slot: whether this run computed it afresh from something that
        // may differ from the last run (fed values do).
        let mut fresh = vec![true; self.slots.len()];
        for (slot, _) in &self.weights {
            fresh[*slot] = false;
        }
        for (i, step) in self.steps.iter().enumerate() {
            let node = &self.graph.nodes[step.node];
            let inputs: Vec<Option<&Value>> = step
                .inputs
                .iter()
                .map(|s| s.and_then(|s| values[s].as_ref()))
                .collect();
            let memo = remembered.as_deref_mut().map(|r| &mut r[i]);
            let (outputs, is_fresh) = match (step.memo, memo) {
                (Memo::No, _) | (_, None) => (None, true),
                (Memo::DimsOf, Some(memo)) => {
                    let dims = match inputs.first().copied().flatten() {
                        Some(Value::Tensor(t)) => Some(t.dims()),
                        _ => None,
                    };
                    let same = dims.is_some_and(|d| d == memo.dims.as_slice());
                    if !same {
                        memo.dims = dims.map(<[usize]>::to_vec).unwrap_or_default();
                        memo.outputs = None;
                    }
                    (memo.outputs.clone().filter(|_| same), !same)
                }
                (Memo::Kept, Some(memo)) => {
                    let read_fresh = step.inputs.iter().flatten().any(|&s| fresh[s]);
                    if read_fresh {
                        memo.outputs = None;
                    }
                    (memo.outputs.clone(), read_fresh)
                }
            };
            let outputs = match outputs {
                Some(kept) => kept,
                None => {
                    let start = profile.is_some().then(std::time::Instant::now);
                    let outputs = step.op.run(&inputs).map_err(|e| {
                        let op = step.fused.unwrap_or(&node.op_type);
                        format!("node '{}' ({op}): {e}", node.label())
                    })?;
                    if let (Some(profile), Some(start)) = (profile.as_deref_mut(), start) {
                        let op = step.fused.unwrap_or(&node.op_type);
                        let entry = profile.entry(op.to_string()).or_default();
                        entry.0 += 1;
                        entry.1 += start.elapsed().as_secs_f64();
                    }
                    if let (Memo::DimsOf | Memo::Kept, Some(r)) =
                        (step.memo, remembered.as_deref_mut())
                    {
                        let small = outputs.iter().all(|v| match v {
                            Value::Tensor(t) => t.elem_count() <= MEMO_VALUES,
                            Value::ClassMap { .. } => false,
                        });
                        r[i].outputs = small.then(|| outputs.clone());
                    }
                    outputs
                }
            };
            for slot in step.outputs.iter().flatten() {
                fresh[*slot] = is_fresh;
            }
            for (slot, value) in step.outputs.iter().zip(outputs) {
                if let Some(slot) = slot {
                    if let Some(observe) = observe.as_deref_mut() {
                        observe(&self.slot_names[*slot], &value);
                    }
                    values[*slot] = Some(value);
                }
            }
            for &slot in &step.free {
                values[slot] = None;
            }
        }
        self.graph
            .outputs
            .iter()
            .map(|o| {
                let v = self
                    .slots
                    .get(&o.name)
                    .and_then(|&s| values[s].take())
                    .ok_or_else(|| format!("output '{}' was not computed", o.name))?;
                Ok((o.name.clone(), v))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_without_its_input_scaler_answers_scaled_rows_with_the_same_bits_by_rows_or_columns()
    {
        // The sample MLP (Scaler -> Cast -> MatMul ...) on rows of every
        // kind of value: ordinary, zeros of both signs, NaN (a null),
        // infinities, huge and tiny.
        let path = Path::new("sample_data/model.onnx");
        let graph = Model::read_graph(path).expect("the sample model");
        let mut stripped = graph.clone();
        let scaling = stripped
            .take_input_scaler("X", 30)
            .expect("the sample model scales its input first");
        let device = Device::Cpu;
        let whole = Model::from_graph(graph, &device, None, true).expect("compiled");
        let without = Model::from_graph(stripped, &device, None, true).expect("compiled");
        let specials = [
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
            3e38,
            1e-40,
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let rows: Vec<f32> = (0..97 * 30)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                match i % 11 {
                    0 => specials[(state % specials.len() as u64) as usize],
                    _ => (state % 100_000) as f32 / 97.0 - 300.0,
                }
            })
            .collect();
        let mut scaled = rows.clone();
        scaling.scale_rows(&mut scaled);
        let run_rows = |model: &Model, rows: &[f32], n: usize| {
            let x = Tensor::from_vec(rows.to_vec(), (n, 30), &device).expect("a matrix");
            model.run(vec![("X".into(), x)]).expect("answers")
        };
        let run = |model: &Model, rows: Vec<f32>| run_rows(model, &rows, 97);
        let bits = |outputs: Vec<(String, Value)>| -> Vec<(String, Vec<u64>)> {
            outputs
                .into_iter()
                .map(|(name, value)| {
                    let t = match value {
                        Value::Tensor(t) => t,
                        Value::ClassMap { probabilities, .. } => probabilities,
                    };
                    let values = t
                        .flatten_all()
                        .and_then(|t| t.to_dtype(candle_core::DType::F64))
                        .and_then(|t| t.to_vec1::<f64>())
                        .expect("numbers");
                    (name, values.iter().map(|v| v.to_bits()).collect())
                })
                .collect()
        };
        assert_eq!(bits(run(&whole, rows)), bits(run(&without, scaled.clone())));

        // Without its Scaler the model reads X by columns (Cast to float,
        // then the first product): fed as a transposed view, with columns
        // a line further apart than the rows, and narrowed to a part of
        // the rows as the noise run does, it gives the same bits.
        assert!(without.reads_by_columns("X"));
        assert!(!whole.reads_by_columns("X"), "its Scaler reads X");
        assert!(!without.reads_by_columns("output_label"));
        let lda = 97 + 16;
        let mut columns = vec![f32::NAN; 30 * lda];
        for (i, row) in scaled.chunks_exact(30).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                columns[j * lda + i] = v;
            }
        }
        let view = Tensor::from_vec(columns, (30, lda), &device)
            .and_then(|t| t.narrow(1, 0, 97))
            .and_then(|t| t.t())
            .expect("a view");
        let by_columns = without
            .run(vec![("X".into(), view.clone())])
            .expect("answers");
        assert_eq!(bits(by_columns), bits(run(&without, scaled.clone())));
        let part = view.narrow(0, 40, 57).expect("rows 40..97");
        let by_columns = without.run(vec![("X".into(), part)]).expect("answers");
        assert_eq!(
            bits(by_columns),
            bits(run_rows(&without, &scaled[40 * 30..], 57))
        );
    }

    /// Where each of `runs` runs goes, for a model taking `serial` us on the
    /// calling thread and `pooled` in the pool as the caller sees it, `hop`
    /// of it the hand-over (the first run after others on the calling
    /// thread waits `wake` more), the run at index `slow` taking 400 us
    /// more.
    fn places(
        p: &mut Placement,
        last: &mut u64,
        (serial, pooled, hop, wake): (u64, u64, u64, u64),
        runs: usize,
        slow: Option<usize>,
    ) -> Vec<bool> {
        (0..runs)
            .map(|i| {
                let in_pool = p.next_pooled(*last);
                let extra = if slow == Some(i) { 400 } else { 0 };
                let waited = if in_pool {
                    pooled + extra + if p.pooled_runs == 0 { wake } else { 0 }
                } else {
                    serial + extra
                };
                p.record(in_pool, waited);
                *last = if in_pool { waited - hop } else { waited };
                in_pool
            })
            .collect()
    }

    #[test]
    fn a_run_goes_to_the_pool_where_it_is_faster_and_stays_there() {
        let fresh = || (Placement::default(), u64::MAX);
        // A transformer: every run in the pool, its first included.
        let (mut p, mut last) = fresh();
        assert!(places(&mut p, &mut last, (16000, 8000, 20, 200), 50, None)
            .iter()
            .all(|&pooled| pooled));
        // A batch of one row: after the first run, all on the calling
        // thread, a slow (preempted) one included.
        let (mut p, mut last) = fresh();
        let went = places(&mut p, &mut last, (6, 60, 20, 200), 50, Some(10));
        assert!(
            went[0] && went[1..].iter().all(|&pooled| !pooled),
            "{went:?}"
        );
        // About POOL_RUN_MICROS here and faster in the pool: after a few
        // runs (the smoothed time reaching the threshold), in the pool to
        // stay, its waking first run there included.
        let (mut p, mut last) = fresh();
        let went = places(&mut p, &mut last, (260, 200, 20, 250), 50, None);
        assert!(went[10..].iter().all(|&pooled| pooled), "{went:?}");
        // Under the threshold here: after the first runs, on the calling
        // thread, one slow run included.
        let (mut p, mut last) = fresh();
        let went = places(&mut p, &mut last, (150, 170, 20, 250), 50, Some(20));
        assert!(went[2..].iter().all(|&pooled| !pooled), "{went:?}");
        // Over the threshold but slower in the pool: tried, then left for
        // HOLD_RUNS runs at a time, not every other run.
        let (mut p, mut last) = fresh();
        let went = places(&mut p, &mut last, (260, 300, 100, 250), 300, None);
        let in_pool = went[1..].iter().filter(|&&pooled| pooled).count();
        assert!(
            in_pool > 0 && in_pool <= 3 * (300 / Placement::HOLD_RUNS as usize + 1),
            "{in_pool}"
        );
    }

    /// The hint leaves a buffer as it was, whatever its length and
    /// alignment (none, a part of a huge page, several).
    #[test]
    fn asking_for_huge_pages_changes_no_value() {
        for len in [0usize, 1, 3 << 20, (5 << 20) + 7] {
            let mut buffer: Vec<u8> = Vec::with_capacity(len);
            ask_for_huge_pages(buffer.spare_capacity_mut());
            buffer.extend((0..len).map(|i| (i % 251) as u8));
            assert!(buffer
                .iter()
                .enumerate()
                .all(|(i, &b)| b == (i % 251) as u8));
        }
    }
}
