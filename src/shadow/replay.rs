//! Replay: both models answer the logged rows, batch by batch, and the
//! answers are compared batch by batch, in the log's order. The log is cut
//! in ranges that follow its row groups (a large row group in pieces of
//! about READ_ROWS rows). Each worker (one per thread) takes the next
//! range and, batch by batch, lays out the batch's features and has both
//! models answer them while they are in its cache; then it leaves the
//! answers for judging and, unless the other worker is at it, judges every
//! batch that is next in the log's order (reading each range's labels and
//! slices as the judging reaches it). The workers take ranges a few ahead
//! of the judging at most, so memory holds a few ranges whatever the
//! log's size.
//!
//! (A reader thread laying out ranges for the workers, as replays did
//! before, handed each batch over from another core's cache, and three
//! busy threads then shared two cores; so did a judge thread of its own;
//! see docs/shadow.md.)

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::compare::{Answers, Comparison, Paired, Task};
use super::outputs::{self, ClassCodes, Roles};
use super::{Compared, LabelReader, LabelValues, Options, ReplayOptions, SliceKeys, Timing};
use crate::data::{column_stride, DictionaryCodes, FeatureScaling, FloatRows, Frame, Table};
use crate::error::{Error, Result};
use crate::predict::{self, Features, Feeding};
use crate::runtime::graph::Graph;
use crate::runtime::{self, tensor, Model, Value};

/// Rows read from the log at a time (rounded to its row groups, or to
/// batches in a large row group).
const READ_ROWS: usize = 1 << 17;

/// Batches in a range of a table already in memory.
const BATCHES_PER_MEMORY_RANGE: usize = 32;

/// Rows of the log for both models to answer, with their feature
/// matrices (as `Answering::matrices`).
struct Batch {
    /// The batch's first row in the log.
    offset: usize,
    n: usize,
    matrices: Vec<Tensor>,
}

/// A feature matrix laid out for the models: the log's columns, in a
/// model input's order (one matrix per distinct list).
struct Matrix {
    columns: Vec<String>,
    /// The input Scaler of every model fed from this matrix, the same in
    /// each, applied as the matrix is laid out (to the log's dictionaries:
    /// a few thousand values a row group, not every row twice) and taken
    /// out of the models: the answers are the same bits.
    scaling: Option<FeatureScaling>,
    /// Laid out column by column when it is read page by page and every
    /// model fed from it reads its input so where it lies
    /// (`Model::reads_by_columns`: the sample models' first products):
    /// each column's values are then written once, where they stay,
    /// instead of gathered into a block and transposed into rows (the
    /// transposition was 3% of a replay's window).
    by_columns: bool,
}

/// The feature matrices the sides' feedings take. Where every model fed
/// from a matrix begins with the same Scaler on it, the matrix is laid
/// out scaled and each of those graphs loses its Scaler.
fn matrices(graphs: &mut [Graph; 2], feedings: [&Feeding; 2]) -> Vec<Matrix> {
    fn input_of(feeding: &Feeding) -> Option<&str> {
        match feeding {
            Feeding::Matrix { input, .. } => Some(&input.name),
            Feeding::Named(_) => None,
        }
    }
    let mut matrices: Vec<Matrix> = Vec::new();
    for feeding in feedings {
        if let Feeding::Matrix { columns, .. } = feeding {
            if !matrices.iter().any(|m| &m.columns == columns) {
                matrices.push(Matrix {
                    columns: columns.clone(),
                    scaling: None,
                    by_columns: false,
                });
            }
        }
    }
    for matrix in &mut matrices {
        let fed: Vec<usize> = (0..2)
            .filter(|&i| matches!(feedings[i], Feeding::Matrix { columns, .. } if *columns == matrix.columns))
            .collect();
        let scalers: Option<Vec<FeatureScaling>> = fed
            .iter()
            .map(|&i| graphs[i].input_scaler(input_of(feedings[i])?, matrix.columns.len()))
            .collect();
        let Some(scalers) = scalers else { continue };
        if scalers.iter().all(|s| s.same_as(&scalers[0])) {
            for &i in &fed {
                let input = input_of(feedings[i]).expect("fed from a matrix");
                graphs[i].take_input_scaler(input, matrix.columns.len());
            }
            matrix.scaling = scalers.into_iter().next();
        }
    }
    matrices
}

/// One single-threaded rayon pool per worker, a worker per thread: a
/// batch of a small model gains little from a second thread, and whole
/// batches side by side keep every thread busy.
fn worker_pools() -> Result<Vec<rayon::ThreadPool>> {
    (0..runtime::kernels::threads().max(1))
        .map(|_| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .map_err(|e| Error::usage(format!("cannot start a worker thread: {e}")))
        })
        .collect()
}

/// Batches a worker leaves for judging at a time (and a range's last
/// ones): each time it takes the judging's locks. One, two or four a time
/// replay as fast; four kept the locks fewest.
const BATCHES_A_MESSAGE: usize = 4;

/// Columns a prediction log carries that are never a model's features.
const LOG_COLUMNS: [&str; 4] = ["prediction", "confidence", "request_id", "model_version"];

struct Side<'a> {
    path: &'a Path,
    model: Model,
    feeding: Feeding,
    /// Which outputs answer, read from the first batch answered.
    roles: OnceLock<Roles>,
    /// Whether each batch is answered a second time (`--baseline-noise`,
    /// the primary).
    noise: bool,
}

/// One side's answers to a batch.
struct BatchAnswers {
    classes: Vec<i64>,
    scores: Vec<f64>,
    /// The second answers to the same rows (`--baseline-noise`).
    noise: Option<(Vec<i64>, Vec<f64>)>,
    nulls: usize,
    /// How long the (first) call took.
    seconds: f64,
}

