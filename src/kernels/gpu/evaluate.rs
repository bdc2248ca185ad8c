//! The GPU family's evaluation pass: FactorizedTopK ranks from one candidate_scores_gpu dispatch per tile of
//! test users (both gathers fused in) and the shared pair_ranks, then the losses and predictions of every
//! evaluation batch from the training step's forward pass; `eval::Evaluator` turns the tallies into metrics.

use super::step::GpuStep;
use super::*;
use crate::data::Ratings;
use crate::gpu::batches::{BatchBuffers, BatchStore};
use crate::gpu::launch::Pass;
use crate::gpu::profile::Profiler;
use crate::kernels::evaluate::{test_batches, RankedTallies, Tallies, TestPairs};
use crate::kernels::model::GpuModel;
use crate::options::TrainOptions;
use anyhow::Context;

/// One tile's launches: the scores of its users against every candidate, and their pairs' ranks.
struct Tile {
    scores: Launch,
    ranks: Vec<Launch>,
}

/// With the training split: the tile's exclusion mask and every prediction in file order.
struct RankedPlan {
    tile_mask: wgpu::Buffer, // (tile users, ceil(C / 32)) bits, rewritten for every tile
    pred: wgpu::Buffer,      // (N,)
    rating: Vec<f32>,        // (N,)
}

/// Evaluation plan for one model and one test split on the GPU family, built once.
pub struct Evaluation<'g> {
    gpu: &'g Gpu,
    plan: TestPairs,
    store: BatchStore,
    ids: BatchBuffers,
    step: GpuStep,
    losses: wgpu::Buffer,
    tiles: Vec<Tile>,
    rank_all: wgpu::Buffer,    // (P,) pairs grouped by user
    rank_unseen: wgpu::Buffer, // (P,) with `ranked`
    ranked: Option<RankedPlan>,
    profiler: Option<&'g Profiler>,
}

