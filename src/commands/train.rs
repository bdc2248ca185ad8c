//! `wgrec train` and `wgrec tutorial`: every configuration trained, evaluated and saved in turn; all
//! outputs are staged and committed at the end, so a failed run replaces none of them.

use crate::cli::TrainJob;
use anyhow::Result;
use wgrec::checkpoint::Checkpoint;
use wgrec::checkpoint::SplitInfo;
use wgrec::data;
use wgrec::gpu::profile;
use wgrec::gpu::{self, AdapterChoice};
use wgrec::kernels::{Choice, Compiled};
use wgrec::output::{self, Commit, Output};
use wgrec::report;
use wgrec::train::run::Run;

pub fn run(adapter: &AdapterChoice, quiet: bool, kernels: Choice, job: TrainJob) -> Result<()> {
    let TrainJob {
        data,
        runs,
        embedding_dim,
        eval_batch_size,
        metrics_out,
        profile,
        trace,
        save,
        resume,
        plot,
    } = job;
    // Output paths are checked and checkpoints read before anything slow happens.
    let save = save
        .iter()
        .map(|p| Output::check_opt("--save", p.as_deref()))
        .collect::<Result<Vec<_>>>()?;
    let metrics_out = Output::check_opt("--metrics-out", metrics_out.as_deref())?;
    let plot = Output::check_opt("--plot", plot.as_deref())?;
    let trace = Output::check_opt("--trace", trace.as_deref())?;
    output::distinct(
        save.iter()
            .flatten()
            .chain(&metrics_out)
            .chain(&plot)
            .chain(&trace),
    )?;
    if trace.is_some() {
        profile::trace::start();
    }
    let resumed = match &resume {
        Some(p) => Some((p.as_path(), Checkpoint::load(p)?)),
        None => None,
    };
    let embedding_dim = match (&resumed, embedding_dim) {
        (Some((p, c)), Some(d)) if d != c.cfg.embedding_dim => anyhow::bail!(
            "checkpoint {} has embedding dimension {}, not --embedding-dim {d}: it belongs to another config",
            p.display(),
            c.cfg.embedding_dim
        ),
        (Some((_, c)), _) => c.cfg.embedding_dim,
        (None, d) => d.unwrap_or(32),
    };
    // Each run's rules (what combines with --resume and --save) are checked here, before the data loads.
    let runs = runs
        .into_iter()
        .enumerate()
        .map(|(i, opts)| {
            let mut run = Run::new(opts, embedding_dim)?
                .eval_batch_size(eval_batch_size)
                .progress(!quiet)
                .per_epoch(plot.is_some());
            if let Some((path, ck)) = &resumed {
                run = run.resume(path, ck)?;
            }
            if let Some(out) = save.get(i).and_then(Option::as_ref) {
                run = run.save(out)?;
            }
            Ok(run)
        })
        .collect::<Result<Vec<_>>>()?;
    let widths: Vec<usize> = runs.iter().map(Run::table_width).collect::<Result<_>>()?;
    let width = widths.first().copied().unwrap_or(embedding_dim);
    if widths.iter().any(|&w| w != width) {
        anyhow::bail!(
            "the runs read tables of different widths {widths:?}: train them one at a time"
        );
    }
    let t = std::time::Instant::now();
    let dataset = {
        let _span = profile::trace::span("load data");
        data::load(&data)?
    };
    let load_seconds = t.elapsed().as_secs_f64();
    let gpu = {
        let _span = profile::trace::span("open the adapter");
        gpu::Gpu::new(adapter)?
    };
    let family = kernels.resolve(&gpu.adapter);
    if !quiet {
        eprintln!(
            "data: {} (loaded in {load_seconds:.2} s)",
            dataset.description
        );
        eprintln!("{}", family.adapter_line(&gpu.adapter));
    }
    let kernels = {
        let _span = profile::trace::span("compile the kernels");
        Compiled::new(&gpu, width, family)?
    };
    // A trace needs the GPU timings too; the table is printed only with --profile.
    let profiler = if profile || trace.is_some() {
        let p = profile::Profiler::new(&gpu)?;
        if p.timing() == profile::Timing::CpuWallClock {
            eprintln!(
                "note: adapter {} has no timestamp queries; each dispatch is timed on the CPU \
                 on its own, submission included",
                gpu.adapter.name
            );
        }
        Some(p)
    } else {
        None
    };
    // Every output is staged and committed at the end, so a failed run replaces none of them.
    let mut commit = Commit::new();
    let split = SplitInfo::of(&data);
    let env = super::env(&gpu, &kernels, &dataset, Some(&split), profiler.as_ref());
    let mut results = Vec::new();
    for run in &runs {
        if !quiet {
            eprintln!(
                "== rating_weight {}, retrieval_weight {} ==",
                run.opts.rating_weight, run.opts.retrieval_weight
            );
        }
        let outcome = run.execute(&env)?;
        if let (true, Some(p)) = (profile, &profiler) {
            eprint!("{}", p.table());
        }
        if let Some(p) = &profiler {
            p.reset();
        }
        commit.extend(outcome.staged);
        results.push(outcome.result);
    }
    super::stage_runs(
        &mut commit,
        (metrics_out.as_ref(), plot.as_ref()),
        "Per-epoch curves",
        &results,
        &gpu.adapter,
        &dataset,
    )?;
    if let Some(out) = &trace {
        commit.stage(out, &output::json_bytes(&profile::trace::to_json()))?;
    }
    print!("{}", report::table(&results, &gpu.adapter));
    println!("data: {}", dataset.description);
    commit.finish()?;
    if let (Some(out), false) = (&trace, quiet) {
        eprintln!("trace written to {}", out.path().display());
    }
    Ok(())
}
