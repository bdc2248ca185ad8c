//! One run of one configuration: train (from scratch or on from a checkpoint), select on the validation
//! split, refit, fine-tune, evaluate on the test split, and stage the checkpoint.

use super::selection::{holdout, refit_epochs, Average, Selection, ValidationPoint};
use super::trainer::{EpochLog, Trainer};
use crate::checkpoint::{Checkpoint, EpochRecord, SplitInfo, TrainingState};
use crate::data::{Dataset, Ratings};
use crate::eval::{Evaluator, TestMetrics};
use crate::gpu::profile::{trace, Profiler};
use crate::gpu::Gpu;
use crate::kernels::windowed::Kernels;
use crate::model::gpu::GpuModel;
use crate::model::{ModelConfig, Params};
use crate::options::{TrainOptions, Tweaks};
use crate::output::{Output, Staged};
use crate::progress;
use anyhow::{bail, Context, Result};
use std::borrow::Cow;
use std::path::Path;
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
    /// What the validation split chose (`--validation-fraction`).
    pub selection: Option<Selection>,
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
            "validation_fraction": self.opts.tweaks.validation_fraction,
            "select": self.opts.tweaks.select,
            "average_from": self.opts.tweaks.average_from,
            "refit": self.opts.tweaks.refit,
            "selection": self.selection.as_ref().map(Selection::to_json),
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
    crate::kernels::windowed::check_shape(&cfg)?;
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
///
/// With `--validation-fraction` the model is fitted on the training split minus a held-out part, every
/// epoch's parameters (and, with `--average-from`, the running mean) are scored on the held-out part, and
/// the best by `--select` are kept (a host copy) and restored before the one test evaluation; with
/// `--refit` a second run from the same initialisation trains on the whole training split for the chosen
/// epochs instead. The test split plays no part in the choice.
pub fn train_and_evaluate_model<'g>(
    gpu: &'g Gpu,
    kernels: &Kernels,
    data: &Dataset,
    model: GpuModel,
    opts: &TrainOptions,
    run: &RunPlan,
    profiler: Option<&'g Profiler>,
) -> Result<(RunResult, Trainer<'g>)> {
    let tw = &opts.tweaks;
    let validating = tw.validation_fraction > 0.0;
    if validating && run.resume.is_some() {
        bail!("--validation-fraction does not combine with --resume");
    }
    let initial = if tw.refit {
        Some(model.params(gpu)?)
    } else {
        None
    };
    let (fit, validation) = if validating {
        let (fit, val) = holdout(&data.train, tw.validation_fraction as f64, opts.seed);
        if val.is_empty() {
            bail!(
                "--validation-fraction {} holds out no rating: every user has fewer than {:.0} \
                 training ratings",
                tw.validation_fraction,
                (1.0 / tw.validation_fraction).ceil()
            );
        }
        (Cow::Owned(fit), Some(val))
    } else {
        (Cow::Borrowed(&data.train), None)
    };
    let upload = trace::span("upload the batches");
    let mut trainer = Trainer::new(gpu, kernels, model, &fit, opts)?;
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
    let validator = match &validation {
        Some(val) => Some(Evaluator::new(
            gpu,
            kernels,
            &trainer.model,
            val,
            &data.candidates,
            run.eval_batch_size,
        )?),
        None => None,
    };
    let weights = (opts.rating_weight, opts.retrieval_weight);
    let mut average = Average::new();
    let mut points: Vec<ValidationPoint> = Vec::new();
    let mut best: Option<(usize, Params)> = None;
    let mut curve = Vec::new();
    let mut eval_in_training = 0.0;
    let t0 = Instant::now();
    let mut history = Vec::new();
    for epoch in 1..=opts.epochs {
        let span = trace::span(format!("epoch {epoch}"));
        let log = epoch_with_progress(&mut trainer, epoch, opts.epochs, run.progress)?;
        drop(span);
        history.push(log);
        if run.per_epoch {
            let _span = trace::span(format!("evaluate after epoch {epoch}"));
            let _spinner = run
                .progress
                .then(|| progress::spinner(format!("evaluating after epoch {epoch}")));
            let m = evaluator.run(weights.0, weights.1)?;
            eval_in_training += m.seconds;
            curve.push(m);
        }
        let averaging = tw.average_from.is_some_and(|s| epoch >= s);
        if !(averaging || validator.is_some()) {
            continue;
        }
        let _span = trace::span(format!("validate after epoch {epoch}"));
        let t_val = Instant::now();
        let params = trainer.model.params(gpu)?;
        if averaging {
            average.add(&params);
        }
        if let Some(v) = &validator {
            let mut candidates = vec![(None, params.clone())];
            if averaging && average.count() > 1 {
                candidates.push((tw.average_from, average.mean()));
            }
            let n = candidates.len();
            for (i, (averaged_from, p)) in candidates.into_iter().enumerate() {
                if averaged_from.is_some() {
                    trainer.model.set_params(gpu, &p)?;
                }
                let point = ValidationPoint {
                    epoch,
                    averaged_from,
                    metrics: v.run(weights.0, weights.1)?,
                };
                if run.progress {
                    eprintln!(
                        "  validation, {}: top-100 {:.4}, RMSE {:.4}",
                        point.label(),
                        point.metrics.top(100),
                        point.metrics.rmse
                    );
                }
                let better = match &best {
                    None => true,
                    Some((b, _)) => tw.select.better(&point.metrics, &points[*b].metrics),
                };
                points.push(point);
                if better {
                    best = Some((points.len() - 1, p));
                }
                if i + 1 == n && averaged_from.is_some() {
                    trainer.model.set_params(gpu, &params)?;
                }
            }
        }
        eval_in_training += t_val.elapsed().as_secs_f64();
    }
    let train_seconds = t0.elapsed().as_secs_f64() - eval_in_training;
    let selection = match best {
        Some((chosen, params)) => {
            trainer.model.set_params(gpu, &params)?;
            Some(Selection {
                fit_ratings: fit.len(),
                validation_ratings: validation.as_ref().map_or(0, Ratings::len),
                points,
                chosen,
                refit_epochs: None,
            })
        }
        None => {
            if average.count() > 0 {
                trainer.model.set_params(gpu, &average.mean())?;
            }
            None
        }
    };
    if let (Some(mut selection), Some(initial)) = (selection.clone(), initial) {
        // The same initialisation, the whole training split, the chosen steps (and averaging).
        let chosen = selection.chosen();
        let full_batches = data.train.len().div_ceil(opts.batch_size);
        let (epochs, average_from) = refit_epochs(
            chosen.epoch,
            chosen.averaged_from,
            trainer.batches(),
            full_batches,
        );
        if run.progress {
            eprintln!(
                "selected {} on the validation split; training again on the whole training split \
                 for {epochs} epochs (as many steps)",
                chosen.label()
            );
        }
        selection.refit_epochs = Some(epochs);
        let again = TrainOptions {
            epochs,
            tweaks: Tweaks {
                validation_fraction: 0.0,
                refit: false,
                average_from,
                ..opts.tweaks.clone()
            },
            ..opts.clone()
        };
        let cfg = trainer.model.cfg;
        drop(validator);
        drop(evaluator);
        drop(trainer);
        let model = GpuModel::new(gpu, &cfg, &initial)?;
        let (mut result, trainer) =
            train_and_evaluate_model(gpu, kernels, data, model, &again, run, profiler)?;
        result.opts = opts.clone();
        result.train_seconds += train_seconds;
        result.selection = Some(selection);
        return Ok((result, trainer));
    }
    if let (Some(sel), true) = (&selection, run.progress) {
        eprintln!("selected {} on the validation split", sel.chosen().label());
    }
    let mut train_seconds = train_seconds;
    if tw.fine_tune_rating > 0 {
        // The rating task alone on the final embeddings, frozen (the evaluator's launches use the same
        // GPU buffers, which move into the new trainer).
        let stage = opts.fine_tune_stage();
        if run.progress {
            eprintln!(
                "fine-tuning the rating MLP for {} epochs with the embeddings frozen",
                stage.epochs
            );
        }
        let t = Instant::now();
        trainer = Trainer::new(gpu, kernels, trainer.model, &data.train, &stage)?;
        for epoch in 1..=stage.epochs {
            history.push(epoch_with_progress(
                &mut trainer,
                epoch,
                stage.epochs,
                run.progress,
            )?);
        }
        gpu.wait()?;
        train_seconds += t.elapsed().as_secs_f64();
    }
    let span = trace::span("evaluate");
    if let Some(p) = profiler {
        p.set_phase("evaluate");
        evaluator.profile(p);
    }
    let t1 = Instant::now();
    let spinner = run
        .progress
        .then(|| progress::spinner("evaluating on the test split"));
    let test = evaluator.run(weights.0, weights.1)?;
    drop(spinner);
    let eval_seconds = t1.elapsed().as_secs_f64();
    drop(validator);
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
        selection,
    };
    Ok((result, trainer))
}