impl Side<'_> {
    fn call(
        &self,
        feeds: Vec<(String, Tensor)>,
        rows: &std::ops::Range<usize>,
    ) -> Result<Vec<(String, Value)>> {
        self.model
            .run(feeds)
            .map_err(|e| Error::input(self.path, format!("rows {}..{}: {e}", rows.start, rows.end)))
    }

    /// A batch's classes and scores (the output roles from the first batch).
    fn read(
        &self,
        out: &[(String, Value)],
        answering: &Answering,
        rows: &std::ops::Range<usize>,
    ) -> Result<(Vec<i64>, Vec<f64>)> {
        let roles = match self.roles.get() {
            Some(roles) => roles,
            None => {
                let roles =
                    outputs::roles(out, answering.task).map_err(|e| Error::input(self.path, e))?;
                // Another worker may have read them first: the same roles.
                self.roles.get_or_init(|| roles)
            }
        };
        let (mut classes, mut scores) = answering.spare.take();
        outputs::answers(out, roles, answering.codes, &mut classes, &mut scores)
            .map_err(|e| Error::input(self.path, e))?;
        if scores.len() != rows.len() {
            return Err(Error::input(
                self.path,
                format!(
                    "gave {} answers for {} rows (rows {}..{})",
                    scores.len(),
                    rows.len(),
                    rows.start,
                    rows.end
                ),
            ));
        }
        Ok((classes, scores))
    }

    /// Answers a batch; with `noise`, a second time in two halves (what
    /// serving itself varies: batch composition changes the order of float
    /// sums).
    fn answer_batch(&self, batch: &Batch, answering: &Answering) -> Result<BatchAnswers> {
        let n = batch.n;
        let rows = batch.offset..batch.offset + n;
        let mut nulls = 0;
        let feeds = self.feeds(batch, 0, n, answering, &mut nulls)?;
        let started = Instant::now();
        let out = self.call(feeds, &rows)?;
        let seconds = started.elapsed().as_secs_f64();
        let (classes, scores) = self.read(&out, answering, &rows)?;
        let mut noise = None;
        if self.noise {
            let (mut again, mut again_scores) = answering.spare.take();
            let half = n.div_ceil(2);
            for (a, b) in [(0, half), (half, n)] {
                if a == b {
                    continue;
                }
                let feeds = self.feeds(batch, a, b - a, answering, &mut 0)?;
                let part = rows.start + a..rows.start + b;
                let out = self.call(feeds, &part)?;
                let (c, s) = self.read(&out, answering, &part)?;
                again.extend_from_slice(&c);
                again_scores.extend_from_slice(&s);
                answering.spare.give_back([(c, s)]);
            }
            noise = Some((again, again_scores));
        }
        Ok(BatchAnswers {
            classes,
            scores,
            noise,
            nulls,
            seconds,
        })
    }
}

/// Rows `start..start + n` of a batch's matrix, as the model's input
/// declares it (element type, device).
fn batch_tensor(
    matrix: &Tensor,
    start: usize,
    n: usize,
    input: &runtime::graph::IoSpec,
    device: &Device,
) -> Result<Tensor> {
    let dtype = tensor::dtype_of(input.elem_type).unwrap_or(DType::F32);
    let mut t = matrix
        .narrow(0, start, n)
        .map_err(|e| Error::usage(format!("input '{}': {e}", input.name)))?;
    if dtype != DType::F32 {
        t = t
            .to_dtype(dtype)
            .map_err(|e| Error::usage(format!("input '{}': {e}", input.name)))?;
    }
    if !matches!(device, Device::Cpu) {
        t = t
            .to_device(device)
            .map_err(|e| Error::usage(format!("input '{}': {e}", input.name)))?;
    }
    Ok(t)
}

