//! `wgrec evaluate`: a saved model on the test split of the data it was trained beside (the split is
//! rebuilt from the checkpoint's record unless given).

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use wgrec::checkpoint::Checkpoint;
use wgrec::data::{self, DataOptions};
use wgrec::eval::Evaluator;
use wgrec::gpu::AdapterChoice;
use wgrec::kernels::Choice;
use wgrec::output::Output;
use wgrec::progress;

use super::start_gpu;

pub fn run(
    adapter: &AdapterChoice,
    quiet: bool,
    kernels: Choice,
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
        if data_opts.test_fraction.is_none() {
            data_opts.test_fraction = t.split.test_fraction;
        }
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
    let (gpu, kernels) = start_gpu(adapter, quiet, kernels, &ck)?;
    let gpu_model = ck.to_gpu(&gpu)?;
    // As in training: Recall@K and NDCG@K rank the movies each user did not rate in training.
    let evaluator = Evaluator::on_family(
        &gpu,
        kernels.ops(),
        &gpu_model,
        &data.test,
        Some(&data.train),
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
        wgrec::output::write_json(out, &doc)?;
    }
    Ok(())
}
