//! `wgrec recommend`: BruteForce top-k movies of one user, or of every user into a CSV file.

use crate::cli::RecommendJob;
use anyhow::Result;
use std::time::Instant;
use wgrec::checkpoint::Checkpoint;
use wgrec::gpu::AdapterChoice;
use wgrec::kernels::Choice;
use wgrec::output::Output;
use wgrec::progress;
use wgrec::serve::recommender::{Query, Recommender};

use super::{lookup, open_gpu};

/// Quotes a CSV field when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `out`: the job's `--out`, already checked.
pub fn run(
    adapter: &AdapterChoice,
    quiet: bool,
    kernels: Choice,
    job: &RecommendJob,
    out: Option<&Output>,
) -> Result<()> {
    let (user, k, exclude_seen) = (job.user.as_deref(), job.k, job.exclude_seen);
    let ck = Checkpoint::load(&job.model)?;
    // Queries: one user, or every user of the vocabulary (rows 1..U).
    let (rows, names): (Vec<u32>, Vec<String>) = match user {
        Some(id) => (vec![lookup(&ck.users, "user", id)], vec![id.to_string()]),
        None => (1..ck.cfg.users as u32)
            .map(|r| (r, ck.users.token(r).expect("in range").to_string()))
            .unzip(),
    };
    let queries: Vec<Query> = rows
        .iter()
        .map(|&row| Query { row, exclude_seen })
        .collect();
    let (gpu, family) = open_gpu(adapter, quiet, kernels)?;
    let rec = Recommender::new(&gpu, ck, family)?;
    let plan = rec.plan(&queries, k)?;
    let candidates = rec.candidates();
    let t0 = Instant::now();
    let spinner = progress::spinner(format!(
        "top-{k} of {candidates} movies for {} users",
        queries.len()
    ));
    let top = plan.run()?;
    drop(spinner);
    let seconds = t0.elapsed().as_secs_f64();
    match out {
        None => {
            println!("{:>4}  {:>8}  title", "rank", "score");
            for (rank, (c, score)) in top.row(0).enumerate() {
                println!("{:>4}  {score:>8.4}  {}", rank + 1, rec.title(c));
            }
            let seen = rec.seen(rows[0]).count();
            let left = candidates - seen;
            if exclude_seen && left < k {
                eprintln!(
                    "note: user {} rated {seen} of the {candidates} movies in training: {left} left to \
                     recommend with --exclude-seen",
                    names[0],
                );
            }
        }
        Some(out) => {
            let mut csv = String::from("user,rank,title,score\n");
            for (a, name) in names.iter().enumerate() {
                for (rank, (c, score)) in top.row(a).enumerate() {
                    csv += &format!(
                        "{},{},{},{score}\n",
                        csv_field(name),
                        rank + 1,
                        csv_field(rec.title(c))
                    );
                }
            }
            out.write(csv.as_bytes())?;
            if !quiet {
                eprintln!(
                    "top-{k} of {candidates} movies for {} users in {:.1} ms (first run, after pipeline \
                     compilation); wrote {}",
                    queries.len(),
                    seconds * 1e3,
                    out.path().display()
                );
            }
        }
    }
    Ok(())
}
