//! GPU-resident state shared by training and evaluation, built once and encoded many times: the model's
//! buffers, batch id buffers (all batches resident, copied into the work buffers each step), activations,
//! and the forward launches of both tasks.

use crate::batches::{batch_of, Batch, Distinct};
use crate::data::Ratings;
use crate::gpu::{slice, whole, window, Gpu, WINDOW};
use crate::kernels::*;
use crate::model::{MlpLayout, ModelConfig, Params};
use anyhow::Result;

/// Keras Adagrad's defaults.
pub const INITIAL_ACCUMULATOR: f32 = 0.1;
pub const EPSILON: f32 = 1e-7;

/// Parameters and Adagrad accumulators on the GPU.
pub struct GpuModel {
    pub cfg: ModelConfig,
    pub layout: MlpLayout,
    pub user_emb: wgpu::Buffer,  // (U, D)
    pub user_acc: wgpu::Buffer,  // (U, D)
    pub movie_emb: wgpu::Buffer, // (M, D)
    pub movie_acc: wgpu::Buffer, // (M, D)
    pub mlp: wgpu::Buffer,       // (L,)
    pub mlp_acc: wgpu::Buffer,   // (L,)
}

impl GpuModel {
    pub fn new(gpu: &Gpu, cfg: &ModelConfig, p: &Params) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.embedding_dim;
        gpu.check_binding("the user embedding table", (cfg.users * d * 4) as u64)?;
        gpu.check_binding("the movie embedding table", (cfg.movies * d * 4) as u64)?;
        let acc = |n: usize| vec![INITIAL_ACCUMULATOR; n];
        Ok(Self {
            cfg: *cfg,
            layout: cfg.layout(),
            user_emb: gpu.upload("user_emb", &p.user_emb),
            user_acc: gpu.upload("user_acc", &acc(p.user_emb.len())),
            movie_emb: gpu.upload("movie_emb", &p.movie_emb),
            movie_acc: gpu.upload("movie_acc", &acc(p.movie_emb.len())),
            // Padded by one uniform window so every weight window stays inside the buffer.
            mlp: gpu.upload("mlp", &[p.mlp.as_slice(), &[0.0; WINDOW]].concat()),
            mlp_acc: gpu.upload("mlp_acc", &acc(p.mlp.len())),
        })
    }

    pub fn params(&self, gpu: &Gpu) -> Result<Params> {
        let d = self.cfg.embedding_dim;
        Ok(Params {
            user_emb: gpu.read(&self.user_emb, 0, self.cfg.users * d)?,
            movie_emb: gpu.read(&self.movie_emb, 0, self.cfg.movies * d)?,
            mlp: gpu.read(&self.mlp, 0, self.layout.len)?,
        })
    }

    /// Overwrites the parameters (not the Adagrad accumulators) with `p`, e.g. a kept epoch's copy.
    pub fn set_params(&self, gpu: &Gpu, p: &Params) -> Result<()> {
        let d = self.cfg.embedding_dim;
        let shapes = [
            (p.user_emb.len(), self.cfg.users * d),
            (p.movie_emb.len(), self.cfg.movies * d),
            (p.mlp.len(), self.layout.len),
        ];
        if shapes.iter().any(|(got, want)| got != want) {
            anyhow::bail!("parameters of another shape: {shapes:?} (got, want)");
        }
        gpu.queue
            .write_buffer(&self.user_emb, 0, bytemuck::cast_slice(&p.user_emb));
        gpu.queue
            .write_buffer(&self.movie_emb, 0, bytemuck::cast_slice(&p.movie_emb));
        gpu.queue
            .write_buffer(&self.mlp, 0, bytemuck::cast_slice(&p.mlp));
        gpu.queue.submit([]);
        gpu.wait()
    }

    /// (user_acc, movie_acc, mlp_acc) on the host.
    pub fn accumulators(&self, gpu: &Gpu) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let d = self.cfg.embedding_dim;
        Ok((
            gpu.read(&self.user_acc, 0, self.cfg.users * d)?,
            gpu.read(&self.movie_acc, 0, self.cfg.movies * d)?,
            gpu.read(&self.mlp_acc, 0, self.layout.len)?,
        ))
    }
}

