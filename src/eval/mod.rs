//! Evaluation as TFRS's `model.evaluate` reports it, plus Recall/NDCG: the metrics and the evaluator that
//! computes them on the GPU.

pub mod evaluator;
pub mod metrics;

pub use evaluator::Evaluator;
pub use metrics::{TestMetrics, KS, RANKED_KS};
