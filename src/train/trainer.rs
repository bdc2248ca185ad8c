//! Training: the backward launches of both tasks, Adagrad, and the epoch loop with Keras-style progress.
//! One step is one command buffer: copy the batch's ids, forward, backward, update, loss sums.

use crate::data::batches::permutation;
use crate::data::{Ratings, SplitMix64};
use crate::gpu::batches::*;
use crate::gpu::launch::{Launch, Pass};
use crate::gpu::profile::Profiler;
use crate::gpu::{whole, window, Gpu};
use crate::kernels::windowed::ranking::{Activations, MlpForward};
use crate::kernels::windowed::retrieval::{
    retrieval_window_rows, RetrievalBuffers, RetrievalForward,
};
use crate::kernels::windowed::*;
use crate::model::gpu::{GpuModel, EPSILON};
use crate::options::TrainOptions;
use anyhow::{bail, Result};
use std::time::Instant;

/// One epoch of the history, as Keras's `History` records it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    /// Mean over the epoch's batches of the total loss, weighted by batch size.
    pub loss: f64,
    pub seconds: f64,
}

/// The batch order of an epoch: the seed's permutation, redrawn per epoch only with `reshuffle`.
/// The batch stream is separate from the initialisation streams (`Params::init`).
fn batch_rng(seed: u64) -> SplitMix64 {
    SplitMix64::new(seed ^ 0xBA7C_4E55_0000_0000)
}

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

pub struct Trainer<'g> {
    gpu: &'g Gpu,
    pub model: GpuModel,
    opts: TrainOptions,
    /// The training split, kept only to draw new batches each epoch (`--reshuffle`): at ML-25M size a
    /// copy is 240 MB.
    train: Option<Ratings>,
    rng: SplitMix64,
    store: BatchStore,
    ids: BatchBuffers,
    mlp: MlpForward,
    retrieval: RetrievalForward,
    backward: Backward,
    losses: wgpu::Buffer,
    epochs_done: usize,
    profiler: Option<&'g Profiler>,
    /// Rows per split of the weight gradients (adagrad_dense adds the splits up).
    split_rows: usize,
    retrieval_window_rows: usize,
}

impl<'g> Trainer<'g> {
    pub fn new(
        gpu: &'g Gpu,
        kernels: &Kernels,
        model: GpuModel,
        train: &Ratings,
        opts: &TrainOptions,
    ) -> Result<Self> {
        opts.validate()?;
        if train.is_empty() {
            bail!("the training split is empty");
        }
        let cfg = model.cfg;
        let l = model.layout;
        let cap = opts.batch_size.min(train.len());
        let mut rng = batch_rng(opts.seed);
        let perm = permutation(train.len(), &mut rng);
        let unit = opts.tweaks.logq_correction;
        let store = BatchStore::new(gpu, "train batches", train, &perm, opts.batch_size, unit)?;
        let ids = BatchBuffers::new(gpu, "batch", cap);
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
        let losses = gpu.buffer("losses", 2 * store.batches.len());
        let mlp = MlpForward::new(gpu, kernels, &model, &ids, &act, &losses);
        let retrieval = RetrievalForward::new(gpu, kernels, &model, &ids, &ret, &losses);
        let m = &model.mlp;
        let k = kernels;
        let window_rows_ret = retrieval_window_rows(cfg.embedding_dim);
        let backward = Backward {
            head: Launch::new(
                gpu,
                &k.rating_head_backward,
                "rating_head_backward",
                &[whole(&act.h2), whole(&act.dpred), whole(&grad)],
                &RatingHeadParams::default(),
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
                &{
                    let [lo, hi] = weight_windows(m, l.w2, l.h1, l.h2);
                    [lo, hi, whole(&act.h1), whole(&dh1)]
                },
                &DenseParams::default(),
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
                &{
                    let [lo, hi] = weight_windows(m, l.w1, l.k, l.h1);
                    [lo, hi, whole(&act.x), whole(&dx)]
                },
                &DenseParams::default(),
            ),
            adagrad: Launch::new(
                gpu,
                &k.adagrad_dense,
                "adagrad_dense",
                &[whole(&grad), whole(m), whole(&model.mlp_acc)],
                &AdagradDenseParams::default(),
            ),
            movies: (0..cap.div_ceil(window_rows_ret))
                .map(|w| {
                    let a0 = w * window_rows_ret;
                    Launch::new(
                        gpu,
                        &k.retrieval_softmax_movies,
                        &format!("retrieval_softmax_movies [window {w}]"),
                        &[
                            whole(&ret.movie_d),
                            window(&ret.user_d, a0 * cfg.embedding_dim),
                            window(&ret.user_stat, a0 * 4),
                            whole(&ret.user_d),
                            whole(&ids.movies.count),
                            whole(&ids.movies.offsets),
                            whole(&ids.movies.rows),
                            whole(&ids.users.of_row),
                            whole(&ret.grad_movie),
                        ],
                        &RetrievalParams::default(),
                    )
                })
                .collect(),
            user_update: Launch::new(
                gpu,
                &k.embedding_adagrad,
                "embedding_adagrad (users)",
                &[
                    whole(&ret.grad_user),
                    whole(&dx),
                    whole(&ids.users.offsets),
                    whole(&ids.users.rows),
                    whole(&ids.users.table_rows),
                    whole(&model.user_emb),
                    whole(&model.user_acc),
                ],
                &EmbeddingAdagradParams::default(),
            ),
            movie_update: Launch::new(
                gpu,
                &k.embedding_adagrad,
                "embedding_adagrad (movies)",
                &[
                    whole(&ret.grad_movie),
                    whole(&dx),
                    whole(&ids.movies.offsets),
                    whole(&ids.movies.rows),
                    whole(&ids.movies.table_rows),
                    whole(&model.movie_emb),
                    whole(&model.movie_acc),
                ],
                &EmbeddingAdagradParams::default(),
            ),
        };
        Ok(Self {
            gpu,
            model,
            opts: opts.clone(),
            train: opts.reshuffle.then(|| train.clone()),
            rng,
            store,
            ids,
            mlp,
            retrieval,
            backward,
            losses,
            epochs_done: 0,
            profiler: None,
            split_rows,
            retrieval_window_rows: window_rows_ret,
        })
    }