/// One id column's distinct structure on the GPU (see `batches::Distinct`), capacity B.
pub struct DistinctBuffers {
    pub table_rows: wgpu::Buffer, // (NU,)
    pub count: wgpu::Buffer,      // (NU,) f32
    pub offsets: wgpu::Buffer,    // (NU + 1,)
    pub rows: wgpu::Buffer,       // (B,)
    pub of_row: wgpu::Buffer,     // (B,)
}

/// The work buffers one step reads its batch from, capacity B rows.
pub struct BatchBuffers {
    pub capacity: usize,
    pub user: wgpu::Buffer,   // (B,) table rows
    pub movie: wgpu::Buffer,  // (B,)
    pub rating: wgpu::Buffer, // (B,) f32
    pub users: DistinctBuffers,
    pub movies: DistinctBuffers,
}

const FIELDS: usize = 13;

fn distinct_fields(d: &Distinct) -> [Vec<u32>; 5] {
    [
        d.table_rows.clone(),
        d.count.iter().map(|v| v.to_bits()).collect(),
        d.offsets.clone(),
        d.rows.clone(),
        d.of_row.clone(),
    ]
}

/// A batch as the 13 u32 columns the work buffers hold, in `BatchBuffers::fields` order.
fn batch_fields(b: &Batch) -> Vec<Vec<u32>> {
    let mut f = vec![
        b.user.clone(),
        b.movie.clone(),
        b.rating.iter().map(|v| v.to_bits()).collect(),
    ];
    f.extend(distinct_fields(&b.users));
    f.extend(distinct_fields(&b.movies));
    f
}

impl BatchBuffers {
    pub fn new(gpu: &Gpu, label: &str, capacity: usize) -> Self {
        let b = |name: &str, n: usize| gpu.buffer(&format!("{label}.{name}"), n);
        let distinct = |side: &str| DistinctBuffers {
            table_rows: b(&format!("{side}.table_rows"), capacity),
            // Read through uniform windows by the retrieval kernels.
            count: gpu.windowed_buffer(&format!("{label}.{side}.count"), capacity),
            offsets: b(&format!("{side}.offsets"), capacity + 1),
            rows: b(&format!("{side}.rows"), capacity),
            of_row: b(&format!("{side}.of_row"), capacity),
        };
        Self {
            capacity,
            user: b("user", capacity),
            movie: b("movie", capacity),
            rating: b("rating", capacity),
            users: distinct("users"),
            movies: distinct("movies"),
        }
    }

    fn fields(&self) -> [&wgpu::Buffer; FIELDS] {
        let (u, m) = (&self.users, &self.movies);
        [
            &self.user,
            &self.movie,
            &self.rating,
            &u.table_rows,
            &u.count,
            &u.offsets,
            &u.rows,
            &u.of_row,
            &m.table_rows,
            &m.count,
            &m.offsets,
            &m.rows,
            &m.of_row,
        ]
    }
}

/// The batches of an epoch. Up to `RESIDENT_BYTES` they live on the GPU, packed field after field, and a step
/// copies its slices into the work buffers (a few hundred KiB of device-local copies instead of host
/// uploads). Larger sets (tens of millions of ratings) are streamed: the host keeps the ratings in batch
/// order and each step builds its batch and writes it into the work buffers.
pub struct BatchStore {
    storage: Storage,
    /// Every batch `with_unit_movie_counts` (logQ correction).
    unit_counts: bool,
    pub batches: Vec<BatchShape>,
}

enum Storage {
    Resident {
        buffer: wgpu::Buffer,
        /// Per batch and field: (offset, len) in u32s.
        spans: Vec<[(usize, usize); FIELDS]>,
    },
    Streamed {
        /// The ratings in batch order: batch b is rows [b B, (b + 1) B).
        ordered: Ratings,
        batch_size: usize,
    },
}

/// Largest packed batch set kept on the GPU.
pub const RESIDENT_BYTES: u64 = 256 << 20;

