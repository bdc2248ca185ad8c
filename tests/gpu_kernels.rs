//! The GPU kernel family (`wgrec::kernels::gpu`) against its CPU twins (`wgrec::cpu::gpu_family`), on a
//! device built with WebGPU's default limits (`wgpu::Limits::default()`), so a kernel that needs more
//! than a browser allows fails here. Shapes are not multiples of the 64-row tiles or the 16-wide steps and
//! span several workgroups; outputs start as NaN, with NaN past their end, so an element a kernel should
//! write but does not, or must leave alone but writes, shows up. Then one whole `GpuStep` (and a few in a
//! row) against the composed CPU reference step, the step's dispatch count at the tutorial's shape, and the
//! family's evaluation pass and serving (which need no windowed kernel) against the CPU twins.
//! Needs an adapter: skips without one, fails in CI.

mod common;

use common::{assert_close64, ids_covering, no_adapter, relu_like, uniform};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use wgrec::cpu;
use wgrec::cpu::gpu_family as twin;
use wgrec::cpu::reference::CpuModel;
use wgrec::data::batches::Batch;
use wgrec::data::{Ratings, SplitMix64};
use wgrec::gpu::batches::BatchShape;
use wgrec::gpu::launch::Launch;
use wgrec::gpu::{AdapterSummary, Gpu};
use wgrec::kernels::gpu::*;
use wgrec::kernels::model::GpuModel;
use wgrec::model::{ModelConfig, Params};
use wgrec::model::{EPSILON, INITIAL_ACCUMULATOR};
use wgrec::options::TrainOptions;

/// NaNs past the end of every output: a kernel writing past its rows would overwrite them.
const TAIL: usize = 64;

/// `common::assert_close`, printing the largest error first (`--nocapture` shows them): max |got - want|
/// and its share of the tolerance atol + rtol |want|.
#[track_caller]
fn assert_close_report(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    let (mut max_abs, mut max_share) = (0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        if w.is_nan() {
            continue;
        }
        let diff = (g as f64 - w as f64).abs();
        max_abs = max_abs.max(diff);
        max_share = max_share.max(diff / (atol as f64 + rtol as f64 * (w as f64).abs()));
    }
    eprintln!(
        "{what}: max |diff| {max_abs:.2e}, {:.0}% of the tolerance (atol {atol:e}, rtol {rtol:e})",
        100.0 * max_share
    );
    common::assert_close(what, got, want, atol, rtol);
}

fn with_tail(value: &[f32]) -> Vec<f32> {
    let mut v = value.to_vec();
    v.extend(std::iter::repeat_n(f32::NAN, TAIL));
    v
}

/// The preferred adapter (real GPUs before software ones, as `Gpu::new` ranks them) with a device that
/// has exactly WebGPU's default limits, shared by every test; None (after printing why) without one.
fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    let gpu = GPU
        .get_or_init(|| {
            let inst = wgpu::Instance::new(
                wgpu::InstanceDescriptor::new_without_display_handle_from_env(),
            );
            let mut adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
            adapters.sort_by_key(|a| a.get_info().device_type == wgpu::DeviceType::Cpu);
            let adapter = adapters.into_iter().next()?;
            let limits = wgpu::Limits::default();
            let (device, queue) =
                pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                    label: Some("wgrec gpu family (default limits)"),
                    required_limits: limits.clone(),
                    ..Default::default()
                }))
                .expect("the adapter supports WebGPU's default limits");
            let summary = AdapterSummary::of(&adapter.get_info());
            Some(Gpu::from_parts(device, queue, summary, limits))
        })
        .as_ref();
    if gpu.is_none() {
        no_adapter();
    }
    gpu
}

