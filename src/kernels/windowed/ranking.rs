//! The Ranking task's forward pass in the windowed family: the embedding gather, the dense layers window
//! by window, the rating head and the loss.

use super::*;
use crate::gpu::batches::BatchBuffers;
use crate::gpu::launch::{Launch, Pass};
use crate::gpu::{slice, whole, Gpu, WINDOW};
use crate::kernels::model::GpuModel;
use crate::model::ModelConfig;
use anyhow::Result;

/// Activations of the rating MLP for up to B rows.
pub struct Activations {
    pub capacity: usize,
    pub x: wgpu::Buffer,      // (B, 2D) concat(user, movie)
    pub h1: wgpu::Buffer,     // (B, H1)
    pub h2: wgpu::Buffer,     // (B, H2)
    pub pred: wgpu::Buffer,   // (B,)
    pub sq_err: wgpu::Buffer, // (B,)
    pub dpred: wgpu::Buffer,  // (B,)
    pub dh2: wgpu::Buffer,    // (B, H2)
}

impl Activations {
    pub fn new(gpu: &Gpu, cfg: &ModelConfig, b: usize) -> Result<Self> {
        // The largest activations (h1 or x; dh1 is h1's size), with their uniform-window padding.
        gpu.check_binding(
            "the first hidden layer's activations (batch x H1)",
            ((b * cfg.hidden1 + WINDOW) * 4) as u64,
        )?;
        gpu.check_binding(
            "the MLP input (batch x 2D)",
            ((b * 2 * cfg.embedding_dim + WINDOW) * 4) as u64,
        )?;
        // x, h1, h2 and dh2 are read through uniform windows by the dense kernels and the rating head.
        Ok(Self {
            capacity: b,
            x: gpu.windowed_buffer("x", b * 2 * cfg.embedding_dim),
            h1: gpu.windowed_buffer("h1", b * cfg.hidden1),
            h2: gpu.windowed_buffer("h2", b * cfg.hidden2),
            pred: gpu.buffer("pred", b),
            sq_err: gpu.buffer("sq_err", b),
            dpred: gpu.buffer("dpred", b),
            dh2: gpu.windowed_buffer("dh2", b * cfg.hidden2),
        })
    }
}

/// Rating task forward: gather concat(user, movie), two ReLU layers, the head with its squared error
/// (and, when training, dpred and dh2), and the squared-error sum into `losses[slot]`.
pub struct MlpForward {
    gather_user: Launch,
    gather_movie: Launch,
    layer1: Windowed,
    layer2: Windowed,
    head: Windowed,
    reduce: Launch,
    cfg: ModelConfig,
}

impl MlpForward {
    pub fn new(
        gpu: &Gpu,
        k: &Kernels,
        model: &GpuModel,
        ids: &BatchBuffers,
        a: &Activations,
        losses: &wgpu::Buffer,
    ) -> Self {
        let (cfg, l) = (model.cfg, model.layout);
        let d4 = (cfg.embedding_dim / 4) as u32;
        let gather = |label, table, idx, off| {
            let p = EmbeddingGatherParams {
                n: 0,
                dim4: d4,
                out_stride4: 2 * d4,
                out_offset4: off,
            };
            Launch::new(
                gpu,
                &k.embedding_gather,
                label,
                EmbeddingGatherBindings {
                    table: whole(table),
                    idx: whole(idx),
                    out: whole(&a.x),
                },
                &p,
            )
        };
        let m = &model.mlp;
        Self {
            gather_user: gather("embedding_gather (x users)", &model.user_emb, &ids.user, 0),
            gather_movie: gather(
                "embedding_gather (x movies)",
                &model.movie_emb,
                &ids.movie,
                d4,
            ),
            layer1: Windowed::new(
                gpu,
                &k.dense_forward,
                "dense_forward (layer 1)",
                &a.x,
                l.k,
                a.capacity,
                |x_win| dense_bindings(x_win, m, l.w1, l.k, l.h1, l.b1, &a.h1),
                &DenseForwardParams::default(),
            ),
            layer2: Windowed::new(
                gpu,
                &k.dense_forward,
                "dense_forward (layer 2)",
                &a.h1,
                l.h1,
                a.capacity,
                |x_win| dense_bindings(x_win, m, l.w2, l.h1, l.h2, l.b2, &a.h2),
                &DenseForwardParams::default(),
            ),
            head: Windowed::new(
                gpu,
                &k.rating_loss,
                "rating_loss",
                &a.h2,
                l.h2,
                a.capacity,
                |h2_win| RatingLossBindings {
                    h2_win,
                    w3: slice(m, l.w3, 256),
                    b3: slice(m, l.b3, 4),
                    rating: whole(&ids.rating),
                    pred: whole(&a.pred),
                    sq_err: whole(&a.sq_err),
                    dpred: whole(&a.dpred),
                    dh2: whole(&a.dh2),
                },
                &RatingLossParams::default(),
            ),
            reduce: Launch::new(
                gpu,
                &k.sum_reduce,
                "sum_reduce (squared error)",
                SumReduceBindings {
                    x: whole(&a.sq_err),
                    out: whole(losses),
                },
                &SumReduceParams::default(),
            ),
            cfg,
        }
    }