/// What the host needs to know of a batch to size its dispatches.
#[derive(Clone, Copy, Debug)]
pub struct BatchShape {
    pub rows: usize,
    pub users: usize,
    pub movies: usize,
}

/// u32s of a packed batch of `rows` rows: 13 fields of `rows`, the two offsets fields one longer.
fn packed_len(rows: usize) -> usize {
    FIELDS * rows + 2
}

impl BatchStore {
    /// `ratings` taken in the order `perm`, cut into batches of `batch_size` rows (the last may be smaller).
    pub fn new(
        gpu: &Gpu,
        label: &str,
        ratings: &Ratings,
        perm: &[u32],
        batch_size: usize,
        unit_counts: bool,
    ) -> Result<Self> {
        Self::with_budget(
            gpu,
            label,
            ratings,
            perm,
            batch_size,
            unit_counts,
            RESIDENT_BYTES,
        )
    }

    /// As `new`, resident only up to `budget` bytes.
    pub fn with_budget(
        gpu: &Gpu,
        label: &str,
        ratings: &Ratings,
        perm: &[u32],
        batch_size: usize,
        unit_counts: bool,
        budget: u64,
    ) -> Result<Self> {
        if batch_size == 0 {
            anyhow::bail!("the batch size must be at least 1");
        }
        let bytes: u64 = perm
            .chunks(batch_size)
            .map(|c| packed_len(c.len()) as u64 * 4)
            .sum();
        if bytes <= budget.min(gpu.limits.max_buffer_size) {
            let mut data = Vec::with_capacity((bytes / 4) as usize);
            let mut spans = Vec::new();
            let mut batches = Vec::new();
            for chunk in perm.chunks(batch_size) {
                let b = batch_of(ratings, chunk).with_unit_movie_counts(unit_counts);
                spans.push(pack(&mut data, &b));
                batches.push(shape(&b));
            }
            return Ok(Self {
                storage: Storage::Resident {
                    buffer: gpu.upload(label, &data),
                    spans,
                },
                unit_counts,
                batches,
            });
        }
        let ordered = Ratings {
            user: perm.iter().map(|&i| ratings.user[i as usize]).collect(),
            movie: perm.iter().map(|&i| ratings.movie[i as usize]).collect(),
            rating: perm.iter().map(|&i| ratings.rating[i as usize]).collect(),
        };
        let batches = (0..ordered.len())
            .step_by(batch_size)
            .map(|r0| {
                shape(&Self::streamed_batch(
                    &ordered,
                    batch_size,
                    r0 / batch_size,
                    false,
                ))
            })
            .collect();
        Ok(Self {
            storage: Storage::Streamed {
                ordered,
                batch_size,
            },
            unit_counts,
            batches,
        })
    }

    /// Whether the batches live on the GPU (false: streamed from the host every step).
    pub fn resident(&self) -> bool {
        matches!(self.storage, Storage::Resident { .. })
    }

    fn streamed_batch(ordered: &Ratings, batch_size: usize, b: usize, unit_counts: bool) -> Batch {
        let r = b * batch_size..((b + 1) * batch_size).min(ordered.len());
        Batch::new(
            ordered.user[r.clone()].to_vec(),
            ordered.movie[r.clone()].to_vec(),
            ordered.rating[r].to_vec(),
        )
        .with_unit_movie_counts(unit_counts)
    }

    /// Replaces the batches with `ratings` in a new order `perm`, same batch size and storage (`--reshuffle`).
    pub fn rewrite(
        &mut self,
        gpu: &Gpu,
        label: &str,
        ratings: &Ratings,
        perm: &[u32],
    ) -> Result<()> {
        let batch_size = self.batches.first().map_or(1, |b| b.rows);
        let budget = if self.resident() { u64::MAX } else { 0 };
        *self = Self::with_budget(
            gpu,
            label,
            ratings,
            perm,
            batch_size,
            self.unit_counts,
            budget,
        )?;
        Ok(())
    }