/// The family's pipelines with D baked in, built once per D.
fn kernels(gpu: &'static Gpu, dim: usize) -> &'static Kernels {
    static KERNELS: OnceLock<Mutex<HashMap<usize, &'static Kernels>>> = OnceLock::new();
    let mut map = KERNELS.get_or_init(Default::default).lock().unwrap();
    map.entry(dim).or_insert_with(|| {
        Box::leak(Box::new(
            Kernels::new(gpu, dim).expect("every GPU-family kernel compiles"),
        ))
    })
}

/// Runs `launches` with their workgroup grids, in order, in one compute pass, and waits.
fn run(gpu: &Gpu, launches: &[(&Launch, (u32, u32, u32))]) {
    common::submit(gpu, |pass| {
        for (launch, groups) in launches {
            launch.run_groups(pass, *groups);
        }
    });
}

fn nans(gpu: &Gpu, label: &str, len: usize) -> wgpu::Buffer {
    common::nans(gpu, label, len + TAIL)
}

fn read(gpu: &Gpu, b: &wgpu::Buffer, len: usize) -> Vec<f32> {
    common::read_f32(gpu, b, len + TAIL)
}

/// A flat MLP-like parameter vector: NaN everywhere (a kernel reading outside its tensors shows up), with
/// each (offset, values) placed.
fn params_vector(len: usize, tensors: &[(usize, &[f32])]) -> Vec<f32> {
    let mut v = vec![f32::NAN; len];
    for (at, t) in tensors {
        v[*at..*at + t.len()].copy_from_slice(t);
    }
    v
}

/// A batch whose ids are spread over larger tables (table row != distinct index): `rows` rows over
/// `users` distinct users (table rows 1, 3, 5, ...) and `movies` distinct movies (rows 0, 3, 6, ...).
struct SparseBatch {
    batch: Batch,
    user_table: Vec<f32>,  // (2 users + 1, D)
    movie_table: Vec<f32>, // (3 movies, D)
}

impl SparseBatch {
    fn new(seed: u64, rows: usize, users: u32, movies: u32, dim: usize, scale: f32) -> Self {
        let mut rng = SplitMix64::new(seed);
        let user = ids_covering(&mut rng, rows, users)
            .into_iter()
            .map(|u| 2 * u + 1)
            .collect();
        let movie = ids_covering(&mut rng, rows, movies)
            .into_iter()
            .map(|m| 3 * m)
            .collect();
        let rating = (0..rows).map(|_| 1.0 + rng.below(5) as f32).collect();
        Self {
            batch: Batch::new(user, movie, rating),
            user_table: uniform(&mut rng, (2 * users as usize + 1) * dim, -scale, scale),
            movie_table: uniform(&mut rng, 3 * movies as usize * dim, -scale, scale),
        }
    }

    fn packed(&self, gpu: &Gpu, capacity: usize) -> PackedBatch {
        let p = PackedBatch::new(gpu, "packed batch", capacity);
        p.write(gpu, &self.batch);
        p
    }

    fn shape(&self) -> BatchShape {
        BatchShape {
            rows: self.batch.rows(),
            users: self.batch.users.len(),
            movies: self.batch.movies.len(),
        }
    }
}

#[test]
fn dense_forward_gpu_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 16);
    // (rows, K, N): a K tail inside a 16-wide step, a partial column tile, several row tiles; the
    // tutorial's second layer; a single row.
    for (rows, kk, n) in [(133, 20, 72), (70, 256, 128), (1, 4, 4)] {
        let mut rng = SplitMix64::new(rows as u64 + 7);
        let x = uniform(&mut rng, rows * kk, -1.0, 1.0);
        let w = uniform(&mut rng, kk * n, -0.5, 0.5);
        let b = uniform(&mut rng, n, -0.2, 0.2);
        let (w_at, b_at) = (64, 64 + (kk * n).next_multiple_of(64));
        let mlp = params_vector(b_at + 64 + n, &[(w_at, &w), (b_at, &b)]);
        let (xb, mb, y) = (
            gpu.upload("x", &x),
            gpu.upload("mlp", &mlp),
            nans(gpu, "y", rows * n),
        );
        let launch = dense_forward(gpu, &k.dense_forward, "dense_forward_gpu", &xb, &mb, &y);
        launch.set(gpu, &DenseForwardParams::new(rows, kk, n, w_at, b_at));
        run(gpu, &[(&launch, groups::dense_forward(rows, n))]);
        let want = cpu::dense_forward(&x, &w, &b, rows, kk, n, true);
        assert_close_report(
            &format!("y ({rows} x {kk} -> {n})"),
            &read(gpu, &y, rows * n),
            &with_tail(&want),
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn dense_gather_forward_gpu_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    // D = 12: one 16-wide step of x holds the user's 12 values and the movie's first 4.
    for (dim, rows, n) in [(12, 133, 72), (32, 70, 256)] {
        let k = kernels(gpu, dim);
        let sb = SparseBatch::new(3, rows, 23, 31, dim, 0.5);
        let mut rng = SplitMix64::new(4);
        let w = uniform(&mut rng, 2 * dim * n, -0.5, 0.5);
        let b = uniform(&mut rng, n, -0.2, 0.2);
        let (w_at, b_at) = (0, (2 * dim * n).next_multiple_of(64));
        let mlp = params_vector(b_at + n, &[(w_at, &w), (b_at, &b)]);
        let batch = sb.packed(gpu, rows + 5);
        let (ut, mt, mb, y) = (
            gpu.upload("user_emb", &sb.user_table),
            gpu.upload("movie_emb", &sb.movie_table),
            gpu.upload("mlp", &mlp),
            nans(gpu, "h1", rows * n),
        );
        let launch = dense_gather_forward(
            gpu,
            &k.dense_gather_forward,
            "dense_gather_forward_gpu",
            (&ut, &mt),
            &batch,
            &mb,
            &y,
        );
        let p = DenseForwardParams::new(rows, 2 * dim, n, w_at, b_at).gather(&batch.layout);
        launch.set(gpu, &p);
        run(gpu, &[(&launch, groups::dense_forward(rows, n))]);
        let want = twin::dense_gather_forward(
            &sb.user_table,
            &sb.movie_table,
            &sb.batch,
            dim,
            &w,
            &b,
            n,
            true,
        );
        assert_close_report(
            &format!("h1 (D {dim}, {rows} rows, N {n})"),
            &read(gpu, &y, rows * n),
            &with_tail(&want),
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn dense_backward_data_gpu_matches_cpu_with_and_without_mask() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 16);
    for (rows, kk, n) in [(133, 72, 20), (70, 256, 128)] {
        let mut rng = SplitMix64::new(11);
        let dy = uniform(&mut rng, rows * n, -1.0, 1.0);
        let w = uniform(&mut rng, kk * n, -0.5, 0.5);
        let h = relu_like(&mut rng, rows * kk);
        let w_at = 128;
        let mlp = params_vector(w_at + kk * n + 64, &[(w_at, &w)]);
        let (dyb, mb, hb) = (
            gpu.upload("dy", &dy),
            gpu.upload("mlp", &mlp),
            gpu.upload("h", &h),
        );
        for (mask, kernel) in [
            (true, &k.dense_backward_data),
            (false, &k.dense_backward_data_linear),
        ] {
            let dx = nans(gpu, "dx", rows * kk);
            let launch =
                dense_backward_data(gpu, kernel, "dense_backward_data_gpu", &dyb, &mb, &hb, &dx);
            launch.set(gpu, &DenseBackwardDataParams::new(rows, kk, n, w_at));
            run(gpu, &[(&launch, groups::dense_backward_data(rows, kk))]);
            let want = cpu::dense_backward_data(&dy, &w, mask.then_some(&h[..]), rows, kk, n);
            assert_close_report(
                &format!("dx ({rows} x {n} -> {kk}, mask {mask})"),
                &read(gpu, &dx, rows * kk),
                &with_tail(&want),
                1e-5,
                1e-4,
            );
        }
    }
}

/// A split-partials gradient buffer (S, L) as the kernels write it: per split, W (K, N) at `w` and b (N)
/// at `b`, NaN elsewhere (never written).
fn split_grads(splits: &[(Vec<f32>, Vec<f32>)], len: usize, w: usize, b: usize) -> Vec<f32> {
    let mut v = vec![f32::NAN; splits.len() * len];
    for (s, (dw, db)) in splits.iter().enumerate() {
        v[s * len + w..][..dw.len()].copy_from_slice(dw);
        v[s * len + b..][..db.len()].copy_from_slice(db);
    }
    v
}

#[test]
fn dense_backward_weights_gpu_writes_one_partial_per_split() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 16);
    // Splits of 48 rows: 133 rows are 48 + 48 + 37; K 72 is two input tiles (the second partial).
    for (rows, kk, n, split_rows) in [(133, 72, 20, 48), (300, 256, 128, 256)] {
        let mut rng = SplitMix64::new(12);
        let x = relu_like(&mut rng, rows * kk);
        let dy = uniform(&mut rng, rows * n, -1.0, 1.0);
        let (w_at, b_at) = (64, 64 + (kk * n).next_multiple_of(64));
        let len = b_at + n.next_multiple_of(64);
        let s = splits(rows, split_rows);
        let (xb, dyb, grad) = (
            gpu.upload("x", &x),
            gpu.upload("dy", &dy),
            nans(gpu, "grad", s * len),
        );
        let launch = dense_backward_weights(
            gpu,
            &k.dense_backward_weights,
            "dense_backward_weights_gpu",
            &xb,
            &dyb,
            &grad,
        );
        let p = DenseBackwardWeightsParams::new(rows, kk, n, split_rows, len, w_at, b_at);
        launch.set(gpu, &p);
        run(gpu, &[(&launch, groups::dense_backward_weights(kk, n, s))]);
        let want = twin::dense_backward_weights_splits(&x, &dy, rows, kk, n, split_rows);
        assert_eq!(want.len(), s);
        assert_close_report(
            &format!("grad ({rows} rows, {kk} x {n}, {s} splits)"),
            &read(gpu, &grad, s * len),
            &with_tail(&split_grads(&want, len, w_at, b_at)),
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn dense_gather_backward_weights_gpu_writes_one_partial_per_split() {
    let Some(gpu) = gpu() else { return };
    for (dim, rows, n, split_rows) in [(12, 133, 72, 48), (32, 100, 256, 64)] {
        let k = kernels(gpu, dim);
        let sb = SparseBatch::new(5, rows, 23, 31, dim, 0.5);
        let mut rng = SplitMix64::new(13);
        let dy = uniform(&mut rng, rows * n, -1.0, 1.0);
        let kk = 2 * dim;
        let (w_at, b_at) = (0, (kk * n).next_multiple_of(64));
        let len = b_at + n.next_multiple_of(64);
        let s = splits(rows, split_rows);
        let batch = sb.packed(gpu, rows);
        let (ut, mt, dyb, grad) = (
            gpu.upload("user_emb", &sb.user_table),
            gpu.upload("movie_emb", &sb.movie_table),
            gpu.upload("dy", &dy),
            nans(gpu, "grad", s * len),
        );
        let launch = dense_gather_backward_weights(
            gpu,
            &k.dense_gather_backward_weights,
            "dense_gather_backward_weights_gpu",
            (&ut, &mt),
            &batch,
            &dyb,
            &grad,
        );
        let p = DenseBackwardWeightsParams::new(rows, kk, n, split_rows, len, w_at, b_at)
            .gather(&batch.layout);
        launch.set(gpu, &p);
        run(gpu, &[(&launch, groups::dense_backward_weights(kk, n, s))]);
        let x = twin::gathered_x(&sb.user_table, &sb.movie_table, &sb.batch, dim);
        let want = twin::dense_backward_weights_splits(&x, &dy, rows, kk, n, split_rows);
        assert_close_report(
            &format!("grad (D {dim}, {rows} rows, N {n}, {s} splits)"),
            &read(gpu, &grad, s * len),
            &with_tail(&split_grads(&want, len, w_at, b_at)),
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn rating_loss_gpu_matches_cpu_in_training_and_evaluation() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 16);
    // Splits of 48 rows (one 256-row step each); splits of 512 rows (two steps, the second short) with
    // H2 = 264, so invocations also sum a second w3 column (256 + t).
    for (rows, h2w, split_rows) in [(133, 20, 48), (600, 264, 512)] {
        let mut rng = SplitMix64::new(21);
        let h2 = relu_like(&mut rng, rows * h2w);
        let w3 = uniform(&mut rng, h2w, -0.5, 0.5);
        let b3 = 0.3f32;
        let rating: Vec<f32> = (0..rows).map(|_| 1.0 + rng.below(5) as f32).collect();
        let (w3_at, b3_at) = (64, 64 + h2w.next_multiple_of(64) + 1);
        let len = (b3_at + 1).next_multiple_of(64);
        let mlp = params_vector(len, &[(w3_at, &w3), (b3_at, &[b3])]);
        let s = splits(rows, split_rows);
        let b = Batch::new(vec![0; rows], vec![0; rows], rating.clone());
        let batch = PackedBatch::new(gpu, "packed batch", rows + 3);
        batch.write(gpu, &b);
        let (h2b, mb) = (gpu.upload("h2", &h2), gpu.upload("mlp", &mlp));
        for train in [true, false] {
            let (pred, sq_err, dh2, grad) = (
                nans(gpu, "pred", rows),
                nans(gpu, "sq_err", rows),
                nans(gpu, "dh2", rows * h2w),
                nans(gpu, "grad", s * len),
            );
            let out = RatingLossOutputs {
                pred: &pred,
                sq_err: &sq_err,
                dh2: &dh2,
                grad: &grad,
            };
            let launch = rating_loss(
                gpu,
                &k.rating_loss,
                "rating_loss_gpu",
                &h2b,
                &mb,
                &batch,
                out,
            );
            let p = RatingLossParams::new(
                rows,
                h2w,
                train,
                0.7,
                split_rows,
                len,
                w3_at,
                b3_at,
                &batch.layout,
            );
            launch.set(gpu, &p);
            run(gpu, &[(&launch, groups::rating_loss(s))]);
            let scale = 2.0 * 0.7 / rows as f32;
            let want = twin::rating_loss(&h2, &w3, b3, &rating, scale, split_rows);
            let what = |t: &str| format!("{t} ({rows} rows, H2 {h2w}, train {train})");
            assert_close_report(
                &what("pred"),
                &read(gpu, &pred, rows),
                &with_tail(&want.pred),
                1e-5,
                1e-5,
            );
            assert_close_report(
                &what("sq_err"),
                &read(gpu, &sq_err, rows),
                &with_tail(&want.sq_err),
                1e-5,
                1e-4,
            );
            let (want_dh2, want_grad) = if train {
                let head: Vec<(Vec<f32>, Vec<f32>)> = want
                    .head
                    .iter()
                    .map(|(dw, db)| (dw.clone(), vec![*db]))
                    .collect();
                (want.dh2.clone(), split_grads(&head, len, w3_at, b3_at))
            } else {
                (vec![f32::NAN; rows * h2w], vec![f32::NAN; s * len])
            };
            assert_close_report(
                &what("dh2"),
                &read(gpu, &dh2, rows * h2w),
                &with_tail(&want_dh2),
                1e-7,
                1e-5,
            );
            assert_close_report(
                &what("head gradient partials"),
                &read(gpu, &grad, s * len),
                &with_tail(&want_grad),
                1e-6,
                1e-4,
            );
        }
    }
}

/// (max, sum) pairs flattened as the kernel writes them.
fn flat_pairs(v: &[(f32, f32)]) -> Vec<f32> {
    v.iter().flat_map(|&(m, s)| [m, s]).collect()
}

#[test]
fn retrieval_lse_gpu_matches_cpu_for_every_part_count() {
    let Some(gpu) = gpu() else { return };
    let dim = 12;
    let k = kernels(gpu, dim);
    // 70 users (two workgroups) x 97 movies (three 32-movie steps and one of 1 in a single part); 16 parts
    // of 7 movies leave the last two parts empty.
    let sb = SparseBatch::new(31, 300, 70, 97, dim, 1.0);
    let s = sb.shape();
    let batch = sb.packed(gpu, 300);
    let (ut, mt) = (
        gpu.upload("user_emb", &sb.user_table),
        gpu.upload("movie_emb", &sb.movie_table),
    );
    let (ud, md) = (
        rows_of(&sb.user_table, &sb.batch.users.table_rows, dim),
        rows_of(&sb.movie_table, &sb.batch.movies.table_rows, dim),
    );
    let b = &sb.batch;
    let users = cpu::retrieval_softmax_users(
        &ud,
        &md,
        &b.users.count,
        &b.movies.count,
        &b.users.offsets,
        &b.users.rows,
        &b.movies.of_row,
        dim,
        1.0,
    );
    for parts in [1, 3, 5, 16] {
        let part = nans(gpu, "lse_part", parts * s.users * 2);
        let launch = retrieval_lse(
            gpu,
            &k.retrieval_lse,
            "retrieval_lse_gpu",
            (&ut, &mt),
            &batch,
            &part,
        );
        let p = RetrievalLseParams::new(s.users, s.movies, parts, &batch.layout);
        launch.set(gpu, &p);
        run(gpu, &[(&launch, groups::retrieval_lse(s.users, parts))]);
        let want = twin::retrieval_lse(&sb.user_table, &sb.movie_table, b, dim, parts);
        let got = read(gpu, &part, parts * s.users * 2);
        assert_close_report(
            &format!("lse parts (P {parts})"),
            &got,
            &with_tail(&flat_pairs(&want)),
            1e-6,
            1e-5,
        );
        let got_pairs: Vec<(f32, f32)> = got[..parts * s.users * 2]
            .chunks(2)
            .map(|c| (c[0], c[1]))
            .collect();
        assert_close64(
            &format!("combined lse (P {parts})"),
            &twin::combine_lse(&got_pairs, s.users),
            &common::f64s(&users.lse),
            1e-5,
            1e-5,
        );
    }
}

fn rows_of(table: &[f32], ids: &[u32], dim: usize) -> Vec<f32> {
    let mut out = vec![0.0; ids.len() * dim];
    cpu::embedding_gather(table, ids, dim, &mut out, dim, 0);
    out
}

#[test]
fn retrieval_grads_gpu_matches_cpu_and_its_parts_sum_to_the_softmax_twins() {
    let Some(gpu) = gpu() else { return };
    for (dim, rows, nu, nm, parts) in [
        (12, 300, 70, 97, 3),
        (32, 500, 130, 66, 16),
        (16, 9, 2, 3, 1),
    ] {
        let k = kernels(gpu, dim);
        let sb = SparseBatch::new(41 + dim as u64, rows, nu, nm, dim, 0.8);
        let (s, b, w) = (sb.shape(), &sb.batch, 0.7);
        let batch = sb.packed(gpu, rows);
        let state = twin::retrieval_lse(&sb.user_table, &sb.movie_table, b, dim, parts);
        let lse = twin::combine_lse(&state, s.users);
        let (ut, mt, lse_part) = (
            gpu.upload("user_emb", &sb.user_table),
            gpu.upload("movie_emb", &sb.movie_table),
            gpu.upload("lse_part", &flat_pairs(&state)),
        );
        let (gu, gm, loss) = (
            nans(gpu, "grad_user", parts * s.users * dim),
            nans(gpu, "grad_movie", parts * s.movies * dim),
            nans(gpu, "loss", s.users),
        );
        let out = RetrievalGradsOutputs {
            grad_user: &gu,
            grad_movie: &gm,
            loss: &loss,
        };
        let launch = retrieval_grads(
            gpu,
            &k.retrieval_grads,
            "retrieval_grads_gpu",
            (&ut, &mt),
            &batch,
            &lse_part,
            out,
        );
        let p = RetrievalGradsParams::new(s.users, s.movies, parts, w, &batch.layout);
        launch.set(gpu, &p);
        run(
            gpu,
            &[(&launch, groups::retrieval_grads(s.users, s.movies, parts))],
        );
        let want = twin::retrieval_grads(&sb.user_table, &sb.movie_table, b, dim, &lse, parts, w);
        let what = |t: &str| format!("{t} (D {dim}, {nu} x {nm}, P {parts})");
        assert_close_report(
            &what("loss"),
            &read(gpu, &loss, s.users),
            &with_tail(&want.loss),
            1e-5,
            1e-4,
        );
        assert_close_report(
            &what("grad_user parts"),
            &read(gpu, &gu, parts * s.users * dim),
            &with_tail(&want.grad_user),
            1e-5,
            1e-4,
        );
        assert_close_report(
            &what("grad_movie parts"),
            &read(gpu, &gm, parts * s.movies * dim),
            &with_tail(&want.grad_movie),
            1e-5,
            1e-4,
        );
        // The parts add up to the windowed family's twins: the same distinct-rows identity.
        let (ud, md) = (
            rows_of(&sb.user_table, &b.users.table_rows, dim),
            rows_of(&sb.movie_table, &b.movies.table_rows, dim),
        );
        let (users, movies) = cpu::retrieval_softmax(&ud, &md, &b.users, &b.movies, dim, w, w);
        let sum_parts = |g: &[f32], n: usize| -> Vec<f32> {
            (0..n * dim)
                .map(|e| (0..parts).map(|p| g[p * n * dim + e]).sum())
                .collect()
        };
        assert_close_report(
            &what("summed grad_user"),
            &sum_parts(&want.grad_user, s.users),
            &users.grad_user,
            1e-5,
            1e-4,
        );
        assert_close_report(
            &what("summed grad_movie"),
            &sum_parts(&want.grad_movie, s.movies),
            &movies,
            1e-5,
            1e-4,
        );
        assert_close_report(&what("twin loss"), &want.loss, &users.loss, 1e-5, 1e-5);
    }
}

#[test]
fn embedding_adagrad_gpu_matches_cpu_for_every_task_mix() {
    let Some(gpu) = gpu() else { return };
    let dim = 12;
    let k = kernels(gpu, dim);
    let sb = SparseBatch::new(51, 200, 45, 77, dim, 0.5);
    let (s, b) = (sb.shape(), &sb.batch);
    let batch = sb.packed(gpu, 210);
    let parts = 3;
    let mut rng = SplitMix64::new(52);
    let dx = uniform(&mut rng, s.rows * 2 * dim, -1.0, 1.0);
    let dxb = gpu.upload("dx", &dx);
    // (retrieval on, rating on, l2)
    for (dense, rows, l2) in [
        (true, true, 0.0),
        (true, false, 0.0),
        (false, true, 0.01),
        (true, true, 0.05),
    ] {
        for movies in [false, true] {
            let (d, n, table0) = if movies {
                (&b.movies, s.movies, &sb.movie_table)
            } else {
                (&b.users, s.users, &sb.user_table)
            };
            let grad_part = uniform(&mut rng, parts * n * dim, -1.0, 1.0);
            let accum0: Vec<f32> = (0..table0.len())
                .map(|i| INITIAL_ACCUMULATOR + (i % 7) as f32 * 0.01)
                .collect();
            let (gp, table, accum) = (
                gpu.upload("grad_part", &grad_part),
                gpu.upload("table", table0),
                gpu.upload("accum", &accum0),
            );
            let launch = embedding_adagrad(
                gpu,
                &k.embedding_adagrad,
                "embedding_adagrad_gpu",
                &gp,
                &dxb,
                &batch,
                &table,
                &accum,
            );
            let u = EmbeddingUpdate {
                parts: if dense { parts } else { 0 },
                use_rows: rows,
                learning_rate: 0.1,
                epsilon: EPSILON,
                l2,
            };
            launch.set(
                gpu,
                &EmbeddingAdagradParams::new(n, dim, movies, u, &batch.layout),
            );
            let threads = (n * dim / 4) as u32;
            let (x, y) = wgrec::gpu::grid(threads.div_ceil(wgrec::gpu::WORKGROUP));
            run(gpu, &[(&launch, (x, y, 1))]);
            let (mut want_t, mut want_a) = (table0.clone(), accum0.clone());
            twin::embedding_adagrad(
                dense.then_some((&grad_part[..], parts)),
                rows.then_some((&dx[..], 2 * dim, if movies { dim } else { 0 })),
                &d.offsets,
                &d.rows,
                &d.table_rows,
                &mut want_t,
                &mut want_a,
                dim,
                0.1,
                EPSILON,
                l2,
            );
            let what = |t: &str| {
                format!("{t} (movies {movies}, retrieval {dense}, rating {rows}, l2 {l2})")
            };
            let len = table0.len();
            assert_close_report(
                &what("table"),
                &common::read_f32(gpu, &table, len),
                &want_t,
                1e-6,
                1e-5,
            );
            assert_close_report(
                &what("accum"),
                &common::read_f32(gpu, &accum, len),
                &want_a,
                1e-6,
                1e-5,
            );
        }
    }
}

#[test]
fn packed_batch_copied_from_the_work_buffers_equals_the_host_packing() {
    let Some(gpu) = gpu() else { return };
    let mut rng = SplitMix64::new(61);
    let n = 250;
    let ratings = Ratings {
        user: (0..n).map(|_| rng.below(40) as u32).collect(),
        movie: (0..n).map(|_| rng.below(60) as u32).collect(),
        rating: (0..n).map(|_| 1.0 + rng.below(5) as f32).collect(),
    };
    let perm: Vec<u32> = (0..n as u32).rev().collect();
    let cap = 100;
    let store = wgrec::gpu::batches::BatchStore::new(
        gpu,
        "batches",
        &ratings,
        &perm,
        cap,
        wgrec::data::batches::Columns::Batch,
    )
    .unwrap();
    let work = wgrec::gpu::batches::BatchBuffers::new(gpu, "work", cap);
    let packed = PackedBatch::new(gpu, "packed", cap);
    let l = packed.layout;
    for bi in [0, 2] {
        let mut enc = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("copy"),
            });
        store.copy_to(gpu, &mut enc, bi, &work);
        packed.copy_from(&mut enc, &work);
        gpu.queue.submit([enc.finish()]);
        let got: Vec<u32> = common::read_u32(gpu, &packed.buffer, l.len);
        let batch =
            wgrec::data::batches::batch_of(&ratings, &perm[bi * cap..((bi + 1) * cap).min(n)]);
        let want = l.pack(&batch);
        // Only the fields' used prefixes: the rest of the work buffers is left over from other batches.
        let (r, nu, nm) = (batch.rows(), batch.users.len(), batch.movies.len());
        let spans = [
            (l.user, r),
            (l.movie, r),
            (l.rating, r),
            (l.users.table_rows, nu),
            (l.users.count, nu),
            (l.users.offsets, nu + 1),
            (l.users.rows, r),
            (l.movies.table_rows, nm),
            (l.movies.count, nm),
            (l.movies.offsets, nm + 1),
            (l.movies.rows, r),
        ];
        for (at, len) in spans {
            let at = at as usize;
            assert_eq!(
                got[at..at + len],
                want[at..at + len],
                "batch {bi}, field at {at}"
            );
        }
    }
}

#[test]
fn check_limits_names_the_limit_a_device_lacks() {
    let Some(gpu) = gpu() else { return };
    check_limits(gpu).expect("WebGPU's default limits are enough");
    let small = wgpu::Limits {
        max_storage_buffers_per_shader_stage: 4,
        ..wgpu::Limits::default()
    };
    let g = Gpu::from_parts(
        gpu.device.clone(),
        gpu.queue.clone(),
        gpu.adapter.clone(),
        small,
    );
    let err = check_limits(&g).unwrap_err().to_string();
    assert!(
        err.contains("max_storage_buffers_per_shader_stage = 4")
            && err.contains("--kernels windowed"),
        "{err}"
    );
    assert!(check_shape(32, 256, 128).is_ok());
    assert!(check_shape(30, 256, 128).is_err());
    assert!(check_shape(32, 256, 516).is_err());
}

/// A synthetic training split of `n` ratings over ids 1..users and 1..movies (row 0 is the OOV row).
fn synthetic(seed: u64, n: usize, users: usize, movies: usize) -> Ratings {
    wgrec::selftest::synthetic(&mut SplitMix64::new(seed), n, users, movies)
}

/// GpuStep against the CPU reference step: after the first step and after every batch of an epoch (the
/// parameters, the three Adagrad accumulators and the batch losses the step writes), joint and single-task,
/// with the embedding tweaks and `--temperature`, on the smallest MLP and on the tutorial's hidden layers.
#[test]
fn gpu_step_matches_the_cpu_reference_step() {
    let Some(gpu) = gpu() else { return };
    let dim = 16;
    let k = kernels(gpu, dim);
    // (H1, H2, ratings, batch, split rows, rating weight, retrieval weight, embedding lr, l2, T)
    let cases = [
        (64, 64, 1337, 600, 256, 1.0, 1.0, None, 0.0, None),
        (256, 128, 700, 300, 48, 1.0, 1.0, None, 0.0, None),
        (64, 64, 500, 250, 64, 0.0, 1.0, Some(0.05), 0.01, None),
        (64, 64, 500, 250, 64, 1.0, 0.0, None, 0.0, None),
        (64, 64, 700, 300, 64, 1.0, 1.0, None, 0.0, Some(0.4)),
        (64, 64, 500, 250, 64, 0.0, 1.0, None, 0.0, Some(2.0)),
    ];
    for (h1, h2, n, batch_size, split_rows, rw, tw, elr, l2, temperature) in cases {
        let cfg = ModelConfig {
            users: 301,
            movies: 203,
            embedding_dim: dim,
            hidden1: h1,
            hidden2: h2,
        };
        let train = synthetic(16, n, cfg.users, cfg.movies);
        let mut opts = TrainOptions {
            rating_weight: rw,
            retrieval_weight: tw,
            epochs: 1,
            batch_size,
            learning_rate: 0.1,
            seed: 5,
            reshuffle: false,
            tweaks: Default::default(),
        };
        opts.tweaks.embedding_learning_rate = elr;
        opts.tweaks.embedding_l2 = l2;
        opts.tweaks.temperature = temperature;
        let perm = wgrec::data::batches::permutation(n, &mut SplitMix64::new(9));
        let batches = wgrec::data::batches::make_batches(&train, &perm, batch_size);
        let init = Params::init(&cfg, opts.seed);
        let model = GpuModel::new(gpu, &cfg, &init).unwrap();
        let losses = gpu.buffer("losses", 2 * batches.len());
        let step = GpuStep::with_split_rows(gpu, k, &model, batch_size, &opts, &losses, split_rows)
            .unwrap();
        let mut cpu_model = CpuModel::new(cfg, init.clone());
        let mut want_losses = vec![];
        for (i, b) in batches.iter().enumerate() {
            step.step(gpu, b, i, None).unwrap();
            want_losses.push(cpu_model.step(b, &opts));
            let last = i + 1 == batches.len();
            if i > 0 && !last {
                continue;
            }
            let got = model.params(gpu).unwrap();
            let (ua, ma, la) = model.accumulators(gpu).unwrap();
            let want = &cpu_model.params;
            let what = |t: &str| {
                format!(
                    "{t} after step {} (H1 {h1}, H2 {h2}, weights {rw}/{tw}, lr {elr:?}, l2 {l2}, \
                     T {temperature:?})",
                    i + 1
                )
            };
            assert_close_report(&what("user_emb"), &got.user_emb, &want.user_emb, 1e-6, 1e-4);
            assert_close_report(
                &what("movie_emb"),
                &got.movie_emb,
                &want.movie_emb,
                1e-6,
                1e-4,
            );
            assert_close_report(&what("mlp"), &got.mlp, &want.mlp, 1e-6, 1e-4);
            assert_close_report(&what("user_acc"), &ua, &cpu_model.user_acc, 1e-6, 1e-4);
            assert_close_report(&what("movie_acc"), &ma, &cpu_model.movie_acc, 1e-6, 1e-4);
            assert_close_report(&what("mlp_acc"), &la, &cpu_model.mlp_acc, 1e-6, 1e-4);
        }
        let sums: Vec<f32> = gpu.read(&losses, 0, 2 * batches.len()).unwrap();
        let got_losses: Vec<f64> = batches
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut loss = 0.0;
                if rw != 0.0 {
                    loss += rw as f64 * sums[2 * i] as f64 / b.rows() as f64;
                }
                if tw != 0.0 {
                    loss += tw as f64 * sums[2 * i + 1] as f64;
                }
                loss
            })
            .collect();
        assert_close64(
            &format!("batch losses (H1 {h1}, weights {rw}/{tw})"),
            &got_losses,
            &want_losses,
            1e-5,
            1e-5,
        );
        assert_ne!(
            model.params(gpu).unwrap(),
            init,
            "the steps changed nothing"
        );
    }
}

