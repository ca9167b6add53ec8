//! `mlctl baseline`: profile a training set once, so that drift checks in CI
//! do not re-read it. Several files (partitions of one data set) are profiled
//! one by one and merged; `--merge` combines profiles made elsewhere, for
//! example one per partition by a batch job.

use std::path::PathBuf;

use crate::data::Table;
use crate::drift::{read_profile, sample::profile_table};
use crate::error::{Error, Result};
use crate::report::{Gate, Outcome, Report, Section};
use crate::stats::profile::TableProfile;

#[derive(Debug, Clone)]
pub struct Options {
    /// Tables to profile, or profiles to merge with `merge`.
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    pub merge: bool,
    pub exact_cap: usize,
}

pub fn run(opts: &Options) -> Result<Report> {
    if opts.inputs.is_empty() {
        return Err(Error::usage("give at least one input file"));
    }
    if opts.exact_cap < 2 {
        return Err(Error::usage("--exact-cap must be at least 2"));
    }
    for input in &opts.inputs {
        if same_file(input, &opts.output) {
            return Err(Error::usage(format!(
                "refusing to overwrite the input {} with the profile",
                input.display()
            )));
        }
    }
    let mut merged: Option<TableProfile> = None;
    for input in &opts.inputs {
        let profile = if opts.merge {
            read_profile(input)?
        } else {
            profile_table(&Table::open(input)?, opts.exact_cap)?
        };
        merged = Some(match merged {
            None => profile,
            Some(m) => m.merge(&profile).map_err(|e| Error::input(input, e))?,
        });
    }
    let profile = merged.expect("at least one input");
    let json = serde_json::to_string(&profile).expect("profile JSON");
    crate::fsio::write_atomic(&opts.output, json.as_bytes())?;

    let mut report = Report::new(
        "baseline",
        format!("Baseline profile {}", opts.output.display()),
    );
    report.figure("rows", "Rows", profile.rows);
    report.figure("columns", "Columns", profile.columns.len());
    report.figure("sources", "Source files", profile.sources.len());
    report.figure("bytes", "Profile size (bytes)", json.len());
    report.setting(
        "exact_cap",
        "Exact distinct values kept per column",
        profile.exact_cap,
    );
    let mut s = Section::new(
        "columns",
        "Columns",
        &[
            ("column", "Column"),
            ("type", "Type"),
            ("rows", "Rows"),
            ("nulls", "Nulls"),
            ("distinct", "Distinct kept"),
            ("exact", "Exact"),
            ("rank_error_share", "Max rank error"),
        ],
    );
    for c in &profile.columns {
        s.push(vec![
            c.name.clone().into(),
            c.value_type.clone().into(),
            c.rows.into(),
            c.nulls.into(),
            c.n_distinct().into(),
            c.is_exact().into(),
            (c.rank_error as f64 / c.usable().max(1) as f64).into(),
        ]);
    }
    report.sections.push(s);
    report.gate = Gate {
        outcome: Outcome::Pass,
        rule: "profile written".into(),
        message: format!("wrote {}", opts.output.display()),
    };
    Ok(report)
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
