//! Both kernel families train the same model to the same metrics: the windowed family and the GPU family
//! sum in different orders, so losses and errors agree to a relative 1e-4 and top-k accuracies (where a
//! near-tie may flip one test rating's rank) to 0.002; the family is recorded in the run JSON. One model
//! evaluated and served by both families gives the same metrics, top-k lists and predictions.

mod common;

use wgrec::data::{DataOptions, Dataset};
use wgrec::eval::TestMetrics;
use wgrec::kernels::gpu::Kernels as GpuKernels;
use wgrec::kernels::{Family, Ops};
use wgrec::options::{TrainOptions, Tweaks};
use wgrec::train::run::{Env, Run, RunResult};

fn sample() -> Dataset {
    wgrec::data::load(&DataOptions {
        dataset: Some("sample".into()),
        seed: 42,
        ..Default::default()
    })
    .unwrap()
}

fn close(what: &str, a: f64, b: f64, rel: f64) {
    assert!(
        (a - b).abs() <= rel * a.abs().max(b.abs()),
        "{what}: windowed {a} vs gpu {b}"
    );
}

/// Errors and losses to a relative `rel`; top-k, Recall and NDCG (where a near-tie may flip one rank) to 0.002.
fn same_test_metrics(w: &TestMetrics, g: &TestMetrics, rel: f64) {
    close("RMSE", w.rmse, g.rmse, rel);
    close("test loss", w.loss, g.loss, rel);
    for ((k, a), (_, b)) in w.top_k.iter().zip(&g.top_k) {
        assert!((a - b).abs() <= 0.002, "top-{k}: windowed {a} vs gpu {b}");
    }
    assert_eq!(w.ranked.is_some(), g.ranked.is_some());
    if let (Some(a), Some(b)) = (&w.ranked, &g.ranked) {
        let (wa, ga) = (
            a.recall.iter().chain(&a.ndcg),
            b.recall.iter().chain(&b.ndcg),
        );
        for ((k, x), (_, y)) in wa.zip(ga) {
            assert!(
                (x - y).abs() <= 0.002,
                "recall/NDCG@{k}: windowed {x} vs gpu {y}"
            );
        }
        close("MAE", a.mae, b.mae, rel);
    }
}

fn same_metrics(w: &RunResult, g: &RunResult) {
    assert_eq!((w.kernels, g.kernels), (Family::Windowed, Family::Gpu));
    assert_eq!(w.history.len(), g.history.len());
    for (a, b) in w.history.iter().zip(&g.history) {
        close(&format!("loss of epoch {}", a.epoch), a.loss, b.loss, 1e-4);
    }
    same_test_metrics(&w.test, &g.test, 1e-4);
    assert!(w.test.ranked.is_some(), "ranked metrics");
    let json = g.to_json();
    assert_eq!(json["kernels"], "gpu", "{json}");
}

#[test]
fn both_families_train_the_joint_model_alike() {
    let Some(gpu) = common::gpu() else { return };
    let data = sample();
    let windowed = common::kernels(gpu, 32);
    let gpu_family = GpuKernels::new(gpu, 32).expect("the GPU family compiles");
    let env = |ops| Env {
        gpu,
        ops,
        data: &data,
        split: None,
        profiler: None,
    };
    // The tutorial's joint model, and one with the tweaks that change the step (logQ, embedding
    // learning rate and L2) and a rating-only fine-tune on frozen embeddings.
    let tweaked = TrainOptions {
        batch_size: 2048,
        tweaks: Tweaks {
            logq_correction: true,
            embedding_learning_rate: Some(0.05),
            embedding_l2: 0.01,
            fine_tune_rating: 1,
            ..Tweaks::default()
        },
        ..TrainOptions::tutorial(2.0, 1.0)
    };
    for opts in [TrainOptions::tutorial(1.0, 1.0), tweaked] {
        let opts = TrainOptions { epochs: 2, ..opts };
        let run = Run::new(opts, 32).unwrap();
        let w = run.execute(&env(Ops::Windowed(windowed))).unwrap().result;
        let g = run.execute(&env(Ops::Gpu(&gpu_family))).unwrap().result;
        same_metrics(&w, &g);
    }
}

/// One model (initial parameters, so no training differences) evaluated by both families' passes, with
/// and without the training split, and served by both families' BruteForce and predictions.
#[test]
fn both_families_evaluate_and_serve_one_model_alike() {
    use wgrec::eval::Evaluator;
    use wgrec::kernels::model::GpuModel;
    use wgrec::kernels::{gpu, windowed, Exclusions};
    use wgrec::model::{ModelConfig, Params};
    let Some(g) = common::gpu() else { return };
    let data = sample();
    let cfg = ModelConfig::tutorial(data.users.rows(), data.titles.rows(), 32);
    let model = GpuModel::new(g, &cfg, &Params::init(&cfg, 5)).unwrap();
    let (wk, gk) = (common::kernels(g, 32), GpuKernels::new(g, 32).unwrap());
    for train in [None, Some(&data.train)] {
        let eval = |ops| {
            Evaluator::on_family(g, ops, &model, &data.test, train, &data.candidates, 300)
                .unwrap()
                .run(1.0, 1.0)
                .unwrap()
        };
        let (w, m) = (eval(Ops::Windowed(wk)), eval(Ops::Gpu(&gk)));
        assert_eq!(w.ranked.is_some(), train.is_some());
        same_test_metrics(&w, &m, 1e-5);
    }
    // Top 20 of every user, each leaving out the movies they rated in training (as --exclude-seen).
    let candidates: Vec<u32> = (1..cfg.movies as u32).collect();
    let queries: Vec<u32> = (0..cfg.users as u32).collect();
    let mut seen = vec![Vec::new(); cfg.users];
    for (&u, &m) in data.train.user.iter().zip(&data.train.movie) {
        if m > 0 {
            seen[u as usize].push(m - 1);
        }
    }
    let mut exclude = Exclusions::none(0);
    for run in &mut seen {
        run.sort_unstable();
        run.dedup();
        exclude.items.extend(run.iter());
        exclude.offsets.push(exclude.items.len() as u32);
    }
    let (users, movies) = (
        (&model.user_emb, &queries[..]),
        (&model.movie_emb, &candidates[..]),
    );
    let top = 20;
    let w = windowed::top_k::BruteForce::new(g, wk, users, movies, 32, &exclude, top)
        .unwrap()
        .run()
        .unwrap();
    let m = gpu::top_k::BruteForce::new(g, &gk, users, movies, 32, &exclude, top)
        .unwrap()
        .run()
        .unwrap();
    for i in 0..queries.len() * top {
        let (a, b) = (w.score[i], m.score[i]);
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "score {i}: {a} vs {b}"
        );
        // Indices may differ only where two candidates tie to rounding.
        if w.index[i] != m.index[i] {
            assert!(
                (a - b).abs() <= 1e-5,
                "top-{top} slot {i}: {} vs {}",
                w.index[i],
                m.index[i]
            );
        }
    }
    let (pu, pm) = (&data.test.user[..500], &data.test.movie[..500]);
    let a = windowed::top_k::predict(g, wk, &model, pu, pm).unwrap();
    let b = gpu::top_k::predict(g, &gk, &model, pu, pm).unwrap();
    for (x, y) in a.iter().zip(&b) {
        close("prediction", *x as f64, *y as f64, 1e-4);
    }
}
