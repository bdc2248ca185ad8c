//! The commands that work from a saved model: `evaluate`, `recommend` and `predict`. Each reads and checks
//! the checkpoint before it starts the GPU, so a bad file fails fast with its name in the error. Also
//! `man`, which needs only the command line.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;
use wgrec::checkpoint::Checkpoint;
use wgrec::data::{self, DataOptions, Vocabulary};
use wgrec::evaluate::Evaluator;
use wgrec::gpu::{AdapterChoice, Gpu};
use wgrec::kernels::Kernels;
use wgrec::output::Output;
use wgrec::recommender::{Query, Recommender};
use wgrec::{progress, report};

fn start_gpu(adapter: &AdapterChoice, quiet: bool) -> Result<Gpu> {
    let gpu = Gpu::new(adapter)?;
    if !quiet {
        let a = &gpu.adapter;
        eprintln!("adapter: {} ({}, {})", a.name, a.backend, a.device_type);
    }
    Ok(gpu)
}

/// The vocabulary row of `value`, or the out-of-vocabulary row 0 with a note on stderr (TFRS's
/// StringLookup maps unknown values to its OOV index the same way).
fn lookup(vocab: &Vocabulary, what: &str, value: &str) -> u32 {
    let row = vocab.lookup(value);
    if row == 0 {
        eprintln!(
            "note: {what} {value:?} is not in the model's vocabulary; using the out-of-vocabulary embedding \
             (row 0), as TFRS does"
        );
    }
    row
}

pub fn evaluate(
    adapter: &AdapterChoice,
    quiet: bool,
    model: &Path,
    mut data_opts: DataOptions,
    split_given: bool,
    metrics_out: Option<&Output>,
) -> Result<()> {
    let ck = Checkpoint::load(model)?;
    let t = &ck.training;
    // The test set the checkpoint was evaluated on: its seed, and its split and data set unless given.
    data_opts.seed = t.split.seed;
    if !split_given {
        data_opts.split = t.split.kind;
    }
    if data_opts.data_dir.is_none() && data_opts.dataset.is_none() {
        data_opts.dataset = t.split.dataset.clone();
    }
    if let (None, Some(recorded), false) = (&data_opts.split_dir, &t.split.split_dir, split_given) {
        let d = PathBuf::from(recorded);
        if !d.is_dir() {
            bail!(
                "checkpoint {} was trained on the split in {recorded}, which does not exist here; \
                 pass --split-dir",
                model.display()
            );
        }
        if !quiet {
            eprintln!("split: {recorded} (recorded in the checkpoint)");
        }
        data_opts.split_dir = Some(d);
    }
    let data = data::load(&data_opts)?;
    ck.check_vocabularies(model, &data)?;
    let gpu = start_gpu(adapter, quiet)?;
    let kernels = Kernels::new(&gpu, ck.cfg.embedding_dim)?;
    let gpu_model = ck.to_gpu(&gpu)?;
    // As in training: Recall@K and NDCG@K rank the movies each user did not rate in training.
    let evaluator = Evaluator::excluding_training(
        &gpu,
        &kernels,
        &gpu_model,
        &data.test,
        &data.train,
        &data.candidates,
        t.eval_batch_size,
    )?;
    let spinner = progress::spinner("evaluating on the test split");
    let m = evaluator.run(t.rating_weight, t.retrieval_weight)?;
    drop(spinner);
    if !quiet {
        eprintln!("data: {}", data.description);
    }
    for (k, v) in &m.top_k {
        println!("factorized_top_k/top_{k}_categorical_accuracy: {v:.6}");
    }
    println!("root_mean_squared_error: {:.6}", m.rmse);
    println!("loss: {:.6}", m.loss);
    if let Some(r) = &m.ranked {
        for (k, v) in &r.recall {
            println!("recall_at_{k}_unseen: {v:.6}");
        }
        for (k, v) in &r.ndcg {
            println!("ndcg_at_{k}_unseen: {v:.6}");
        }
        println!("mean_absolute_error: {:.6}", r.mae);
    }
    if let Some(out) = metrics_out {
        let doc = serde_json::json!({
            "adapter": gpu.adapter,
            "checkpoint": model.display().to_string(),
            "data": data.description,
            "rating_weight": t.rating_weight,
            "retrieval_weight": t.retrieval_weight,
            "test": m.to_json(),
            "eval_seconds": m.seconds,
        });
        report::write_json(out, &doc)?;
    }
    Ok(())
}

/// Quotes a CSV field when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn recommend(
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
    let gpu = start_gpu(adapter, quiet)?;
    let rec = Recommender::new(&gpu, ck)?;
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

pub fn predict(
    adapter: &AdapterChoice,
    quiet: bool,
    model: &Path,
    user: &str,
    movie: &str,
) -> Result<()> {
    let ck = Checkpoint::load(model)?;
    let u = lookup(&ck.users, "user", user);
    let m = lookup(&ck.titles, "title", movie);
    let gpu = start_gpu(adapter, quiet)?;
    let p = Recommender::new(&gpu, ck)?.predict(&[u], &[m])?;
    println!("{:.4}", p[0]);
    Ok(())
}

/// Prints the man page of `wgrec`, or of one of its subcommands (named `wgrec-SUBCOMMAND`, as git's are).
pub fn man(mut cmd: clap::Command, subcommand: Option<&str>) -> Result<()> {
    // Building propagates the global options (--backend, --adapter, --quiet) into every subcommand.
    cmd.build();
    let page = match subcommand {
        None => cmd,
        Some(name) => {
            let names: Vec<String> = cmd
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            let Some(sub) = cmd.find_subcommand(name) else {
                bail!("no subcommand {name:?}; subcommands: {}", names.join(", "));
            };
            // clap takes &'static names (without its "string" feature); the process ends after printing.
            sub.clone()
                .name(format!("wgrec-{name}").leak() as &str)
                .bin_name(format!("wgrec {name}"))
        }
    };
    clap_mangen::Man::new(page).render(&mut std::io::stdout())?;
    Ok(())
}
