//! The profiler: dispatch pricing, per-kernel totals that account for every row of every batch exactly once,
//! identical training with and without profiling (GPU timestamps and the CPU fallback), and the Chrome
//! trace.

mod common;

use common::{gpu, kernels};
use wgrec::data::{Ratings, SplitMix64};
use wgrec::gpu::profile::Cost;
use wgrec::gpu::profile::{trace, Profiler, Timing};
use wgrec::kernels::cost;
use wgrec::kernels::model::GpuModel;
use wgrec::kernels::windowed::{DenseForwardParams, RetrievalSoftmaxParams};
use wgrec::model::{ModelConfig, Params};
use wgrec::options::TrainOptions;
use wgrec::train::trainer::Trainer;

#[test]
fn dispatch_costs_follow_the_shader_loops() {
    let dense = DenseForwardParams::new(64, 100, 64, 256);
    let c = cost("dense_forward", bytemuck::bytes_of(&dense), 0);
    assert_eq!(c.flops, 2.0 * 100.0 * 64.0 * 256.0);
    assert_eq!(
        c.bytes,
        4.0 * (100.0 * 64.0 + 64.0 * 256.0 + 256.0 + 100.0 * 256.0)
    );
    let r = RetrievalSoftmaxParams::new(10, 30, 1.0, true, false);
    let c = cost("retrieval_softmax_users", bytemuck::bytes_of(&r), 32);
    assert_eq!(c.flops, 4.0 * 10.0 * 30.0 * 32.0 + 4.0 * 10.0 * 30.0);
    assert_eq!(cost("no_such_kernel", &[0; 32], 32), Cost::default());
}

fn synthetic(n: usize, users: u32, movies: u32) -> Ratings {
    let mut rng = SplitMix64::new(7);
    Ratings {
        user: (0..n).map(|_| 1 + rng.below(users as u64) as u32).collect(),
        movie: (0..n)
            .map(|_| 1 + rng.below(movies as u64) as u32)
            .collect(),
        rating: (0..n).map(|_| 1.0 + rng.below(5) as f32).collect(),
    }
}

#[test]
fn profiling_changes_no_result_and_counts_every_row() {
    let Some(gpu) = gpu() else { return };
    let dim = 32;
    let k = kernels(gpu, dim);
    let cfg = ModelConfig::tutorial(61, 97, dim);
    let n = 2500;
    let train = synthetic(n, 60, 96);
    let opts = TrainOptions {
        epochs: 2,
        batch_size: 1024,
        ..TrainOptions::tutorial(1.0, 1.0)
    };
    let run = |profiler: Option<&Profiler>| {
        let model = GpuModel::new(gpu, &cfg, &Params::init(&cfg, opts.seed)).unwrap();
        let mut trainer = Trainer::new(gpu, k, model, &train, &opts).unwrap();
        if let Some(p) = profiler {
            trainer.profile(p);
        }
        let losses: Vec<f64> = (0..opts.epochs)
            .map(|_| trainer.epoch(None).unwrap().loss)
            .collect();
        (losses, trainer.model.params(gpu).unwrap())
    };
    let plain = run(None);
    trace::start();
    let mut modes = vec![Timing::CpuWallClock];
    if gpu
        .device
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY)
    {
        modes.push(Timing::GpuTimestamps);
    }
    for timing in modes {
        let p = Profiler::with_timing(gpu, timing).unwrap();
        let profiled = run(Some(&p));
        assert_eq!(
            profiled, plain,
            "{timing:?}: profiling changed the training"
        );
        let stats = p.kernels("train");
        let get = |name: &str| {
            stats
                .iter()
                .find(|(k, _)| *k == name)
                .unwrap_or_else(|| panic!("{timing:?}: no {name} in {stats:?}"))
                .1
        };
        for (name, s) in &stats {
            assert!(s.calls > 0 && s.seconds > 0.0, "{timing:?}: {name} {s:?}");
        }
        // Both layers see every training row once per epoch, whatever the windows and batches.
        let rows = (n * opts.epochs) as f64;
        let (h1, h2) = (cfg.hidden1 as f64, cfg.hidden2 as f64);
        let layers = 2.0 * rows * (2.0 * dim as f64 * h1 + h1 * h2);
        assert_eq!(get("dense_forward").flops, layers, "{timing:?}");
        // Layer 2's data gradient goes through ReLU's mask, layer 1's (into the embeddings) does not: two
        // pipelines of one shader, profiled apart.
        let layer1 = 2.0 * rows * 2.0 * dim as f64 * h1;
        assert_eq!(
            get("dense_backward_data").flops,
            layers - layer1,
            "{timing:?}"
        );
        assert_eq!(
            get("dense_backward_data_linear").flops,
            layer1,
            "{timing:?}"
        );
        assert_eq!(
            get("embedding_adagrad").calls,
            2 * 3 * opts.epochs as u64,
            "{timing:?}: one user and one movie update per step"
        );
        assert_eq!(p.steps("train"), 3 * opts.epochs as u64, "{timing:?}");
        let table = p.table();
        for name in [
            "dense_forward",
            "retrieval_softmax_users",
            "embedding_adagrad",
        ] {
            assert!(
                table.contains(name),
                "{timing:?}: table lacks {name}:\n{table}"
            );
        }
    }
    {
        let _span = trace::span("a CPU phase");
    }
    let doc = trace::to_json();
    let events = doc["traceEvents"].as_array().unwrap();
    let count = |cat: &str| events.iter().filter(|e| e["cat"] == cat).count();
    assert!(count("gpu") > 100, "GPU dispatch events: {}", count("gpu"));
    assert!(events
        .iter()
        .any(|e| e["cat"] == "cpu" && e["name"] == "a CPU phase" && e["ph"] == "X"));
}
