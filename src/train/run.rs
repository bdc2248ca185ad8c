//! One run of one configuration, as a `Run` that owns what the run is (options, model shape, where it
//! starts, what it saves) and `Run::execute`, which strings the steps together: start (fresh or from a
//! checkpoint), fit (with model selection on a validation split), refit, fine-tune, evaluate, save.

use super::selection::{holdout, refit_epochs, Average, Selection, ValidationPoint};
use super::trainer::{EpochLog, Trainer};
use crate::checkpoint::{Checkpoint, EpochRecord, SplitInfo, TrainingState};
use crate::data::{Dataset, Ratings};
use crate::eval::{Evaluator, TestMetrics};
use crate::gpu::profile::{trace, Profiler};
use crate::gpu::Gpu;
use crate::kernels::tower::Towered;
use crate::kernels::windowed::check_shape;
use crate::kernels::{Family, Ops};
use crate::model::tower::Towers;
use crate::model::{ModelConfig, Params};
use crate::options::{TrainOptions, Tweaks};
use crate::output::{Output, Staged};
use crate::progress;
use anyhow::{bail, Context, Result};
use std::borrow::Cow;
use std::path::Path;
use std::time::Instant;

/// The evaluation batch of `wgrec recipe` and `wgrec sweep` (and `train`'s default).
pub const EVAL_BATCH: usize = 4096;

/// What one run is: the training options and model width, where it starts, what it writes, and how it
/// reports. Built with `Run::new` and its builder methods, each of which checks the rules it brings.
#[derive(Clone)]
pub struct Run<'a> {
    pub opts: TrainOptions,
    pub embedding_dim: usize,
    pub eval_batch_size: usize,
    /// A checkpointed run to continue (its parameters, Adagrad state and batch order).
    pub resume: Option<(&'a Path, &'a Checkpoint)>,
    /// Where the trained model is staged (the caller commits it with its other outputs).
    pub save: Option<&'a Output>,
    /// Test metrics after every epoch too (for `--plot` curves; one evaluation per epoch).
    pub per_epoch: bool,
    /// Progress bars and notes on stderr.
    pub progress: bool,
}

/// What a run works on: the adapter, the compiled kernels of the family that trains and evaluates, the
/// data, the split it came from (recorded in a saved checkpoint, compared on resume) and an optional
/// profiler.
#[derive(Clone, Copy)]
pub struct Env<'g> {
    pub gpu: &'g Gpu,
    pub ops: Ops<'g>,
    pub data: &'g Dataset,
    pub split: Option<&'g SplitInfo>,
    pub profiler: Option<&'g Profiler>,
}

/// A finished run: its report, the trained model on the GPU, and the staged checkpoint when asked.
pub struct Outcome {
    pub result: RunResult,
    pub model: Towered,
    pub staged: Option<Staged>,
}

/// The state of a run after fitting: the trainer (holding the model) and the test evaluator built on its
/// buffers, with what the epochs recorded.
struct Fit<'g> {
    trainer: Trainer<'g>,
    evaluator: Evaluator<'g>,
    history: Vec<EpochLog>,
    curve: Vec<TestMetrics>,
    train_seconds: f64,
    selection: Option<Selection>,
}

impl<'a> Run<'a> {
    /// A fresh run of `opts` with embedding width `embedding_dim`.
    pub fn new(opts: TrainOptions, embedding_dim: usize) -> Result<Self> {
        opts.validate()?;
        Ok(Self {
            opts,
            embedding_dim,
            eval_batch_size: EVAL_BATCH,
            resume: None,
            save: None,
            per_epoch: false,
            progress: false,
        })
    }

    /// Continues the checkpoint at `path` (its embedding width replaces the run's).
    pub fn resume(mut self, path: &'a Path, checkpoint: &'a Checkpoint) -> Result<Self> {
        let t = &self.opts.tweaks;
        if t.validation_fraction > 0.0 {
            bail!("--validation-fraction does not combine with --resume");
        }
        if t.fine_tune_rating > 0 {
            bail!(fine_tune_refusal());
        }
        if t.towers.is_some() {
            bail!(
                "--resume continues the checkpoint's own feature towers; leave out --user-features, \
                 --movie-features, --feature-dim, --user-tower and --movie-tower"
            );
        }
        self.embedding_dim = checkpoint.cfg.embedding_dim;
        self.resume = Some((path, checkpoint));
        Ok(self)
    }