/// At the tutorial's shape (B 8192, D 32, 256-128, about 940 x 1,650 distinct rows) a joint step is 14
/// dispatches, counted by the profiler (each dispatch recorded and timed on its own); the budget is 24.
/// Frozen embeddings and single tasks issue fewer. The profile (lavapipe timings) is printed.
#[test]
fn a_joint_step_at_the_tutorial_shape_is_at_most_24_dispatches() {
    let Some(gpu) = gpu() else { return };
    let cfg = ModelConfig::tutorial(944, 1665, 32);
    let k = kernels(gpu, cfg.embedding_dim);
    let b = 8192;
    let train = synthetic(71, b, cfg.users, cfg.movies);
    let batch = wgrec::data::batches::batch_of(&train, &(0..b as u32).collect::<Vec<_>>());
    let shape = BatchShape {
        rows: b,
        users: batch.users.len(),
        movies: batch.movies.len(),
    };
    let model = GpuModel::new(gpu, &cfg, &Params::init(&cfg, 42)).unwrap();
    let losses = gpu.buffer("losses", 2);
    let opts = TrainOptions::tutorial(1.0, 1.0);
    let step = GpuStep::new(gpu, k, &model, b, &opts, &losses).unwrap();
    let profiler = wgrec::gpu::profile::Profiler::new(gpu).unwrap();
    step.step(gpu, &batch, 0, Some(&profiler)).unwrap();
    let calls: u64 = profiler.kernels("train").iter().map(|(_, s)| s.calls).sum();
    eprintln!(
        "{} distinct users x {} distinct movies, adapter {}\n{}",
        shape.users,
        shape.movies,
        gpu.adapter.name,
        profiler.table()
    );
    assert_eq!(calls as usize, step.dispatches(&shape));
    assert_eq!(calls, 14, "dispatches per joint step");
    assert!(calls <= 24);
    let sums: Vec<f32> = gpu.read(&losses, 0, 2).unwrap();
    assert!(sums.iter().all(|v| v.is_finite() && *v > 0.0), "{sums:?}");
    // Unprofiled, as a trainer would run it (one compute pass, one submission): the wall time on record.
    let t0 = std::time::Instant::now();
    step.step(gpu, &batch, 0, None).unwrap();
    gpu.wait().unwrap();
    eprintln!(
        "one joint step at the tutorial shape: {:.1} ms wall on {}",
        t0.elapsed().as_secs_f64() * 1e3,
        gpu.adapter.name
    );
    for (rw, tw, frozen, want) in [
        (1.0, 0.0, false, 11),
        (0.0, 1.0, false, 5),
        (1.0, 0.0, true, 8),
    ] {
        let mut o = TrainOptions::tutorial(rw, tw);
        if frozen {
            o.tweaks.embedding_learning_rate = Some(0.0);
        }
        let s = GpuStep::new(gpu, k, &model, b, &o, &losses).unwrap();
        assert_eq!(
            s.dispatches(&shape),
            want,
            "weights {rw}/{tw}, frozen {frozen}"
        );
    }
}

