//! One joint training step of the GPU family, planned once and encoded many times: `GpuStep` owns the
//! step's work buffers and every launch, and encodes forward, both losses, backward and Adagrad of a
//! batch in 14 dispatches, whatever the batch size (the windowed family needs ~484 at the tutorial's).

use super::*;
use crate::gpu::batches::BatchShape;
use crate::gpu::launch::Pass;
use crate::gpu::profile::Profiler;
use crate::kernels::model::GpuModel;
use crate::model::EPSILON;
use crate::model::{MlpLayout, ModelConfig};
use crate::options::TrainOptions;

/// Rows per split of the MLP weight gradients: 32 splits at the tutorial's batch of 8192, enough
/// workgroups for a GPU, and adagrad_dense adds 32 partials per parameter.
pub const SPLIT_ROWS: usize = 256;

/// The work buffers of a step, for up to B rows.
pub struct StepBuffers {
    pub h1: wgpu::Buffer,             // (B, H1)
    pub h2: wgpu::Buffer,             // (B, H2)
    pub pred: wgpu::Buffer,           // (B,)
    pub sq_err: wgpu::Buffer,         // (B,)
    pub dh2: wgpu::Buffer,            // (B, H2)
    pub dh1: wgpu::Buffer,            // (B, H1)
    pub dx: wgpu::Buffer,             // (B, 2D)
    pub grad: wgpu::Buffer,           // (S, L) split partials of the MLP gradient
    pub lse_part: wgpu::Buffer,       // (P, NU) (max, sum) per part of the movies
    pub grad_user: wgpu::Buffer,      // (P, NU, D) retrieval partials
    pub grad_movie: wgpu::Buffer,     // (P, NM, D)
    pub retrieval_loss: wgpu::Buffer, // (NU,)
}

/// Every launch of a step, in the order they run.
struct Launches {
    layer1: Launch,
    layer2: Launch,
    head: Launch,
    layer2_data: Launch,
    layer2_weights: Launch,
    layer1_data: Launch,
    layer1_weights: Launch,
    adagrad: Launch,
    sq_err_sum: Launch,
    retrieval_lse: Launch,
    retrieval_grads: Launch,
    retrieval_loss_sum: Launch,
    user_update: Launch,
    movie_update: Launch,
}

/// A whole joint training step on the GPU family for batches of up to `capacity` rows. The losses land
/// where the trainer reads them: `losses[2 slot]` the squared-error sum, `losses[2 slot + 1]` the
/// retrieval loss sum.
pub struct GpuStep {
    opts: TrainOptions,
    cfg: ModelConfig,
    layout: MlpLayout,
    capacity: usize,
    split_rows: usize,
    pub batch: PackedBatch,
    pub buffers: StepBuffers,
    launches: Launches,
    /// Per side (users, movies): the table holds a feature tower's outputs, so the update writes each
    /// row's gradient for the tower instead.
    grad_out: [bool; 2],
}

impl GpuStep {
    pub fn new(
        gpu: &Gpu,
        k: &Kernels,
        model: &GpuModel,
        capacity: usize,
        opts: &TrainOptions,
        losses: &wgpu::Buffer,
    ) -> Result<Self> {
        Self::with_split_rows(gpu, k, model, capacity, opts, losses, SPLIT_ROWS)
    }

    /// As `new`, writing the rows' gradients of a side with a feature tower into `row_gradients[side]`.
    pub fn with_towers(
        gpu: &Gpu,
        k: &Kernels,
        model: &GpuModel,
        capacity: usize,
        opts: &TrainOptions,
        losses: &wgpu::Buffer,
        row_gradients: [Option<&wgpu::Buffer>; 2],
    ) -> Result<Self> {
        Self::build(
            gpu,
            k,
            model,
            capacity,
            opts,
            losses,
            SPLIT_ROWS,
            row_gradients,
        )
    }

