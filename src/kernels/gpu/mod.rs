//! The GPU family of kernels (`shaders/gpu/`), for real GPUs: operands come from storage buffers, each
//! dense layer is one tiled dispatch over the whole batch (64 x 64 tiles in workgroup memory, 4 x 4 blocks
//! in registers), weight gradients are split-K partials added in a fixed order, and everything stays within
//! WebGPU's default limits (8 storage buffers per stage, 16 KiB of workgroup memory, 256 invocations), so
//! the same shaders can run in a browser. Here: their parameters, pipelines, the packed batch they read,
//! and one launcher per kernel; `step` plans a whole joint training step on them (`GpuStep`).
//!
//! Entry points end in `_gpu`, so that labels, profiles and `kernels::cost` never mix them up with the
//! windowed family's kernels of the same maths. `adagrad_dense`, `sum_reduce` and `pair_ranks` already
//! read storage buffers only; the family reuses them as they are.

pub mod evaluate;
pub mod step;
pub mod top_k;

use crate::data::batches::Batch;
use crate::gpu::batches::BatchBuffers;
use crate::gpu::launch::Launch;
use crate::gpu::shader::Shader;
use crate::gpu::{whole, Gpu, Kernel};
use crate::kernels::windowed::{
    AdagradDense, AdagradDenseBindings, AdagradDenseParams, PairRanks, PairRanksParams, SumReduce,
    SumReduceBindings, SumReduceParams,
};
use anyhow::{bail, Result};
use bytemuck::{Pod, Zeroable};

pub use step::GpuStep;

macro_rules! shader {
    ($name:literal) => {
        include_str!(concat!("../../../shaders/gpu/", $name, ".wgsl"))
    };
}

/// Every WGSL source of `shaders/gpu/` with its file stem (tests validate them all with naga).
pub const SHADERS: &[(&str, &str)] = &[
    (
        "dense_gather_forward_gpu",
        shader!("dense_gather_forward_gpu"),
    ),
    ("dense_forward_gpu", shader!("dense_forward_gpu")),
    ("rating_loss_gpu", shader!("rating_loss_gpu")),
    (
        "dense_backward_data_gpu",
        shader!("dense_backward_data_gpu"),
    ),
    (
        "dense_backward_weights_gpu",
        shader!("dense_backward_weights_gpu"),
    ),
    (
        "dense_gather_backward_weights_gpu",
        shader!("dense_gather_backward_weights_gpu"),
    ),
    ("retrieval_lse_gpu", shader!("retrieval_lse_gpu")),
    ("retrieval_grads_gpu", shader!("retrieval_grads_gpu")),
    ("embedding_adagrad_gpu", shader!("embedding_adagrad_gpu")),
    ("candidate_scores_gpu", shader!("candidate_scores_gpu")),
    ("brute_force_top_k_gpu", shader!("brute_force_top_k_gpu")),
];

pub(crate) fn source(name: &str) -> &'static str {
    SHADERS
        .iter()
        .chain(crate::kernels::windowed::SHADERS)
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .expect("shader listed in SHADERS")
}

/// Rows (and columns) of one output tile of the dense kernels.
pub const TILE: usize = 64;

/// Most parts the retrieval block splits the other side into (`retrieval_parts`).
pub const MAX_PARTS: usize = 16;

/// Largest D the retrieval kernels keep in registers (16 vec4s).
pub const MAX_DIM: usize = 64;

/// What the family needs of a device, checked before any pipeline is built: one message naming the limit
/// instead of a wgpu validation error.
pub fn check_limits(gpu: &Gpu) -> Result<()> {
    let l = &gpu.limits;
    for (name, have, need) in [
        (
            "max_storage_buffers_per_shader_stage",
            l.max_storage_buffers_per_shader_stage,
            7,
        ),
        (
            "max_compute_workgroup_storage_size",
            l.max_compute_workgroup_storage_size,
            8448,
        ),
        (
            "max_compute_invocations_per_workgroup",
            l.max_compute_invocations_per_workgroup,
            256,
        ),
        (
            "max_compute_workgroup_size_x",
            l.max_compute_workgroup_size_x,
            256,
        ),
    ] {
        if have < need {
            bail!(
                "adapter {:?} allows {name} = {have}, the GPU kernel family needs {need}; use the windowed \
                 kernels (--kernels windowed)",
                gpu.adapter.name
            );
        }
    }
    Ok(())
}

/// Shape rules of the family: vec4 loads everywhere (D, H1, H2 multiples of 4), D in registers
/// (at most 64), and rating_loss_gpu's two w3 columns per invocation (H2 at most 512).
pub fn check_shape(embedding_dim: usize, hidden1: usize, hidden2: usize) -> Result<()> {
    check_dim(embedding_dim)?;
    for (name, h, max) in [("first", hidden1, usize::MAX), ("second", hidden2, 512)] {
        if h == 0 || !h.is_multiple_of(4) || h > max {
            bail!("the GPU kernels need the {name} hidden width to be a positive multiple of 4 (at most {max}), got {h}");
        }
    }
    Ok(())
}

fn check_dim(d: usize) -> Result<()> {
    if d == 0 || !d.is_multiple_of(4) || d > MAX_DIM {
        bail!("the GPU kernels need an embedding dimension that is a multiple of 4, at most {MAX_DIM}; got {d}");
    }
    Ok(())
}

