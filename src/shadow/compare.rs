//! The paired comparison, fed batch by batch: counters per slice and
//! overall (flips, right / wrong pairs, error moments, score differences)
//! and a bounded sample of paired scores for the distribution distances.
//! Nothing here holds a row once it is counted, so a log of any length
//! compares in bounded memory.

use crate::stats::paired::Moments;
use crate::stats::Runs;

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
    Classes(ClassLabels<'a>),
    /// NaN where unknown.
    Values(&'a [f64]),
}

/// Each row's true class, `missing` where the row has none: a value that
/// no label holds, so that a row is 8 bytes (an `Option` took 16) and its
/// outcome is worked out without a branch.
#[derive(Debug, Clone, Copy)]
pub struct ClassLabels<'a> {
    pub values: &'a [i64],
    pub missing: i64,
}

impl ClassLabels<'_> {
    /// Row `i`'s class, if it has one.
    pub fn get(&self, i: usize) -> Option<i64> {
        Some(self.values[i]).filter(|&y| y != self.missing)
    }
}

/// A value none of `labels` holds, to stand for a missing label: the
/// largest i64 unless a label is it (text labels' codes count up from the
/// bottom of i64, integers are rarely near the top).
pub fn missing_label(labels: impl Iterator<Item = i64> + Clone) -> i64 {
    if !labels.clone().any(|y| y == i64::MAX) {
        return i64::MAX;
    }
    let mut taken: Vec<i64> = labels.filter(|&y| y < 0).collect();
    taken.sort_unstable();
    taken.dedup();
    // The first value down from -1 that no label holds.
    let mut missing = -1;
    for &y in taken.iter().rev() {
        if y < missing {
            break;
        }
        missing = y - 1;
    }
    missing
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

/// What one row contributes: its outcome as bits, and its score
/// difference. Rows are counted by outcome code (a histogram per batch),
/// not counter by counter: eleven counters of two tallies per row kept the
/// comparing of a replay at about 20 ns a row.
#[derive(Clone, Copy)]
struct RowOutcome {
    bits: u8,
    /// |candidate - primary| where both have a score, else 0.
    difference: f64,
    /// |second primary - primary| where the noise run scored, else 0.
    noise: f64,
}

impl RowOutcome {
    const FLIP: u8 = 1;
    /// The primary's two answers disagree.
    const NOISE_FLIP: u8 = 1 << 1;
    /// The primary's two answers agree.
    const NOISE_AGREES: u8 = 1 << 2;
    const LABELLED: u8 = 1 << 3;
    const PRIMARY_RIGHT: u8 = 1 << 4;
    const CANDIDATE_RIGHT: u8 = 1 << 5;
    /// Both sides have a score.
    const SCORED: u8 = 1 << 6;
    /// The score moved more than the primary's own noise on the row.
    const CHANGED: u8 = 1 << 7;
}

/// Distinct outcome codes (8 bits).
const OUTCOMES: usize = 256;

/// Copies of a histogram of outcome codes, row `i` counted in copy `i %
/// COPIES`: most rows share an outcome, and with one copy each row's
/// increment waited for the row before's (a store, then a load of the same
/// counter).
const COPIES: usize = 4;

/// Histograms of outcome codes (copies, or slices' copies) added up.
fn summed(histograms: &[[u32; OUTCOMES]]) -> [u32; OUTCOMES] {
    let mut all = [0u32; OUTCOMES];
    for histogram in histograms {
        for (all, k) in all.iter_mut().zip(histogram) {
            *all += k;
        }
    }
    all
}

/// Rows whose outcomes are worked out and counted at a time.
const BLOCK: usize = 4096;

/// Sum and largest of rows' score differences.
#[derive(Debug, Clone, Copy, Default)]
struct Differences {
    sum: f64,
    max: f64,
    noise_max: f64,
}

impl Differences {
    #[inline(always)]
    fn add(&mut self, row: &RowOutcome) {
        self.add_difference(row.difference);
        self.add_noise(row.noise);
    }

    /// A row's score difference: added to the sum in the rows' order (the
    /// sum's bits depend on it), kept when the largest. Differences are
    /// never NaN (an unscored row's is 0), so a plain comparison keeps the
    /// largest as `f64::max` would, without its NaN checks.
    #[inline(always)]
    fn add_difference(&mut self, difference: f64) {
        self.sum += difference;
        self.max = if difference > self.max {
            difference
        } else {
            self.max
        };
    }

    #[inline(always)]
    fn add_noise(&mut self, noise: f64) {
        self.noise_max = if noise > self.noise_max {
            noise
        } else {
            self.noise_max
        };
    }
}

impl Tally {
    /// Counts `k` rows of outcome code `bits` (no branch on the outcome).
    #[inline(always)]
    fn count(&mut self, bits: u8, k: u64) {
        let bit = |b: u8| (bits & b != 0) as u64;
        let (p, c) = (
            bit(RowOutcome::PRIMARY_RIGHT),
            bit(RowOutcome::CANDIDATE_RIGHT),
        );
        let flip = bit(RowOutcome::FLIP);
        self.rows += k;
        self.flips += k * flip;
        self.noise_flips += k * bit(RowOutcome::NOISE_FLIP);
        self.flips_beyond_noise += k * (flip & bit(RowOutcome::NOISE_AGREES));
        self.labelled += k * bit(RowOutcome::LABELLED);
        self.primary_hits += k * p;
        self.candidate_hits += k * c;
        self.negative_flips += k * (p & (c ^ 1));
        self.positive_flips += k * ((p ^ 1) & c);
        self.scored += k * bit(RowOutcome::SCORED);
        self.scores_changed += k * bit(RowOutcome::CHANGED);
    }

    fn add_differences(&mut self, differences: &Differences) {
        self.abs_difference_sum += differences.sum;
        self.max_abs_difference = self.max_abs_difference.max(differences.max);
        self.noise_max_abs_difference = self.noise_max_abs_difference.max(differences.noise_max);
    }

    /// Counts `codes[bits]` rows of each outcome code, and their score
    /// differences.
    fn add_counts(&mut self, codes: &[u32; OUTCOMES], differences: &Differences) {
        for (bits, &k) in codes.iter().enumerate().filter(|(_, &k)| k > 0) {
            self.count(bits as u8, k as u64);
        }
        self.add_differences(differences);
    }

    /// Counts a block's rows.
    #[inline(always)]
    fn add_block(&mut self, rows: &Outcomes) {
        let mut codes = [[0u32; OUTCOMES]; COPIES];
        let mut differences = Differences::default();
        for (i, (&bits, &difference)) in rows.bits.iter().zip(&rows.difference).enumerate() {
            codes[i % COPIES][bits as usize] += 1;
            differences.add_difference(difference);
        }
        for &noise in &rows.noise {
            differences.add_noise(noise);
        }
        self.add_counts(&summed(&codes), &differences);
    }

    /// Counts one row.
    fn add_row(&mut self, row: &RowOutcome) {
        self.count(row.bits, 1);
        let mut differences = Differences::default();
        differences.add(row);
        self.add_differences(&differences);
    }

    /// A labelled row's squared errors (regression).
    fn add_squared_errors(&mut self, primary: f64, candidate: f64) {
        self.labelled += 1;
        self.primary_se.push(primary);
        self.candidate_se.push(candidate);
        self.se_difference.push(candidate - primary);
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
    pairs: Pairs,
    /// Scored rows seen.
    pub seen: u64,
    state: u64,
}

/// (primary, candidate) of each sampled row, side by side: past the
/// sample's size a replacement lands anywhere in it, and one cache miss a
/// row is half of what two arrays cost (a third of comparing a 4M-row
/// log). Held as float32 while every score is one (a model's are), which
/// halves the fresh memory a long replay touches (about 1 ms a MB on a
/// virtual machine); the first score that is not one widens the sample.
#[derive(Debug, Clone)]
enum Pairs {
    Narrow(Vec<[f32; 2]>),
    Wide(Vec<[f64; 2]>),
}

impl Default for Pairs {
    fn default() -> Self {
        Pairs::Narrow(Vec::new())
    }
}

impl ScoreSample {
    /// Makes room for the rows a log is known to hold (at most the
    /// sample's size) at once: grown row by row, the sample would be
    /// copied each time it doubles, each copy into fresh memory.
    pub fn expect_rows(&mut self, rows: usize) {
        let more = rows.min(SCORE_SAMPLE).saturating_sub(self.len());
        match &mut self.pairs {
            Pairs::Narrow(pairs) => {
                pairs.reserve_exact(more);
                crate::runtime::ask_for_huge_pages(pairs.spare_capacity_mut());
            }
            Pairs::Wide(pairs) => {
                pairs.reserve_exact(more);
                crate::runtime::ask_for_huge_pages(pairs.spare_capacity_mut());
            }
        }
    }

    /// Adds the rows where both scores are finite, in order.
    #[inline(always)]
    fn add_rows(&mut self, primary: &[f64], candidate: &[f64]) {
        // The usual batch at once: every row scored, float32 scores, room
        // for all of them (checked in one pass without a branch a row).
        if let Pairs::Narrow(pairs) = &mut self.pairs {
            let fits = primary.len() <= SCORE_SAMPLE - pairs.len();
            let narrow = |v: f64| v.is_finite() && f64::from(v as f32) == v;
            let all_narrow = primary
                .iter()
                .zip(candidate)
                .fold(true, |all, (&p, &c)| all & narrow(p) & narrow(c));
            if fits && all_narrow {
                let rows = primary.iter().zip(candidate);
                pairs.extend(rows.map(|(&p, &c)| [p as f32, c as f32]));
                self.seen += primary.len() as u64;
                return;
            }
        }
        for (&p, &c) in primary.iter().zip(candidate) {
            if p.is_finite() && c.is_finite() {
                self.add(p, c);
            }
        }
    }

    fn add(&mut self, primary: f64, candidate: f64) {
        self.seen += 1;
        // Where the row goes: at the end while the sample is not full,
        // else (reservoir sampling) in place of a row or nowhere.
        let place = if self.len() < SCORE_SAMPLE {
            None
        } else {
            // xorshift64*: a fixed seed keeps reports reproducible.
            if self.state == 0 {
                self.state = 0x9E37_79B9_7F4A_7C15;
            }
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            let r = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            // r scaled to 0..seen by a multiplication, not a division (a
            // 64-bit division per row was a seventh of comparing a long
            // log).
            let j = ((r as u128 * self.seen as u128) >> 64) as usize;
            if j >= SCORE_SAMPLE {
                return;
            }
            Some(j)
        };
        if let Pairs::Narrow(pairs) = &mut self.pairs {
            let pair = [primary as f32, candidate as f32];
            if pair[0] as f64 == primary && pair[1] as f64 == candidate {
                put(pairs, place, pair);
                return;
            }
            let wide = pairs.iter().map(|p| p.map(f64::from));
            let mut widened = Vec::with_capacity(pairs.capacity());
            widened.extend(wide);
            self.pairs = Pairs::Wide(widened);
        }
        if let Pairs::Wide(pairs) = &mut self.pairs {
            put(pairs, place, [primary, candidate]);
        }
    }

    /// Rows in the sample.
    pub fn len(&self) -> usize {
        match &self.pairs {
            Pairs::Narrow(pairs) => pairs.len(),
            Pairs::Wide(pairs) => pairs.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The primary's and the candidate's sampled scores, as runs, made at
    /// once on two threads.
    pub fn runs(&self) -> (Runs, Runs) {
        match &self.pairs {
            Pairs::Narrow(pairs) => rayon::join(
                || Runs::from_read_values(pairs.iter().map(|p| f64::from(p[0]))),
                || Runs::from_read_values(pairs.iter().map(|p| f64::from(p[1]))),
            ),
            Pairs::Wide(pairs) => rayon::join(
                || Runs::from_read_values(pairs.iter().map(|p| p[0])),
                || Runs::from_read_values(pairs.iter().map(|p| p[1])),
            ),
        }
    }

    pub fn is_complete(&self) -> bool {
        self.seen as usize == self.len()
    }
}

/// Puts a row's pair at the end of the sample, or in place of row `j`.
fn put<T>(pairs: &mut Vec<T>, place: Option<usize>, pair: T) {
    match place {
        None => pairs.push(pair),
        Some(j) => pairs[j] = pair,
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
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512bw") && has!("avx512vl") {
                // SAFETY: AVX-512 F, BW and VL are present (checked above).
                return unsafe { self.add_avx512(batch) };
            }
            if has!("avx2") {
                // SAFETY: AVX2 is present (checked above).
                return unsafe { self.add_avx2(batch) };
            }
        }
        self.add_batch(batch)
    }

    /// `add_batch` compiled for AVX-512: a row's 64-bit compares and its
    /// outcome code packed into a byte take a few instructions there, a
    /// dozen with the baseline's SSE2.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VL.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn add_avx512(&mut self, batch: &Paired) {
        self.add_batch(batch)
    }

    /// `add_batch` compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn add_avx2(&mut self, batch: &Paired) {
        self.add_batch(batch)
    }

    /// Counts a batch; inlined in each of `add`'s builds, with the passes
    /// it makes over the rows.
    #[inline(always)]
    fn add_batch(&mut self, batch: &Paired) {
        let n = batch.primary.scores.len();
        // The largest slice code, by a fold LLVM vectorizes (`max()`'s
        // compare and move a row was a sixth of this function).
        if let Some(slices) = batch.slices.filter(|s| !s.is_empty()) {
            let top = slices.iter().fold(0, |top, &s| top.max(s));
            if top as usize >= self.slices.len() {
                self.slices.resize(top as usize + 1, Tally::default());
            }
        }
        // Block by block, so that the outcomes are counted while in cache.
        let mut rows = Outcomes::default();
        for first in (0..n).step_by(BLOCK) {
            let last = (first + BLOCK).min(n);
            rows.work_out(self.task, batch, first..last);
            match batch.slices {
                Some(slices) if self.slices.len() * OUTCOMES <= (last - first) * 4 => {
                    self.add_to_slices_and_overall(&rows, &slices[first..last]);
                }
                Some(slices) => {
                    self.overall.add_block(&rows);
                    for (row, &s) in rows.iter().zip(&slices[first..last]) {
                        self.slices[s as usize].add_row(&row);
                    }
                }
                None => self.overall.add_block(&rows),
            }
        }
        if let (Task::Regression, Labels::Values(labels)) = (self.task, batch.labels) {
            for (i, &y) in labels.iter().enumerate().take(n) {
                let (ps, cs) = (batch.primary.scores[i], batch.candidate.scores[i]);
                if y.is_finite() && ps.is_finite() && cs.is_finite() {
                    let (ep, ec) = ((ps - y) * (ps - y), (cs - y) * (cs - y));
                    self.overall.add_squared_errors(ep, ec);
                    if let Some(slices) = batch.slices {
                        self.slices[slices[i] as usize].add_squared_errors(ep, ec);
                    }
                }
            }
        }
        self.scores
            .add_rows(batch.primary.scores, batch.candidate.scores);
    }

    /// Counts a block's rows into their slices' tallies and the overall
    /// one, in one pass: a histogram of outcome codes per slice (the
    /// overall one is their sum), and the score differences of each slice
    /// and of all rows, in the rows' order.
    #[inline(always)]
    fn add_to_slices_and_overall(&mut self, rows: &Outcomes, slices: &[u32]) {
        let count = self.slices.len();
        let mut codes = vec![[0u32; OUTCOMES]; count * COPIES];
        let mut differences = vec![Differences::default(); count];
        let mut overall = Differences::default();
        let columns = rows.bits.iter().zip(&rows.difference).zip(slices);
        for (i, ((&bits, &difference), &s)) in columns.enumerate() {
            codes[s as usize * COPIES + i % COPIES][bits as usize] += 1;
            differences[s as usize].add_difference(difference);
            overall.add_difference(difference);
        }
        for (&noise, &s) in rows.noise.iter().zip(slices) {
            differences[s as usize].add_noise(noise);
            overall.add_noise(noise);
        }
        self.overall.add_counts(&summed(&codes), &overall);
        let slices = codes.chunks_exact(COPIES).zip(&differences);
        for (tally, (copies, differences)) in self.slices.iter_mut().zip(slices) {
            tally.add_counts(&summed(copies), differences);
        }
    }
}

