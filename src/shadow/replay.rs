//! Replay: both models answer the logged rows, batch by batch, and the
//! answers are compared range by range, in the log's order. The log is
//! read in ranges that follow its row groups, on a thread of its own, a
//! range ahead of the models; with two or more threads each model answers
//! on a thread and pool of its own, as far ahead as the reader allows.
//! Reading overlaps with scoring, and memory holds a few ranges whatever
//! the log's size.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::compare::{Answers, Comparison, Paired, Task};
use super::outputs::{self, ClassCodes, Roles};
use super::{Compared, LabelReader, LabelValues, Options, ReplayOptions, SliceKeys, Timing};
use crate::data::{Frame, Table};
use crate::error::{Error, Result};
use crate::predict::{self, Features, Feeding};
use crate::runtime::{self, tensor, Model, Value};

/// Rows read from the log at a time (rounded to its row groups).
const READ_ROWS: usize = 1 << 17;

/// Batches in a range of a table already in memory.
const BATCHES_PER_MEMORY_RANGE: usize = 32;

/// Ranges queued for each model beyond the one it is answering: with the
/// reader preparing the next, memory holds a few ranges whatever the log's
/// size. Two measured no faster on two cores (a median 2.30M rows/s against
/// 2.29M in six interleaved runs) and peaked about 20 MB higher.
const RANGES_AHEAD: usize = 1;

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

/// One rayon pool per model when there are threads to share, so both
/// models answer a batch at once, each on its half of the threads (a small
/// model gains little from a second thread, and the two calls overlap
/// fully). None with one thread: the models then take turns.
fn model_pools() -> Result<Option<[rayon::ThreadPool; 2]>> {
    let threads = runtime::kernels::threads();
    if threads < 2 {
        return Ok(None);
    }
    let pool = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::usage(format!("cannot start {n} threads: {e}")))
    };
    let first = threads / 2;
    Ok(Some([pool(threads - first)?, pool(first)?]))
}

/// Columns a prediction log carries that are never a model's features.
const LOG_COLUMNS: [&str; 4] = ["prediction", "confidence", "request_id", "model_version"];

struct Side<'a> {
    path: &'a Path,
    model: Model,
    feeding: Feeding,
    roles: Option<Roles>,
    timing: Timing,
    classes: Vec<i64>,
    scores: Vec<f64>,
}

impl Side<'_> {
    /// Runs one batch; the time of the call alone is recorded when `timed`.
    fn call(
        &mut self,
        feeds: Vec<(String, Tensor)>,
        rows: &std::ops::Range<usize>,
        timed: bool,
    ) -> Result<Vec<(String, Value)>> {
        let started = Instant::now();
        let out = self.model.run(feeds).map_err(|e| {
            Error::input(self.path, format!("rows {}..{}: {e}", rows.start, rows.end))
        })?;
        if timed {
            self.timing.add(started.elapsed().as_secs_f64(), rows.len());
        }
        Ok(out)
    }

    /// Reads a batch's answers (the output roles from the first batch).
    fn read(
        &mut self,
        out: &[(String, Value)],
        answering: &Answering,
        rows: &std::ops::Range<usize>,
    ) -> Result<()> {
        if self.roles.is_none() {
            self.roles =
                Some(outputs::roles(out, answering.task).map_err(|e| Error::input(self.path, e))?);
        }
        let mut codes = answering.codes.lock().expect("class codes");
        let codes = &mut *codes;
        let roles = self.roles.as_ref().expect("set above");
        outputs::answers(out, roles, codes, &mut self.classes, &mut self.scores)
            .map_err(|e| Error::input(self.path, e))?;
        if self.scores.len() != rows.len() {
            return Err(Error::input(
                self.path,
                format!(
                    "gave {} answers for {} rows (rows {}..{})",
                    self.scores.len(),
                    rows.len(),
                    rows.start,
                    rows.end
                ),
            ));
        }
        Ok(())
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
            roles: None,
            timing: Timing::new("primary", &replay.primary, primary_load),
            classes: Vec::new(),
            scores: Vec::new(),
        },
        Side {
            path: &replay.candidate,
            model: candidate_model,
            feeding: candidate_feeding,
            roles: None,
            timing: Timing::new("candidate", &replay.candidate, candidate_load),
            classes: Vec::new(),
            scores: Vec::new(),
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
    let matrix_columns: Vec<Vec<String>> = sides
        .iter()
        .filter_map(|s| match &s.feeding {
            Feeding::Matrix { columns, .. } => Some(columns.clone()),
            Feeding::Named(_) => None,
        })
        .collect();
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
    let started = Instant::now();
    let (slice_names, sides) = match model_pools()? {
        Some(pools) => {
            replay_in_parallel(sides, pools, &reading, &answering, &mut judge, &progress)?
        }
        None => replay_in_turns(sides, &reading, &answering, &mut judge, &progress)?,
    };
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
            primary.roles.map(|r| r.describe()).unwrap_or_default(),
        ),
        (
            "candidate".into(),
            candidate.roles.map(|r| r.describe()).unwrap_or_default(),
        ),
    ];
    compared.timings = vec![primary.timing, candidate.timing];
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