pub(super) fn run(opts: &Options, replay: &ReplayOptions) -> Result<Compared> {
    if replay.batch_size == 0 {
        return Err(Error::usage("--batch-size must be at least 1"));
    }
    if let Some(n) = replay.threads {
        runtime::set_threads(n).map_err(Error::usage)?;
    }
    let device = runtime::device(&replay.device).map_err(Error::usage)?;
    let table = Table::open(&replay.inputs)?;
    let total_rows = table.row_count()?;
    if total_rows == 0 {
        return Err(Error::input(
            &replay.inputs,
            "has no rows: nothing to replay",
        ));
    }
    let label = LabelReader::choose(opts, |c| table.value_type(c).is_some(), &replay.inputs)?;
    for s in &opts.slice_by {
        if table.value_type(s).is_none() {
            return Err(Error::input(
                &replay.inputs,
                format!("no column '{s}' to slice by"),
            ));
        }
    }
    // Labels, slices and the log's own columns are never features.
    let mut exclude = replay.exclude.clone();
    exclude.extend(label.iter().cloned());
    exclude.extend(opts.slice_by.iter().cloned());
    exclude.extend(LOG_COLUMNS.iter().map(|c| c.to_string()));
    // Each model's graph is read, its feeding found, and then compiled:
    // without its input Scaler where the feature matrix can be laid out
    // scaled (`Matrix::scaling`).
    let read = |model_path: &Path| -> Result<(Graph, f64)> {
        let started = Instant::now();
        let graph =
            Model::read_graph(model_path).map_err(|e| Error::input(model_path, e.0.join("; ")))?;
        Ok((graph, started.elapsed().as_secs_f64()))
    };
    let (primary_graph, primary_load) = read(&replay.primary)?;
    let (candidate_graph, candidate_load) = read(&replay.candidate)?;
    fn features<'a>(
        replay: &'a ReplayOptions,
        model: &'a Path,
        exclude: &'a [String],
    ) -> Features<'a> {
        Features {
            input: &replay.inputs,
            model,
            columns: &replay.columns,
            exclude,
            keep: &[],
        }
    }
    let primary_feeding = predict::feeding(
        &primary_graph.inputs,
        &table,
        &features(replay, &replay.primary, &exclude),
    )?;
    let candidate_feeding = predict::feeding(
        &candidate_graph.inputs,
        &table,
        &features(replay, &replay.candidate, &exclude),
    )?;
    let mut graphs = [primary_graph, candidate_graph];
    let mut matrices = matrices(&mut graphs, [&primary_feeding, &candidate_feeding]);
    let [primary_graph, candidate_graph] = graphs;
    let compile = |graph: Graph, model_path: &Path| -> Result<(Model, f64)> {
        let started = Instant::now();
        let model = Model::from_graph(graph, &device, Model::folder_of(model_path), true)
            .map_err(|e| Error::input(model_path, e.0.join("; ")))?;
        Ok((model, started.elapsed().as_secs_f64()))
    };
    let (primary_model, primary_compile) = compile(primary_graph, &replay.primary)?;
    let (candidate_model, candidate_compile) = compile(candidate_graph, &replay.candidate)?;
    let (primary_load, candidate_load) = (
        primary_load + primary_compile,
        candidate_load + candidate_compile,
    );
    let sides = [
        Side {
            path: &replay.primary,
            model: primary_model,
            feeding: primary_feeding,
            roles: OnceLock::new(),
            noise: replay.baseline_noise,
        },
        Side {
            path: &replay.candidate,
            model: candidate_model,
            feeding: candidate_feeding,
            roles: OnceLock::new(),
            noise: false,
        },
    ];
    for matrix in &mut matrices {
        matrix.by_columns = sides.iter().all(|side| match &side.feeding {
            Feeding::Matrix { input, columns } if *columns == matrix.columns => {
                tensor::dtype_of(input.elem_type) == Some(DType::F32)
                    && side.model.reads_by_columns(&input.name)
            }
            _ => true,
        });
    }
    let mut features: Vec<String> = matrices.iter().flat_map(|m| m.columns.clone()).collect();
    features.sort();
    features.dedup();

    // A table already in memory is handed out in shorter ranges (32
    // batches): nothing to decode, and the workers share the last ones
    // more evenly.
    let range_rows = if table.is_in_memory() {
        replay
            .batch_size
            .saturating_mul(BATCHES_PER_MEMORY_RANGE)
            .min(READ_ROWS)
    } else {
        READ_ROWS
    };
    let mut units = table.chunks(range_rows)?;
    units.retain(|&(_, len)| len > 0);
    let ranges = pieces(&units, replay.batch_size, runtime::kernels::threads());
    let progress = if opts.show_progress {
        indicatif::ProgressBar::new(total_rows as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let codes = Mutex::new(ClassCodes::default());
    let answering = Answering {
        batch_size: replay.batch_size,
        table: &table,
        device: &device,
        inputs: &replay.inputs,
        task: opts.task,
        codes: &codes,
        matrices: &matrices,
        spare: SpareAnswers::default(),
    };
    let mut judge = Judge {
        comparison: None,
        rows: total_rows,
        baseline_noise: replay.baseline_noise,
        inputs: &replay.inputs,
        nulls: 0,
        timings: [
            Timing::new("primary", &replay.primary, primary_load),
            Timing::new("candidate", &replay.candidate, candidate_load),
        ],
    };
    let reading = Reading {
        table: &table,
        units: &units,
        ranges: &ranges,
        features: &features,
        slice_by: &opts.slice_by,
        label: label.clone(),
        codes: &codes,
    };
    let pools = worker_pools()?;
    let started = Instant::now();
    let slice_names = replay_ranges(&sides, pools, &reading, &answering, &mut judge, &progress)?;
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let comparison = judge.comparison.expect("at least one row was compared");
    let nulls = judge.nulls;
    let [primary, candidate] = sides;
    let codes = codes.into_inner().expect("class codes");
    let mut compared = Compared::new(comparison, slice_names, codes);
    compared.replay_seconds = Some(seconds);
    compared.label = label;
    compared.roles = vec![
        (
            "primary".into(),
            primary
                .roles
                .get()
                .map(|r| r.describe())
                .unwrap_or_default(),
        ),
        (
            "candidate".into(),
            candidate
                .roles
                .get()
                .map(|r| r.describe())
                .unwrap_or_default(),
        ),
    ];
    compared.timings = judge.timings.into();
    if nulls > 0 {
        compared.warnings.push(format!(
            "{nulls} input values were null and were passed to the models as NaN"
        ));
    }
    if matrices.iter().any(|m| m.scaling.is_some()) {
        compared.notes.push(
            "the models' input Scaler (the same in both) was applied to the log's values as they \
             were read, once for both models"
                .into(),
        );
    }
    if let Feeding::Matrix { input, columns } = &primary.feeding {
        compared.notes.push(format!(
            "primary input '{}' took columns {}",
            input.name,
            columns.join(", ")
        ));
    }
    Ok(compared)
}

/// What every side needs to answer a batch.
struct Answering<'a> {
    batch_size: usize,
    table: &'a Table,
    device: &'a Device,
    inputs: &'a Path,
    task: Option<Task>,
    codes: &'a Mutex<ClassCodes>,
    /// The feature matrices, in the order of a batch's.
    matrices: &'a [Matrix],
    spare: SpareAnswers,
}

/// The answer buffers of batches already judged, for the workers' next
/// batches. A batch's answers wait for the batches before it in the log
/// (up to a range of them, while the other worker ends the range before);
/// allocated anew each batch, they were laid among the models' blocks in
/// the worker's heap, which then crept into fresh memory all the replay
/// long (8 MB of new pages a 1M-row replay, at about 1 ms a MB here).
#[derive(Default)]
struct SpareAnswers(Mutex<Vec<(Vec<i64>, Vec<f64>)>>);

impl SpareAnswers {
    /// Empty buffers, with room for a batch once one has been answered.
    fn take(&self) -> (Vec<i64>, Vec<f64>) {
        let (mut classes, mut scores) = self
            .0
            .lock()
            .expect("spare answers")
            .pop()
            .unwrap_or_default();
        classes.clear();
        scores.clear();
        (classes, scores)
    }

