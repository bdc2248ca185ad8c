//! `wgrec cv`: one configuration trained on every fold's training set and tested on its test set, with the
//! folds' metrics and their mean ± sd; the metrics file is written only when every fold has finished.

use crate::cli::CvJob;
use anyhow::Result;
use wgrec::data::{self, DataOptions};
use wgrec::gpu::{self, AdapterChoice};
use wgrec::kernels::{Choice, Compiled};
use wgrec::output::{Commit, Output};
use wgrec::report::cv::{self, FoldResult};
use wgrec::train::run::Run;

pub fn run(adapter: &AdapterChoice, quiet: bool, kernels: Choice, job: CvJob) -> Result<()> {
    let CvJob {
        data,
        folds,
        name,
        opts,
        embedding_dim,
        metrics_out,
    } = job;
    let metrics_out = Output::check_opt("--metrics-out", metrics_out.as_deref())?;
    let run = Run::new(opts, embedding_dim)?.progress(!quiet);
    let fold_data = |fold: &data::Fold| DataOptions {
        fold: Some(fold.clone()),
        ..data.clone()
    };
    // Every fold's options are checked before anything is trained.
    for fold in &folds {
        fold_data(fold).validate()?;
    }
    let gpu = gpu::Gpu::new(adapter)?;
    let family = kernels.resolve(&gpu.adapter);
    if !quiet {
        eprintln!("{}", family.adapter_line(&gpu.adapter));
    }
    let kernels = Compiled::new(&gpu, run.table_width()?, family)?;
    let mut results = Vec::new();
    for fold in &folds {
        let dataset = data::load(&fold_data(fold))?;
        if !quiet {
            eprintln!(
                "== {name}, fold {}: {} ==",
                fold.label(),
                dataset.description
            );
        }
        let env = super::env(&gpu, &kernels, &dataset, None, None);
        let outcome = run.execute(&env)?;
        let result = FoldResult {
            fold: fold.label(),
            data: dataset.description.clone(),
            run: outcome.result,
        };
        if !quiet {
            // Each fold's line as soon as it is known: a five-fold run takes a while.
            eprint!("{}", cv::table(std::slice::from_ref(&result)));
        }
        results.push(result);
    }
    print!("{}", cv::table(&results));
    println!(
        "{name}: {} folds; mean ± sample sd; adapter {}",
        results.len(),
        gpu.adapter.name
    );
    if let Some(out) = &metrics_out {
        let mut doc = cv::json(&results, &gpu.adapter);
        doc["name"] = name.into();
        let mut commit = Commit::new();
        commit.stage(out, &wgrec::output::json_bytes(&doc))?;
        commit.finish()?;
    }
    Ok(())
}