/// A block's rows' outcomes, column by column: each is worked out in a
/// plain pass over the batch's answers, the batch's kind (classes, a noise
/// run, labels) decided once a pass instead of once a row.
#[derive(Default)]
struct Outcomes {
    bits: Vec<u8>,
    difference: Vec<f64>,
    noise: Vec<f64>,
}

impl Outcomes {
    /// The outcomes of the batch's rows `rows`, without branches on the
    /// rows' values.
    #[inline(always)]
    fn work_out(&mut self, task: Task, batch: &Paired, rows: std::ops::Range<usize>) {
        let (primary, candidate) = (batch.primary, batch.candidate);
        let (ps, cs) = (
            &primary.scores[rows.clone()],
            &candidate.scores[rows.clone()],
        );
        let n = ps.len();
        self.bits.clear();
        self.bits.resize(n, 0);
        self.difference.clear();
        self.difference.resize(n, 0.0);
        self.noise.clear();
        // A replay's usual batch (classes, no noise run): one pass.
        if task == Task::Classification && batch.noise.is_none() {
            let classes = [
                &primary.classes[rows.clone()],
                &candidate.classes[rows.clone()],
            ];
            let columns = Columns {
                scores: [ps, cs],
                classes,
            };
            match batch.labels {
                Labels::Classes(labels) => {
                    let labels = (&labels.values[rows], labels.missing);
                    return classify_rows::<true>(&columns, labels, self);
                }
                Labels::None => return classify_rows::<false>(&columns, (&[], 0), self),
                Labels::Values(_) => {}
            }
        }
        // Without a noise run a row's score changed where it moved at all
        // (the noise column is then left empty: it would be all zeros).
        let without_noise = batch.noise.is_none();
        for (((bits, difference), p), c) in self
            .bits
            .iter_mut()
            .zip(&mut self.difference)
            .zip(ps)
            .zip(cs)
        {
            // `&`, not `&&`, and a select: no branch a row.
            let scored = p.is_finite() & c.is_finite();
            let d = if scored { (c - p).abs() } else { 0.0 };
            *difference = d;
            let changed = without_noise & (d > 0.0);
            *bits = (RowOutcome::SCORED * scored as u8) | (RowOutcome::CHANGED * changed as u8);
        }
        if let Some(second) = batch.noise {
            let again = &second.scores[rows.clone()];
            let noise = self.bits.iter().zip(ps).zip(again).map(|((bits, p), q)| {
                match bits & RowOutcome::SCORED != 0 && q.is_finite() {
                    true => (q - p).abs(),
                    false => 0.0,
                }
            });
            self.noise.extend(noise);
            let moved = self.difference.iter().zip(&self.noise);
            for (bits, (difference, noise)) in self.bits.iter_mut().zip(moved) {
                let scored = *bits & RowOutcome::SCORED != 0;
                *bits |= RowOutcome::CHANGED * (scored && difference > noise) as u8;
            }
        }
        if task != Task::Classification {
            return;
        }
        let (p, c) = (
            &primary.classes[rows.clone()],
            &candidate.classes[rows.clone()],
        );
        for ((bits, p), c) in self.bits.iter_mut().zip(p).zip(c) {
            *bits |= RowOutcome::FLIP * (p != c) as u8;
        }
        if let Some(second) = batch.noise {
            for ((bits, again), p) in self
                .bits
                .iter_mut()
                .zip(&second.classes[rows.clone()])
                .zip(p)
            {
                let disagrees = again != p;
                *bits |= RowOutcome::NOISE_FLIP * disagrees as u8;
                *bits |= RowOutcome::NOISE_AGREES * !disagrees as u8;
            }
        }
        if let Labels::Classes(labels) = batch.labels {
            let missing = labels.missing;
            let rows = self.bits.iter_mut().zip(&labels.values[rows]).zip(p).zip(c);
            for (((bits, &y), &p), &c) in rows {
                let known = (y != missing) as u8;
                *bits |= (RowOutcome::LABELLED * known)
                    | (RowOutcome::PRIMARY_RIGHT * (known & (p == y) as u8))
                    | (RowOutcome::CANDIDATE_RIGHT * (known & (c == y) as u8));
            }
        }
    }

