//! `wgrec sweep`: trains every (rating weight, retrieval weight, seed) combination, then writes
//! results.csv, results.json and the charts (trade-off with its Pareto front, per-epoch curves).

use crate::eval::{KS, RANKED_KS};
use crate::gpu::AdapterSummary;
use crate::options::TrainOptions;
use crate::output::json_bytes;
use crate::output::{Commit, Output};
use crate::report::metrics_json;
use crate::report::plot::{curves_svg, tradeoff_svg, Curve, TradeoffPoint};
use crate::train::run::{Env, Run, RunResult};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

pub struct SweepConfig {
    pub rating_weights: Vec<f32>,
    pub retrieval_weights: Vec<f32>,
    pub seeds: Vec<u64>,
    /// Everything but the weights and the seed.
    pub base: TrainOptions,
    pub embedding_dim: usize,
    pub eval_batch_size: usize,
    pub out: PathBuf,
    /// Named presets (`wgrec recipe`) trained with the same seeds and drawn beside the grid.
    pub presets: Vec<String>,
}

impl SweepConfig {
    /// Every combination, weights outermost, seeds innermost.
    pub fn runs(&self) -> Result<Vec<TrainOptions>> {
        if self.rating_weights.is_empty()
            || self.retrieval_weights.is_empty()
            || self.seeds.is_empty()
        {
            bail!("a sweep needs at least one rating weight, one retrieval weight and one seed");
        }
        let mut runs = Vec::new();
        for &rating_weight in &self.rating_weights {
            for &retrieval_weight in &self.retrieval_weights {
                if rating_weight == 0.0 && retrieval_weight == 0.0 {
                    continue; // nothing to train
                }
                for &seed in &self.seeds {
                    let opts = TrainOptions {
                        rating_weight,
                        retrieval_weight,
                        seed,
                        ..self.base.clone()
                    };
                    opts.validate()?;
                    runs.push(opts);
                }
            }
        }
        if runs.is_empty() {
            bail!("every combination has both weights 0: nothing to train");
        }
        Ok(runs)
    }
}

/// Trains and evaluates every run of the sweep (test metrics after every epoch, for the curves).
pub fn run(env: &Env, cfg: &SweepConfig, progress: bool) -> Result<Vec<RunResult>> {
    let runs = cfg.runs()?;
    let mut results = Vec::new();
    for (i, opts) in runs.iter().enumerate() {
        if progress {
            eprintln!(
                "== run {}/{}: rating_weight {}, retrieval_weight {}, seed {} ==",
                i + 1,
                runs.len(),
                opts.rating_weight,
                opts.retrieval_weight,
                opts.seed
            );
        }
        results.push(run_one(
            env,
            cfg,
            opts.clone(),
            cfg.embedding_dim,
            progress,
        )?);
    }
    Ok(results)
}

/// One run of the sweep, evaluated after every epoch for the curves.
fn run_one(
    env: &Env,
    cfg: &SweepConfig,
    opts: TrainOptions,
    embedding_dim: usize,
    progress: bool,
) -> Result<RunResult> {
    let run = Run::new(opts, embedding_dim)?
        .eval_batch_size(cfg.eval_batch_size)
        .progress(progress)
        .per_epoch(true);
    Ok(run.execute(env)?.result)
}

/// Trains the preset `name` (options `opts`, id width `embedding_dim`) once per seed in `cfg.seeds` on
/// `env`, whose kernels are compiled for the preset's table width (test metrics after every epoch).
pub fn run_preset(
    env: &Env,
    cfg: &SweepConfig,
    name: &str,
    opts: &TrainOptions,
    embedding_dim: usize,
    progress: bool,
) -> Result<Vec<RunResult>> {
    let mut results = Vec::new();
    for &seed in &cfg.seeds {
        if progress {
            eprintln!("== preset {name}, seed {seed} ==");
        }
        let opts = TrainOptions {
            seed,
            ..opts.clone()
        };
        let mut r = run_one(env, cfg, opts, embedding_dim, progress)?;
        r.preset = Some(name.to_string());
        results.push(r);
    }
    Ok(results)
}

/// One CSV row per run: weights, seed, FactorizedTopK, RMSE, Recall@K / NDCG@K / MAE, timings.
pub fn csv(runs: &[RunResult]) -> String {
    let mut header = vec!["rating_weight", "retrieval_weight", "seed", "epochs"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    header.extend(KS.iter().map(|k| format!("top_{k}")));
    header.push("rmse".into());
    header.extend(RANKED_KS.iter().map(|k| format!("recall_at_{k}")));
    header.extend(RANKED_KS.iter().map(|k| format!("ndcg_at_{k}")));
    header.extend(["mae", "test_loss", "train_seconds", "preset"].map(String::from));
    let mut s = header.join(",") + "\n";
    for r in runs {
        let mut row = vec![
            r.opts.rating_weight.to_string(),
            r.opts.retrieval_weight.to_string(),
            r.opts.seed.to_string(),
            r.opts.epochs.to_string(),
        ];
        row.extend(KS.iter().map(|&k| format!("{:.6}", r.test.top(k))));
        row.push(format!("{:.6}", r.test.rmse));
        let ranked = r.test.ranked.as_ref();
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
        row.extend(
            RANKED_KS
                .iter()
                .map(|&k| opt(ranked.map(|m| m.recall_at(k)))),
        );
        row.extend(RANKED_KS.iter().map(|&k| opt(ranked.map(|m| m.ndcg_at(k)))));
        row.push(opt(ranked.map(|m| m.mae)));
        row.push(format!("{:.6}", r.test.loss));
        row.push(format!("{:.3}", r.train_seconds));
        row.push(r.preset.clone().unwrap_or_default());
        s += &(row.join(",") + "\n");
    }
    s
}

/// Mean, minimum and maximum of `values`.
pub fn mean_min_max(values: &[f64]) -> (f64, f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, min, max)
}

