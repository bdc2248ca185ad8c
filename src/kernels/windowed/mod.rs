//! The windowed family, one launcher per kernel in `shaders/`: the uniform parameters each kernel reads
//! (mirroring its WGSL `Params`), the compiled pipelines, and the window rules. On a software adapter a
//! storage load costs ~50 multiply-adds and a uniform load ~1, so operands come through 64 KiB uniform
//! windows, one dispatch per window, within llvmpipe's loop-iteration limits.

pub mod cost;
pub mod evaluate;
pub mod ranking;
pub mod retrieval;
pub mod step;
pub mod top_k;

use crate::gpu::launch::Launch;
use crate::gpu::{Gpu, Kernel};
use crate::model::ModelConfig;
use anyhow::{bail, Result};
use bytemuck::{Pod, Zeroable};

macro_rules! shader {
    ($name:literal) => {
        include_str!(concat!("../../../shaders/", $name, ".wgsl"))
    };
}

/// Every WGSL source with its file stem (tests validate them all with naga).
pub const SHADERS: &[(&str, &str)] = &[
    ("embedding_gather", shader!("embedding_gather")),
    ("dense_forward", shader!("dense_forward")),
    ("dense_backward_data", shader!("dense_backward_data")),
    ("dense_backward_weights", shader!("dense_backward_weights")),
    ("rating_loss", shader!("rating_loss")),
    ("rating_head_backward", shader!("rating_head_backward")),
    ("adagrad_dense", shader!("adagrad_dense")),
    ("sum_reduce", shader!("sum_reduce")),
    (
        "retrieval_softmax_users",
        shader!("retrieval_softmax_users"),
    ),
    (
        "retrieval_softmax_movies",
        shader!("retrieval_softmax_movies"),
    ),
    ("embedding_adagrad", shader!("embedding_adagrad")),
    ("scale_rows", shader!("scale_rows")),
    ("pooled_gather", shader!("pooled_gather")),
    ("pooled_gather_backward", shader!("pooled_gather_backward")),
    ("candidate_scores", shader!("candidate_scores")),
    ("pair_ranks", shader!("pair_ranks")),
    ("brute_force_top_k", shader!("brute_force_top_k")),
];

fn source(name: &str) -> &'static str {
    SHADERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .expect("shader listed in SHADERS")
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct EmbeddingGatherParams {
    pub n: u32,
    pub dim4: u32,
    pub out_stride4: u32,
    pub out_offset4: u32,
}

/// The uniform of `pooled_gather_backward`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PooledGatherBackwardParams {
    pub features: u32,
    pub dim4: u32,
    pub in_stride4: u32,
    pub in_offset4: u32,
}

/// The uniform of `scale_rows` (--temperature).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ScaleRowsParams {
    pub n4: u32,
    pub scale: f32,
    pub _pad: [u32; 2],
}

/// The uniform of `dense_forward`; `dense_backward_data` reads the same layout (`DenseBackwardDataParams`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct DenseForwardParams {
    pub rows: u32,
    pub k4: u32,
    pub n4: u32,
    pub k4_lo: u32,
    pub row0: u32,
    pub _pad: [u32; 3],
}

pub type DenseBackwardDataParams = DenseForwardParams;

impl DenseForwardParams {
    /// A layer of K inputs and N outputs applied to `rows` rows starting at `row0`.
    pub fn new(row0: usize, rows: usize, k: usize, n: usize) -> Self {
        let (_, k_lo) = weight_split(k, n);
        Self {
            rows: rows as u32,
            k4: (k / 4) as u32,
            n4: (n / 4) as u32,
            k4_lo: (k_lo / 4) as u32,
            row0: row0 as u32,
            _pad: [0; 3],
        }
    }
}

