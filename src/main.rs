//! The entry point: parse, run one command, render its report, exit with the
//! gate's code (0 pass, 1 gate failed, 2 usage or input error).

use std::io::{IsTerminal, Write};
use std::path::Path;

use clap::{CommandFactory, Parser};

use mlctl::cli::{self, Cli, Command, Format};
use mlctl::error::{Error, Result};
use mlctl::report::{self, Report};

fn main() {
    // A bug must still end in one line and exit code 2, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("mlctl: internal error{location}: {message} (please report this)");
    }));
    let code = match std::panic::catch_unwind(run) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("mlctl: {e}");
            2
        }
        Err(_) => 2,
    };
    std::process::exit(code);
}

/// A replay's workers each run both models on their own batches; every
/// other command runs a model's operators across one pool (or no model).
fn heaps_for(command: &Command) -> mlctl::runtime::Heaps {
    match command {
        Command::ShadowCompare(args) if args.primary.is_some() => mlctl::runtime::Heaps::PerThread,
        _ => mlctl::runtime::Heaps::Shared,
    }
}

fn run() -> Result<i32> {
    let cli = Cli::parse();
    // Before any other thread starts (parsing starts none).
    mlctl::runtime::keep_freed_memory(heaps_for(&cli.command));
    let config = mlctl::config::load(cli.config.as_deref())?;
    let progress = !cli.quiet && std::io::stderr().is_terminal();
    let (report, output) = match &cli.command {
        Command::Drift(args) => {
            let opts = cli::drift_options(args, &config, progress)?;
            (mlctl::drift::run(&opts)?, args.output.clone())
        }
        Command::Baseline(args) => {
            let opts = mlctl::baseline::Options {
                inputs: args.inputs.clone(),
                output: args.output.clone(),
                merge: args.merge,
                exact_cap: args.exact_cap,
            };
            (mlctl::baseline::run(&opts)?, None)
        }
        Command::Predict(args) => {
            let opts = mlctl::predict::Options {
                model: args.model.clone(),
                input: args.input.clone(),
                output: args.output.clone(),
                columns: args.columns.clone(),
                exclude: args.exclude.clone(),
                keep: args.keep.clone(),
                batch_size: args.batch_size,
                device: args.device.clone(),
                threads: args.threads,
                show_progress: progress,
            };
            (mlctl::predict::run(&opts)?, None)
        }
        Command::Inspect(args) => {
            let opts = mlctl::inspect::Options {
                model: args.model.clone(),
            };
            (mlctl::inspect::run(&opts)?, args.output.clone())
        }
        Command::Quantize(args) => {
            use mlctl::quantize::calibrate::Method;
            let calibration = match (args.mode.as_str(), &args.calibration) {
                ("static", Some(data)) => {
                    if !(50.0..=100.0).contains(&args.percentile) {
                        return Err(Error::usage("--percentile must be between 50 and 100"));
                    }
                    let method = match args.calibrate.as_str() {
                        "minmax" => Method::MinMax,
                        "entropy" => Method::Entropy,
                        _ => Method::Percentile(args.percentile),
                    };
                    Some((data.clone(), method))
                }
                ("static", None) => {
                    return Err(Error::usage("--mode static needs --calibration DATA"))
                }
                (_, Some(_)) => return Err(Error::usage("--calibration is for --mode static")),
                _ => None,
            };
            let gguf = match &args.gguf {
                Some(path) => Some((
                    path.clone(),
                    mlctl::quantize::gguf::block_type(&args.gguf_type).ok_or_else(|| {
                        Error::usage(format!("unknown GGUF block type '{}'", args.gguf_type))
                    })?,
                )),
                None => None,
            };
            let opts = mlctl::quantize::Options {
                gguf,
                calibration,
                model: args.model.clone(),
                output: args.output.clone(),
                per_tensor: args.per_tensor,
                reduce_range: args.reduce_range,
                per_row: args.activations == "per-row",
                exclude: args.exclude.clone(),
                eval: args.eval.clone(),
                label: args.label.clone(),
                eval_exclude: args.eval_exclude.clone(),
                max_accuracy_drop: args.max_accuracy_drop,
                auto: args.auto,
                batch_size: args.batch_size,
            };
            (mlctl::quantize::run(&opts)?, args.report.clone())
        }
        Command::Bench(args) => {
            let duration = match &args.duration {
                Some(text) => Some(parse_duration(text).ok_or_else(|| {
                    Error::usage(format!(
                        "--duration '{text}': expected a time such as 10s or 500ms"
                    ))
                })?),
                None => None,
            };
            let mut shapes = Vec::new();
            for s in &args.shapes {
                let parsed = s.split_once('=').and_then(|(name, dims)| {
                    let dims: Option<Vec<usize>> =
                        dims.split(',').map(|d| d.trim().parse().ok()).collect();
                    Some((name.trim().to_string(), dims?))
                });
                shapes.push(parsed.ok_or_else(|| {
                    Error::usage(format!(
                        "--shape '{s}': expected NAME=D1,D2,... (for example input_ids=1,128)"
                    ))
                })?);
            }
            let scenario = match args.scenario.as_str() {
                "server" => {
                    let qps = match (args.qps, args.find_max_qps) {
                        (Some(q), _) if q > 0.0 && q.is_finite() => q,
                        (Some(_), _) => return Err(Error::usage("--qps must be above 0")),
                        (None, Some(_)) => 10.0,
                        (None, None) => {
                            return Err(Error::usage(
                                "--scenario server needs --qps R (or --find-max-qps P99_MS)",
                            ))
                        }
                    };
                    if args.max_batch == 0 || args.max_delay_ms.is_nan() || args.max_delay_ms < 0.0
                    {
                        return Err(Error::usage(
                            "--max-batch must be 1 or more and --max-delay-ms 0 or more",
                        ));
                    }
                    mlctl::bench::Scenario::Server {
                        qps,
                        max_batch: args.max_batch,
                        max_delay_ms: args.max_delay_ms,
                    }
                }
                "offline" => mlctl::bench::Scenario::Offline,
                _ => mlctl::bench::Scenario::SingleStream,
            };
            if args.find_max_qps.is_some() && args.scenario != "server" {
                return Err(Error::usage("--find-max-qps is for --scenario server"));
            }
            let opts = mlctl::bench::Options {
                scenario,
                find_max_qps: args.find_max_qps,
                models: args.models.clone(),
                batch_sizes: args.batch_sizes.clone(),
                warmup: args.warmup,
                runs: args.runs,
                duration,
                threads: args.threads,
                device: args.device.clone(),
                shapes,
                seq_len: args.seq_len,
                inputs: args.inputs.clone(),
                max_p99_ms: args.max_p99_ms,
                max_p50_ms: args.max_p50_ms,
                min_throughput: args.min_throughput,
            };
            let report = mlctl::bench::run(&opts)?;
            if let Some(path) = &args.export_json {
                mlctl::fsio::write_atomic(path, report.to_json().as_bytes())?;
            }
            (report, args.output.clone())
        }
        Command::Features(args) => features(&cli, &config, &args.action)?,
        Command::ShadowCompare(args) => {
            let opts = cli::shadow_options(args, &config, progress)?;
            (mlctl::shadow::run(&opts)?, args.output.clone())
        }
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "mlctl", &mut buf);
            print_stdout(&buf);
            return Ok(0);
        }
        Command::ManPage => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut buf)
                .map_err(|e| Error::output("stdout", e))?;
            print_stdout(&buf);
            return Ok(0);
        }
    };
    emit(&cli, &report, output.as_deref())?;
    Ok(report.exit_code())
}

