//! The windowed family's serving kernels: BruteForce top-k over all candidates (`brute_force_top_k` scores
//! and selects in one pass, window by window) and rating predictions through the evaluation's MLP forward.

use crate::gpu::batches::BatchBuffers;
use crate::gpu::launch::{Launch, Pass};
use crate::gpu::{slice, whole, Gpu};
use crate::kernels::model::GpuModel;
use crate::kernels::windowed::ranking::{Activations, MlpForward};
use crate::kernels::windowed::*;
use crate::kernels::{Exclusions, TopK};
use anyhow::{bail, Context, Result};

/// The largest k served: `brute_force_top_k` costs O(C log k) per query at worst, and a window of 4096
/// candidates must stay under llvmpipe's 65,535 loop iterations per invocation (see the shader).
pub const MAX_K: usize = 256;

/// BruteForce plan for fixed queries, candidates and k, built once and run many times: gathers the
/// candidate embeddings once (in decreasing norm), then `brute_force_top_k` scores every query against one
/// 64 KiB uniform window of candidates per dispatch and keeps each query's top k in a heap (no score
/// matrix). Queries are tiled only so that a tile's heaps fit one storage binding. Everything is encoded
/// in one submission; the (Q, K) results are read back at the end.
pub struct BruteForce<'g> {
    gpu: &'g Gpu,
    k: usize,
    queries: usize,
    candidates: usize,
    dim4: u32,
    gather_candidates: Launch,
    /// Per tile: its query count and its launches (one per window of candidates, then the sort).
    tiles: Vec<(usize, Vec<Launch>)>,
    out_index: wgpu::Buffer,
    out_score: wgpu::Buffer,
    /// Bytes of the GPU buffers this plan allocated (the tables are the caller's).
    pub bytes: u64,
}