    /// As `new` with `split_rows` rows per weight-gradient split (a multiple of 16; tests use small ones).
    pub fn with_split_rows(
        gpu: &Gpu,
        k: &Kernels,
        model: &GpuModel,
        capacity: usize,
        opts: &TrainOptions,
        losses: &wgpu::Buffer,
        split_rows: usize,
    ) -> Result<Self> {
        Self::build(
            gpu,
            k,
            model,
            capacity,
            opts,
            losses,
            split_rows,
            [None, None],
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        gpu: &Gpu,
        k: &Kernels,
        model: &GpuModel,
        capacity: usize,
        opts: &TrainOptions,
        losses: &wgpu::Buffer,
        split_rows: usize,
        row_gradients: [Option<&wgpu::Buffer>; 2],
    ) -> Result<Self> {
        opts.validate()?;
        let (cfg, l) = (model.cfg, model.layout);
        check_shape(cfg.embedding_dim, cfg.hidden1, cfg.hidden2)?;
        if capacity == 0 || split_rows == 0 || !split_rows.is_multiple_of(16) {
            bail!(
                "GpuStep needs a capacity of at least one row and splits of a multiple of 16 rows"
            );
        }
        let d = cfg.embedding_dim;
        let s = splits(capacity, split_rows);
        for (what, floats) in [
            ("the MLP gradient splits", s * l.len),
            (
                "the first hidden layer's activations (batch x H1)",
                capacity * cfg.hidden1,
            ),
            ("the retrieval gradient parts", MAX_PARTS * capacity * d),
            ("the packed batch", BatchLayout::new(capacity).len),
        ] {
            gpu.check_binding(what, floats as u64 * 4)?;
        }
        let b = |label: &str, n: usize| gpu.buffer(label, n);
        let buffers = StepBuffers {
            h1: b("h1", capacity * cfg.hidden1),
            h2: b("h2", capacity * cfg.hidden2),
            pred: b("pred", capacity),
            sq_err: b("sq_err", capacity),
            dh2: b("dh2", capacity * cfg.hidden2),
            dh1: b("dh1", capacity * cfg.hidden1),
            dx: b("dx", capacity * 2 * d),
            // Zeroed once: the padding between the layout's tensors is never written and must stay 0.
            grad: b("mlp_grad", s * l.len),
            lse_part: b("lse_part", MAX_PARTS * capacity * 2),
            grad_user: b("grad_user", MAX_PARTS * capacity * d),
            grad_movie: b("grad_movie", MAX_PARTS * capacity * d),
            retrieval_loss: b("retrieval_loss", capacity),
        };
        let batch = PackedBatch::new(gpu, "packed batch", capacity);
        let t = &buffers;
        let tables = (&model.user_emb, &model.movie_emb);
        let m = &model.mlp;
        let unused = gpu.buffer("unused", 4);
        let launches = Launches {
            layer1: dense_gather_forward(
                gpu,
                &k.dense_gather_forward,
                "dense_gather_forward_gpu (layer 1)",
                tables,
                &batch,
                m,
                &t.h1,
            ),
            layer2: dense_forward(
                gpu,
                &k.dense_forward,
                "dense_forward_gpu (layer 2)",
                &t.h1,
                m,
                &t.h2,
            ),
            head: rating_loss(
                gpu,
                &k.rating_loss,
                "rating_loss_gpu",
                &t.h2,
                m,
                &batch,
                RatingLossOutputs {
                    pred: &t.pred,
                    sq_err: &t.sq_err,
                    dh2: &t.dh2,
                    grad: &t.grad,
                },
            ),
            layer2_data: dense_backward_data(
                gpu,
                &k.dense_backward_data,
                "dense_backward_data_gpu (layer 2)",
                &t.dh2,
                m,
                &t.h1,
                &t.dh1,
            ),
            layer2_weights: dense_backward_weights(
                gpu,
                &k.dense_backward_weights,
                "dense_backward_weights_gpu (layer 2)",
                &t.h1,
                &t.dh2,
                &t.grad,
            ),
            // No ReLU in front of layer 1: the mask binding is unused, dh1 stands in for it.
            layer1_data: dense_backward_data(
                gpu,
                &k.dense_backward_data_linear,
                "dense_backward_data_gpu (layer 1)",
                &t.dh1,
                m,
                &t.dh1,
                &t.dx,
            ),
            layer1_weights: dense_gather_backward_weights(
                gpu,
                &k.dense_gather_backward_weights,
                "dense_gather_backward_weights_gpu (layer 1)",
                tables,
                &batch,
                &t.dh1,
                &t.grad,
            ),
            adagrad: adagrad_dense(
                gpu,
                &k.adagrad_dense,
                "adagrad_dense",
                &t.grad,
                m,
                &model.mlp_acc,
            ),
            sq_err_sum: sum_reduce(
                gpu,
                &k.sum_reduce,
                "sum_reduce (squared error)",
                &t.sq_err,
                losses,
            ),
            retrieval_lse: retrieval_lse(
                gpu,
                &k.retrieval_lse,
                "retrieval_lse_gpu",
                tables,
                &batch,
                &t.lse_part,
            ),
            retrieval_grads: retrieval_grads(
                gpu,
                &k.retrieval_grads,
                "retrieval_grads_gpu",
                tables,
                &batch,
                &t.lse_part,
                RetrievalGradsOutputs {
                    grad_user: &t.grad_user,
                    grad_movie: &t.grad_movie,
                    loss: &t.retrieval_loss,
                },
            ),
            retrieval_loss_sum: sum_reduce(
                gpu,
                &k.sum_reduce,
                "sum_reduce (retrieval loss)",
                &t.retrieval_loss,
                losses,
            ),
            user_update: embedding_adagrad(
                gpu,
                &k.embedding_adagrad,
                "embedding_adagrad_gpu (users)",
                &t.grad_user,
                &t.dx,
                &batch,
                row_gradients[0].unwrap_or(&model.user_emb),
                row_gradients[0].map_or(&model.user_acc, |_| &unused),
            ),
            movie_update: embedding_adagrad(
                gpu,
                &k.embedding_adagrad,
                "embedding_adagrad_gpu (movies)",
                &t.grad_movie,
                &t.dx,
                &batch,
                row_gradients[1].unwrap_or(&model.movie_emb),
                row_gradients[1].map_or(&model.movie_acc, |_| &unused),
            ),
        };
        Ok(Self {
            opts: opts.clone(),
            cfg,
            layout: l,
            capacity,
            split_rows,
            batch,
            buffers,
            launches,
            grad_out: row_gradients.map(|g| g.is_some()),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn rating_on(&self) -> bool {
        self.opts.rating_weight != 0.0
    }

    fn retrieval_on(&self) -> bool {
        self.opts.retrieval_weight != 0.0
    }

    /// Sets every launch's parameters for a batch of shape `s` whose losses go to slot `slot`; they take
    /// effect at the next submission.
    pub fn set(&self, gpu: &Gpu, s: &BatchShape, slot: usize) {
        let (o, l, bl, ls) = (&self.opts, &self.layout, &self.batch.layout, &self.launches);
        let (rows, sp, d) = (s.rows, self.split_rows, self.cfg.embedding_dim);
        if self.rating_on() {
            self.set_rating_forward(gpu, rows, Some(o.rating_weight), slot);
            let data = DenseBackwardDataParams::new;
            let weights = DenseBackwardWeightsParams::new;
            ls.layer2_data.set(gpu, &data(rows, l.h1, l.h2, l.w2));
            ls.layer2_weights
                .set(gpu, &weights(rows, l.h1, l.h2, sp, l.len, l.w2, l.b2));
            ls.layer1_data.set(gpu, &data(rows, l.k, l.h1, l.w1));
            ls.layer1_weights.set(
                gpu,
                &weights(rows, l.k, l.h1, sp, l.len, l.w1, l.b1).gather(bl),
            );
            ls.adagrad.set(
                gpu,
                &AdagradDenseParams {
                    len4: (l.len / 4) as u32,
                    splits: splits(rows, sp) as u32,
                    learning_rate: o.learning_rate,
                    epsilon: EPSILON,
                },
            );
        }
        let parts = retrieval_parts(s.users, s.movies);
        if self.retrieval_on() {
            let (w, t) = (o.retrieval_weight, o.tweaks.temperature);
            self.set_retrieval(gpu, s, slot, w, t);
        }
        let u = EmbeddingUpdate {
            parts: if self.retrieval_on() { parts } else { 0 },
            use_rows: self.rating_on(),
            learning_rate: o.tweaks.embedding_learning_rate.unwrap_or(o.learning_rate),
            epsilon: EPSILON,
            l2: o.tweaks.embedding_l2,
        };
        // A side with a tower gets its rows' gradients; the tower applies the penalty to its own tables.
        let p = |n: usize, movies: bool| {
            let p = EmbeddingAdagradParams::new(n, d, movies, u, bl);
            match self.grad_out[movies as usize] {
                true => EmbeddingAdagradParams {
                    grad_out: 1,
                    l2: 0.0,
                    ..p
                },
                false => p,
            }
        };
        ls.user_update.set(gpu, &p(s.users, false));
        ls.movie_update.set(gpu, &p(s.movies, true));
    }

    /// Sets the forward pass alone, as evaluation runs it: predictions and the squared-error sum into
    /// `losses[2 slot]` and, with `retrieval`, the retrieval loss sum into `losses[2 slot + 1]`. Nothing
    /// is updated (the retrieval gradients are computed with weight 0 and never read).
    pub fn set_forward(&self, gpu: &Gpu, s: &BatchShape, slot: usize, retrieval: bool) {
        self.set_rating_forward(gpu, s.rows, None, slot);
        if retrieval {
            self.set_retrieval(gpu, s, slot, 0.0, None);
        }
    }

    /// Both dense layers, the head and its squared-error sum into `losses[2 slot]`; with
    /// `train = Some(rating weight)` the head also starts the backward pass.
    fn set_rating_forward(&self, gpu: &Gpu, rows: usize, train: Option<f32>, slot: usize) {
        let (l, bl, ls) = (&self.layout, &self.batch.layout, &self.launches);
        let dense = DenseForwardParams::new;
        ls.layer1
            .set(gpu, &dense(rows, l.k, l.h1, l.w1, l.b1).gather(bl));
        ls.layer2.set(gpu, &dense(rows, l.h1, l.h2, l.w2, l.b2));
        let (on, weight) = (train.is_some(), train.unwrap_or(1.0));
        let sp = self.split_rows;
        let head = RatingLossParams::new(rows, l.h2, on, weight, sp, l.len, l.w3, l.b3, bl);
        ls.head.set(gpu, &head);
        ls.sq_err_sum.set(gpu, &sum_params(rows, 2 * slot));
    }

    /// The two retrieval passes at `weight` and temperature and the loss sum into `losses[2 slot + 1]`.
    fn set_retrieval(
        &self,
        gpu: &Gpu,
        s: &BatchShape,
        slot: usize,
        weight: f32,
        temperature: Option<f32>,
    ) {
        let (bl, ls) = (&self.batch.layout, &self.launches);
        let parts = retrieval_parts(s.users, s.movies);
        let lse = RetrievalLseParams::new(s.users, s.movies, parts, bl).tempered(temperature);
        ls.retrieval_lse.set(gpu, &lse);
        let grads =
            RetrievalGradsParams::new(s.users, s.movies, parts, weight, bl).tempered(temperature);
        ls.retrieval_grads.set(gpu, &grads);
        ls.retrieval_loss_sum
            .set(gpu, &sum_params(s.users, 2 * slot + 1));
    }

    /// The retrieval passes' dispatches and the loss sum, in order.
    fn retrieval_dispatches(&self, s: &BatchShape) -> [(&Launch, (u32, u32, u32)); 3] {
        let ls = &self.launches;
        let parts = retrieval_parts(s.users, s.movies);
        [
            (&ls.retrieval_lse, groups::retrieval_lse(s.users, parts)),
            (
                &ls.retrieval_grads,
                groups::retrieval_grads(s.users, s.movies, parts),
            ),
            (&ls.retrieval_loss_sum, (1, 1, 1)),
        ]
    }

    /// The forward pass's dispatches (after `set_forward`): 4, and 3 more with `retrieval`.
    fn forward_dispatches_of(
        &self,
        s: &BatchShape,
        retrieval: bool,
    ) -> Vec<(&Launch, (u32, u32, u32))> {
        let (l, ls) = (&self.layout, &self.launches);
        let sp = splits(s.rows, self.split_rows);
        let mut v = vec![
            (&ls.layer1, groups::dense_forward(s.rows, l.h1)),
            (&ls.layer2, groups::dense_forward(s.rows, l.h2)),
            (&ls.head, groups::rating_loss(sp)),
            (&ls.sq_err_sum, (1, 1, 1)),
        ];
        if retrieval {
            v.extend(self.retrieval_dispatches(s));
        }
        v
    }

    /// Records the forward pass (after `set_forward`) into `pass`.
    pub fn encode_forward(&self, pass: &mut Pass, s: &BatchShape, retrieval: bool) {
        for (launch, groups) in self.forward_dispatches_of(s, retrieval) {
            launch.run_groups(pass, groups);
        }
    }

    /// The dispatches of a step on a batch of shape `s`, in order, with their workgroup grids.
    fn dispatches_of(&self, s: &BatchShape) -> Vec<(&Launch, (u32, u32, u32))> {
        let (l, ls) = (&self.layout, &self.launches);
        let rows = s.rows;
        let sp = splits(rows, self.split_rows);
        let flat = |threads: usize| {
            let (x, y) = crate::gpu::grid((threads as u32).div_ceil(crate::gpu::WORKGROUP));
            (x, y, 1)
        };
        let frozen = self.opts.embeddings_frozen();
        let mut v = Vec::with_capacity(14);
        if self.rating_on() {
            v.push((&ls.layer1, groups::dense_forward(rows, l.h1)));
            v.push((&ls.layer2, groups::dense_forward(rows, l.h2)));
            v.push((&ls.head, groups::rating_loss(sp)));
            v.push((&ls.layer2_data, groups::dense_backward_data(rows, l.h1)));
            v.push((
                &ls.layer2_weights,
                groups::dense_backward_weights(l.h1, l.h2, sp),
            ));
            if !frozen {
                v.push((&ls.layer1_data, groups::dense_backward_data(rows, l.k)));
            }
            v.push((
                &ls.layer1_weights,
                groups::dense_backward_weights(l.k, l.h1, sp),
            ));
            // After every kernel that reads W: Adagrad updates the MLP in place.
            v.push((&ls.adagrad, flat(l.len / 4)));
            v.push((&ls.sq_err_sum, (1, 1, 1)));
        }
        if self.retrieval_on() {
            v.extend(self.retrieval_dispatches(s));
        }
        // Last: every kernel above reads the embedding tables as they were before this step.
        if !frozen {
            let d4 = self.cfg.embedding_dim / 4;
            v.push((&ls.user_update, flat(s.users * d4)));
            v.push((&ls.movie_update, flat(s.movies * d4)));
        }
        v
    }

    /// Dispatches one step issues on a batch of shape `s` (14 for a joint step).
    pub fn dispatches(&self, s: &BatchShape) -> usize {
        self.dispatches_of(s).len()
    }

    /// Records the step (after `set`) into `pass`.
    pub fn encode(&self, pass: &mut Pass, s: &BatchShape) {
        for (launch, groups) in self.dispatches_of(s) {
            launch.run_groups(pass, groups);
        }
    }

    /// One whole step on a host batch: writes it into the packed batch, sets, encodes and submits.
    pub fn step(
        &self,
        gpu: &Gpu,
        b: &Batch,
        slot: usize,
        profiler: Option<&Profiler>,
    ) -> Result<()> {
        if b.rows() == 0 || b.rows() > self.capacity {
            bail!(
                "a batch of {} rows for a step planned for 1..={} rows",
                b.rows(),
                self.capacity
            );
        }
        let s = BatchShape {
            rows: b.rows(),
            users: b.users.len(),
            movies: b.movies.len(),
        };
        self.batch.write(gpu, b);
        self.set(gpu, &s, slot);
        let mut enc = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("gpu train step"),
            });
        {
            let mut pass = Pass::begin(&mut enc, "gpu train step", profiler);
            self.encode(&mut pass, &s);
        }
        crate::gpu::profile::submit(gpu, enc, profiler)
    }
}

fn sum_params(n: usize, slot: usize) -> SumReduceParams {
    SumReduceParams {
        n: n as u32,
        slot: slot as u32,
        _pad: [0; 2],
    }
}