/// `mlctl features ...`: the definitions from the config's [features]
/// section (paths relative to the config file's folder).
fn features(
    cli: &Cli,
    config: &mlctl::config::Config,
    action: &cli::FeaturesAction,
) -> Result<(Report, Option<std::path::PathBuf>)> {
    use cli::FeaturesAction;
    use mlctl::features::{self, parse_time};
    let config_path = cli.config.clone().unwrap_or_else(|| "mlctl.toml".into());
    let base = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let definitions = features::definitions::parse(config.features.as_ref(), &config_path, &base)?;
    let time = |t: &Option<String>| t.as_deref().map(parse_time).transpose();
    Ok(match action {
        FeaturesAction::Materialize {
            views,
            start,
            end,
            incremental,
            output,
        } => {
            let opts = features::MaterializeOptions {
                definitions,
                views: views.clone(),
                start: time(start)?,
                end: time(end)?,
                incremental: *incremental,
            };
            (features::materialize(&opts)?, output.clone())
        }
        FeaturesAction::Historical {
            entities,
            features: refs,
            timestamp,
            output,
            report,
        } => {
            let opts = features::HistoricalOptions {
                definitions,
                entities: entities.clone(),
                features: refs.clone(),
                timestamp: timestamp.clone(),
                output: output.clone(),
            };
            (features::historical(&opts)?, report.clone())
        }
        FeaturesAction::Skew {
            log,
            features: refs,
            timestamp,
            tolerance,
            max_mismatch,
            output,
        } => {
            let valid = tolerance.is_finite() && *tolerance >= 0.0;
            if !(valid && (0.0..=1.0).contains(max_mismatch)) {
                return Err(Error::usage(
                    "--tolerance must be 0 or more and --max-mismatch between 0 and 1",
                ));
            }
            let opts = features::SkewOptions {
                definitions,
                log: log.clone(),
                features: refs.clone(),
                timestamp: timestamp.clone(),
                tolerance: *tolerance,
                max_mismatch: *max_mismatch,
            };
            (features::skew(&opts)?, output.clone())
        }
        FeaturesAction::Get {
            entity,
            features: refs,
            at,
            output,
        } => {
            let entity = entity
                .iter()
                .map(|e| {
                    e.split_once('=')
                        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                        .ok_or_else(|| Error::usage(format!("--entity '{e}': expected KEY=VALUE")))
                })
                .collect::<Result<_>>()?;
            let opts = features::GetOptions {
                definitions,
                entity,
                features: refs.clone(),
                at: time(at)?,
            };
            (features::get(&opts)?, output.clone())
        }
    })
}

