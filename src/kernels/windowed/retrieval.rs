//! The Retrieval task's forward pass in the windowed family: in-batch softmax over distinct users x
//! distinct movies, window by window.

use super::*;
use crate::gpu::batches::{BatchBuffers, BatchShape};
use crate::gpu::launch::{Launch, Pass};
use crate::gpu::{whole, window, Gpu};
use crate::kernels::model::GpuModel;
use crate::model::ModelConfig;

/// Distinct-user / distinct-movie embeddings and the retrieval task's outputs, capacity B each.
pub struct RetrievalBuffers {
    pub user_d: wgpu::Buffer,     // (NU, D), read through uniform windows
    pub movie_d: wgpu::Buffer,    // (NM, D), read through uniform windows
    pub state: wgpu::Buffer,      // (NU, D + 4) online-softmax state between movie windows
    pub user_stat: wgpu::Buffer,  // (NU, 4): (lse, row count, 0, 0), read through uniform windows
    pub loss: wgpu::Buffer,       // (NU,)
    pub grad_user: wgpu::Buffer,  // (NU, D)
    pub grad_movie: wgpu::Buffer, // (NM, D)
    pub row_lse: wgpu::Buffer,    // (B,) each row's log-normaliser, with --remove-accidental-hits
}

impl RetrievalBuffers {
    pub fn new(gpu: &Gpu, cfg: &ModelConfig, b: usize) -> Self {
        let d = cfg.embedding_dim;
        Self {
            user_d: gpu.windowed_buffer("user_d", b * d),
            movie_d: gpu.windowed_buffer("movie_d", b * d),
            state: gpu.buffer("retrieval_state", b * (d + 4)),
            user_stat: gpu.windowed_buffer("user_stat", b * 4),
            loss: gpu.buffer("retrieval_loss", b),
            grad_user: gpu.buffer("grad_user", b * d),
            grad_movie: gpu.buffer("grad_movie", b * d),
            row_lse: gpu.buffer("row_lse", b),
        }
    }
}

/// Rows per uniform window of the distinct-user / distinct-movie embeddings (and at most 4096, the
/// user_stat vec4s one window holds).
pub fn retrieval_window_rows(embedding_dim: usize) -> usize {
    crate::gpu::window_rows(embedding_dim.max(4))
}

/// Retrieval task forward (and the user half of its backward): gathers the distinct rows, runs
/// retrieval_softmax_users once per window of movies, and sums the per-user losses into `losses[slot]`.
///
/// With a temperature T the gathered user rows u' = u / T make every logit u' . m = u . m / T, so the
/// kernels compute the tempered loss and dL/dM = sum (p - y) u' exactly; the user side's gradient is
/// dL/du = dL/du' / T, which the users kernel gets as its weight times 1 / T.
pub struct RetrievalForward {
    gather_users: Launch,
    /// With --temperature T: the distinct user rows times 1 / T, right after their gather.
    scale_users: Option<Launch>,
    /// 1 / T (1 without --temperature).
    inv_temperature: f32,
    /// --remove-accidental-hits.
    remove_hits: bool,
    gather_movies: Launch,
    users: Vec<Launch>, // one per window of distinct movies
    window_rows: usize,
    reduce: Launch,
    dim4: u32,
}

