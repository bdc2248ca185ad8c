//! `wgrec sweep`: a grid of task weights, its table, CSV, JSON and charts.

use crate::cli::SweepJob;
use anyhow::Result;
use wgrec::gpu::AdapterChoice;
use wgrec::kernels::Choice;
use wgrec::progress;
use wgrec::report::{self, sweep};

pub fn run(adapter: &AdapterChoice, quiet: bool, kernels: Choice, job: SweepJob) -> Result<()> {
    let SweepJob { data, sweep } = job;
    let outputs = sweep::SweepOutputs::check(&sweep.out)?;
    let (dataset, gpu, kernels) = super::start(
        &data,
        adapter,
        quiet,
        sweep.base.table_width(sweep.embedding_dim)?,
        kernels,
    )?;
    let results = sweep::run(
        &super::env(&gpu, &kernels, &dataset, None, None),
        &sweep,
        !quiet,
    )?;
    print!("{}", report::table(&results, &gpu.adapter));
    println!("data: {}", dataset.description);
    sweep::write_outputs(&outputs, &results, &gpu.adapter)?;
    progress::note(format!(
        "wrote results.csv, results.json, tradeoff.svg and curves.svg to {}",
        sweep.out.display()
    ));
    Ok(())
}
