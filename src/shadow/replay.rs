//! Replay: both models answer the logged rows, batch by batch, and the
//! answers are compared part by part, in the log's order. The log is
//! read in ranges that follow its row groups, a range ahead of the models:
//! one thread decodes the next range while another lays out this one, in
//! parts of a few batches handed to the workers as each is laid out.
//! Each batch of a part, for either model, is a job; one worker per
//! thread takes the next job, whichever model it is for, so that no
//! thread waits while another model still has batches to answer (two
//! models pinned to a thread each left the faster one's thread idle, and
//! the reader and the judge then slowed the slower one). Memory holds a
//! few ranges whatever the log's size.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::compare::{Answers, Comparison, Paired, Task};
use super::outputs::{self, ClassCodes, Roles};
use super::{Compared, LabelReader, LabelValues, Options, ReplayOptions, SliceKeys, Timing};
use crate::data::{FloatRows, Frame, Table};
use crate::error::{Error, Result};
use crate::predict::{self, Features, Feeding};
use crate::runtime::{self, tensor, Model, Value};

/// Rows read from the log at a time (rounded to its row groups).
const READ_ROWS: usize = 1 << 17;

/// Batches in a range of a table already in memory.
const BATCHES_PER_MEMORY_RANGE: usize = 32;

/// Parts a decoded range is laid out and handed to the workers in (of
/// whole batches): the workers start on a range's first part while the
/// reader lays out the rest (16k rows of a 128k-row range at the usual
/// batch size), and a part's matrix is still in cache when they read it.
const PARTS_PER_RANGE: usize = 8;

/// A range of the log, ready for the models.
struct Prepared {
    offset: usize,
    len: usize,
    /// Feature matrices, one per distinct column list.
    matrices: Vec<(Vec<String>, Tensor)>,
    labels: LabelValues,
    slices: Option<Vec<u32>>,
    nulls: usize,
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
        let (mut classes, mut scores) = (Vec::new(), Vec::new());
        {
            let mut codes = answering.codes.lock().expect("class codes");
            outputs::answers(out, roles, &mut codes, &mut classes, &mut scores)
                .map_err(|e| Error::input(self.path, e))?;
        }
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

