# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mlctl_global_optspecs
    string join \n format= q/quiet config= h/help V/version
end

function __fish_mlctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mlctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mlctl_using_subcommand
    set -l cmd (__fish_mlctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mlctl -n "__fish_mlctl_needs_command" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_needs_command" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_needs_command" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mlctl -n "__fish_mlctl_needs_command" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_needs_command" -f -a "drift" -d 'Detect data and prediction drift between a baseline and current data'
complete -c mlctl -n "__fish_mlctl_needs_command" -f -a "baseline" -d 'Profile a training set once (or merge partition profiles) for fast drift checks'
complete -c mlctl -n "__fish_mlctl_needs_command" -f -a "predict" -d 'Score a table with an ONNX model and write the predictions as parquet'
complete -c mlctl -n "__fish_mlctl_needs_command" -f -a "inspect" -d 'Show an ONNX model\'s inputs, outputs, operators and weights, and whether mlctl runs it'
complete -c mlctl -n "__fish_mlctl_needs_command" -f -a "quantize" -d 'Quantize an ONNX model\'s weights to int8 and measure what it cost'
complete -c mlctl -n "__fish_mlctl_needs_command" -f -a "bench" -d 'Measure models\' latency and throughput (percentiles, comparison, CI gates)'
complete -c mlctl -n "__fish_mlctl_needs_command" -f -a "features" -d 'Feature store: point-in-time training sets, materialization to an online store, online reads'
complete -c mlctl -n "__fish_mlctl_needs_command" -f -a "shadow-compare" -d 'Compare a candidate model with the live one on the same requests (replayed or logged) and judge it'
complete -c mlctl -n "__fish_mlctl_needs_command" -f -a "completions" -d 'Print shell completions (bash, zsh, fish, powershell)'
complete -c mlctl -n "__fish_mlctl_needs_command" -f -a "manpage" -d 'Print the man page (roff)'
complete -c mlctl -n "__fish_mlctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -s b -l baseline -d 'Reference data: parquet, CSV, or a profile from `mlctl baseline`' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -s o -l output -d 'Write the report to FILE (atomically) instead of stdout' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l stattest -d 'Test for every column: ks, chisquare, z, psi, jensenshannon, wasserstein, hellinger, kl_div, anderson, cramer_von_mises (default: Evidently\'s per-column choice)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l column-stattest -d 'Test for one column, COLUMN=TEST (repeatable)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l threshold -d 'Threshold for every column (p-value for tests, distance for distances; default 0.05 / 0.1)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l column-threshold -d 'Threshold for one column, COLUMN=X (repeatable)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l drift-share -d 'Dataset drift when at least this share of columns drift [default: 0.5]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l fail-on -d 'When to exit 1 [default: drift]' -r -f -a "drift\t'the whole current data set drifted'
any-window\t'the whole data set or any window drifted'
never\t'never: report only'"
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l window -d 'Also report each window of the current data: 1d, 6h, 30m, 1w, or 10000rows' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l timestamp -d 'Timestamp column for --window [default: `timestamp`, else the first datetime column]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l columns -d 'Only these columns (comma-separated)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l exclude -d 'Leave these columns out (comma-separated)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l categorical -d 'Treat these columns as categorical (comma-separated)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l numerical -d 'Treat these columns as numerical (comma-separated)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l prediction -d 'Prediction column [default: prediction]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l confidence -d 'Confidence column [default: confidence]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l label -d 'Label column, possibly arriving late (null until known) [default: label]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l exact-cap -d 'Distinct values kept exactly per baseline column before summarising [default: 100000]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mlctl -n "__fish_mlctl_using_subcommand drift" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand baseline" -s o -l output -d 'The profile to write (atomically)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand baseline" -l exact-cap -d 'Distinct values kept exactly per column before summarising' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand baseline" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand baseline" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand baseline" -l merge -d 'The inputs are profiles to merge'
complete -c mlctl -n "__fish_mlctl_using_subcommand baseline" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand baseline" -s h -l help -d 'Print help'
complete -c mlctl -n "__fish_mlctl_using_subcommand baseline" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand predict" -s i -l input -d 'Rows to score: parquet or CSV' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand predict" -s o -l output -d 'Where to write the predictions (parquet, atomically)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand predict" -l columns -d 'Feature columns for a single 2-D model input, in order (default: every numeric column)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand predict" -l exclude -d 'Columns that are not features (comma-separated)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand predict" -l keep -d 'Input columns copied into the output, such as ids (comma-separated)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand predict" -l batch-size -d 'Rows per model call' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand predict" -l device -d 'cpu, cuda or cuda:N (cuda needs a build with --features cuda)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand predict" -l threads -d 'Threads for the CPU kernels (default: one per core)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand predict" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand predict" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand predict" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand predict" -s h -l help -d 'Print help'
complete -c mlctl -n "__fish_mlctl_using_subcommand predict" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand inspect" -s o -l output -d 'Write the report to FILE (atomically) instead of stdout' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand inspect" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand inspect" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand inspect" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c mlctl -n "__fish_mlctl_using_subcommand inspect" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -s o -l output -d 'Where to write the int8 model (atomically)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l mode -d 'dynamic: activations quantized at run time; static: with scales calibrated on --calibration' -r -f -a "dynamic\t''
static\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l calibration -d 'Rows (parquet, CSV) or arrays (.npz) to calibrate activation ranges on (--mode static)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l calibrate -d 'Range method for --mode static: minmax, percentile or entropy' -r -f -a "minmax\t''
percentile\t''
entropy\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l percentile -d 'Percentile for --calibrate percentile (two-sided)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l activations -d 'Activation scales: one per row (token, sample; symmetric) or one per tensor (as ONNX Runtime)' -r -f -a "per-row\t''
per-tensor\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l exclude -d 'Node names or op types to leave in float (comma-separated)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l eval -d 'Rows (parquet, CSV) or arrays (.npz) to run both models on and compare' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l label -d 'Label column of --eval: accuracy (or RMSE) of both models' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l eval-exclude -d 'Columns of --eval and --calibration that are not features (comma-separated)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l max-accuracy-drop -d 'Exit 1 when accuracy drops by more than this (absolute; without --label: top-1 disagreement)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l gguf -d 'Also write the weights as candle\'s GGUF (block-quantized) to FILE, for Rust serving' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l gguf-type -d 'GGUF block type for matrix weights (q8_0, q4_0, q4_1, q5_0, q5_1, q2k..q6k, f16)' -r -f -a "q8_0\t''
q4_0\t''
q4_1\t''
q5_0\t''
q5_1\t''
q2k\t''
q3k\t''
q4k\t''
q5k\t''
q6k\t''
f16\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l batch-size -d 'Rows per model call during --eval' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l report -d 'Write the report to FILE (atomically) instead of stdout' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l per-tensor -d 'One scale per weight tensor instead of one per output channel'
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l reduce-range -d '7-bit weights, for CPUs without VNNI whose 8-bit products can saturate'
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -l auto -d 'When --max-accuracy-drop is exceeded, put the most sensitive layers back to float until it holds'
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -s h -l help -d 'Print help'
complete -c mlctl -n "__fish_mlctl_using_subcommand quantize" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l scenario -d 'single-stream (one request at a time), server (Poisson arrivals, dynamic batcher) or offline (maximum throughput)' -r -f -a "single-stream\t''
server\t''
offline\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l qps -d 'Server: offered requests per second (Poisson arrivals)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l max-batch -d 'Server: largest batch the batcher sends' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l max-delay-ms -d 'Server: longest a request waits for its batch to fill' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l find-max-qps -d 'Server: search the highest rate whose p99 stays within this many milliseconds' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l export-json -d 'Also write the JSON report to FILE' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l batch-sizes -d 'Batch sizes (comma-separated)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l warmup -d 'Runs before measuring, per model and batch size' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l runs -d 'Measured runs per model and batch size [default: 100, or as many as --duration allows]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l duration -d 'Measure each batch size for this long (e.g. 10s, 500ms)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l threads -d 'Threads for the CPU kernels (default: one per core)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l device -d 'cpu, cuda or cuda:N (cuda needs a build with --features cuda)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l shape -d 'Whole shape of a named input, e.g. input_ids=1,128 (repeatable)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l seq-len -d 'Length for free dimensions after the first (sequence length)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l inputs -d 'Real rows (parquet, CSV) as inputs instead of generated ones' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l max-p99-ms -d 'Exit 1 when any p99 exceeds this many milliseconds' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l max-p50-ms -d 'Exit 1 when any p50 exceeds this many milliseconds' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l min-throughput -d 'Exit 1 when any throughput is below this many rows per second' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -s o -l output -d 'Write the report to FILE (atomically) instead of stdout' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -s h -l help -d 'Print help'
complete -c mlctl -n "__fish_mlctl_using_subcommand bench" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and not __fish_seen_subcommand_from materialize historical skew get help" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and not __fish_seen_subcommand_from materialize historical skew get help" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and not __fish_seen_subcommand_from materialize historical skew get help" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and not __fish_seen_subcommand_from materialize historical skew get help" -s h -l help -d 'Print help'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and not __fish_seen_subcommand_from materialize historical skew get help" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and not __fish_seen_subcommand_from materialize historical skew get help" -f -a "materialize" -d 'Compute every entity\'s latest values as of END and write them to the online store'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and not __fish_seen_subcommand_from materialize historical skew get help" -f -a "historical" -d 'Build a point-in-time correct training set for entity rows (keys + timestamp)'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and not __fish_seen_subcommand_from materialize historical skew get help" -f -a "skew" -d 'Compare the feature values a service logged with what the offline path computes'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and not __fish_seen_subcommand_from materialize historical skew get help" -f -a "get" -d 'Read an entity\'s values from the online store (TTL applied on read)'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and not __fish_seen_subcommand_from materialize historical skew get help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from materialize" -l views -d 'Only these views (comma-separated; default: all)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from materialize" -l start -d 'Only entities with events since START (2013-01-08, 2013-01-08 06:00:00 or RFC 3339)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from materialize" -l end -d 'Values as of END [default: now; never in the future]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from materialize" -s o -l output -d 'Write the report to FILE (atomically) instead of stdout' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from materialize" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from materialize" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from materialize" -l incremental -d 'Continue from each view\'s watermark (the END of its last materialization)'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from materialize" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from materialize" -s h -l help -d 'Print help'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from materialize" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from historical" -l entities -d 'Entity rows: parquet or CSV with the join keys and a timestamp column' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from historical" -l features -d 'Features: view:feature or view (all its features), comma-separated' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from historical" -l timestamp -d 'The entity rows\' timestamp column' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from historical" -s o -l output -d 'The training set to write (parquet: the entity rows, then one column per feature)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from historical" -l report -d 'Write the report to FILE (atomically) instead of stdout' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from historical" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from historical" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from historical" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from historical" -s h -l help -d 'Print help'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from historical" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from skew" -l log -d 'The serving log: join keys, a timestamp, one column per feature as served' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from skew" -l features -d 'Features: view:feature or view, comma-separated (default: every feature with a column in the log)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from skew" -l timestamp -d 'The log\'s timestamp column (the time each value was served)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from skew" -l tolerance -d 'Numbers within this (absolute, or relative to the larger) count as equal' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from skew" -l max-mismatch -d 'Exit 1 when a feature\'s share of mismatching rows exceeds this' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from skew" -s o -l output -d 'Write the report to FILE (atomically) instead of stdout' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from skew" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from skew" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from skew" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from skew" -s h -l help -d 'Print help'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from skew" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from get" -l entity -d 'Join key value, KEY=VALUE (repeat for composite keys)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from get" -l features -d 'Features: view:feature or view, comma-separated (default: every view keyed by the --entity keys)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from get" -l at -d 'Read as of this time for the TTL [default: now]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from get" -s o -l output -d 'Write the report to FILE (atomically) instead of stdout' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from get" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from get" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from get" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from help" -f -a "materialize" -d 'Compute every entity\'s latest values as of END and write them to the online store'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from help" -f -a "historical" -d 'Build a point-in-time correct training set for entity rows (keys + timestamp)'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from help" -f -a "skew" -d 'Compare the feature values a service logged with what the offline path computes'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from help" -f -a "get" -d 'Read an entity\'s values from the online store (TTL applied on read)'
complete -c mlctl -n "__fish_mlctl_using_subcommand features; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l primary -d 'Replay: the live model' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l candidate -d 'Replay: the new model' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l inputs -d 'Replay: the logged requests both models answer (parquet or CSV)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l primary-log -d 'Logs: the live service\'s prediction log' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l candidate-log -d 'Logs: the shadow service\'s prediction log' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l baseline-noise-log -d 'Logs: a second log of the live model on the same requests (its noise)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l join -d 'Logs: the column that pairs rows [default: request_id when both logs have it, else row order]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l prediction -d 'Logs: the prediction column [default: prediction]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l score -d 'Logs: the score column [default: confidence, then score, when present]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l label -d 'The label column [default: label, when present]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l slice-by -d 'Compare per slice of these columns (comma-separated)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l task -d 'classification or regression [default: read from the outputs]' -r -f -a "classification\t''
regression\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l max-flip-rate -d 'Exit 1 when the share of rows whose class changed exceeds this' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l max-negative-flip-rate -d 'Exit 1 when the share of labelled rows the primary got right and the candidate wrong exceeds this' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l max-accuracy-drop -d 'Exit 1 when accuracy drops by more than this (absolute, 0.01 = one point)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l max-rmse-increase -d 'Exit 1 when the RMSE rises by more than this (regression)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l alpha -d 'Significance level of the tests [default: 0.05]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l max-psi -d 'PSI between the score distributions from which the verdict is marginal [default: 0.2]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l top-slices -d 'Slices listed in the report, worst first (every flagged slice is listed) [default: 20]' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l columns -d 'Replay: feature columns for a single 2-D model input, in order (default: every numeric column)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l exclude -d 'Replay: columns that are not features (the label, slice columns, prediction and confidence are left out already)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l batch-size -d 'Replay: rows per model call' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l device -d 'Replay: cpu, cuda or cuda:N (cuda needs a build with --features cuda)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l threads -d 'Replay: threads for the CPU kernels (default: one per core)' -r
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -s o -l output -d 'Write the report to FILE (atomically) instead of stdout' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l baseline-noise -d 'Replay: run the primary a second time (in other batches) and count only differences beyond its own'
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -l fail-on-slice-regression -d 'Exit 1 when the candidate is significantly worse in any slice (Holm-corrected)'
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -s h -l help -d 'Print help'
complete -c mlctl -n "__fish_mlctl_using_subcommand shadow-compare" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand completions" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand completions" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand completions" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand completions" -s h -l help -d 'Print help'
complete -c mlctl -n "__fish_mlctl_using_subcommand completions" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand manpage" -l format -d 'Report format. Default: table on a terminal; inferred from the extension of -o (.json, .md, .html, .csv)' -r -f -a "table\t''
json\t''
markdown\t''
html\t''
csv\t''"
complete -c mlctl -n "__fish_mlctl_using_subcommand manpage" -l config -d 'Settings file (default: ./mlctl.toml when present)' -r -F
complete -c mlctl -n "__fish_mlctl_using_subcommand manpage" -s q -l quiet -d 'No report on stdout: only the exit code, any -o file, and one line on stderr when a gate fails'
complete -c mlctl -n "__fish_mlctl_using_subcommand manpage" -s h -l help -d 'Print help'
complete -c mlctl -n "__fish_mlctl_using_subcommand manpage" -s V -l version -d 'Print version'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and not __fish_seen_subcommand_from drift baseline predict inspect quantize bench features shadow-compare completions manpage help" -f -a "drift" -d 'Detect data and prediction drift between a baseline and current data'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and not __fish_seen_subcommand_from drift baseline predict inspect quantize bench features shadow-compare completions manpage help" -f -a "baseline" -d 'Profile a training set once (or merge partition profiles) for fast drift checks'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and not __fish_seen_subcommand_from drift baseline predict inspect quantize bench features shadow-compare completions manpage help" -f -a "predict" -d 'Score a table with an ONNX model and write the predictions as parquet'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and not __fish_seen_subcommand_from drift baseline predict inspect quantize bench features shadow-compare completions manpage help" -f -a "inspect" -d 'Show an ONNX model\'s inputs, outputs, operators and weights, and whether mlctl runs it'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and not __fish_seen_subcommand_from drift baseline predict inspect quantize bench features shadow-compare completions manpage help" -f -a "quantize" -d 'Quantize an ONNX model\'s weights to int8 and measure what it cost'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and not __fish_seen_subcommand_from drift baseline predict inspect quantize bench features shadow-compare completions manpage help" -f -a "bench" -d 'Measure models\' latency and throughput (percentiles, comparison, CI gates)'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and not __fish_seen_subcommand_from drift baseline predict inspect quantize bench features shadow-compare completions manpage help" -f -a "features" -d 'Feature store: point-in-time training sets, materialization to an online store, online reads'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and not __fish_seen_subcommand_from drift baseline predict inspect quantize bench features shadow-compare completions manpage help" -f -a "shadow-compare" -d 'Compare a candidate model with the live one on the same requests (replayed or logged) and judge it'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and not __fish_seen_subcommand_from drift baseline predict inspect quantize bench features shadow-compare completions manpage help" -f -a "completions" -d 'Print shell completions (bash, zsh, fish, powershell)'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and not __fish_seen_subcommand_from drift baseline predict inspect quantize bench features shadow-compare completions manpage help" -f -a "manpage" -d 'Print the man page (roff)'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and not __fish_seen_subcommand_from drift baseline predict inspect quantize bench features shadow-compare completions manpage help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and __fish_seen_subcommand_from features" -f -a "materialize" -d 'Compute every entity\'s latest values as of END and write them to the online store'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and __fish_seen_subcommand_from features" -f -a "historical" -d 'Build a point-in-time correct training set for entity rows (keys + timestamp)'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and __fish_seen_subcommand_from features" -f -a "skew" -d 'Compare the feature values a service logged with what the offline path computes'
complete -c mlctl -n "__fish_mlctl_using_subcommand help; and __fish_seen_subcommand_from features" -f -a "get" -d 'Read an entity\'s values from the online store (TTL applied on read)'
