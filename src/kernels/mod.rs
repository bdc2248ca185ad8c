//! The kernel families: `windowed`, shaped for software adapters (operands through 64 KiB uniform
//! windows, one dispatch per window), and `gpu`, shaped for real GPUs (storage buffers, a few large
//! dispatches per step). Both share the bind-and-launch machinery of `gpu::launch`, and the top-k types
//! that serving reads (`TopK`, `Exclusions`).

pub mod evaluate;
pub mod gpu;
pub mod model;
pub mod tower;
pub mod windowed;

use crate::gpu::profile::Cost;

/// FLOPs and bytes of one dispatch of any kernel of either family (see `gpu::launch::CostFn`).
pub fn cost(kernel: &str, bytes: &[u8], dim: u32) -> Cost {
    if kernel.ends_with("_gpu") {
        gpu::cost::of(kernel, bytes, dim)
    } else {
        windowed::cost::of(kernel, bytes, dim)
    }
}

/// What both families' price lists read parameters and write costs with.
pub(crate) mod cost {
    use crate::gpu::profile::Cost;
    use bytemuck::Pod;

    /// The kernel's uniform, from the bytes last written to it.
    pub fn params<P: Pod>(bytes: &[u8]) -> P {
        bytemuck::pod_read_unaligned(&bytes[..std::mem::size_of::<P>()])
    }

    /// `flops` and `floats` 4-byte values of compulsory traffic.
    pub fn c(flops: f64, floats: f64) -> Cost {
        Cost {
            flops,
            bytes: 4.0 * floats,
        }
    }
}

/// A kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Operands through 64 KiB uniform windows, one dispatch per window: fast on software adapters.
    Windowed,
    /// Storage buffers and a few large dispatches per step: for real GPUs.
    Gpu,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Self::Windowed => "windowed",
            Self::Gpu => "gpu",
        }
    }

    /// `adapter: NAME (backend, type); kernels: FAMILY`, the line every command that uses the GPU starts
    /// with.
    pub fn adapter_line(self, a: &crate::gpu::AdapterSummary) -> String {
        format!(
            "adapter: {} ({}, {}); kernels: {}",
            a.name,
            a.backend,
            a.device_type,
            self.name()
        )
    }
}

/// `--kernels`: a family, or `auto`, which picks by the adapter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// windowed on CPU adapters (lavapipe, llvmpipe, SwiftShader), gpu on every other.
    #[default]
    Auto,
    Windowed,
    Gpu,
}

impl Choice {
    pub fn resolve(self, adapter: &crate::gpu::AdapterSummary) -> Family {
        match self {
            Self::Auto if adapter.is_software() => Family::Windowed,
            Self::Auto | Self::Gpu => Family::Gpu,
            Self::Windowed => Family::Windowed,
        }
    }
}

/// The compiled kernels of the one family a run uses. Only that family's pipelines are built, so a device
/// that fits the GPU family (WebGPU's default limits) never compiles the windowed family's larger shaders.
pub enum Compiled {
    Windowed(windowed::Kernels),
    Gpu(gpu::Kernels),
}

/// A borrowed family of compiled kernels: what trainers, evaluators and servers run on.
#[derive(Clone, Copy)]
pub enum Ops<'k> {
    Windowed(&'k windowed::Kernels),
    Gpu(&'k gpu::Kernels),
}

impl Ops<'_> {
    pub fn family(self) -> Family {
        match self {
            Ops::Windowed(_) => Family::Windowed,
            Ops::Gpu(_) => Family::Gpu,
        }
    }
}

impl Compiled {
    pub fn new(
        gpu: &crate::gpu::Gpu,
        embedding_dim: usize,
        family: Family,
    ) -> anyhow::Result<Self> {
        Ok(match family {
            Family::Windowed => Self::Windowed(windowed::Kernels::new(gpu, embedding_dim)?),
            Family::Gpu => Self::Gpu(gpu::Kernels::new(gpu, embedding_dim).map_err(|e| {
                e.context(format!(
                    "the GPU kernel family does not run on adapter {}; try --kernels windowed",
                    gpu.adapter.name
                ))
            })?),
        })
    }