impl Side<'_> {
    /// Answers a range batch by batch; with `noise`, answers each batch a
    /// second time in two halves (what serving itself varies: batch
    /// composition changes the order of float sums).
    fn answer_range(
        &mut self,
        range: &Prepared,
        answering: &Answering,
        noise: bool,
    ) -> Result<RangeAnswers> {
        let mut answers = RangeAnswers {
            task: Task::Classification,
            classes: Vec::with_capacity(range.len),
            scores: Vec::with_capacity(range.len),
            noise: noise.then(|| (Vec::with_capacity(range.len), Vec::with_capacity(range.len))),
            nulls: 0,
        };
        let mut start = 0;
        while start < range.len {
            let n = answering.batch_size.min(range.len - start);
            let rows = range.offset + start..range.offset + start + n;
            let feeds = self.feeds(range, start, n, answering, &mut answers.nulls)?;
            let out = self.call(feeds, &rows, true)?;
            self.read(&out, answering, &rows)?;
            answers.classes.extend_from_slice(&self.classes);
            answers.scores.extend_from_slice(&self.scores);
            if let Some((classes, scores)) = &mut answers.noise {
                let half = n.div_ceil(2);
                for (a, b) in [(0, half), (half, n)] {
                    if a == b {
                        continue;
                    }
                    let feeds = self.feeds(range, start + a, b - a, answering, &mut 0)?;
                    let r = rows.start + a..rows.start + b;
                    let out = self.call(feeds, &r, false)?;
                    self.read(&out, answering, &r)?;
                    classes.extend_from_slice(&self.classes);
                    scores.extend_from_slice(&self.scores);
                }
            }
            start += n;
        }
        answers.task = self.roles.as_ref().map_or(Task::Classification, |r| r.task);
        Ok(answers)
    }

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
    /// Decodes each range, lays out its feature matrices and reads its
    /// labels and slices, handing each to every receiver (a full receiver
    /// holds the reader back: memory holds a few ranges, whatever the log's
    /// size). Returns the slice names; stops at the first error, or when a
    /// receiver has gone (a side failed).
    fn read_all(&self, receivers: &[SyncSender<Arc<Prepared>>]) -> Result<Vec<String>> {
        let mut slices = SliceKeys::default();
        let mut labels = LabelReader::new(self.label.clone());
        for &(offset, len) in self.ranges {
            let frame = self.table.read_frame(self.needed, offset, len)?;
            let mut matrices: Vec<(Vec<String>, Tensor)> = Vec::new();
            let mut nulls = 0;
            for columns in self.matrix_columns {
                matrix_feed(&frame, columns, &mut matrices, &mut nulls)?;
            }
            let labels = {
                let mut codes = self.codes.lock().expect("class codes");
                labels.read(&frame, &mut codes)?
            };
            let prepared = Arc::new(Prepared {
                offset,
                len,
                matrices,
                labels,
                slices: slices.read(&frame, self.slice_by)?,
                nulls,
            });
            for receiver in receivers {
                if receiver.send(prepared.clone()).is_err() {
                    return Ok(slices.names);
                }
            }
        }
        Ok(slices.names)
    }
}

/// Starts the reader on a thread of its own.
fn spawn_reader<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    reading: &'scope Reading<'scope>,
    receivers: Vec<SyncSender<Arc<Prepared>>>,
) -> Result<std::thread::ScopedJoinHandle<'scope, Result<Vec<String>>>> {
    std::thread::Builder::new()
        .name("mlctl-reader".into())
        .spawn_scoped(scope, move || reading.read_all(&receivers))
        .map_err(|e| Error::usage(format!("cannot start the reader thread: {e}")))
}

