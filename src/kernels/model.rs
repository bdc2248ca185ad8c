//! The model on the GPU: parameters and their Adagrad accumulators as storage buffers. The tables of a
//! side with a feature tower are the tower's output; `kernels::tower::Towered` holds both.

use crate::gpu::{Gpu, WINDOW};
use crate::model::INITIAL_ACCUMULATOR;
use crate::model::{MlpLayout, ModelConfig, Params};
use anyhow::Result;

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
    /// The tables and the MLP of `p`; `p.towers` belongs to the towers (`Towered`), not read here.
    pub fn new(gpu: &Gpu, cfg: &ModelConfig, p: &Params) -> Result<Self> {
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
            towers: Vec::new(),
        })
    }

    /// Overwrites the tables and the MLP (not the Adagrad accumulators) with `p`, e.g. a kept epoch's copy.
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
