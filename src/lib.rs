//! wgrec: TensorFlow Recommenders' multi-task MovieLens model trained entirely in WebGPU compute shaders.
//!
//! The pipeline reads top to bottom: `data` (MovieLens files, vocabularies, split) -> `batches` (fixed
//! batches and their distinct users / movies) -> `plan` (GPU buffers and forward launches) -> `kernels`
//! (one launcher per shader in `shaders/`) -> `trainer` (backward, Adagrad, epochs) -> `evaluate`
//! (FactorizedTopK, RMSE) -> `report` (tables and JSON). `cpu` holds the CPU twin of every kernel.

pub mod batches;
pub mod cpu;
pub mod data;
pub mod evaluate;
pub mod gpu;
pub mod kernels;
pub mod model;
pub mod plan;
pub mod plot;
pub mod recipe;
pub mod report;
pub mod sweep;
pub mod trainer;
