//! Model selection on a validation split (`--validation-fraction`, `--select`, `--average-from`,
//! `--refit`), on the built-in synthetic sample: the kept parameters are exactly those of a run stopped at
//! the chosen epoch, a refit equals a plain run of as many steps on the whole training split, and an
//! averaged model is the mean of the epochs' parameters.

mod common;

use wgrec::data::{DataOptions, Dataset};
use wgrec::gpu::Gpu;
use wgrec::kernels::model::GpuModel;
use wgrec::model::{ModelConfig, Params};
use wgrec::options::Criterion;
use wgrec::options::TrainOptions;
use wgrec::train::run::{Env, Run, RunResult};
use wgrec::train::selection::refit_epochs;
use wgrec::train::selection::{holdout, Average};
use wgrec::train::trainer::Trainer;

const DIM: usize = 32;

fn sample() -> Dataset {
    wgrec::data::load(&DataOptions {
        dataset: Some("sample".into()),
        seed: 42,
        ..Default::default()
    })
    .unwrap()
}

/// Small batches and a high learning rate so the rating head overfits within a few epochs.
fn base(epochs: usize) -> TrainOptions {
    TrainOptions {
        epochs,
        batch_size: 1024,
        learning_rate: 0.3,
        ..TrainOptions::tutorial(1.0, 1.0)
    }
}

/// Trains `opts` on `data` from `Params::init(seed)`; the result and the kept parameters.
fn train(gpu: &'static Gpu, data: &Dataset, opts: &TrainOptions) -> (RunResult, Params) {
    let kernels = common::kernels(gpu, DIM);
    let env = Env {
        gpu,
        ops: wgrec::kernels::Ops::Windowed(kernels),
        data,
        split: None,
        profiler: None,
    };
    let outcome = Run::new(opts.clone(), DIM).unwrap().execute(&env).unwrap();
    let params = outcome.model.params(gpu).unwrap();
    (outcome.result, params)
}

fn same_retrieval_and_rating(a: &RunResult, b: &RunResult) {
    assert_eq!(a.test.top_k, b.test.top_k, "top-k accuracy differs");
    assert_eq!(a.test.rmse, b.test.rmse, "RMSE differs");
}

#[test]
fn early_stopping_keeps_the_chosen_epochs_parameters() {
    let Some(gpu) = common::gpu() else { return };
    let data = sample();
    let epochs = 8;
    let mut opts = base(epochs);
    opts.tweaks.validation_fraction = 0.2;
    opts.tweaks.select = Criterion::Rmse;
    let (selected, kept) = train(gpu, &data, &opts);
    let sel = selected.selection.as_ref().expect("a selection was made");
    assert_eq!(sel.points.len(), epochs, "one candidate per epoch");
    assert_eq!(sel.fit_ratings + sel.validation_ratings, data.train.len());
    let best = sel
        .points
        .iter()
        .map(|p| p.metrics.rmse)
        .fold(f64::INFINITY, f64::min);
    let chosen = sel.chosen();
    assert_eq!(
        chosen.metrics.rmse, best,
        "the lowest validation RMSE is kept"
    );
    assert!(chosen.averaged_from.is_none());
    assert!(
        chosen.epoch < epochs,
        "the setting should overfit so that an earlier epoch is kept (chosen {})",
        chosen.epoch
    );
    assert_eq!(selected.history.len(), epochs, "training ran to the end");

    // A plain run on the same fit split, stopped at the chosen epoch.
    let (fit, _) = holdout(&data.train, 0.2, opts.seed);
    let stopped_data = Dataset {
        train: fit,
        ..data.clone()
    };
    let (stopped, stopped_params) = train(gpu, &stopped_data, &base(chosen.epoch));
    assert!(
        kept == stopped_params,
        "kept parameters differ from the stopped run's"
    );
    same_retrieval_and_rating(&selected, &stopped);
    let (_, last_params) = train(gpu, &stopped_data, &base(epochs));
    assert!(kept != last_params, "the last epoch's parameters were kept");
}

#[test]
fn refit_equals_a_plain_run_of_as_many_steps_on_the_whole_split() {
    let Some(gpu) = common::gpu() else { return };
    let data = sample();
    let mut opts = base(6);
    opts.tweaks.validation_fraction = 0.2;
    opts.tweaks.refit = true;
    let (refit, params) = train(gpu, &data, &opts);
    let sel = refit.selection.as_ref().unwrap();
    let fit_batches = sel.fit_ratings.div_ceil(opts.batch_size);
    let full_batches = data.train.len().div_ceil(opts.batch_size);
    let (epochs, _) = refit_epochs(sel.chosen().epoch, None, fit_batches, full_batches);
    assert_eq!(sel.refit_epochs, Some(epochs));
    let (plain, plain_params) = train(gpu, &data, &base(epochs));
    assert!(
        params == plain_params,
        "refit parameters differ from a plain run's"
    );
    let mut want = plain.test.clone();
    want.seconds = refit.test.seconds;
    assert_eq!(refit.test, want, "test metrics differ from a plain run's");
    assert_eq!(refit.history.len(), epochs, "history is the refit's");
}

