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

pub use crate::kernels::evaluate::{pair_groups, PAIRS_PER_GROUP};

use crate::gpu::launch::Launch;
use crate::gpu::shader::Shader;
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
    ("scatter_rows", shader!("scatter_rows")),
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

/// The uniform of `scatter_rows`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ScatterRowsParams {
    pub n: u32,
    pub dim4: u32,
    pub _pad: [u32; 2],
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
    kernel: &Kernel<DenseBackwardWeights>,
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
            // The shader binds WINDOWS_PER_SPLIT = 4 windows of each operand by name.
            const _: () = assert!(WINDOWS_PER_SPLIT == 4);
            let xw = |j| crate::gpu::window(x, first(j) * k);
            let dyw = |j| crate::gpu::window(dy, first(j) * n);
            let b = DenseBackwardWeightsBindings {
                x0: xw(0),
                x1: xw(1),
                x2: xw(2),
                x3: xw(3),
                dy0: dyw(0),
                dy1: dyw(1),
                dy2: dyw(2),
                dy3: dyw(3),
                grad: grad.as_entire_binding(),
            };
            Launch::new(
                gpu,
                kernel,
                &format!("{label} [split {s}]"),
                b,
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
    /// Write each row's gradient into `table` (a feature tower's) instead of updating.
    pub grad_out: u32,
    pub _pad: [u32; 2],
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
    kernel: &Kernel<CandidateScores>,
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
            let b = CandidateScoresBindings {
                query: query.as_entire_binding(),
                candidate_win: crate::gpu::window(cand, c0 * dim),
                scores: scores.as_entire_binding(),
            };
            let l = Launch::new(
                gpu,
                kernel,
                &format!("candidate_scores [candidates {c0}..]"),
                b,
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
    kernel: &Kernel<PairRanks>,
    buffers: [&wgpu::Buffer; 6],
    params: PairRanksParams,
) -> Vec<Launch> {
    let [scores, groups, pair_candidate, excluded, rank_all, rank_unseen] =
        buffers.map(|b| b.as_entire_binding());
    let bindings = PairRanksBindings {
        scores,
        groups,
        pair_candidate,
        excluded,
        rank_all,
        rank_unseen,
    };
    params
        .chunks()
        .iter()
        .map(|chunk| Launch::new(gpu, kernel, "pair_ranks", bindings.clone(), chunk))
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

/// Candidates per pair_ranks dispatch. Mesa 22.3's llvmpipe (Debian 12) stops every loop of an invocation once it has run 65,535
/// iterations in all (Mesa's LP_MAX_TGSI_LOOP_ITERATIONS, shared by all loops of a shader), silently:
/// a 62k-candidate row in one invocation left most ranks unwritten or short at ML-25M size. A chunk
/// costs one loop iteration per candidate plus one per 32.
pub const RANK_CHUNK: usize = 16384;

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

crate::gpu::shader::shaders! {
    /// out (n, stride) at offset = table[idx] (n, D).
    EmbeddingGather = "embedding_gather" (EmbeddingGatherParams)
        EmbeddingGatherBindings { table, idx, out }
    /// y = act(x W + b) over one uniform window of x's rows; W in two uniform windows.
    DenseForward = "dense_forward" (DenseForwardParams)
        DenseForwardBindings { x_win, w_lo, w_hi, b, y }
    /// dx = (dy W^T) * (h > 0) over one window of dy's rows.
    DenseBackwardData = "dense_backward_data" (DenseBackwardDataParams)
        DenseBackwardDataBindings { dy_win, w_lo, w_hi, h, dx }
    /// One split's partial (x^T dy, sum dy) from four windows of each.
    DenseBackwardWeights = "dense_backward_weights" (DenseBackwardWeightsParams)
        DenseBackwardWeightsBindings { x0, x1, x2, x3, dy0, dy1, dy2, dy3, grad }
    /// The rating head, its squared error and dpred over one window of h2.
    RatingLoss = "rating_loss" (RatingLossParams)
        RatingLossBindings { h2_win, w3, b3, rating, pred, sq_err, dpred, dh2 }
    /// The head's partial gradients.
    RatingHeadBackward = "rating_head_backward" (RatingHeadBackwardParams)
        RatingHeadBackwardBindings { h2, dpred, grad }
    /// Sums the partials and updates every dense parameter.
    AdagradDense = "adagrad_dense" (AdagradDenseParams) AdagradDenseBindings { grad, param, accum }
    /// out[slot] = sum of x[0..n].
    SumReduce = "sum_reduce" (SumReduceParams) SumReduceBindings { x, out }
    /// The users' side of the distinct-rows softmax over one window of movies.
    RetrievalSoftmaxUsers = "retrieval_softmax_users" (RetrievalSoftmaxParams)
        RetrievalSoftmaxUsersBindings {
            user_emb, movie_win, movie_count_win, movie_emb, user_count, user_offsets, user_rows,
            row_movie, movie_offsets, movie_count, state, user_stat, loss, grad_user, row_lse,
        }
    /// The movies' side, over one window of users.
    RetrievalSoftmaxMovies = "retrieval_softmax_movies" (RetrievalSoftmaxParams)
        RetrievalSoftmaxMoviesBindings {
            movie_emb, user_win, user_stat_win, user_emb, movie_count, movie_offsets, movie_rows,
            row_user, row_lse, grad_movie,
        }
    /// One table's gradient scatter and sparse Adagrad.
    EmbeddingAdagrad = "embedding_adagrad" (EmbeddingAdagradParams)
        EmbeddingAdagradBindings { grad_dense, dx, offsets, rows, table_rows, table, accum }
    /// x *= scale in place (the distinct user rows by 1 / T with --temperature).
    ScaleRows = "scale_rows" (ScaleRowsParams) ScaleRowsBindings { x }
    /// out = the mean of each entity's feature rows of one multi-hot field (feature towers).
    PooledGather = "pooled_gather" (EmbeddingGatherParams)
        PooledGatherBindings { table, offsets, ids, entity, out }
    /// The feature rows' gradient of pooled_gather over a batch's distinct feature rows.
    PooledGatherBackward = "pooled_gather_backward" (PooledGatherBackwardParams)
        PooledGatherBackwardBindings { dout, pair_offsets, pair_rows, pair_weights, dfeature }
    /// table[rows[i]] = y[i]: a feature tower's output rows into the table the tasks read.
    ScatterRows = "scatter_rows" (ScatterRowsParams) ScatterRowsBindings { y, rows, table }
    /// Scores of the queries against one window of candidates.
    CandidateScores = "candidate_scores" (CandidateScoresParams)
        CandidateScoresBindings { query, candidate_win, scores }
    /// Each pair's rank among all candidates and among the unseen ones.
    PairRanks = "pair_ranks" (PairRanksParams)
        PairRanksBindings { scores, groups, pair_candidate, excluded, rank_all, rank_unseen }
    /// Top K over one window of candidates; each query's running top K stays in `heap` between windows.
    BruteForceTopK = "brute_force_top_k" (BruteForceTopKParams)
        BruteForceTopKBindings {
            query_table, query_rows, candidate_win, seen_offsets, seen, heap, out_index, out_score,
            meta_win,
        }
}

/// Every compiled pipeline. D is baked into the retrieval and scoring kernels as an override constant.
pub struct Kernels {
    pub embedding_gather: Kernel<EmbeddingGather>,
    pub dense_forward: Kernel<DenseForward>,
    pub dense_backward_data: Kernel<DenseBackwardData>,
    pub dense_backward_data_linear: Kernel<DenseBackwardData>,
    pub dense_backward_weights: Kernel<DenseBackwardWeights>,
    pub rating_loss: Kernel<RatingLoss>,
    pub rating_head_backward: Kernel<RatingHeadBackward>,
    pub adagrad_dense: Kernel<AdagradDense>,
    pub sum_reduce: Kernel<SumReduce>,
    pub retrieval_softmax_users: Kernel<RetrievalSoftmaxUsers>,
    pub retrieval_softmax_movies: Kernel<RetrievalSoftmaxMovies>,
    pub embedding_adagrad: Kernel<EmbeddingAdagrad>,
    pub scale_rows: Kernel<ScaleRows>,
    pub candidate_scores: Kernel<CandidateScores>,
    pub pair_ranks: Kernel<PairRanks>,
    pub brute_force_top_k: Kernel<BruteForceTopK>,
}

/// The shader's pipeline with override constants (its source from `SHADERS`).
pub(crate) fn compile<S: Shader>(gpu: &Gpu, constants: &[(&str, f64)]) -> Result<Kernel<S>> {
    Kernel::new(gpu, source(S::NAME), constants, crate::kernels::cost)
}

impl Kernels {
    pub fn new(gpu: &Gpu, embedding_dim: usize) -> Result<Self> {
        let d4 = [("D4", (embedding_dim / 4) as f64)];
        // Seconds on a software adapter, which compiles every pipeline with LLVM.
        let _spinner = crate::progress::spinner("compiling the kernels");
        Ok(Self {
            embedding_gather: compile(gpu, &[])?,
            dense_forward: compile(gpu, &[("RELU", 1.0)])?,
            dense_backward_data: compile(gpu, &[("MASK", 1.0)])?,
            dense_backward_data_linear: Kernel::variant(
                gpu,
                "dense_backward_data_linear",
                source(DenseBackwardData::NAME),
                &[("MASK", 0.0)],
                crate::kernels::cost,
            )?,
            dense_backward_weights: compile(gpu, &[])?,
            rating_loss: compile(gpu, &[])?,
            rating_head_backward: compile(gpu, &[])?,
            adagrad_dense: compile(gpu, &[])?,
            sum_reduce: compile(gpu, &[])?,
            retrieval_softmax_users: compile(gpu, &d4)?,
            retrieval_softmax_movies: compile(gpu, &d4)?,
            embedding_adagrad: compile(gpu, &[])?,
            scale_rows: compile(gpu, &[])?,
            candidate_scores: compile(gpu, &d4)?,
            pair_ranks: compile(gpu, &[])?,
            brute_force_top_k: compile(gpu, &d4)?,
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
    /// `bind` makes the kernel's bindings around one window of `input`.
    #[allow(clippy::too_many_arguments)]
    pub fn new<'a, S: Shader>(
        gpu: &Gpu,
        kernel: &Kernel<S>,
        label: &str,
        input: &'a wgpu::Buffer,
        row_len: usize,
        capacity: usize,
        bind: impl Fn(wgpu::BindingResource<'a>) -> S::Bindings<'a>,
        params: &S::Params,
    ) -> Self {
        let rows_per_window = crate::gpu::window_rows(row_len);
        let launches = (0..capacity.div_ceil(rows_per_window))
            .map(|w| {
                let b = bind(crate::gpu::window(input, w * rows_per_window * row_len));
                Launch::new(gpu, kernel, &format!("{label} [window {w}]"), b, params)
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