    /// Sets the parameters for a batch of `rows`; `train` also writes dpred and dh2 with 2 * weight / rows.
    pub fn set(&self, gpu: &Gpu, rows: usize, train: bool, rating_weight: f32, slot: usize) {
        let c = &self.cfg;
        let (r, d4) = (rows as u32, (c.embedding_dim / 4) as u32);
        let gather = EmbeddingGatherParams {
            n: r,
            dim4: d4,
            out_stride4: 2 * d4,
            out_offset4: 0,
        };
        self.gather_user.set(gpu, &gather);
        self.gather_movie.set(
            gpu,
            &EmbeddingGatherParams {
                out_offset4: d4,
                ..gather
            },
        );
        for (layer, k, n) in [
            (&self.layer1, 2 * c.embedding_dim, c.hidden1),
            (&self.layer2, c.hidden1, c.hidden2),
        ] {
            for (l, row0, rows) in layer.windows(rows) {
                l.set(gpu, &DenseForwardParams::new(row0, rows, k, n));
            }
        }
        let scale = 2.0 * rating_weight / rows as f32;
        for (l, row0, rows) in self.head.windows(rows) {
            let h4 = (c.hidden2 / 4) as u32;
            let p = RatingLossParams {
                rows: rows as u32,
                h4,
                train: train as u32,
                scale,
                row0: row0 as u32,
                _pad: [0; 3],
            };
            l.set(gpu, &p);
        }
        self.reduce.set(
            gpu,
            &SumReduceParams {
                n: r,
                slot: slot as u32,
                _pad: [0; 2],
            },
        );
    }

    pub fn encode(&self, pass: &mut Pass, rows: usize) {
        let (c, r) = (&self.cfg, rows as u32);
        let d4 = (c.embedding_dim / 4) as u32;
        self.gather_user.run(pass, r * d4);
        self.gather_movie.run(pass, r * d4);
        for (layer, n) in [(&self.layer1, c.hidden1), (&self.layer2, c.hidden2)] {
            for (l, _, rows) in layer.windows(rows) {
                l.run(pass, threads::dense_forward(rows as u32, n as u32));
            }
        }
        for (l, _, rows) in self.head.windows(rows) {
            l.run(pass, rows as u32);
        }
        self.reduce.run_one_group(pass);
    }
}

/// dense_forward's bindings after the x window: the two weight windows of the (K, N) matrix at `w`, the
/// bias window at `b` (256 floats; N <= 256), y.
fn dense_bindings<'a>(
    x_win: wgpu::BindingResource<'a>,
    mlp: &'a wgpu::Buffer,
    w: usize,
    k: usize,
    n: usize,
    b: usize,
    y: &'a wgpu::Buffer,
) -> DenseForwardBindings<'a> {
    let [w_lo, w_hi] = weight_windows(mlp, w, k, n);
    DenseForwardBindings {
        x_win,
        w_lo,
        w_hi,
        b: slice(mlp, b, 256),
        y: whole(y),
    }
}