    /// Puts batch `batch` into the work buffers: copies recorded into `enc`, or queue writes that land before
    /// the next submission.
    pub fn copy_to(
        &self,
        gpu: &Gpu,
        enc: &mut wgpu::CommandEncoder,
        batch: usize,
        work: &BatchBuffers,
    ) {
        match &self.storage {
            Storage::Resident { buffer, spans } => {
                for (&(off, len), dst) in spans[batch].iter().zip(work.fields()) {
                    if len > 0 {
                        enc.copy_buffer_to_buffer(buffer, off as u64 * 4, dst, 0, len as u64 * 4);
                    }
                }
            }
            Storage::Streamed {
                ordered,
                batch_size,
            } => {
                let b = Self::streamed_batch(ordered, *batch_size, batch, self.unit_counts);
                for (field, dst) in batch_fields(&b).iter().zip(work.fields()) {
                    if !field.is_empty() {
                        gpu.queue.write_buffer(dst, 0, bytemuck::cast_slice(field));
                    }
                }
            }
        }
    }
}

/// Appends batch `b`'s fields to `data`, each padded to its capacity (so that batches with the same rows
/// pack to the same size); returns their spans.
fn pack(data: &mut Vec<u32>, b: &Batch) -> [(usize, usize); FIELDS] {
    let mut span = [(0, 0); FIELDS];
    for (i, (s, f)) in span.iter_mut().zip(batch_fields(b)).enumerate() {
        *s = (data.len(), f.len());
        data.extend_from_slice(&f);
        let capacity = b.rows() + usize::from(i == 5 || i == 10); // the two offsets fields: rows + 1
        data.resize(data.len() + capacity - f.len(), 0);
    }
    span
}

