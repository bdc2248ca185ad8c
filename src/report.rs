//! Runs one configuration end to end (init, train, evaluate) and reports results as a table and as JSON.

use crate::data::Dataset;
use crate::evaluate::{Evaluator, TestMetrics, KS, RANKED_KS};
use crate::gpu::{AdapterSummary, Gpu};
use crate::kernels::Kernels;
use crate::model::{ModelConfig, Params};
use crate::plan::GpuModel;
use crate::profile::{trace, Profiler};
use crate::trainer::{EpochLog, TrainOptions, Trainer};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct RunResult {
    pub opts: TrainOptions,
    pub history: Vec<EpochLog>,
    pub test: TestMetrics,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    /// Test metrics after every epoch (empty unless asked for: it costs one evaluation per epoch).
    pub curve: Vec<TestMetrics>,
    /// Per-kernel totals when the run was profiled (`Profiler::to_json`).
    pub profile: Option<serde_json::Value>,
}

impl RunResult {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "rating_weight": self.opts.rating_weight,
            "retrieval_weight": self.opts.retrieval_weight,
            "epochs": self.opts.epochs,
            "batch_size": self.opts.batch_size,
            "learning_rate": self.opts.learning_rate,
            "seed": self.opts.seed,
            "reshuffle": self.opts.reshuffle,
            "logq_correction": self.opts.tweaks.logq_correction,
            "embedding_learning_rate": self.opts.tweaks.embedding_learning_rate,
            "embedding_l2": self.opts.tweaks.embedding_l2,
            "history": self.history,
            "test": self.test.to_json(),
            "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds,
            "test_per_epoch": self.curve.iter().map(TestMetrics::to_json).collect::<Vec<_>>(),
            "profile": self.profile,
        })
    }
}

/// Trains one configuration from a fresh initialisation and evaluates it on the test split; with a
/// profiler, every dispatch is timed (phases "train" and "evaluate").
#[allow(clippy::too_many_arguments)]
pub fn train_and_evaluate(
    gpu: &Gpu,
    kernels: &Kernels,
    data: &Dataset,
    embedding_dim: usize,
    opts: &TrainOptions,
    eval_batch_size: usize,
    progress: bool,
    profiler: Option<&Profiler>,
) -> Result<RunResult> {
    train_and_evaluate_with(
        gpu,
        kernels,
        data,
        embedding_dim,
        opts,
        eval_batch_size,
        progress,
        false,
        profiler,
    )
}

/// `train_and_evaluate`, and with `per_epoch` the test metrics after every epoch (for curves).
#[allow(clippy::too_many_arguments)]
pub fn train_and_evaluate_with(
    gpu: &Gpu,
    kernels: &Kernels,
    data: &Dataset,
    embedding_dim: usize,
    opts: &TrainOptions,
    eval_batch_size: usize,
    progress: bool,
    per_epoch: bool,
    profiler: Option<&Profiler>,
) -> Result<RunResult> {
    let cfg = ModelConfig::tutorial(data.users.rows(), data.titles.rows(), embedding_dim);
    cfg.validate()?;
    let model = {
        let _span = trace::span("initialise the model");
        GpuModel::new(gpu, &cfg, &Params::init(&cfg, opts.seed))?
    };
    let run = RunPlan {
        resume: None,
        eval_batch_size,
        progress,
        per_epoch,
    };
    let (result, _) = train_and_evaluate_model(gpu, kernels, data, model, opts, &run, profiler)?;
    Ok(result)
}

/// How `train_and_evaluate_model` runs besides the training options.
#[derive(Clone, Copy, Debug)]
pub struct RunPlan {
    /// (epochs done, batch-order PRNG state) of a checkpointed run to continue.
    pub resume: Option<(usize, u64)>,
    pub eval_batch_size: usize,
    /// Progress bars.
    pub progress: bool,
    /// Test metrics after every epoch too.
    pub per_epoch: bool,
}

