//! The paired comparison, fed batch by batch: counters per slice and
//! overall (flips, right / wrong pairs, error moments, score differences)
//! and a bounded sample of paired scores for the distribution distances.
//! Nothing here holds a row once it is counted, so a log of any length
//! compares in bounded memory.

use crate::stats::paired::Moments;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Predictions are classes; scores are the class probability.
    Classification,
    /// Predictions are numbers (the score is the prediction).
    Regression,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
        }
    }
}

/// One side's answers for a batch of rows.
#[derive(Debug, Clone, Copy)]
pub struct Answers<'a> {
    /// Class codes (classification; empty for regression).
    pub classes: &'a [i64],
    /// Scores (classification: the positive class's or the top class's
    /// probability; regression: the prediction). NaN where there is none.
    pub scores: &'a [f64],
}

/// The true values of a batch, where known.
#[derive(Debug, Clone, Copy)]
pub enum Labels<'a> {
    None,
    Classes(&'a [Option<i64>]),
    /// NaN where unknown.
    Values(&'a [f64]),
}

/// A batch of paired answers for the same rows.
pub struct Paired<'a> {
    pub primary: Answers<'a>,
    pub candidate: Answers<'a>,
    /// The primary's second answer to the same rows (`--baseline-noise`).
    pub noise: Option<Answers<'a>>,
    pub labels: Labels<'a>,
    /// Each row's slice (an index into the slice names); None without
    /// `--slice-by`.
    pub slices: Option<&'a [u32]>,
}

/// Counters for one slice (or for all rows).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub rows: u64,
    /// Rows whose class differs between primary and candidate.
    pub flips: u64,
    /// Rows whose class differs between the primary's two answers.
    pub noise_flips: u64,
    /// Flips on rows where the primary agreed with itself.
    pub flips_beyond_noise: u64,
    /// Rows with a known label.
    pub labelled: u64,
    pub primary_hits: u64,
    pub candidate_hits: u64,
    /// Primary right, candidate wrong (McNemar's b).
    pub negative_flips: u64,
    /// Primary wrong, candidate right (McNemar's c).
    pub positive_flips: u64,
    /// Regression, labelled rows: squared errors of each side and their
    /// difference (candidate minus primary).
    pub primary_se: Moments,
    pub candidate_se: Moments,
    pub se_difference: Moments,
    /// Rows where both sides have a score.
    pub scored: u64,
    pub abs_difference_sum: f64,
    pub max_abs_difference: f64,
    /// Rows whose score moved more than the primary's own run-to-run
    /// difference on that row (more than zero without a noise run).
    pub scores_changed: u64,
    pub noise_max_abs_difference: f64,
}

/// What one row contributes, worked out once and added to two tallies.
#[derive(Default)]
struct RowOutcome {
    flip: bool,
    noise_flip: Option<bool>,
    /// (primary right, candidate right) when labelled.
    correct: Option<(bool, bool)>,
    /// (primary squared error, candidate squared error).
    squared_errors: Option<(f64, f64)>,
    /// (|candidate - primary|, changed beyond noise, noise difference).
    score: Option<(f64, bool, f64)>,
}

impl Tally {
    fn add(&mut self, row: &RowOutcome) {
        self.rows += 1;
        self.flips += row.flip as u64;
        match row.noise_flip {
            Some(true) => self.noise_flips += 1,
            Some(false) => self.flips_beyond_noise += row.flip as u64,
            None => {}
        }
        if let Some((p, c)) = row.correct {
            self.labelled += 1;
            self.primary_hits += p as u64;
            self.candidate_hits += c as u64;
            self.negative_flips += (p && !c) as u64;
            self.positive_flips += (!p && c) as u64;
        }
        if let Some((ep, ec)) = row.squared_errors {
            self.labelled += 1;
            self.primary_se.push(ep);
            self.candidate_se.push(ec);
            self.se_difference.push(ec - ep);
        }
        if let Some((d, changed, noise)) = row.score {
            self.scored += 1;
            self.abs_difference_sum += d;
            self.max_abs_difference = self.max_abs_difference.max(d);
            self.scores_changed += changed as u64;
            self.noise_max_abs_difference = self.noise_max_abs_difference.max(noise);
        }
    }

    /// Flips that count: those beyond the primary's own noise when a noise
    /// run was made, else all of them.
    pub fn counted_flips(&self, with_noise: bool) -> u64 {
        if with_noise {
            self.flips_beyond_noise
        } else {
            self.flips
        }
    }
}

/// Largest number of paired scores kept for the distribution distances;
/// beyond it a uniform sample of the rows (reservoir sampling) is kept.
pub const SCORE_SAMPLE: usize = 1 << 21;

/// A uniform sample of rows' paired scores, at most [`SCORE_SAMPLE`].
#[derive(Debug, Clone, Default)]
pub struct ScoreSample {
    pub primary: Vec<f64>,
    pub candidate: Vec<f64>,
    /// Scored rows seen.
    pub seen: u64,
    state: u64,
}

