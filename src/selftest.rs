//! `wgrec selftest`: does wgrec compute correctly on this adapter and driver? Trains a few steps of awkward
//! shapes with the chosen kernel family and holds every parameter, Adagrad accumulator and loss against
//! the composed CPU reference (`cpu::reference`); then evaluates (FactorizedTopK, RMSE) and serves
//! (BruteForce top-k) a model and holds those against the CPU twins.

use crate::cpu::{self, reference::CpuModel};
use crate::data::batches::make_batches;
use crate::data::{Ratings, SplitMix64};
use crate::eval::{Evaluator, KS};
use crate::gpu::Gpu;
use crate::kernels::model::GpuModel;
use crate::kernels::Exclusions;
use crate::kernels::{gpu as gpu_family, windowed, Compiled, Family, Ops};
use crate::model::{ModelConfig, Params};
use crate::options::{TrainOptions, Tweaks};
use crate::train::trainer::{batch_order, Trainer};
use anyhow::Result;

/// One comparison: the largest error against the CPU and what is allowed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Check {
    pub name: String,
    /// max |gpu - cpu| / (atol + rtol |cpu|): at most 1 passes.
    pub max_error: f64,
    pub tolerance: String,
    pub ok: bool,
}

/// Elementwise `|g - w| <= atol + rtol |w|` (NaN fails).
fn compare(name: String, got: &[f32], want: &[f32], atol: f64, rtol: f64) -> Check {
    let mut worst = if got.len() == want.len() {
        0.0
    } else {
        f64::INFINITY
    };
    for (&g, &w) in got.iter().zip(want) {
        let e = (g as f64 - w as f64).abs() / (atol + rtol * (w as f64).abs());
        worst = if e.is_nan() {
            f64::INFINITY
        } else {
            worst.max(e)
        };
    }
    Check {
        name,
        max_error: worst,
        tolerance: format!("{atol:e} + {rtol:e} |x|"),
        ok: worst <= 1.0,
    }
}

/// `n` random ratings over ids 1..users and 1..movies (row 0 is the OOV row).
pub fn synthetic(rng: &mut SplitMix64, n: usize, users: usize, movies: usize) -> Ratings {
    Ratings {
        user: (0..n)
            .map(|_| 1 + rng.below(users as u64 - 1) as u32)
            .collect(),
        movie: (0..n)
            .map(|_| 1 + rng.below(movies as u64 - 1) as u32)
            .collect(),
        rating: (0..n).map(|_| 1.0 + rng.below(5) as f32).collect(),
    }
}

