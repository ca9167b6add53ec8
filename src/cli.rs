//! Command-line definitions (clap derive) and their conversion into each
//! command's `Options`. No analysis happens here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::drift::{FailOn, StatTest, Window};
use crate::error::{Error, Result};

pub const EXIT_CODES: &str = "\
Exit codes:
  0  every gate passed
  1  a gate failed (drift found, regression, budget exceeded)
  2  bad usage or bad input (the message names the file, column or flag)";

#[derive(Debug, Parser)]
#[command(
    name = "mlctl",
    version,
    about = "Keep machine-learning models honest in production",
    long_about = "Keep machine-learning models honest in production: one binary for the checks a CI job runs on a model and its data.",
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    /// Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv).
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,

    /// No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Settings file (default: ./mlctl.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
    Html,
    Csv,
}

// Parsed once per run: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Detect data and prediction drift between a baseline and current data
    Drift(DriftArgs),
    /// Profile a training set once (or merge partition profiles) for fast drift checks
    Baseline(BaselineArgs),
    /// Score a table with an ONNX model and write the predictions as parquet
    Predict(PredictArgs),
    /// Show an ONNX model's inputs, outputs, operators and weights, and whether mlctl runs it
    Inspect(InspectArgs),
    /// Quantize an ONNX model's weights to int8 and measure what it cost
    Quantize(QuantizeArgs),
    /// Measure models' latency and throughput (percentiles, comparison, CI gates)
    Bench(BenchArgs),
    /// Feature store: point-in-time training sets, materialization to an online store, online reads
    Features(FeaturesArgs),
    /// Compare a candidate model with the live one on the same requests (replayed or logged) and judge it
    #[command(name = "shadow-compare")]
    ShadowCompare(ShadowCompareArgs),
    /// Print shell completions (bash, zsh, fish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    #[command(name = "manpage")]
    ManPage,
}

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    #[command(subcommand)]
    pub action: FeaturesAction,
}

