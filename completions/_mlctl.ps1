
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'mlctl' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'mlctl'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'mlctl' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('drift', 'drift', [CompletionResultType]::ParameterValue, 'Detect data and prediction drift between a baseline and current data')
            [CompletionResult]::new('baseline', 'baseline', [CompletionResultType]::ParameterValue, 'Profile a training set once (or merge partition profiles) for fast drift checks')
            [CompletionResult]::new('predict', 'predict', [CompletionResultType]::ParameterValue, 'Score a table with an ONNX model and write the predictions as parquet')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show an ONNX model''s inputs, outputs, operators and weights, and whether mlctl runs it')
            [CompletionResult]::new('quantize', 'quantize', [CompletionResultType]::ParameterValue, 'Quantize an ONNX model''s weights to int8 and measure what it cost')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Measure models'' latency and throughput (percentiles, comparison, CI gates)')
            [CompletionResult]::new('features', 'features', [CompletionResultType]::ParameterValue, 'Feature store: point-in-time training sets, materialization to an online store, online reads')
            [CompletionResult]::new('shadow-compare', 'shadow-compare', [CompletionResultType]::ParameterValue, 'Compare a candidate model with the live one on the same requests (replayed or logged) and judge it')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions (bash, zsh, fish, powershell)')
            [CompletionResult]::new('manpage', 'manpage', [CompletionResultType]::ParameterValue, 'Print the man page (roff)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mlctl;drift' {
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'Reference data: parquet, CSV, or a profile from `mlctl baseline`')
            [CompletionResult]::new('--baseline', '--baseline', [CompletionResultType]::ParameterName, 'Reference data: parquet, CSV, or a profile from `mlctl baseline`')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--stattest', '--stattest', [CompletionResultType]::ParameterName, 'Test for every column: ks, chisquare, z, psi, jensenshannon, wasserstein, hellinger, kl_div, anderson, cramer_von_mises (default: Evidently''s per-column choice)')
            [CompletionResult]::new('--column-stattest', '--column-stattest', [CompletionResultType]::ParameterName, 'Test for one column, COLUMN=TEST (repeatable)')
            [CompletionResult]::new('--threshold', '--threshold', [CompletionResultType]::ParameterName, 'Threshold for every column (p-value for tests, distance for distances; default 0.05 / 0.1)')
            [CompletionResult]::new('--column-threshold', '--column-threshold', [CompletionResultType]::ParameterName, 'Threshold for one column, COLUMN=X (repeatable)')
            [CompletionResult]::new('--drift-share', '--drift-share', [CompletionResultType]::ParameterName, 'Dataset drift when at least this share of columns drift [default: 0.5]')
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'When to exit 1 [default: drift]')
            [CompletionResult]::new('--window', '--window', [CompletionResultType]::ParameterName, 'Also report each window of the current data: 1d, 6h, 30m, 1w, or 10000rows')
            [CompletionResult]::new('--timestamp', '--timestamp', [CompletionResultType]::ParameterName, 'Timestamp column for --window [default: `timestamp`, else the first datetime column]')
            [CompletionResult]::new('--columns', '--columns', [CompletionResultType]::ParameterName, 'Only these columns (comma-separated)')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'Leave these columns out (comma-separated)')
            [CompletionResult]::new('--categorical', '--categorical', [CompletionResultType]::ParameterName, 'Treat these columns as categorical (comma-separated)')
            [CompletionResult]::new('--numerical', '--numerical', [CompletionResultType]::ParameterName, 'Treat these columns as numerical (comma-separated)')
            [CompletionResult]::new('--prediction', '--prediction', [CompletionResultType]::ParameterName, 'Prediction column [default: prediction]')
            [CompletionResult]::new('--confidence', '--confidence', [CompletionResultType]::ParameterName, 'Confidence column [default: confidence]')
            [CompletionResult]::new('--label', '--label', [CompletionResultType]::ParameterName, 'Label column, possibly arriving late (null until known) [default: label]')
            [CompletionResult]::new('--exact-cap', '--exact-cap', [CompletionResultType]::ParameterName, 'Distinct values kept exactly per baseline column before summarising [default: 100000]')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mlctl;baseline' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'The profile to write (atomically)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'The profile to write (atomically)')
            [CompletionResult]::new('--exact-cap', '--exact-cap', [CompletionResultType]::ParameterName, 'Distinct values kept exactly per column before summarising')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('--merge', '--merge', [CompletionResultType]::ParameterName, 'The inputs are profiles to merge')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mlctl;predict' {
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Rows to score: parquet or CSV')
            [CompletionResult]::new('--input', '--input', [CompletionResultType]::ParameterName, 'Rows to score: parquet or CSV')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Where to write the predictions (parquet, atomically)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Where to write the predictions (parquet, atomically)')
            [CompletionResult]::new('--columns', '--columns', [CompletionResultType]::ParameterName, 'Feature columns for a single 2-D model input, in order (default: every numeric column)')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'Columns that are not features (comma-separated)')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Input columns copied into the output, such as ids (comma-separated)')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Rows per model call')
            [CompletionResult]::new('--device', '--device', [CompletionResultType]::ParameterName, 'cpu, cuda or cuda:N (cuda needs a build with --features cuda)')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'Threads for the CPU kernels (default: one per core)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mlctl;inspect' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mlctl;quantize' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Where to write the int8 model (atomically)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Where to write the int8 model (atomically)')
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'dynamic: activations quantized at run time; static: with scales calibrated on --calibration')
            [CompletionResult]::new('--calibration', '--calibration', [CompletionResultType]::ParameterName, 'Rows (parquet, CSV) or arrays (.npz) to calibrate activation ranges on (--mode static)')
            [CompletionResult]::new('--calibrate', '--calibrate', [CompletionResultType]::ParameterName, 'Range method for --mode static: minmax, percentile or entropy')
            [CompletionResult]::new('--percentile', '--percentile', [CompletionResultType]::ParameterName, 'Percentile for --calibrate percentile (two-sided)')
            [CompletionResult]::new('--activations', '--activations', [CompletionResultType]::ParameterName, 'Activation scales: one per row (token, sample; symmetric) or one per tensor (as ONNX Runtime)')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'Node names or op types to leave in float (comma-separated)')
            [CompletionResult]::new('--eval', '--eval', [CompletionResultType]::ParameterName, 'Rows (parquet, CSV) or arrays (.npz) to run both models on and compare')
            [CompletionResult]::new('--label', '--label', [CompletionResultType]::ParameterName, 'Label column of --eval: accuracy (or RMSE) of both models')
            [CompletionResult]::new('--eval-exclude', '--eval-exclude', [CompletionResultType]::ParameterName, 'Columns of --eval and --calibration that are not features (comma-separated)')
            [CompletionResult]::new('--max-accuracy-drop', '--max-accuracy-drop', [CompletionResultType]::ParameterName, 'Exit 1 when accuracy drops by more than this (absolute; without --label: top-1 disagreement)')
            [CompletionResult]::new('--gguf', '--gguf', [CompletionResultType]::ParameterName, 'Also write the weights as candle''s GGUF (block-quantized) to FILE, for Rust serving')
            [CompletionResult]::new('--gguf-type', '--gguf-type', [CompletionResultType]::ParameterName, 'GGUF block type for matrix weights (q8_0, q4_0, q4_1, q5_0, q5_1, q2k..q6k, f16)')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Rows per model call during --eval')
            [CompletionResult]::new('--report', '--report', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('--per-tensor', '--per-tensor', [CompletionResultType]::ParameterName, 'One scale per weight tensor instead of one per output channel')
            [CompletionResult]::new('--reduce-range', '--reduce-range', [CompletionResultType]::ParameterName, '7-bit weights, for CPUs without VNNI whose 8-bit products can saturate')
            [CompletionResult]::new('--auto', '--auto', [CompletionResultType]::ParameterName, 'When --max-accuracy-drop is exceeded, put the most sensitive layers back to float until it holds')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mlctl;bench' {
            [CompletionResult]::new('--scenario', '--scenario', [CompletionResultType]::ParameterName, 'single-stream (one request at a time), server (Poisson arrivals, dynamic batcher) or offline (maximum throughput)')
            [CompletionResult]::new('--qps', '--qps', [CompletionResultType]::ParameterName, 'Server: offered requests per second (Poisson arrivals)')
            [CompletionResult]::new('--max-batch', '--max-batch', [CompletionResultType]::ParameterName, 'Server: largest batch the batcher sends')
            [CompletionResult]::new('--max-delay-ms', '--max-delay-ms', [CompletionResultType]::ParameterName, 'Server: longest a request waits for its batch to fill')
            [CompletionResult]::new('--find-max-qps', '--find-max-qps', [CompletionResultType]::ParameterName, 'Server: search the highest rate whose p99 stays within this many milliseconds')
            [CompletionResult]::new('--export-json', '--export-json', [CompletionResultType]::ParameterName, 'Also write the JSON report to FILE')
            [CompletionResult]::new('--batch-sizes', '--batch-sizes', [CompletionResultType]::ParameterName, 'Batch sizes (comma-separated)')
            [CompletionResult]::new('--warmup', '--warmup', [CompletionResultType]::ParameterName, 'Runs before measuring, per model and batch size')
            [CompletionResult]::new('--runs', '--runs', [CompletionResultType]::ParameterName, 'Measured runs per model and batch size [default: 100, or as many as --duration allows]')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Measure each batch size for this long (e.g. 10s, 500ms)')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'Threads for the CPU kernels (default: one per core)')
            [CompletionResult]::new('--device', '--device', [CompletionResultType]::ParameterName, 'cpu, cuda or cuda:N (cuda needs a build with --features cuda)')
            [CompletionResult]::new('--shape', '--shape', [CompletionResultType]::ParameterName, 'Whole shape of a named input, e.g. input_ids=1,128 (repeatable)')
            [CompletionResult]::new('--seq-len', '--seq-len', [CompletionResultType]::ParameterName, 'Length for free dimensions after the first (sequence length)')
            [CompletionResult]::new('--inputs', '--inputs', [CompletionResultType]::ParameterName, 'Real rows (parquet, CSV) as inputs instead of generated ones')
            [CompletionResult]::new('--max-p99-ms', '--max-p99-ms', [CompletionResultType]::ParameterName, 'Exit 1 when any p99 exceeds this many milliseconds')
            [CompletionResult]::new('--max-p50-ms', '--max-p50-ms', [CompletionResultType]::ParameterName, 'Exit 1 when any p50 exceeds this many milliseconds')
            [CompletionResult]::new('--min-throughput', '--min-throughput', [CompletionResultType]::ParameterName, 'Exit 1 when any throughput is below this many rows per second')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mlctl;features' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('materialize', 'materialize', [CompletionResultType]::ParameterValue, 'Compute every entity''s latest values as of END and write them to the online store')
            [CompletionResult]::new('historical', 'historical', [CompletionResultType]::ParameterValue, 'Build a point-in-time correct training set for entity rows (keys + timestamp)')
            [CompletionResult]::new('skew', 'skew', [CompletionResultType]::ParameterValue, 'Compare the feature values a service logged with what the offline path computes')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Read an entity''s values from the online store (TTL applied on read)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mlctl;features;materialize' {
            [CompletionResult]::new('--views', '--views', [CompletionResultType]::ParameterName, 'Only these views (comma-separated; default: all)')
            [CompletionResult]::new('--start', '--start', [CompletionResultType]::ParameterName, 'Only entities with events since START (2013-01-08, 2013-01-08 06:00:00 or RFC 3339)')
            [CompletionResult]::new('--end', '--end', [CompletionResultType]::ParameterName, 'Values as of END [default: now; never in the future]')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('--incremental', '--incremental', [CompletionResultType]::ParameterName, 'Continue from each view''s watermark (the END of its last materialization)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mlctl;features;historical' {
            [CompletionResult]::new('--entities', '--entities', [CompletionResultType]::ParameterName, 'Entity rows: parquet or CSV with the join keys and a timestamp column')
            [CompletionResult]::new('--features', '--features', [CompletionResultType]::ParameterName, 'Features: view:feature or view (all its features), comma-separated')
            [CompletionResult]::new('--timestamp', '--timestamp', [CompletionResultType]::ParameterName, 'The entity rows'' timestamp column')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'The training set to write (parquet: the entity rows, then one column per feature)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'The training set to write (parquet: the entity rows, then one column per feature)')
            [CompletionResult]::new('--report', '--report', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mlctl;features;skew' {
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'The serving log: join keys, a timestamp, one column per feature as served')
            [CompletionResult]::new('--features', '--features', [CompletionResultType]::ParameterName, 'Features: view:feature or view, comma-separated (default: every feature with a column in the log)')
            [CompletionResult]::new('--timestamp', '--timestamp', [CompletionResultType]::ParameterName, 'The log''s timestamp column (the time each value was served)')
            [CompletionResult]::new('--tolerance', '--tolerance', [CompletionResultType]::ParameterName, 'Numbers within this (absolute, or relative to the larger) count as equal')
            [CompletionResult]::new('--max-mismatch', '--max-mismatch', [CompletionResultType]::ParameterName, 'Exit 1 when a feature''s share of mismatching rows exceeds this')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mlctl;features;get' {
            [CompletionResult]::new('--entity', '--entity', [CompletionResultType]::ParameterName, 'Join key value, KEY=VALUE (repeat for composite keys)')
            [CompletionResult]::new('--features', '--features', [CompletionResultType]::ParameterName, 'Features: view:feature or view, comma-separated (default: every view keyed by the --entity keys)')
            [CompletionResult]::new('--at', '--at', [CompletionResultType]::ParameterName, 'Read as of this time for the TTL [default: now]')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mlctl;features;help' {
            [CompletionResult]::new('materialize', 'materialize', [CompletionResultType]::ParameterValue, 'Compute every entity''s latest values as of END and write them to the online store')
            [CompletionResult]::new('historical', 'historical', [CompletionResultType]::ParameterValue, 'Build a point-in-time correct training set for entity rows (keys + timestamp)')
            [CompletionResult]::new('skew', 'skew', [CompletionResultType]::ParameterValue, 'Compare the feature values a service logged with what the offline path computes')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Read an entity''s values from the online store (TTL applied on read)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mlctl;features;help;materialize' {
            break
        }
        'mlctl;features;help;historical' {
            break
        }
        'mlctl;features;help;skew' {
            break
        }
        'mlctl;features;help;get' {
            break
        }
        'mlctl;features;help;help' {
            break
        }
        'mlctl;shadow-compare' {
            [CompletionResult]::new('--primary', '--primary', [CompletionResultType]::ParameterName, 'Replay: the live model')
            [CompletionResult]::new('--candidate', '--candidate', [CompletionResultType]::ParameterName, 'Replay: the new model')
            [CompletionResult]::new('--inputs', '--inputs', [CompletionResultType]::ParameterName, 'Replay: the logged requests both models answer (parquet or CSV)')
            [CompletionResult]::new('--primary-log', '--primary-log', [CompletionResultType]::ParameterName, 'Logs: the live service''s prediction log')
            [CompletionResult]::new('--candidate-log', '--candidate-log', [CompletionResultType]::ParameterName, 'Logs: the shadow service''s prediction log')
            [CompletionResult]::new('--baseline-noise-log', '--baseline-noise-log', [CompletionResultType]::ParameterName, 'Logs: a second log of the live model on the same requests (its noise)')
            [CompletionResult]::new('--join', '--join', [CompletionResultType]::ParameterName, 'Logs: the column that pairs rows [default: request_id when both logs have it, else row order]')
            [CompletionResult]::new('--prediction', '--prediction', [CompletionResultType]::ParameterName, 'Logs: the prediction column [default: prediction]')
            [CompletionResult]::new('--score', '--score', [CompletionResultType]::ParameterName, 'Logs: the score column [default: confidence, then score, when present]')
            [CompletionResult]::new('--label', '--label', [CompletionResultType]::ParameterName, 'The label column [default: label, when present]')
            [CompletionResult]::new('--slice-by', '--slice-by', [CompletionResultType]::ParameterName, 'Compare per slice of these columns (comma-separated)')
            [CompletionResult]::new('--task', '--task', [CompletionResultType]::ParameterName, 'classification or regression [default: read from the outputs]')
            [CompletionResult]::new('--max-flip-rate', '--max-flip-rate', [CompletionResultType]::ParameterName, 'Exit 1 when the share of rows whose class changed exceeds this')
            [CompletionResult]::new('--max-negative-flip-rate', '--max-negative-flip-rate', [CompletionResultType]::ParameterName, 'Exit 1 when the share of labelled rows the primary got right and the candidate wrong exceeds this')
            [CompletionResult]::new('--max-accuracy-drop', '--max-accuracy-drop', [CompletionResultType]::ParameterName, 'Exit 1 when accuracy drops by more than this (absolute, 0.01 = one point)')
            [CompletionResult]::new('--max-rmse-increase', '--max-rmse-increase', [CompletionResultType]::ParameterName, 'Exit 1 when the RMSE rises by more than this (regression)')
            [CompletionResult]::new('--alpha', '--alpha', [CompletionResultType]::ParameterName, 'Significance level of the tests [default: 0.05]')
            [CompletionResult]::new('--max-psi', '--max-psi', [CompletionResultType]::ParameterName, 'PSI between the score distributions from which the verdict is marginal [default: 0.2]')
            [CompletionResult]::new('--top-slices', '--top-slices', [CompletionResultType]::ParameterName, 'Slices listed in the report, worst first (every flagged slice is listed) [default: 20]')
            [CompletionResult]::new('--columns', '--columns', [CompletionResultType]::ParameterName, 'Replay: feature columns for a single 2-D model input, in order (default: every numeric column)')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'Replay: columns that are not features (the label, slice columns, prediction and confidence are left out already)')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Replay: rows per model call')
            [CompletionResult]::new('--device', '--device', [CompletionResultType]::ParameterName, 'Replay: cpu, cuda or cuda:N (cuda needs a build with --features cuda)')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'Replay: threads for the CPU kernels (default: one per core)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('--baseline-noise', '--baseline-noise', [CompletionResultType]::ParameterName, 'Replay: run the primary a second time (in other batches) and count only differences beyond its own')
            [CompletionResult]::new('--fail-on-slice-regression', '--fail-on-slice-regression', [CompletionResultType]::ParameterName, 'Exit 1 when the candidate is significantly worse in any slice (Holm-corrected)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mlctl;completions' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mlctl;manpage' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Settings file (default: ./mlctl.toml when present)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mlctl;help' {
            [CompletionResult]::new('drift', 'drift', [CompletionResultType]::ParameterValue, 'Detect data and prediction drift between a baseline and current data')
            [CompletionResult]::new('baseline', 'baseline', [CompletionResultType]::ParameterValue, 'Profile a training set once (or merge partition profiles) for fast drift checks')
            [CompletionResult]::new('predict', 'predict', [CompletionResultType]::ParameterValue, 'Score a table with an ONNX model and write the predictions as parquet')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show an ONNX model''s inputs, outputs, operators and weights, and whether mlctl runs it')
            [CompletionResult]::new('quantize', 'quantize', [CompletionResultType]::ParameterValue, 'Quantize an ONNX model''s weights to int8 and measure what it cost')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Measure models'' latency and throughput (percentiles, comparison, CI gates)')
            [CompletionResult]::new('features', 'features', [CompletionResultType]::ParameterValue, 'Feature store: point-in-time training sets, materialization to an online store, online reads')
            [CompletionResult]::new('shadow-compare', 'shadow-compare', [CompletionResultType]::ParameterValue, 'Compare a candidate model with the live one on the same requests (replayed or logged) and judge it')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions (bash, zsh, fish, powershell)')
            [CompletionResult]::new('manpage', 'manpage', [CompletionResultType]::ParameterValue, 'Print the man page (roff)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mlctl;help;drift' {
            break
        }
        'mlctl;help;baseline' {
            break
        }
        'mlctl;help;predict' {
            break
        }
        'mlctl;help;inspect' {
            break
        }
        'mlctl;help;quantize' {
            break
        }
        'mlctl;help;bench' {
            break
        }
        'mlctl;help;features' {
            [CompletionResult]::new('materialize', 'materialize', [CompletionResultType]::ParameterValue, 'Compute every entity''s latest values as of END and write them to the online store')
            [CompletionResult]::new('historical', 'historical', [CompletionResultType]::ParameterValue, 'Build a point-in-time correct training set for entity rows (keys + timestamp)')
            [CompletionResult]::new('skew', 'skew', [CompletionResultType]::ParameterValue, 'Compare the feature values a service logged with what the offline path computes')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Read an entity''s values from the online store (TTL applied on read)')
            break
        }
        'mlctl;help;features;materialize' {
            break
        }
        'mlctl;help;features;historical' {
            break
        }
        'mlctl;help;features;skew' {
            break
        }
        'mlctl;help;features;get' {
            break
        }
        'mlctl;help;shadow-compare' {
            break
        }
        'mlctl;help;completions' {
            break
        }
        'mlctl;help;manpage' {
            break
        }
        'mlctl;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