/// Runs every check on `gpu` with `family`'s kernels: training, evaluation and serving.
pub fn run(gpu: &Gpu, family: Family) -> Result<Vec<Check>> {
    let dim = 16;
    let compiled = Compiled::new(gpu, dim, family)?;
    let ops = compiled.ops();
    let mut checks = Vec::new();
    // Several windows and weight-gradient splits, a partial last batch, each task alone and together,
    // and frozen embeddings.
    let frozen = Tweaks {
        embedding_learning_rate: Some(0.0),
        ..Tweaks::default()
    };
    let tweaked = Tweaks {
        logq_correction: true,
        embedding_learning_rate: Some(0.05),
        embedding_l2: 0.01,
        ..Tweaks::default()
    };
    // The full softmax with a catalogue longer than the batch: work buffers sized by the catalogue.
    let full = Tweaks {
        full_softmax: true,
        embedding_l2: 0.01,
        ..Tweaks::default()
    };
    for (label, users, movies, (h1, h2), n, batch, (wr, wt), tweaks) in [
        (
            "joint",
            11,
            13,
            (64, 64),
            73,
            50,
            (1.0, 1.0),
            Tweaks::default(),
        ),
        (
            "joint",
            301,
            203,
            (256, 128),
            1337,
            600,
            (1.0, 1.0),
            tweaked,
        ),
        (
            "rating only",
            301,
            203,
            (256, 128),
            1337,
            600,
            (1.0, 0.0),
            Tweaks::default(),
        ),
        (
            "retrieval only",
            301,
            203,
            (128, 64),
            1000,
            512,
            (0.0, 1.0),
            Tweaks::default(),
        ),
        (
            "full softmax",
            301,
            203,
            (64, 64),
            700,
            128,
            (1.0, 1.0),
            full,
        ),
        (
            "frozen embeddings",
            97,
            89,
            (64, 64),
            500,
            256,
            (2.0, 0.5),
            frozen,
        ),
    ] {
        let cfg = ModelConfig {
            users,
            movies,
            embedding_dim: dim,
            hidden1: h1,
            hidden2: h2,
        };
        windowed::check_shape(&cfg)?;
        let mut rng = SplitMix64::new(16 + n as u64);
        let train = synthetic(&mut rng, n, users, movies);
        let opts = TrainOptions {
            epochs: 1,
            batch_size: batch,
            seed: 5,
            tweaks,
            ..TrainOptions::tutorial(wr, wt)
        };
        let init = Params::init(&cfg, opts.seed);
        let model = GpuModel::new(gpu, &cfg, &init)?;
        let mut trainer = Trainer::on_family(gpu, ops, model, &train, &opts)?;
        let log = trainer.epoch(None)?;
        let got = trainer.model.params(gpu)?;
        let (ua, ma, la) = trainer.model.accumulators(gpu)?;
        let mut reference = CpuModel::new(cfg, init);
        let (mut weighted, mut rows) = (0.0, 0.0);
        let order = batch_order(opts.seed, n);
        for b in &opts.make_batches(&train, &order, cfg.movies) {
            weighted += reference.step(b, &opts) * b.rows() as f64;
            rows += b.rows() as f64;
        }
        let name = |t: &str| {
            format!(
                "train step, {label} ({} batches of {batch}, H {h1}-{h2}): {t}",
                n.div_ceil(batch)
            )
        };
        let want = &reference.params;
        for (t, g, w) in [
            ("user embeddings", &got.user_emb, &want.user_emb),
            ("movie embeddings", &got.movie_emb, &want.movie_emb),
            ("MLP", &got.mlp, &want.mlp),
            ("user accumulators", &ua, &reference.user_acc),
            ("movie accumulators", &ma, &reference.movie_acc),
            ("MLP accumulators", &la, &reference.mlp_acc),
        ] {
            checks.push(compare(name(t), g, w, 1e-6, 1e-4));
        }
        let loss = [log.loss as f32];
        checks.push(compare(
            name("loss"),
            &loss,
            &[(weighted / rows) as f32],
            1e-6,
            1e-5,
        ));
    }
    checks.extend(evaluation(gpu, ops, dim)?);
    Ok(checks)
}

