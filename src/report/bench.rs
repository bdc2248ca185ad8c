//! `wgrec bench`: every kernel of a training epoch and an evaluation, profiled at the tutorial's shapes and
//! at a larger shape on synthetic data, each matrix kernel set against a native CPU sgemm (the
//! `matrixmultiply` crate on all cores) of the same shapes measured in the same process, so the figure that
//! matters is a ratio that travels between machines rather than an absolute time.

use crate::data::{Ratings, SplitMix64};
use crate::eval::Evaluator;
use crate::gpu::profile::{KernelStat, Profiler, Timing};
use crate::gpu::Gpu;
use crate::kernels::model::GpuModel;
use crate::kernels::windowed::Kernels;
use crate::kernels::{Compiled, Family};
use crate::model::{ModelConfig, Params};
use crate::options::TrainOptions;
use crate::train::trainer::Trainer;
use anyhow::Result;
use std::time::Instant;

/// One benchmark shape: a synthetic dataset and a model.
#[derive(Clone, Debug)]
pub struct Shape {
    pub name: &'static str,
    pub users: usize,
    pub movies: usize,
    pub train: usize,
    pub test: usize,
    pub batch_size: usize,
    pub cfg: ModelConfig,
}

impl Shape {
    /// MovieLens 100K's sizes with the tutorial's model.
    pub fn tutorial() -> Self {
        Self {
            name: "tutorial",
            users: 943,
            movies: 1664,
            train: 80_000,
            test: 20_000,
            batch_size: 8192,
            cfg: ModelConfig::tutorial(944, 1665, 32),
        }
    }

    /// ML-1M-like sizes, twice the batch, D = 64 (a 128 -> 256 -> 128 MLP).
    pub fn large() -> Self {
        Self {
            name: "large",
            users: 6040,
            movies: 3706,
            train: 200_000,
            test: 20_000,
            batch_size: 16384,
            cfg: ModelConfig {
                users: 6041,
                movies: 3707,
                embedding_dim: 64,
                hidden1: 256,
                hidden2: 128,
            },
        }
    }

    /// (M, K, N) of the matrix products each matrix kernel computes once per batch of `rows` rows with
    /// `users` / `movies` distinct users and movies; the evaluation scores `queries` users against
    /// `candidates` movies.
    fn gemms(&self, kernel: &str, rows: usize, users: usize, movies: usize) -> Vec<[usize; 3]> {
        let c = &self.cfg;
        let (k, h1, h2, d) = (2 * c.embedding_dim, c.hidden1, c.hidden2, c.embedding_dim);
        match kernel {
            "dense_forward" => vec![[rows, k, h1], [rows, h1, h2]],
            "dense_backward_data" => vec![[rows, h2, h1], [rows, h1, k]],
            "dense_backward_weights" => vec![[h1, rows, h2], [k, rows, h1]],
            // logits U M^T and the weighted sums of the other side: two products per kernel.
            "retrieval_softmax_users" => vec![[users, d, movies], [users, movies, d]],
            "retrieval_softmax_movies" => vec![[movies, d, users], [movies, users, d]],
            "candidate_scores" => vec![[users, d, movies]],
            _ => vec![],
        }
    }
}

/// Ratings drawn from a latent-factor model: users uniform, movies with Zipf-like popularity (so batches
/// have MovieLens-like counts of distinct movies), ratings 1..5 from a noisy dot product. Ids start at 1
/// (row 0 is out-of-vocabulary).
pub fn synthetic_ratings(users: usize, movies: usize, n: usize, seed: u64) -> Ratings {
    let mut rng = SplitMix64::new(seed);
    let dim = 4;
    let mut factors = |count: usize| -> Vec<f32> {
        (0..count * dim)
            .map(|_| rng.next_f32() * 2.0 - 1.0)
            .collect()
    };
    let (uf, mf) = (factors(users), factors(movies));
    // Inverse CDF of p(i) ~ 1 / (i + 10) over movies.
    let weights: Vec<f64> = (0..movies).map(|i| 1.0 / (i as f64 + 10.0)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(movies);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }
    let mut r = Ratings::default();
    for _ in 0..n {
        let u = rng.below(users as u64) as usize;
        let x = rng.next_f32() as f64;
        let m = cdf.partition_point(|&c| c < x).min(movies - 1);
        let dot: f32 = (0..dim).map(|j| uf[u * dim + j] * mf[m * dim + j]).sum();
        let noise = rng.next_f32() - 0.5;
        r.user.push(1 + u as u32);
        r.movie.push(1 + m as u32);
        r.rating
            .push((3.0 + 2.0 * dot + noise).round().clamp(1.0, 5.0));
    }
    r
}

