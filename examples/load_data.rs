//! Loads a data directory the way `wgrec train --data-dir` does and prints what it found and how long it
//! took, without touching the GPU: the loading benchmark in BENCHMARKS.md.
//!
//! `cargo run --release --example load_data -- DIR [random|temporal]`, under `/usr/bin/time -v` for the
//! peak RSS.

use std::time::Instant;
use wgrec::data::{load, DataOptions, SplitKind};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let dir = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: load_data DIR [random|temporal]"))?;
    let split = match args.next().as_deref().and_then(|s| s.to_str()) {
        None | Some("random") => SplitKind::Random,
        Some("temporal") => SplitKind::Temporal,
        Some(other) => anyhow::bail!("unknown split {other:?}"),
    };
    let t = Instant::now();
    let ds = load(&DataOptions {
        data_dir: Some(dir.into()),
        split,
        seed: 42,
        ..Default::default()
    })?;
    println!(
        "{}: {} users, {} titles ({} movies), loaded in {:.2} s",
        ds.description,
        ds.users.tokens.len(),
        ds.titles.tokens.len(),
        ds.candidates.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
