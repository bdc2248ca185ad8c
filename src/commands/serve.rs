//! `wgrec serve`: the model over HTTP (the server is the library's `serve::http`).

use crate::cli::ServeJob;
use anyhow::Result;
use wgrec::gpu::AdapterChoice;
use wgrec::kernels::Choice;
use wgrec::serve::http::{self, ServeOptions};

pub fn run(adapter: &AdapterChoice, quiet: bool, kernels: Choice, job: ServeJob) -> Result<()> {
    http::run(ServeOptions {
        model: job.model,
        addr: job.addr,
        max_batch: job.max_batch,
        max_wait: job.max_wait,
        adapter: adapter.clone(),
        kernels,
        quiet,
    })
}