impl ScoreSample {
    fn add(&mut self, primary: f64, candidate: f64) {
        self.seen += 1;
        if self.primary.len() < SCORE_SAMPLE {
            self.primary.push(primary);
            self.candidate.push(candidate);
            return;
        }
        // xorshift64*: a fixed seed keeps reports reproducible.
        if self.state == 0 {
            self.state = 0x9E37_79B9_7F4A_7C15;
        }
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let r = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let j = (r % self.seen) as usize;
        if j < SCORE_SAMPLE {
            self.primary[j] = primary;
            self.candidate[j] = candidate;
        }
    }

    pub fn is_complete(&self) -> bool {
        self.seen as usize == self.primary.len()
    }
}

/// Everything counted so far.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub task: Task,
    pub with_noise: bool,
    pub overall: Tally,
    /// Indexed like the slice names.
    pub slices: Vec<Tally>,
    pub scores: ScoreSample,
}

impl Comparison {
    pub fn new(task: Task, with_noise: bool) -> Self {
        Comparison {
            task,
            with_noise,
            overall: Tally::default(),
            slices: Vec::new(),
            scores: ScoreSample::default(),
        }
    }

    pub fn add(&mut self, batch: &Paired) {
        let n = batch.primary.scores.len();
        for i in 0..n {
            let row = self.outcome(batch, i);
            self.overall.add(&row);
            if let Some(slices) = batch.slices {
                let s = slices[i] as usize;
                if s >= self.slices.len() {
                    self.slices.resize(s + 1, Tally::default());
                }
                self.slices[s].add(&row);
            }
        }
    }

    fn outcome(&mut self, batch: &Paired, i: usize) -> RowOutcome {
        let mut row = RowOutcome::default();
        let (ps, cs) = (batch.primary.scores[i], batch.candidate.scores[i]);
        let noise_score = batch.noise.map(|a| a.scores[i]);
        if self.task == Task::Classification {
            let (p, c) = (batch.primary.classes[i], batch.candidate.classes[i]);
            row.flip = p != c;
            row.noise_flip = batch.noise.map(|a| a.classes[i] != p);
            if let Labels::Classes(labels) = batch.labels {
                if let Some(y) = labels[i] {
                    row.correct = Some((p == y, c == y));
                }
            }
        } else if let Labels::Values(labels) = batch.labels {
            let y = labels[i];
            if y.is_finite() && ps.is_finite() && cs.is_finite() {
                row.squared_errors = Some(((ps - y) * (ps - y), (cs - y) * (cs - y)));
            }
        }
        if ps.is_finite() && cs.is_finite() {
            let d = (cs - ps).abs();
            let noise = noise_score
                .filter(|q| q.is_finite())
                .map_or(0.0, |q| (q - ps).abs());
            row.score = Some((d, d > noise, noise));
            self.scores.add(ps, cs);
        }
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_right_and_wrong_pairs_are_counted_per_slice() {
        let mut cmp = Comparison::new(Task::Classification, false);
        let labels = [Some(1), Some(0), Some(1), None];
        cmp.add(&Paired {
            primary: Answers {
                classes: &[1, 0, 0, 1],
                scores: &[0.9, 0.2, 0.4, 0.8],
            },
            candidate: Answers {
                classes: &[0, 0, 1, 1],
                scores: &[0.3, 0.2, 0.6, 0.8],
            },
            noise: None,
            labels: Labels::Classes(&labels),
            slices: Some(&[0, 0, 1, 1]),
        });
        let all = &cmp.overall;
        assert_eq!((all.rows, all.flips, all.labelled), (4, 2, 3));
        assert_eq!((all.negative_flips, all.positive_flips), (1, 1));
        assert_eq!((all.primary_hits, all.candidate_hits), (2, 2));
        assert_eq!(all.scores_changed, 2);
        assert!((all.max_abs_difference - 0.6).abs() < 1e-12);
        assert_eq!(cmp.slices[0].negative_flips, 1);
        assert_eq!(cmp.slices[1].positive_flips, 1);
    }

    #[test]
    fn flips_where_the_primary_disagrees_with_itself_are_noise() {
        let mut cmp = Comparison::new(Task::Classification, true);
        cmp.add(&Paired {
            primary: Answers {
                classes: &[1, 1],
                scores: &[0.6, 0.7],
            },
            candidate: Answers {
                classes: &[0, 0],
                scores: &[0.4, 0.4],
            },
            noise: Some(Answers {
                classes: &[0, 1],
                scores: &[0.4, 0.7],
            }),
            labels: Labels::None,
            slices: None,
        });
        assert_eq!(cmp.overall.flips, 2);
        assert_eq!(cmp.overall.noise_flips, 1);
        assert_eq!(cmp.overall.flips_beyond_noise, 1);
        // Row 0 moved by 0.2, as much as the primary's own noise there.
        assert_eq!(cmp.overall.scores_changed, 1);
    }

    #[test]
    fn the_score_sample_stays_bounded_and_uniform_in_size() {
        let mut sample = ScoreSample::default();
        for i in 0..(SCORE_SAMPLE + 1000) {
            sample.add(i as f64, i as f64);
        }
        assert_eq!(sample.primary.len(), SCORE_SAMPLE);
        assert!(!sample.is_complete());
        assert!(sample.primary.iter().any(|&v| v >= SCORE_SAMPLE as f64));
    }
}
