//! One training step of the windowed family, planned once for a model and a batch capacity and encoded
//! per batch: the forward launches of both tasks (`ranking`, `retrieval`), their backward launches, and
//! Adagrad, with the weight gradients in splits of uniform windows.

use super::ranking::{Activations, MlpForward};
use super::retrieval::{retrieval_window_rows, RetrievalBuffers, RetrievalForward};
use super::*;
use crate::gpu::batches::{BatchBuffers, BatchShape, DistinctBuffers};
use crate::gpu::launch::{Launch, Pass};
use crate::gpu::{whole, window, Gpu};
use crate::kernels::model::GpuModel;
use crate::model::EPSILON;
use crate::model::{MlpLayout, ModelConfig};
use crate::options::TrainOptions;
use anyhow::Result;

/// The backward half of a step and the optimizer, for both tasks.
struct Backward {
    head: Launch,
    layer2_weights: Vec<Launch>, // one per split
    layer2_data: Windowed,
    layer1_weights: Vec<Launch>,
    layer1_data: Windowed,
    adagrad: Launch,
    movies: Vec<Launch>, // one per window of distinct users
    user_update: Launch,
    movie_update: Launch,
}

/// A whole training step of the windowed family for batches of up to `capacity` rows, reading the batch
/// from `ids` and leaving its loss sums in `losses`.
pub struct WindowedStep {
    opts: TrainOptions,
    cfg: ModelConfig,
    layout: MlpLayout,
    mlp: MlpForward,
    retrieval: RetrievalForward,
    backward: Backward,
    /// Rows per split of the weight gradients (adagrad_dense adds the splits up).
    split_rows: usize,
    retrieval_window_rows: usize,
    /// Per side (users, movies): the table holds a feature tower's outputs, so the update writes each
    /// row's gradient for the tower instead.
    grad_out: [bool; 2],
}