/// One point per weighting and per preset, the mean over its seeds.
pub fn tradeoff_points(runs: &[RunResult]) -> Vec<TradeoffPoint> {
    let key = |r: &RunResult| {
        (
            r.preset.clone(),
            r.opts.rating_weight,
            r.opts.retrieval_weight,
        )
    };
    let mut keys = Vec::new();
    for r in runs {
        if !keys.contains(&key(r)) {
            keys.push(key(r));
        }
    }
    keys.into_iter()
        .map(|k| {
            let of: Vec<&RunResult> = runs.iter().filter(|r| key(r) == k).collect();
            let mean = |f: &dyn Fn(&RunResult) -> f64| {
                mean_min_max(&of.iter().map(|r| f(r)).collect::<Vec<_>>()).0
            };
            let (preset, rw, tw) = k;
            TradeoffPoint {
                label: preset.clone().unwrap_or_else(|| format!("({rw}, {tw})")),
                rmse: mean(&|r| r.test.rmse),
                top_100: mean(&|r| r.test.top(100)),
                preset: preset.is_some(),
            }
        })
        .collect()
}

/// Per-epoch curves of every run (runs trained without per-epoch evaluation have only their loss).
pub fn curves(runs: &[RunResult]) -> Vec<Curve> {
    let many_seeds = runs.iter().any(|r| r.opts.seed != runs[0].opts.seed);
    runs.iter()
        .map(|r| Curve {
            label: {
                let what = r.preset.clone().unwrap_or_else(|| {
                    format!("({}, {})", r.opts.rating_weight, r.opts.retrieval_weight)
                });
                match many_seeds {
                    true => format!("{what} seed {}", r.opts.seed),
                    false => what,
                }
            },
            train_loss: r.history.iter().map(|h| h.loss).collect(),
            top_100: r.curve.iter().map(|m| m.top(100)).collect(),
            rmse: r.curve.iter().map(|m| m.rmse).collect(),
        })
        .collect()
}

/// The four files a sweep writes into its `--out` directory (created if missing), checked before it
/// trains.
pub struct SweepOutputs {
    csv: Output,
    json: Output,
    tradeoff: Output,
    curves: Output,
}

impl SweepOutputs {
    pub fn check(dir: &Path) -> Result<Self> {
        let file = |name| Output::check_in_dir("--out", dir, name);
        Ok(Self {
            csv: file("results.csv")?,
            json: file("results.json")?,
            tradeoff: file("tradeoff.svg")?,
            curves: file("curves.svg")?,
        })
    }
}

/// Writes results.csv, results.json, tradeoff.svg and curves.svg, all or none.
pub fn write_outputs(
    out: &SweepOutputs,
    runs: &[RunResult],
    adapter: &AdapterSummary,
) -> Result<()> {
    let tradeoff = tradeoff_svg(
        "Rating vs retrieval: every (rating weight, retrieval weight), and presets",
        &tradeoff_points(runs),
    )?;
    let curves = curves_svg("Per-epoch curves", &curves(runs))?;
    let mut commit = Commit::new();
    commit.stage(&out.csv, csv(runs).as_bytes())?;
    commit.stage(&out.json, &json_bytes(&metrics_json(runs, adapter)))?;
    commit.stage(&out.tradeoff, tradeoff.as_bytes())?;
    commit.stage(&out.curves, curves.as_bytes())?;
    commit.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SweepConfig {
        SweepConfig {
            rating_weights: vec![0.0, 1.0],
            retrieval_weights: vec![0.0, 1.0],
            seeds: vec![42, 1],
            base: TrainOptions::tutorial(1.0, 1.0),
            embedding_dim: 32,
            eval_batch_size: 4096,
            out: PathBuf::from("x"),
            presets: Vec::new(),
        }
    }

    #[test]
    fn runs_are_every_combination_but_zero_zero() {
        let runs = cfg().runs().unwrap();
        let got: Vec<(f32, f32, u64)> = runs
            .iter()
            .map(|r| (r.rating_weight, r.retrieval_weight, r.seed))
            .collect();
        assert_eq!(
            got,
            vec![
                (0.0, 1.0, 42),
                (0.0, 1.0, 1),
                (1.0, 0.0, 42),
                (1.0, 0.0, 1),
                (1.0, 1.0, 42),
                (1.0, 1.0, 1)
            ]
        );
        let mut only_zero = cfg();
        only_zero.rating_weights = vec![0.0];
        only_zero.retrieval_weights = vec![0.0];
        assert!(only_zero.runs().is_err());
        let mut negative = cfg();
        negative.rating_weights = vec![-1.0];
        assert!(negative.runs().is_err());
    }

    #[test]
    fn mean_min_max_of_three() {
        assert_eq!(mean_min_max(&[1.0, 4.0, 1.0]), (2.0, 1.0, 4.0));
    }
}