/// Shape rules of the windowed kernels: dense_forward and dense_backward_data handle 16 columns per invocation,
/// hidden widths are multiples of 64 (at most 256) so rows fit the uniform windows, biases fit one
/// 256-float uniform window,
/// each weight matrix fits two 64 KiB uniform windows, and the retrieval kernels keep up to 64 embedding
/// values in registers.
pub fn check_shape(cfg: &ModelConfig) -> Result<()> {
    let d = cfg.embedding_dim;
    if d == 0 || !d.is_multiple_of(16) || d > 64 {
        bail!("--embedding-dim must be 16, 32, 48 or 64, got {d}");
    }
    for (name, h) in [
        ("first hidden layer", cfg.hidden1),
        ("second hidden layer", cfg.hidden2),
    ] {
        if h == 0 || h % 64 != 0 || h > 256 {
            bail!("the {name} width must be 64, 128, 192 or 256, got {h}");
        }
    }
    for (name, k, n) in [
        ("first", 2 * d, cfg.hidden1),
        ("second", cfg.hidden1, cfg.hidden2),
    ] {
        let (_, k_lo) = weight_split(k, n);
        if k - k_lo > crate::gpu::WINDOW / n {
            bail!("the {name} dense layer ({k} x {n}) does not fit two 64 KiB uniform windows");
        }
    }
    Ok(())
}

/// Rows of a (K, N) weight matrix in its first uniform window: a multiple of 16, so that the blocks of
/// dense_backward_data never straddle the windows. Returns (K, K_lo).
pub fn weight_split(k: usize, n: usize) -> (usize, usize) {
    (k, k.min(crate::gpu::WINDOW / n / 16 * 16))
}