/// Both models on threads of their own, each on its pool, each running as
/// far ahead as the ranges allow: neither waits for the other batch by
/// batch, and the reader and the judge fill the gaps.
fn replay_in_parallel<'a>(
    sides: [Side<'a>; 2],
    pools: [rayon::ThreadPool; 2],
    reading: &Reading,
    answering: &Answering,
    judge: &mut Judge,
    progress: &indicatif::ProgressBar,
) -> Result<(Vec<String>, [Side<'a>; 2])> {
    let noise = judge.baseline_noise;
    std::thread::scope(|scope| {
        let (to_primary, primary_ranges) = sync_channel::<Arc<Prepared>>(RANGES_AHEAD);
        let (to_candidate, candidate_ranges) = sync_channel::<Arc<Prepared>>(RANGES_AHEAD);
        let reader = spawn_reader(scope, reading, vec![to_primary, to_candidate])?;
        let [primary, candidate] = sides;
        let [primary_pool, candidate_pool] = pools;
        let (primary_thread, primary_answers) = spawn_side(
            scope,
            primary,
            primary_pool,
            primary_ranges,
            answering,
            noise,
        )?;
        let (candidate_thread, candidate_answers) = spawn_side(
            scope,
            candidate,
            candidate_pool,
            candidate_ranges,
            answering,
            false,
        )?;
        for (range, primary) in primary_answers {
            let primary = primary?;
            let Ok((_, candidate)) = candidate_answers.recv() else {
                break;
            };
            judge.add(&range, primary, candidate?)?;
            progress.set_position((range.offset + range.len) as u64);
        }
        // Every range was judged, or the reader stopped at an error.
        drop(candidate_answers);
        let slice_names = reader.join().expect("the reader's thread ends")?;
        let primary = primary_thread.join().expect("the primary's thread ends");
        let candidate = candidate_thread
            .join()
            .expect("the candidate's thread ends");
        Ok((slice_names, [primary, candidate]))
    })
}

/// A side's answers to a range, with the range they answer.
type Answered = (Arc<Prepared>, Result<RangeAnswers>);

/// Starts a side on a thread of its own, answering the ranges it receives
/// on its pool (`noise`: the primary's second run too) until they end or
/// it fails; the thread gives the side back.
fn spawn_side<'scope, 'a: 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    mut side: Side<'a>,
    pool: rayon::ThreadPool,
    ranges: Receiver<Arc<Prepared>>,
    answering: &'scope Answering<'scope>,
    noise: bool,
) -> Result<(
    std::thread::ScopedJoinHandle<'scope, Side<'a>>,
    Receiver<Answered>,
)> {
    let (send, answers) = sync_channel::<Answered>(1);
    let name = side.timing.side;
    let thread = std::thread::Builder::new()
        .name(format!("mlctl-{name}"))
        .spawn_scoped(scope, move || {
            for range in ranges {
                let answered = pool.install(|| side.answer_range(&range, answering, noise));
                let failed = answered.is_err();
                if send.send((range, answered)).is_err() || failed {
                    break;
                }
            }
            side
        })
        .map_err(|e| Error::usage(format!("cannot start the {name}'s thread: {e}")))?;
    Ok((thread, answers))
}

/// One thread for both models: they take turns on each range.
fn replay_in_turns<'a>(
    mut sides: [Side<'a>; 2],
    reading: &Reading,
    answering: &Answering,
    judge: &mut Judge,
    progress: &indicatif::ProgressBar,
) -> Result<(Vec<String>, [Side<'a>; 2])> {
    let noise = judge.baseline_noise;
    let slice_names = std::thread::scope(|scope| {
        let (to_models, ranges) = sync_channel::<Arc<Prepared>>(RANGES_AHEAD);
        let reader = spawn_reader(scope, reading, vec![to_models])?;
        let [primary, candidate] = &mut sides;
        for range in ranges {
            let p = primary.answer_range(&range, answering, noise)?;
            let c = candidate.answer_range(&range, answering, false)?;
            judge.add(&range, p, c)?;
            progress.set_position((range.offset + range.len) as u64);
        }
        reader.join().expect("the reader's thread ends")
    })?;
    Ok((slice_names, sides))
}