/// Where each column of a batch lives in a packed batch buffer (u32 offsets), for batches of up to
/// `capacity` rows: the GPU-family kernels take the whole batch as one storage binding, which keeps the
/// retrieval kernel within 8 storage buffers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchLayout {
    pub capacity: usize,
    pub user: u32,   // (B,) table row of each row's user
    pub movie: u32,  // (B,) and movie
    pub rating: u32, // (B,) f32 bits
    pub users: DistinctLayout,
    pub movies: DistinctLayout,
    /// u32s in all.
    pub len: usize,
}

/// One id column's distinct structure (`batches::Distinct`) in a packed batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DistinctLayout {
    pub table_rows: u32, // (n,)
    pub count: u32,      // (n,) f32 bits
    pub offsets: u32,    // (n + 1,) CSR into rows
    pub rows: u32,       // (B,) batch rows grouped by distinct id
}

impl BatchLayout {
    pub fn new(capacity: usize) -> Self {
        let mut at = 0;
        let mut take = |n: usize| {
            let o = at as u32;
            at += n;
            o
        };
        let (user, movie, rating) = (take(capacity), take(capacity), take(capacity));
        let mut distinct = || DistinctLayout {
            table_rows: take(capacity),
            count: take(capacity),
            offsets: take(capacity + 1),
            rows: take(capacity),
        };
        let (users, movies) = (distinct(), distinct());
        Self {
            capacity,
            user,
            movie,
            rating,
            users,
            movies,
            len: at,
        }
    }

    /// `b` packed (unused capacity zero).
    pub fn pack(&self, b: &Batch) -> Vec<u32> {
        assert!(b.rows() <= self.capacity, "batch larger than the layout");
        let mut v = vec![0u32; self.len];
        let mut put = |at: u32, data: &[u32]| {
            v[at as usize..at as usize + data.len()].copy_from_slice(data);
        };
        let bits = |f: &[f32]| f.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        put(self.user, &b.user);
        put(self.movie, &b.movie);
        put(self.rating, &bits(&b.rating));
        for (l, d) in [(self.users, &b.users), (self.movies, &b.movies)] {
            put(l.table_rows, &d.table_rows);
            put(l.count, &bits(&d.count));
            put(l.offsets, &d.offsets);
            put(l.rows, &d.rows);
        }
        v
    }
}

/// A packed batch on the GPU (see `BatchLayout`).
pub struct PackedBatch {
    pub layout: BatchLayout,
    pub buffer: wgpu::Buffer,
}

impl PackedBatch {
    pub fn new(gpu: &Gpu, label: &str, capacity: usize) -> Self {
        let layout = BatchLayout::new(capacity);
        Self {
            buffer: gpu.buffer(label, layout.len),
            layout,
        }
    }

    /// Writes `b` with a queue write (lands before the next submission).
    pub fn write(&self, gpu: &Gpu, b: &Batch) {
        let data = self.layout.pack(b);
        gpu.queue
            .write_buffer(&self.buffer, 0, bytemuck::cast_slice(&data));
    }

    /// Records copies of the work buffers `ids` (what `BatchStore::copy_to` fills) into the packed batch:
    /// device-local copies, no dispatch.
    pub fn copy_from(&self, enc: &mut wgpu::CommandEncoder, ids: &BatchBuffers) {
        let (l, cap) = (&self.layout, self.layout.capacity.min(ids.capacity));
        let mut copy = |src: &wgpu::Buffer, at: u32, n: usize| {
            enc.copy_buffer_to_buffer(src, 0, &self.buffer, at as u64 * 4, n as u64 * 4);
        };
        copy(&ids.user, l.user, cap);
        copy(&ids.movie, l.movie, cap);
        copy(&ids.rating, l.rating, cap);
        for (d, b) in [(l.users, &ids.users), (l.movies, &ids.movies)] {
            copy(&b.table_rows, d.table_rows, cap);
            copy(&b.count, d.count, cap);
            copy(&b.offsets, d.offsets, cap + 1);
            copy(&b.rows, d.rows, cap);
        }
    }
}

/// Every compiled pipeline of the family. D is baked into the retrieval kernels as an override constant.
pub struct Kernels {
    pub dense_gather_forward: Kernel<DenseGatherForward>,
    pub dense_forward: Kernel<DenseForward>,
    pub rating_loss: Kernel<RatingLoss>,
    pub dense_backward_data: Kernel<DenseBackwardData>,
    pub dense_backward_data_linear: Kernel<DenseBackwardData>,
    pub dense_backward_weights: Kernel<DenseBackwardWeights>,
    pub dense_gather_backward_weights: Kernel<DenseGatherBackwardWeights>,
    pub adagrad_dense: Kernel<AdagradDense>,
    pub sum_reduce: Kernel<SumReduce>,
    pub retrieval_lse: Kernel<RetrievalLse>,
    pub retrieval_grads: Kernel<RetrievalGrads>,
    pub embedding_adagrad: Kernel<EmbeddingAdagrad>,
    pub candidate_scores: Kernel<CandidateScores>,
    pub pair_ranks: Kernel<PairRanks>,
    pub brute_force_top_k: Kernel<BruteForceTopK>,
}

