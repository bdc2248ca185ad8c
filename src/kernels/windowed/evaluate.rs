//! The windowed family's evaluation pass: every test pair's rank among the candidates (and among the
//! user's unseen ones), the rating head's squared errors and the loss sums per evaluation batch, and the
//! predictions; `eval::Evaluator` turns them into TFRS's metrics and Recall/NDCG.

use crate::data::Ratings;
use crate::gpu::batches::{BatchBuffers, BatchStore};
use crate::gpu::launch::{Launch, Pass};
use crate::gpu::profile::Profiler;
use crate::gpu::{slice, whole, Gpu};
use crate::kernels::evaluate::{test_batches, TestPairs};
pub use crate::kernels::evaluate::{RankedTallies, Tallies};
use crate::kernels::model::GpuModel;
use crate::kernels::windowed::ranking::{Activations, MlpForward};
use crate::kernels::windowed::retrieval::{RetrievalBuffers, RetrievalForward};
use crate::kernels::windowed::*;
use anyhow::{Context, Result};

/// One tile of the ranking evaluation's launches (`TestPairs::tiles` holds its users and groups).
struct Tile {
    gather: Launch,
    ranks: Vec<Launch>, // one per chunk of candidates (kernels::RANK_CHUNK)
}

/// What the Recall@K / NDCG@K / MAE evaluation keeps: all predictions and the test layout (the ranks among
/// unseen candidates are in `Evaluation::rank_unseen`).
struct RankedPlan {
    tile_mask: wgpu::Buffer, // (tile users, ceil(C / 32)) bits, rewritten for every tile
    pred: wgpu::Buffer,      // (N,) rating predictions, test rows in file order
    rating: Vec<f32>,        // (N,) test ratings
}

/// Evaluation plan for one model and one test split, built once.
pub struct Evaluation<'g> {
    gpu: &'g Gpu,
    store: BatchStore,
    ids: BatchBuffers,
    mlp: MlpForward,
    retrieval: RetrievalForward,
    losses: wgpu::Buffer,
    pairs_plan: TestPairs,
    gather_candidates: Launch,
    tiles: Vec<Tile>,
    /// The candidate_scores launches of a full and of a shorter last tile.
    scores_full: Vec<(Launch, u32)>,
    scores_last: Vec<(Launch, u32)>,
    rank_all: wgpu::Buffer, // (P,) candidates scoring above each pair's own movie, pairs grouped by user
    rank_unseen: wgpu::Buffer, // (P,) the same among the user's unseen candidates (with `ranked`)
    pairs: usize,
    dim4: u32,
    pred: wgpu::Buffer,
    ranked: Option<RankedPlan>,
    profiler: Option<&'g Profiler>,
}

impl<'g> Evaluation<'g> {
    /// `candidates`: the movie-table row of every candidate (u.item rows, duplicates kept). With `train`,
    /// also the ranks among each user's unseen candidates and the predictions (Recall@K, NDCG@K, MAE).
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
        let plan = TestPairs::new(gpu, &cfg, test, train, candidates, eval_batch_size)?;
        let dim4 = (cfg.embedding_dim / 4) as u32;
        let (store, ids) = test_batches(gpu, test, eval_batch_size)?;
        let cap = ids.capacity;
        let act = Activations::new(gpu, &cfg, cap)?;
        let ret = RetrievalBuffers::new(gpu, &cfg, cap);
        let losses = gpu.buffer("eval losses", 2 * store.batches.len());
        let mlp = MlpForward::new(gpu, k, model, &ids, &act, &losses);
        // The test loss is TFRS's plain in-batch softmax, whatever --temperature or
        // --remove-accidental-hits trained with.
        let retrieval = RetrievalForward::new(gpu, k, model, &ids, &ret, &losses, None, false);

