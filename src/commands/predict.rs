//! `wgrec predict`: one user's predicted rating of one movie.

use anyhow::Result;
use std::path::Path;
use wgrec::checkpoint::Checkpoint;
use wgrec::gpu::AdapterChoice;
use wgrec::kernels::Choice;
use wgrec::serve::recommender::Recommender;

use super::{lookup, open_gpu};

pub fn run(
    adapter: &AdapterChoice,
    quiet: bool,
    kernels: Choice,
    model: &Path,
    user: &str,
    movie: &str,
) -> Result<()> {
    let ck = Checkpoint::load(model)?;
    let u = lookup(&ck.users, "user", user);
    let m = lookup(&ck.titles, "title", movie);
    let (gpu, family) = open_gpu(adapter, quiet, kernels)?;
    let p = Recommender::new(&gpu, ck, family)?.predict(&[u], &[m])?;
    println!("{:.4}", p[0]);
    Ok(())
}
