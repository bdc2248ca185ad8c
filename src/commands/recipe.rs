//! `wgrec recipe`: a named preset trained over several seeds, with its summary.

use crate::cli::RecipeJob;
use anyhow::Result;
use wgrec::gpu::AdapterChoice;
use wgrec::kernels::Choice;
use wgrec::output::{self, Commit, Output};
use wgrec::report::{self, recipe};
use wgrec::train::run::Run;

pub fn run(adapter: &AdapterChoice, quiet: bool, kernels: Choice, job: RecipeJob) -> Result<()> {
    let RecipeJob {
        data,
        name,
        runs,
        embedding_dim,
        metrics_out,
        plot,
    } = job;
    let metrics_out = Output::check_opt("--metrics-out", metrics_out.as_deref())?;
    let plot = Output::check_opt("--plot", plot.as_deref())?;
    output::distinct(metrics_out.iter().chain(&plot))?;
    // Presets differ in seeds only: one table width.
    let width = match runs.first() {
        Some(o) => o.table_width(embedding_dim)?,
        None => embedding_dim,
    };
    let (dataset, gpu, kernels) = super::start(&data, adapter, quiet, width, kernels)?;
    let env = super::env(&gpu, &kernels, &dataset, None, None);
    let mut results = Vec::new();
    for opts in &runs {
        if !quiet {
            eprintln!("== {name}, seed {} ==", opts.seed);
        }
        let run = Run::new(opts.clone(), embedding_dim)?
            .progress(!quiet)
            .per_epoch(plot.is_some());
        let mut result = run.execute(&env)?.result;
        result.preset = Some(name.clone());
        results.push(result);
    }
    print!("{}", report::table(&results, &gpu.adapter));
    println!("data: {}", dataset.description);
    print!("{}", recipe::summary(&name, &results));
    let mut commit = Commit::new();
    super::stage_runs(
        &mut commit,
        (metrics_out.as_ref(), plot.as_ref()),
        &name,
        &results,
        &gpu.adapter,
        &dataset,
    )?;
    commit.finish()?;
    Ok(())
}