/// One epoch with a Keras-style bar on a terminal, or one line per epoch in a log. The running loss is read
/// back after every step only while a bar is drawn: it makes each step wait for the GPU.
fn epoch_with_progress(
    trainer: &mut Trainer,
    epoch: usize,
    epochs: usize,
    shown: bool,
) -> Result<EpochLog> {
    if !shown {
        return trainer.epoch(None);
    }
    if !progress::drawn() {
        let log = trainer.epoch(None)?;
        progress::note(format!(
            "Epoch {epoch}/{epochs}: loss {:.4} ({:.2} s)",
            log.loss, log.seconds
        ));
        return Ok(log);
    }
    let bar = progress::bar(trainer.batches() as u64, format!("Epoch {epoch}/{epochs}"));
    let mut tick = |step: usize, _n: usize, loss: f64| {
        bar.set_position(step as u64);
        bar.set_message(format!("loss: {loss:.4}"));
    };
    let log = trainer.epoch(Some(&mut tick))?;
    bar.finish_with_message(format!("loss: {:.4} ({:.2} s)", log.loss, log.seconds));
    Ok(log)
}

/// Where a run starts from and where it goes: `--resume` and `--save` of one configuration.
#[derive(Clone, Copy, Default)]
pub struct RunFiles<'a> {
    pub resume: Option<(&'a Path, &'a Checkpoint)>,
    pub save: Option<&'a Output>,
    /// Also evaluate after every epoch (for `--plot` curves).
    pub per_epoch: bool,
}