/// FactorizedTopK evaluation in the GPU family: candidate_scores_gpu (both gathers fused) against
/// `cpu::candidate_scores` for a tile that starts inside the query list, then the reused pair_ranks on its
/// scores against `cpu::pair_ranks` (exact: both compare the same f32 scores).
#[test]
fn candidate_scores_gpu_and_pair_ranks_match_cpu() {
    let Some(gpu) = gpu() else { return };
    for (dim, queries, c) in [(12, 70, 133), (32, 65, 64), (64, 3, 1037)] {
        let k = kernels(gpu, dim);
        let mut rng = SplitMix64::new(81 + dim as u64);
        let (ut, mt) = (
            uniform(&mut rng, 50 * dim, -1.0, 1.0),
            uniform(&mut rng, 80 * dim, -1.0, 1.0),
        );
        let first = 7;
        let query_rows: Vec<u32> = (0..first + queries).map(|_| rng.below(50) as u32).collect();
        let cand_rows: Vec<u32> = (0..c).map(|_| rng.below(80) as u32).collect();
        let (utb, qrb, mtb, crb, scores) = (
            gpu.upload("user_emb", &ut),
            gpu.upload("query_rows", &query_rows),
            gpu.upload("movie_emb", &mt),
            gpu.upload("candidate_rows", &cand_rows),
            nans(gpu, "scores", queries * c),
        );
        let launch = candidate_scores(
            gpu,
            &k.candidate_scores,
            "candidate_scores_gpu",
            (&utb, &qrb),
            (&mtb, &crb),
            &scores,
        );
        launch.set(
            gpu,
            &CandidateScoresParams {
                queries: queries as u32,
                candidates: c as u32,
                dim4: (dim / 4) as u32,
                first: first as u32,
            },
        );
        run(gpu, &[(&launch, groups::candidate_scores(queries, c))]);
        let q = rows_of(&ut, &query_rows[first..], dim);
        let cand = rows_of(&mt, &cand_rows, dim);
        let got = read(gpu, &scores, queries * c);
        assert_close_report(
            &format!("scores (D {dim}, {queries} x {c})"),
            &got,
            &with_tail(&cpu::candidate_scores(&q, &cand, dim)),
            1e-5,
            1e-4,
        );
        // Pairs sorted by query, 0 to 11 per query (two groups for some), some candidates excluded.
        let mut pq = Vec::new();
        for a in 0..queries as u32 {
            for _ in 0..rng.below(12) {
                pq.push(a);
            }
        }
        let pc: Vec<u32> = pq.iter().map(|_| rng.below(c as u64) as u32).collect();
        let words = c.div_ceil(32);
        let mask: Vec<u32> = (0..queries * words)
            .map(|_| (rng.next_u64() & rng.next_u64()) as u32)
            .collect();
        let bit =
            |a: u32, cand: usize| (mask[a as usize * words + cand / 32] >> (cand % 32)) & 1 == 1;
        let groups_list = wgrec::kernels::windowed::pair_groups(&pq, 0);
        let (gb, pcb, maskb) = (
            gpu.upload("groups", &groups_list),
            gpu.upload("pair_candidate", &pc),
            gpu.upload("excluded", &mask),
        );
        let (all, unseen) = (
            nans(gpu, "rank_all", pq.len()),
            nans(gpu, "rank_unseen", pq.len()),
        );
        let params = wgrec::kernels::windowed::PairRanksParams {
            groups: groups_list.len() as u32,
            candidates: c as u32,
            words: words as u32,
            ..Default::default()
        };
        let launches = pair_ranks(gpu, k, [&scores, &gb, &pcb, &maskb, &all, &unseen], params);
        common::run(
            gpu,
            &launches
                .iter()
                .map(|l| (l, groups_list.len() as u32))
                .collect::<Vec<_>>(),
        );
        let want = cpu::pair_ranks(&got[..queries * c], c, &pq, &pc, bit);
        let ranks: Vec<(u32, u32)> = common::read_u32(gpu, &all, pq.len())
            .into_iter()
            .zip(common::read_u32(gpu, &unseen, pq.len()))
            .collect();
        assert_eq!(ranks, want, "pair ranks (D {dim}), gpu left, cpu right");
    }
}

