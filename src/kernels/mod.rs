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
