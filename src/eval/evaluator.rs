//! Evaluation on the test split, as TFRS's `model.evaluate` reports it: FactorizedTopK categorical accuracy
//! against one candidate per u.item row, RMSE of the rating head, and the weighted total loss. With the
//! training split at hand (`Evaluator::excluding_training`) also the usual offline metrics of
//! recommender libraries: Recall@K and NDCG@K per user with the user's training movies excluded, and MAE.
//! The GPU pass is the kernel family's (`kernels::windowed::evaluate`, `kernels::gpu::evaluate`); the
//! metrics are computed here from what it reads back.

use super::metrics::*;
use crate::data::Ratings;
use crate::gpu::profile::Profiler;
use crate::gpu::Gpu;
use crate::kernels::evaluate::Tallies;
use crate::kernels::model::GpuModel;
use crate::kernels::windowed::Kernels;
use crate::kernels::{gpu, windowed, Ops};
use anyhow::Result;
use std::time::Instant;

/// Evaluation of one model on one test split, planned once and run after every epoch or at the end.
pub struct Evaluator<'g> {
    pass: Pass<'g>,
}

/// The evaluation pass of the family the evaluator runs on.
enum Pass<'g> {
    Windowed(Box<windowed::evaluate::Evaluation<'g>>),
    Gpu(Box<gpu::evaluate::Evaluation<'g>>),
}

impl<'g> Evaluator<'g> {
    /// `candidates`: the movie-table row of every candidate (u.item rows, duplicates kept). Runs on the
    /// windowed family.
    pub fn new(
        gpu: &'g Gpu,
        k: &Kernels,
        model: &GpuModel,
        test: &Ratings,
        candidates: &[u32],
        eval_batch_size: usize,
    ) -> Result<Self> {
        Self::on_family(
            gpu,
            Ops::Windowed(k),
            model,
            test,
            None,
            candidates,
            eval_batch_size,
        )
    }

    /// Like `new`, and also Recall@K / NDCG@K with each user's `train` movies excluded, and MAE.
    pub fn excluding_training(
        gpu: &'g Gpu,
        k: &Kernels,
        model: &GpuModel,
        test: &Ratings,
        train: &Ratings,
        candidates: &[u32],
        eval_batch_size: usize,
    ) -> Result<Self> {
        let b = eval_batch_size;
        Self::on_family(
            gpu,
            Ops::Windowed(k),
            model,
            test,
            Some(train),
            candidates,
            b,
        )
    }

    /// An evaluator on the family of `ops`; with `train`, also Recall@K / NDCG@K with each user's
    /// training movies excluded, and MAE.
    pub fn on_family(
        gpu: &'g Gpu,
        ops: Ops,
        model: &GpuModel,
        test: &Ratings,
        train: Option<&Ratings>,
        candidates: &[u32],
        eval_batch_size: usize,
    ) -> Result<Self> {
        let b = eval_batch_size;
        let pass = match ops {
            Ops::Windowed(k) => Pass::Windowed(Box::new(windowed::evaluate::Evaluation::new(
                gpu, k, model, test, train, candidates, b,
            )?)),
            Ops::Gpu(g) => Pass::Gpu(Box::new(gpu::evaluate::Evaluation::new(
                gpu, g, model, test, train, candidates, b,
            )?)),
        };
        Ok(Self { pass })
    }

    /// Times every dispatch of the following evaluations with `profiler`.
    pub fn profile(&mut self, profiler: &'g Profiler) {
        match &mut self.pass {
            Pass::Windowed(p) => p.profile(profiler),
            Pass::Gpu(p) => p.profile(profiler),
        }
    }

    pub fn run(&self, rating_weight: f32, retrieval_weight: f32) -> Result<TestMetrics> {
        let t0 = Instant::now();
        let tallies = match &self.pass {
            Pass::Windowed(p) => p.run(rating_weight, retrieval_weight)?,
            Pass::Gpu(p) => p.run(retrieval_weight)?,
        };
        let mut m = metrics(&tallies, rating_weight, retrieval_weight);
        m.seconds = t0.elapsed().as_secs_f64();
        Ok(m)
    }
}

/// The test metrics of one evaluation pass.
fn metrics(t: &Tallies, rating_weight: f32, retrieval_weight: f32) -> TestMetrics {
    let total = t.pairs as f64;
    let (mut sq, mut loss) = (0.0f64, 0.0f64);
    for &(s, r, rows) in &t.sums {
        let (s, r, rows) = (s as f64, r as f64, rows as f64);
        sq += s;
        let mut l = rating_weight as f64 * s / rows;
        if retrieval_weight != 0.0 {
            l += retrieval_weight as f64 * r;
        }
        loss += l * rows / total;
    }
    let ranked = t.ranked.as_ref().map(|r| {
        let (recall, ndcg) = recall_ndcg(&r.rank_unseen, r.user_offsets, &RANKED_KS);
        let (precision, map) = precision_map(&r.rank_unseen, r.user_offsets, &[TOP_N]);
        let abs: f64 = r
            .pred
            .iter()
            .zip(r.rating)
            .map(|(&p, &y)| (p as f64 - y as f64).abs())
            .sum();
        RankedMetrics {
            recall,
            ndcg,
            precision,
            map,
            mae: abs / total,
        }
    });
    TestMetrics {
        ranked,
        // FactorizedTopK: a pair hits at k when fewer than k candidates score strictly higher.
        top_k: KS
            .iter()
            .map(|&k| {
                let hits = t.rank_all.iter().filter(|&&r| r < k).count();
                (k, hits as f64 / total)
            })
            .collect(),
        rmse: (sq / total).sqrt(),
        loss,
        seconds: 0.0,
    }
}