impl WindowedStep {
    /// `row_gradients[side]`: where a side with a feature tower gets its rows' gradients.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        model: &GpuModel,
        ids: &BatchBuffers,
        cap: usize,
        opts: &TrainOptions,
        losses: &wgpu::Buffer,
        row_gradients: [Option<&wgpu::Buffer>; 2],
    ) -> Result<Self> {
        let cfg = model.cfg;
        let l = model.layout;
        let act = Activations::new(gpu, &cfg, cap)?;
        let ret = RetrievalBuffers::new(gpu, &cfg, cap);
        // Weight gradients: the batch in splits of 4 windows of R rows (one R for both layers).
        let window_rows = window_rows(&[l.k, l.h1, l.h2]);
        let split_rows = WINDOWS_PER_SPLIT * window_rows;
        let splits = cap.div_ceil(split_rows);
        gpu.check_binding("the MLP gradient splits", (splits * l.len * 4) as u64)?;
        let grad = gpu.buffer("mlp_grad", splits * l.len); // (S, L)
        let dh1 = gpu.windowed_buffer("dh1", cap * cfg.hidden1);
        let dx = gpu.buffer("dx", cap * 2 * cfg.embedding_dim);
        let mlp = MlpForward::new(gpu, kernels, model, ids, &act, losses);
        let temperature = opts.tweaks.temperature;
        let remove_hits = opts.tweaks.remove_accidental_hits;
        let retrieval = RetrievalForward::new(
            gpu,
            kernels,
            model,
            ids,
            &ret,
            losses,
            temperature,
            remove_hits,
        );
        let m = &model.mlp;
        let k = kernels;
        let window_rows_ret = retrieval_window_rows(cfg.embedding_dim);
        // One table's update: the retrieval gradient of its distinct rows plus its half of dx; into the
        // tower's gradient when the side has one (accum unused then).
        let unused = gpu.buffer("unused", 4);
        let target = |side: usize, table, accum| match row_gradients[side] {
            Some(dy) => (dy, &unused),
            None => (table, accum),
        };
        let update = |label, grad_dense: &wgpu::Buffer, ids: &DistinctBuffers, (table, accum)| {
            let b = EmbeddingAdagradBindings {
                grad_dense: whole(grad_dense),
                dx: whole(&dx),
                offsets: whole(&ids.offsets),
                rows: whole(&ids.rows),
                table_rows: whole(&ids.table_rows),
                table: whole(table),
                accum: whole(accum),
            };
            Launch::new(
                gpu,
                &k.embedding_adagrad,
                label,
                b,
                &EmbeddingAdagradParams::default(),
            )
        };
        let backward = Backward {
            head: Launch::new(
                gpu,
                &k.rating_head_backward,
                "rating_head_backward",
                RatingHeadBackwardBindings {
                    h2: whole(&act.h2),
                    dpred: whole(&act.dpred),
                    grad: whole(&grad),
                },
                &RatingHeadBackwardParams::default(),
            ),
            layer2_weights: dense_backward_weights_launches(
                gpu,
                &k.dense_backward_weights,
                "dense_backward_weights (layer 2)",
                (&act.h1, l.h1),
                (&act.dh2, l.h2),
                &grad,
                window_rows,
                cap,
            ),
            layer2_data: Windowed::new(
                gpu,
                &k.dense_backward_data,
                "dense_backward_data (layer 2)",
                &act.dh2,
                l.h2,
                cap,
                |dy_win| {
                    let [w_lo, w_hi] = weight_windows(m, l.w2, l.h1, l.h2);
                    DenseBackwardDataBindings {
                        dy_win,
                        w_lo,
                        w_hi,
                        h: whole(&act.h1),
                        dx: whole(&dh1),
                    }
                },
                &DenseBackwardDataParams::default(),
            ),
            layer1_weights: dense_backward_weights_launches(
                gpu,
                &k.dense_backward_weights,
                "dense_backward_weights (layer 1)",
                (&act.x, l.k),
                (&dh1, l.h1),
                &grad,
                window_rows,
                cap,
            ),
            // No ReLU in front of layer 1: the mask binding is unused, x stands in for it.
            layer1_data: Windowed::new(
                gpu,
                &k.dense_backward_data_linear,
                "dense_backward_data (layer 1)",
                &dh1,
                l.h1,
                cap,
                |dy_win| {
                    let [w_lo, w_hi] = weight_windows(m, l.w1, l.k, l.h1);
                    DenseBackwardDataBindings {
                        dy_win,
                        w_lo,
                        w_hi,
                        h: whole(&act.x),
                        dx: whole(&dx),
                    }
                },
                &DenseBackwardDataParams::default(),
            ),
            adagrad: Launch::new(
                gpu,
                &k.adagrad_dense,
                "adagrad_dense",
                AdagradDenseBindings {
                    grad: whole(&grad),
                    param: whole(m),
                    accum: whole(&model.mlp_acc),
                },
                &AdagradDenseParams::default(),
            ),
            movies: (0..cap.div_ceil(window_rows_ret))
                .map(|w| {
                    let a0 = w * window_rows_ret;
                    Launch::new(
                        gpu,
                        &k.retrieval_softmax_movies,
                        &format!("retrieval_softmax_movies [window {w}]"),
                        RetrievalSoftmaxMoviesBindings {
                            movie_emb: whole(&ret.movie_d),
                            user_win: window(&ret.user_d, a0 * cfg.embedding_dim),
                            user_stat_win: window(&ret.user_stat, a0 * 4),
                            user_emb: whole(&ret.user_d),
                            movie_count: whole(&ids.movies.count),
                            movie_offsets: whole(&ids.movies.offsets),
                            movie_rows: whole(&ids.movies.rows),
                            row_user: whole(&ids.users.of_row),
                            row_lse: whole(&ret.row_lse),
                            grad_movie: whole(&ret.grad_movie),
                        },
                        &RetrievalSoftmaxParams::default(),
                    )
                })
                .collect(),
            user_update: update(
                "embedding_adagrad (users)",
                &ret.grad_user,
                &ids.users,
                target(0, &model.user_emb, &model.user_acc),
            ),
            movie_update: update(
                "embedding_adagrad (movies)",
                &ret.grad_movie,
                &ids.movies,
                target(1, &model.movie_emb, &model.movie_acc),
            ),
        };
        Ok(Self {
            opts: opts.clone(),
            cfg,
            layout: l,
            mlp,
            retrieval,
            backward,
            split_rows,
            retrieval_window_rows: window_rows_ret,
            grad_out: row_gradients.map(|g| g.is_some()),
        })
    }

    /// Sets every launch's parameters for a batch of shape `s` whose loss sums go to `losses[2 slot]`
    /// and `losses[2 slot + 1]`.
    pub fn set(&self, gpu: &Gpu, s: &BatchShape, slot: usize) {
        let (o, s) = (&self.opts, *s);
        let cfg = &self.cfg;
        let l = &self.layout;
        let r = s.rows as u32;
        let (d4, h24) = ((cfg.embedding_dim / 4) as u32, (cfg.hidden2 / 4) as u32);
        let (lr, len4, split) = (o.learning_rate, (l.len / 4) as u32, self.split_rows as u32);
        let window_rows = self.split_rows / WINDOWS_PER_SPLIT;
        let bw = &self.backward;
        if o.rating_on() {
            self.mlp.set(gpu, s.rows, true, o.rating_weight, 2 * slot);
            let weights = |launches: &[Launch], k: usize, n: usize, w: usize, bias: usize| {
                for (sp, launch) in launches
                    .iter()
                    .enumerate()
                    .take(s.rows.div_ceil(self.split_rows))
                {
                    let p = DenseBackwardWeightsParams {
                        rows: (s.rows - sp * self.split_rows).min(self.split_rows) as u32,
                        k4: (k / 4) as u32,
                        n4: (n / 4) as u32,
                        window_rows: window_rows as u32,
                        grad_len4: len4,
                        w_offset4: (w / 4) as u32,
                        b_offset4: (bias / 4) as u32,
                        split: sp as u32,
                    };
                    launch.set(gpu, &p);
                }
            };
            bw.head.set(
                gpu,
                &RatingHeadBackwardParams {
                    rows: r,
                    h4: h24,
                    split_rows: split,
                    grad_len4: len4,
                    w_offset4: (l.w3 / 4) as u32,
                    b_offset4: (l.b3 / 4) as u32,
                    _pad: [0; 2],
                },
            );
            weights(&bw.layer2_weights, l.h1, l.h2, l.w2, l.b2);
            for (launch, row0, rows) in bw.layer2_data.windows(s.rows) {
                launch.set(gpu, &DenseBackwardDataParams::new(row0, rows, l.h1, l.h2));
            }
            weights(&bw.layer1_weights, l.k, l.h1, l.w1, l.b1);
            for (launch, row0, rows) in bw.layer1_data.windows(s.rows) {
                launch.set(gpu, &DenseBackwardDataParams::new(row0, rows, l.k, l.h1));
            }
            bw.adagrad.set(
                gpu,
                &AdagradDenseParams {
                    len4,
                    splits: s.rows.div_ceil(self.split_rows) as u32,
                    learning_rate: lr,
                    epsilon: EPSILON,
                },
            );
        }
        if o.retrieval_on() {
            self.retrieval
                .set(gpu, &s, o.retrieval_weight, 2 * slot + 1);
            for (l, _, users, first, last) in
                window_span(&bw.movies, self.retrieval_window_rows, s.users)
            {
                l.set(
                    gpu,
                    &RetrievalSoftmaxParams::new(users, s.movies, o.retrieval_weight, first, last)
                        .removing_hits(o.tweaks.remove_accidental_hits),
                );
            }
        }
        let update = |n: usize, off: u32, grad_out: bool| EmbeddingAdagradParams {
            n: n as u32,
            dim4: d4,
            dx_stride4: 2 * d4,
            dx_offset4: off,
            use_dense: o.retrieval_on() as u32,
            use_rows: o.rating_on() as u32,
            learning_rate: o.tweaks.embedding_learning_rate.unwrap_or(lr),
            epsilon: EPSILON,
            // A tower applies the penalty to its own tables.
            l2: if grad_out { 0.0 } else { o.tweaks.embedding_l2 },
            grad_out: grad_out as u32,
            _pad: [0; 2],
        };
        let [gu, gm] = self.grad_out;
        bw.user_update.set(gpu, &update(s.users, 0, gu));
        bw.movie_update.set(gpu, &update(s.movies, d4, gm));
    }

    /// Records the step (after `set`) into `pass`: forward, backward and Adagrad of both tasks, window by
    /// window.
    pub fn encode(&self, pass: &mut Pass, s: &BatchShape) {
        let o = &self.opts;
        let cfg = &self.cfg;
        let r = s.rows as u32;
        let (d4, h1, h2) = (
            (cfg.embedding_dim / 4) as u32,
            cfg.hidden1 as u32,
            cfg.hidden2 as u32,
        );
        let split = self.split_rows as u32;
        let splits = s.rows.div_ceil(self.split_rows);
        let bw = &self.backward;
        if o.rating_on() {
            self.mlp.encode(pass, s.rows);
            bw.head
                .run(pass, threads::rating_head_backward(r, h2, split));
            for launch in &bw.layer2_weights[..splits] {
                launch.run(pass, threads::dense_backward_weights(h1, h2));
            }
            for (launch, _, rows) in bw.layer2_data.windows(s.rows) {
                launch.run(pass, threads::dense_backward_data(rows as u32, h1));
            }
            for launch in &bw.layer1_weights[..splits] {
                launch.run(pass, threads::dense_backward_weights(8 * d4, h1));
            }
            for (launch, _, rows) in bw.layer1_data.windows(s.rows) {
                launch.run(pass, threads::dense_backward_data(rows as u32, 8 * d4));
            }
            bw.adagrad.run(pass, (self.layout.len / 4) as u32);
        }
        if o.retrieval_on() {
            self.retrieval.encode(pass, s);
            for (l, ..) in window_span(&bw.movies, self.retrieval_window_rows, s.users) {
                l.run(pass, s.movies as u32);
            }
        }
        if !o.embeddings_frozen() {
            bw.user_update.run(pass, s.users as u32 * d4);
            bw.movie_update.run(pass, s.movies as u32 * d4);
        }
    }
}
