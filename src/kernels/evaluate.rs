//! What both families' evaluation passes share: the test pairs grouped by user and cut into tiles of
//! users (`TestPairs`), the candidates each user rated in training, and what a pass reads back
//! (`Tallies`) for `eval::Evaluator` to turn into metrics.

use crate::data::batches::{Columns, Distinct};
use crate::data::Ratings;
use crate::gpu::batches::{BatchBuffers, BatchStore};
use crate::gpu::Gpu;
use crate::model::ModelConfig;
use anyhow::{bail, Result};

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

/// The test rows in file order cut into evaluation batches (TFRS: test.batch(4096).cache()), with the
/// in-batch softmax's columns (the test loss is TFRS's), and the work buffers a batch is copied into.
pub fn test_batches(
    gpu: &Gpu,
    test: &Ratings,
    eval_batch_size: usize,
) -> Result<(BatchStore, BatchBuffers)> {
    let order: Vec<u32> = (0..test.len() as u32).collect();
    let store = BatchStore::new(
        gpu,
        "test batches",
        test,
        &order,
        eval_batch_size,
        Columns::Batch,
    )?;
    let ids = BatchBuffers::new(gpu, "eval batch", eval_batch_size.min(test.len()));
    Ok((store, ids))
}

/// Pairs per pair_ranks invocation (they share one user's row of scores).
pub const PAIRS_PER_GROUP: usize = 8;

/// pair_ranks' groups for pairs sorted by their user's tile row: (tile row, first pair, pairs) with at most
/// PAIRS_PER_GROUP pairs each; `first` counts from `pair0`, the tile's first pair.
pub fn pair_groups(pair_query: &[u32], pair0: usize) -> Vec<[u32; 4]> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < pair_query.len() {
        let q = pair_query[i];
        let mut n = 1;
        while i + n < pair_query.len() && pair_query[i + n] == q && n < PAIRS_PER_GROUP {
            n += 1;
        }
        groups.push([q, (pair0 + i) as u32, n as u32, 0]);
        i += n;
    }
    groups
}

/// One tile of the ranking evaluation: distinct test users [u0, u0 + users) and their pairs' groups.
pub struct PairTile {
    pub u0: usize,
    pub users: usize,
    pub groups: Vec<[u32; 4]>,
}

/// The test pairs of one split, planned once for either family's pass.
pub struct TestPairs {
    /// Distinct test users; tiles and pairs follow their order.
    pub users: Distinct,
    /// (P,) the candidate index of each pair's own movie (its first u.item row), pairs grouped by user.
    pub pair_candidate: Vec<u32>,
    pub tiles: Vec<PairTile>,
    /// Users of a full tile (a multiple of 64, so that a tile's slice of the user list is 256-byte
    /// aligned); only the last tile may be shorter.
    pub tile_users: usize,
    pub candidates: usize,
    /// With the training split: the candidates each distinct test user rated in training.
    pub seen: Option<Vec<Vec<u32>>>,
    /// Candidates that repeat an earlier u.item row of the same title (only the first competes).
    pub duplicates: Vec<u32>,
}

impl TestPairs {
    /// `candidates`: the movie-table row of every candidate (u.item rows, duplicates kept).
    pub fn new(
        gpu: &Gpu,
        cfg: &ModelConfig,
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
        let c = candidates.len();
        if c == 0 {
            bail!("there are no candidate movies");
        }
        let mut first_candidate = vec![u32::MAX; cfg.movies];
        for (i, &row) in candidates.iter().enumerate().rev() {
            first_candidate[row as usize] = i as u32;
        }
        let users = Distinct::new(&test.user);
        let per_tile = gpu.score_tile_rows(c, 4096, "users")?;
        let mut pair_query = Vec::with_capacity(test.len());
        let mut pair_candidate = Vec::with_capacity(test.len());
        let mut tiles = Vec::new();
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
            tiles.push(PairTile {
                u0,
                users: u1 - u0,
                groups: pair_groups(&pair_query[p0..], p0),
            });
        }
        gpu.check_binding("the test pairs' ranks", test.len() as u64 * 4)?;
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
        Ok(Self {
            tile_users: per_tile.min(users.len()),
            users,
            pair_candidate,
            tiles,
            candidates: c,
            seen,
            duplicates,
        })
    }

    /// u32 words per user row of an exclusion mask.
    pub fn words(&self) -> usize {
        self.candidates.div_ceil(32)
    }

    /// Users of the last tile.
    pub fn last_users(&self) -> usize {
        self.tiles.last().map_or(0, |t| t.users)
    }

    /// With the training split, tile `t`'s exclusion mask, (users, words) bits: bit c of a user's row is
    /// set when candidate c is a movie the user rated in training or a duplicate u.item row. Built per
    /// tile on the host, so the mask never holds more than one tile (U x C bits would not fit a binding
    /// at ML-25M sizes).
    pub fn mask(&self, t: &PairTile) -> Option<Vec<u32>> {
        let seen = self.seen.as_ref()?;
        let words = self.words();
        let mut mask = vec![0u32; t.users * words];
        for (a, row) in mask.chunks_mut(words).enumerate() {
            for &cand in self.duplicates.iter().chain(&seen[t.u0 + a]) {
                row[cand as usize / 32] |= 1 << (cand % 32);
            }
        }
        Some(mask)
    }
}
