//! The windowed family's evaluation pass: every test pair's rank among the candidates (and among the
//! user's unseen ones), the rating head's squared errors and the loss sums per evaluation batch, and the
//! predictions; `eval::Evaluator` turns them into TFRS's metrics and Recall/NDCG.

use crate::data::batches::Distinct;
use crate::data::Ratings;
use crate::gpu::batches::{BatchBuffers, BatchStore};
use crate::gpu::launch::{Launch, Pass};
use crate::gpu::profile::Profiler;
use crate::gpu::{slice, whole, Gpu};
use crate::kernels::windowed::ranking::{Activations, MlpForward};
use crate::kernels::windowed::retrieval::{RetrievalBuffers, RetrievalForward};
use crate::kernels::windowed::*;
use crate::model::gpu::GpuModel;
use anyhow::{bail, Context, Result};

/// One tile of the ranking evaluation: a range of distinct test users and the pairs holding them.
struct Tile {
    u0: usize,
    users: usize,
    gather: Launch,
    ranks: Vec<Launch>, // one per chunk of candidates (kernels::RANK_CHUNK)
    groups: usize,
}

/// What the Recall@K / NDCG@K / MAE evaluation keeps: all predictions and the test layout (the ranks among
/// unseen candidates are in `Evaluation::rank_unseen`).
struct RankedPlan {
    /// Candidates each distinct test user rated in training, and the duplicate u.item rows (for everyone).
    seen: Vec<Vec<u32>>,
    duplicates: Vec<u32>,
    tile_mask: wgpu::Buffer, // (tile users, ceil(C / 32)) bits, rewritten for every tile
    pred: wgpu::Buffer,      // (N,) rating predictions, test rows in file order
    user_offsets: Vec<u32>,  // (U + 1,) CSR of the pairs of each distinct test user
    rating: Vec<f32>,        // (N,) test ratings
}

/// What one evaluation pass reads back, for `eval::Evaluator` to turn into metrics.
pub struct Tallies<'a> {
    /// (P,) candidates scoring strictly above each pair's own movie, pairs grouped by user.
    pub rank_all: Vec<u32>,
    /// (squared-error sum, retrieval-loss sum) and rows of every evaluation batch.
    pub sums: Vec<(f32, f32, usize)>,
    pub pairs: usize,
    /// With the training split: the ranks among each user's unseen candidates, the predictions in file
    /// order, the CSR of each user's pairs and the ratings.
    pub ranked: Option<RankedTallies<'a>>,
}

pub struct RankedTallies<'a> {
    pub rank_unseen: Vec<u32>,
    pub pred: Vec<f32>,
    pub user_offsets: &'a [u32],
    pub rating: &'a [f32],
}