/// Trains `model` for `opts.epochs` epochs and evaluates it. Returns the trainer too, for saving.
pub fn train_and_evaluate_model<'g>(
    gpu: &'g Gpu,
    kernels: &Kernels,
    data: &Dataset,
    model: GpuModel,
    opts: &TrainOptions,
    run: &RunPlan,
    profiler: Option<&'g Profiler>,
) -> Result<(RunResult, Trainer<'g>)> {
    let upload = trace::span("upload the batches");
    let mut trainer = Trainer::new(gpu, kernels, model, &data.train, opts)?;
    gpu.wait()?;
    drop(upload);
    if let Some((epochs_done, rng_state)) = run.resume {
        trainer.resume_at(epochs_done, rng_state);
    }
    if let Some(p) = profiler {
        p.set_phase("train");
        trainer.profile(p);
    }
    let mut evaluator = Evaluator::excluding_training(
        gpu,
        kernels,
        &trainer.model,
        &data.test,
        &data.train,
        &data.candidates,
        run.eval_batch_size,
    )?;
    let mut curve = Vec::new();
    let mut eval_in_training = 0.0;
    let t0 = Instant::now();
    let mut history = Vec::new();
    for epoch in 1..=opts.epochs {
        let span = trace::span(format!("epoch {epoch}"));
        let log = if run.progress {
            let bar = ProgressBar::new(trainer.batches() as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} {pos:>3}/{len} [{bar:30}] {elapsed_precise} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("Epoch {epoch}/{}", opts.epochs));
            let mut tick = |step: usize, _n: usize, loss: f64| {
                bar.set_position(step as u64);
                bar.set_message(format!("loss: {loss:.4}"));
            };
            let log = trainer.epoch(Some(&mut tick))?;
            bar.finish_with_message(format!("loss: {:.4} ({:.2} s)", log.loss, log.seconds));
            log
        } else {
            trainer.epoch(None)?
        };
        drop(span);
        history.push(log);
        if run.per_epoch {
            let _span = trace::span(format!("evaluate after epoch {epoch}"));
            let m = evaluator.run(opts.rating_weight, opts.retrieval_weight)?;
            eval_in_training += m.seconds;
            curve.push(m);
        }
    }
    let train_seconds = t0.elapsed().as_secs_f64() - eval_in_training;
    let span = trace::span("evaluate");
    if let Some(p) = profiler {
        p.set_phase("evaluate");
        evaluator.profile(p);
    }
    let t1 = Instant::now();
    let test = evaluator.run(opts.rating_weight, opts.retrieval_weight)?;
    let eval_seconds = t1.elapsed().as_secs_f64();
    drop(evaluator);
    drop(span);
    let result = RunResult {
        opts: opts.clone(),
        history,
        test,
        train_seconds,
        eval_seconds,
        curve,
        profile: profiler.map(Profiler::to_json),
    };
    Ok((result, trainer))
}

/// The tutorial-style table: one row per configuration.
pub fn table(runs: &[RunResult], adapter: &AdapterSummary) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{:<22}{}{:>8}{:>9}{:>9}\n",
        "config (rating, retr.)",
        KS.iter()
            .map(|k| format!("{:>8}", format!("top-{k}")))
            .collect::<String>(),
        "RMSE",
        "train s",
        "eval s"
    ));
    for r in runs {
        s.push_str(&format!(
            "{:<22}{}{:>8.4}{:>9.2}{:>9.3}\n",
            format!("({}, {})", r.opts.rating_weight, r.opts.retrieval_weight),
            KS.iter()
                .map(|&k| format!("{:>8.4}", r.test.top(k)))
                .collect::<String>(),
            r.test.rmse,
            r.train_seconds,
            r.eval_seconds
        ));
    }
    if runs.iter().any(|r| r.test.ranked.is_some()) {
        s.push_str(&format!(
            "{:<22}{}{}{:>8}   (per user, training movies excluded)\n",
            "",
            RANKED_KS
                .iter()
                .map(|k| format!("{:>8}", format!("R@{k}")))
                .collect::<String>(),
            RANKED_KS
                .iter()
                .map(|k| format!("{:>9}", format!("NDCG@{k}")))
                .collect::<String>(),
            "MAE",
        ));
        for r in runs {
            let Some(m) = &r.test.ranked else { continue };
            s.push_str(&format!(
                "{:<22}{}{}{:>8.4}\n",
                format!("({}, {})", r.opts.rating_weight, r.opts.retrieval_weight),
                RANKED_KS
                    .iter()
                    .map(|&k| format!("{:>8.4}", m.recall_at(k)))
                    .collect::<String>(),
                RANKED_KS
                    .iter()
                    .map(|&k| format!("{:>9.4}", m.ndcg_at(k)))
                    .collect::<String>(),
                m.mae,
            ));
        }
    }
    s.push_str(&format!(
        "adapter: {} ({}, {}, {})\n",
        adapter.name, adapter.backend, adapter.device_type, adapter.driver_info
    ));
    s
}

pub fn metrics_json(runs: &[RunResult], adapter: &AdapterSummary) -> serde_json::Value {
    serde_json::json!({
        "adapter": adapter,
        "runs": runs.iter().map(RunResult::to_json).collect::<Vec<_>>(),
    })
}

/// Writes `value` to `path` through a temporary file and a rename, so a reader never sees half a file.
pub fn write_json(path: &std::path::Path, value: &serde_json::Value) -> Result<()> {
    use anyhow::Context;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}
