//! The `wgrec` binary: parses the command line, runs the job, prints an error once and exits non-zero.

mod cli;
mod commands;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Config, Job};
use std::process::ExitCode;
use wgrec::checkpoint::{self, Checkpoint};
use wgrec::{data, gpu, kernels::Kernels, report};

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
    match job {
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
        Job::Runs {
            data,
            runs,
            embedding_dim,
            eval_batch_size,
            metrics_out,
            save,
            resume,
        } => {
            // Checkpoints are read and output paths checked before anything slow happens.
            let resumed = match &resume {
                Some(p) => Some((p.as_path(), Checkpoint::load(p)?)),
                None => None,
            };
            for p in save.iter().flatten() {
                checkpoint::check_writable(p)?;
            }
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
            let dataset = data::load(&data)?;
            let load_seconds = t.elapsed().as_secs_f64();
            let gpu = gpu::Gpu::new(&adapter)?;
            if !quiet {
                eprintln!(
                    "data: {} (loaded in {load_seconds:.2} s)",
                    dataset.description
                );
                let a = &gpu.adapter;
                eprintln!("adapter: {} ({}, {})", a.name, a.backend, a.device_type);
            }
            let kernels = Kernels::new(&gpu, embedding_dim)?;
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
                    save: save.get(i).and_then(|p| p.as_deref()),
                };
                let r = checkpoint::train_evaluate_save(
                    &gpu,
                    &kernels,
                    &dataset,
                    &data,
                    embedding_dim,
                    opts,
                    eval_batch_size,
                    !quiet,
                    files,
                )?;
                results.push(r);
            }
            print!("{}", report::table(&results, &gpu.adapter));
            if let Some(path) = metrics_out {
                report::write_json(&path, &report::metrics_json(&results, &gpu.adapter))?;
            }
        }
        Job::Evaluate {
            model,
            data_dir,
            split_dir,
        } => commands::evaluate(&adapter, quiet, &model, data_dir, split_dir)?,
        Job::Recommend {
            model,
            user,
            out,
            k,
            exclude_seen,
        } => commands::recommend(
            &adapter,
            quiet,
            &model,
            user.as_deref(),
            out.as_deref(),
            k,
            exclude_seen,
        )?,
        Job::Predict { model, user, movie } => {
            commands::predict(&adapter, quiet, &model, &user, &movie)?
        }
    }
    Ok(ExitCode::SUCCESS)
}
