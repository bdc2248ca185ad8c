//! Serving a trained model: BruteForce top-k recommendations over all candidates and rating predictions,
//! on either family's kernels (`kernels::windowed::top_k`, `kernels::gpu::top_k`). `recommender` is a loaded model that `wgrec recommend`,
//! `wgrec predict` and `wgrec serve` answer from; `http` is the server of `wgrec serve`.

pub mod http;
pub mod recommender;

pub use crate::kernels::windowed::top_k::{predict, BruteForce, MAX_K};
pub use crate::kernels::{Exclusions, TopK};