#[derive(Debug, Subcommand)]
pub enum FeaturesAction {
    /// Compute every entity's latest values as of END and write them to the online store
    #[command(after_help = EXIT_CODES)]
    Materialize {
        /// Only these views (comma-separated; default: all)
        #[arg(long, value_delimiter = ',', value_name = "VIEWS")]
        views: Vec<String>,
        /// Only entities with events since START (2013-01-08, 2013-01-08 06:00:00 or RFC 3339)
        #[arg(long, value_name = "TIME")]
        start: Option<String>,
        /// Values as of END [default: now; never in the future]
        #[arg(long, value_name = "TIME")]
        end: Option<String>,
        /// Continue from each view's watermark (the END of its last materialization)
        #[arg(long)]
        incremental: bool,
        /// Write the report to FILE (atomically) instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Build a point-in-time correct training set for entity rows (keys + timestamp)
    #[command(after_help = EXIT_CODES)]
    Historical {
        /// Entity rows: parquet or CSV with the join keys and a timestamp column
        #[arg(long, value_name = "FILE")]
        entities: PathBuf,
        /// Features: view:feature or view (all its features), comma-separated
        #[arg(long, value_delimiter = ',', value_name = "REFS", required = true)]
        features: Vec<String>,
        /// The entity rows' timestamp column
        #[arg(long, value_name = "COLUMN", default_value = "event_timestamp")]
        timestamp: String,
        /// The training set to write (parquet: the entity rows, then one column per feature)
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Write the report to FILE (atomically) instead of stdout
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Compare the feature values a service logged with what the offline path computes
    #[command(after_help = EXIT_CODES)]
    Skew {
        /// The serving log: join keys, a timestamp, one column per feature as served
        #[arg(long, value_name = "FILE")]
        log: PathBuf,
        /// Features: view:feature or view, comma-separated (default: every feature with a column in the log)
        #[arg(long, value_delimiter = ',', value_name = "REFS")]
        features: Vec<String>,
        /// The log's timestamp column (the time each value was served)
        #[arg(long, value_name = "COLUMN", default_value = "event_timestamp")]
        timestamp: String,
        /// Numbers within this (absolute, or relative to the larger) count as equal
        #[arg(long, value_name = "X", default_value_t = 1e-6)]
        tolerance: f64,
        /// Exit 1 when a feature's share of mismatching rows exceeds this
        #[arg(long, value_name = "SHARE", default_value_t = 0.0)]
        max_mismatch: f64,
        /// Write the report to FILE (atomically) instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Read an entity's values from the online store (TTL applied on read)
    #[command(after_help = EXIT_CODES)]
    Get {
        /// Join key value, KEY=VALUE (repeat for composite keys)
        #[arg(long, value_name = "KEY=VALUE", required = true)]
        entity: Vec<String>,
        /// Features: view:feature or view, comma-separated (default: every view keyed by the --entity keys)
        #[arg(long, value_delimiter = ',', value_name = "REFS")]
        features: Vec<String>,
        /// Read as of this time for the TTL [default: now]
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Write the report to FILE (atomically) instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct DriftArgs {
    /// Current data: parquet or CSV (a prediction log, a batch of features)
    pub current: PathBuf,

    /// Reference data: parquet, CSV, or a profile from `mlctl baseline`
    #[arg(long, short = 'b', value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Write the report to FILE (atomically) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Test for every column: ks, chisquare, z, psi, jensenshannon, wasserstein, hellinger, kl_div, anderson, cramer_von_mises (default: Evidently's per-column choice)
    #[arg(long, value_name = "TEST")]
    pub stattest: Option<String>,

    /// Test for one column, COLUMN=TEST (repeatable)
    #[arg(long = "column-stattest", value_name = "COLUMN=TEST")]
    pub column_stattest: Vec<String>,

    /// Threshold for every column (p-value for tests, distance for distances; default 0.05 / 0.1)
    #[arg(long, value_name = "X")]
    pub threshold: Option<f64>,

    /// Threshold for one column, COLUMN=X (repeatable)
    #[arg(long = "column-threshold", value_name = "COLUMN=X")]
    pub column_threshold: Vec<String>,

    /// Dataset drift when at least this share of columns drift [default: 0.5]
    #[arg(long, value_name = "SHARE")]
    pub drift_share: Option<f64>,

    /// When to exit 1 [default: drift]
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOnArg>,

    /// Also report each window of the current data: 1d, 6h, 30m, 1w, or 10000rows
    #[arg(long, value_name = "SIZE")]
    pub window: Option<String>,

    /// Timestamp column for --window [default: `timestamp`, else the first datetime column]
    #[arg(long, value_name = "COLUMN")]
    pub timestamp: Option<String>,

    /// Only these columns (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub columns: Vec<String>,

    /// Leave these columns out (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub exclude: Vec<String>,

    /// Treat these columns as categorical (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub categorical: Vec<String>,

    /// Treat these columns as numerical (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub numerical: Vec<String>,

    /// Prediction column [default: prediction]
    #[arg(long, value_name = "COLUMN")]
    pub prediction: Option<String>,

    /// Confidence column [default: confidence]
    #[arg(long, value_name = "COLUMN")]
    pub confidence: Option<String>,

    /// Label column, possibly arriving late (null until known) [default: label]
    #[arg(long, value_name = "COLUMN")]
    pub label: Option<String>,

    /// Distinct values kept exactly per baseline column before summarising [default: 100000]
    #[arg(long, value_name = "N")]
    pub exact_cap: Option<usize>,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct ShadowCompareArgs {
    /// Replay: the live model
    #[arg(long, value_name = "MODEL", requires_all = ["candidate", "inputs"], conflicts_with_all = ["primary_log", "candidate_log"])]
    pub primary: Option<PathBuf>,

    /// Replay: the new model
    #[arg(long, value_name = "MODEL", requires = "primary")]
    pub candidate: Option<PathBuf>,

    /// Replay: the logged requests both models answer (parquet or CSV)
    #[arg(long, value_name = "FILE", requires = "primary")]
    pub inputs: Option<PathBuf>,

    /// Replay: run the primary a second time (in other batches) and count only differences beyond its own
    #[arg(long, requires = "primary")]
    pub baseline_noise: bool,

    /// Logs: the live service's prediction log
    #[arg(long, value_name = "FILE", requires = "candidate_log")]
    pub primary_log: Option<PathBuf>,

    /// Logs: the shadow service's prediction log
    #[arg(long, value_name = "FILE", requires = "primary_log")]
    pub candidate_log: Option<PathBuf>,

    /// Logs: a second log of the live model on the same requests (its noise)
    #[arg(long, value_name = "FILE", requires = "primary_log")]
    pub baseline_noise_log: Option<PathBuf>,

    /// Logs: the column that pairs rows [default: request_id when both logs have it, else row order]
    #[arg(long, value_name = "COLUMN")]
    pub join: Option<String>,

    /// Logs: the prediction column [default: prediction]
    #[arg(long, value_name = "COLUMN")]
    pub prediction: Option<String>,

    /// Logs: the score column [default: confidence, then score, when present]
    #[arg(long, value_name = "COLUMN")]
    pub score: Option<String>,

    /// The label column [default: label, when present]
    #[arg(long, value_name = "COLUMN")]
    pub label: Option<String>,

    /// Compare per slice of these columns (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub slice_by: Vec<String>,

    /// classification or regression [default: read from the outputs]
    #[arg(long, value_parser = ["classification", "regression"])]
    pub task: Option<String>,

    /// Exit 1 when the share of rows whose class changed exceeds this
    #[arg(long, value_name = "SHARE")]
    pub max_flip_rate: Option<f64>,

    /// Exit 1 when the share of labelled rows the primary got right and the candidate wrong exceeds this
    #[arg(long, value_name = "SHARE")]
    pub max_negative_flip_rate: Option<f64>,

    /// Exit 1 when accuracy drops by more than this (absolute, 0.01 = one point)
    #[arg(long, value_name = "SHARE")]
    pub max_accuracy_drop: Option<f64>,

    /// Exit 1 when the RMSE rises by more than this (regression)
    #[arg(long, value_name = "X")]
    pub max_rmse_increase: Option<f64>,

    /// Exit 1 when the candidate is significantly worse in any slice (Holm-corrected)
    #[arg(long)]
    pub fail_on_slice_regression: bool,

    /// Significance level of the tests [default: 0.05]
    #[arg(long, value_name = "P")]
    pub alpha: Option<f64>,

    /// PSI between the score distributions from which the verdict is marginal [default: 0.2]
    #[arg(long, value_name = "X")]
    pub max_psi: Option<f64>,

    /// Slices listed in the report, worst first (every flagged slice is listed) [default: 20]
    #[arg(long, value_name = "N")]
    pub top_slices: Option<usize>,

    /// Replay: feature columns for a single 2-D model input, in order (default: every numeric column)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub columns: Vec<String>,

    /// Replay: columns that are not features (the label, slice columns, prediction and confidence are left out already)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub exclude: Vec<String>,

    /// Replay: rows per model call
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub batch_size: usize,

    /// Replay: cpu, cuda or cuda:N (cuda needs a build with --features cuda)
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,

    /// Replay: threads for the CPU kernels (default: one per core)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Write the report to FILE (atomically) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `shadow-compare` options from its flags and the config's `[shadow]`
/// section (flags win).
pub fn shadow_options(
    args: &ShadowCompareArgs,
    config: &Config,
    show_progress: bool,
) -> Result<crate::shadow::Options> {
    use crate::shadow::{compare::Task, Gates, LogOptions, ReplayOptions, Source};
    let file = &config.shadow;
    let source = match (&args.primary, &args.primary_log) {
        (Some(primary), _) => Source::Replay(ReplayOptions {
            primary: primary.clone(),
            candidate: args.candidate.clone().ok_or_else(|| Error::usage("--primary needs --candidate"))?,
            inputs: args.inputs.clone().ok_or_else(|| Error::usage("--primary needs --inputs"))?,
            columns: args.columns.clone(),
            exclude: args.exclude.clone(),
            batch_size: args.batch_size,
            device: args.device.clone(),
            threads: args.threads,
            baseline_noise: args.baseline_noise,
        }),
        (None, Some(primary_log)) => Source::Logs(LogOptions {
            primary: primary_log.clone(),
            candidate: args
                .candidate_log
                .clone()
                .ok_or_else(|| Error::usage("--primary-log needs --candidate-log"))?,
            noise: args.baseline_noise_log.clone(),
            join: args.join.clone(),
            prediction: args.prediction.clone().unwrap_or_else(|| "prediction".into()),
            score: args.score.clone(),
            partition_rows: crate::shadow::PARTITION_ROWS,
        }),
        (None, None) => {
            return Err(Error::usage(
                "shadow-compare needs --primary MODEL --candidate MODEL --inputs FILE (replay) or --primary-log FILE --candidate-log FILE (logs)",
            ))
        }
    };
    if matches!(source, Source::Replay(_))
        && (args.join.is_some() || args.prediction.is_some() || args.score.is_some())
    {
        return Err(Error::usage(
            "--join, --prediction and --score are for logs (--primary-log); a replay computes the predictions",
        ));
    }
    let task = match args.task.as_deref() {
        Some("regression") => Some(Task::Regression),
        Some(_) => Some(Task::Classification),
        None => None,
    };
    Ok(crate::shadow::Options {
        source,
        label: args.label.clone().or_else(|| file.label.clone()),
        slice_by: if args.slice_by.is_empty() {
            file.slice_by.clone()
        } else {
            args.slice_by.clone()
        },
        task,
        gates: Gates {
            max_flip_rate: args.max_flip_rate.or(file.max_flip_rate),
            max_negative_flip_rate: args.max_negative_flip_rate.or(file.max_negative_flip_rate),
            max_accuracy_drop: args.max_accuracy_drop.or(file.max_accuracy_drop),
            max_rmse_increase: args.max_rmse_increase.or(file.max_rmse_increase),
            fail_on_slice_regression: args.fail_on_slice_regression
                || file.fail_on_slice_regression.unwrap_or(false),
        },
        alpha: args.alpha.or(file.alpha).unwrap_or(0.05),
        max_psi: args.max_psi.or(file.max_psi).unwrap_or(0.2),
        top_slices: args.top_slices.or(file.top_slices).unwrap_or(20),
        show_progress,
    })
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct PredictArgs {
    /// The ONNX model
    pub model: PathBuf,

    /// Rows to score: parquet or CSV
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,

    /// Where to write the predictions (parquet, atomically)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// Feature columns for a single 2-D model input, in order (default: every numeric column)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub columns: Vec<String>,

    /// Columns that are not features (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub exclude: Vec<String>,

    /// Input columns copied into the output, such as ids (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub keep: Vec<String>,

    /// Rows per model call
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub batch_size: usize,

    /// cpu, cuda or cuda:N (cuda needs a build with --features cuda)
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,

    /// Threads for the CPU kernels (default: one per core)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct BenchArgs {
    /// ONNX models to measure (several: compared against the first)
    #[arg(required = true)]
    pub models: Vec<PathBuf>,

    /// single-stream (one request at a time), server (Poisson arrivals, dynamic batcher) or offline (maximum throughput)
    #[arg(long, default_value = "single-stream", value_parser = ["single-stream", "server", "offline"])]
    pub scenario: String,

    /// Server: offered requests per second (Poisson arrivals)
    #[arg(long, value_name = "R")]
    pub qps: Option<f64>,

    /// Server: largest batch the batcher sends
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub max_batch: usize,

    /// Server: longest a request waits for its batch to fill
    #[arg(long, default_value_t = 2.0, value_name = "MS")]
    pub max_delay_ms: f64,

    /// Server: search the highest rate whose p99 stays within this many milliseconds
    #[arg(long, value_name = "P99_MS")]
    pub find_max_qps: Option<f64>,

    /// Also write the JSON report to FILE
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<PathBuf>,

    /// Batch sizes (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "1", value_name = "N,...")]
    pub batch_sizes: Vec<usize>,

    /// Runs before measuring, per model and batch size
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub warmup: usize,

    /// Measured runs per model and batch size [default: 100, or as many as --duration allows]
    #[arg(long, value_name = "N")]
    pub runs: Option<usize>,

    /// Measure each batch size for this long (e.g. 10s, 500ms)
    #[arg(long, value_name = "TIME")]
    pub duration: Option<String>,

    /// Threads for the CPU kernels (default: one per core)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// cpu, cuda or cuda:N (cuda needs a build with --features cuda)
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,

    /// Whole shape of a named input, e.g. input_ids=1,128 (repeatable)
    #[arg(long = "shape", value_name = "NAME=DIMS")]
    pub shapes: Vec<String>,

    /// Length for free dimensions after the first (sequence length)
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub seq_len: usize,

    /// Real rows (parquet, CSV) as inputs instead of generated ones
    #[arg(long, value_name = "FILE")]
    pub inputs: Option<PathBuf>,

    /// Exit 1 when any p99 exceeds this many milliseconds
    #[arg(long, value_name = "MS")]
    pub max_p99_ms: Option<f64>,

    /// Exit 1 when any p50 exceeds this many milliseconds
    #[arg(long, value_name = "MS")]
    pub max_p50_ms: Option<f64>,

    /// Exit 1 when any throughput is below this many rows per second
    #[arg(long, value_name = "ROWS_PER_S")]
    pub min_throughput: Option<f64>,

    /// Write the report to FILE (atomically) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct QuantizeArgs {
    /// The float ONNX model (never modified)
    pub model: PathBuf,

    /// Where to write the int8 model (atomically)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// dynamic: activations quantized at run time; static: with scales calibrated on --calibration
    #[arg(long, default_value = "dynamic", value_parser = ["dynamic", "static"])]
    pub mode: String,

    /// Rows (parquet, CSV) or arrays (.npz) to calibrate activation ranges on (--mode static)
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,

    /// Range method for --mode static: minmax, percentile or entropy
    #[arg(long, default_value = "percentile", value_parser = ["minmax", "percentile", "entropy"], value_name = "METHOD")]
    pub calibrate: String,

    /// Percentile for --calibrate percentile (two-sided)
    #[arg(long, default_value_t = 99.99, value_name = "P")]
    pub percentile: f64,

    /// One scale per weight tensor instead of one per output channel
    #[arg(long)]
    pub per_tensor: bool,

    /// 7-bit weights, for CPUs without VNNI whose 8-bit products can saturate
    #[arg(long)]
    pub reduce_range: bool,

    /// Activation scales: one per row (token, sample; symmetric) or one per tensor (as ONNX Runtime)
    #[arg(long, default_value = "per-row", value_parser = ["per-row", "per-tensor"], value_name = "SCALES")]
    pub activations: String,

    /// Node names or op types to leave in float (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "NODES_OR_OPS")]
    pub exclude: Vec<String>,

    /// Rows (parquet, CSV) or arrays (.npz) to run both models on and compare
    #[arg(long, value_name = "FILE")]
    pub eval: Option<PathBuf>,

    /// Label column of --eval: accuracy (or RMSE) of both models
    #[arg(long, value_name = "COLUMN")]
    pub label: Option<String>,

    /// Columns of --eval and --calibration that are not features (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub eval_exclude: Vec<String>,

    /// Exit 1 when accuracy drops by more than this (absolute; without --label: top-1 disagreement)
    #[arg(long, value_name = "FRACTION")]
    pub max_accuracy_drop: Option<f64>,

    /// Also write the weights as candle's GGUF (block-quantized) to FILE, for Rust serving
    #[arg(long, value_name = "FILE")]
    pub gguf: Option<PathBuf>,

    /// GGUF block type for matrix weights (q8_0, q4_0, q4_1, q5_0, q5_1, q2k..q6k, f16)
    #[arg(long, default_value = "q8_0", value_parser = ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2k", "q3k", "q4k", "q5k", "q6k", "f16"], value_name = "TYPE")]
    pub gguf_type: String,

    /// When --max-accuracy-drop is exceeded, put the most sensitive layers back to float until it holds
    #[arg(long)]
    pub auto: bool,

    /// Rows per model call during --eval
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub batch_size: usize,

    /// Write the report to FILE (atomically) instead of stdout
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct InspectArgs {
    /// The ONNX model
    pub model: PathBuf,

    /// Write the report to FILE (atomically) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOnArg {
    /// the whole current data set drifted
    Drift,
    /// the whole data set or any window drifted
    AnyWindow,
    /// never: report only
    Never,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct BaselineArgs {
    /// Training data (parquet or CSV; several files are partitions of one set), or profiles with --merge
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,

    /// The profile to write (atomically)
    #[arg(short, long, value_name = "FILE", required = true)]
    pub output: PathBuf,

    /// The inputs are profiles to merge
    #[arg(long)]
    pub merge: bool,

    /// Distinct values kept exactly per column before summarising
    #[arg(long, value_name = "N", default_value_t = crate::stats::profile::DEFAULT_EXACT_CAP)]
    pub exact_cap: usize,
}

fn parse_pairs<T>(
    items: &[String],
    flag: &str,
    parse: impl Fn(&str) -> std::result::Result<T, String>,
) -> Result<BTreeMap<String, T>> {
    let mut out = BTreeMap::new();
    for item in items {
        let (col, value) = item
            .split_once('=')
            .ok_or_else(|| Error::usage(format!("{flag} expects COLUMN=VALUE, got '{item}'")))?;
        let value = parse(value.trim()).map_err(|e| Error::usage(format!("{flag} {item}: {e}")))?;
        out.insert(col.trim().to_string(), value);
    }
    Ok(out)
}

fn parse_test(s: &str) -> std::result::Result<StatTest, String> {
    s.parse()
}

fn parse_f64(s: &str) -> std::result::Result<f64, String> {
    s.parse::<f64>()
        .map_err(|_| format!("'{s}' is not a number"))
}

/// Builds the drift options: command-line flags over `[drift]` in the config.
pub fn drift_options(
    args: &DriftArgs,
    config: &Config,
    show_progress: bool,
) -> Result<crate::drift::Options> {
    let file = &config.drift;
    let baseline = args
        .baseline
        .clone()
        .or_else(|| file.baseline.as_ref().map(PathBuf::from))
        .ok_or_else(|| Error::usage("drift needs a baseline: --baseline FILE (or `baseline` under [drift] in mlctl.toml)"))?;
    let mut o = crate::drift::Options::new(args.current.clone(), baseline);
    let stattest = args.stattest.as_ref().or(file.stattest.as_ref());
    o.stattest = stattest
        .map(|s| parse_test(s))
        .transpose()
        .map_err(Error::usage)?;
    for (col, c) in &file.column {
        if let Some(t) = &c.stattest {
            o.column_stattest.insert(
                col.clone(),
                parse_test(t).map_err(|e| Error::usage(format!("[drift.column.{col}] {e}")))?,
            );
        }
        if let Some(t) = c.threshold {
            o.column_threshold.insert(col.clone(), t);
        }
    }
    o.column_stattest.extend(parse_pairs(
        &args.column_stattest,
        "--column-stattest",
        parse_test,
    )?);
    o.column_threshold.extend(parse_pairs(
        &args.column_threshold,
        "--column-threshold",
        parse_f64,
    )?);
    o.threshold = args.threshold.or(file.threshold);
    o.drift_share = args.drift_share.or(file.drift_share).unwrap_or(0.5);
    o.fail_on = match args.fail_on {
        Some(FailOnArg::Drift) => FailOn::Drift,
        Some(FailOnArg::AnyWindow) => FailOn::AnyWindow,
        Some(FailOnArg::Never) => FailOn::Never,
        None => match file.fail_on.as_deref() {
            None | Some("drift") => FailOn::Drift,
            Some("any-window") => FailOn::AnyWindow,
            Some("never") => FailOn::Never,
            Some(other) => {
                return Err(Error::usage(format!(
                    "[drift] fail_on = '{other}': expected drift, any-window or never"
                )))
            }
        },
    };
    o.window = args
        .window
        .as_ref()
        .or(file.window.as_ref())
        .map(|w| w.parse::<Window>())
        .transpose()
        .map_err(Error::usage)?;
    o.timestamp = args.timestamp.clone().or_else(|| file.timestamp.clone());
    o.columns = if args.columns.is_empty() {
        file.columns.clone()
    } else {
        args.columns.clone()
    };
    o.exclude = if args.exclude.is_empty() {
        file.exclude.clone()
    } else {
        args.exclude.clone()
    };
    o.categorical = if args.categorical.is_empty() {
        file.categorical.clone()
    } else {
        args.categorical.clone()
    };
    o.numerical = if args.numerical.is_empty() {
        file.numerical.clone()
    } else {
        args.numerical.clone()
    };
    if let Some(p) = args.prediction.clone().or_else(|| file.prediction.clone()) {
        o.prediction = p;
    }
    if let Some(c) = args.confidence.clone().or_else(|| file.confidence.clone()) {
        o.confidence = c;
    }
    if let Some(l) = args.label.clone().or_else(|| file.label.clone()) {
        o.label = l;
    }
    if let Some(cap) = args.exact_cap.or(file.exact_cap) {
        if cap < 2 {
            return Err(Error::usage("--exact-cap must be at least 2"));
        }
        o.exact_cap = cap;
    }
    o.show_progress = show_progress;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_override_the_config_file() {
        let cli = Cli::parse_from([
            "mlctl",
            "drift",
            "cur.parquet",
            "--baseline",
            "b.parquet",
            "--stattest",
            "ks",
            "--column-threshold",
            "a=0.01",
        ]);
        let Command::Drift(args) = cli.command else {
            panic!()
        };
        let mut config = Config::default();
        config.drift.stattest = Some("psi".into());
        config.drift.drift_share = Some(0.3);
        let o = drift_options(&args, &config, false).unwrap();
        assert_eq!(o.stattest, Some(StatTest::Ks));
        assert_eq!(o.drift_share, 0.3);
        assert_eq!(o.column_threshold["a"], 0.01);
    }

    #[test]
    fn a_bad_pair_names_the_flag() {
        let e = parse_pairs(&["nothing".to_string()], "--column-stattest", parse_test).unwrap_err();
        assert!(e.to_string().contains("--column-stattest"));
    }
}