/// Trains (from scratch, or on from a checkpoint with its optimizer state and batch order), evaluates,
/// and stages the checkpoint when asked (the caller commits it with the command's other outputs).
/// `data_opts` records the split in the checkpoint so `evaluate` can rebuild it.
#[allow(clippy::too_many_arguments)]
pub fn train_evaluate_save(
    gpu: &Gpu,
    kernels: &Kernels,
    data: &Dataset,
    data_opts: &crate::data::DataOptions,
    embedding_dim: usize,
    opts: &crate::options::TrainOptions,
    eval_batch_size: usize,
    progress: bool,
    files: RunFiles,
    profiler: Option<&crate::gpu::profile::Profiler>,
) -> Result<(RunResult, Option<Staged>)> {
    let (model, resume, mut history) = match files.resume {
        Some((path, ck)) => {
            ck.check_vocabularies(path, data)?;
            let t = &ck.training;
            let rng: u64 = t.batch_rng_state.parse().with_context(|| {
                format!(
                    "checkpoint {}: corrupted metadata: batch_rng_state {:?}",
                    path.display(),
                    t.batch_rng_state
                )
            })?;
            let differs: Vec<String> = [
                (
                    "--rating-weight",
                    t.rating_weight.to_string(),
                    opts.rating_weight.to_string(),
                ),
                (
                    "--retrieval-weight",
                    t.retrieval_weight.to_string(),
                    opts.retrieval_weight.to_string(),
                ),
                (
                    "--batch-size",
                    t.batch_size.to_string(),
                    opts.batch_size.to_string(),
                ),
                (
                    "--learning-rate",
                    t.learning_rate.to_string(),
                    opts.learning_rate.to_string(),
                ),
                ("--seed", t.seed.to_string(), opts.seed.to_string()),
                (
                    "--reshuffle",
                    t.reshuffle.to_string(),
                    opts.reshuffle.to_string(),
                ),
            ]
            .into_iter()
            .filter(|(_, a, b)| a != b)
            .map(|(flag, a, b)| format!("{flag} {b} (checkpoint: {a})"))
            .collect();
            let split = SplitInfo::of(data_opts);
            if split != t.split {
                eprintln!(
                    "note: resuming {} on another split ({}) than it was trained on ({})",
                    path.display(),
                    split.describe(),
                    t.split.describe()
                );
            }
            if !differs.is_empty() {
                eprintln!(
                    "note: resuming {} with {}; the result will differ from an uninterrupted run",
                    path.display(),
                    differs.join(", ")
                );
            }
            (
                ck.to_gpu(gpu)?,
                Some((t.epochs_done, rng)),
                t.history.clone(),
            )
        }
        None => {
            let cfg = ModelConfig::tutorial(data.users.rows(), data.titles.rows(), embedding_dim);
            crate::kernels::windowed::check_shape(&cfg)?;
            (
                GpuModel::new(gpu, &cfg, &Params::init(&cfg, opts.seed))?,
                None,
                Vec::new(),
            )
        }
    };
    let run = RunPlan {
        resume,
        eval_batch_size,
        progress,
        per_epoch: files.per_epoch,
    };
    let (result, trainer) =
        train_and_evaluate_model(gpu, kernels, data, model, opts, &run, profiler)?;
    let mut staged = None;
    if let Some(out) = files.save {
        history.extend(result.history.iter().map(|h| EpochRecord {
            epoch: h.epoch,
            loss: h.loss,
            seconds: h.seconds,
        }));
        let training = TrainingState {
            rating_weight: opts.rating_weight,
            retrieval_weight: opts.retrieval_weight,
            batch_size: opts.batch_size,
            eval_batch_size,
            learning_rate: opts.learning_rate,
            seed: opts.seed,
            reshuffle: opts.reshuffle,
            epochs_done: trainer.epochs_done(),
            batch_rng_state: trainer.batch_rng_state().to_string(),
            split: SplitInfo::of(data_opts),
            data: data.description.clone(),
            adapter: format!("{} ({})", gpu.adapter.name, gpu.adapter.backend),
            history,
            test: result.test.to_json(),
        };
        staged = Some(
            Checkpoint::from_gpu(gpu, &trainer.model, data, training)?
                .stage(out)
                .with_context(|| format!("saving checkpoint {}", out.path().display()))?,
        );
    }
    Ok((result, staged))
}
