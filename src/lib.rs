//! wgrec: TensorFlow Recommenders' multi-task MovieLens model trained entirely in WebGPU compute shaders.
//!
//! The pipeline reads top to bottom: `data` (MovieLens files, vocabularies, split) -> `batches` (fixed
//! batches and their distinct users / movies) -> `plan` (GPU buffers and forward launches) -> `kernels`
//! (one launcher per shader in `shaders/`) -> `trainer` (backward, Adagrad, epochs) -> `evaluate`
//! (FactorizedTopK, RMSE) -> `report` (tables and JSON) -> `checkpoint` (save, load, resume) -> `serve`
//! (BruteForce top-k, rating predictions). `cpu` holds the CPU twin of every kernel.
//! `download` fetches GroupLens releases into the cache for `data`; `synth` writes synthetic data sets.
//! `profile` times every dispatch and writes Chrome traces; `bench` benchmarks the kernels. `validation`
//! holds out part of the training split for model selection (`report` runs it). `recommender` is a loaded
//! model that `recommend`, `predict` and `serve` answer from; `http` is `wgrec serve`.

pub mod batches;
pub mod bench;
pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod download;
pub mod evaluate;
pub mod gpu;
pub mod http;
pub mod kernels;
pub mod model;
pub mod output;
pub mod plan;
pub mod plot;
pub mod profile;
pub mod progress;
pub mod recipe;
pub mod recommender;
pub mod report;
pub mod serve;
pub mod sweep;
pub mod synth;
pub mod trainer;
pub mod validation;