    /// Stages the trained model at `out`.
    pub fn save(mut self, out: &'a Output) -> Result<Self> {
        let t = &self.opts.tweaks;
        if t.fine_tune_rating > 0 {
            bail!(fine_tune_refusal());
        }
        let kept_is_last = t.average_from.is_none() && (t.validation_fraction == 0.0 || t.refit);
        if !kept_is_last {
            bail!(
                "--save needs the last epoch's parameters (with --validation-fraction, add \
                 --refit; without --average-from): the kept ones would not match the saved \
                 Adagrad state and epoch count"
            );
        }
        self.save = Some(out);
        Ok(self)
    }

    /// The width of the tables both tasks read (the family's kernels are compiled for it).
    pub fn table_width(&self) -> Result<usize> {
        self.opts.table_width(self.embedding_dim)
    }

    pub fn eval_batch_size(mut self, n: usize) -> Self {
        self.eval_batch_size = n;
        self
    }

    pub fn per_epoch(mut self, on: bool) -> Self {
        self.per_epoch = on;
        self
    }

    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// Trains, selects, refits, fine-tunes, evaluates and saves, as the options ask; with a profiler,
    /// every dispatch is timed (phases "train" and "evaluate").
    ///
    /// With `--validation-fraction` the model is fitted on the training split minus a held-out part, every
    /// epoch's parameters (and, with `--average-from`, the running mean) are scored on the held-out part,
    /// and the best by `--select` are kept and restored before the one test evaluation; with `--refit` a
    /// second fit from the same initialisation trains on the whole training split for the chosen epochs
    /// instead. The test split plays no part in the choice.
    pub fn execute<'g>(&self, env: &Env<'g>) -> Result<Outcome> {
        let (model, resume_at) = self.start(env)?;
        let initial = match self.opts.tweaks.refit {
            true => Some(model.params(env.gpu)?),
            false => None,
        };
        let mut fit = self.fit(env, model, &self.opts, resume_at)?;
        match (fit.selection.take(), initial) {
            (Some(selection), Some(initial)) => fit = self.refit(env, fit, selection, &initial)?,
            (selection, _) => {
                if let (Some(s), true) = (&selection, self.progress) {
                    eprintln!("selected {} on the validation split", s.chosen().label());
                }
                fit.selection = selection;
            }
        }
        let mut fit = self.fine_tune(env, fit)?;
        let test = self.evaluate(env, &mut fit)?;
        let Fit {
            trainer,
            evaluator,
            history,
            curve,
            train_seconds,
            selection,
        } = fit;
        drop(evaluator);
        let result = RunResult {
            opts: self.opts.clone(),
            kernels: env.ops.family(),
            history,
            test: test.0,
            train_seconds,
            eval_seconds: test.1,
            curve,
            profile: env.profiler.map(Profiler::to_json),
            selection,
            preset: None,
        };
        let staged = match self.save {
            Some(out) => Some(self.stage(env, out, &trainer, &result)?),
            None => None,
        };
        Ok(Outcome {
            result,
            model: trainer.model,
            staged,
        })
    }

    /// The model the run starts from: `Params::init` of the seed, or the checkpoint's parameters and
    /// Adagrad state with the (epochs done, batch-order PRNG state) to continue from.
    fn start(&self, env: &Env) -> Result<(Towered, Option<(usize, u64)>)> {
        let Some((path, ck)) = self.resume else {
            let data = env.data;
            let towers = match &self.opts.tweaks.towers {
                Some(t) => Towers::from_options(t, data, self.embedding_dim)?,
                None => Towers::default(),
            };
            let width = towers.output_width(self.embedding_dim)?;
            let cfg = ModelConfig::tutorial(data.users.rows(), data.titles.rows(), width);
            check_shape(&cfg)?;
            if env.ops.family() == Family::Gpu {
                crate::kernels::gpu::check_shape(cfg.embedding_dim, cfg.hidden1, cfg.hidden2)?;
            }
            let _span = trace::span("initialise the model");
            let mut init = Params::init(&cfg, self.opts.seed);
            init.towers = towers.init(self.opts.seed);
            let model = Towered::new(env.gpu, &cfg, &init, &towers)?;
            return Ok((model, None));
        };
        ck.check_vocabularies(path, env.data)?;
        let t = &ck.training;
        let rng: u64 = t.batch_rng_state.parse().with_context(|| {
            format!(
                "checkpoint {}: corrupted metadata: batch_rng_state {:?}",
                path.display(),
                t.batch_rng_state
            )
        })?;
        let opts = &self.opts;
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
        if let Some(split) = env.split.filter(|s| **s != t.split) {
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
        Ok((ck.to_gpu(env.gpu)?, Some((t.epochs_done, rng))))
    }

    /// Trains `model` for `opts.epochs` epochs on the training split (minus the validation part, when
    /// selecting); after every epoch, the curve's test evaluation and the validation candidates as asked.
    /// Ends with the kept parameters in the model: the selected ones, or the running mean.
    fn fit<'g>(
        &self,
        env: &Env<'g>,
        model: Towered,
        opts: &TrainOptions,
        resume_at: Option<(usize, u64)>,
    ) -> Result<Fit<'g>> {
        let (gpu, data, tw) = (env.gpu, env.data, &opts.tweaks);
        let (fit_split, validation) = if tw.validation_fraction > 0.0 {
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
        let mut trainer = Trainer::on_family(gpu, env.ops, model, &fit_split, opts)?;
        gpu.wait()?;
        drop(upload);
        if let Some((epochs_done, rng_state)) = resume_at {
            trainer.resume_at(epochs_done, rng_state);
        }
        if let Some(p) = env.profiler {
            p.set_phase("train");
            trainer.profile(p);
        }
        let evaluator = Evaluator::on_family(
            gpu,
            env.ops,
            &trainer.model,
            &data.test,
            Some(&data.train),
            &data.candidates,
            self.eval_batch_size,
        )?;
        let validator = match &validation {
            Some(val) => Some(Evaluator::on_family(
                gpu,
                env.ops,
                &trainer.model,
                val,
                // Ranking among unseen movies: those the user did not rate in the fit split.
                tw.select.ranks_unseen().then_some(&*fit_split),
                &data.candidates,
                self.eval_batch_size,
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
            history.push(epoch_with_progress(
                &mut trainer,
                epoch,
                opts.epochs,
                self.progress,
            )?);
            drop(span);
            if self.per_epoch {
                let _span = trace::span(format!("evaluate after epoch {epoch}"));
                let _spinner = self
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
                    if self.progress {
                        let ndcg =
                            point.metrics.ranked.as_ref().map_or(String::new(), |r| {
                                format!(", NDCG@10 {:.4}", r.ndcg_at(10))
                            });
                        eprintln!(
                            "  validation, {}: top-100 {:.4}, RMSE {:.4}{ndcg}",
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
                    fit_ratings: fit_split.len(),
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
        drop(validator);
        Ok(Fit {
            trainer,
            evaluator,
            history,
            curve,
            train_seconds,
            selection,
        })
    }

    /// `--refit`: the same initialisation, the whole training split, the chosen steps (and averaging).
    /// The refit's history and curve replace the selecting fit's; its time adds to it.
    fn refit<'g>(
        &self,
        env: &Env<'g>,
        fit: Fit<'g>,
        mut selection: Selection,
        initial: &Params,
    ) -> Result<Fit<'g>> {
        let chosen = selection.chosen();
        let full_batches = env.data.train.len().div_ceil(self.opts.batch_size);
        let (epochs, average_from) = refit_epochs(
            chosen.epoch,
            chosen.averaged_from,
            fit.trainer.batches(),
            full_batches,
        );
        if self.progress {
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
                ..self.opts.tweaks.clone()
            },
            ..self.opts.clone()
        };
        let cfg = fit.trainer.model.cfg;
        let towers = fit.trainer.model.towers.as_ref().map(|t| t.towers.clone());
        let selecting_seconds = fit.train_seconds;
        drop(fit);
        let model = Towered::new(env.gpu, &cfg, initial, &towers.unwrap_or_default())?;
        let mut refitted = self.fit(env, model, &again, None)?;
        refitted.train_seconds += selecting_seconds;
        refitted.selection = Some(selection);
        Ok(refitted)
    }

    /// `--fine-tune-rating`: the rating task alone on the final embeddings, frozen (the evaluator's
    /// launches use the same GPU buffers, which move into the new trainer).
    fn fine_tune<'g>(&self, env: &Env<'g>, mut fit: Fit<'g>) -> Result<Fit<'g>> {
        if self.opts.tweaks.fine_tune_rating == 0 {
            return Ok(fit);
        }
        let stage = self.opts.fine_tune_stage();
        if self.progress {
            eprintln!(
                "fine-tuning the rating MLP for {} epochs with the embeddings frozen",
                stage.epochs
            );
        }
        let t = Instant::now();
        let model = fit.trainer.model;
        let train = &env.data.train;
        let mut trainer = Trainer::on_family(env.gpu, env.ops, model, train, &stage)?;
        for epoch in 1..=stage.epochs {
            let log = epoch_with_progress(&mut trainer, epoch, stage.epochs, self.progress)?;
            fit.history.push(log);
        }
        env.gpu.wait()?;
        fit.train_seconds += t.elapsed().as_secs_f64();
        Ok(Fit { trainer, ..fit })
    }

    /// The one test evaluation: (metrics, seconds).
    fn evaluate<'g>(&self, env: &Env<'g>, fit: &mut Fit<'g>) -> Result<(TestMetrics, f64)> {
        let _span = trace::span("evaluate");
        if let Some(p) = env.profiler {
            p.set_phase("evaluate");
            fit.evaluator.profile(p);
        }
        let t = Instant::now();
        let spinner = self
            .progress
            .then(|| progress::spinner("evaluating on the test split"));
        let test = fit
            .evaluator
            .run(self.opts.rating_weight, self.opts.retrieval_weight)?;
        drop(spinner);
        Ok((test, t.elapsed().as_secs_f64()))
    }

    /// The checkpoint of the trained model with the state to resume it and the training record.
    fn stage(
        &self,
        env: &Env,
        out: &Output,
        trainer: &Trainer,
        result: &RunResult,
    ) -> Result<Staged> {
        let opts = &self.opts;
        let mut history = self
            .resume
            .map(|(_, ck)| ck.training.history.clone())
            .unwrap_or_default();
        history.extend(result.history.iter().map(|h| EpochRecord {
            epoch: h.epoch,
            loss: h.loss,
            seconds: h.seconds,
        }));
        let split = env
            .split
            .context("saving a checkpoint needs the split the data came from")?;
        let training = TrainingState {
            rating_weight: opts.rating_weight,
            retrieval_weight: opts.retrieval_weight,
            batch_size: opts.batch_size,
            eval_batch_size: self.eval_batch_size,
            learning_rate: opts.learning_rate,
            seed: opts.seed,
            reshuffle: opts.reshuffle,
            epochs_done: trainer.epochs_done(),
            batch_rng_state: trainer.batch_rng_state().to_string(),
            split: split.clone(),
            data: env.data.description.clone(),
            adapter: format!("{} ({})", env.gpu.adapter.name, env.gpu.adapter.backend),
            history,
            test: result.test.to_json(),
        };
        Checkpoint::from_gpu(env.gpu, &trainer.model, env.data, training)?
            .stage(out)
            .with_context(|| format!("saving checkpoint {}", out.path().display()))
    }
}

fn fine_tune_refusal() -> &'static str {
    "--fine-tune-rating does not combine with --save or --resume (a checkpoint records one stage's \
     options and epochs); to fine-tune a saved model, resume it with --rating-weight 1 \
     --retrieval-weight 0 --embedding-learning-rate 0"
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

#[derive(Clone, Debug)]
pub struct RunResult {
    pub opts: TrainOptions,
    /// The kernel family training ran on.
    pub kernels: Family,
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
    /// The named preset (`wgrec recipe`, `sweep --presets`) that set the options, if one did.
    pub preset: Option<String>,
}

impl RunResult {
    pub fn to_json(&self) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "kernels": self.kernels,
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
        });
        // Only when given: runs without it keep the keys they always had.
        if let Some(t) = self.opts.tweaks.temperature {
            doc["temperature"] = t.into();
        }
        if self.opts.tweaks.remove_accidental_hits {
            doc["remove_accidental_hits"] = true.into();
        }
        if self.opts.tweaks.full_softmax {
            doc["full_softmax"] = true.into();
        }
        if let Some(t) = &self.opts.tweaks.towers {
            doc["towers"] = serde_json::json!(t);
        }
        if let Some(p) = &self.preset {
            doc["preset"] = p.as_str().into();
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_and_save_refuse_what_they_cannot_record() {
        let ck_free = |tweaks: Tweaks| TrainOptions {
            tweaks,
            ..TrainOptions::tutorial(1.0, 1.0)
        };
        let out = Output::check("--save", Path::new("/tmp/wgrec-run-rules.safetensors")).unwrap();
        let selecting = Tweaks {
            validation_fraction: 0.1,
            ..Tweaks::default()
        };
        let err = Run::new(ck_free(selecting.clone()), 32)
            .unwrap()
            .save(&out)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("--save needs the last epoch"),
            "{err}"
        );
        let refit = Tweaks {
            refit: true,
            ..selecting.clone()
        };
        assert!(Run::new(ck_free(refit.clone()), 32)
            .unwrap()
            .save(&out)
            .is_ok());
        let averaged = Tweaks {
            average_from: Some(1),
            ..refit
        };
        assert!(Run::new(ck_free(averaged), 32).unwrap().save(&out).is_err());
        let fine_tune = Tweaks {
            fine_tune_rating: 2,
            ..Tweaks::default()
        };
        let err = Run::new(ck_free(fine_tune), 32)
            .unwrap()
            .save(&out)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("--fine-tune-rating does not combine"),
            "{err}"
        );
        assert!(Run::new(ck_free(Tweaks::default()), 32)
            .unwrap()
            .save(&out)
            .is_ok());
    }
}