    fn give_back(&self, buffers: impl IntoIterator<Item = (Vec<i64>, Vec<f64>)>) {
        self.0.lock().expect("spare answers").extend(buffers);
    }

    /// Every buffer of a judged batch's answers.
    fn give_back_batch(&self, answers: PairAnswers) {
        for side in answers.sides {
            self.give_back(std::iter::once((side.classes, side.scores)).chain(side.noise));
        }
    }
}

impl Side<'_> {
    /// The model's feeds for rows `start..start + n` of a batch.
    fn feeds(
        &self,
        batch: &Batch,
        start: usize,
        n: usize,
        answering: &Answering,
        nulls: &mut usize,
    ) -> Result<Vec<(String, Tensor)>> {
        match &self.feeding {
            Feeding::Matrix { input, columns } => {
                let matrix = answering
                    .matrices
                    .iter()
                    .position(|m| &m.columns == columns)
                    .map(|i| &batch.matrices[i])
                    .expect("laid out for every matrix feeding");
                let t = batch_tensor(matrix, start, n, input, answering.device)?;
                Ok(vec![(input.name.clone(), t)])
            }
            Feeding::Named(_) => {
                let (feeds, null_count) = predict::batch_feeds(
                    answering.table,
                    &self.feeding,
                    batch.offset + start,
                    n,
                    answering.device,
                    answering.inputs,
                )?;
                *nulls += null_count;
                Ok(feeds)
            }
        }
    }
}

/// Counts the paired answers batch by batch, in the log's order.
struct Judge<'a> {
    comparison: Option<Comparison>,
    /// The log's rows.
    rows: usize,
    baseline_noise: bool,
    inputs: &'a Path,
    nulls: usize,
    /// Each side's calls (primary, candidate).
    timings: [Timing; 2],
}

impl Judge<'_> {
    /// Counts a batch, rows `start..` of a range whose labels and slices
    /// are `truth`; `tasks` are what each side's outputs read as.
    fn add(
        &mut self,
        truth: &mut Truth,
        start: usize,
        batch: &PairAnswers,
        tasks: [Task; 2],
    ) -> Result<()> {
        if tasks[0] != tasks[1] {
            return Err(Error::usage(format!(
                "the primary's outputs read as a {} and the candidate's as a {}: they cannot be compared (force one with --task)",
                tasks[0].name(),
                tasks[1].name()
            )));
        }
        let [primary, candidate] = &batch.sides;
        self.nulls += batch.nulls + primary.nulls + candidate.nulls;
        let task = tasks[0];
        let cmp = self.comparison.get_or_insert_with(|| {
            let mut comparison = Comparison::new(task, self.baseline_noise);
            comparison.scores.expect_rows(self.rows);
            comparison
        });
        cmp.add(&Paired {
            primary: Answers {
                classes: &primary.classes,
                scores: &primary.scores,
            },
            candidate: Answers {
                classes: &candidate.classes,
                scores: &candidate.scores,
            },
            noise: primary
                .noise
                .as_ref()
                .map(|(classes, scores)| Answers { classes, scores }),
            labels: truth
                .labels
                .for_task(task, truth.first + start, batch.n, self.inputs)?,
            slices: truth
                .slices
                .as_deref()
                .map(|slices| &slices[truth.first + start..truth.first + start + batch.n]),
        });
        Ok(())
    }
}

/// A unit's labels and slices, and where in them the range being judged
/// starts: each range cut from a unit is judged with the unit's truth,
/// its start moved on (a truth of its own for each range was a copy of
/// the unit's rows after it, in fresh memory).
struct Truth {
    labels: LabelValues,
    slices: Option<Vec<u32>>,
    /// The range's first row in the unit's.
    first: usize,
}

/// The ranges the workers take: a range of the log (whole row groups)
/// at least two pieces long is cut in pieces of about READ_ROWS rows, a
/// whole number of batches each, so that a log written in a few large row
/// groups (pyarrow writes up to 1M rows in one) keeps every worker busy;
/// the batches are those of the uncut range. With more than one worker,
/// the last range of each is cut in halves (whole batches too), so that
/// the workers end within about half a range of each other rather than a
/// whole one (a 1M-row log is 7.6 ranges: one worker sat idle for a third
/// of a range); each half reads its row groups' pages on its own.
fn pieces(units: &[(usize, usize)], batch_size: usize, workers: usize) -> Vec<(usize, usize)> {
    let batch_size = batch_size.max(1);
    let piece = (READ_ROWS / batch_size).max(1) * batch_size;
    let mut ranges = Vec::with_capacity(units.len() + workers);
    for &(offset, len) in units {
        if len / 2 < piece {
            ranges.push((offset, len));
            continue;
        }
        let mut start = 0;
        while start < len {
            let n = piece.min(len - start);
            ranges.push((offset + start, n));
            start += n;
        }
    }
    if workers < 2 {
        return ranges;
    }
    let last = ranges.split_off(ranges.len().saturating_sub(workers));
    for (offset, len) in last {
        let half = len.div_ceil(2).div_ceil(batch_size) * batch_size;
        ranges.push((offset, half.min(len)));
        if half < len {
            ranges.push((offset + half, len - half));
        }
    }
    ranges
}

/// What the workers and the judging need to read the log's ranges.
struct Reading<'a> {
    table: &'a Table,
    /// The log's ranges as read (whole row groups); labels and slices are
    /// read by these.
    units: &'a [(usize, usize)],
    /// The ranges the workers take and the judging counts: `units`, the long
    /// ones cut in pieces.
    ranges: &'a [(usize, usize)],
    /// Every column of the feature matrices.
    features: &'a [String],
    slice_by: &'a [String],
    label: Option<String>,
    codes: &'a Mutex<ClassCodes>,
}

