//! The command line of the cargo bench targets: `cargo bench --bench NAME
//! -- ARGS` hands them ARGS after a `--bench` of its own.

/// The arguments after the program's name, without cargo's `--bench`.
pub fn args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect()
}

/// The number given after flag `name` in `args`, else `default`.
pub fn number(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}