        // FactorizedTopK: pairs grouped by user; each user's scores against all candidates computed once.
        let (c, tile_users, words) = (plan.candidates, plan.tile_users, plan.words());
        let user_list = gpu.upload("eval users", &plan.users.table_rows);
        let cand_ids = gpu.upload("candidates", candidates);
        let cand_emb = gpu.windowed_buffer("candidate embeddings", c * cfg.embedding_dim);
        let query = gpu.buffer("query", tile_users * cfg.embedding_dim);
        let scores = gpu.buffer("scores", tile_users * c);
        let pc = gpu.upload("pair_candidate", &plan.pair_candidate);
        let tile_mask = gpu.buffer("excluded candidates (one tile)", tile_users * words);
        let excluded = plan.seen.as_ref().map(|_| &tile_mask);
        let mask = excluded.unwrap_or(&tile_mask);
        let rank_all = gpu.buffer("rank among all candidates", test.len());
        let rank_unseen = gpu.buffer("rank among unseen candidates", test.len());
        // The score launches depend only on the tile's user count: one set for full tiles, one for a
        // shorter last tile (at ML-25M size, 318 tiles x 122 windows of launches would each hold a
        // uniform buffer and a bind group).
        let scores_for = |n: usize| {
            candidate_scores_launches(
                gpu,
                &k.candidate_scores,
                &query,
                &cand_emb,
                &scores,
                n,
                c,
                cfg.embedding_dim,
            )
        };
        let last_users = plan.last_users();
        let scores_full = scores_for(tile_users);
        let scores_last = if last_users == tile_users {
            Vec::new()
        } else {
            scores_for(last_users)
        };
        let tiles = plan
            .tiles
            .iter()
            .map(|t| Tile {
                gather: Launch::new(
                    gpu,
                    &k.embedding_gather,
                    "embedding_gather (eval users)",
                    EmbeddingGatherBindings {
                        table: whole(&model.user_emb),
                        idx: slice(&user_list, t.u0, t.users),
                        out: whole(&query),
                    },
                    &EmbeddingGatherParams {
                        n: t.users as u32,
                        dim4,
                        out_stride4: dim4,
                        out_offset4: 0,
                    },
                ),
                ranks: pair_ranks_launches(
                    gpu,
                    &k.pair_ranks,
                    [
                        &scores,
                        &gpu.upload("pair groups", &t.groups),
                        &pc,
                        mask,
                        &rank_all,
                        &rank_unseen,
                    ],
                    PairRanksParams {
                        groups: t.groups.len() as u32,
                        candidates: c as u32,
                        words: if excluded.is_some() { words as u32 } else { 0 },
                        ..Default::default()
                    },
                ),
            })
            .collect();
        let gather_candidates = Launch::new(
            gpu,
            &k.embedding_gather,
            "embedding_gather (candidates)",
            EmbeddingGatherBindings {
                table: whole(&model.movie_emb),
                idx: whole(&cand_ids),
                out: whole(&cand_emb),
            },
            &EmbeddingGatherParams {
                n: c as u32,
                dim4,
                out_stride4: dim4,
                out_offset4: 0,
            },
        );
        let ranked = plan.seen.as_ref().map(|_| RankedPlan {
            tile_mask: tile_mask.clone(),
            pred: gpu.buffer("eval predictions", test.len()),
            rating: test.rating.clone(),
        });
        Ok(Self {
            gpu,
            store,
            ids,
            mlp,
            retrieval,
            pred: act.pred,
            ranked,
            losses,
            pairs_plan: plan,
            gather_candidates,
            tiles,
            scores_full,
            scores_last,
            rank_all,
            rank_unseen,
            pairs: test.len(),
            dim4,
            profiler: None,
        })
    }

    /// Times every dispatch of the following evaluations with `profiler`.
    pub fn profile(&mut self, profiler: &'g Profiler) {
        self.profiler = Some(profiler);
    }

    /// Evaluates the model's current parameters. The weights only decide the reported total loss.
    /// One pass over the test split with the rating and retrieval weights of the loss.
    pub fn run(&self, rating_weight: f32, retrieval_weight: f32) -> Result<Tallies<'_>> {
        let gpu = self.gpu;
        let n = self.store.batches.len();
        let mut enc = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("evaluate"),
            });
        {
            let mut pass = Pass::begin(&mut enc, "gather candidates", self.profiler);
            self.gather_candidates
                .run(&mut pass, self.pairs_plan.candidates as u32 * self.dim4);
        }
        crate::gpu::profile::submit(gpu, enc, self.profiler)?;
        // One submission per tile: the tiles share the score matrix and the exclusion mask.
        let plan = &self.pairs_plan;
        for (t, tile) in plan.tiles.iter().zip(&self.tiles) {
            if let (Some(r), Some(mask)) = (&self.ranked, plan.mask(t)) {
                gpu.queue
                    .write_buffer(&r.tile_mask, 0, bytemuck::cast_slice(&mask));
            }
            let mut enc = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("rank test pairs"),
                });
            {
                let mut pass = Pass::begin(&mut enc, "rank test pairs", self.profiler);
                tile.gather.run(&mut pass, t.users as u32 * self.dim4);
                let scores = if t.users == plan.tile_users {
                    &self.scores_full
                } else {
                    &self.scores_last
                };
                for (l, threads) in scores {
                    l.run(&mut pass, *threads);
                }
                for l in &tile.ranks {
                    l.run(&mut pass, t.groups.len() as u32);
                }
            }
            crate::gpu::profile::submit(gpu, enc, self.profiler)?;
        }
        // Each evaluation batch reuses the work buffers, so each is its own submission.
        for b in 0..n {
            let s = self.store.batches[b];
            self.mlp.set(gpu, s.rows, false, rating_weight, 2 * b);
            if retrieval_weight != 0.0 {
                self.retrieval.set(gpu, &s, 0.0, 2 * b + 1);
            }
            let mut enc = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("evaluate batch"),
                });
            self.store.copy_to(gpu, &mut enc, b, &self.ids);
            {
                let mut pass = Pass::begin(&mut enc, "evaluate batch", self.profiler);
                self.mlp.encode(&mut pass, s.rows);
                if retrieval_weight != 0.0 {
                    self.retrieval.encode(&mut pass, &s);
                }
            }
            if let Some(r) = &self.ranked {
                let row0 = (b * self.store.batches[0].rows) as u64 * 4;
                enc.copy_buffer_to_buffer(&self.pred, 0, &r.pred, row0, s.rows as u64 * 4);
            }
            crate::gpu::profile::submit(gpu, enc, self.profiler)?;
        }
        let rank_all: Vec<u32> = gpu
            .read(&self.rank_all, 0, self.pairs)
            .context("reading the ranks of the test pairs")?;
        let sums: Vec<f32> = gpu.read(&self.losses, 0, 2 * n)?;
        let sums = (0..n)
            .map(|b| (sums[2 * b], sums[2 * b + 1], self.store.batches[b].rows))
            .collect();
        let ranked = match &self.ranked {
            None => None,
            Some(r) => Some(RankedTallies {
                rank_unseen: gpu
                    .read(&self.rank_unseen, 0, self.pairs)
                    .context("reading the ranks among unseen candidates")?,
                pred: gpu.read(&r.pred, 0, self.pairs)?,
                user_offsets: &self.pairs_plan.users.offsets,
                rating: &r.rating,
            }),
        };
        Ok(Tallies {
            rank_all,
            sums,
            pairs: self.pairs,
            ranked,
        })
    }
}