impl Reading<'_> {
    /// Each range's labels and slices, in order, read as the judging asks
    /// for them.
    fn truths(&self) -> Truths<'_> {
        Truths {
            reading: self,
            slices: SliceKeys::default(),
            labels: LabelReader::new(self.label.clone()),
            codes: self.code_readers(),
            units: self.units.iter(),
            ranges: self.ranges.iter().peekable(),
            starts: Vec::new(),
            spare: None,
            failed: false,
        }
    }

    /// Readers of the label column and the slice column (a single one) as
    /// dictionary codes, where the log is on disk and they are text or
    /// integers.
    fn code_readers(&self) -> Result<[Option<DictionaryCodes>; 2]> {
        let open = |column: Option<&String>| match column {
            Some(column) => DictionaryCodes::open(self.table, column),
            None => Ok(None),
        };
        let slice = match self.slice_by {
            [column] => Some(column),
            _ => None,
        };
        Ok([open(self.label.as_ref())?, open(slice)?])
    }

    /// A range's labels and slices: read as dictionary codes where their
    /// pages allow, else through polars.
    fn truth(
        &self,
        offset: usize,
        len: usize,
        labels: &mut LabelReader,
        slices: &mut SliceKeys,
        [label_codes, slice_codes]: &mut [Option<DictionaryCodes>; 2],
        spare: Option<Truth>,
    ) -> Result<Truth> {
        let (label_buffer, slice_buffer) = match spare {
            Some(Truth { labels, slices, .. }) => {
                (labels.into_buffer(), slices.unwrap_or_default())
            }
            None => (Vec::new(), Vec::new()),
        };
        let read = |codes: &mut Option<DictionaryCodes>| match codes {
            Some(reader) => reader.read(offset, len),
            None => Ok(None),
        };
        let (label_groups, slice_groups) = (read(label_codes)?, read(slice_codes)?);
        // The columns left to polars.
        let mut columns: Vec<String> = Vec::new();
        if label_groups.is_none() {
            columns.extend(self.label.iter().cloned());
        }
        if slice_groups.is_none() {
            columns.extend(self.slice_by.iter().cloned());
        }
        columns.sort();
        columns.dedup();
        let frame = match columns.is_empty() {
            true => None,
            false => Some(self.read_range(&columns, offset, len)?),
        };
        let labels = {
            let mut codes = self.codes.lock().expect("class codes");
            match (&label_groups, &frame) {
                (Some(groups), _) => labels.read_codes(groups, &mut codes, label_buffer),
                (None, Some(frame)) => labels.read(frame, &mut codes)?,
                (None, None) => LabelValues::none(),
            }
        };
        let slices = match (&slice_groups, &frame) {
            (Some(groups), _) => Some(slices.read_codes(groups, slice_buffer)),
            (None, Some(frame)) => slices.read(frame, self.slice_by)?,
            (None, None) => None,
        };
        Ok(Truth {
            labels,
            slices,
            first: 0,
        })
    }

    /// Rows `offset..offset + len` of `columns`, all of them.
    fn read_range(&self, columns: &[String], offset: usize, len: usize) -> Result<Frame> {
        let frame = self.table.read_frame(columns, offset, len)?;
        if frame.height() != len {
            return Err(Error::input(
                frame.path(),
                format!(
                    "gave {} of rows {offset}..{} (fewer rows than its metadata says)",
                    frame.height(),
                    offset + len
                ),
            ));
        }
        Ok(frame)
    }

    /// Where a worker lays out its batches' features from: page by page
    /// when the log is read from disk and every feature column is a plain
    /// numeric one (data::FloatRows: no polars frame, and a batch's
    /// matrix is written while its pages are in cache), else from each
    /// range decoded by polars (or sliced from a table in memory).
    fn source(&self, matrices: &[Matrix]) -> Result<Source<'_>> {
        if self.table.is_in_memory() || matrices.is_empty() {
            return Ok(Source::Frame(None));
        }
        let mut readers = Vec::new();
        for matrix in matrices {
            match FloatRows::open(self.table, &matrix.columns)? {
                Some(reader) => readers.push(match &matrix.scaling {
                    Some(scaling) => reader.scaled(scaling.clone()),
                    None => reader,
                }),
                None => return Ok(Source::Frame(None)),
            }
        }
        Ok(Source::Pages(readers))
    }
}

/// The ranges' labels and slices, read by the judging as it reaches each
/// range: a thread of their own, reading a range or two ahead, cost a
/// thread switch each range, and the judging then read every label from
/// another core's cache and memory held more ranges of them.
struct Truths<'r> {
    reading: &'r Reading<'r>,
    slices: SliceKeys,
    labels: LabelReader,
    /// The label and slice columns' code readers, or why they could not
    /// be opened (the first range's error).
    codes: Result<[Option<DictionaryCodes>; 2]>,
    units: std::slice::Iter<'r, (usize, usize)>,
    ranges: std::iter::Peekable<std::slice::Iter<'r, (usize, usize)>>,
    /// Where the unit's ranges not judged yet start in it, the next one
    /// last.
    starts: Vec<usize>,
    /// A judged range's truth: the unit's for its next range, else its
    /// buffers for the next unit's.
    spare: Option<Truth>,
    /// After an error, there are no more.
    failed: bool,
}

