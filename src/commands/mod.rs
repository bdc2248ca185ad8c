//! One file per subcommand, each with a `run` that `main` calls; the helpers they share live here.

pub mod adapters;
pub mod bench;
pub mod evaluate;
pub mod man;
pub mod predict;
pub mod recipe;
pub mod recommend;
pub mod serve;
pub mod sweep;

pub mod synth;
pub mod train;

use anyhow::Result;
use wgrec::checkpoint::Checkpoint;
use wgrec::data::{self, Vocabulary};
use wgrec::gpu::{self, AdapterChoice, Gpu};
use wgrec::kernels::windowed::Kernels;
use wgrec::output::{Commit, Output};
use wgrec::report::{self, plot};
use wgrec::train::run::RunResult;

pub fn start_gpu(adapter: &AdapterChoice, quiet: bool, ck: &Checkpoint) -> Result<(Gpu, Kernels)> {
    let gpu = open_gpu(adapter, quiet)?;
    let kernels = Kernels::new(&gpu, ck.cfg.embedding_dim)?;
    Ok((gpu, kernels))
}

/// Opens the adapter, saying which unless quiet.
pub fn open_gpu(adapter: &AdapterChoice, quiet: bool) -> Result<Gpu> {
    let gpu = Gpu::new(adapter)?;
    if !quiet {
        let a = &gpu.adapter;
        eprintln!("adapter: {} ({}, {})", a.name, a.backend, a.device_type);
    }
    Ok(gpu)
}

/// The vocabulary row of `value`, or the out-of-vocabulary row 0 with a note on stderr (TFRS's
/// StringLookup maps unknown values to its OOV index the same way).
pub fn lookup(vocab: &Vocabulary, what: &str, value: &str) -> u32 {
    let row = vocab.lookup(value);
    if row == 0 {
        eprintln!(
            "note: {what} {value:?} is not in the model's vocabulary; using the out-of-vocabulary embedding \
             (row 0), as TFRS does"
        );
    }
    row
}

/// Stages the runs' metrics JSON (with the data set it ran on) and their per-epoch curves titled `title`.
pub fn stage_runs(
    commit: &mut Commit,
    (metrics_out, plot): (Option<&Output>, Option<&Output>),
    title: &str,
    results: &[RunResult],
    adapter: &gpu::AdapterSummary,
    dataset: &data::Dataset,
) -> Result<()> {
    if let Some(out) = metrics_out {
        let mut doc = report::metrics_json(results, adapter);
        doc["data"] = dataset.description.clone().into();
        commit.stage(out, &wgrec::output::json_bytes(&doc))?;
    }
    if let Some(out) = plot {
        let svg = plot::curves_svg(title, &report::sweep::curves(results))?;
        commit.stage(out, svg.as_bytes())?;
    }
    Ok(())
}

/// Loads the data, opens the adapter (saying which, unless quiet) and compiles the kernels for D.
pub fn start(
    data: &data::DataOptions,
    adapter: &gpu::AdapterChoice,
    quiet: bool,
    embedding_dim: usize,
) -> Result<(data::Dataset, gpu::Gpu, Kernels)> {
    let dataset = data::load(data)?;
    let gpu = gpu::Gpu::new(adapter)?;
    if !quiet {
        eprintln!("data: {}", dataset.description);
        let a = &gpu.adapter;
        eprintln!("adapter: {} ({}, {})", a.name, a.backend, a.device_type);
    }
    let kernels = Kernels::new(&gpu, embedding_dim)?;
    Ok((dataset, gpu, kernels))
}