/// The two uniform windows (w_lo, w_hi) of a (K, N) weight matrix stored at element `offset` of `buf`.
pub fn weight_windows(
    buf: &wgpu::Buffer,
    offset: usize,
    k: usize,
    n: usize,
) -> [wgpu::BindingResource<'_>; 2] {
    let (_, k_lo) = weight_split(k, n);
    let hi = if k_lo < k { offset + k_lo * n } else { offset };
    [crate::gpu::window(buf, offset), crate::gpu::window(buf, hi)]
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct DenseBackwardWeightsParams {
    pub rows: u32,
    pub k4: u32,
    pub n4: u32,
    pub window_rows: u32,
    pub grad_len4: u32,
    pub w_offset4: u32,
    pub b_offset4: u32,
    pub split: u32,
}

/// dense_backward_weights reads each split of the batch through this many windows of x and dy.
pub const WINDOWS_PER_SPLIT: usize = 4;

/// Rows per window of the weight-gradient kernels for MLP widths `widths` (the widest row must fit).
pub fn window_rows(widths: &[usize]) -> usize {
    crate::gpu::window_rows(widths.iter().copied().max().unwrap_or(1))
}

/// One dense_backward_weights launch per split of a batch of up to `capacity` rows: split s reads rows
/// [s S, (s + 1) S) with S = 4 R through four R-row windows of x (row length k) and dy (row length n).
#[allow(clippy::too_many_arguments)]
pub fn dense_backward_weights_launches(
    gpu: &Gpu,
    kernel: &Kernel,
    label: &str,
    (x, k): (&wgpu::Buffer, usize),
    (dy, n): (&wgpu::Buffer, usize),
    grad: &wgpu::Buffer,
    window_rows: usize,
    capacity: usize,
) -> Vec<Launch> {
    let split_rows = WINDOWS_PER_SPLIT * window_rows;
    (0..capacity.div_ceil(split_rows))
        .map(|s| {
            // Windows past the last row are never read; they bind row 0 so that the binding stays in range.
            let first = |j: usize| {
                Some(s * split_rows + j * window_rows)
                    .filter(|&r| r < capacity)
                    .unwrap_or(0)
            };
            let mut b: Vec<wgpu::BindingResource> = (0..WINDOWS_PER_SPLIT)
                .map(|j| crate::gpu::window(x, first(j) * k))
                .collect();
            b.extend((0..WINDOWS_PER_SPLIT).map(|j| crate::gpu::window(dy, first(j) * n)));
            b.push(grad.as_entire_binding());
            Launch::new(
                gpu,
                kernel,
                &format!("{label} [split {s}]"),
                &b,
                &DenseBackwardWeightsParams::default(),
            )
        })
        .collect()
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RatingLossParams {
    pub rows: u32,
    pub h4: u32,
    pub train: u32,
    pub scale: f32,
    pub row0: u32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RatingHeadBackwardParams {
    pub rows: u32,
    pub h4: u32,
    pub split_rows: u32,
    pub grad_len4: u32,
    pub w_offset4: u32,
    pub b_offset4: u32,
    pub _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct AdagradDenseParams {
    pub len4: u32,
    pub splits: u32,
    pub learning_rate: f32,
    pub epsilon: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct SumReduceParams {
    pub n: u32,
    pub slot: u32,
    pub _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RetrievalSoftmaxParams {
    pub users: u32,
    pub movies: u32,
    pub weight: f32,
    pub first: u32,
    pub last: u32,
    pub remove_hits: u32,
    pub _pad: [u32; 2],
}

impl RetrievalSoftmaxParams {
    /// One window of the distinct-rows retrieval kernels; `users` / `movies` count what this window sees.
    pub fn new(users: usize, movies: usize, weight: f32, first: bool, last: bool) -> Self {
        Self {
            users: users as u32,
            movies: movies as u32,
            weight,
            first: first as u32,
            last: last as u32,
            remove_hits: 0,
            _pad: [0; 2],
        }
    }

    /// The same window with --remove-accidental-hits on or off.
    pub fn removing_hits(self, on: bool) -> Self {
        Self {
            remove_hits: on as u32,
            ..self
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct EmbeddingAdagradParams {
    pub n: u32,
    pub dim4: u32,
    pub dx_stride4: u32,
    pub dx_offset4: u32,
    pub use_dense: u32,
    pub use_rows: u32,
    pub learning_rate: f32,
    pub epsilon: f32,
    /// L2 penalty (l2 / 2) |row|^2 on the touched rows; 0 in the tutorial.
    pub l2: f32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct CandidateScoresParams {
    pub queries: u32,
    pub candidates: u32,
    pub c0: u32,
    pub window: u32,
}

/// One candidate_scores launch per uniform window of the candidate embeddings (`cand`, C x D, a windowed
/// buffer), for `queries` query rows scored into `scores` (Q x C). Returns the launches with their
/// invocation counts.
#[allow(clippy::too_many_arguments)]
pub fn candidate_scores_launches(
    gpu: &Gpu,
    kernel: &Kernel,
    query: &wgpu::Buffer,
    cand: &wgpu::Buffer,
    scores: &wgpu::Buffer,
    queries: usize,
    candidates: usize,
    dim: usize,
) -> Vec<(Launch, u32)> {
    let per = crate::gpu::window_rows(dim);
    (0..candidates.div_ceil(per))
        .map(|w| {
            let (c0, n) = (w * per, per.min(candidates - w * per));
            let p = CandidateScoresParams {
                queries: queries as u32,
                candidates: candidates as u32,
                c0: c0 as u32,
                window: n as u32,
            };
            let b = [
                query.as_entire_binding(),
                crate::gpu::window(cand, c0 * dim),
                scores.as_entire_binding(),
            ];
            let l = Launch::new(
                gpu,
                kernel,
                &format!("candidate_scores [candidates {c0}..]"),
                &b,
                &p,
            );
            (l, threads::candidate_scores(queries as u32, n as u32))
        })
        .collect()
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PairRanksParams {
    pub groups: u32,
    pub candidates: u32,
    /// u32 words per user row of the exclusion mask (0: nothing excluded).
    pub words: u32,
    pub user0: u32,
    /// The chunk of candidates [c_begin, c_end) this dispatch counts (c_begin a multiple of 32).
    pub c_begin: u32,
    pub c_end: u32,
    /// 0: the chunk's counts replace the ranks (first chunk); 1: they are added.
    pub accumulate: u32,
    pub _pad: u32,
}

/// pair_ranks' launches for one set of groups, one per chunk of candidates (`PairRanksParams::chunks`).
/// `buffers`: scores, groups, pair_candidate, excluded, rank_all, rank_unseen, as the shader binds them.
pub fn pair_ranks_launches(
    gpu: &Gpu,
    kernel: &Kernel,
    buffers: [&wgpu::Buffer; 6],
    params: PairRanksParams,
) -> Vec<Launch> {
    let bindings = buffers.map(|b| b.as_entire_binding());
    params
        .chunks()
        .iter()
        .map(|chunk| Launch::new(gpu, kernel, "pair_ranks", &bindings, chunk))
        .collect()
}

impl PairRanksParams {
    /// One dispatch per chunk of at most RANK_CHUNK candidates, the first storing and the rest adding.
    pub fn chunks(self) -> Vec<PairRanksParams> {
        let c = self.candidates as usize;
        (0..c.div_ceil(RANK_CHUNK).max(1))
            .map(|i| PairRanksParams {
                c_begin: (i * RANK_CHUNK) as u32,
                c_end: ((i + 1) * RANK_CHUNK).min(c) as u32,
                accumulate: (i > 0) as u32,
                ..self
            })
            .collect()
    }
}

/// Pairs per pair_ranks invocation (they share one user's row of scores).
pub const PAIRS_PER_GROUP: usize = 8;

/// Candidates per pair_ranks dispatch. Mesa 22.3's llvmpipe (Debian 12) stops every loop of an invocation once it has run 65,535
/// iterations in all (Mesa's LP_MAX_TGSI_LOOP_ITERATIONS, shared by all loops of a shader), silently:
/// a 62k-candidate row in one invocation left most ranks unwritten or short at ML-25M size. A chunk
/// costs one loop iteration per candidate plus one per 32.
pub const RANK_CHUNK: usize = 16384;

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

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct BruteForceTopKParams {
    pub queries: u32,
    pub k: u32,
    /// First query of this tile in the query list and the exclusions.
    pub first: u32,
    /// First candidate of this window, and the window's candidates (0: the dispatch that only sorts).
    pub c0: u32,
    pub window: u32,
    /// 1: fill the heaps with sentinels first; 1: sort them best first at the end.
    pub start: u32,
    pub finish: u32,
    pub _pad: u32,
}

/// Invocation counts, mirroring each kernel's indexing.
pub mod threads {
    /// One invocation per 8 rows x 16 outputs.
    pub fn dense_forward(rows: u32, n: u32) -> u32 {
        rows.div_ceil(8) * (n / 16)
    }
    /// One invocation per 8 rows x 16 inputs.
    pub fn dense_backward_data(rows: u32, k: u32) -> u32 {
        rows.div_ceil(8) * (k / 16)
    }
    /// One invocation per query and 16 candidates of a window.
    pub fn candidate_scores(queries: u32, window: u32) -> u32 {
        queries * window.div_ceil(16)
    }
    /// Per split.
    pub fn dense_backward_weights(k: u32, n: u32) -> u32 {
        (n / 16) * (k / 8)
    }
    pub fn rating_head_backward(rows: u32, h: u32, split_rows: u32) -> u32 {
        (h / 4 + 1) * rows.div_ceil(split_rows)
    }
}

/// Every compiled pipeline. D is baked into the retrieval and scoring kernels as an override constant.
pub struct Kernels {
    pub embedding_gather: Kernel,
    pub dense_forward: Kernel,
    pub dense_backward_data: Kernel,
    pub dense_backward_data_linear: Kernel,
    pub dense_backward_weights: Kernel,
    pub rating_loss: Kernel,
    pub rating_head_backward: Kernel,
    pub adagrad_dense: Kernel,
    pub sum_reduce: Kernel,
    pub retrieval_softmax_users: Kernel,
    pub retrieval_softmax_movies: Kernel,
    pub embedding_adagrad: Kernel,
    pub scale_rows: Kernel,
    /// Mean-pooled multi-hot lookup of feature towers (`EmbeddingGatherParams`); not used by training yet.
    pub pooled_gather: Kernel,
    /// Its backward over a batch's distinct feature rows (`PooledGatherBackwardParams`); not used yet.
    pub pooled_gather_backward: Kernel,
    pub candidate_scores: Kernel,
    pub pair_ranks: Kernel,
    pub brute_force_top_k: Kernel,
}

impl Kernels {
    pub fn new(gpu: &Gpu, embedding_dim: usize) -> Result<Self> {
        let d4 = [("D4", (embedding_dim / 4) as f64)];
        let k = |name: &'static str, constants: &[(&str, f64)]| {
            Kernel::new(gpu, name, source(name), constants, crate::kernels::cost)
        };
        // Seconds on a software adapter, which compiles every pipeline with LLVM.
        let _spinner = crate::progress::spinner("compiling the kernels");
        Ok(Self {
            embedding_gather: k("embedding_gather", &[])?,
            dense_forward: k("dense_forward", &[("RELU", 1.0)])?,
            dense_backward_data: k("dense_backward_data", &[("MASK", 1.0)])?,
            dense_backward_data_linear: Kernel::variant(
                gpu,
                "dense_backward_data_linear",
                "dense_backward_data",
                source("dense_backward_data"),
                &[("MASK", 0.0)],
                crate::kernels::cost,
            )?,
            dense_backward_weights: k("dense_backward_weights", &[])?,
            rating_loss: k("rating_loss", &[])?,
            rating_head_backward: k("rating_head_backward", &[])?,
            adagrad_dense: k("adagrad_dense", &[])?,
            sum_reduce: k("sum_reduce", &[])?,
            retrieval_softmax_users: k("retrieval_softmax_users", &d4)?,
            retrieval_softmax_movies: k("retrieval_softmax_movies", &d4)?,
            embedding_adagrad: k("embedding_adagrad", &[])?,
            scale_rows: k("scale_rows", &[])?,
            pooled_gather: k("pooled_gather", &[])?,
            pooled_gather_backward: k("pooled_gather_backward", &[])?,
            candidate_scores: k("candidate_scores", &d4)?,
            pair_ranks: k("pair_ranks", &[])?,
            brute_force_top_k: k("brute_force_top_k", &d4)?,
        })
    }
}

/// A kernel whose first input is read through 64 KiB uniform windows of whole rows: one launch (bind
/// group and uniform) per window, built once for a buffer of `capacity` rows. The buffer must extend a full
/// window past its last row (`Gpu::windowed_buffer`).
pub struct Windowed {
    pub launches: Vec<Launch>,
    pub rows_per_window: usize,
}

impl Windowed {
    /// `rest`: the bindings after the windowed input, without the uniform.
    #[allow(clippy::too_many_arguments)]
    pub fn new<P: Pod>(
        gpu: &Gpu,
        kernel: &Kernel,
        label: &str,
        input: &wgpu::Buffer,
        row_len: usize,
        capacity: usize,
        rest: &[wgpu::BindingResource],
        params: &P,
    ) -> Self {
        let rows_per_window = crate::gpu::window_rows(row_len);
        let launches = (0..capacity.div_ceil(rows_per_window))
            .map(|w| {
                let mut b = vec![crate::gpu::window(input, w * rows_per_window * row_len)];
                b.extend_from_slice(rest);
                Launch::new(gpu, kernel, &format!("{label} [window {w}]"), &b, params)
            })
            .collect();
        Self {
            launches,
            rows_per_window,
        }
    }

    /// (launch, first row, rows) of every window that `rows` rows touch.
    pub fn windows(&self, rows: usize) -> impl Iterator<Item = (&Launch, usize, usize)> {
        window_span(&self.launches, self.rows_per_window, rows).map(|(l, row0, n, ..)| (l, row0, n))
    }
}

/// For launches built one per window of `per` rows: (launch, first row, rows, first window, last window) of
/// the windows that `n` rows touch.
pub fn window_span(
    launches: &[Launch],
    per: usize,
    n: usize,
) -> impl Iterator<Item = (&Launch, usize, usize, bool, bool)> {
    let count = n.div_ceil(per);
    launches
        .iter()
        .enumerate()
        .take(count)
        .map(move |(w, l)| (l, w * per, per.min(n - w * per), w == 0, w + 1 == count))
}