/// The shader's pipeline with override constants; the shared kernels' sources are the windowed family's.
pub(crate) fn compile<S: Shader>(gpu: &Gpu, constants: &[(&str, f64)]) -> Result<Kernel<S>> {
    Kernel::new(gpu, source(S::NAME), constants, crate::kernels::cost)
}

impl Kernels {
    pub fn new(gpu: &Gpu, embedding_dim: usize) -> Result<Self> {
        check_limits(gpu)?;
        check_dim(embedding_dim)?;
        let d4 = [("D4", (embedding_dim / 4) as f64)];
        Ok(Self {
            dense_gather_forward: compile(gpu, &[("RELU", 1.0)])?,
            dense_forward: compile(gpu, &[("RELU", 1.0)])?,
            rating_loss: compile(gpu, &[])?,
            dense_backward_data: compile(gpu, &[("MASK", 1.0)])?,
            dense_backward_data_linear: Kernel::variant(
                gpu,
                "dense_backward_data_linear_gpu",
                source(DenseBackwardData::NAME),
                &[("MASK", 0.0)],
                crate::kernels::cost,
            )?,
            dense_backward_weights: compile(gpu, &[])?,
            dense_gather_backward_weights: compile(gpu, &[])?,
            adagrad_dense: compile(gpu, &[])?,
            sum_reduce: compile(gpu, &[])?,
            retrieval_lse: compile(gpu, &d4)?,
            retrieval_grads: compile(gpu, &d4)?,
            embedding_adagrad: compile(gpu, &[])?,
            candidate_scores: compile(gpu, &[])?,
            pair_ranks: compile(gpu, &[])?,
            brute_force_top_k: compile(gpu, &d4)?,
        })
    }
}

/// Workgroup grids, mirroring each kernel's indexing.
pub mod groups {
    use super::TILE;

    fn tiles(n: usize) -> u32 {
        n.div_ceil(TILE) as u32
    }

    /// dense_forward_gpu and dense_gather_forward_gpu: one workgroup per 64 x 64 tile of y (B, N).
    pub fn dense_forward(rows: usize, n: usize) -> (u32, u32, u32) {
        (tiles(n), tiles(rows), 1)
    }

    /// dense_backward_data_gpu: one workgroup per 64 x 64 tile of dx (B, K).
    pub fn dense_backward_data(rows: usize, k: usize) -> (u32, u32, u32) {
        (tiles(k), tiles(rows), 1)
    }

    /// dense_(gather_)backward_weights_gpu: one workgroup per 64 x 64 tile of dW (K, N) and split.
    pub fn dense_backward_weights(k: usize, n: usize, splits: usize) -> (u32, u32, u32) {
        (tiles(n), tiles(k), splits as u32)
    }

    /// rating_loss_gpu: one workgroup per split.
    pub fn rating_loss(splits: usize) -> (u32, u32, u32) {
        (splits as u32, 1, 1)
    }

    /// retrieval_lse_gpu: 64 users per workgroup, times the parts of the movies.
    pub fn retrieval_lse(users: usize, parts: usize) -> (u32, u32, u32) {
        (tiles(users), parts as u32, 1)
    }

    /// candidate_scores_gpu: one workgroup per 64 queries x 64 candidates.
    pub fn candidate_scores(queries: usize, candidates: usize) -> (u32, u32, u32) {
        (tiles(candidates), tiles(queries), 1)
    }

    /// brute_force_top_k_gpu: one workgroup per query, on a 2-D grid past 65,535 queries.
    pub fn brute_force_top_k(queries: usize) -> (u32, u32, u32) {
        let (x, y) = crate::gpu::grid(queries as u32);
        (x, y, 1)
    }

    /// retrieval_grads_gpu: the user tiles then the movie tiles, times the parts of the other side.
    pub fn retrieval_grads(users: usize, movies: usize, parts: usize) -> (u32, u32, u32) {
        (tiles(users) + tiles(movies), parts as u32, 1)
    }
}

/// Splits of `rows` rows of `split_rows` each (the last may be shorter; at least one).
pub fn splits(rows: usize, split_rows: usize) -> usize {
    rows.div_ceil(split_rows).max(1)
}

