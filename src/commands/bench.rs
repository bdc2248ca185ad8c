//! `wgrec bench`: each kernel's time against native sgemm at the given shapes, or the scaling chart.

use crate::cli::BenchJob;
use anyhow::Result;
use wgrec::gpu::{self, AdapterChoice};
use wgrec::kernels::Choice;
use wgrec::output::{self, Commit, Output};
use wgrec::report::bench;

pub fn run(adapter: &AdapterChoice, kernels: Choice, job: BenchJob) -> Result<()> {
    let BenchJob {
        shapes,
        seed,
        out,
        scaling,
    } = job;
    let out = Output::check_opt("--out", out.as_deref())?;
    let scaling = Output::check_opt("--scaling", scaling.as_deref())?;
    output::distinct(out.iter().chain(&scaling))?;
    let gpu = gpu::Gpu::new(adapter)?;
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
            commit.stage(out, &output::json_bytes(&doc))?;
        }
        commit.finish()?;
        return Ok(());
    }
    let family = kernels.resolve(a);
    println!(
        "adapter: {} ({}, {}, {}); kernels: {}; native sgemm: matrixmultiply on {threads} threads",
        a.name,
        a.backend,
        a.device_type,
        a.driver_info,
        family.name()
    );
    let mut results = Vec::new();
    for shape in &shapes {
        let b = bench::run(&gpu, shape, threads, seed, family)?;
        print!("{}", bench::table(&b));
        results.push(b);
    }
    if let Some(out) = &out {
        let doc = serde_json::json!({"adapter": a, "kernels": family, "sgemm_threads": threads, "shapes": results});
        output::write_json(out, &doc)?;
    }
    Ok(())
}
