//! `wgrec predict`: one user's predicted rating of one movie.

use anyhow::Result;
use std::path::Path;
use wgrec::checkpoint::Checkpoint;
use wgrec::gpu::AdapterChoice;
use wgrec::serve::{self};

use super::{lookup, start_gpu};

pub fn run(
    adapter: &AdapterChoice,
    quiet: bool,
    model: &Path,
    user: &str,
    movie: &str,
) -> Result<()> {
    let ck = Checkpoint::load(model)?;
    let u = lookup(&ck.users, "user", user);
    let m = lookup(&ck.titles, "title", movie);
    let (gpu, kernels) = start_gpu(adapter, quiet, &ck)?;
    let gpu_model = ck.to_gpu(&gpu)?;
    let p = serve::predict(&gpu, &kernels, &gpu_model, &[u], &[m])?;
    println!("{:.4}", p[0]);
    Ok(())
}
