//! The `wgrec` binary: parses the command line, runs the job, prints an error once and exits non-zero.

mod cli;
mod commands;

use anyhow::Result;
use clap::{CommandFactory, Parser};
use cli::{Cli, Config, Job};
use std::process::ExitCode;
use wgrec::checkpoint::{self, Checkpoint};
use wgrec::output::{self, Commit, Output};
use wgrec::{
    bench, data, gpu, kernels::Kernels, plot, profile, progress, recipe, report, sweep, synth,
};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode> {
    let Config {
        adapter,
        quiet,
        job,
    } = Cli::parse().into_config()?;
    if !quiet {
        progress::enable();
    }
    match job {
        Job::Completions(shell) => {
            clap_complete::generate(shell, &mut Cli::command(), "wgrec", &mut std::io::stdout());
        }
        Job::Man(subcommand) => commands::man(Cli::command(), subcommand.as_deref())?,
        Job::Adapters => {
            let adapters = gpu::list_adapters(&adapter);
            if adapters.is_empty() {
                return Err(gpu::no_adapter(&adapter));
            }
            for (a, chosen) in adapters {
                println!(
                    "{} {} (backend {}, {}, driver {})",
                    if chosen { "*" } else { " " },
                    a.name,
                    a.backend,
                    a.device_type,
                    if a.driver_info.is_empty() {
                        "unknown"
                    } else {
                        &a.driver_info
                    }
                );
            }
            println!("* = the adapter wgrec would use with these options");
        }
        Job::Bench {
            shapes,
            seed,
            out,
            scaling,
        } => {
            let out = Output::check_opt("--out", out.as_deref())?;
            let scaling = Output::check_opt("--scaling", scaling.as_deref())?;
            output::distinct(out.iter().chain(&scaling))?;
            let gpu = gpu::Gpu::new(&adapter)?;
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let a = &gpu.adapter;
            if let Some(svg) = scaling {
                println!("adapter: {} ({}, {})", a.name, a.backend, a.device_type);
                let points = bench::scaling(&gpu, seed)?;
                print!("{}", bench::scaling_table(&points));
                let mut commit = Commit::new();
                commit.stage(&svg, bench::scaling_svg(&points, &a.name)?.as_bytes())?;
                if let Some(out) = &out {
                    let doc = serde_json::json!({"adapter": a, "scaling": points});
                    commit.stage(out, &report::json_bytes(&doc))?;
                }
                commit.finish()?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "adapter: {} ({}, {}, {}); native sgemm: matrixmultiply on {threads} threads",
                a.name, a.backend, a.device_type, a.driver_info
            );
            let mut results = Vec::new();
            for shape in &shapes {
                let b = bench::run(&gpu, shape, threads, seed)?;
                print!("{}", bench::table(&b));
                results.push(b);
            }
            if let Some(out) = &out {
                let doc =
                    serde_json::json!({"adapter": a, "sgemm_threads": threads, "shapes": results});
                report::write_json(out, &doc)?;
            }
        }
        Job::Synth(opts) => {
            let t = std::time::Instant::now();
            synth::write(&opts)?;
            if !quiet {
                eprintln!(
                    "wrote {} ratings of {} users on {} movies to {} in {:.1} s",
                    opts.ratings,
                    opts.users,
                    opts.movies,
                    opts.out.display(),
                    t.elapsed().as_secs_f64()
                );
            }
        }
        Job::Runs {
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
        } => {
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
            let t = std::time::Instant::now();
            let dataset = {
                let _span = profile::trace::span("load data");
                data::load(&data)?
            };
            let load_seconds = t.elapsed().as_secs_f64();
            let gpu = {
                let _span = profile::trace::span("open the adapter");
                gpu::Gpu::new(&adapter)?
            };
            if !quiet {
                eprintln!(
                    "data: {} (loaded in {load_seconds:.2} s)",
                    dataset.description
                );
                let a = &gpu.adapter;
                eprintln!("adapter: {} ({}, {})", a.name, a.backend, a.device_type);
            }
            let kernels = {
                let _span = profile::trace::span("compile the kernels");
                Kernels::new(&gpu, embedding_dim)?
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
            let mut results = Vec::new();
            for (i, opts) in runs.iter().enumerate() {
                if !quiet {
                    eprintln!(
                        "== rating_weight {}, retrieval_weight {} ==",
                        opts.rating_weight, opts.retrieval_weight
                    );
                }
                let files = checkpoint::RunFiles {
                    resume: resumed.as_ref().map(|(p, c)| (*p, c)),
                    save: save.get(i).and_then(Option::as_ref),
                    per_epoch: plot.is_some(),
                };
                let (r, staged) = checkpoint::train_evaluate_save(
                    &gpu,
                    &kernels,
                    &dataset,
                    &data,
                    embedding_dim,
                    opts,
                    eval_batch_size,
                    !quiet,
                    files,
                    profiler.as_ref(),
                )?;
                if let (true, Some(p)) = (profile, &profiler) {
                    eprint!("{}", p.table());
                }
                if let Some(p) = &profiler {
                    p.reset();
                }
                commit.extend(staged);
                results.push(r);
            }
            stage_runs(
                &mut commit,
                (metrics_out.as_ref(), plot.as_ref()),
                "Per-epoch curves",
                &results,
                &gpu.adapter,
                &dataset,
            )?;
            if let Some(out) = &trace {
                commit.stage(out, &report::json_bytes(&profile::trace::to_json()))?;
            }
            print!("{}", report::table(&results, &gpu.adapter));
            println!("data: {}", dataset.description);
            commit.finish()?;
            if let (Some(out), false) = (&trace, quiet) {
                eprintln!("trace written to {}", out.path().display());
            }
        }
        Job::Sweep { data, sweep } => {
            let outputs = sweep::SweepOutputs::check(&sweep.out)?;
            let (dataset, gpu, kernels) = start(&data, &adapter, quiet, sweep.embedding_dim)?;
            let results = sweep::run(&gpu, &kernels, &dataset, &sweep, !quiet)?;
            print!("{}", report::table(&results, &gpu.adapter));
            println!("data: {}", dataset.description);
            sweep::write_outputs(&outputs, &results, &gpu.adapter)?;
            progress::note(format!(
                "wrote results.csv, results.json, tradeoff.svg and curves.svg to {}",
                sweep.out.display()
            ));
        }
        Job::Recipe {
            data,
            name,
            runs,
            embedding_dim,
            metrics_out,
            plot,
        } => {
            let metrics_out = Output::check_opt("--metrics-out", metrics_out.as_deref())?;
            let plot = Output::check_opt("--plot", plot.as_deref())?;
            output::distinct(metrics_out.iter().chain(&plot))?;
            let (dataset, gpu, kernels) = start(&data, &adapter, quiet, embedding_dim)?;
            let mut results = Vec::new();
            for opts in &runs {
                if !quiet {
                    eprintln!("== {name}, seed {} ==", opts.seed);
                }
                results.push(report::train_and_evaluate_with(
                    &gpu,
                    &kernels,
                    &dataset,
                    embedding_dim,
                    opts,
                    4096,
                    !quiet,
                    plot.is_some(),
                    None,
                )?);
            }
            print!("{}", report::table(&results, &gpu.adapter));
            println!("data: {}", dataset.description);
            print!("{}", recipe::summary(&name, &results));
            let mut commit = Commit::new();
            stage_runs(
                &mut commit,
                (metrics_out.as_ref(), plot.as_ref()),
                &name,
                &results,
                &gpu.adapter,
                &dataset,
            )?;
            commit.finish()?;
        }
        Job::Evaluate {
            model,
            data,
            split_given,
            metrics_out,
        } => {
            let metrics_out = Output::check_opt("--metrics-out", metrics_out.as_deref())?;
            commands::evaluate(
                &adapter,
                quiet,
                &model,
                data,
                split_given,
                metrics_out.as_ref(),
            )?
        }
        Job::Recommend {
            model,
            user,
            out,
            k,
            exclude_seen,
        } => {
            let out = Output::check_opt("--out", out.as_deref())?;
            commands::recommend(
                &adapter,
                quiet,
                &model,
                user.as_deref(),
                out.as_ref(),
                k,
                exclude_seen,
            )?
        }
        Job::Predict { model, user, movie } => {
            commands::predict(&adapter, quiet, &model, &user, &movie)?
        }
        Job::Serve {
            model,
            addr,
            max_batch,
            max_wait,
        } => wgrec::http::run(wgrec::http::ServeOptions {
            model,
            addr,
            max_batch,
            max_wait,
            adapter,
            quiet,
        })?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Stages the runs' metrics JSON (with the data set it ran on) and their per-epoch curves titled `title`.
fn stage_runs(
    commit: &mut Commit,
    (metrics_out, plot): (Option<&Output>, Option<&Output>),
    title: &str,
    results: &[report::RunResult],
    adapter: &gpu::AdapterSummary,
    dataset: &data::Dataset,
) -> Result<()> {
    if let Some(out) = metrics_out {
        let mut doc = report::metrics_json(results, adapter);
        doc["data"] = dataset.description.clone().into();
        commit.stage(out, &report::json_bytes(&doc))?;
    }
    if let Some(out) = plot {
        let svg = plot::curves_svg(title, &sweep::curves(results))?;
        commit.stage(out, svg.as_bytes())?;
    }
    Ok(())
}

/// Loads the data, opens the adapter (saying which, unless quiet) and compiles the kernels for D.
fn start(
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