/// Evaluation plan for one model and one test split, built once.
pub struct Evaluation<'g> {
    gpu: &'g Gpu,
    store: BatchStore,
    ids: BatchBuffers,
    mlp: MlpForward,
    retrieval: RetrievalForward,
    losses: wgpu::Buffer,
    candidates: usize,
    gather_candidates: Launch,
    tiles: Vec<Tile>,
    /// Users of a full tile, and the candidate_scores launches of a full and of a shorter last tile.
    tile_users: usize,
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
        if test.is_empty() {
            bail!("the test split is empty");
        }
        if !(1..=crate::options::MAX_BATCH).contains(&eval_batch_size) {
            bail!(
                "--eval-batch-size must be between 1 and {}, got {eval_batch_size}",
                crate::options::MAX_BATCH
            );
        }
        let cfg = model.cfg;
        let dim4 = (cfg.embedding_dim / 4) as u32;
        // Test rows in file order, cut into evaluation batches (TFRS: test.batch(4096).cache()).
        let order: Vec<u32> = (0..test.len() as u32).collect();
        let store = BatchStore::new(gpu, "test batches", test, &order, eval_batch_size, false)?;
        let cap = eval_batch_size.min(test.len());
        let ids = BatchBuffers::new(gpu, "eval batch", cap);
        let act = Activations::new(gpu, &cfg, cap)?;
        let ret = RetrievalBuffers::new(gpu, &cfg, cap);
        let losses = gpu.buffer("eval losses", 2 * store.batches.len());
        let mlp = MlpForward::new(gpu, k, model, &ids, &act, &losses);
        let retrieval = RetrievalForward::new(gpu, k, model, &ids, &ret, &losses);

        // FactorizedTopK: pairs grouped by user; each user's scores against all candidates computed once.
        let c = candidates.len();
        if c == 0 {
            bail!("there are no candidate movies");
        }
        let mut first_candidate = vec![u32::MAX; cfg.movies];
        for (i, &row) in candidates.iter().enumerate().rev() {
            first_candidate[row as usize] = i as u32;
        }
        let users = Distinct::new(&test.user);
        let mut pair_query = Vec::with_capacity(test.len());
        let mut pair_candidate = Vec::with_capacity(test.len());
        // Tiles hold a multiple of 64 users so each tile's slice of the user list is 256-byte aligned.
        let per_tile = gpu.score_tile_rows(c, 4096, "users")?;
        let user_list = gpu.upload("eval users", &users.table_rows);
        let cand_ids = gpu.upload("candidates", candidates);
        let cand_emb = gpu.windowed_buffer("candidate embeddings", c * cfg.embedding_dim);
        let tile_users = per_tile.min(users.len());
        let query = gpu.buffer("query", tile_users * cfg.embedding_dim);
        let scores = gpu.buffer("scores", tile_users * c);
        let mut tile_spans = Vec::new();
        for u0 in (0..users.len()).step_by(per_tile) {
            let u1 = (u0 + per_tile).min(users.len());
            let p0 = pair_query.len();
            for a in u0..u1 {
                for &r in &users.rows[users.offsets[a] as usize..users.offsets[a + 1] as usize] {
                    let own = first_candidate[test.movie[r as usize] as usize];
                    if own == u32::MAX {
                        bail!(
                            "test rating {} names a movie that is not among the candidates",
                            r + 1
                        );
                    }
                    pair_query.push((a - u0) as u32);
                    pair_candidate.push(own);
                }
            }
            tile_spans.push((u0, u1, p0, pair_query.len()));
        }
        gpu.check_binding("the test pairs' ranks", test.len() as u64 * 4)?;
        let pc = gpu.upload("pair_candidate", &pair_candidate);
        // Ranks among unseen candidates: bit c of a user's mask row is set when candidate c is a movie the
        // user rated in training or a duplicate u.item row of a title (only its first row competes). The
        // rows of one tile are built on the host and written before the tile runs, so the mask never holds
        // more than one tile (U x C bits would not fit a binding at ML-25M sizes).
        let words = c.div_ceil(32);
        let duplicates: Vec<u32> = candidates
            .iter()
            .enumerate()
            .filter(|&(cand, &row)| first_candidate[row as usize] != cand as u32)
            .map(|(cand, _)| cand as u32)
            .collect();
        let seen = train.map(|train| {
            let mut row_of_user = vec![u32::MAX; cfg.users];
            for (a, &u) in users.table_rows.iter().enumerate() {
                row_of_user[u as usize] = a as u32;
            }
            let mut candidates_of: Vec<Vec<u32>> = vec![Vec::new(); cfg.movies];
            for (cand, &row) in candidates.iter().enumerate() {
                candidates_of[row as usize].push(cand as u32);
            }
            let mut seen: Vec<Vec<u32>> = vec![Vec::new(); users.len()];
            for (&u, &m) in train.user.iter().zip(&train.movie) {
                if let Some(&a) = row_of_user.get(u as usize).filter(|&&a| a != u32::MAX) {
                    if let Some(cands) = candidates_of.get(m as usize) {
                        seen[a as usize].extend_from_slice(cands);
                    }
                }
            }
            seen
        });
        let tile_mask = gpu.buffer("excluded candidates (one tile)", tile_users * words);
        let excluded = seen.as_ref().map(|_| &tile_mask);
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
        let last_users = users.len() - (users.len() - 1) / per_tile * per_tile;
        let scores_full = scores_for(tile_users);
        let scores_last = if last_users == tile_users {
            Vec::new()
        } else {
            scores_for(last_users)
        };
        let tiles = tile_spans
            .into_iter()
            .map(|(u0, u1, p0, p1)| {
                let n = u1 - u0;
                let groups = pair_groups(&pair_query[p0..p1], p0);
                Tile {
                    u0,
                    users: n,
                    groups: groups.len(),
                    gather: Launch::new(
                        gpu,
                        &k.embedding_gather,
                        "embedding_gather (eval users)",
                        EmbeddingGatherBindings {
                            table: whole(&model.user_emb),
                            idx: slice(&user_list, u0, n),
                            out: whole(&query),
                        },
                        &EmbeddingGatherParams {
                            n: n as u32,
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
                            &gpu.upload("pair groups", &groups),
                            &pc,
                            mask,
                            &rank_all,
                            &rank_unseen,
                        ],
                        PairRanksParams {
                            groups: groups.len() as u32,
                            candidates: c as u32,
                            words: if excluded.is_some() { words as u32 } else { 0 },
                            ..Default::default()
                        },
                    ),
                }
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
        let ranked = seen.map(|seen| RankedPlan {
            seen,
            duplicates,
            tile_mask: tile_mask.clone(),
            pred: gpu.buffer("eval predictions", test.len()),
            user_offsets: users.offsets.clone(),
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
            candidates: c,
            gather_candidates,
            tiles,
            tile_users,
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
                .run(&mut pass, self.candidates as u32 * self.dim4);
        }
        crate::gpu::profile::submit(gpu, enc, self.profiler)?;
        // One submission per tile: the tiles share the score matrix and the exclusion mask.
        let words = self.candidates.div_ceil(32);
        for t in &self.tiles {
            if let Some(r) = &self.ranked {
                let mut mask = vec![0u32; t.users * words];
                for (a, row) in mask.chunks_mut(words).enumerate() {
                    for &cand in r.duplicates.iter().chain(&r.seen[t.u0 + a]) {
                        row[cand as usize / 32] |= 1 << (cand % 32);
                    }
                }
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
                t.gather.run(&mut pass, t.users as u32 * self.dim4);
                let scores = if t.users == self.tile_users {
                    &self.scores_full
                } else {
                    &self.scores_last
                };
                for (l, threads) in scores {
                    l.run(&mut pass, *threads);
                }
                for l in &t.ranks {
                    l.run(&mut pass, t.groups as u32);
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
                user_offsets: &r.user_offsets,
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