impl<'g> BruteForce<'g> {
    /// `query_table` (rows, D) and `candidate_table` (rows, D): embedding tables; `queries` and
    /// `candidates`: the rows of each to use. Candidate indices in results and exclusions are positions
    /// in `candidates`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &'g Gpu,
        kernels: &Kernels,
        (query_table, queries): (&wgpu::Buffer, &[u32]),
        (candidate_table, candidates): (&wgpu::Buffer, &[u32]),
        dim: usize,
        exclude: &Exclusions,
        k: usize,
    ) -> Result<Self> {
        // A tile's heaps (tile x k pairs) must fit one binding.
        let per_tile = gpu.score_tile_rows(2 * k.clamp(1, MAX_K), usize::MAX, "queries")?;
        Self::with_tile(
            gpu,
            kernels,
            (query_table, queries),
            (candidate_table, candidates),
            dim,
            exclude,
            k,
            per_tile,
        )
    }

    /// [`BruteForce::new`] with `per_tile` queries per tile (a multiple of 64, so each tile's slices of
    /// the outputs are 256-byte aligned).
    #[allow(clippy::too_many_arguments)]
    pub fn with_tile(
        gpu: &'g Gpu,
        kernels: &Kernels,
        (query_table, queries): (&wgpu::Buffer, &[u32]),
        (candidate_table, candidates): (&wgpu::Buffer, &[u32]),
        dim: usize,
        exclude: &Exclusions,
        k: usize,
        per_tile: usize,
    ) -> Result<Self> {
        let (q, c) = (queries.len(), candidates.len());
        exclude.check(k, MAX_K, q, c)?;
        TopK::check_plan(gpu, k, q, per_tile)?;
        let dim4 = (dim / 4) as u32;
        let tile = per_tile.min(q);
        gpu.check_binding(
            "a tile of top-k heaps (queries x k (score, index) pairs)",
            (tile * k * 8) as u64,
        )?;
        let out_len = q * k;
        // The candidates by embedding norm, largest first (see the shader): position j holds candidate
        // order[j]; the exclusions become ascending positions.
        let table: Vec<f32> = gpu
            .read(candidate_table, 0, (candidate_table.size() / 4) as usize)
            .context("reading the candidate embeddings")?;
        let norm = |row: u32| -> f32 {
            let r = &table[row as usize * dim..][..dim];
            r.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt() as f32
        };
        let norms: Vec<f32> = candidates.iter().map(|&row| norm(row)).collect();
        let mut order: Vec<u32> = (0..c as u32).collect();
        order.sort_by(|&a, &b| {
            norms[b as usize]
                .total_cmp(&norms[a as usize])
                .then(a.cmp(&b))
        });
        let mut position = vec![0u32; c];
        for (j, &i) in order.iter().enumerate() {
            position[i as usize] = j as u32;
        }
        let mut exclude_positions = Exclusions {
            offsets: exclude.offsets.clone(),
            items: Vec::with_capacity(exclude.items.len()),
        };
        for w in exclude.offsets.windows(2) {
            let mut run: Vec<u32> = exclude.items[w[0] as usize..w[1] as usize]
                .iter()
                .map(|&i| position[i as usize])
                .collect();
            run.sort_unstable();
            exclude_positions.items.extend(run);
        }
        let exclude = &exclude_positions;
        // (norm bits, original index) per position, read through uniform windows like the embeddings:
        // padded by a full window.
        let mut meta: Vec<u32> = order
            .iter()
            .flat_map(|&i| [norms[i as usize].to_bits(), i])
            .collect();
        meta.resize(meta.len() + crate::gpu::WINDOW, 0);
        let ordered: Vec<u32> = order.iter().map(|&i| candidates[i as usize]).collect();
        let cand_meta = gpu.upload("brute_force candidate norms and indices", &meta);
        let query_list = gpu.upload("brute_force queries", queries);
        let cand_list = gpu.upload("brute_force candidates", &ordered);
        let cand_emb = gpu.windowed_buffer("brute_force candidate embeddings", c * dim);
        let seen_offsets = gpu.upload("brute_force seen_offsets", &exclude.offsets);
        let seen = gpu.upload("brute_force seen", &exclude.items);
        let out_index = gpu.buffer("brute_force_top_k index", out_len);
        let out_score = gpu.buffer("brute_force_top_k score", out_len);
        // The running top-k of each query of a tile: (score bits, index) pairs.
        let heap = gpu.buffer("brute_force_top_k heap", tile * k * 2);
        let bytes = [
            &query_list,
            &cand_list,
            &cand_emb,
            &seen_offsets,
            &seen,
            &out_index,
            &out_score,
            &heap,
            &cand_meta,
        ]
        .iter()
        .map(|b| b.size())
        .sum();
        let gather_candidates = Launch::new(
            gpu,
            &kernels.embedding_gather,
            "embedding_gather (brute_force candidates)",
            EmbeddingGatherBindings {
                table: whole(candidate_table),
                idx: whole(&cand_list),
                out: whole(&cand_emb),
            },
            &EmbeddingGatherParams {
                n: c as u32,
                dim4,
                out_stride4: dim4,
                out_offset4: 0,
            },
        );
        let per_window = crate::gpu::window_rows(dim);
        let windows = c.div_ceil(per_window);
        let tiles = (0..q)
            .step_by(tile)
            .map(|q0| {
                let n = tile.min(q - q0);
                // One launch per window of candidates, then one that only sorts.
                let launches = (0..=windows)
                    .map(|w| {
                        let c0 = (w * per_window).min(c);
                        let window = per_window.min(c - c0);
                        Launch::new(
                            gpu,
                            &kernels.brute_force_top_k,
                            &format!("brute_force_top_k [candidates {c0}..]"),
                            BruteForceTopKBindings {
                                query_table: whole(query_table),
                                query_rows: whole(&query_list),
                                candidate_win: crate::gpu::window(
                                    &cand_emb,
                                    c0.min((windows - 1) * per_window) * dim,
                                ),
                                seen_offsets: whole(&seen_offsets),
                                seen: whole(&seen),
                                heap: whole(&heap),
                                out_index: slice(&out_index, q0 * k, n * k),
                                out_score: slice(&out_score, q0 * k, n * k),
                                meta_win: crate::gpu::window(
                                    &cand_meta,
                                    2 * c0.min((windows - 1) * per_window),
                                ),
                            },
                            &BruteForceTopKParams {
                                queries: n as u32,
                                k: k as u32,
                                first: q0 as u32,
                                c0: c0 as u32,
                                window: window as u32,
                                start: (w == 0) as u32,
                                finish: (w == windows) as u32,
                                _pad: 0,
                            },
                        )
                    })
                    .collect();
                (n, launches)
            })
            .collect();
        Ok(Self {
            gpu,
            k,
            queries: q,
            candidates: c,
            dim4,
            gather_candidates,
            tiles,
            out_index,
            out_score,
            bytes,
        })
    }

    /// Runs every tile in one submission and reads the (Q, K) results back.
    pub fn run(&self) -> Result<TopK> {
        let gpu = self.gpu;
        let mut enc = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("brute_force"),
            });
        {
            let mut pass = Pass::begin(&mut enc, "brute_force", None);
            self.gather_candidates
                .run(&mut pass, self.candidates as u32 * self.dim4);
            for (n, launches) in &self.tiles {
                for l in launches {
                    l.run(&mut pass, *n as u32);
                }
            }
        }
        gpu.queue.submit([enc.finish()]);
        let out = (&self.out_index, &self.out_score);
        TopK::read(gpu, self.k, self.queries, out)
    }
}

/// Predicted ratings of (user row, movie row) pairs through the rating MLP on the GPU: the same launches
/// as evaluation, so a prediction equals the evaluation's for the same pair.
pub fn predict(
    gpu: &Gpu,
    kernels: &Kernels,
    model: &GpuModel,
    users: &[u32],
    movies: &[u32],
) -> Result<Vec<f32>> {
    let n = users.len();
    if n == 0 || movies.len() != n {
        bail!(
            "predict needs as many movies as users (got {n} and {})",
            movies.len()
        );
    }
    let ids = BatchBuffers::new(gpu, "predict", n);
    let act = Activations::new(gpu, &model.cfg, n)?;
    let losses = gpu.buffer("predict losses", 2);
    let mlp = MlpForward::new(gpu, kernels, model, &ids, &act, &losses);
    gpu.queue
        .write_buffer(&ids.user, 0, bytemuck::cast_slice(users));
    gpu.queue
        .write_buffer(&ids.movie, 0, bytemuck::cast_slice(movies));
    mlp.set(gpu, n, false, 1.0, 0);
    let mut enc = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("predict"),
        });
    {
        let mut pass = Pass::begin(&mut enc, "predict", None);
        mlp.encode(&mut pass, n);
    }
    gpu.queue.submit([enc.finish()]);
    gpu.read(&act.pred, 0, n).context("reading predictions")
}
