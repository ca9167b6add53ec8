//! Replay: both models answer the logged rows, batch by batch, and the
//! answers are compared as they come. The log is read in ranges that
//! follow its row groups, on a thread of its own, one range ahead of the
//! models: memory holds two ranges at most, whatever the log's size, and
//! reading overlaps with scoring.

use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;
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
        task: Option<Task>,
        codes: &mut ClassCodes,
        rows: &std::ops::Range<usize>,
    ) -> Result<()> {
        if self.roles.is_none() {
            self.roles = Some(outputs::roles(out, task).map_err(|e| Error::input(self.path, e))?);
        }
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

    fn answers(&self) -> Answers<'_> {
        Answers {
            classes: &self.classes,
            scores: &self.scores,
        }
    }
}

/// The feature matrix of a range for a model fed from several columns,
/// converted to the element type its input declares.
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
    let mut sides = [
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

    let ranges = table.chunks(READ_ROWS)?;
    let progress = if opts.show_progress {
        indicatif::ProgressBar::new(total_rows as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let codes = Mutex::new(ClassCodes::default());
    let mut comparison: Option<Comparison> = None;
    let mut noise_classes = Vec::new();
    let mut noise_scores = Vec::new();
    let mut nulls = 0usize;
    let pools = model_pools()?;
    let matrix_columns: Vec<Vec<String>> = sides
        .iter()
        .filter_map(|s| match &s.feeding {
            Feeding::Matrix { columns, .. } => Some(columns.clone()),
            Feeding::Named(_) => None,
        })
        .collect();
    let started = Instant::now();

    let slice_names = std::thread::scope(|scope| -> Result<Vec<String>> {
        let (send, receive) = sync_channel::<Result<Prepared>>(1);
        let (table, needed, ranges, codes) = (&table, &needed, &ranges, &codes);
        let matrix_columns = &matrix_columns;
        let slice_by = &opts.slice_by;
        let label = label.clone();
        // The reader: decodes a range, lays out its feature matrices and
        // reads labels and slices while the models answer the range before.
        // One reader: on two cores a second one measured no faster (decoding
        // competes with the models for the same cores) and held twice the
        // ranges in memory.
        let reader = std::thread::Builder::new()
            .name("mlctl-reader".into())
            .spawn_scoped(scope, move || {
                let mut slices = SliceKeys::default();
                let mut labels = LabelReader::new(label);
                for &(offset, len) in ranges {
                    let prepared = (|| -> Result<Prepared> {
                        let frame = table.read_frame(needed, offset, len)?;
                        let mut matrices: Vec<(Vec<String>, Tensor)> = Vec::new();
                        let mut nulls = 0;
                        for columns in matrix_columns {
                            matrix_feed(&frame, columns, &mut matrices, &mut nulls)?;
                        }
                        let labels = {
                            let mut codes = codes.lock().expect("class codes");
                            labels.read(&frame, &mut codes)?
                        };
                        Ok(Prepared {
                            offset,
                            len,
                            matrices,
                            labels,
                            slices: slices.read(&frame, slice_by)?,
                            nulls,
                        })
                    })();
                    let failed = prepared.is_err();
                    if send.send(prepared).is_err() || failed {
                        break;
                    }
                }
                slices.names
            })
            .map_err(|e| Error::usage(format!("cannot start the reader thread: {e}")))?;
        for received in receive {
            let Prepared {
                offset,
                len,
                matrices,
                labels: range_labels,
                slices: range_slices,
                nulls: range_nulls,
            } = received?;
            nulls += range_nulls;
            let mut start = 0;
            while start < len {
                let n = replay.batch_size.min(len - start);
                let rows = offset + start..offset + start + n;
                let mut feeds = Vec::with_capacity(2);
                for side in &sides {
                    feeds.push(feeds_for(
                        side,
                        &matrices,
                        offset,
                        start,
                        n,
                        table,
                        &device,
                        &replay.inputs,
                        &mut nulls,
                    )?);
                }
                let candidate_feeds = feeds.pop().expect("two sides");
                let primary_feeds = feeds.pop().expect("two sides");
                let (primary, candidate) = sides.split_at_mut(1);
                let (primary, candidate) = (&mut primary[0], &mut candidate[0]);
                let (p_out, c_out) = match &pools {
                    // Each model on its own share of the threads, at once.
                    Some([p_pool, c_pool]) => std::thread::scope(|s| {
                        let c = std::thread::Builder::new()
                            .name("mlctl-candidate".into())
                            .spawn_scoped(s, || {
                                c_pool.install(|| candidate.call(candidate_feeds, &rows, true))
                            })
                            .expect("a thread for the candidate");
                        let p = p_pool.install(|| primary.call(primary_feeds, &rows, true));
                        (p, c.join().expect("the candidate's thread ends"))
                    }),
                    None => (
                        primary.call(primary_feeds, &rows, true),
                        candidate.call(candidate_feeds, &rows, true),
                    ),
                };
                {
                    let mut codes = codes.lock().expect("class codes");
                    primary.read(&p_out?, opts.task, &mut codes, &rows)?;
                    candidate.read(&c_out?, opts.task, &mut codes, &rows)?;
                }
                let task = primary.roles.as_ref().expect("answered").task;
                let candidate_task = candidate.roles.as_ref().expect("answered").task;
                if task != candidate_task {
                    return Err(Error::usage(format!(
                        "the primary's outputs read as a {} and the candidate's as a {}: they cannot be compared (force one with --task)",
                        task.name(),
                        candidate_task.name()
                    )));
                }
                if replay.baseline_noise {
                    // The primary again, on the same rows in two batches of
                    // half the size: what serving itself varies (batch
                    // composition changes the order of float sums).
                    let (classes, scores) = (primary.classes.clone(), primary.scores.clone());
                    let half = n.div_ceil(2);
                    noise_classes.clear();
                    noise_scores.clear();
                    for (a, b) in [(0, half), (half, n)] {
                        if a == b {
                            continue;
                        }
                        let feeds = feeds_for(
                            primary,
                            &matrices,
                            offset,
                            start + a,
                            b - a,
                            table,
                            &device,
                            &replay.inputs,
                            &mut 0,
                        )?;
                        let r = offset + start + a..offset + start + b;
                        let out = primary.call(feeds, &r, false)?;
                        let mut codes = codes.lock().expect("class codes");
                        primary.read(&out, opts.task, &mut codes, &r)?;
                        noise_classes.extend_from_slice(&primary.classes);
                        noise_scores.extend_from_slice(&primary.scores);
                    }
                    primary.classes = classes;
                    primary.scores = scores;
                }
                let cmp =
                    comparison.get_or_insert_with(|| Comparison::new(task, replay.baseline_noise));
                let batch_labels = range_labels.for_task(task, start, n, &replay.inputs)?;
                cmp.add(&Paired {
                    primary: primary.answers(),
                    candidate: candidate.answers(),
                    noise: replay.baseline_noise.then_some(Answers {
                        classes: &noise_classes,
                        scores: &noise_scores,
                    }),
                    labels: batch_labels,
                    slices: range_slices.as_ref().map(|s| &s[start..start + n]),
                });
                start += n;
            }
            progress.set_position((offset + len) as u64);
        }
        Ok(reader.join().expect("the reader's thread ends"))
    })?;
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let comparison = comparison.expect("at least one row was compared");
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

#[allow(clippy::too_many_arguments)]
fn feeds_for(
    side: &Side,
    matrices: &[(Vec<String>, Tensor)],
    range_offset: usize,
    start: usize,
    n: usize,
    table: &Table,
    device: &Device,
    inputs: &Path,
    nulls: &mut usize,
) -> Result<Vec<(String, Tensor)>> {
    match &side.feeding {
        Feeding::Matrix { input, columns } => {
            let (_, matrix) = matrices
                .iter()
                .find(|(c, _)| c == columns)
                .expect("read for every matrix feeding");
            let t = batch_tensor(matrix, start, n, input, device)?;
            Ok(vec![(input.name.clone(), t)])
        }
        Feeding::Named(_) => {
            let (feeds, null_count) = predict::batch_feeds(
                table,
                &side.feeding,
                range_offset + start,
                n,
                device,
                inputs,
            )?;
            *nulls += null_count;
            Ok(feeds)
        }
    }
}