/// C = A B for row-major A (m, k) and B (k, n), rows of C split across `threads` threads.
fn sgemm(a: &[f32], b: &[f32], c: &mut [f32], [m, k, n]: [usize; 3], threads: usize) {
    let rows = m.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (i, c) in c.chunks_mut(rows * n).enumerate() {
            let a = &a[i * rows * k..];
            let mm = c.len() / n;
            s.spawn(move || unsafe {
                // Safety: a holds mm x k, b k x n and c mm x n floats, all row-major with unit column stride.
                matrixmultiply::sgemm(
                    mm,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    k as isize,
                    1,
                    b.as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                );
            });
        }
    });
}

/// Seconds per native sgemm of shape (M, K, N), the best of a few repetitions after a warm-up.
pub fn native_sgemm_seconds(shape: [usize; 3], threads: usize) -> f64 {
    let [m, k, n] = shape;
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut c = vec![0.0f32; m * n];
    sgemm(&a, &b, &mut c, shape, threads);
    let reps = ((2e8 / (2.0 * (m * k * n) as f64)) as usize).clamp(3, 50);
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            sgemm(&a, &b, &mut c, shape, threads);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// One kernel's row of the benchmark.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KernelBench {
    pub phase: &'static str,
    pub kernel: &'static str,
    pub calls: u64,
    pub ms: f64,
    pub gflops: f64,
    pub gbytes_per_s: f64,
    /// GFLOP/s of the native sgemm doing the same products, and our share of it.
    pub native_gflops: Option<f64>,
    pub ratio: Option<f64>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ShapeBench {
    pub shape: String,
    pub epoch_seconds: f64,
    pub eval_seconds: f64,
    pub kernels: Vec<KernelBench>,
}

/// Trains one warm-up epoch (pipelines compile on first use), then one profiled epoch and one profiled
/// evaluation, and prices the matrix kernels against the native sgemm. Training runs on `family`;
/// evaluation on the windowed family.
pub fn run(
    gpu: &Gpu,
    shape: &Shape,
    threads: usize,
    seed: u64,
    family: Family,
) -> Result<ShapeBench> {
    crate::kernels::windowed::check_shape(&shape.cfg)?;
    let compiled = Compiled::new(gpu, shape.cfg.embedding_dim, family)?;
    let ops = compiled.ops();
    let train = synthetic_ratings(shape.users, shape.movies, shape.train, seed);
    let test = synthetic_ratings(shape.users, shape.movies, shape.test, seed ^ 1);
    let opts = TrainOptions {
        batch_size: shape.batch_size,
        seed,
        ..TrainOptions::tutorial(1.0, 1.0)
    };
    let model = GpuModel::new(gpu, &shape.cfg, &Params::init(&shape.cfg, seed))?;
    let mut trainer = Trainer::on_family(gpu, ops, model, &train, &opts)?;
    let epoch_seconds = trainer.epoch(None)?.seconds;
    let profiler = Profiler::new(gpu)?;
    if profiler.timing() == Timing::CpuWallClock {
        eprintln!("note: no timestamp queries on this adapter; kernel times are CPU wall clock");
    }
    trainer.profile(&profiler);
    trainer.epoch(None)?;
    let candidates: Vec<u32> = (1..=shape.movies as u32).collect();
    let mut evaluator =
        Evaluator::on_family(gpu, ops, &trainer.model, &test, None, &candidates, 4096)?;
    let eval_seconds = evaluator.run(1.0, 1.0)?.seconds;
    profiler.set_phase("evaluate");
    evaluator.profile(&profiler);
    evaluator.run(1.0, 1.0)?;

    // Distinct users and movies per batch, for the retrieval products (the mean over the epoch's batches).
    let batches = trainer.batch_shapes();
    let mean = |f: &dyn Fn(&crate::gpu::batches::BatchShape) -> usize| {
        batches.iter().map(f).sum::<usize>() / batches.len().max(1)
    };
    let (rows, users, movies) = (mean(&|b| b.rows), mean(&|b| b.users), mean(&|b| b.movies));
    let test_users = {
        let mut u = test.user.clone();
        u.sort_unstable();
        u.dedup();
        u.len()
    };
    let mut out = Vec::new();
    for phase in ["train", "evaluate"] {
        for (kernel, s) in profiler.kernels(phase) {
            let gemms = if phase == "train" {
                shape.gemms(kernel, rows, users, movies)
            } else {
                shape.gemms(kernel, shape.test.min(4096), test_users, shape.movies)
            };
            let native = (!gemms.is_empty()).then(|| {
                let (flops, secs) = gemms.iter().fold((0.0, 0.0), |(f, t), g| {
                    let [m, k, n] = *g;
                    (
                        f + 2.0 * (m * k * n) as f64,
                        t + native_sgemm_seconds(*g, threads),
                    )
                });
                flops / secs / 1e9
            });
            out.push(row(phase, kernel, &s, native));
        }
    }
    Ok(ShapeBench {
        shape: format!(
            "{}: {} users, {} movies, {} train / {} test ratings, B = {}, D = {}, MLP {} -> {} -> {} -> 1",
            shape.name,
            shape.users,
            shape.movies,
            shape.train,
            shape.test,
            shape.batch_size,
            shape.cfg.embedding_dim,
            2 * shape.cfg.embedding_dim,
            shape.cfg.hidden1,
            shape.cfg.hidden2
        ),
        epoch_seconds,
        eval_seconds,
        kernels: out,
    })
}

fn row(
    phase: &'static str,
    kernel: &'static str,
    s: &KernelStat,
    native: Option<f64>,
) -> KernelBench {
    let per_s = |x: f64| {
        if s.seconds > 0.0 {
            x / s.seconds / 1e9
        } else {
            0.0
        }
    };
    let gflops = per_s(s.flops);
    KernelBench {
        phase,
        kernel,
        calls: s.calls,
        ms: 1e3 * s.seconds,
        gflops,
        gbytes_per_s: per_s(s.bytes),
        native_gflops: native,
        ratio: native.map(|n| gflops / n),
    }
}

/// The benchmark as a table.
pub fn table(b: &ShapeBench) -> String {
    let mut s = format!(
        "{}\n  first (warm-up) epoch {:.2} s, evaluation {:.3} s; profiled below:\n",
        b.shape, b.epoch_seconds, b.eval_seconds
    );
    s.push_str(&format!(
        "  {:<9}{:<34}{:>7}{:>10}{:>9}{:>8}{:>11}{:>8}\n",
        "phase", "kernel", "calls", "ms", "GFLOP/s", "GB/s", "sgemm GF/s", "ratio"
    ));
    for k in &b.kernels {
        let opt = |x: Option<f64>, p: usize| x.map_or("-".into(), |v| format!("{v:.p$}"));
        s.push_str(&format!(
            "  {:<9}{:<34}{:>7}{:>10.1}{:>9.1}{:>8.2}{:>11}{:>8}\n",
            k.phase,
            k.kernel,
            k.calls,
            k.ms,
            k.gflops,
            k.gbytes_per_s,
            opt(k.native_gflops, 1),
            opt(k.ratio, 3)
        ));
    }
    s
}

/// One point of the scaling benchmark: a steady-state epoch of the joint model on synthetic data.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScalePoint {
    pub ratings: usize,
    pub users: usize,
    pub movies: usize,
    pub batch_size: usize,
    pub epoch_seconds: f64,
    pub ratings_per_second: f64,
}

