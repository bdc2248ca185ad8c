//! A loaded model ready to answer: the checkpoint, its tables on the GPU and the compiled kernels, with the
//! rankings and predictions that `wgrec recommend`, `wgrec predict` and `wgrec serve` all go through.

use crate::checkpoint::Checkpoint;
use crate::gpu::Gpu;
use crate::kernels::model::GpuModel;
use crate::kernels::{gpu, windowed, Compiled, Family};
use crate::serve::{Exclusions, TopK};
use anyhow::Result;
use std::sync::Arc;

/// One top-k query: a user row and whether to leave out the movies that user rated in training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    pub row: u32,
    pub exclude_seen: bool,
}

pub struct Recommender<'g> {
    gpu: &'g Gpu,
    kernels: Compiled,
    model: GpuModel,
    /// Every title row but the OOV row 0 (which is not a movie): candidate i is title row i + 1.
    candidates: Vec<u32>,
    /// Shared, so that a server can answer from it without asking the GPU thread.
    pub ck: Arc<Checkpoint>,
}

impl<'g> Recommender<'g> {
    /// Compiles `family`'s kernels for the checkpoint's D and uploads its tables.
    pub fn new(gpu: &'g Gpu, ck: impl Into<Arc<Checkpoint>>, family: Family) -> Result<Self> {
        let ck = ck.into();
        let kernels = Compiled::new(gpu, ck.cfg.embedding_dim, family)?;
        // The towers have filled the tables; serving reads only the tables.
        let model = ck.to_gpu(gpu)?.model;
        Ok(Self {
            gpu,
            kernels,
            model,
            candidates: (1..ck.cfg.movies as u32).collect(),
            ck,
        })
    }

    /// Puts `ck` in place of the current model, keeping the kernels when D is unchanged. On an error the
    /// current model stays.
    pub fn replace(&mut self, ck: impl Into<Arc<Checkpoint>>) -> Result<()> {
        let ck = ck.into();
        let kernels = if ck.cfg.embedding_dim == self.ck.cfg.embedding_dim {
            None
        } else {
            Some(Compiled::new(
                self.gpu,
                ck.cfg.embedding_dim,
                self.family(),
            )?)
        };
        self.model = ck.to_gpu(self.gpu)?.model;
        if let Some(k) = kernels {
            self.kernels = k;
        }
        self.candidates = (1..ck.cfg.movies as u32).collect();
        self.ck = ck;
        Ok(())
    }

    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    /// The kernel family that ranks and predicts.
    pub fn family(&self) -> Family {
        self.kernels.ops().family()
    }

    /// How many movies can be recommended: every title but the OOV row.
    pub fn candidates(&self) -> usize {
        self.candidates.len()
    }

    /// The title of candidate `c` (a top-k index).
    pub fn title(&self, c: u32) -> &str {
        self.ck
            .titles
            .token(c + 1)
            .expect("candidate rows are titles")
    }

    /// The candidates user row `row` rated in training (what `exclude_seen` leaves out), ascending.
    pub fn seen(&self, row: u32) -> impl Iterator<Item = u32> + '_ {
        self.ck
            .seen
            .of(row)
            .iter()
            .filter(|&&r| r > 0)
            .map(|&r| r - 1)
    }

    /// The BruteForce plan for `queries` at `k`, each query with its own exclusions.
    pub fn plan(&self, queries: &[Query], k: usize) -> Result<Plan<'g>> {
        let mut exclude = Exclusions {
            offsets: vec![0],
            items: Vec::new(),
        };
        for q in queries {
            if q.exclude_seen {
                exclude.items.extend(self.seen(q.row));
            }
            exclude.offsets.push(exclude.items.len() as u32);
        }
        let rows: Vec<u32> = queries.iter().map(|q| q.row).collect();
        let (users, movies) = (
            (&self.model.user_emb, &rows[..]),
            (&self.model.movie_emb, &self.candidates[..]),
        );
        let d = self.ck.cfg.embedding_dim;
        Ok(match &self.kernels {
            Compiled::Windowed(w) => Plan::Windowed(windowed::top_k::BruteForce::new(
                self.gpu, w, users, movies, d, &exclude, k,
            )?),
            Compiled::Gpu(g) => Plan::Gpu(gpu::top_k::BruteForce::new(
                self.gpu, g, users, movies, d, &exclude, k,
            )?),
        })
    }

    /// The top `k` candidates of each query, best first, ties to the lower candidate index.
    pub fn recommend(&self, queries: &[Query], k: usize) -> Result<TopK> {
        self.plan(queries, k)?.run()
    }

    /// Predicted ratings of (user row, title row) pairs.
    pub fn predict(&self, users: &[u32], movies: &[u32]) -> Result<Vec<f32>> {
        match &self.kernels {
            Compiled::Windowed(w) => {
                windowed::top_k::predict(self.gpu, w, &self.model, users, movies)
            }
            Compiled::Gpu(g) => gpu::top_k::predict(self.gpu, g, &self.model, users, movies),
        }
    }
}

/// A BruteForce plan on the recommender's kernel family.
pub enum Plan<'g> {
    Windowed(windowed::top_k::BruteForce<'g>),
    Gpu(gpu::top_k::BruteForce<'g>),
}

impl Plan<'_> {
    /// The top k of every query, best first, ties to the lower candidate index.
    pub fn run(&self) -> Result<TopK> {
        match self {
            Plan::Windowed(p) => p.run(),
            Plan::Gpu(p) => p.run(),
        }
    }
}