    pub fn ops(&self) -> Ops<'_> {
        match self {
            Self::Windowed(k) => Ops::Windowed(k),
            Self::Gpu(k) => Ops::Gpu(k),
        }
    }
}

/// Top-k of many queries: (Q, K) candidate indices (u32::MAX past the eligible candidates) and scores.
#[derive(Clone, Debug, PartialEq)]
pub struct TopK {
    pub k: usize,
    pub index: Vec<u32>, // (Q, K)
    pub score: Vec<f32>, // (Q, K)
}

impl TopK {
    /// Whether a top-`k` plan of `queries` queries in tiles of `per_tile` can be built: tiles a positive
    /// multiple of 64 queries (so each tile's output slices are 256-byte aligned), and each (Q, K)
    /// output within one buffer of the adapter.
    pub fn check_plan(
        gpu: &crate::gpu::Gpu,
        k: usize,
        queries: usize,
        per_tile: usize,
    ) -> anyhow::Result<()> {
        if per_tile == 0 || !per_tile.is_multiple_of(64) {
            anyhow::bail!("queries per tile must be a positive multiple of 64, got {per_tile}");
        }
        let bytes = queries * k * 4;
        if bytes as u64 > gpu.limits.max_buffer_size {
            anyhow::bail!(
                "top-{k} of {queries} queries needs {} MiB per output, more than the adapter's \
                 max_buffer_size",
                bytes >> 20
            );
        }
        Ok(())
    }

    /// Reads the (Q, K) results of a top-k pass back from its two output buffers.
    pub fn read(
        gpu: &crate::gpu::Gpu,
        k: usize,
        queries: usize,
        (index, score): (&wgpu::Buffer, &wgpu::Buffer),
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let n = queries * k;
        Ok(Self {
            k,
            index: gpu.read(index, 0, n).context("reading the top-k indices")?,
            score: gpu.read(score, 0, n).context("reading the top-k scores")?,
        })
    }

    /// (candidate index, score) of query `a`, best first, without the padding.
    pub fn row(&self, a: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let r = a * self.k..(a + 1) * self.k;
        self.index[r.clone()]
            .iter()
            .zip(&self.score[r])
            .filter(|(&i, _)| i != u32::MAX)
            .map(|(&i, &s)| (i, s))
    }
}

/// Candidates to leave out per query (`--exclude-seen`): a CSR of ascending, distinct candidate indices.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exclusions {
    pub offsets: Vec<u32>, // (Q + 1,)
    pub items: Vec<u32>,   // (S,)
}

impl Exclusions {
    pub fn none(queries: usize) -> Self {
        Self {
            offsets: vec![0; queries + 1],
            items: Vec::new(),
        }
    }

    /// Whether a top-`k` request of `queries` queries over `candidates` candidates with these exclusions
    /// can be planned (both families check the same rules, in the same order).
    pub fn check(
        &self,
        k: usize,
        max_k: usize,
        queries: usize,
        candidates: usize,
    ) -> anyhow::Result<()> {
        use anyhow::bail;
        if !(1..=max_k).contains(&k) {
            bail!("k must be between 1 and {max_k}, got {k}");
        }
        let (q, c) = (queries, candidates);
        if q == 0 || c == 0 {
            bail!("nothing to rank: {q} queries, {c} candidates");
        }
        if self.offsets.len() != q + 1 || *self.offsets.last().unwrap() as usize > self.items.len()
        {
            bail!("the exclusion lists do not match the {q} queries");
        }
        if let Some(&bad) = self.items.iter().find(|&&i| i as usize >= c) {
            bail!("an exclusion names candidate {bad}, but there are {c} candidates");
        }
        Ok(())
    }

    /// Each query's run sorted and without repeats, as the kernels read them.
    pub fn normalized(&self) -> Self {
        let mut out = Self {
            offsets: vec![0],
            items: Vec::with_capacity(self.items.len()),
        };
        for w in self.offsets.windows(2) {
            let mut run = self.items[w[0] as usize..w[1] as usize].to_vec();
            run.sort_unstable();
            run.dedup();
            out.items.extend(run);
            out.offsets.push(out.items.len() as u32);
        }
        out
    }
}