    /// Answers rows `start..start + n` of a range; with `noise`, a second
    /// time in two halves (what serving itself varies: batch composition
    /// changes the order of float sums).
    fn answer_batch(
        &self,
        range: &Prepared,
        start: usize,
        n: usize,
        answering: &Answering,
    ) -> Result<BatchAnswers> {
        let rows = range.offset + start..range.offset + start + n;
        let mut nulls = 0;
        let feeds = self.feeds(range, start, n, answering, &mut nulls)?;
        let started = Instant::now();
        let out = self.call(feeds, &rows)?;
        let seconds = started.elapsed().as_secs_f64();
        let (classes, scores) = self.read(&out, answering, &rows)?;
        let mut noise = None;
        if self.noise {
            let (mut again, mut again_scores) = (Vec::with_capacity(n), Vec::with_capacity(n));
            let half = n.div_ceil(2);
            for (a, b) in [(0, half), (half, n)] {
                if a == b {
                    continue;
                }
                let feeds = self.feeds(range, start + a, b - a, answering, &mut 0)?;
                let part = rows.start + a..rows.start + b;
                let out = self.call(feeds, &part)?;
                let (c, s) = self.read(&out, answering, &part)?;
                again.extend(c);
                again_scores.extend(s);
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

/// The feature matrix of a range as one CPU tensor `[rows, columns]`,
/// read once for every model fed by the same columns; batches are views
/// of it.
fn matrix_feed(
    frame: &Frame,
    columns: &[String],
    cache: &mut Vec<(Vec<String>, Tensor)>,
    nulls: &mut usize,
) -> Result<()> {
    if !cache.iter().any(|(c, _)| c == columns) {
        let (data, n) = frame.f32_rows(columns)?;
        *nulls += n;
        let t = Tensor::from_vec(data, (frame.height(), columns.len()), &Device::Cpu)
            .map_err(|e| Error::input(frame.path(), e))?;
        cache.push((columns.to_vec(), t));
    }
    Ok(())
}

/// Rows `start..start + n` of a range's matrix, as the model's input
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
    let load = |model_path: &Path| -> Result<(Model, f64)> {
        let started = Instant::now();
        let model = Model::load(model_path, &device)
            .map_err(|e| Error::input(model_path, e.0.join("; ")))?;
        Ok((model, started.elapsed().as_secs_f64()))
    };
    let (primary_model, primary_load) = load(&replay.primary)?;
    let (candidate_model, candidate_load) = load(&replay.candidate)?;
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
        &primary_model,
        &table,
        &features(replay, &replay.primary, &exclude),
    )?;
    let candidate_feeding = predict::feeding(
        &candidate_model,
        &table,
        &features(replay, &replay.candidate, &exclude),
    )?;
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
    // The columns each range is read with.
    let mut needed: Vec<String> = Vec::new();
    for side in &sides {
        if let Feeding::Matrix { columns, .. } = &side.feeding {
            needed.extend(columns.iter().cloned());
        }
    }
    needed.extend(label.iter().cloned());
    needed.extend(opts.slice_by.iter().cloned());
    needed.sort();
    needed.dedup();

    // A table already in memory is handed out in shorter ranges (32
    // batches): nothing to decode, and the models start sooner.
    let range_rows = if table.is_in_memory() {
        replay
            .batch_size
            .saturating_mul(BATCHES_PER_MEMORY_RANGE)
            .min(READ_ROWS)
    } else {
        READ_ROWS
    };
    let ranges = table.chunks(range_rows)?;
    let progress = if opts.show_progress {
        indicatif::ProgressBar::new(total_rows as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let codes = Mutex::new(ClassCodes::default());
    let mut matrix_columns: Vec<Vec<String>> = Vec::new();
    for side in &sides {
        if let Feeding::Matrix { columns, .. } = &side.feeding {
            if !matrix_columns.contains(columns) {
                matrix_columns.push(columns.clone());
            }
        }
    }
    let answering = Answering {
        batch_size: replay.batch_size,
        table: &table,
        device: &device,
        inputs: &replay.inputs,
        task: opts.task,
        codes: &codes,
    };
    let mut judge = Judge {
        comparison: None,
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
        needed: &needed,
        ranges: &ranges,
        matrix_columns: &matrix_columns,
        slice_by: &opts.slice_by,
        label: label.clone(),
        codes: &codes,
    };
    let pools = worker_pools()?;
    let started = Instant::now();
    let slice_names = replay_jobs(&sides, pools, &reading, &answering, &mut judge, &progress)?;
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
    if let Feeding::Matrix { input, columns } = &primary.feeding {
        compared.notes.push(format!(
            "primary input '{}' took columns {}",
            input.name,
            columns.join(", ")
        ));
    }
    Ok(compared)
}

/// What every side needs to answer a range.
struct Answering<'a> {
    batch_size: usize,
    table: &'a Table,
    device: &'a Device,
    inputs: &'a Path,
    task: Option<Task>,
    codes: &'a Mutex<ClassCodes>,
}

/// One side's answers to a whole range.
struct RangeAnswers {
    task: Task,
    classes: Vec<i64>,
    scores: Vec<f64>,
    /// The primary's second answers to the same rows (`--baseline-noise`).
    noise: Option<(Vec<i64>, Vec<f64>)>,
    nulls: usize,
}

impl RangeAnswers {
    /// The batches' answers, in the range's order.
    fn join(task: Task, batches: Vec<BatchAnswers>, len: usize, noise: bool) -> Self {
        let mut answers = RangeAnswers {
            task,
            classes: Vec::with_capacity(len),
            scores: Vec::with_capacity(len),
            noise: noise.then(|| (Vec::with_capacity(len), Vec::with_capacity(len))),
            nulls: 0,
        };
        for batch in batches {
            answers.classes.extend(batch.classes);
            answers.scores.extend(batch.scores);
            if let (Some((classes, scores)), Some((c, s))) = (&mut answers.noise, batch.noise) {
                classes.extend(c);
                scores.extend(s);
            }
            answers.nulls += batch.nulls;
        }
        answers
    }
}

impl Side<'_> {
    /// The model's feeds for rows `start..start + n` of a range.
    fn feeds(
        &self,
        range: &Prepared,
        start: usize,
        n: usize,
        answering: &Answering,
        nulls: &mut usize,
    ) -> Result<Vec<(String, Tensor)>> {
        match &self.feeding {
            Feeding::Matrix { input, columns } => {
                let (_, matrix) = range
                    .matrices
                    .iter()
                    .find(|(c, _)| c == columns)
                    .expect("read for every matrix feeding");
                let t = batch_tensor(matrix, start, n, input, answering.device)?;
                Ok(vec![(input.name.clone(), t)])
            }
            Feeding::Named(_) => {
                let (feeds, null_count) = predict::batch_feeds(
                    answering.table,
                    &self.feeding,
                    range.offset + start,
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

/// Counts the paired answers range by range, in the log's order.
struct Judge<'a> {
    comparison: Option<Comparison>,
    baseline_noise: bool,
    inputs: &'a Path,
    nulls: usize,
    /// Each side's calls (primary, candidate).
    timings: [Timing; 2],
}

impl Judge<'_> {
    fn add(
        &mut self,
        range: &Prepared,
        primary: RangeAnswers,
        candidate: RangeAnswers,
    ) -> Result<()> {
        if primary.task != candidate.task {
            return Err(Error::usage(format!(
                "the primary's outputs read as a {} and the candidate's as a {}: they cannot be compared (force one with --task)",
                primary.task.name(),
                candidate.task.name()
            )));
        }
        self.nulls += range.nulls + primary.nulls + candidate.nulls;
        let task = primary.task;
        let cmp = self
            .comparison
            .get_or_insert_with(|| Comparison::new(task, self.baseline_noise));
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
            labels: range.labels.for_task(task, 0, range.len, self.inputs)?,
            slices: range.slices.as_deref(),
        });
        Ok(())
    }
}

/// What the reader needs to prepare the log's ranges.
struct Reading<'a> {
    table: &'a Table,
    needed: &'a [String],
    ranges: &'a [(usize, usize)],
    matrix_columns: &'a [Vec<String>],
    slice_by: &'a [String],
    label: Option<String>,
    codes: &'a Mutex<ClassCodes>,
}

impl Reading<'_> {
    /// Decodes each range (on a thread of its own, a range ahead), lays out
    /// its feature matrices and reads its labels and slices, then hands
    /// each of its batches to the workers, once per side (a full queue
    /// holds the reader back: memory holds a few ranges, whatever the log's
    /// size). Returns the slice names; stops at the first error, or when
    /// the workers have gone (a side failed).
    fn read_all(&self, jobs: SyncSender<Job>, batch_size: usize) -> Result<Vec<String>> {
        // Decoding runs a range ahead on a thread of its own: with small
        // models the reader is the slowest stage, and decoding and laying
        // out a range take about as long as each other. A decoded range is
        // handed over when the reader takes it (memory holds one more
        // range; a queue of one more held two: 1M-row replay peak 137 ->
        // 184 MiB, 212 with the queue, for the same speed).
        //
        // A log on disk whose feature columns are plain numbers has them
        // read page by page straight into each part's matrix
        // (data::FloatRows: a 1M-row replay of the sample log 1.3x faster);
        // polars then decodes only the labels and slices.
        let mut direct = self.direct_readers()?;
        let frame_columns: Vec<String> = match &direct {
            Some(_) => self
                .needed
                .iter()
                .filter(|c| !self.matrix_columns.iter().any(|m| m.contains(c)))
                .cloned()
                .collect(),
            None => self.needed.to_vec(),
        };
        let frame_columns = &frame_columns;
        let (to_reader, decoded) = sync_channel::<Result<Frame>>(0);
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("mlctl-decoder".into())
                .spawn_scoped(scope, move || {
                    for &(offset, len) in self.ranges {
                        let frame = self.table.read_frame(frame_columns, offset, len);
                        let failed = frame.is_err();
                        // The reader has stopped, or this range failed.
                        if to_reader.send(frame).is_err() || failed {
                            return;
                        }
                    }
                })
                .map_err(|e| Error::usage(format!("cannot start the decoding thread: {e}")))?;
            self.prepare_all(decoded, jobs, batch_size, direct.as_deref_mut())
        })
    }

    /// A page-level reader per matrix of features, when the log is read
    /// from disk and every one of their columns is a plain numeric one.
    fn direct_readers(&self) -> Result<Option<Vec<FloatRows<'_>>>> {
        if self.table.is_in_memory() || self.matrix_columns.is_empty() {
            return Ok(None);
        }
        let mut readers = Vec::new();
        for columns in self.matrix_columns {
            match FloatRows::open(self.table, columns)? {
                Some(reader) => readers.push(reader),
                None => return Ok(None),
            }
        }
        Ok(Some(readers))
    }

    /// Lays out each decoded range, in order, part by part, and queues
    /// each part's batches as soon as it is laid out.
    fn prepare_all(
        &self,
        decoded: Receiver<Result<Frame>>,
        jobs: SyncSender<Job>,
        batch_size: usize,
        mut direct: Option<&mut [FloatRows]>,
    ) -> Result<Vec<String>> {
        let mut slices = SliceKeys::default();
        let mut labels = LabelReader::new(self.label.clone());
        let mut index = 0;
        for &(offset, len) in self.ranges {
            let frame = decoded
                .recv()
                .expect("the decoding thread sends every range or an error")?;
            let part_rows = len
                .div_ceil(PARTS_PER_RANGE)
                .next_multiple_of(batch_size)
                .max(batch_size);
            for start in (0..len).step_by(part_rows) {
                let part = frame.slice(start, part_rows.min(len - start));
                let range = self.prepare(
                    &part,
                    offset + start,
                    &mut labels,
                    &mut slices,
                    direct.as_deref_mut(),
                )?;
                for start in (0..range.len).step_by(batch_size) {
                    for side in 0..2 {
                        let job = Job {
                            range: range.clone(),
                            index,
                            side,
                            start,
                            n: batch_size.min(range.len - start),
                        };
                        if jobs.send(job).is_err() {
                            return Ok(slices.names);
                        }
                    }
                }
                index += 1;
            }
        }
        Ok(slices.names)
    }

    /// Lays out rows `offset..` of the log (`frame`) for the models, with
    /// their labels and slices: the feature matrices are the next rows of
    /// the `direct` readers, or else laid out from `frame`.
    fn prepare(
        &self,
        frame: &Frame,
        offset: usize,
        labels: &mut LabelReader,
        slices: &mut SliceKeys,
        direct: Option<&mut [FloatRows]>,
    ) -> Result<Arc<Prepared>> {
        let mut matrices: Vec<(Vec<String>, Tensor)> = Vec::new();
        let mut nulls = 0;
        match direct {
            Some(readers) => {
                for (columns, reader) in self.matrix_columns.iter().zip(readers) {
                    let mut data = Vec::new();
                    nulls += reader.read(frame.height(), &mut data)?;
                    let t = Tensor::from_vec(data, (frame.height(), columns.len()), &Device::Cpu)
                        .map_err(|e| Error::input(frame.path(), e))?;
                    matrices.push((columns.clone(), t));
                }
            }
            None => {
                for columns in self.matrix_columns {
                    matrix_feed(frame, columns, &mut matrices, &mut nulls)?;
                }
            }
        }
        let labels = {
            let mut codes = self.codes.lock().expect("class codes");
            labels.read(frame, &mut codes)?
        };
        Ok(Arc::new(Prepared {
            offset,
            len: frame.height(),
            matrices,
            labels,
            slices: slices.read(frame, self.slice_by)?,
            nulls,
        }))
    }
}

