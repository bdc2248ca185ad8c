//! One file per subcommand, each with a `run` that `main` calls; the helpers they share live here.

pub mod adapters;
pub mod bench;
pub mod cv;
pub mod evaluate;
pub mod man;
pub mod predict;
pub mod recipe;
pub mod recommend;
pub mod selftest;
pub mod serve;
pub mod sweep;
pub mod synth;
pub mod train;

use anyhow::Result;
use wgrec::checkpoint::Checkpoint;
use wgrec::data::{self, Vocabulary};
use wgrec::gpu::{self, AdapterChoice, Gpu};
use wgrec::kernels::{Choice, Compiled, Family};
use wgrec::output::{Commit, Output};
use wgrec::report::{self, plot};
use wgrec::train::run::{Env, RunResult};

/// Opens the adapter and compiles the chosen family's kernels for the checkpoint's D.
pub fn start_gpu(
    adapter: &AdapterChoice,
    quiet: bool,
    kernels: Choice,
    ck: &Checkpoint,
) -> Result<(Gpu, Compiled)> {
    let (gpu, family) = open_gpu(adapter, quiet, kernels)?;
    let kernels = Compiled::new(&gpu, ck.cfg.embedding_dim, family)?;
    Ok((gpu, kernels))
}

/// Opens the adapter for a command that evaluates or serves and resolves `--kernels` on it, saying both
/// unless quiet.
pub fn open_gpu(adapter: &AdapterChoice, quiet: bool, kernels: Choice) -> Result<(Gpu, Family)> {
    let gpu = Gpu::new(adapter)?;
    let family = kernels.resolve(&gpu.adapter);
    if !quiet {
        eprintln!("{}", family.adapter_line(&gpu.adapter));
    }
    Ok((gpu, family))
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

/// Loads the data, opens the adapter (saying which, and which kernel family trains, unless quiet) and
/// compiles the kernels for D.
pub fn start(
    data: &data::DataOptions,
    adapter: &gpu::AdapterChoice,
    quiet: bool,
    embedding_dim: usize,
    kernels: Choice,
) -> Result<(data::Dataset, gpu::Gpu, Compiled)> {
    let dataset = data::load(data)?;
    let gpu = gpu::Gpu::new(adapter)?;
    let family = kernels.resolve(&gpu.adapter);
    if !quiet {
        eprintln!("data: {}", dataset.description);
        eprintln!("{}", family.adapter_line(&gpu.adapter));
    }
    let kernels = Compiled::new(&gpu, embedding_dim, family)?;
    Ok((dataset, gpu, kernels))
}

/// The run environment over the compiled family `kernels`.
pub fn env<'g>(
    gpu: &'g Gpu,
    kernels: &'g Compiled,
    data: &'g data::Dataset,
    split: Option<&'g wgrec::checkpoint::SplitInfo>,
    profiler: Option<&'g wgrec::gpu::profile::Profiler>,
) -> Env<'g> {
    Env {
        gpu,
        ops: kernels.ops(),
        data,
        split,
        profiler,
    }
}