/// BruteForce top-k in the GPU family against `cpu::brute_force_top_k`, exactly: embeddings are multiples
/// of 1/2 in [-2, 2], so every score is exact in f32 whatever the summation order and ties abound (they go
/// to the lower index). 1,037 candidates are five 256-candidate steps and several pool merges; K up to
/// 256; a short candidate list leaves padding; some candidates are excluded per query.
#[test]
fn brute_force_top_k_gpu_matches_cpu_exactly() {
    let Some(gpu) = gpu() else { return };
    for (dim, queries, c, ks) in [
        (12, 70, 1037, &[1usize, 10, 100, 256][..]),
        (32, 5, 40, &[10, 64][..]),
    ] {
        let k = kernels(gpu, dim);
        let mut rng = SplitMix64::new(91 + dim as u64);
        let half_steps = |rng: &mut SplitMix64, n: usize| -> Vec<f32> {
            (0..n).map(|_| rng.below(9) as f32 * 0.5 - 2.0).collect()
        };
        let (ut, mt) = (
            half_steps(&mut rng, 60 * dim),
            half_steps(&mut rng, 90 * dim),
        );
        let first = 5;
        let query_rows: Vec<u32> = (0..first + queries).map(|_| rng.below(60) as u32).collect();
        let cand_rows: Vec<u32> = (0..c).map(|_| rng.below(90) as u32).collect();
        // Exclusions of every query of the list (the dispatch sees those from `first` on).
        let mut offsets = vec![0u32];
        let mut seen = Vec::new();
        for _ in 0..first + queries {
            let mut run: Vec<u32> = (0..rng.below(30))
                .map(|_| rng.below(c as u64) as u32)
                .collect();
            run.sort();
            run.dedup();
            seen.extend(run);
            offsets.push(seen.len() as u32);
        }
        let bufs = (
            gpu.upload("user_emb", &ut),
            gpu.upload("query_rows", &query_rows),
            gpu.upload("movie_emb", &mt),
            gpu.upload("candidate_rows", &cand_rows),
            gpu.upload("seen_offsets", &offsets),
            gpu.upload("seen", &seen),
        );
        let q = rows_of(&ut, &query_rows[first..], dim);
        let cand = rows_of(&mt, &cand_rows, dim);
        let scores = cpu::candidate_scores(&q, &cand, dim);
        let local: Vec<u32> = offsets[first..]
            .iter()
            .map(|&o| o - offsets[first])
            .collect();
        for &kk in ks {
            let (oi, os) = (
                gpu.upload("out_index", &vec![0xDEAD_BEEFu32; queries * kk + TAIL]),
                nans(gpu, "out_score", queries * kk),
            );
            let launch = brute_force_top_k(
                gpu,
                &k.brute_force_top_k,
                "brute_force_top_k_gpu",
                (&bufs.0, &bufs.1),
                (&bufs.2, &bufs.3),
                (&bufs.4, &bufs.5),
                (&oi, &os),
            );
            launch.set(
                gpu,
                &BruteForceTopKParams {
                    queries: queries as u32,
                    k: kk as u32,
                    candidates: c as u32,
                    first: first as u32,
                },
            );
            run(gpu, &[(&launch, groups::brute_force_top_k(queries))]);
            let (want_i, want_s) =
                cpu::brute_force_top_k(&scores, c, &local, &seen[offsets[first] as usize..], kk);
            let got_i = common::read_u32(gpu, &oi, queries * kk + TAIL);
            let got_s = read(gpu, &os, queries * kk);
            assert_eq!(
                got_i[..queries * kk],
                want_i[..],
                "top-{kk} indices (D {dim}, {queries} x {c})"
            );
            assert!(
                got_i[queries * kk..].iter().all(|&v| v == 0xDEAD_BEEF),
                "top-{kk}: written past the end"
            );
            assert_eq!(
                got_s[..queries * kk]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>(),
                want_s.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "top-{kk} scores (D {dim})"
            );
            assert!(got_s[queries * kk..].iter().all(|v| v.is_nan()));
        }
    }
}

