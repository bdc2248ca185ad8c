//! Reports: the tutorial-style table and the metrics JSON of finished runs; `plot` draws them, `sweep` and
//! `recipe` run families of configurations, `cv` summarises cross-validation folds, `bench` times the
//! kernels.

pub mod bench;
pub mod cv;
pub mod plot;
pub mod recipe;
pub mod sweep;

use crate::eval::{KS, RANKED_KS};
use crate::gpu::AdapterSummary;
use crate::train::run::RunResult;

/// A table row's name: the weights, after the preset's name when a preset set them.
fn config_label(r: &RunResult) -> String {
    let weights = format!("({}, {})", r.opts.rating_weight, r.opts.retrieval_weight);
    match &r.preset {
        Some(p) => format!("{p} {weights}"),
        None => weights,
    }
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
            config_label(r),
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
                config_label(r),
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
