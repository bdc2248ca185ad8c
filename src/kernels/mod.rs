//! The kernel families: `windowed`, shaped for software adapters (operands through 64 KiB uniform
//! windows, one dispatch per window), and `gpu`, shaped for real GPUs (storage buffers, a few large
//! dispatches per step). Both share the bind-and-launch machinery of `gpu::launch`.

pub mod gpu;
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

/// The compiled kernels of a run: the windowed family always (evaluation and serving use it), and the
/// GPU family when training runs on it.
pub struct Compiled {
    pub family: Family,
    pub windowed: windowed::Kernels,
    pub gpu: Option<gpu::Kernels>,
}

impl Compiled {
    pub fn new(
        gpu: &crate::gpu::Gpu,
        embedding_dim: usize,
        family: Family,
    ) -> anyhow::Result<Self> {
        let windowed = windowed::Kernels::new(gpu, embedding_dim)?;
        let gpu_family = match family {
            Family::Windowed => None,
            Family::Gpu => Some(gpu::Kernels::new(gpu, embedding_dim).map_err(|e| {
                e.context(format!(
                    "the GPU kernel family does not run on adapter {}; try --kernels windowed",
                    gpu.adapter.name
                ))
            })?),
        };
        Ok(Self {
            family,
            windowed,
            gpu: gpu_family,
        })
    }
}