/// The family's evaluation pass and its serving (`kernels::gpu::evaluate`, `kernels::gpu::top_k`) on the
/// default-limits device, against the CPU twins: embeddings are multiples of 0.5, so every score is exact
/// and the ranks, the top-k lists and the exclusions must match exactly; duplicate candidate rows and
/// several evaluation batches (the last one short) and query tiles are covered.
#[test]
fn evaluation_and_serving_passes_match_cpu() {
    use wgrec::data::batches::{make_batches, Distinct};
    use wgrec::kernels::Exclusions;
    let Some(gpu) = gpu() else { return };
    let (dim, users, movies) = (32, 150, 700);
    let cfg = ModelConfig {
        users,
        movies,
        embedding_dim: dim,
        hidden1: 64,
        hidden2: 32,
    };
    let k = kernels(gpu, dim);
    let mut rng = SplitMix64::new(404);
    let mut params = Params::init(&cfg, 404);
    for v in params
        .user_emb
        .iter_mut()
        .chain(params.movie_emb.iter_mut())
    {
        *v = rng.below(9) as f32 * 0.5 - 2.0;
    }
    let model = GpuModel::new(gpu, &cfg, &params).unwrap();
    let test = wgrec::selftest::synthetic(&mut rng, 3000, users, movies);
    let train = wgrec::selftest::synthetic(&mut rng, 5000, users, movies);
    // Every movie row once, then two rows again (duplicate titles: only the first competes).
    let candidates: Vec<u32> = (1..movies as u32).chain([5, 17]).collect();
    let c = candidates.len();
    let duplicates = [c - 2, c - 1];
    let eval =
        evaluate::Evaluation::new(gpu, k, &model, &test, Some(&train), &candidates, 700).unwrap();
    let t = eval.run(1.0).unwrap();

    // Pairs in the pass's order: grouped by distinct test user.
    let du = Distinct::new(&test.user);
    let q = rows_of(&params.user_emb, &du.table_rows, dim);
    let cand = rows_of(&params.movie_emb, &candidates, dim);
    let scores = cpu::candidate_scores(&q, &cand, dim);
    let (mut pair_query, mut pair_candidate) = (Vec::new(), Vec::new());
    for a in 0..du.len() {
        for &r in &du.rows[du.offsets[a] as usize..du.offsets[a + 1] as usize] {
            pair_query.push(a as u32);
            pair_candidate.push(test.movie[r as usize] - 1);
        }
    }
    let seen: Vec<Vec<usize>> = du
        .table_rows
        .iter()
        .map(|&u| {
            let rated = |c: &usize| {
                (0..train.len()).any(|i| train.user[i] == u && train.movie[i] == candidates[*c])
            };
            (0..c).filter(rated).collect()
        })
        .collect();
    let want = cpu::pair_ranks(&scores, c, &pair_query, &pair_candidate, |a, cand| {
        duplicates.contains(&cand) || seen[a as usize].contains(&cand)
    });
    let all: Vec<u32> = want.iter().map(|w| w.0).collect();
    let unseen: Vec<u32> = want.iter().map(|w| w.1).collect();
    assert_eq!(t.rank_all, all, "ranks among all candidates");
    let ranked = t
        .ranked
        .as_ref()
        .expect("ranked tallies with the training split");
    assert_eq!(ranked.rank_unseen, unseen, "ranks among unseen candidates");
    assert_eq!(ranked.user_offsets, &du.offsets[..]);

    // Losses per evaluation batch and every prediction, in file order.
    let order: Vec<u32> = (0..test.len() as u32).collect();
    let batches = make_batches(&test, &order, 700);
    assert_eq!(t.sums.len(), batches.len());
    let mut pred = Vec::new();
    for (b, &(sq, _, rows)) in batches.iter().zip(&t.sums) {
        let head = cpu::reference::rating_forward(&cfg, &params, b, 0.0).head;
        assert_eq!(rows, b.rows());
        let want_sq: f64 = head.sq_err.iter().map(|&v| v as f64).sum();
        assert_close64(
            "squared-error sum of a batch",
            &[sq as f64],
            &[want_sq],
            1e-3,
            1e-5,
        );
        pred.extend(head.pred);
    }
    assert_close_report("predictions", &ranked.pred, &pred, 1e-5, 1e-4);
    let got = top_k::predict(gpu, k, &model, &test.user[..900], &test.movie[..900]).unwrap();
    assert_close_report("predict", &got, &pred[..900], 1e-5, 1e-4);

    // BruteForce over three tiles of 64 queries, each query leaving out its training movies.
    let rows: Vec<u32> = (0..users as u32).collect();
    let mut exclude = Exclusions::none(0);
    for &u in &rows {
        let mut run: Vec<u32> = (0..train.len())
            .filter(|&i| train.user[i] == u)
            .map(|i| train.movie[i] - 1)
            .collect();
        run.sort_unstable();
        run.dedup();
        exclude.items.extend(run);
        exclude.offsets.push(exclude.items.len() as u32);
    }
    let top = 37;
    let plan = top_k::BruteForce::with_tile(
        gpu,
        k,
        (&model.user_emb, &rows),
        (&model.movie_emb, &candidates),
        dim,
        &exclude,
        top,
        64,
    )
    .unwrap();
    let got = plan.run().unwrap();
    let q_all = rows_of(&params.user_emb, &rows, dim);
    let all_scores = cpu::candidate_scores(&q_all, &cand, dim);
    let (want_i, want_s) =
        cpu::brute_force_top_k(&all_scores, c, &exclude.offsets, &exclude.items, top);
    assert_eq!(got.index, want_i, "top-{top} indices");
    assert_eq!(got.score, want_s, "top-{top} scores");
}

