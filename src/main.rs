//! The `wgrec` binary: parses the command line, runs the job, prints an error once and exits non-zero.

mod cli;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Job};
use std::process::ExitCode;
use wgrec::{data, gpu, kernels::Kernels, plot, recipe, report, sweep};

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
        Job::Runs {
            data,
            runs,
            embedding_dim,
            eval_batch_size,
            metrics_out,
            plot,
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
                let r = report::train_and_evaluate_with(
                    &gpu,
                    &kernels,
                    &dataset,
                    embedding_dim,
                    opts,
                    eval_batch_size,
                    !config.quiet,
                    plot.is_some(),
                )?;
                results.push(r);
            }
            print!("{}", report::table(&results, &gpu.adapter));
            if let Some(path) = metrics_out {
                report::write_json(&path, &report::metrics_json(&results, &gpu.adapter))?;
            }
            if let Some(path) = plot {
                plot::curves_svg(&path, "Per-epoch curves", &sweep::curves(&results))?;
            }
        }
        Job::Sweep { data, sweep } => {
            let dataset = data::load(&data)?;
            let gpu = gpu::Gpu::new(&config.adapter)?;
            if !config.quiet {
                eprintln!("data: {}", dataset.description);
                let a = &gpu.adapter;
                eprintln!("adapter: {} ({}, {})", a.name, a.backend, a.device_type);
            }
            let kernels = Kernels::new(&gpu, sweep.embedding_dim)?;
            let results = sweep::run(&gpu, &kernels, &dataset, &sweep, !config.quiet)?;
            print!("{}", report::table(&results, &gpu.adapter));
            sweep::write_outputs(&sweep.out, &results, &gpu.adapter)?;
            eprintln!(
                "wrote results.csv, results.json, tradeoff.svg and curves.svg to {}",
                sweep.out.display()
            );
        }
        Job::Recipe {
            data,
            name,
            runs,
            embedding_dim,
            metrics_out,
            plot,
        } => {
            let dataset = data::load(&data)?;
            let gpu = gpu::Gpu::new(&config.adapter)?;
            if !config.quiet {
                eprintln!("data: {}", dataset.description);
                let a = &gpu.adapter;
                eprintln!("adapter: {} ({}, {})", a.name, a.backend, a.device_type);
            }
            let kernels = Kernels::new(&gpu, embedding_dim)?;
            let mut results = Vec::new();
            for opts in &runs {
                if !config.quiet {
                    eprintln!("== {name}, seed {} ==", opts.seed);
                }
                results.push(report::train_and_evaluate_with(
                    &gpu,
                    &kernels,
                    &dataset,
                    embedding_dim,
                    opts,
                    4096,
                    !config.quiet,
                    plot.is_some(),
                )?);
            }
            print!("{}", report::table(&results, &gpu.adapter));
            print!("{}", recipe::summary(&name, &results));
            if let Some(path) = metrics_out {
                report::write_json(&path, &report::metrics_json(&results, &gpu.adapter))?;
            }
            if let Some(path) = plot {
                plot::curves_svg(&path, &name, &sweep::curves(&results))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
