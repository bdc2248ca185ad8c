//! Times the BruteForce top-k (gather, candidate_scores, brute_force_top_k, readback) on the default adapter.
//!
//! ```sh
//! cargo run --release --example brute_force_times -- checkpoint MODEL.safetensors [K] [RUNS]
//! cargo run --release --example brute_force_times -- synthetic USERS ITEMS [K] [RUNS] [D]
//! ```
//! `checkpoint`: every user of a saved model against every title (as `wgrec recommend --all-users`).
//! `synthetic`: random embeddings (uniform in [-1, 1), seed 1). One warm-up run first (it compiles nothing,
//! the pipelines are built by `Kernels::new`, but the driver's first dispatches are slower); then RUNS
//! timed runs (RUNS = 0: build the plan and report its memory only). Memory: the GPU buffers of the plan
//! and the tables, and the process's peak RSS (lavapipe's buffers live in host memory).

use anyhow::{bail, Context, Result};
use std::time::Instant;
use wgrec::checkpoint::Checkpoint;
use wgrec::data::SplitMix64;
use wgrec::gpu::Gpu;
use wgrec::kernels::windowed::Kernels;
use wgrec::serve::{BruteForce, Exclusions};

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> Result<T> {
    match args.get(i) {
        Some(s) => s
            .parse()
            .ok()
            .with_context(|| format!("bad argument {s:?}")),
        None => Ok(default),
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let gpu = Gpu::try_default().context("no adapter")?;
    println!(
        "adapter: {} ({}, {})",
        gpu.adapter.name, gpu.adapter.backend, gpu.adapter.driver_info
    );
    let (dim, user_table, item_table, queries, candidates, k, runs) =
        match args.first().map(String::as_str) {
            Some("checkpoint") => {
                let path = args.get(1).context("checkpoint needs a path")?;
                let ck = Checkpoint::load(path.as_ref())?;
                let model = ck.to_gpu(&gpu)?.model;
                let queries: Vec<u32> = (1..ck.cfg.users as u32).collect();
                let candidates: Vec<u32> = (1..ck.cfg.movies as u32).collect();
                (
                    ck.cfg.embedding_dim,
                    model.user_emb,
                    model.movie_emb,
                    queries,
                    candidates,
                    arg(&args, 2, 100)?,
                    arg(&args, 3, 10)?,
                )
            }
            Some("synthetic") => {
                let (users, items): (usize, usize) = (arg(&args, 1, 100_000)?, arg(&args, 2, 60_000)?);
                let dim: usize = arg(&args, 5, 32)?;
                let mut rng = SplitMix64::new(1);
                let mut table = |n: usize| -> Vec<f32> {
                    (0..n * dim).map(|_| 2.0 * rng.next_f32() - 1.0).collect()
                };
                let (u, i) = (table(users), table(items));
                gpu.check_binding("the synthetic user table", (u.len() * 4) as u64)?;
                gpu.check_binding("the synthetic item table", (i.len() * 4) as u64)?;
                (
                    dim,
                    gpu.upload("synthetic users", &u),
                    gpu.upload("synthetic items", &i),
                    (0..users as u32).collect(),
                    (0..items as u32).collect(),
                    arg(&args, 3, 100)?,
                    arg(&args, 4, 3)?,
                )
            }
            _ => bail!("usage: brute_force_times checkpoint MODEL [K] [RUNS] | synthetic USERS ITEMS [K] [RUNS] [D]"),
        };
    let kernels = Kernels::new(&gpu, dim)?;
    let t = Instant::now();
    let plan = BruteForce::new(
        &gpu,
        &kernels,
        (&user_table, &queries),
        (&item_table, &candidates),
        dim,
        &Exclusions::none(queries.len()),
        k,
    )?;
    let build = t.elapsed().as_secs_f64();
    let table_bytes = user_table.size() + item_table.size();
    let memory = |plan: &BruteForce| {
        println!(
            "GPU buffers: plan {:.1} MiB + tables {:.1} MiB; peak RSS {:.0} MiB",
            plan.bytes as f64 / 1048576.0,
            table_bytes as f64 / 1048576.0,
            peak_rss_mib().unwrap_or(f64::NAN)
        );
    };
    if runs == 0 {
        // Plan only: its memory, without the (long, on a CPU adapter) runs.
        println!(
            "plan for {} queries built in {:.1} ms; not run (RUNS = 0)",
            queries.len(),
            build * 1e3
        );
        memory(&plan);
        return Ok(());
    }
    let t = Instant::now();
    let first = plan.run()?;
    let warm = t.elapsed().as_secs_f64();
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let again = plan.run()?;
        times.push(t.elapsed().as_secs_f64());
        if again != first {
            bail!("two runs of the same plan differ");
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "top-{k}: {} queries x {} candidates, D {dim}: plan {:.1} ms, first run {:.1} ms, {runs} runs: \
         min {:.1} ms, median {:.1} ms",
        queries.len(),
        candidates.len(),
        build * 1e3,
        warm * 1e3,
        times[0] * 1e3,
        times[times.len() / 2] * 1e3,
    );
    memory(&plan);
    Ok(())
}