    /// Times every dispatch of the following steps with `profiler`.
    pub fn profile(&mut self, profiler: &'g Profiler) {
        self.profiler = Some(profiler);
    }

    /// Rows, distinct users and distinct movies of every batch.
    pub fn batch_shapes(&self) -> Vec<BatchShape> {
        self.store.batches.clone()
    }

    pub fn batches(&self) -> usize {
        self.store.batches.len()
    }

    /// Epochs trained so far, including those before a resume.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// State of the batch-order PRNG (it only advances with `reshuffle`).
    pub fn batch_rng_state(&self) -> u64 {
        self.rng.state()
    }

    /// Continues a run saved after `epochs_done` epochs with the batch-order PRNG at `batch_rng_state`:
    /// the next epoch draws (with `reshuffle`) or reuses (without) the batches an uninterrupted run would.
    pub fn resume_at(&mut self, epochs_done: usize, batch_rng_state: u64) {
        self.epochs_done = epochs_done;
        self.rng = SplitMix64::new(batch_rng_state);
    }

    /// Sets every launch's parameters for batch `b`.
    fn set(&self, b: usize) {
        let (gpu, o, s) = (self.gpu, &self.opts, self.store.batches[b]);
        let cfg = &self.model.cfg;
        let l = &self.model.layout;
        let r = s.rows as u32;
        let (d4, h24) = ((cfg.embedding_dim / 4) as u32, (cfg.hidden2 / 4) as u32);
        let (lr, len4, split) = (o.learning_rate, (l.len / 4) as u32, self.split_rows as u32);
        let window_rows = self.split_rows / WINDOWS_PER_SPLIT;
        let bw = &self.backward;
        if o.rating_on() {
            self.mlp.set(gpu, s.rows, true, o.rating_weight, 2 * b);
            let weights = |launches: &[Launch], k: usize, n: usize, w: usize, bias: usize| {
                for (sp, launch) in launches
                    .iter()
                    .enumerate()
                    .take(s.rows.div_ceil(self.split_rows))
                {
                    let p = DenseWeightsParams {
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
                &RatingHeadParams {
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
                launch.set(gpu, &DenseParams::new(row0, rows, l.h1, l.h2));
            }
            weights(&bw.layer1_weights, l.k, l.h1, l.w1, l.b1);
            for (launch, row0, rows) in bw.layer1_data.windows(s.rows) {
                launch.set(gpu, &DenseParams::new(row0, rows, l.k, l.h1));
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
            self.retrieval.set(gpu, &s, o.retrieval_weight, 2 * b + 1);
            for (l, _, users, first, last) in
                window_span(&bw.movies, self.retrieval_window_rows, s.users)
            {
                l.set(
                    gpu,
                    &RetrievalParams::new(users, s.movies, o.retrieval_weight, first, last),
                );
            }
        }
        let update = |n: usize, off: u32| EmbeddingAdagradParams {
            n: n as u32,
            dim4: d4,
            dx_stride4: 2 * d4,
            dx_offset4: off,
            use_dense: o.retrieval_on() as u32,
            use_rows: o.rating_on() as u32,
            learning_rate: o.tweaks.embedding_learning_rate.unwrap_or(lr),
            epsilon: EPSILON,
            l2: o.tweaks.embedding_l2,
            _pad: [0; 3],
        };
        bw.user_update.set(gpu, &update(s.users, 0));
        bw.movie_update.set(gpu, &update(s.movies, d4));
    }

    /// Encodes and submits one training step on batch `b`.
    fn step(&self, b: usize) -> Result<()> {
        self.set(b);
        let (o, s) = (&self.opts, self.store.batches[b]);
        let cfg = &self.model.cfg;
        let r = s.rows as u32;
        let (d4, h1, h2) = (
            (cfg.embedding_dim / 4) as u32,
            cfg.hidden1 as u32,
            cfg.hidden2 as u32,
        );
        let split = self.split_rows as u32;
        let splits = s.rows.div_ceil(self.split_rows);
        let mut enc = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("train step"),
            });
        self.store.copy_to(self.gpu, &mut enc, b, &self.ids);
        {
            let mut pass = Pass::begin(&mut enc, "train step", self.profiler);
            let bw = &self.backward;
            if o.rating_on() {
                self.mlp.encode(&mut pass, s.rows);
                bw.head
                    .run(&mut pass, threads::rating_head_backward(r, h2, split));
                for launch in &bw.layer2_weights[..splits] {
                    launch.run(&mut pass, threads::dense_backward_weights(h1, h2));
                }
                for (launch, _, rows) in bw.layer2_data.windows(s.rows) {
                    launch.run(&mut pass, threads::dense_backward_data(rows as u32, h1));
                }
                for launch in &bw.layer1_weights[..splits] {
                    launch.run(&mut pass, threads::dense_backward_weights(8 * d4, h1));
                }
                for (launch, _, rows) in bw.layer1_data.windows(s.rows) {
                    launch.run(&mut pass, threads::dense_backward_data(rows as u32, 8 * d4));
                }
                bw.adagrad
                    .run(&mut pass, (self.model.layout.len / 4) as u32);
            }
            if o.retrieval_on() {
                self.retrieval.encode(&mut pass, &s);
                for (l, ..) in window_span(&bw.movies, self.retrieval_window_rows, s.users) {
                    l.run(&mut pass, s.movies as u32);
                }
            }
            if !o.embeddings_frozen() {
                bw.user_update.run(&mut pass, s.users as u32 * d4);
                bw.movie_update.run(&mut pass, s.movies as u32 * d4);
            }
        }
        crate::gpu::profile::submit(self.gpu, enc, self.profiler)
    }

    /// Total loss of batch b from the sums the step left in `losses` (waits for the GPU).
    fn batch_loss(&self, b: usize) -> Result<f64> {
        let v: Vec<f32> = self.gpu.read(&self.losses, 2 * b, 2)?;
        Ok(self.total_loss(b, v[0], v[1]))
    }

    fn total_loss(&self, b: usize, sq_err_sum: f32, retrieval_sum: f32) -> f64 {
        let o = &self.opts;
        let rows = self.store.batches[b].rows as f64;
        let mut loss = 0.0;
        if o.rating_on() {
            loss += o.rating_weight as f64 * sq_err_sum as f64 / rows;
        }
        if o.retrieval_on() {
            loss += o.retrieval_weight as f64 * retrieval_sum as f64;
        }
        loss
    }

    /// Runs one epoch; `progress` gets (step, steps, running loss) after every step when given.
    pub fn epoch(
        &mut self,
        mut progress: Option<&mut dyn FnMut(usize, usize, f64)>,
    ) -> Result<EpochLog> {
        let t0 = Instant::now();
        if let Some(train) = self.train.as_ref().filter(|_| self.epochs_done > 0) {
            let perm = permutation(train.len(), &mut self.rng);
            self.store
                .rewrite(self.gpu, "train batches", train, &perm)?;
        }
        let n = self.batches();
        let (mut weighted, mut rows) = (0.0, 0.0);
        for b in 0..n {
            self.step(b)?;
            if let Some(p) = progress.as_deref_mut() {
                let loss = self.batch_loss(b)?;
                let r = self.store.batches[b].rows as f64;
                weighted += loss * r;
                rows += r;
                p(b + 1, n, weighted / rows);
            }
        }
        if progress.is_none() {
            let sums: Vec<f32> = self.gpu.read(&self.losses, 0, 2 * n)?;
            for b in 0..n {
                let r = self.store.batches[b].rows as f64;
                weighted += self.total_loss(b, sums[2 * b], sums[2 * b + 1]) * r;
                rows += r;
            }
        }
        self.gpu.wait()?;
        self.epochs_done += 1;
        let loss = weighted / rows;
        if !loss.is_finite() {
            bail!(
                "training diverged: the loss of epoch {} is {loss}; try a smaller --learning-rate",
                self.epochs_done
            );
        }
        Ok(EpochLog {
            epoch: self.epochs_done,
            loss,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }
}