/// With only WebGPU's default limits the GPU family runs a whole command's work on its own: `Compiled`
/// builds no windowed pipeline (those need more storage buffers than a browser allows), selftest's
/// training, evaluation and serving checks pass, and a `Run` trains and evaluates the sample.
#[test]
fn the_family_alone_runs_selftest_and_a_run_within_default_limits() {
    use wgrec::data::DataOptions;
    use wgrec::kernels::{Family, Ops};
    use wgrec::train::run::{Env, Run};
    let Some(gpu) = gpu() else { return };
    let checks = wgrec::selftest::run(gpu, Family::Gpu).expect("selftest runs on default limits");
    let failed: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let data = wgrec::data::load(&DataOptions {
        dataset: Some("sample".into()),
        seed: 42,
        ..Default::default()
    })
    .unwrap();
    let env = Env {
        gpu,
        ops: Ops::Gpu(kernels(gpu, 32)),
        data: &data,
        split: None,
        profiler: None,
    };
    let opts = TrainOptions {
        epochs: 1,
        ..TrainOptions::tutorial(1.0, 1.0)
    };
    let r = Run::new(opts, 32).unwrap().execute(&env).unwrap().result;
    assert_eq!(r.kernels, Family::Gpu);
    assert!(
        r.test.rmse.is_finite() && r.test.top(100) > 0.0,
        "{:?}",
        r.test
    );
    assert!(r.test.ranked.is_some());
}