#[test]
fn averaging_keeps_the_mean_of_the_epochs() {
    let Some(gpu) = common::gpu() else { return };
    let data = sample();
    let mut opts = base(4);
    opts.tweaks.average_from = Some(2);
    let (_, averaged) = train(gpu, &data, &opts);

    let kernels = common::kernels(gpu, DIM);
    let cfg = ModelConfig::tutorial(data.users.rows(), data.titles.rows(), DIM);
    let model = GpuModel::new(gpu, &cfg, &Params::init(&cfg, opts.seed)).unwrap();
    let mut trainer = Trainer::new(gpu, kernels, model, &data.train, &base(4)).unwrap();
    let mut mean = Average::new();
    let mut last = None;
    for epoch in 1..=4 {
        trainer.epoch(None).unwrap();
        let p = trainer.model.params(gpu).unwrap();
        if epoch >= 2 {
            mean.add(&p);
        }
        last = Some(p);
    }
    assert_eq!(mean.count(), 3);
    assert!(averaged == mean.mean(), "kept parameters are not the mean");
    assert!(
        averaged != last.unwrap(),
        "the last epoch's parameters were kept"
    );
}

#[test]
fn refit_epochs_match_steps() {
    // ML-100K at batch 512: 142 batches on 90% of the training split, 157 on all of it.
    assert_eq!(refit_epochs(25, None, 142, 157), (23, None));
    assert_eq!(refit_epochs(30, Some(10), 142, 157), (27, Some(9)));
    assert_eq!(refit_epochs(1, Some(1), 1, 100), (1, Some(1)));
    assert_eq!(refit_epochs(4, None, 8, 8), (4, None));
}

/// `--fine-tune-rating`: the extra epochs of the rating task leave the embedding tables bit for bit as the
/// joint training left them, so the retrieval metrics are exactly the plain run's, and they refit the MLP.
#[test]
fn fine_tuning_freezes_the_embeddings_and_keeps_the_retrieval_metrics() {
    let Some(gpu) = common::gpu() else { return };
    let data = sample();
    let plain = base(2);
    let mut tuned = base(2);
    tuned.tweaks.fine_tune_rating = 2;
    let (a, pa) = train(gpu, &data, &plain);
    let (b, pb) = train(gpu, &data, &tuned);
    assert!(pa.user_emb == pb.user_emb, "user embeddings changed");
    assert!(pa.movie_emb == pb.movie_emb, "movie embeddings changed");
    assert!(pa.mlp != pb.mlp, "the MLP was not trained");
    assert_eq!(a.test.top_k, b.test.top_k, "retrieval metrics changed");
    assert_ne!(a.test.rmse, b.test.rmse, "RMSE unchanged");
    let stage = tuned.fine_tune_stage();
    assert_eq!((stage.rating_weight, stage.retrieval_weight), (1.0, 0.0));
    assert!(stage.embeddings_frozen() && stage.epochs == 2);
    assert_eq!(stage.tweaks.fine_tune_rating, 0);
    stage.validate().unwrap();
}

/// `--select ndcg10`: every validation point ranks among the movies its user did not rate in the fit split,
/// the kept epoch has the highest validation NDCG@10, and that NDCG is what an evaluator of the kept
/// parameters on (validation, fit) computes.
#[test]
fn ndcg10_selection_keeps_the_best_validation_ndcg_among_unseen_movies() {
    let Some(gpu) = common::gpu() else { return };
    let data = sample();
    let mut opts = base(5);
    opts.tweaks.validation_fraction = 0.2;
    opts.tweaks.select = Criterion::Ndcg10;
    let (selected, kept) = train(gpu, &data, &opts);
    let sel = selected.selection.as_ref().expect("a selection was made");
    let ndcg: Vec<f64> = sel
        .points
        .iter()
        .map(|p| {
            p.metrics
                .ranked
                .as_ref()
                .expect("ranked validation metrics")
                .ndcg_at(10)
        })
        .collect();
    let best = ndcg.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let first_best = ndcg.iter().position(|&n| n == best).unwrap();
    assert_eq!(
        sel.chosen, first_best,
        "validation NDCG@10 per epoch: {ndcg:?}"
    );
    let (fit, val) = holdout(&data.train, 0.2, opts.seed);
    let cfg = ModelConfig::tutorial(data.users.rows(), data.titles.rows(), DIM);
    let model = GpuModel::new(gpu, &cfg, &kept).unwrap();
    let kernels = common::kernels(gpu, DIM);
    let evaluator = wgrec::eval::Evaluator::on_family(
        gpu,
        wgrec::kernels::Ops::Windowed(kernels),
        &model,
        &val,
        Some(&fit),
        &data.candidates,
        4096,
    )
    .unwrap();
    let again = evaluator.run(1.0, 1.0).unwrap();
    assert_eq!(again.ranked.unwrap().ndcg_at(10), best);
    // The other criteria leave the validation pass as it was: no ranking among unseen movies.
    opts.tweaks.select = Criterion::Top100;
    let (plain, _) = train(gpu, &data, &opts);
    let points = &plain.selection.as_ref().unwrap().points;
    assert!(points.iter().all(|p| p.metrics.ranked.is_none()));
}
