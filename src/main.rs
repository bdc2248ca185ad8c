//! The `wgrec` binary: parses the command line, runs the job, prints an error once and exits non-zero.

mod cli;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Job};
use std::process::ExitCode;
use wgrec::{data, gpu, kernels::Kernels, report, synth};

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
    let config = Cli::parse().into_config()?;
    match config.job {
        Job::Adapters => {
            let adapters = gpu::list_adapters(&config.adapter);
            if adapters.is_empty() {
                return Err(gpu::no_adapter(&config.adapter));
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
        Job::Synth(opts) => {
            let t = std::time::Instant::now();
            synth::write(&opts)?;
            if !config.quiet {
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
        } => {
            let t = std::time::Instant::now();
            let dataset = data::load(&data)?;
            let load_seconds = t.elapsed().as_secs_f64();
            let gpu = gpu::Gpu::new(&config.adapter)?;
            if !config.quiet {
                eprintln!(
                    "data: {} (loaded in {load_seconds:.2} s)",
                    dataset.description
                );
                let a = &gpu.adapter;
                eprintln!("adapter: {} ({}, {})", a.name, a.backend, a.device_type);
            }
            let kernels = Kernels::new(&gpu, embedding_dim)?;
            let mut results = Vec::new();
            for opts in &runs {
                if !config.quiet {
                    eprintln!(
                        "== rating_weight {}, retrieval_weight {} ==",
                        opts.rating_weight, opts.retrieval_weight
                    );
                }
                let r = report::train_and_evaluate(
                    &gpu,
                    &kernels,
                    &dataset,
                    embedding_dim,
                    opts,
                    eval_batch_size,
                    !config.quiet,
                )?;
                results.push(r);
            }
            print!("{}", report::table(&results, &gpu.adapter));
            if let Some(path) = metrics_out {
                report::write_json(&path, &report::metrics_json(&results, &gpu.adapter))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
