//! Replay: both models answer the logged rows, batch by batch, and the
//! answers are compared as they come. The log is read in ranges that
//! follow its row groups, on a thread of its own, one range ahead of the
//! models: memory holds two ranges at most, whatever the log's size, and
//! reading overlaps with scoring.

use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::compare::{Answers, Comparison, Paired, Task};
use super::outputs::{self, ClassCodes, Roles};
use super::{Compared, LabelReader, Options, ReplayOptions, SliceKeys, Timing};
use crate::data::{Frame, Table};
use crate::error::{Error, Result};
use crate::predict::{self, Features, Feeding};
use crate::runtime::{self, tensor, Model};

/// Rows read from the log at a time (rounded to its row groups).
const READ_ROWS: usize = 1 << 17;

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
    /// Runs one batch and reads its answers; the time of the call alone is
    /// recorded.
    fn answer(
        &mut self,
        feeds: Vec<(String, Tensor)>,
        task: Option<Task>,
        codes: &mut ClassCodes,
        rows: std::ops::Range<usize>,
        timed: bool,
    ) -> Result<()> {
        let started = Instant::now();
        let out = self.model.run(feeds).map_err(|e| {
            Error::input(self.path, format!("rows {}..{}: {e}", rows.start, rows.end))
        })?;
        if timed {
            self.timing.add(started.elapsed().as_secs_f64(), rows.len());
        }
        if self.roles.is_none() {
            self.roles = Some(outputs::roles(&out, task).map_err(|e| Error::input(self.path, e))?);
        }
        let roles = self.roles.as_ref().expect("set above");
        outputs::answers(&out, roles, codes, &mut self.classes, &mut self.scores)
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
fn matrix_feed(
    frame: &Frame,
    columns: &[String],
    cache: &mut Vec<(Vec<String>, Vec<f32>)>,
    nulls: &mut usize,
) -> Result<()> {
    if !cache.iter().any(|(c, _)| c == columns) {
        let (data, n) = frame.f32_rows(columns)?;
        *nulls += n;
        cache.push((columns.to_vec(), data));
    }
    Ok(())
}

fn batch_tensor(
    data: &[f32],
    rows: usize,
    width: usize,
    input: &runtime::graph::IoSpec,
    device: &Device,
) -> Result<Tensor> {
    let dtype = tensor::dtype_of(input.elem_type).unwrap_or(DType::F32);
    Tensor::from_slice(data, (rows, width), device)
        .and_then(|t| {
            if dtype == DType::F32 {
                Ok(t)
            } else {
                t.to_dtype(dtype)
            }
        })
        .map_err(|e| Error::usage(format!("input '{}': {e}", input.name)))
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

    let total_rows = table.row_count()?;
    if total_rows == 0 {
        return Err(Error::input(
            &replay.inputs,
            "has no rows: nothing to replay",
        ));
    }
    let ranges = table.chunks(READ_ROWS)?;
    let progress = if opts.show_progress {
        indicatif::ProgressBar::new(total_rows as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut codes = ClassCodes::default();
    let mut slices = SliceKeys::default();
    let mut labels = LabelReader::new(label.clone());
    let mut comparison: Option<Comparison> = None;
    let mut noise_classes = Vec::new();
    let mut noise_scores = Vec::new();
    let mut nulls = 0usize;
    let started = Instant::now();

    std::thread::scope(|scope| -> Result<()> {
        let (send, receive) = sync_channel::<Result<(usize, usize, Frame)>>(1);
        let table = &table;
        let needed = &needed;
        let ranges = &ranges;
        scope.spawn(move || {
            for &(offset, len) in ranges {
                let frame = table.read_frame(needed, offset, len);
                if send.send(frame.map(|f| (offset, len, f))).is_err() {
                    return;
                }
            }
        });
        for received in receive {
            let (offset, len, frame) = received?;
            let mut matrices: Vec<(Vec<String>, Vec<f32>)> = Vec::new();
            for side in &sides {
                if let Feeding::Matrix { columns, .. } = &side.feeding {
                    matrix_feed(&frame, columns, &mut matrices, &mut nulls)?;
                }
            }
            let range_labels = labels.read(&frame, &mut codes)?;
            let range_slices = slices.read(&frame, &opts.slice_by)?;
            let mut start = 0;
            while start < len {
                let n = replay.batch_size.min(len - start);
                let rows = offset + start..offset + start + n;
                for side in sides.iter_mut() {
                    let feeds = feeds_for(
                        side,
                        &matrices,
                        offset,
                        start,
                        n,
                        table,
                        &device,
                        &replay.inputs,
                        &mut nulls,
                    )?;
                    side.answer(feeds, opts.task, &mut codes, rows.clone(), true)?;
                }
                let task = sides[0].roles.as_ref().expect("answered").task;
                let candidate_task = sides[1].roles.as_ref().expect("answered").task;
                if task != candidate_task {
                    return Err(Error::usage(format!(
                        "the primary's outputs read as a {} and the candidate's as a {}: they cannot be compared (force one with --task)",
                        task.name(),
                        candidate_task.name()
                    )));
                }
                if replay.baseline_noise {
                    // The primary again, on the same rows in a batch of
                    // another size: what serving itself varies (batch
                    // composition changes the order of float sums).
                    let (classes, scores) = (sides[0].classes.clone(), sides[0].scores.clone());
                    let half = n.div_ceil(2);
                    noise_classes.clear();
                    noise_scores.clear();
                    for (a, b) in [(0, half), (half, n)] {
                        if a == b {
                            continue;
                        }
                        let feeds = feeds_for(
                            &sides[0],
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
                        sides[0].answer(feeds, opts.task, &mut codes, r, false)?;
                        noise_classes.extend_from_slice(&sides[0].classes);
                        noise_scores.extend_from_slice(&sides[0].scores);
                    }
                    sides[0].classes = classes;
                    sides[0].scores = scores;
                }
                let cmp =
                    comparison.get_or_insert_with(|| Comparison::new(task, replay.baseline_noise));
                let batch_labels = range_labels.for_task(task, start, n, &replay.inputs)?;
                cmp.add(&Paired {
                    primary: sides[0].answers(),
                    candidate: sides[1].answers(),
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
        Ok(())
    })?;
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let comparison = comparison.expect("at least one row was compared");
    let [primary, candidate] = sides;
    let mut compared = Compared::new(comparison, slices.names, codes);
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
    matrices: &[(Vec<String>, Vec<f32>)],
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
            let (_, data) = matrices
                .iter()
                .find(|(c, _)| c == columns)
                .expect("read for every matrix feeding");
            let width = columns.len();
            let t = batch_tensor(
                &data[start * width..(start + n) * width],
                n,
                width,
                input,
                device,
            )?;
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