/// Epoch time of the tutorial's joint model against dataset size (batch 8192; users and movies grow with
/// the ratings as in MovieLens 100K) and against batch size (100,000 ratings). Each point trains a warm-up
/// epoch and reports the second.
pub fn scaling(gpu: &Gpu, seed: u64) -> Result<Vec<ScalePoint>> {
    let kernels = Kernels::new(gpu, 32)?;
    let mut grid: Vec<(usize, usize)> = [25_000, 50_000, 100_000, 200_000, 400_000]
        .into_iter()
        .map(|n| (n, 8192))
        .collect();
    grid.extend(
        [2048, 4096, 16_384, 32_768]
            .into_iter()
            .map(|b| (100_000, b)),
    );
    let mut out = Vec::new();
    for (ratings, batch_size) in grid {
        let (users, movies) = (ratings / 106 + 1, ratings / 60 + 1);
        let train = synthetic_ratings(users, movies, ratings, seed);
        let cfg = ModelConfig::tutorial(users + 1, movies + 1, 32);
        let opts = TrainOptions {
            batch_size,
            seed,
            ..TrainOptions::tutorial(1.0, 1.0)
        };
        let model = GpuModel::new(gpu, &cfg, &Params::init(&cfg, seed))?;
        let mut trainer = Trainer::new(gpu, &kernels, model, &train, &opts)?;
        trainer.epoch(None)?;
        let epoch_seconds = trainer.epoch(None)?.seconds;
        eprintln!("  {ratings:>7} ratings, batch {batch_size:>5}: {epoch_seconds:.2} s per epoch");
        out.push(ScalePoint {
            ratings,
            users,
            movies,
            batch_size,
            epoch_seconds,
            ratings_per_second: ratings as f64 / epoch_seconds,
        });
    }
    Ok(out)
}

