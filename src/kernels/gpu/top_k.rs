//! The GPU family's serving kernels: BruteForce top-k with brute_force_top_k_gpu (one workgroup per query
//! scores every candidate straight from the tables and keeps its K best, no score matrix), and rating
//! predictions through the training step's forward pass.

use super::step::GpuStep;
use super::*;
use crate::gpu::launch::Pass;
use crate::gpu::slice;
use crate::kernels::model::GpuModel;
use crate::kernels::{Exclusions, TopK};
use crate::options::TrainOptions;
use anyhow::Context;

/// BruteForce plan for fixed queries, candidates and k, built once and run many times. Queries are tiled
/// only so that a tile's (Q, K) outputs fit one storage binding; one dispatch per tile, one submission.
pub struct BruteForce<'g> {
    gpu: &'g Gpu,
    k: usize,
    queries: usize,
    /// Per tile: its query count and its launch.
    tiles: Vec<(usize, Launch)>,
    out_index: wgpu::Buffer,
    out_score: wgpu::Buffer,
    /// Bytes of the GPU buffers this plan allocated (the tables are the caller's).
    pub bytes: u64,
}

impl<'g> BruteForce<'g> {
    /// As `kernels::windowed::top_k::BruteForce::new`: `queries` and `candidates` are rows of the two
    /// tables; candidate indices in results and exclusions are positions in `candidates`.
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
        let per_tile = gpu.score_tile_rows(k.clamp(1, MAX_TOP_K), usize::MAX, "queries")?;
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
        check_dim(dim)?;
        let (q, c) = (queries.len(), candidates.len());
        exclude.check(k, MAX_TOP_K, q, c)?;
        TopK::check_plan(gpu, k, q, per_tile)?;
        let out_len = q * k;
        let exclude = exclude.normalized();
        let query_rows = gpu.upload("brute_force queries", queries);
        let cand_rows = gpu.upload("brute_force candidates", candidates);
        let seen_offsets = gpu.upload("brute_force seen_offsets", &exclude.offsets);
        let seen = gpu.upload("brute_force seen", &exclude.items);
        let out_index = gpu.buffer("brute_force_top_k_gpu index", out_len);
        let out_score = gpu.buffer("brute_force_top_k_gpu score", out_len);
        let tiles = (0..q)
            .step_by(per_tile)
            .map(|q0| {
                let n = per_tile.min(q - q0);
                let b = BruteForceTopKBindings {
                    query_table: whole(query_table),
                    query_rows: whole(&query_rows),
                    candidate_table: whole(candidate_table),
                    candidate_rows: whole(&cand_rows),
                    seen_offsets: whole(&seen_offsets),
                    seen: whole(&seen),
                    out_index: slice(&out_index, q0 * k, n * k),
                    out_score: slice(&out_score, q0 * k, n * k),
                };
                let p = BruteForceTopKParams {
                    queries: n as u32,
                    k: k as u32,
                    candidates: c as u32,
                    first: q0 as u32,
                };
                let label = format!("brute_force_top_k_gpu [queries {q0}..]");
                (
                    n,
                    Launch::new(gpu, &kernels.brute_force_top_k, &label, b, &p),
                )
            })
            .collect();
        let bytes = [
            &query_rows,
            &cand_rows,
            &seen_offsets,
            &seen,
            &out_index,
            &out_score,
        ]
        .iter()
        .map(|b| b.size())
        .sum();
        Ok(Self {
            gpu,
            k,
            queries: q,
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
                label: Some("brute_force_gpu"),
            });
        {
            let mut pass = Pass::begin(&mut enc, "brute_force_gpu", None);
            for (n, l) in &self.tiles {
                l.run_groups(&mut pass, groups::brute_force_top_k(*n));
            }
        }
        gpu.queue.submit([enc.finish()]);
        let out = (&self.out_index, &self.out_score);
        TopK::read(gpu, self.k, self.queries, out)
    }
}

/// Predicted ratings of (user row, movie row) pairs through the training step's forward pass (as the
/// GPU family's evaluation computes them), in chunks of at most `options::MAX_BATCH` pairs.
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
    let cap = n.min(crate::options::MAX_BATCH);
    let losses = gpu.buffer("predict losses", 2);
    // Only the forward pass runs; the options are never used for an update.
    let step = GpuStep::new(
        gpu,
        kernels,
        model,
        cap,
        &TrainOptions::tutorial(1.0, 0.0),
        &losses,
    )?;
    let mut pred = Vec::with_capacity(n);
    for (u, m) in users.chunks(cap).zip(movies.chunks(cap)) {
        let b = Batch::new(u.to_vec(), m.to_vec(), vec![0.0; u.len()]);
        let s = crate::gpu::batches::BatchShape {
            rows: b.rows(),
            users: b.users.len(),
            movies: b.movies.len(),
        };
        step.batch.write(gpu, &b);
        step.set_forward(gpu, &s, 0, false);
        let mut enc = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("predict"),
            });
        {
            let mut pass = Pass::begin(&mut enc, "predict", None);
            step.encode_forward(&mut pass, &s, false);
        }
        gpu.queue.submit([enc.finish()]);
        let got: Vec<f32> = gpu
            .read(&step.buffers.pred, 0, b.rows())
            .context("reading predictions")?;
        pred.extend(got);
    }
    Ok(pred)
}