impl Truths<'_> {
    /// A judged range's labels and slices, whose buffers the next unit's
    /// fill (new ones each range were new memory to touch for the first
    /// ranges on each worker's heap).
    fn give_back(&mut self, truth: Truth) {
        self.spare = Some(truth);
    }

    /// The next range's labels and slices; None past the last range or
    /// after an error.
    fn next(&mut self) -> Option<Result<Truth>> {
        if let Some(first) = self.starts.pop() {
            let mut truth = self
                .spare
                .take()
                .expect("the unit's truth, given back once its range before was judged");
            truth.first = first;
            return Some(Ok(truth));
        }
        if self.failed {
            return None;
        }
        let codes = match &mut self.codes {
            Ok(codes) => codes,
            Err(_) => {
                self.failed = true;
                let e = std::mem::replace(&mut self.codes, Ok([None, None]));
                return e.err().map(Err);
            }
        };
        let &(offset, len) = self.units.next()?;
        let mut starts = Vec::new();
        while let Some(&&(start, _)) = self.ranges.peek().filter(|r| r.0 < offset + len) {
            starts.push(start - offset);
            self.ranges.next();
        }
        let spare = self.spare.take();
        match self.reading.truth(
            offset,
            len,
            &mut self.labels,
            &mut self.slices,
            codes,
            spare,
        ) {
            Ok(whole) => {
                self.starts = starts.into_iter().skip(1).rev().collect();
                Some(Ok(whole))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Where a worker lays out its batches' feature matrices from.
enum Source<'a> {
    /// The log on disk, page by page: a reader per feature matrix.
    Pages(Vec<FloatRows<'a>>),
    /// The range being answered, decoded by polars or sliced from a table
    /// in memory (none without feature matrices).
    Frame(Option<Frame>),
}

impl Source<'_> {
    /// Readies rows `offset..offset + len` of the log.
    fn start(&mut self, reading: &Reading, offset: usize, len: usize) -> Result<()> {
        match self {
            Source::Pages(readers) => readers.iter_mut().try_for_each(|r| r.seek(offset, len)),
            Source::Frame(frame) => {
                // The last range's frame goes before the next is decoded.
                *frame = None;
                if !reading.features.is_empty() {
                    *frame = Some(reading.read_range(reading.features, offset, len)?);
                }
                Ok(())
            }
        }
    }

    /// The feature matrices of rows `start..start + n` of the range, and
    /// how many of their values were null.
    fn matrices(
        &mut self,
        answering: &Answering,
        start: usize,
        n: usize,
    ) -> Result<(Vec<Tensor>, usize)> {
        let mut nulls = 0;
        let mut matrices = Vec::with_capacity(answering.matrices.len());
        for (i, matrix) in answering.matrices.iter().enumerate() {
            let columns = &matrix.columns;
            let data = match self {
                Source::Pages(readers) if matrix.by_columns => {
                    let mut data = Vec::new();
                    nulls += readers[i].read_columns(n, &mut data)?;
                    // Columns `column_stride(n)` apart, seen as n rows.
                    let t = Tensor::from_vec(data, (columns.len(), column_stride(n)), &Device::Cpu)
                        .and_then(|t| t.narrow(1, 0, n))
                        .and_then(|t| t.t())
                        .map_err(|e| Error::input(answering.inputs, e))?;
                    matrices.push(t);
                    continue;
                }
                Source::Pages(readers) => {
                    let mut data = Vec::new();
                    nulls += readers[i].read(n, &mut data)?;
                    data
                }
                Source::Frame(frame) => {
                    let frame = frame.as_ref().expect("decoded for the feature matrices");
                    let (mut data, k) = frame.slice(start, n).f32_rows(columns)?;
                    if let Some(scaling) = &matrix.scaling {
                        scaling.scale_rows(&mut data);
                    }
                    nulls += k;
                    data
                }
            };
            let t = Tensor::from_vec(data, (n, columns.len()), &Device::Cpu)
                .map_err(|e| Error::input(answering.inputs, e))?;
            matrices.push(t);
        }
        Ok((matrices, nulls))
    }
}

/// Both sides' answers to a batch.
struct PairAnswers {
    n: usize,
    sides: [BatchAnswers; 2],
    /// Null feature values.
    nulls: usize,
}

/// Batch `batch` of range `range`, answered (or failed).
struct Answered {
    range: usize,
    batch: usize,
    answers: Result<PairAnswers>,
}

/// Answers the log's ranges on a worker per pool, each worker taking the
/// next range; the answers are judged batch by batch in the log's order as
/// soon as the batches before them are (whatever order the ranges finish
/// in, the report is the same), each range's labels and slices read as
/// the judging reaches it. The judging runs on the workers' threads (see
/// `Judging`). Returns the slice names.
fn replay_ranges(
    sides: &[Side; 2],
    pools: Vec<rayon::ThreadPool>,
    reading: &Reading,
    answering: &Answering,
    judge: &mut Judge,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<String>> {
    // Ranges handed to the workers ahead of the judging: two per worker,
    // so that none waits for the next range while memory holds a few
    // ranges' answers whatever the log's length.
    let ahead = 2 * pools.len().max(1);
    let sources = (0..pools.len())
        .map(|_| reading.source(answering.matrices))
        .collect::<Result<Vec<_>>>()?;
    let (to_workers, claims) = sync_channel::<usize>(ahead);
    let claims = Arc::new(Mutex::new(claims));
    let judging = Judging {
        sides,
        reading,
        answering,
        progress,
        waiting: Mutex::new(BTreeMap::new()),
        stop: AtomicUsize::new(usize::MAX),
        state: Mutex::new(JudgeState {
            judge,
            truths: None,
            truth: None,
            next: (0, 0),
            handed: 0,
            to_workers: Some(to_workers),
            failed: None,
            error: None,
        }),
    };
    std::thread::scope(|scope| {
        for (i, (pool, source)) in pools.into_iter().zip(sources).enumerate() {
            let (claims, judging) = (claims.clone(), &judging);
            let worker = Worker {
                sides,
                reading,
                answering,
                source,
            };
            std::thread::Builder::new()
                .name(format!("mlctl-worker-{i}"))
                .spawn_scoped(scope, move || worker.work(pool, claims, judging))
                .map_err(|e| Error::usage(format!("cannot start a worker thread: {e}")))?;
        }
        drop(claims);
        let mut state = judging.lock_state();
        for _ in 0..ahead {
            state.hand_out(reading.ranges.len());
        }
        drop(state);
        // Opened once the workers have their ranges (the readers parse the
        // file's footer); batches answered meanwhile are judged now.
        judging.lock_state().truths = Some(reading.truths());
        judging.judge_ready();
        Ok(())
    })?;
    let state = judging
        .state
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(e) = state.error {
        return Err(e);
    }
    let mut truths = state.truths.expect("opened before the workers end");
    if let Some((first, e)) = state.failed {
        // Every batch before the failed one was judged; a range's labels
        // and slices come before its first batch.
        if first == (state.next.0, 0) && state.truth.is_none() {
            if let Some(Err(labels_failed)) = truths.next() {
                return Err(labels_failed);
            }
        }
        return Err(e);
    }
    Ok(truths.slices.names)
}

/// The judging of a replay's answered batches, in the log's order, done
/// by the workers themselves: a worker that answered a batch leaves it
/// here and, unless another worker is judging, judges every batch that is
/// next in the log's order. A judge thread of its own, woken by each
/// worker's answers, took a core from a worker each time (three busy
/// threads on two cores) and read every answer from the other core's
/// cache; here the judging takes turns with answering on the worker's own
/// thread, often on answers it has just made.
struct Judging<'a, 'j> {
    sides: &'a [Side<'a>; 2],
    reading: &'a Reading<'a>,
    answering: &'a Answering<'a>,
    progress: &'a indicatif::ProgressBar,
    /// Answered batches not judged yet, by range and batch; a judged
    /// batch's answers go at once, so memory holds little more than the
    /// batches that finished before those ahead of them in the log.
    waiting: Mutex<BTreeMap<(usize, usize), PairAnswers>>,
    /// Ranges past the first failed one are not answered.
    stop: AtomicUsize,
    state: Mutex<JudgeState<'a, 'j>>,
}

struct JudgeState<'a, 'j> {
    judge: &'a mut Judge<'j>,
    /// The ranges' labels and slices (opened once the workers have their
    /// first ranges; nothing is judged before).
    truths: Option<Truths<'a>>,
    /// The range being judged's labels and slices.
    truth: Option<Truth>,
    /// The next batch to judge: range and batch.
    next: (usize, usize),
    /// Ranges handed to the workers so far.
    handed: usize,
    /// The workers' range queue, closed once every range is handed out or
    /// after a failure (the workers end when it is empty and closed).
    to_workers: Option<SyncSender<usize>>,
    /// The first failed batch in the log's order: after a failure no
    /// range past it is answered, and every batch before it is judged, so
    /// that the error reported does not depend on the timing.
    failed: Option<((usize, usize), Error)>,
    /// What ended the judging (labels that cannot be read, answers that
    /// cannot be compared).
    error: Option<Error>,
}

impl<'a, 'j> Judging<'a, 'j> {
    fn lock_state(&self) -> std::sync::MutexGuard<'_, JudgeState<'a, 'j>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, BTreeMap<(usize, usize), PairAnswers>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Leaves a worker's answered batches (or failed ones), then judges
    /// what is ready.
    fn deposit(&self, group: Vec<Answered>) {
        let mut answered = Vec::with_capacity(group.len());
        for Answered {
            range,
            batch,
            answers,
        } in group
        {
            match answers {
                Ok(answers) => answered.push(((range, batch), answers)),
                Err(e) => self.fail(range, batch, e),
            }
        }
        let stop = self.stop.load(Ordering::Relaxed);
        self.lock_waiting().extend(
            answered
                .into_iter()
                .filter(|((range, _), _)| *range <= stop),
        );
        self.judge_ready();
    }

    /// Batch `batch` of range `range` failed: no range past it is
    /// answered, and the queue closes.
    fn fail(&self, range: usize, batch: usize, e: Error) {
        self.stop.fetch_min(range, Ordering::Relaxed);
        let mut state = self.lock_state();
        state.to_workers = None;
        if state
            .failed
            .as_ref()
            .is_none_or(|(first, _)| (range, batch) < *first)
        {
            state.failed = Some(((range, batch), e));
        }
    }

    /// Judges every batch that is next in the log's order, unless another
    /// worker is judging: that one judges what this one left, for it looks
    /// again once it has let go.
    fn judge_ready(&self) {
        loop {
            let mut state = match self.state.try_lock() {
                Ok(state) => state,
                Err(std::sync::TryLockError::WouldBlock) => return,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            };
            self.judge_in_order(&mut state);
            let next = state.next;
            let done = state.truths.is_none() || state.error.is_some();
            drop(state);
            if done || !self.lock_waiting().contains_key(&next) {
                return;
            }
        }
    }

    fn judge_in_order(&self, state: &mut JudgeState<'a, 'j>) {
        if state.truths.is_none() || state.error.is_some() {
            return;
        }
        let ranges = self.reading.ranges;
        let batch_size = self.answering.batch_size;
        // A failed batch is never left here: judging stops before it.
        loop {
            let next = state.next;
            let Some(answers) = self.lock_waiting().remove(&next) else {
                return;
            };
            if let Err(e) = self.judge_batch(state, &answers) {
                state.error = Some(e);
                state.to_workers = None;
                self.stop.store(0, Ordering::Relaxed);
                return;
            }
            self.answering.spare.give_back_batch(answers);
            let (range, batch) = next;
            state.next = (range, batch + 1);
            if (batch + 1) * batch_size >= ranges[range].1 {
                let (offset, len) = ranges[range];
                self.progress.set_position((offset + len) as u64);
                state.next = (range + 1, 0);
                if let (Some(truth), Some(truths)) = (state.truth.take(), state.truths.as_mut()) {
                    truths.give_back(truth);
                }
                state.hand_out(ranges.len());
            }
        }
    }

    /// Counts one batch, the next in the log's order.
    fn judge_batch(&self, state: &mut JudgeState<'a, 'j>, answers: &PairAnswers) -> Result<()> {
        let JudgeState {
            judge,
            truths,
            truth,
            next,
            ..
        } = state;
        for (timing, side) in judge.timings.iter_mut().zip(&answers.sides) {
            timing.add(side.seconds, answers.n);
        }
        if truth.is_none() {
            let truths = truths.as_mut().expect("checked by the caller");
            *truth = Some(
                truths
                    .next()
                    .expect("a truth for every range, or an error")?,
            );
        }
        let range_truth = truth.as_mut().expect("read above");
        let task = |side: &Side| side.roles.get().map_or(Task::Classification, |r| r.task);
        let tasks = [task(&self.sides[0]), task(&self.sides[1])];
        judge.add(
            range_truth,
            next.1 * self.answering.batch_size,
            answers,
            tasks,
        )
    }
}

impl JudgeState<'_, '_> {
    /// Hands the next range to the workers (the queue holds at most as
    /// many as were handed ahead: one is handed as one is judged); the
    /// queue closes after the last one.
    fn hand_out(&mut self, ranges: usize) {
        if let Some(queue) = &self.to_workers {
            if self.handed < ranges && queue.send(self.handed).is_ok() {
                self.handed += 1;
            }
            if self.handed == ranges {
                self.to_workers = None;
            }
        }
    }
}

/// A worker: answers whole ranges, batch by batch, on its pool's thread.
struct Worker<'a> {
    sides: &'a [Side<'a>; 2],
    reading: &'a Reading<'a>,
    answering: &'a Answering<'a>,
    source: Source<'a>,
}

