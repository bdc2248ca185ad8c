//! Both kernel families train the same model to the same metrics: the windowed family and the GPU family
//! sum in different orders, so losses and errors agree to a relative 1e-4 and top-k accuracies (where a
//! near-tie may flip one test rating's rank) to 0.002; the family is recorded in the run JSON.

mod common;

use wgrec::data::{DataOptions, Dataset};
use wgrec::kernels::gpu::Kernels as GpuKernels;
use wgrec::kernels::Family;
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

fn same_metrics(w: &RunResult, g: &RunResult) {
    assert_eq!((w.kernels, g.kernels), (Family::Windowed, Family::Gpu));
    assert_eq!(w.history.len(), g.history.len());
    for (a, b) in w.history.iter().zip(&g.history) {
        close(&format!("loss of epoch {}", a.epoch), a.loss, b.loss, 1e-4);
    }
    close("RMSE", w.test.rmse, g.test.rmse, 1e-4);
    close("test loss", w.test.loss, g.test.loss, 1e-4);
    for k in wgrec::eval::KS {
        let (a, b) = (w.test.top(k), g.test.top(k));
        assert!((a - b).abs() <= 0.002, "top-{k}: windowed {a} vs gpu {b}");
    }
    let json = g.to_json();
    assert_eq!(json["kernels"], "gpu", "{json}");
}

#[test]
fn both_families_train_the_joint_model_alike() {
    let Some(gpu) = common::gpu() else { return };
    let data = sample();
    let windowed = common::kernels(gpu, 32);
    let gpu_family = GpuKernels::new(gpu, 32).expect("the GPU family compiles");
    let env = |gpu_family| Env {
        gpu,
        kernels: windowed,
        gpu_family,
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
        let w = run.execute(&env(None)).unwrap().result;
        let g = run.execute(&env(Some(&gpu_family))).unwrap().result;
        same_metrics(&w, &g);
    }
}