    /// Each row's outcome, in order.
    fn iter(&self) -> impl Iterator<Item = RowOutcome> + '_ {
        // No noise column without a noise run: no row moved by noise.
        let noise = self.noise.iter().copied().chain(std::iter::repeat(0.0));
        let columns = self.bits.iter().zip(&self.difference).zip(noise);
        columns.map(|((&bits, &difference), noise)| RowOutcome {
            bits,
            difference,
            noise,
        })
    }
}

/// A block's answers: scores and classes, primary's then candidate's.
struct Columns<'a> {
    scores: [&'a [f64]; 2],
    classes: [&'a [i64]; 2],
}

/// Each row's outcome code and score difference, without a branch on the
/// rows' values; `LABELLED`: `labels` holds a label (or `missing`) a row.
#[inline(always)]
fn classify_rows<const LABELLED: bool>(
    columns: &Columns,
    (labels, missing): (&[i64], i64),
    out: &mut Outcomes,
) {
    let n = out.bits.len();
    let (bits, difference) = (&mut out.bits[..n], &mut out.difference[..n]);
    let [ps, cs] = columns.scores.map(|s| &s[..n]);
    let [pc, cc] = columns.classes.map(|c| &c[..n]);
    let labels = if LABELLED { &labels[..n] } else { &[][..] };
    for i in 0..n {
        let (p, c) = (ps[i], cs[i]);
        // `&`, not `&&`, and a select: no branch a row.
        let scored = p.is_finite() & c.is_finite();
        let d = if scored { (c - p).abs() } else { 0.0 };
        difference[i] = d;
        let (pi, ci) = (pc[i], cc[i]);
        let mut code = (RowOutcome::SCORED * scored as u8)
            | (RowOutcome::CHANGED * (d > 0.0) as u8)
            | (RowOutcome::FLIP * (pi != ci) as u8);
        if LABELLED {
            let y = labels[i];
            let known = (y != missing) as u8;
            code |= (RowOutcome::LABELLED * known)
                | (RowOutcome::PRIMARY_RIGHT * (known & (pi == y) as u8))
                | (RowOutcome::CANDIDATE_RIGHT * (known & (ci == y) as u8));
        }
        bits[i] = code;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_label_is_a_value_no_label_holds() {
        assert_eq!(missing_label([1, -3, i64::MIN].into_iter()), i64::MAX);
        assert_eq!(missing_label([i64::MAX, 5].into_iter()), -1);
        assert_eq!(missing_label([i64::MAX, -1, -2, -4, -2].into_iter()), -3);
        assert_eq!(missing_label([i64::MAX, -3, -1, -2].into_iter()), -4);
        // A label of i64::MAX is a class like any other.
        let values = [i64::MAX, 0, i64::MAX, 0];
        let missing = missing_label(values.into_iter().take(3));
        let values = [i64::MAX, 0, i64::MAX, missing];
        let mut cmp = Comparison::new(Task::Classification, false);
        cmp.add(&Paired {
            primary: Answers {
                classes: &[i64::MAX, 0, 0, missing],
                scores: &[0.9, 0.2, 0.4, 0.8],
            },
            candidate: Answers {
                classes: &[i64::MAX, 1, i64::MAX, 1],
                scores: &[0.9, 0.7, 0.9, 0.7],
            },
            noise: None,
            labels: Labels::Classes(ClassLabels {
                values: &values,
                missing,
            }),
            slices: None,
        });
        let all = &cmp.overall;
        assert_eq!(
            (all.labelled, all.primary_hits, all.candidate_hits),
            (3, 2, 2)
        );
    }

    /// A long batch (counted block by block, in copies of the outcome
    /// histogram, a few slices at once) counts what the same rows count
    /// one batch a row (each row on its own), with and without a noise
    /// run: the same counts and largest differences; the sums, added up
    /// in another grouping, to rounding.
    #[test]
    fn a_long_batch_counts_what_its_rows_count_one_by_one() {
        let n = 5000;
        let mut state = 7u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let score = |r: u64| match r % 50 {
            0 => f64::NAN,
            _ => (r % 1000) as f32 as f64 / 999.0,
        };
        let ps: Vec<f64> = (0..n).map(|_| score(next())).collect();
        let cs: Vec<f64> = (0..n).map(|_| score(next())).collect();
        let qs: Vec<f64> = (0..n).map(|_| score(next())).collect();
        let class = |r: u64| (r % 3) as i64;
        let (pc, cc, qc): (Vec<i64>, Vec<i64>, Vec<i64>) = (
            (0..n).map(|_| class(next())).collect(),
            (0..n).map(|_| class(next())).collect(),
            (0..n).map(|_| class(next())).collect(),
        );
        let labels: Vec<i64> = (0..n).map(|_| class(next())).collect();
        let slices: Vec<u32> = (0..n).map(|_| (next() % 5) as u32).collect();
        for with_noise in [false, true] {
            let paired = |rows: std::ops::Range<usize>| Paired {
                primary: Answers {
                    classes: &pc[rows.clone()],
                    scores: &ps[rows.clone()],
                },
                candidate: Answers {
                    classes: &cc[rows.clone()],
                    scores: &cs[rows.clone()],
                },
                noise: with_noise.then(|| Answers {
                    classes: &qc[rows.clone()],
                    scores: &qs[rows.clone()],
                }),
                labels: Labels::Classes(ClassLabels {
                    values: &labels[rows.clone()],
                    missing: 2,
                }),
                slices: Some(&slices[rows]),
            };
            let mut whole = Comparison::new(Task::Classification, with_noise);
            whole.add(&paired(0..n));
            let mut by_row = Comparison::new(Task::Classification, with_noise);
            for i in 0..n {
                by_row.add(&paired(i..i + 1));
            }
            let tallies = |c: &Comparison| {
                let mut all = vec![c.overall.clone()];
                all.extend(c.slices.iter().cloned());
                all
            };
            let (whole, by_row) = (tallies(&whole), tallies(&by_row));
            assert_eq!(whole.len(), 6);
            for (mut a, mut b) in whole.into_iter().zip(by_row) {
                let (x, y) = (a.abs_difference_sum, b.abs_difference_sum);
                assert!((x - y).abs() <= 1e-12 * y && y > 0.0, "{x} against {y}");
                (a.abs_difference_sum, b.abs_difference_sum) = (0.0, 0.0);
                assert_eq!(format!("{a:?}"), format!("{b:?}"));
                assert!(a.flips > 0 && a.scored < a.rows && a.labelled < a.rows);
                assert_eq!(a.noise_flips > 0, with_noise);
                assert_eq!(a.noise_max_abs_difference > 0.0, with_noise);
            }
        }
    }

    #[test]
    fn flips_right_and_wrong_pairs_are_counted_per_slice() {
        let mut cmp = Comparison::new(Task::Classification, false);
        let labels = [1, 0, 1, i64::MAX];
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
            labels: Labels::Classes(ClassLabels {
                values: &labels,
                missing: i64::MAX,
            }),
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

    /// A tally's counters and score differences, for comparing tallies.
    fn counters(t: &Tally) -> ([u64; 12], [f64; 3]) {
        let counts = [
            t.rows,
            t.flips,
            t.noise_flips,
            t.flips_beyond_noise,
            t.labelled,
            t.primary_hits,
            t.candidate_hits,
            t.negative_flips,
            t.positive_flips,
            t.scored,
            t.scores_changed,
            0,
        ];
        let differences = [
            t.abs_difference_sum,
            t.max_abs_difference,
            t.noise_max_abs_difference,
        ];
        (counts, differences)
    }

    /// A fixed pseudo-random sequence (an LCG seeded with `seed`): each
    /// call gives a number below its argument.
    fn below(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut state = seed;
        move |m| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % m
        }
    }

    #[test]
    fn slices_counted_together_or_alone_give_the_same_tallies() {
        // Rows of every outcome (flips, labels known or not, unscored rows,
        // a noise run or not) in few slices (a histogram per slice) and in
        // many (row by row): the overall tally is the one counted without
        // slices, bit for bit, and each slice's is its rows' counted alone.
        let n = 5000;
        let mut next = below(7);
        let classes = |next: &mut dyn FnMut(u64) -> u64| -> Vec<i64> {
            (0..n).map(|_| next(2) as i64).collect()
        };
        let scores = |next: &mut dyn FnMut(u64) -> u64| -> Vec<f64> {
            (0..n)
                .map(|_| match next(40) {
                    0 => f64::NAN,
                    k => k as f64 / 40.0,
                })
                .collect()
        };
        let (pc, cc, qc) = (classes(&mut next), classes(&mut next), classes(&mut next));
        let (ps, cs, qs) = (scores(&mut next), scores(&mut next), scores(&mut next));
        let labels: Vec<i64> = (0..n)
            .map(|_| if next(5) > 0 { next(2) as i64 } else { -7 })
            .collect();
        for slice_count in [3u64, 3000] {
            let slices: Vec<u32> = (0..n).map(|_| next(slice_count) as u32).collect();
            for with_noise in [false, true] {
                let batch = |rows: &[usize]| {
                    let pick_i = |v: &[i64]| rows.iter().map(|&i| v[i]).collect::<Vec<_>>();
                    let pick_f = |v: &[f64]| rows.iter().map(|&i| v[i]).collect::<Vec<_>>();
                    let pick_l = rows.iter().map(|&i| labels[i]).collect::<Vec<_>>();
                    (
                        [pick_i(&pc), pick_i(&cc), pick_i(&qc)],
                        [pick_f(&ps), pick_f(&cs), pick_f(&qs)],
                        pick_l,
                    )
                };
                let count = |rows: &[usize], sliced: bool| {
                    let (c, s, l) = batch(rows);
                    let rows_slices: Vec<u32> = rows.iter().map(|&i| slices[i]).collect();
                    let mut cmp = Comparison::new(Task::Classification, with_noise);
                    cmp.add(&Paired {
                        primary: Answers {
                            classes: &c[0],
                            scores: &s[0],
                        },
                        candidate: Answers {
                            classes: &c[1],
                            scores: &s[1],
                        },
                        noise: with_noise.then_some(Answers {
                            classes: &c[2],
                            scores: &s[2],
                        }),
                        labels: Labels::Classes(ClassLabels {
                            values: &l,
                            missing: -7,
                        }),
                        slices: sliced.then_some(&rows_slices[..]),
                    });
                    cmp
                };
                let all: Vec<usize> = (0..n).collect();
                let (sliced, plain) = (count(&all, true), count(&all, false));
                let overall = counters(&sliced.overall);
                assert_eq!(overall, counters(&plain.overall));
                assert!(overall.0[1] > 0 && overall.0[4] > 0 && overall.0[9] < n as u64);
                assert_eq!(overall.0[2] > 0, with_noise);
                for s in [0, 1, slice_count as usize - 1] {
                    let rows: Vec<usize> = all
                        .iter()
                        .copied()
                        .filter(|&i| slices[i] == s as u32)
                        .collect();
                    let alone = count(&rows, false);
                    assert_eq!(counters(&sliced.slices[s]).0, counters(&alone.overall).0);
                    // Summed block by block: the same to rounding.
                    let (a, b) = (counters(&sliced.slices[s]).1, counters(&alone.overall).1);
                    for (a, b) in a.iter().zip(&b) {
                        assert!(
                            (a - b).abs() <= 1e-12 * b.abs(),
                            "slice {s} of {slice_count}"
                        );
                    }
                }
            }
        }
    }

    /// A classification without a noise run (one pass over a block, built
    /// for each instruction set) counts what each row's answers say, row
    /// by row from the definitions, in every build: scores NaN, infinite
    /// or float64 (the sample widens), labels missing or none at all.
    #[test]
    fn every_build_counts_what_the_rows_say() {
        let n = 3000;
        let mut next = below(11);
        let score = |next: &mut dyn FnMut(u64) -> u64| match next(60) {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => 0.1,
            k => k as f32 as f64 / 60.0,
        };
        let ps: Vec<f64> = (0..n).map(|_| score(&mut next)).collect();
        let cs: Vec<f64> = (0..n).map(|_| score(&mut next)).collect();
        let pc: Vec<i64> = (0..n).map(|_| next(3) as i64).collect();
        let cc: Vec<i64> = (0..n).map(|_| next(3) as i64).collect();
        let ys: Vec<i64> = (0..n)
            .map(|_| if next(6) > 0 { next(3) as i64 } else { 9 })
            .collect();
        let slices: Vec<u32> = (0..n).map(|_| next(4) as u32).collect();
        for labelled in [true, false] {
            let mut expected = vec![Tally::default(); 5];
            for i in 0..n {
                for t in [0, slices[i] as usize + 1] {
                    let t = &mut expected[t];
                    let scored = ps[i].is_finite() && cs[i].is_finite();
                    let d = if scored { (cs[i] - ps[i]).abs() } else { 0.0 };
                    t.rows += 1;
                    t.flips += (pc[i] != cc[i]) as u64;
                    t.scored += scored as u64;
                    t.scores_changed += (d > 0.0) as u64;
                    t.abs_difference_sum += d;
                    t.max_abs_difference = t.max_abs_difference.max(d);
                    if labelled && ys[i] != 9 {
                        let (p, c) = (pc[i] == ys[i], cc[i] == ys[i]);
                        t.labelled += 1;
                        t.primary_hits += p as u64;
                        t.candidate_hits += c as u64;
                        t.negative_flips += (p && !c) as u64;
                        t.positive_flips += (!p && c) as u64;
                    }
                }
            }
            let paired = Paired {
                primary: Answers {
                    classes: &pc,
                    scores: &ps,
                },
                candidate: Answers {
                    classes: &cc,
                    scores: &cs,
                },
                noise: None,
                labels: match labelled {
                    true => Labels::Classes(ClassLabels {
                        values: &ys,
                        missing: 9,
                    }),
                    false => Labels::None,
                },
                slices: Some(&slices),
            };
            // The build `add` picks, the baseline's, and each build the
            // machine can run.
            let mut builds = vec![Comparison::new(Task::Classification, false); 2];
            builds[0].add(&paired);
            builds[1].add_batch(&paired);
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                if has!("avx2") {
                    let mut avx2 = Comparison::new(Task::Classification, false);
                    // SAFETY: AVX2 is present (checked above).
                    unsafe { avx2.add_avx2(&paired) };
                    builds.push(avx2);
                }
                if has!("avx512f") && has!("avx512bw") && has!("avx512vl") {
                    let mut avx512 = Comparison::new(Task::Classification, false);
                    // SAFETY: AVX-512 F, BW and VL are present (checked above).
                    unsafe { avx512.add_avx512(&paired) };
                    builds.push(avx512);
                }
            }
            for cmp in &builds {
                let tallies = std::iter::once(&cmp.overall).chain(&cmp.slices);
                for (got, want) in tallies.zip(&expected) {
                    assert_eq!(counters(got), counters(want));
                }
                let scored = (0..n).filter(|&i| ps[i].is_finite() && cs[i].is_finite());
                let want: Vec<f64> = scored.map(|i| ps[i]).collect();
                assert_eq!(sampled(&cmp.scores)[0], want);
            }
        }
    }

    /// Each side's sampled scores, in the sample's order.
    fn sampled(sample: &ScoreSample) -> [Vec<f64>; 2] {
        match &sample.pairs {
            Pairs::Narrow(pairs) => [0, 1].map(|i| pairs.iter().map(|p| p[i] as f64).collect()),
            Pairs::Wide(pairs) => [0, 1].map(|i| pairs.iter().map(|p| p[i]).collect()),
        }
    }

    #[test]
    fn the_score_sample_stays_bounded_and_uniform_in_size() {
        let mut sample = ScoreSample::default();
        for i in 0..(SCORE_SAMPLE + 1000) {
            sample.add(i as f64, i as f64);
        }
        assert_eq!(sample.len(), SCORE_SAMPLE);
        assert!(!sample.is_complete());
        let [primary, candidate] = sampled(&sample);
        assert!(primary.iter().any(|&v| v >= SCORE_SAMPLE as f64));
        // Each row's two scores stay together when it replaces another.
        assert_eq!(primary, candidate);
    }

    #[test]
    fn float32_scores_are_sampled_as_float64_ones_are() {
        // The same rows, as float32 values (held narrow) and with a part
        // below float32's precision (held wide from the first row): the
        // same rows are kept.
        let rows = SCORE_SAMPLE + 5000;
        let (mut narrow, mut wide) = (ScoreSample::default(), ScoreSample::default());
        narrow.expect_rows(rows);
        for i in 0..rows {
            let v = i as f64;
            narrow.add(v, -v);
            wide.add(v + 0.5f64.powi(30), -v);
        }
        assert!(matches!(narrow.pairs, Pairs::Narrow(_)));
        assert!(matches!(wide.pairs, Pairs::Wide(_)));
        let ([np, nc], [wp, wc]) = (sampled(&narrow), sampled(&wide));
        assert_eq!(wp.iter().map(|v| v.floor()).collect::<Vec<_>>(), np);
        assert_eq!(nc, wc);
        assert_eq!((narrow.seen, narrow.len()), (rows as u64, SCORE_SAMPLE));
    }

    #[test]
    fn batches_of_rows_are_sampled_as_their_rows_one_by_one() {
        // Past the sample's size, with a row without a score, and a batch
        // with a score float32 cannot hold (after which the sample is
        // wide).
        let rows = SCORE_SAMPLE + 9000;
        let primary: Vec<f64> = (0..rows).map(|i| (i % 1000) as f64 / 8.0).collect();
        let mut candidate: Vec<f64> = primary.iter().map(|v| 1.0 - v).collect();
        candidate[17] = f64::NAN;
        candidate[SCORE_SAMPLE + 5000] = 0.1;
        let (mut batched, mut single) = (ScoreSample::default(), ScoreSample::default());
        for (p, c) in primary.chunks(4096).zip(candidate.chunks(4096)) {
            batched.add_rows(p, c);
        }
        for (&p, &c) in primary.iter().zip(&candidate) {
            if p.is_finite() && c.is_finite() {
                single.add(p, c);
            }
        }
        assert_eq!(
            (batched.seen, single.seen),
            (rows as u64 - 1, rows as u64 - 1)
        );
        assert!(matches!(batched.pairs, Pairs::Wide(_)));
        assert_eq!(sampled(&batched), sampled(&single));
    }

    #[test]
    fn a_score_float32_cannot_hold_widens_the_sample_and_keeps_every_row() {
        let mut sample = ScoreSample::default();
        let scores = [0.25, 0.5, 0.1, 0.75, 1.0 / 3.0];
        for (i, &p) in scores.iter().enumerate() {
            sample.add(p, i as f64);
        }
        // 0.1 is the first that float32 rounds: the rows before it keep
        // their values, widened.
        assert!(matches!(sample.pairs, Pairs::Wide(_)));
        assert_eq!(
            sampled(&sample),
            [scores.to_vec(), vec![0.0, 1.0, 2.0, 3.0, 4.0]]
        );
        let (primary, _) = sample.runs();
        assert_eq!(primary, Runs::from_values(scores.to_vec()));
    }
}