fn format_for(cli: &Cli, output: Option<&Path>) -> Format {
    if let Some(f) = cli.format {
        return f;
    }
    match output.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        Some("md") | Some("markdown") => Format::Markdown,
        Some("html") | Some("htm") => Format::Html,
        Some("csv") => Format::Csv,
        _ => Format::Table,
    }
}

fn emit(cli: &Cli, report: &Report, output: Option<&Path>) -> Result<()> {
    let format = format_for(cli, output);
    let color = output.is_none()
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let text = match format {
        Format::Table => report::render_terminal(report, color),
        Format::Json => report.to_json(),
        Format::Markdown => report::render_markdown(report),
        Format::Html => report::render_html(report),
        Format::Csv => report::render_csv(report),
    };
    match output {
        Some(path) => {
            mlctl::fsio::write_atomic(path, text.as_bytes())?;
            if !cli.quiet {
                eprintln!(
                    "mlctl: {}: {} (report written to {})",
                    report.gate.outcome.as_str().to_uppercase(),
                    report.gate.message,
                    path.display()
                );
            }
        }
        None if cli.quiet => {
            if report.exit_code() != 0 {
                eprintln!("mlctl: FAIL: {}", report.gate.message);
            }
        }
        None => print_stdout(text.as_bytes()),
    }
    Ok(())
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|_| out.flush());
}

/// "10s", "500ms", "2m" or plain seconds, in seconds.
fn parse_duration(text: &str) -> Option<f64> {
    let t = text.trim();
    let (number, scale) = if let Some(v) = t.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = t.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = t.strip_suffix('m') {
        (v, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = number.trim().parse().ok()?;
    (v > 0.0 && v.is_finite()).then_some(v * scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlctl::runtime::Heaps;

    fn heaps(args: &[&str]) -> Heaps {
        let cli = Cli::try_parse_from(std::iter::once("mlctl").chain(args.iter().copied()))
            .expect("arguments parse");
        heaps_for(&cli.command)
    }

    #[test]
    fn only_a_replay_gives_each_thread_a_heap() {
        let replay = [
            "shadow-compare",
            "--primary",
            "a.onnx",
            "--candidate",
            "b.onnx",
            "--inputs",
            "log.parquet",
        ];
        assert_eq!(heaps(&replay), Heaps::PerThread);
        let logs = [
            "shadow-compare",
            "--primary-log",
            "a.parquet",
            "--candidate-log",
            "b.parquet",
        ];
        assert_eq!(heaps(&logs), Heaps::Shared);
        assert_eq!(heaps(&["bench", "a.onnx"]), Heaps::Shared);
    }
}