impl Worker<'_> {
    /// Takes the next range until there are no more, a range before it
    /// has failed (`stop`), or the judging has stopped. The whole loop runs
    /// on the pool's thread: handing each batch to it and waiting for the
    /// answer cost two thread switches a batch.
    fn work(
        mut self,
        pool: rayon::ThreadPool,
        claims: Arc<Mutex<Receiver<usize>>>,
        judging: &Judging<'_, '_>,
    ) {
        let batch_size = self.answering.batch_size;
        let stop = &judging.stop;
        pool.install(|| loop {
            let range = match claims.lock().expect("the range queue").recv() {
                Ok(range) => range,
                Err(_) => return,
            };
            let (offset, len) = self.reading.ranges[range];
            let mut started = self.source.start(self.reading, offset, len);
            let mut group = Vec::with_capacity(BATCHES_A_MESSAGE);
            for (batch, start) in (0..len).step_by(batch_size).enumerate() {
                if range > stop.load(Ordering::Relaxed) {
                    break;
                }
                let answers = std::mem::replace(&mut started, Ok(()))
                    .and_then(|()| self.answer(offset, start, batch_size.min(len - start)));
                let failed = answers.is_err();
                group.push(Answered {
                    range,
                    batch,
                    answers,
                });
                if failed {
                    judging.deposit(group);
                    return;
                }
                if group.len() == BATCHES_A_MESSAGE {
                    judging.deposit(std::mem::take(&mut group));
                }
            }
            // The range's last batches before the next range is claimed:
            // the judging hands out more ranges once it has judged them.
            if !group.is_empty() {
                judging.deposit(group);
            }
        })
    }

    /// Both sides' answers to rows `start..start + n` of the range at
    /// `offset`.
    fn answer(&mut self, offset: usize, start: usize, n: usize) -> Result<PairAnswers> {
        let (matrices, nulls) = self.source.matrices(self.answering, start, n)?;
        let batch = Batch {
            offset: offset + start,
            n,
            matrices,
        };
        let primary = self.sides[0].answer_batch(&batch, self.answering)?;
        let candidate = self.sides[1].answer_batch(&batch, self.answering)?;
        Ok(PairAnswers {
            n,
            sides: [primary, candidate],
            nulls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long range, a short one, and one just short of two pieces.
    const UNITS: [(usize, usize); 3] = [
        (0, 300_000),
        (300_000, 50_000),
        (350_000, 2 * READ_ROWS - 1),
    ];

    #[test]
    fn long_ranges_are_cut_in_whole_batches_and_short_ones_kept() {
        let units = UNITS;
        assert_eq!(
            pieces(&units, 4096, 1),
            vec![
                (0, READ_ROWS),
                (READ_ROWS, READ_ROWS),
                (2 * READ_ROWS, 300_000 - 2 * READ_ROWS),
                (300_000, 50_000),
                (350_000, 2 * READ_ROWS - 1),
            ]
        );
        // Pieces of whole batches: the batches are those of the uncut
        // range.
        assert_eq!(
            pieces(&units[..1], 100_000, 1),
            vec![(0, 100_000), (100_000, 100_000), (200_000, 100_000)]
        );
        assert_eq!(pieces(&units[..1], 1000, 1)[1], (131_000, 131_000));
        // A batch longer than a piece: ranges of whole batches still.
        assert_eq!(pieces(&units[..1], 200_000, 1), vec![(0, 300_000)]);
        assert_eq!(
            pieces(&[(0, 500_000)], 200_000, 1),
            vec![(0, 200_000), (200_000, 200_000), (400_000, 100_000)]
        );
    }

    #[test]
    fn each_workers_last_range_is_cut_in_halves_of_whole_batches() {
        let half = |len: usize| (len / 2).div_ceil(4096) * 4096;
        let last = 2 * READ_ROWS - 1;
        let (one, two) = (pieces(&UNITS, 4096, 1), pieces(&UNITS, 4096, 2));
        // The ranges before the last two as on one worker; those two in
        // halves.
        assert_eq!(two[..3], one[..3]);
        assert_eq!(
            two[3..],
            [
                (300_000, half(50_000)),
                (300_000 + half(50_000), 50_000 - half(50_000)),
                (350_000, half(last)),
                (350_000 + half(last), last - half(last)),
            ]
        );
        // More workers than ranges: every range is halved.
        assert_eq!(
            pieces(&[(0, 10_000)], 4096, 4),
            vec![(0, 8192), (8192, 1808)]
        );
        // A range of one batch stays whole; so do the batches.
        assert_eq!(
            pieces(&[(0, 4096), (4096, 10)], 4096, 2),
            vec![(0, 4096), (4096, 10)]
        );
        assert_eq!(pieces(&[(0, 8192)], 4096, 2), vec![(0, 4096), (4096, 4096)]);
    }
}