/// A batch for one side to answer: rows `start..start + n` of a range.
struct Job {
    range: Arc<Prepared>,
    /// The part's place in the log (ranges are handed out in parts).
    index: usize,
    /// 0 for the primary, 1 for the candidate.
    side: usize,
    start: usize,
    n: usize,
}

/// A job, answered (or failed).
struct Answered {
    job: Job,
    answers: Result<BatchAnswers>,
}

/// A range whose batches are being answered: the answers so far, in
/// batch order, per side.
struct Collecting {
    range: Arc<Prepared>,
    batches: [Vec<Option<BatchAnswers>>; 2],
    missing: usize,
}

/// Answers the log's batches on a worker per pool, each worker taking the
/// next batch whichever side it is for, while the reader prepares ranges
/// ahead; the answers are judged range by range in the log's order
/// (whatever order the batches finish in, the report is the same).
fn replay_jobs(
    sides: &[Side; 2],
    pools: Vec<rayon::ThreadPool>,
    reading: &Reading,
    answering: &Answering,
    judge: &mut Judge,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<String>> {
    let batch_size = answering.batch_size;
    let batches_of = |len: usize| len.div_ceil(batch_size);
    // One range's batches queued: the workers answer one range while the
    // next waits and the reader prepares the one after.
    let largest = reading.ranges.iter().map(|r| r.1).max().unwrap_or(0);
    let (to_workers, jobs) = sync_channel::<Job>(2 * batches_of(largest).max(1));
    // Shared by the workers alone: once they have all stopped (a failure),
    // the queue closes and a reader waiting on a full queue stops too.
    let jobs = Arc::new(Mutex::new(jobs));
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("mlctl-reader".into())
            .spawn_scoped(scope, move || reading.read_all(to_workers, batch_size))
            .map_err(|e| Error::usage(format!("cannot start the reader thread: {e}")))?;
        let (to_judge, answered) = channel::<Answered>();
        for (i, pool) in pools.into_iter().enumerate() {
            let (jobs, to_judge, stop) = (jobs.clone(), to_judge.clone(), &stop);
            std::thread::Builder::new()
                .name(format!("mlctl-worker-{i}"))
                .spawn_scoped(scope, move || {
                    work(sides, pool, jobs, to_judge, stop, answering)
                })
                .map_err(|e| Error::usage(format!("cannot start a worker thread: {e}")))?;
        }
        drop((to_judge, jobs));
        let mut collecting: BTreeMap<usize, Collecting> = BTreeMap::new();
        let mut next = 0;
        // The first failed batch in the queue's order: after a failure the
        // workers take no new batch, and the ones under way are waited for,
        // so that every batch queued before the first failure has been
        // answered and the error reported does not depend on the timing.
        let mut failed: Option<((usize, usize, usize), Error)> = None;
        for Answered { job, answers } in answered {
            let answers = match answers {
                Ok(answers) if failed.is_none() => answers,
                Ok(_) => continue,
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    let order = (job.index, job.start, job.side);
                    if failed.as_ref().is_none_or(|(first, _)| order < *first) {
                        failed = Some((order, e));
                    }
                    continue;
                }
            };
            judge.timings[job.side].add(answers.seconds, job.n);
            let entry = collecting.entry(job.index).or_insert_with(|| {
                let batches = batches_of(job.range.len);
                Collecting {
                    range: job.range.clone(),
                    batches: [
                        (0..batches).map(|_| None).collect(),
                        (0..batches).map(|_| None).collect(),
                    ],
                    missing: 2 * batches,
                }
            });
            entry.batches[job.side][job.start / batch_size] = Some(answers);
            entry.missing -= 1;
            while let Some(done) = collecting
                .first_entry()
                .filter(|e| *e.key() == next && e.get().missing == 0)
            {
                let Collecting { range, batches, .. } = done.remove();
                let [primary, candidate] =
                    batches.map(|b| b.into_iter().flatten().collect::<Vec<_>>());
                let task = |side: &Side| side.roles.get().map_or(Task::Classification, |r| r.task);
                let judged = judge.add(
                    &range,
                    RangeAnswers::join(task(&sides[0]), primary, range.len, sides[0].noise),
                    RangeAnswers::join(task(&sides[1]), candidate, range.len, false),
                );
                if judged.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                judged?;
                progress.set_position((range.offset + range.len) as u64);
                next += 1;
            }
        }
        if let Some((_, e)) = failed {
            return Err(e);
        }
        // Every batch was answered, or the reader stopped at an error.
        reader.join().expect("the reader's thread ends")
    })
}

/// A worker: answers jobs on its pool until there are no more, or a
/// batch has failed (`stop`), or the judge has stopped. The whole loop
/// runs on the pool's thread: handing each batch to it and waiting for
/// the answer cost two thread switches a batch.
fn work(
    sides: &[Side; 2],
    pool: rayon::ThreadPool,
    jobs: Arc<Mutex<Receiver<Job>>>,
    to_judge: Sender<Answered>,
    stop: &AtomicBool,
    answering: &Answering,
) {
    pool.install(|| loop {
        let job = match jobs.lock().expect("the job queue").recv() {
            Ok(job) if !stop.load(Ordering::Relaxed) => job,
            _ => return,
        };
        let answers = sides[job.side].answer_batch(&job.range, job.start, job.n, answering);
        let failed = answers.is_err();
        if to_judge.send(Answered { job, answers }).is_err() || failed {
            return;
        }
    })
}