impl RetrievalForward {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        k: &Kernels,
        model: &GpuModel,
        ids: &BatchBuffers,
        r: &RetrievalBuffers,
        losses: &wgpu::Buffer,
        temperature: Option<f32>,
        remove_hits: bool,
    ) -> Self {
        let d = model.cfg.embedding_dim;
        let dim4 = (d / 4) as u32;
        let gather = |label, table, idx, out| {
            let p = EmbeddingGatherParams {
                n: 0,
                dim4,
                out_stride4: dim4,
                out_offset4: 0,
            };
            Launch::new(
                gpu,
                &k.embedding_gather,
                label,
                EmbeddingGatherBindings {
                    table: whole(table),
                    idx: whole(idx),
                    out: whole(out),
                },
                &p,
            )
        };
        let (u, m) = (&ids.users, &ids.movies);
        let window_rows = retrieval_window_rows(d);
        let users = (0..ids.capacity.div_ceil(window_rows))
            .map(|w| {
                let c0 = w * window_rows;
                Launch::new(
                    gpu,
                    &k.retrieval_softmax_users,
                    &format!("retrieval_softmax_users [window {w}]"),
                    RetrievalSoftmaxUsersBindings {
                        user_emb: whole(&r.user_d),
                        movie_win: window(&r.movie_d, c0 * d),
                        movie_count_win: window(&m.count, c0),
                        movie_emb: whole(&r.movie_d),
                        user_count: whole(&u.count),
                        user_offsets: whole(&u.offsets),
                        user_rows: whole(&u.rows),
                        row_movie: whole(&m.of_row),
                        movie_offsets: whole(&m.offsets),
                        movie_count: whole(&m.count),
                        state: whole(&r.state),
                        user_stat: whole(&r.user_stat),
                        loss: whole(&r.loss),
                        grad_user: whole(&r.grad_user),
                        row_lse: whole(&r.row_lse),
                    },
                    &RetrievalSoftmaxParams::default(),
                )
            })
            .collect();
        let t = temperature.filter(|&t| t != 1.0);
        let scale_users = t.map(|_| {
            Launch::new(
                gpu,
                &k.scale_rows,
                "scale_rows (distinct users / temperature)",
                ScaleRowsBindings {
                    x: whole(&r.user_d),
                },
                &ScaleRowsParams::default(),
            )
        });
        Self {
            gather_users: gather(
                "embedding_gather (distinct users)",
                &model.user_emb,
                &u.table_rows,
                &r.user_d,
            ),
            scale_users,
            inv_temperature: t.map_or(1.0, |t| 1.0 / t),
            remove_hits,
            gather_movies: gather(
                "embedding_gather (distinct movies)",
                &model.movie_emb,
                &m.table_rows,
                &r.movie_d,
            ),
            users,
            window_rows,
            reduce: Launch::new(
                gpu,
                &k.sum_reduce,
                "sum_reduce (retrieval loss)",
                SumReduceBindings {
                    x: whole(&r.loss),
                    out: whole(losses),
                },
                &SumReduceParams::default(),
            ),
            dim4,
        }
    }

    pub fn set(&self, gpu: &Gpu, b: &BatchShape, weight: f32, slot: usize) {
        let g = EmbeddingGatherParams {
            n: b.users as u32,
            dim4: self.dim4,
            out_stride4: self.dim4,
            out_offset4: 0,
        };
        self.gather_users.set(gpu, &g);
        self.gather_movies.set(
            gpu,
            &EmbeddingGatherParams {
                n: b.movies as u32,
                ..g
            },
        );
        if let Some(l) = &self.scale_users {
            let p = ScaleRowsParams {
                n4: b.users as u32 * self.dim4,
                scale: self.inv_temperature,
                _pad: [0; 2],
            };
            l.set(gpu, &p);
        }
        // dL/du = dL/du' / T (exactly `weight` without a temperature: times 1.0).
        let user_weight = weight * self.inv_temperature;
        for (l, _, movies, first, last) in window_span(&self.users, self.window_rows, b.movies) {
            let p = RetrievalSoftmaxParams::new(b.users, movies, user_weight, first, last)
                .removing_hits(self.remove_hits);
            l.set(gpu, &p);
        }
        self.reduce.set(
            gpu,
            &SumReduceParams {
                n: b.users as u32,
                slot: slot as u32,
                _pad: [0; 2],
            },
        );
    }

    pub fn encode(&self, pass: &mut Pass, b: &BatchShape) {
        self.gather_users.run(pass, b.users as u32 * self.dim4);
        if let Some(l) = &self.scale_users {
            l.run(pass, b.users as u32 * self.dim4);
        }
        self.gather_movies.run(pass, b.movies as u32 * self.dim4);
        for (l, ..) in window_span(&self.users, self.window_rows, b.movies) {
            l.run(pass, b.users as u32);
        }
        self.reduce.run_one_group(pass);
    }
}