/// Parts the retrieval block splits the other side into: enough workgroups to fill a GPU at the
/// tutorial's size (about 900 x 1,500 distinct rows: 8 parts), at most MAX_PARTS, at least one.
pub fn retrieval_parts(users: usize, movies: usize) -> usize {
    users.min(movies).div_ceil(128).clamp(1, MAX_PARTS)
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct DenseForwardParams {
    pub rows: u32,
    pub k4: u32,
    pub n4: u32,
    pub w_offset4: u32,
    pub b_offset4: u32,
    /// dense_gather_forward_gpu only: the batch's user and movie columns in the packed batch.
    pub user_at: u32,
    pub movie_at: u32,
    pub _pad: u32,
}

impl DenseForwardParams {
    /// A (K, N) layer at `w` with bias at `b` (MLP vector offsets) over `rows` rows.
    pub fn new(rows: usize, k: usize, n: usize, w: usize, b: usize) -> Self {
        Self {
            rows: rows as u32,
            k4: (k / 4) as u32,
            n4: (n / 4) as u32,
            w_offset4: (w / 4) as u32,
            b_offset4: (b / 4) as u32,
            ..Default::default()
        }
    }

    /// The same with x gathered from the tables through the packed batch's id columns.
    pub fn gather(self, l: &BatchLayout) -> Self {
        Self {
            user_at: l.user,
            movie_at: l.movie,
            ..self
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct DenseBackwardDataParams {
    pub rows: u32,
    pub k4: u32,
    pub n4: u32,
    pub w_offset4: u32,
}

impl DenseBackwardDataParams {
    pub fn new(rows: usize, k: usize, n: usize, w: usize) -> Self {
        Self {
            rows: rows as u32,
            k4: (k / 4) as u32,
            n4: (n / 4) as u32,
            w_offset4: (w / 4) as u32,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct DenseBackwardWeightsParams {
    pub rows: u32,
    pub k4: u32,
    pub n4: u32,
    pub split_rows: u32,
    pub grad_len4: u32,
    pub w_offset4: u32,
    pub b_offset4: u32,
    /// dense_gather_backward_weights_gpu only: the batch's user and movie columns.
    pub user_at: u32,
    pub movie_at: u32,
    pub _pad: [u32; 3],
}

impl DenseBackwardWeightsParams {
    /// Partials of a (K, N) layer whose W and b sit at `w` and `b` in each (L,) slice of the gradient.
    pub fn new(
        rows: usize,
        k: usize,
        n: usize,
        split_rows: usize,
        grad_len: usize,
        w: usize,
        b: usize,
    ) -> Self {
        assert!(split_rows.is_multiple_of(16) && split_rows > 0);
        Self {
            rows: rows as u32,
            k4: (k / 4) as u32,
            n4: (n / 4) as u32,
            split_rows: split_rows as u32,
            grad_len4: (grad_len / 4) as u32,
            w_offset4: (w / 4) as u32,
            b_offset4: (b / 4) as u32,
            ..Default::default()
        }
    }

    pub fn gather(self, l: &BatchLayout) -> Self {
        Self {
            user_at: l.user,
            movie_at: l.movie,
            ..self
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RatingLossParams {
    pub rows: u32,
    pub h4: u32,
    pub train: u32,
    pub scale: f32,
    pub split_rows: u32,
    pub grad_len: u32,
    pub w3_offset: u32,
    pub b3_offset: u32,
    pub rating_at: u32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RetrievalLseParams {
    pub users: u32,
    pub movies: u32,
    pub chunk: u32,
    pub user_rows_at: u32,
    pub movie_rows_at: u32,
    pub movie_count_at: u32,
    /// 1 / T of `--temperature` (1: none).
    pub inv_temperature: f32,
    pub _pad: u32,
}

impl RetrievalLseParams {
    pub fn new(users: usize, movies: usize, parts: usize, l: &BatchLayout) -> Self {
        Self {
            users: users as u32,
            movies: movies as u32,
            chunk: movies.div_ceil(parts) as u32,
            user_rows_at: l.users.table_rows,
            movie_rows_at: l.movies.table_rows,
            movie_count_at: l.movies.count,
            inv_temperature: 1.0,
            _pad: 0,
        }
    }

    /// With `--temperature T`: the logits divided by T.
    pub fn tempered(self, temperature: Option<f32>) -> Self {
        Self {
            inv_temperature: temperature.map_or(1.0, |t| 1.0 / t),
            ..self
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RetrievalGradsParams {
    pub users: u32,
    pub movies: u32,
    pub user_chunk: u32,
    pub movie_chunk: u32,
    pub parts: u32,
    pub user_tiles: u32,
    pub weight: f32,
    /// 1 / T of `--temperature` (1: none).
    pub inv_temperature: f32,
    pub user_at: u32,
    pub movie_at: u32,
    pub u_rows_at: u32,
    pub u_count_at: u32,
    pub u_offsets_at: u32,
    pub u_list_at: u32,
    pub m_rows_at: u32,
    pub m_count_at: u32,
    pub m_offsets_at: u32,
    pub m_list_at: u32,
    pub _pad1: [u32; 2],
}

impl RetrievalGradsParams {
    pub fn new(users: usize, movies: usize, parts: usize, weight: f32, l: &BatchLayout) -> Self {
        Self {
            users: users as u32,
            movies: movies as u32,
            user_chunk: users.div_ceil(parts) as u32,
            movie_chunk: movies.div_ceil(parts) as u32,
            parts: parts as u32,
            user_tiles: users.div_ceil(64) as u32,
            weight,
            inv_temperature: 1.0,
            user_at: l.user,
            movie_at: l.movie,
            u_rows_at: l.users.table_rows,
            u_count_at: l.users.count,
            u_offsets_at: l.users.offsets,
            u_list_at: l.users.rows,
            m_rows_at: l.movies.table_rows,
            m_count_at: l.movies.count,
            m_offsets_at: l.movies.offsets,
            m_list_at: l.movies.rows,
            _pad1: [0; 2],
        }
    }

    /// With `--temperature T`: the logits divided by T, and the users' gradient through the division.
    pub fn tempered(self, temperature: Option<f32>) -> Self {
        Self {
            inv_temperature: temperature.map_or(1.0, |t| 1.0 / t),
            ..self
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct EmbeddingAdagradParams {
    pub n: u32,
    pub dim4: u32,
    pub parts: u32,
    pub dx_stride4: u32,
    pub dx_offset4: u32,
    pub use_dense: u32,
    pub use_rows: u32,
    pub learning_rate: f32,
    pub epsilon: f32,
    /// L2 penalty (l2 / 2) |row|^2 on the touched rows; 0 in the tutorial.
    pub l2: f32,
    pub rows_at: u32,
    pub offsets_at: u32,
    pub list_at: u32,
    /// Write each row's gradient into `table` (a feature tower's) instead of updating.
    pub grad_out: u32,
    pub _pad: [u32; 2],
}

/// What one side's embedding_adagrad_gpu does with its gradient sources.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddingUpdate {
    /// Retrieval partials per row (0: retrieval off).
    pub parts: usize,
    /// Add the rows of dx (rating task on).
    pub use_rows: bool,
    pub learning_rate: f32,
    pub epsilon: f32,
    pub l2: f32,
}

impl EmbeddingAdagradParams {
    /// The user side (`movies` false: columns 0..D of dx) or the movie side (D..2D) of a batch with `n`
    /// distinct rows on that side.
    pub fn new(n: usize, dim: usize, movies: bool, u: EmbeddingUpdate, l: &BatchLayout) -> Self {
        let d = if movies { l.movies } else { l.users };
        Self {
            n: n as u32,
            dim4: (dim / 4) as u32,
            parts: u.parts as u32,
            dx_stride4: (dim / 2) as u32,
            dx_offset4: if movies { (dim / 4) as u32 } else { 0 },
            use_dense: (u.parts > 0) as u32,
            use_rows: u.use_rows as u32,
            learning_rate: u.learning_rate,
            epsilon: u.epsilon,
            l2: u.l2,
            rows_at: d.table_rows,
            offsets_at: d.offsets,
            list_at: d.rows,
            grad_out: 0,
            _pad: [0; 2],
        }
    }
}

impl RatingLossParams {
    /// The head over `rows` rows; `train` also writes dh2 and the head's partial gradients with scale
    /// 2 * rating_weight / rows.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rows: usize,
        h2: usize,
        train: bool,
        rating_weight: f32,
        split_rows: usize,
        grad_len: usize,
        w3: usize,
        b3: usize,
        l: &BatchLayout,
    ) -> Self {
        Self {
            rows: rows as u32,
            h4: (h2 / 4) as u32,
            train: train as u32,
            scale: 2.0 * rating_weight / rows.max(1) as f32,
            split_rows: split_rows as u32,
            grad_len: grad_len as u32,
            w3_offset: w3 as u32,
            b3_offset: b3 as u32,
            rating_at: l.rating,
            _pad: [0; 3],
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct CandidateScoresParams {
    pub queries: u32,
    pub candidates: u32,
    pub dim4: u32,
    /// The tile's first query in the query list.
    pub first: u32,
}

/// Largest K of brute_force_top_k_gpu (the slots its pool keeps); the same as `serve::MAX_K`.
pub const MAX_TOP_K: usize = 256;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct BruteForceTopKParams {
    pub queries: u32,
    /// K, 1..=MAX_TOP_K.
    pub k: u32,
    pub candidates: u32,
    /// The dispatch's first query in the query list and the exclusion offsets.
    pub first: u32,
}

crate::gpu::shader::shaders! {
    /// y (B, N) = act(x (B, K) W + b), W and b in `mlp`.
    DenseForward = "dense_forward_gpu" (DenseForwardParams) DenseForwardBindings { x, mlp, y }
    /// y (B, N) = act(concat(user_emb[user], movie_emb[movie]) W + b).
    DenseGatherForward = "dense_gather_forward_gpu" (DenseForwardParams)
        DenseGatherForwardBindings { user_emb, movie_emb, batch, mlp, y }
    /// The head, its squared error, dh2 and the head's partial gradients.
    RatingLoss = "rating_loss_gpu" (RatingLossParams)
        RatingLossBindings { h2, mlp, batch, pred, sq_err, dh2, grad }
    /// dx (B, K) = (dy (B, N) W^T) * (h > 0).
    DenseBackwardData = "dense_backward_data_gpu" (DenseBackwardDataParams)
        DenseBackwardDataBindings { dy, mlp, h, dx }
    /// Split partials of (x^T dy, sum dy).
    DenseBackwardWeights = "dense_backward_weights_gpu" (DenseBackwardWeightsParams)
        DenseBackwardWeightsBindings { x, dy, grad }
    /// As dense_backward_weights with x gathered from the tables.
    DenseGatherBackwardWeights = "dense_gather_backward_weights_gpu" (DenseBackwardWeightsParams)
        DenseGatherBackwardWeightsBindings { user_emb, movie_emb, batch, dy, grad }
    /// The parts' online-softmax states of every distinct user.
    RetrievalLse = "retrieval_lse_gpu" (RetrievalLseParams)
        RetrievalLseBindings { user_emb, movie_emb, batch, part }
    /// Per-user losses and both sides' partial gradients.
    RetrievalGrads = "retrieval_grads_gpu" (RetrievalGradsParams)
        RetrievalGradsBindings { user_emb, movie_emb, batch, lse_part, grad_user, grad_movie, loss }
    /// One table's gradient scatter and sparse Adagrad.
    EmbeddingAdagrad = "embedding_adagrad_gpu" (EmbeddingAdagradParams)
        EmbeddingAdagradBindings { grad_part, dx, batch, table, accum }
    /// Scores (Q, C) of listed queries against listed candidates.
    CandidateScores = "candidate_scores_gpu" (CandidateScoresParams)
        CandidateScoresBindings { user_emb, query_rows, movie_emb, candidate_rows, scores }
    /// The top K of listed queries among listed candidates, skipping each query's seen run.
    BruteForceTopK = "brute_force_top_k_gpu" (BruteForceTopKParams)
        BruteForceTopKBindings {
            query_table, query_rows, candidate_table, candidate_rows, seen_offsets, seen, out_index,
            out_score,
        }
}

// Launchers: one per kernel, its bindings as typed arguments; the parameters are set later
// (`Launch::set`) and the grid comes from `groups`.

/// dense_forward_gpu: y (B, N) = act(x (B, K) W + b), W and b in `mlp`.
pub fn dense_forward(
    gpu: &Gpu,
    kernel: &Kernel<DenseForward>,
    label: &str,
    x: &wgpu::Buffer,
    mlp: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let b = DenseForwardBindings {
        x: whole(x),
        mlp: whole(mlp),
        y: whole(y),
    };
    Launch::new(gpu, kernel, label, b, &DenseForwardParams::default())
}

/// dense_gather_forward_gpu: y (B, N) = act(concat(user_emb[user], movie_emb[movie]) W + b).
pub fn dense_gather_forward(
    gpu: &Gpu,
    kernel: &Kernel<DenseGatherForward>,
    label: &str,
    (user_emb, movie_emb): (&wgpu::Buffer, &wgpu::Buffer),
    batch: &PackedBatch,
    mlp: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let b = DenseGatherForwardBindings {
        user_emb: whole(user_emb),
        movie_emb: whole(movie_emb),
        batch: whole(&batch.buffer),
        mlp: whole(mlp),
        y: whole(y),
    };
    Launch::new(gpu, kernel, label, b, &DenseForwardParams::default())
}

/// dense_backward_data_gpu: dx (B, K) = (dy (B, N) W^T) * (h > 0); `h` is ignored by the linear kernel
/// (bind any buffer).
pub fn dense_backward_data(
    gpu: &Gpu,
    kernel: &Kernel<DenseBackwardData>,
    label: &str,
    dy: &wgpu::Buffer,
    mlp: &wgpu::Buffer,
    h: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Launch {
    let b = DenseBackwardDataBindings {
        dy: whole(dy),
        mlp: whole(mlp),
        h: whole(h),
        dx: whole(dx),
    };
    Launch::new(gpu, kernel, label, b, &DenseBackwardDataParams::default())
}

/// dense_backward_weights_gpu: split partials of (x^T dy, sum dy) into grad (S, L).
pub fn dense_backward_weights(
    gpu: &Gpu,
    kernel: &Kernel<DenseBackwardWeights>,
    label: &str,
    x: &wgpu::Buffer,
    dy: &wgpu::Buffer,
    grad: &wgpu::Buffer,
) -> Launch {
    let b = DenseBackwardWeightsBindings {
        x: whole(x),
        dy: whole(dy),
        grad: whole(grad),
    };
    Launch::new(gpu, kernel, label, b, &Default::default())
}

/// dense_gather_backward_weights_gpu: as dense_backward_weights with x gathered from the tables.
pub fn dense_gather_backward_weights(
    gpu: &Gpu,
    kernel: &Kernel<DenseGatherBackwardWeights>,
    label: &str,
    (user_emb, movie_emb): (&wgpu::Buffer, &wgpu::Buffer),
    batch: &PackedBatch,
    dy: &wgpu::Buffer,
    grad: &wgpu::Buffer,
) -> Launch {
    let b = DenseGatherBackwardWeightsBindings {
        user_emb: whole(user_emb),
        movie_emb: whole(movie_emb),
        batch: whole(&batch.buffer),
        dy: whole(dy),
        grad: whole(grad),
    };
    Launch::new(gpu, kernel, label, b, &Default::default())
}

/// Outputs of rating_loss_gpu.
pub struct RatingLossOutputs<'a> {
    pub pred: &'a wgpu::Buffer,   // (B,)
    pub sq_err: &'a wgpu::Buffer, // (B,)
    pub dh2: &'a wgpu::Buffer,    // (B, H2)
    pub grad: &'a wgpu::Buffer,   // (S, L): the head's partials
}

/// rating_loss_gpu: the head, its squared error, dh2 and the head's partial gradients.
pub fn rating_loss(
    gpu: &Gpu,
    kernel: &Kernel<RatingLoss>,
    label: &str,
    h2: &wgpu::Buffer,
    mlp: &wgpu::Buffer,
    batch: &PackedBatch,
    out: RatingLossOutputs,
) -> Launch {
    let b = RatingLossBindings {
        h2: whole(h2),
        mlp: whole(mlp),
        batch: whole(&batch.buffer),
        pred: whole(out.pred),
        sq_err: whole(out.sq_err),
        dh2: whole(out.dh2),
        grad: whole(out.grad),
    };
    Launch::new(gpu, kernel, label, b, &RatingLossParams::default())
}

/// retrieval_lse_gpu: the parts' online-softmax states (P, NU) of every distinct user.
pub fn retrieval_lse(
    gpu: &Gpu,
    kernel: &Kernel<RetrievalLse>,
    label: &str,
    (user_emb, movie_emb): (&wgpu::Buffer, &wgpu::Buffer),
    batch: &PackedBatch,
    lse_part: &wgpu::Buffer,
) -> Launch {
    let b = RetrievalLseBindings {
        user_emb: whole(user_emb),
        movie_emb: whole(movie_emb),
        batch: whole(&batch.buffer),
        part: whole(lse_part),
    };
    Launch::new(gpu, kernel, label, b, &RetrievalLseParams::default())
}

/// Outputs of retrieval_grads_gpu.
pub struct RetrievalGradsOutputs<'a> {
    pub grad_user: &'a wgpu::Buffer,  // (P, NU, D)
    pub grad_movie: &'a wgpu::Buffer, // (P, NM, D)
    pub loss: &'a wgpu::Buffer,       // (NU,)
}

/// retrieval_grads_gpu: per-user losses and both sides' partial gradients.
pub fn retrieval_grads(
    gpu: &Gpu,
    kernel: &Kernel<RetrievalGrads>,
    label: &str,
    (user_emb, movie_emb): (&wgpu::Buffer, &wgpu::Buffer),
    batch: &PackedBatch,
    lse_part: &wgpu::Buffer,
    out: RetrievalGradsOutputs,
) -> Launch {
    let b = RetrievalGradsBindings {
        user_emb: whole(user_emb),
        movie_emb: whole(movie_emb),
        batch: whole(&batch.buffer),
        lse_part: whole(lse_part),
        grad_user: whole(out.grad_user),
        grad_movie: whole(out.grad_movie),
        loss: whole(out.loss),
    };
    Launch::new(gpu, kernel, label, b, &RetrievalGradsParams::default())
}

/// embedding_adagrad_gpu: one table's sparse Adagrad with its gradient scatter.
#[allow(clippy::too_many_arguments)]
pub fn embedding_adagrad(
    gpu: &Gpu,
    kernel: &Kernel<EmbeddingAdagrad>,
    label: &str,
    grad_part: &wgpu::Buffer,
    dx: &wgpu::Buffer,
    batch: &PackedBatch,
    table: &wgpu::Buffer,
    accum: &wgpu::Buffer,
) -> Launch {
    let b = EmbeddingAdagradBindings {
        grad_part: whole(grad_part),
        dx: whole(dx),
        batch: whole(&batch.buffer),
        table: whole(table),
        accum: whole(accum),
    };
    Launch::new(gpu, kernel, label, b, &EmbeddingAdagradParams::default())
}

/// adagrad_dense (shared with the windowed family): sums the S partials and updates every MLP parameter.
pub fn adagrad_dense(
    gpu: &Gpu,
    kernel: &Kernel<AdagradDense>,
    label: &str,
    grad: &wgpu::Buffer,
    param: &wgpu::Buffer,
    accum: &wgpu::Buffer,
) -> Launch {
    let b = AdagradDenseBindings {
        grad: whole(grad),
        param: whole(param),
        accum: whole(accum),
    };
    Launch::new(gpu, kernel, label, b, &AdagradDenseParams::default())
}

/// sum_reduce (shared with the windowed family): out[slot] = sum of x[0..n].
pub fn sum_reduce(
    gpu: &Gpu,
    kernel: &Kernel<SumReduce>,
    label: &str,
    x: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Launch {
    let b = SumReduceBindings {
        x: whole(x),
        out: whole(out),
    };
    Launch::new(gpu, kernel, label, b, &SumReduceParams::default())
}

/// candidate_scores_gpu: scores (Q, C) of the queries `query_rows[first..first + Q]` (user table rows)
/// against the candidates `candidate_rows` (movie table rows).
pub fn candidate_scores(
    gpu: &Gpu,
    kernel: &Kernel<CandidateScores>,
    label: &str,
    (user_emb, query_rows): (&wgpu::Buffer, &wgpu::Buffer),
    (movie_emb, candidate_rows): (&wgpu::Buffer, &wgpu::Buffer),
    scores: &wgpu::Buffer,
) -> Launch {
    let b = CandidateScoresBindings {
        user_emb: whole(user_emb),
        query_rows: whole(query_rows),
        movie_emb: whole(movie_emb),
        candidate_rows: whole(candidate_rows),
        scores: whole(scores),
    };
    Launch::new(gpu, kernel, label, b, &CandidateScoresParams::default())
}

/// brute_force_top_k_gpu: the top K of the queries `query_rows[first..first + Q]` among the candidates
/// `candidate_rows`, skipping each query's run of `seen` (CSR `seen_offsets`, ascending candidate indices),
/// into (Q, K) indices and scores.
pub fn brute_force_top_k(
    gpu: &Gpu,
    kernel: &Kernel<BruteForceTopK>,
    label: &str,
    (query_table, query_rows): (&wgpu::Buffer, &wgpu::Buffer),
    (candidate_table, candidate_rows): (&wgpu::Buffer, &wgpu::Buffer),
    (seen_offsets, seen): (&wgpu::Buffer, &wgpu::Buffer),
    (out_index, out_score): (&wgpu::Buffer, &wgpu::Buffer),
) -> Launch {
    let b = BruteForceTopKBindings {
        query_table: whole(query_table),
        query_rows: whole(query_rows),
        candidate_table: whole(candidate_table),
        candidate_rows: whole(candidate_rows),
        seen_offsets: whole(seen_offsets),
        seen: whole(seen),
        out_index: whole(out_index),
        out_score: whole(out_score),
    };
    Launch::new(gpu, kernel, label, b, &BruteForceTopKParams::default())
}

/// pair_ranks (shared with the windowed family, storage buffers only): one launch per chunk of candidates
/// (`PairRanksParams::chunks`; one at MovieLens sizes). `buffers` as `kernels::pair_ranks_launches`.
pub fn pair_ranks(
    gpu: &Gpu,
    kernels: &Kernels,
    buffers: [&wgpu::Buffer; 6],
    params: PairRanksParams,
) -> Vec<Launch> {
    crate::kernels::windowed::pair_ranks_launches(gpu, &kernels.pair_ranks, buffers, params)
}

/// What each kernel of the family does per dispatch, from its parameters (as `kernels::cost` does for the
/// windowed family, which hands `_gpu` names here). Compulsory traffic only: the tiles' reloads of an
/// operand from storage are what the workgroup memory keeps small.
pub mod cost {
    use super::*;
    use crate::gpu::profile::Cost;
    use crate::kernels::cost::{c, params};

    pub fn of(kernel: &str, bytes: &[u8], dim: u32) -> Cost {
        let d = dim as f64;
        match kernel {
            "dense_forward_gpu" | "dense_gather_forward_gpu" => {
                let p: DenseForwardParams = params(bytes);
                let (r, k, n) = (p.rows as f64, 4.0 * p.k4 as f64, 4.0 * p.n4 as f64);
                c(2.0 * r * k * n, r * k + k * n + n + r * n)
            }
            "dense_backward_data_gpu" | "dense_backward_data_linear_gpu" => {
                let p: DenseBackwardDataParams = params(bytes);
                let (r, k, n) = (p.rows as f64, 4.0 * p.k4 as f64, 4.0 * p.n4 as f64);
                c(2.0 * r * k * n, r * n + k * n + 2.0 * r * k)
            }
            "dense_backward_weights_gpu" | "dense_gather_backward_weights_gpu" => {
                let p: DenseBackwardWeightsParams = params(bytes);
                let (r, k, n) = (p.rows as f64, 4.0 * p.k4 as f64, 4.0 * p.n4 as f64);
                let s = (p.rows as f64 / p.split_rows.max(1) as f64).ceil();
                c(2.0 * r * k * n + r * n, r * k + r * n + s * (k * n + n))
            }
            "rating_loss_gpu" => {
                let p: RatingLossParams = params(bytes);
                let (r, h, t) = (p.rows as f64, 4.0 * p.h4 as f64, p.train as f64);
                let s = (p.rows as f64 / p.split_rows.max(1) as f64).ceil();
                c(
                    2.0 * r * h + 4.0 * r + t * 3.0 * r * h,
                    r * h + h + 3.0 * r + t * (r * h + s * (h + 1.0)),
                )
            }
            "retrieval_lse_gpu" => {
                let p: RetrievalLseParams = params(bytes);
                let (u, m) = (p.users as f64, p.movies as f64);
                let parts = (m / p.chunk.max(1) as f64).ceil();
                c(
                    2.0 * u * m * d + 4.0 * u * m,
                    (u + m) * d + m + 2.0 * parts * u,
                )
            }
            "retrieval_grads_gpu" => {
                // Both sides: per (user, movie) pair a D-long dot product and a D-long weighted sum each.
                let p: RetrievalGradsParams = params(bytes);
                let (u, m, parts) = (p.users as f64, p.movies as f64, p.parts as f64);
                c(
                    8.0 * u * m * d + 8.0 * u * m,
                    (u + m) * (2.0 * d + 2.0 + 2.0 * parts) + parts * (u + m) * d,
                )
            }
            "embedding_adagrad_gpu" => {
                // Lower bound: the dx rows it also sums depend on the batch, not the params.
                let p: EmbeddingAdagradParams = params(bytes);
                let (n, parts) = (p.n as f64 * 4.0 * p.dim4 as f64, p.parts as f64);
                c(n * (6.0 + parts), n * (5.0 + parts))
            }
            "brute_force_top_k_gpu" => {
                // The scoring; the selection depends on the scores, not the params.
                let p: BruteForceTopKParams = params(bytes);
                let (q, n) = (p.queries as f64, p.candidates as f64);
                c(2.0 * q * n * d, q * d + q * n * d + 2.0 * q * p.k as f64)
            }
            "candidate_scores_gpu" => {
                let p: CandidateScoresParams = params(bytes);
                let (q, n, d) = (p.queries as f64, p.candidates as f64, 4.0 * p.dim4 as f64);
                c(2.0 * q * n * d, (q + n) * d + q * n)
            }
            _ => Cost::default(),
        }
    }
}
