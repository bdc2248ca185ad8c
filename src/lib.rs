//! wgrec: TensorFlow Recommenders' multi-task MovieLens model trained entirely in WebGPU compute shaders.
//!
//! The pipeline reads top to bottom: `data` (MovieLens files, vocabularies, the split, host batches) ->
//! `model` (config, parameters, their GPU buffers) -> `kernels` (two families of WGSL kernels on the
//! `gpu` context) -> `train` (the trainer, model selection, and the `Run` that trains, selects, evaluates
//! and saves) -> `eval` (FactorizedTopK, RMSE, Recall/NDCG) -> `checkpoint` (the safetensors file) ->
//! `serve` (BruteForce top-k, rating predictions, the `Recommender` that the commands answer from, and the
//! HTTP server of `wgrec serve`) -> `report` (tables, JSON, plots, sweeps, recipes, benchmarks).
//! `options` is what a run is asked to do; `cpu` holds the CPU twin of every kernel and the
//! composed reference step, which `selftest` holds the GPU against on any adapter;
//! `output` writes files so that a failed run replaces none.

pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod eval;
pub mod gpu;
pub mod kernels;
pub mod model;
pub mod options;
pub mod output;
pub mod progress;
pub mod report;
pub mod selftest;
pub mod serve;
pub mod train;
