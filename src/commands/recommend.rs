//! `wgrec recommend`: BruteForce top-k movies of one user, or of every user into a CSV file.

use anyhow::Result;
use std::path::Path;
use std::time::Instant;
use wgrec::checkpoint::Checkpoint;
use wgrec::gpu::AdapterChoice;
use wgrec::output::Output;
use wgrec::progress;
use wgrec::serve::{BruteForce, Exclusions};

use super::{lookup, start_gpu};

/// Quotes a CSV field when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn run(
    adapter: &AdapterChoice,
    quiet: bool,
    model: &Path,
    user: Option<&str>,
    out: Option<&Output>,
    k: usize,
    exclude_seen: bool,
) -> Result<()> {
    let ck = Checkpoint::load(model)?;
    // Queries: one user, or every user of the vocabulary (rows 1..U).
    let (queries, names): (Vec<u32>, Vec<String>) = match user {
        Some(id) => (vec![lookup(&ck.users, "user", id)], vec![id.to_string()]),
        None => (1..ck.cfg.users as u32)
            .map(|r| (r, ck.users.token(r).expect("in range").to_string()))
            .unzip(),
    };
    // Candidates: every title (rows 1..M); the OOV row is not a movie. Candidate i is row i + 1.
    let candidates: Vec<u32> = (1..ck.cfg.movies as u32).collect();
    let mut exclude = Exclusions::none(queries.len());
    if exclude_seen {
        exclude.offsets.clear();
        exclude.offsets.push(0);
        for &q in &queries {
            exclude
                .items
                .extend(ck.seen.of(q).iter().filter(|&&r| r > 0).map(|&r| r - 1));
            exclude.offsets.push(exclude.items.len() as u32);
        }
    }
    let (gpu, kernels) = start_gpu(adapter, quiet, &ck)?;
    let gpu_model = ck.to_gpu(&gpu)?;
    let plan = BruteForce::new(
        &gpu,
        &kernels,
        (&gpu_model.user_emb, &queries),
        (&gpu_model.movie_emb, &candidates),
        ck.cfg.embedding_dim,
        &exclude,
        k,
    )?;
    let t0 = Instant::now();
    let spinner = progress::spinner(format!(
        "top-{k} of {} movies for {} users",
        candidates.len(),
        queries.len()
    ));
    let top = plan.run()?;
    drop(spinner);
    let seconds = t0.elapsed().as_secs_f64();
    let title = |c: u32| ck.titles.token(c + 1).expect("candidate rows are titles");
    match out {
        None => {
            println!("{:>4}  {:>8}  title", "rank", "score");
            for (rank, (c, score)) in top.row(0).enumerate() {
                println!("{:>4}  {score:>8.4}  {}", rank + 1, title(c));
            }
            let left = candidates.len() - exclude.items.len();
            if exclude_seen && left < k {
                eprintln!(
                    "note: user {} rated {} of the {} movies in training: {left} left to recommend \
                     with --exclude-seen",
                    names[0],
                    exclude.items.len(),
                    candidates.len()
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
                        csv_field(title(c))
                    );
                }
            }
            out.write(csv.as_bytes())?;
            if !quiet {
                eprintln!(
                    "top-{k} of {} movies for {} users in {:.1} ms (first run, after pipeline compilation); \
                     wrote {}",
                    candidates.len(),
                    queries.len(),
                    seconds * 1e3,
                    out.path().display()
                );
            }
        }
    }
    Ok(())
}