fn shape(b: &Batch) -> BatchShape {
    BatchShape {
        rows: b.rows(),
        users: b.users.len(),
        movies: b.movies.len(),
    }
}

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
            let p = GatherParams {
                n: 0,
                dim4: d4,
                out_stride4: 2 * d4,
                out_offset4: off,
            };
            Launch::new(
                gpu,
                &k.embedding_gather,
                label,
                &[whole(table), whole(idx), whole(&a.x)],
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
                &dense_bindings(m, l.w1, l.k, l.h1, l.b1, &a.h1),
                &DenseParams::default(),
            ),
            layer2: Windowed::new(
                gpu,
                &k.dense_forward,
                "dense_forward (layer 2)",
                &a.h1,
                l.h1,
                a.capacity,
                &dense_bindings(m, l.w2, l.h1, l.h2, l.b2, &a.h2),
                &DenseParams::default(),
            ),
            head: Windowed::new(
                gpu,
                &k.rating_loss,
                "rating_loss",
                &a.h2,
                l.h2,
                a.capacity,
                &[
                    slice(m, l.w3, 256),
                    slice(m, l.b3, 4),
                    whole(&ids.rating),
                    whole(&a.pred),
                    whole(&a.sq_err),
                    whole(&a.dpred),
                    whole(&a.dh2),
                ],
                &RatingLossParams::default(),
            ),
            reduce: Launch::new(
                gpu,
                &k.sum_reduce,
                "sum_reduce (squared error)",
                &[whole(&a.sq_err), whole(losses)],
                &SumParams::default(),
            ),
            cfg,
        }
    }

    /// Sets the parameters for a batch of `rows`; `train` also writes dpred and dh2 with 2 * weight / rows.
    pub fn set(&self, gpu: &Gpu, rows: usize, train: bool, rating_weight: f32, slot: usize) {
        let c = &self.cfg;
        let (r, d4) = (rows as u32, (c.embedding_dim / 4) as u32);
        let gather = GatherParams {
            n: r,
            dim4: d4,
            out_stride4: 2 * d4,
            out_offset4: 0,
        };
        self.gather_user.set(gpu, &gather);
        self.gather_movie.set(
            gpu,
            &GatherParams {
                out_offset4: d4,
                ..gather
            },
        );
        for (layer, k, n) in [
            (&self.layer1, 2 * c.embedding_dim, c.hidden1),
            (&self.layer2, c.hidden1, c.hidden2),
        ] {
            for (l, row0, rows) in layer.windows(rows) {
                l.set(gpu, &DenseParams::new(row0, rows, k, n));
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
            &SumParams {
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
    mlp: &'a wgpu::Buffer,
    w: usize,
    k: usize,
    n: usize,
    b: usize,
    y: &'a wgpu::Buffer,
) -> Vec<wgpu::BindingResource<'a>> {
    let [lo, hi] = weight_windows(mlp, w, k, n);
    vec![lo, hi, slice(mlp, b, 256), whole(y)]
}

/// Distinct-user / distinct-movie embeddings and the retrieval task's outputs, capacity B each.
pub struct RetrievalBuffers {
    pub user_d: wgpu::Buffer,     // (NU, D), read through uniform windows
    pub movie_d: wgpu::Buffer,    // (NM, D), read through uniform windows
    pub state: wgpu::Buffer,      // (NU, D + 4) online-softmax state between movie windows
    pub user_stat: wgpu::Buffer,  // (NU, 4): (lse, row count, 0, 0), read through uniform windows
    pub loss: wgpu::Buffer,       // (NU,)
    pub grad_user: wgpu::Buffer,  // (NU, D)
    pub grad_movie: wgpu::Buffer, // (NM, D)
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
pub struct RetrievalForward {
    gather_users: Launch,
    gather_movies: Launch,
    users: Vec<Launch>, // one per window of distinct movies
    window_rows: usize,
    reduce: Launch,
    dim4: u32,
}

impl RetrievalForward {
    pub fn new(
        gpu: &Gpu,
        k: &Kernels,
        model: &GpuModel,
        ids: &BatchBuffers,
        r: &RetrievalBuffers,
        losses: &wgpu::Buffer,
    ) -> Self {
        let d = model.cfg.embedding_dim;
        let dim4 = (d / 4) as u32;
        let gather = |label, table, idx, out| {
            let p = GatherParams {
                n: 0,
                dim4,
                out_stride4: dim4,
                out_offset4: 0,
            };
            Launch::new(
                gpu,
                &k.embedding_gather,
                label,
                &[whole(table), whole(idx), whole(out)],
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
                    &[
                        whole(&r.user_d),
                        window(&r.movie_d, c0 * d),
                        window(&m.count, c0),
                        whole(&r.movie_d),
                        whole(&u.count),
                        whole(&u.offsets),
                        whole(&u.rows),
                        whole(&m.of_row),
                        whole(&r.state),
                        whole(&r.user_stat),
                        whole(&r.loss),
                        whole(&r.grad_user),
                    ],
                    &RetrievalParams::default(),
                )
            })
            .collect();
        Self {
            gather_users: gather(
                "embedding_gather (distinct users)",
                &model.user_emb,
                &u.table_rows,
                &r.user_d,
            ),
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
                &[whole(&r.loss), whole(losses)],
                &SumParams::default(),
            ),
            dim4,
        }
    }

    pub fn set(&self, gpu: &Gpu, b: &BatchShape, weight: f32, slot: usize) {
        let g = GatherParams {
            n: b.users as u32,
            dim4: self.dim4,
            out_stride4: self.dim4,
            out_offset4: 0,
        };
        self.gather_users.set(gpu, &g);
        self.gather_movies.set(
            gpu,
            &GatherParams {
                n: b.movies as u32,
                ..g
            },
        );
        for (l, _, movies, first, last) in window_span(&self.users, self.window_rows, b.movies) {
            let p = RetrievalParams::new(b.users, movies, weight, first, last);
            l.set(gpu, &p);
        }
        self.reduce.set(
            gpu,
            &SumParams {
                n: b.users as u32,
                slot: slot as u32,
                _pad: [0; 2],
            },
        );
    }

    pub fn encode(&self, pass: &mut Pass, b: &BatchShape) {
        self.gather_users.run(pass, b.users as u32 * self.dim4);
        self.gather_movies.run(pass, b.movies as u32 * self.dim4);
        for (l, ..) in window_span(&self.users, self.window_rows, b.movies) {
            l.run(pass, b.users as u32);
        }
        self.reduce.run_one_group(pass);
    }
}
