//! `wgrec sweep`: a grid of task weights and any presets beside it, its table, CSV, JSON and charts.

use crate::cli::SweepJob;
use anyhow::Result;
use wgrec::gpu::AdapterChoice;
use wgrec::kernels::{Choice, Compiled};
use wgrec::progress;
use wgrec::report::{self, recipe, sweep};

pub fn run(adapter: &AdapterChoice, quiet: bool, kernels: Choice, job: SweepJob) -> Result<()> {
    let SweepJob { data, sweep } = job;
    let outputs = sweep::SweepOutputs::check(&sweep.out)?;
    let grid_width = sweep.base.table_width(sweep.embedding_dim)?;
    let (dataset, gpu, kernels) = super::start(&data, adapter, quiet, grid_width, kernels)?;
    let mut results = sweep::run(
        &super::env(&gpu, &kernels, &dataset, None, None),
        &sweep,
        !quiet,
    )?;
    for name in &sweep.presets {
        let p = recipe::preset(name)?;
        let width = p.opts.table_width(p.embedding_dim)?;
        // A preset of another table width needs the kernels compiled for it.
        let own = match width == grid_width {
            true => None,
            false => Some(Compiled::new(&gpu, width, kernels.ops().family())?),
        };
        let env = super::env(&gpu, own.as_ref().unwrap_or(&kernels), &dataset, None, None);
        results.extend(sweep::run_preset(
            &env,
            &sweep,
            p.name,
            &p.opts,
            p.embedding_dim,
            !quiet,
        )?);
    }
    print!("{}", report::table(&results, &gpu.adapter));
    println!("data: {}", dataset.description);
    sweep::write_outputs(&outputs, &results, &gpu.adapter)?;
    progress::note(format!(
        "wrote results.csv, results.json, tradeoff.svg and curves.svg to {}",
        sweep.out.display()
    ));
    Ok(())
}