impl<'g> Evaluation<'g> {
    /// As `kernels::windowed::evaluate::Evaluation::new`, on the GPU family's kernels.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &'g Gpu,
        k: &Kernels,
        model: &GpuModel,
        test: &Ratings,
        train: Option<&Ratings>,
        candidates: &[u32],
        eval_batch_size: usize,
    ) -> Result<Self> {
        let cfg = model.cfg;
        check_shape(cfg.embedding_dim, cfg.hidden1, cfg.hidden2)?;
        let plan = TestPairs::new(gpu, &cfg, test, train, candidates, eval_batch_size)?;
        let (store, ids) = test_batches(gpu, test, eval_batch_size)?;
        let cap = ids.capacity;
        let losses = gpu.buffer("eval losses", 2 * store.batches.len());
        // Only the forward pass runs; the options are never used for an update.
        let opts = TrainOptions::tutorial(1.0, 1.0);
        let step = GpuStep::new(gpu, k, model, cap, &opts, &losses)?;

        let (c, words) = (plan.candidates, plan.words());
        let user_list = gpu.upload("eval users", &plan.users.table_rows);
        let cand_rows = gpu.upload("candidates", candidates);
        let scores = gpu.buffer("scores", plan.tile_users * c);
        let pc = gpu.upload("pair_candidate", &plan.pair_candidate);
        let tile_mask = gpu.buffer("excluded candidates (one tile)", plan.tile_users * words);
        let rank_all = gpu.buffer("rank among all candidates", test.len());
        let rank_unseen = gpu.buffer("rank among unseen candidates", test.len());
        let excluding = plan.seen.is_some();
        let tiles = plan
            .tiles
            .iter()
            .map(|t| {
                let scores_launch = candidate_scores(
                    gpu,
                    &k.candidate_scores,
                    "candidate_scores_gpu",
                    (&model.user_emb, &user_list),
                    (&model.movie_emb, &cand_rows),
                    &scores,
                );
                scores_launch.set(
                    gpu,
                    &CandidateScoresParams {
                        queries: t.users as u32,
                        candidates: c as u32,
                        dim4: (cfg.embedding_dim / 4) as u32,
                        first: t.u0 as u32,
                    },
                );
                let groups = gpu.upload("pair groups", &t.groups);
                let ranks = pair_ranks(
                    gpu,
                    k,
                    [&scores, &groups, &pc, &tile_mask, &rank_all, &rank_unseen],
                    PairRanksParams {
                        groups: t.groups.len() as u32,
                        candidates: c as u32,
                        words: if excluding { words as u32 } else { 0 },
                        ..Default::default()
                    },
                );
                Tile {
                    scores: scores_launch,
                    ranks,
                }
            })
            .collect();
        let ranked = excluding.then(|| RankedPlan {
            tile_mask: tile_mask.clone(),
            pred: gpu.buffer("eval predictions", test.len()),
            rating: test.rating.clone(),
        });
        Ok(Self {
            gpu,
            plan,
            store,
            ids,
            step,
            losses,
            tiles,
            rank_all,
            rank_unseen,
            ranked,
            profiler: None,
        })
    }

    /// Times every dispatch of the following evaluations with `profiler`.
    pub fn profile(&mut self, profiler: &'g Profiler) {
        self.profiler = Some(profiler);
    }

    /// One pass over the test split; the weights only decide whether the retrieval loss is computed.
    pub fn run(&self, retrieval_weight: f32) -> Result<Tallies<'_>> {
        let (gpu, plan) = (self.gpu, &self.plan);
        let encoder = |label| {
            gpu.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
        };
        // One submission per tile: the tiles share the score matrix and the exclusion mask.
        for (t, tile) in plan.tiles.iter().zip(&self.tiles) {
            if let (Some(r), Some(mask)) = (&self.ranked, plan.mask(t)) {
                gpu.queue
                    .write_buffer(&r.tile_mask, 0, bytemuck::cast_slice(&mask));
            }
            let mut enc = encoder("rank test pairs");
            {
                let mut pass = Pass::begin(&mut enc, "rank test pairs", self.profiler);
                tile.scores.run_groups(
                    &mut pass,
                    groups::candidate_scores(t.users, plan.candidates),
                );
                for l in &tile.ranks {
                    l.run(&mut pass, t.groups.len() as u32);
                }
            }
            crate::gpu::profile::submit(gpu, enc, self.profiler)?;
        }
        // Each evaluation batch reuses the step's buffers, so each is its own submission.
        let retrieval = retrieval_weight != 0.0;
        let n = self.store.batches.len();
        for b in 0..n {
            let s = self.store.batches[b];
            self.step.set_forward(gpu, &s, b, retrieval);
            let mut enc = encoder("evaluate batch");
            self.store.copy_to(gpu, &mut enc, b, &self.ids);
            self.step.batch.copy_from(&mut enc, &self.ids);
            {
                let mut pass = Pass::begin(&mut enc, "evaluate batch", self.profiler);
                self.step.encode_forward(&mut pass, &s, retrieval);
            }
            if let Some(r) = &self.ranked {
                let row0 = (b * self.store.batches[0].rows) as u64 * 4;
                let pred = &self.step.buffers.pred;
                enc.copy_buffer_to_buffer(pred, 0, &r.pred, row0, s.rows as u64 * 4);
            }
            crate::gpu::profile::submit(gpu, enc, self.profiler)?;
        }
        let pairs = self.plan.pair_candidate.len();
        let rank_all: Vec<u32> = gpu
            .read(&self.rank_all, 0, pairs)
            .context("reading the ranks of the test pairs")?;
        let sums: Vec<f32> = gpu.read(&self.losses, 0, 2 * n)?;
        let sums = (0..n)
            .map(|b| {
                let r = if retrieval { sums[2 * b + 1] } else { 0.0 };
                (sums[2 * b], r, self.store.batches[b].rows)
            })
            .collect();
        let ranked = match &self.ranked {
            None => None,
            Some(r) => Some(RankedTallies {
                rank_unseen: gpu
                    .read(&self.rank_unseen, 0, pairs)
                    .context("reading the ranks among unseen candidates")?,
                pred: gpu.read(&r.pred, 0, pairs)?,
                user_offsets: &plan.users.offsets,
                rating: &r.rating,
            }),
        };
        Ok(Tallies {
            rank_all,
            sums,
            pairs,
            ranked,
        })
    }
}
