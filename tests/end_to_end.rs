//! The TFRS multi-task tutorial end to end on MovieLens 100K's fixed split: three epochs of each
//! configuration, with the test metrics held to bands around TFRS's published numbers. Needs the data
//! (`WGREC_DATA_DIR`, or `../shared/data` next to the crate) and an adapter; without them it records a
//! skip (`common::skip`), and fails in CI.

mod common;

use wgrec::data::DataOptions;
use wgrec::kernels::windowed::Kernels;
use wgrec::options::TrainOptions;
use wgrec::train::run::{Env, Run};

/// The tutorial's three configurations (seed 42) in their bands, and the joint model's RMSE band
/// [1.05, 1.20] on the mean of three seeds (42, 1, 2): one seed is too noisy for it. With the tutorial's
/// fixed batches (`cache()`) the joint RMSE after 3 epochs is 1.2017 at seed 42, 1.187 at seed 1, 1.177 at
/// seed 2 and 1.095 at seed 3 on lavapipe (TFRS: 1.12-1.13 for its seed). The seed changes the
/// initialisation and the batch order; the split is fixed. One test, so that seed 42's joint run serves both.
#[test]
fn tutorial_metrics_fall_in_their_bands() {
    let Some(dir) = common::ml_100k() else { return };
    let Some(gpu) = common::gpu() else { return };
    let data = wgrec::data::load(&DataOptions {
        data_dir: Some(dir.join("ml-100k")),
        split_dir: Some(dir.join("ml-100k-split")),
        seed: 42,
        ..Default::default()
    })
    .expect("loading ml-100k");
    let kernels = Kernels::new(gpu, 32).expect("compiling the kernels");
    let run = |rating_weight: f32, retrieval_weight: f32, seed: u64| {
        let opts = TrainOptions {
            seed,
            ..TrainOptions::tutorial(rating_weight, retrieval_weight)
        };
        let env = Env {
            gpu,
            ops: wgrec::kernels::Ops::Windowed(&kernels),
            data: &data,
            split: None,
            profiler: None,
        };
        let r = Run::new(opts, 32)
            .and_then(|run| run.execute(&env))
            .expect("training and evaluation")
            .result;
        let (top100, rmse) = (r.test.top(100), r.test.rmse);
        eprintln!(
            "rating weight {rating_weight}, retrieval weight {retrieval_weight}, seed {seed}: top-100 \
             {top100:.4}, RMSE {rmse:.4} (train {:.1} s, eval {:.1} s)",
            r.train_seconds, r.eval_seconds
        );
        (top100, rmse)
    };

    let (top100, rmse42) = run(1.0, 1.0, 42);
    assert!(
        (0.21..=0.26).contains(&top100),
        "joint model: top-100 accuracy {top100} outside [0.21, 0.26]"
    );
    let rmses = [rmse42, run(1.0, 1.0, 1).1, run(1.0, 1.0, 2).1];
    let mean = rmses.iter().sum::<f64>() / rmses.len() as f64;
    assert!(
        (1.05..=1.20).contains(&mean),
        "joint model: mean RMSE {mean:.4} over seeds 42, 1, 2 ({rmses:?}) outside [1.05, 1.20]"
    );

    let (top100, _) = run(1.0, 0.0, 42);
    assert!(
        (0.04..=0.08).contains(&top100),
        "rating-only model: top-100 accuracy {top100} outside [0.04, 0.08]"
    );

    // The rating head never trains, so its predictions stay near zero against ratings of 1 to 5.
    let (_, rmse) = run(0.0, 1.0, 42);
    assert!(
        rmse > 2.5,
        "retrieval-only model: RMSE {rmse} should exceed 2.5"
    );
}