/// FactorizedTopK accuracy and RMSE of the evaluator, BruteForce top-k with exclusions and rating
/// predictions, against the CPU twins, on the kernels of `ops`.
fn evaluation(gpu: &Gpu, ops: Ops, dim: usize) -> Result<Vec<Check>> {
    let cfg = ModelConfig {
        users: 300,
        movies: 500,
        embedding_dim: dim,
        hidden1: 128,
        hidden2: 64,
    };
    let params = Params::init(&cfg, 77);
    let mut rng = SplitMix64::new(78);
    let n = 2000;
    let test = synthetic(&mut rng, n, cfg.users, cfg.movies);
    let candidates: Vec<u32> = (1..cfg.movies as u32).collect();
    let model = GpuModel::new(gpu, &cfg, &params)?;
    let got =
        Evaluator::on_family(gpu, ops, &model, &test, None, &candidates, 700)?.run(1.0, 1.0)?;
    let (scores_with, top_k_with, predict_with) = match ops {
        Ops::Windowed(_) => (
            "candidate_scores, pair_ranks",
            "brute_force_top_k",
            "dense_forward, rating_loss",
        ),
        Ops::Gpu(_) => (
            "candidate_scores_gpu, pair_ranks",
            "brute_force_top_k_gpu",
            "dense_gather_forward_gpu, dense_forward_gpu, rating_loss_gpu",
        ),
    };
    let p = &params;
    let mut movie_d = vec![0.0; candidates.len() * dim];
    cpu::embedding_gather(&p.movie_emb, &candidates, dim, &mut movie_d, dim, 0);
    let scores = cpu::candidate_scores(&p.user_emb, &movie_d, dim);
    let own: Vec<u32> = test.movie.iter().map(|m| m - 1).collect();
    let ranks = cpu::pair_ranks(&scores, candidates.len(), &test.user, &own, |_, _| false);
    let mut checks = Vec::new();
    // A near-tie may rank one test rating differently: one rating's worth of accuracy is allowed.
    for (&k_, &(_, acc)) in KS.iter().zip(&got.top_k) {
        let want = ranks.iter().filter(|(all, _)| *all < k_).count() as f64 / n as f64;
        let err = (acc - want).abs() * n as f64;
        checks.push(Check {
            name: format!("evaluate ({scores_with}): FactorizedTopK top-{k_} ({n} ratings)"),
            max_error: err,
            tolerance: "1 rating".into(),
            ok: err <= 1.0,
        });
    }
    let order: Vec<u32> = (0..n as u32).collect();
    let mut sq = 0.0f64;
    for b in make_batches(&test, &order, 700) {
        let head = cpu::reference::rating_forward(&cfg, p, &b, 0.0).head;
        sq += head.sq_err.iter().map(|&v| v as f64).sum::<f64>();
    }
    let rmse = (sq / n as f64).sqrt();
    checks.push(compare(
        format!("evaluate ({predict_with}): RMSE"),
        &[got.rmse as f32],
        &[rmse as f32],
        1e-6,
        1e-5,
    ));
    // Predictions of 300 test pairs, one batch.
    let (pu, pm) = (&test.user[..300], &test.movie[..300]);
    let pred = match ops {
        Ops::Windowed(k) => windowed::top_k::predict(gpu, k, &model, pu, pm)?,
        Ops::Gpu(g) => gpu_family::top_k::predict(gpu, g, &model, pu, pm)?,
    };
    let b = crate::data::batches::Batch::new(pu.to_vec(), pm.to_vec(), vec![0.0; 300]);
    let want = cpu::reference::rating_forward(&cfg, p, &b, 0.0).head.pred;
    checks.push(compare(
        format!("serve ({predict_with}): 300 predictions"),
        &pred,
        &want,
        1e-5,
        1e-4,
    ));
    // BruteForce: the top 10 of 40 users over every candidate, each user leaving out a few candidates
    // (as --exclude-seen does), as indices into `candidates`.
    let (queries, top) = ((1..41).collect::<Vec<u32>>(), 10);
    let mut exclude = Exclusions::none(0);
    for _ in &queries {
        let mut run: Vec<u32> = (0..rng.below(12))
            .map(|_| rng.below(candidates.len() as u64) as u32)
            .collect();
        run.sort_unstable();
        run.dedup();
        exclude.items.extend(run);
        exclude.offsets.push(exclude.items.len() as u32);
    }
    let users = (&model.user_emb, &queries[..]);
    let movies = (&model.movie_emb, &candidates[..]);
    let result = match ops {
        Ops::Windowed(k) => {
            windowed::top_k::BruteForce::new(gpu, k, users, movies, dim, &exclude, top)?.run()?
        }
        Ops::Gpu(g) => {
            gpu_family::top_k::BruteForce::new(gpu, g, users, movies, dim, &exclude, top)?.run()?
        }
    };
    let mut mismatched = 0;
    for (a, &q) in queries.iter().enumerate() {
        let row = &scores[q as usize * candidates.len()..(q as usize + 1) * candidates.len()];
        let skip = &exclude.items[exclude.offsets[a] as usize..exclude.offsets[a + 1] as usize];
        let mut order: Vec<usize> = (0..candidates.len())
            .filter(|i| !skip.contains(&(*i as u32)))
            .collect();
        order.sort_by(|&i, &j| row[j].total_cmp(&row[i]).then(i.cmp(&j)));
        let got: Vec<u32> = result.row(a).map(|(i, _)| i).collect();
        let want: Vec<u32> = order[..top].iter().map(|&i| i as u32).collect();
        mismatched += (got != want) as usize;
    }
    checks.push(Check {
        name: format!(
            "serve ({top_k_with}): top-{top} of {} users, with exclusions",
            queries.len()
        ),
        max_error: mismatched as f64,
        tolerance: "0 users differ".into(),
        ok: mismatched == 0,
    });
    Ok(checks)
}

/// The table `wgrec selftest` prints.
pub fn table(checks: &[Check]) -> String {
    let w = checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut s = format!(
        "{:<w$}  {:>10}  {:<18}  ok\n",
        "check", "max error", "tolerance"
    );
    for c in checks {
        s.push_str(&format!(
            "{:<w$}  {:>10.3e}  {:<18}  {}\n",
            c.name,
            c.max_error,
            c.tolerance,
            if c.ok { "ok" } else { "MISMATCH" }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_fails_outside_the_tolerance_on_nan_and_on_a_length_mismatch() {
        assert!(compare("a".into(), &[1.0, 2.0], &[1.0, 2.0001], 1e-6, 1e-4).ok);
        let off = compare("b".into(), &[1.0, 2.01], &[1.0, 2.0], 1e-6, 1e-4);
        assert!(!off.ok && off.max_error > 40.0, "{off:?}");
        assert!(!compare("c".into(), &[f32::NAN], &[1.0], 1e-6, 1e-4).ok);
        assert!(!compare("d".into(), &[1.0], &[1.0, 1.0], 1e-6, 1e-4).ok);
        let t = table(&[off]);
        assert!(t.contains("MISMATCH"), "{t}");
    }
}