pub fn scaling_table(points: &[ScalePoint]) -> String {
    let mut s = format!(
        "{:>9}{:>8}{:>8}{:>8}{:>10}{:>14}\n",
        "ratings", "users", "movies", "batch", "epoch s", "ratings/s"
    );
    for p in points {
        s.push_str(&format!(
            "{:>9}{:>8}{:>8}{:>8}{:>10.2}{:>14.0}\n",
            p.ratings, p.users, p.movies, p.batch_size, p.epoch_seconds, p.ratings_per_second
        ));
    }
    s
}

/// Two panels: epoch seconds against ratings (batch 8192) and against batch size (100,000 ratings).
pub fn scaling_svg(points: &[ScalePoint], adapter: &str) -> Result<String> {
    use plotters::prelude::*;
    let mut svg = String::new();
    draw_scaling(
        SVGBackend::with_string(&mut svg, (1000, 420)).into_drawing_area(),
        points,
        adapter,
    )?;
    Ok(svg)
}

fn draw_scaling(
    root: plotters::prelude::DrawingArea<plotters::prelude::SVGBackend, plotters::coord::Shift>,
    points: &[ScalePoint],
    adapter: &str,
) -> Result<()> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing the scaling chart: {e}");
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(
            &format!("wgrec: one joint epoch on {adapter}"),
            ("sans-serif", 18),
        )
        .map_err(|e| err(&e))?;
    let panels = root.split_evenly((1, 2));
    // Left: ratings on a linear axis; right: batch size on a log2 axis (labelled in rows).
    let by_size: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.batch_size == 8192)
        .map(|p| (p.ratings as f64, p.epoch_seconds))
        .collect();
    let by_batch: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.ratings == 100_000)
        .map(|p| ((p.batch_size as f64).log2(), p.epoch_seconds))
        .collect();
    let size_label = |x: &f64| format!("{:.0}k", x / 1000.0);
    let batch_label = |x: &f64| format!("{:.0}", x.exp2());
    type Panel<'a> = (&'a str, Vec<(f64, f64)>, &'a dyn Fn(&f64) -> String);
    let panels_data: [Panel; 2] = [
        ("ratings per epoch (batch 8192)", by_size, &size_label),
        ("batch size (100,000 ratings)", by_batch, &batch_label),
    ];
    for (area, (x_desc, mut pts, label)) in panels.iter().zip(panels_data) {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
            continue;
        };
        let pad = (last.0 - first.0).max(1.0) * 0.06;
        let y_max = pts.iter().map(|p| p.1).fold(0.0, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(area)
            .margin(14)
            .x_label_area_size(42)
            .y_label_area_size(56)
            .build_cartesian_2d(first.0 - pad..last.0 + pad, 0.0..y_max)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("seconds per epoch")
            .x_labels(6)
            .x_label_formatter(label)
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), BLUE.stroke_width(2)))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threaded_sgemm_matches_naive_product() {
        let (m, k, n) = (37, 19, 23);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 3) % 13) as f32 - 6.0).collect();
        for threads in [1, 2, 3, 8] {
            let mut c = vec![f32::NAN; m * n];
            sgemm(&a, &b, &mut c, [m, k, n], threads);
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
                    assert_eq!(c[i * n + j], want, "({i}, {j}) with {threads} threads");
                }
            }
        }
    }

    #[test]
    fn synthetic_ratings_are_deterministic_and_in_range() {
        let r = synthetic_ratings(50, 80, 5000, 3);
        assert_eq!(r, synthetic_ratings(50, 80, 5000, 3));
        assert_ne!(r, synthetic_ratings(50, 80, 5000, 4));
        assert!(r.user.iter().all(|&u| (1..=50).contains(&u)));
        assert!(r.movie.iter().all(|&m| (1..=80).contains(&m)));
        assert!(r
            .rating
            .iter()
            .all(|&x| (1.0..=5.0).contains(&x) && x.fract() == 0.0));
        // Zipf-like: the most popular tenth of the movies gets far more than a tenth of the ratings.
        let top = r.movie.iter().filter(|&&m| m <= 8).count();
        assert!(
            top > 5000 / 5,
            "top-decile movies got {top} of 5000 ratings"
        );
    }
}
