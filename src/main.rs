//! The `wgrec` binary: parses the command line, runs the job, prints an error once and exits non-zero.

mod cli;
mod commands;

use anyhow::Result;
use clap::{CommandFactory, Parser};
use cli::{Cli, Config, Job};
use std::process::ExitCode;
use wgrec::output::Output;
use wgrec::progress;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<()> {
    let Config {
        adapter,
        quiet,
        kernels,
        job,
    } = Cli::parse().into_config()?;
    if !quiet {
        progress::enable();
    }
    let adapter = &adapter;
    match job {
        Job::Completions(shell) => {
            clap_complete::generate(shell, &mut Cli::command(), "wgrec", &mut std::io::stdout());
            Ok(())
        }
        Job::Man(subcommand) => commands::man::run(Cli::command(), subcommand.as_deref()),
        Job::Adapters => commands::adapters::run(adapter),
        Job::Selftest => commands::selftest::run(adapter, quiet, kernels),
        Job::Bench(job) => commands::bench::run(adapter, kernels, job),
        Job::Synth(opts) => commands::synth::run(quiet, opts),
        Job::Runs(job) => commands::train::run(adapter, quiet, kernels, job),
        Job::Sweep(job) => commands::sweep::run(adapter, quiet, kernels, job),
        Job::Recipe(job) => commands::recipe::run(adapter, quiet, kernels, job),
        Job::Cv(job) => commands::cv::run(adapter, quiet, kernels, job),
        Job::Evaluate(job) => {
            let metrics_out = Output::check_opt("--metrics-out", job.metrics_out.as_deref())?;
            commands::evaluate::run(
                adapter,
                quiet,
                kernels,
                &job.model,
                job.data,
                job.split_given,
                metrics_out.as_ref(),
            )
        }
        Job::Recommend(job) => {
            let out = Output::check_opt("--out", job.out.as_deref())?;
            commands::recommend::run(adapter, quiet, kernels, &job, out.as_ref())
        }
        Job::Predict(job) => {
            commands::predict::run(adapter, quiet, kernels, &job.model, &job.user, &job.movie)
        }
        Job::Serve(job) => commands::serve::run(adapter, quiet, kernels, job),
    }
}
