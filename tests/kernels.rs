//! Every kernel of `Kernels` against its CPU twin in `wgrec::cpu`, on shapes that span several workgroups
//! and are not multiples of the workgroup or block sizes. Outputs start as NaN (FactorizedTopK's hit
//! counters, which the kernel adds to, start at zero) so that an element the kernel should write but does
//! not, or one it must leave alone but writes, shows up. Needs an adapter: skips without one, fails in CI.

mod common;

use common::*;
use wgrec::cpu;
use wgrec::cpu::reference::CpuModel;
use wgrec::data::batches::Distinct;
use wgrec::data::{Ratings, SplitMix64};
use wgrec::gpu::launch::Launch;
use wgrec::gpu::{slice, whole, window, Gpu, WINDOW};
use wgrec::kernels::model::GpuModel;
use wgrec::kernels::windowed::retrieval::retrieval_window_rows;
use wgrec::kernels::windowed::*;
use wgrec::model::{ModelConfig, Params};
use wgrec::model::{EPSILON, INITIAL_ACCUMULATOR};
use wgrec::options::TrainOptions;
use wgrec::train::trainer::Trainer;

/// NaNs past the end of every output: a kernel writing past its rows would overwrite them.
const TAIL: usize = 64;

/// The CPU expectation of an output buffer: `value` followed by NaN padding.
fn with_tail(value: &[f32]) -> Vec<f32> {
    let mut v = value.to_vec();
    v.extend(std::iter::repeat_n(f32::NAN, TAIL));
    v
}

#[test]
fn embedding_gather_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let mut rng = SplitMix64::new(1);
    // (rows, D, output stride, output offset): the MLP input's user and movie halves, and a plain copy.
    for (rows, dim, stride, offset) in [
        (1037, 12, 24, 0),
        (1037, 12, 24, 12),
        (8197, 32, 64, 32),
        (5, 4, 4, 0),
    ] {
        let vocab = 53;
        let table = uniform(&mut rng, vocab * dim, -1.0, 1.0);
        let idx: Vec<u32> = (0..rows).map(|_| rng.below(vocab as u64) as u32).collect();
        let out = nans(gpu, "out", rows * stride + TAIL);
        let (t, i) = (gpu.upload("table", &table), gpu.upload("idx", &idx));
        let p = EmbeddingGatherParams {
            n: rows as u32,
            dim4: (dim / 4) as u32,
            out_stride4: (stride / 4) as u32,
            out_offset4: (offset / 4) as u32,
        };
        let l = Launch::new(
            gpu,
            &k.embedding_gather,
            "embedding_gather",
            EmbeddingGatherBindings {
                table: whole(&t),
                idx: whole(&i),
                out: whole(&out),
            },
            &p,
        );
        run(gpu, &[(&l, p.n * p.dim4)]);
        let mut want = vec![f32::NAN; rows * stride + TAIL];
        cpu::embedding_gather(&table, &idx, dim, &mut want, stride, offset);
        let got = read_f32(gpu, &out, want.len());
        assert_close(
            &format!("embedding_gather rows {rows} D {dim} stride {stride} offset {offset}"),
            &got,
            &want,
            0.0,
            0.0,
        );
    }
}

/// More than 65535 workgroups: `gpu::grid` folds the dispatch into y, and every kernel's
/// `gid.x + gid.y * nwg.x * 64` must still visit each element once and skip the rounding surplus.
#[test]
fn two_dimensional_grid_covers_every_element() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let rows = 65535 * 64 + 1000;
    assert!(wgrec::gpu::grid((rows as u32).div_ceil(64)).1 > 1);
    let table: Vec<f32> = (0..4 * 7).map(|v| v as f32).collect();
    let idx: Vec<u32> = (0..rows as u32).map(|i| i % 7).collect();
    let (t, i) = (gpu.upload("table", &table), gpu.upload("idx", &idx));
    let out = nans(gpu, "out", rows * 4 + TAIL);
    let p = EmbeddingGatherParams {
        n: rows as u32,
        dim4: 1,
        out_stride4: 1,
        out_offset4: 0,
    };
    let l = Launch::new(
        gpu,
        &k.embedding_gather,
        "embedding_gather (2-D grid)",
        EmbeddingGatherBindings {
            table: whole(&t),
            idx: whole(&i),
            out: whole(&out),
        },
        &p,
    );
    run(gpu, &[(&l, rows as u32)]);
    let mut want = vec![f32::NAN; rows * 4 + TAIL];
    cpu::embedding_gather(&table, &idx, 4, &mut want, 4, 0);
    assert_close(
        "embedding_gather over a 2-D grid",
        &read_f32(gpu, &out, want.len()),
        &want,
        0.0,
        0.0,
    );
}

/// `data` followed by one uniform window of NaN: a buffer read through 64 KiB uniform windows must extend a
/// full window past its last element (`Gpu::windowed_buffer`), and NaN there shows up if a kernel reads past
/// its rows instead of clamping.
fn upload_windowed(gpu: &Gpu, label: &str, data: &[f32]) -> wgpu::Buffer {
    let mut v = data.to_vec();
    v.extend(std::iter::repeat_n(f32::NAN, WINDOW));
    gpu.upload(label, &v)
}

/// A (K, N) weight matrix and its (N,) bias packed as in the MLP parameter vector: at 64-aligned, non-zero
/// offsets, NaN before, between and for a window after them, so that a read outside either tensor shows up.
struct PackedLayer {
    buf: wgpu::Buffer,
    w: usize,
    b: usize,
}

impl PackedLayer {
    fn new(gpu: &Gpu, w: &[f32], b: &[f32]) -> Self {
        let w_at = 64;
        let b_at = (w_at + w.len() + 1).next_multiple_of(64);
        let mut v = vec![f32::NAN; b_at + b.len() + WINDOW];
        v[w_at..][..w.len()].copy_from_slice(w);
        v[b_at..][..b.len()].copy_from_slice(b);
        Self {
            buf: gpu.upload("mlp", &v),
            w: w_at,
            b: b_at,
        }
    }

    /// [w_lo, w_hi] of the (K, N) matrix.
    fn weights(&self, k: usize, n: usize) -> [wgpu::BindingResource<'_>; 2] {
        weight_windows(&self.buf, self.w, k, n)
    }
}

/// Dense layer shapes (B, capacity, K, N) with widths `ModelConfig::validate` allows (K = 2D or H1, N = H1
/// or H2) and B not a multiple of 8. The forward kernel reads x in windows of WINDOW / K rows (K 64: 256,
/// 256: 64, 128: 128, 96: 170, 192: 85), the backward one dy in windows of WINDOW / N rows; every B but
/// the smallest spans several windows of x, and of dy but for N 64. W is split into w_lo and w_hi for
/// (256, 128), (128, 192) and (96, 256) (K_lo 128, 80 and 64). A capacity above B builds windows the batch
/// does not use, as for a last, short batch.
const DENSE_SHAPES: [(usize, usize, usize, usize); 6] = [
    (1037, 1037, 64, 256),
    (300, 300, 256, 128),
    (997, 1037, 128, 192),
    (205, 205, 96, 256),
    (131, 131, 192, 64),
    (5, 8, 32, 64),
];

#[test]
fn dense_forward_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let mut rng = SplitMix64::new(2);
    for (rows, cap, kk, n) in DENSE_SHAPES {
        let x = uniform(&mut rng, cap * kk, -1.0, 1.0);
        let scale = 1.0 / (kk as f32).sqrt();
        let w = uniform(&mut rng, kk * n, -scale, scale);
        let b = uniform(&mut rng, n, -0.2, 0.2);
        let (xb, layer) = (upload_windowed(gpu, "x", &x), PackedLayer::new(gpu, &w, &b));
        let y = nans(gpu, "y", rows * n + TAIL);
        let [lo, hi] = layer.weights(kk, n);
        let bias = slice(&layer.buf, layer.b, 256);
        let fwd = Windowed::new(
            gpu,
            &k.dense_forward,
            "dense_forward",
            &xb,
            kk,
            cap,
            |x_win| DenseForwardBindings {
                x_win,
                w_lo: lo.clone(),
                w_hi: hi.clone(),
                b: bias.clone(),
                y: whole(&y),
            },
            &DenseForwardParams::default(),
        );
        assert_eq!(fwd.rows_per_window, wgrec::gpu::window_rows(kk));
        assert!(rows < 8 || rows > fwd.rows_per_window, "one window only");
        let mut launches = vec![];
        for (l, row0, r) in fwd.windows(rows) {
            l.set(gpu, &DenseForwardParams::new(row0, r, kk, n));
            launches.push((l, threads::dense_forward(r as u32, n as u32)));
        }
        assert_eq!(launches.len(), rows.div_ceil(fwd.rows_per_window));
        run(gpu, &launches);
        let want = with_tail(&cpu::dense_forward(&x, &w, &b, rows, kk, n, true));
        assert_close(
            &format!("dense_forward B {rows} K {kk} N {n}"),
            &read_f32(gpu, &y, want.len()),
            &want,
            1e-5,
            1e-5,
        );
    }
}

#[test]
fn dense_backward_data_matches_cpu_with_and_without_mask() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let mut rng = SplitMix64::new(3);
    for (rows, cap, kk, n) in DENSE_SHAPES {
        let dy = uniform(&mut rng, cap * n, -1.0, 1.0);
        let scale = 1.0 / (n as f32).sqrt();
        let w = uniform(&mut rng, kk * n, -scale, scale);
        let h = relu_like(&mut rng, cap * kk);
        let (dyb, layer, hb) = (
            upload_windowed(gpu, "dy", &dy),
            PackedLayer::new(gpu, &w, &[0.0; 4]),
            gpu.upload("h", &h),
        );
        // Without the mask h must not be read at all: bind NaNs, which would zero every element if it were.
        let unused = nans(gpu, "h (unused)", cap * kk);
        for (kernel, mask) in [
            (&k.dense_backward_data, true),
            (&k.dense_backward_data_linear, false),
        ] {
            let dx = nans(gpu, "dx", rows * kk + TAIL);
            let [lo, hi] = layer.weights(kk, n);
            let hbind = if mask { &hb } else { &unused };
            let bwd = Windowed::new(
                gpu,
                kernel,
                "dense_backward_data",
                &dyb,
                n,
                cap,
                |dy_win| DenseBackwardDataBindings {
                    dy_win,
                    w_lo: lo.clone(),
                    w_hi: hi.clone(),
                    h: whole(hbind),
                    dx: whole(&dx),
                },
                &DenseForwardParams::default(),
            );
            assert_eq!(bwd.rows_per_window, wgrec::gpu::window_rows(n));
            let mut launches = vec![];
            for (l, row0, r) in bwd.windows(rows) {
                l.set(gpu, &DenseForwardParams::new(row0, r, kk, n));
                launches.push((l, threads::dense_backward_data(r as u32, kk as u32)));
            }
            assert_eq!(launches.len(), rows.div_ceil(bwd.rows_per_window));
            run(gpu, &launches);
            let hm = mask.then_some(&h[..rows * kk]);
            let want = with_tail(&cpu::dense_backward_data(&dy, &w, hm, rows, kk, n));
            assert_close(
                &format!("dense_backward_data mask {mask} B {rows} K {kk} N {n}"),
                &read_f32(gpu, &dx, want.len()),
                &want,
                1e-5,
                1e-5,
            );
        }
    }
}

/// Where one layer's gradient lives in a split of the (S, L) gradient buffer, as in `MlpLayout`.
struct GradSlots {
    len: usize,
    w: usize,
    b: usize,
}

impl GradSlots {
    fn new(w_len: usize, b_len: usize) -> Self {
        // A leading tensor slot, then W, then b, each 64-aligned, so offsets are not 0.
        let w = 64;
        let b = (w + w_len).next_multiple_of(64);
        let len = (b + b_len + 4).next_multiple_of(64);
        Self { len, w, b }
    }
}

#[test]
fn dense_backward_weights_writes_one_partial_per_split() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let mut rng = SplitMix64::new(4);
    // (B, capacity, K, N, R): splits of S = 4R rows, read through four R-row windows of x and dy. R is the
    // trainer's for the layer's own widths or, as layer 1 gets it, for wider hidden layers.
    for (rows, cap, kk, n, r) in [
        // S 256: three full splits, then 165 rows = windows of 64, 64, 37 and 0 rows.
        (933usize, 933, 64, 256, window_rows(&[64, 256])),
        // S 256: a full split and 44 rows in the first window of the second.
        (300, 300, 256, 128, window_rows(&[256, 128])),
        // Layer 1 of D 16 under H1 256, H2 128: S 256, splits of 256, 256, 256 and 232 (64, 64, 64, 40);
        // the capacity builds a fifth split, which must not be written.
        (1000, 1037, 32, 256, window_rows(&[32, 256, 128])),
        // S 1024: eight full splits and 5 rows.
        (8197, 8197, 32, 64, window_rows(&[32, 64])),
        // R 85: windows of an odd row count, 200 rows = 85, 85, 30 and 0.
        (200, 200, 192, 64, window_rows(&[192, 64])),
        (3, 3, 128, 192, window_rows(&[128, 192])),
    ] {
        let x = uniform(&mut rng, cap * kk, -1.0, 1.0);
        let dy = uniform(&mut rng, cap * n, -1.0, 1.0);
        let g = GradSlots::new(kk * n, n);
        let split = WINDOWS_PER_SPLIT * r;
        let (used, built) = (rows.div_ceil(split), cap.div_ceil(split));
        // One split more than built: it, and the splits built but not used, must stay untouched.
        let grad = nans(gpu, "grad", (built + 1) * g.len);
        let (xb, dyb) = (
            upload_windowed(gpu, "x", &x),
            upload_windowed(gpu, "dy", &dy),
        );
        let launches = dense_backward_weights_launches(
            gpu,
            &k.dense_backward_weights,
            "dense_backward_weights",
            (&xb, kk),
            (&dyb, n),
            &grad,
            r,
            cap,
        );
        assert_eq!(launches.len(), built);
        let t = threads::dense_backward_weights(kk as u32, n as u32);
        for (s, l) in launches.iter().enumerate().take(used) {
            let p = DenseBackwardWeightsParams {
                rows: (rows - s * split).min(split) as u32,
                k4: (kk / 4) as u32,
                n4: (n / 4) as u32,
                window_rows: r as u32,
                grad_len4: (g.len / 4) as u32,
                w_offset4: (g.w / 4) as u32,
                b_offset4: (g.b / 4) as u32,
                split: s as u32,
            };
            l.set(gpu, &p);
        }
        let runs: Vec<(&Launch, u32)> = launches[..used].iter().map(|l| (l, t)).collect();
        run(gpu, &runs);
        let mut want = vec![f32::NAN; (built + 1) * g.len];
        for s in 0..used {
            let (r0, r1) = (s * split, ((s + 1) * split).min(rows));
            let (dw, db) = cpu::dense_backward_weights(
                &x[r0 * kk..r1 * kk],
                &dy[r0 * n..r1 * n],
                r1 - r0,
                kk,
                n,
            );
            want[s * g.len + g.w..][..kk * n].copy_from_slice(&dw);
            want[s * g.len + g.b..][..n].copy_from_slice(&db);
        }
        assert_close(
            &format!("dense_backward_weights B {rows} K {kk} N {n} R {r}"),
            &read_f32(gpu, &grad, want.len()),
            &want,
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn rating_loss_matches_cpu_in_training_and_evaluation() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let mut rng = SplitMix64::new(5);
    for (rows, hd) in [(1037, 48), (8197, 16), (3, 128)] {
        let h2 = relu_like(&mut rng, rows * hd);
        let w3 = uniform(&mut rng, hd, -0.5, 0.5);
        let b3 = 0.3;
        let rating: Vec<f32> = (0..rows).map(|_| 1.0 + rng.below(5) as f32).collect();
        let scale = 2.0 * 0.7 / rows as f32;
        let want = cpu::rating_loss(&h2, &w3, b3, &rating, scale);
        // h2 is read through uniform windows (a full window of NaN past the data); w3 and b3 through
        // 256-float / 4-float uniform bindings.
        let h2b = gpu.upload("h2", &[h2.as_slice(), &vec![f32::NAN; WINDOW]].concat());
        let mut w3p = w3.clone();
        w3p.resize(256, f32::NAN);
        let w3b = gpu.upload("w3", &w3p);
        let b3b = gpu.upload("b3", &[b3, f32::NAN, f32::NAN, f32::NAN]);
        let rb = gpu.upload("rating", &rating);
        for train in [true, false] {
            let pred = nans(gpu, "pred", rows + TAIL);
            let sq = nans(gpu, "sq_err", rows + TAIL);
            let dpred = nans(gpu, "dpred", rows + TAIL);
            let dh2 = nans(gpu, "dh2", rows * hd + TAIL);
            let head = Windowed::new(
                gpu,
                &k.rating_loss,
                "rating_loss",
                &h2b,
                hd,
                rows,
                |h2_win| RatingLossBindings {
                    h2_win,
                    w3: whole(&w3b),
                    b3: whole(&b3b),
                    rating: whole(&rb),
                    pred: whole(&pred),
                    sq_err: whole(&sq),
                    dpred: whole(&dpred),
                    dh2: whole(&dh2),
                },
                &RatingLossParams::default(),
            );
            let mut launches = vec![];
            for (l, row0, r) in head.windows(rows) {
                let p = RatingLossParams {
                    rows: r as u32,
                    h4: (hd / 4) as u32,
                    train: train as u32,
                    scale,
                    row0: row0 as u32,
                    _pad: [0; 3],
                };
                l.set(gpu, &p);
                launches.push((l, r as u32));
            }
            assert!(rows < 1000 || launches.len() > 1, "several windows");
            run(gpu, &launches);
            let what = |t: &str| format!("rating_loss {t} train {train} B {rows} H2 {hd}");
            let read = |b: &wgpu::Buffer, n: usize| read_f32(gpu, b, n + TAIL);
            assert_close(
                &what("pred"),
                &read(&pred, rows),
                &with_tail(&want.pred),
                1e-5,
                1e-5,
            );
            assert_close(
                &what("sq_err"),
                &read(&sq, rows),
                &with_tail(&want.sq_err),
                1e-5,
                1e-4,
            );
            // Evaluation writes neither dpred nor dh2.
            let (dp, dh) = if train {
                (with_tail(&want.dpred), with_tail(&want.dh2))
            } else {
                (
                    vec![f32::NAN; rows + TAIL],
                    vec![f32::NAN; rows * hd + TAIL],
                )
            };
            assert_close(&what("dpred"), &read(&dpred, rows), &dp, 1e-8, 1e-4);
            assert_close(&what("dh2"), &read(&dh2, rows * hd), &dh, 1e-8, 1e-4);
        }
    }
}

#[test]
fn rating_head_backward_writes_one_partial_per_split() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let mut rng = SplitMix64::new(6);
    for (rows, hd, split) in [(1037, 48, 300), (8197, 16, 512), (3, 128, 512)] {
        let h2 = relu_like(&mut rng, rows * hd);
        let dpred = uniform(&mut rng, rows, -0.01, 0.01);
        let g = GradSlots::new(hd, 1);
        let splits = rows.div_ceil(split);
        let grad = nans(gpu, "grad", (splits + 1) * g.len);
        let p = RatingHeadBackwardParams {
            rows: rows as u32,
            h4: (hd / 4) as u32,
            split_rows: split as u32,
            grad_len4: (g.len / 4) as u32,
            w_offset4: (g.w / 4) as u32,
            b_offset4: (g.b / 4) as u32,
            _pad: [0; 2],
        };
        let (h2b, db) = (gpu.upload("h2", &h2), gpu.upload("dpred", &dpred));
        let l = Launch::new(
            gpu,
            &k.rating_head_backward,
            "rating_head_backward",
            RatingHeadBackwardBindings {
                h2: whole(&h2b),
                dpred: whole(&db),
                grad: whole(&grad),
            },
            &p,
        );
        let t = threads::rating_head_backward(rows as u32, hd as u32, split as u32);
        run(gpu, &[(&l, t)]);
        let mut want = vec![f32::NAN; (splits + 1) * g.len];
        for s in 0..splits {
            let (r0, r1) = (s * split, ((s + 1) * split).min(rows));
            let (dw, db) = cpu::rating_head_backward(&h2[r0 * hd..r1 * hd], &dpred[r0..r1]);
            want[s * g.len + g.w..][..hd].copy_from_slice(&dw);
            // b3 is written as a whole vec4 (b3, 0, 0, 0), like its slot in the parameter vector.
            want[s * g.len + g.b..][..4].copy_from_slice(&[db, 0.0, 0.0, 0.0]);
        }
        assert_close(
            &format!("rating_head_backward B {rows} H2 {hd} split {split}"),
            &read_f32(gpu, &grad, want.len()),
            &want,
            1e-6,
            1e-5,
        );
    }
}

#[test]
fn adagrad_dense_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let mut rng = SplitMix64::new(7);
    for (len, splits) in [(4148, 3), (8, 1), (65 * 64 * 4 + 4, 2)] {
        // One more split in the buffer than in use, full of NaN: it must not be summed.
        let mut grad = uniform(&mut rng, splits * len, -1.0, 1.0);
        grad.extend(std::iter::repeat_n(f32::NAN, len));
        let param = uniform(&mut rng, len, -0.5, 0.5);
        let accum = uniform(&mut rng, len, 0.1, 2.0);
        let (gb, pb, ab) = (
            gpu.upload("grad", &grad),
            gpu.upload("param", &param),
            gpu.upload("accum", &accum),
        );
        let p = AdagradDenseParams {
            len4: (len / 4) as u32,
            splits: splits as u32,
            learning_rate: 0.1,
            epsilon: EPSILON,
        };
        let l = Launch::new(
            gpu,
            &k.adagrad_dense,
            "adagrad_dense",
            AdagradDenseBindings {
                grad: whole(&gb),
                param: whole(&pb),
                accum: whole(&ab),
            },
            &p,
        );
        run(gpu, &[(&l, p.len4)]);
        let (mut want_p, mut want_a) = (param.clone(), accum.clone());
        cpu::adagrad_dense(&grad, splits, &mut want_p, &mut want_a, 0.1, EPSILON);
        let what = |t: &str| format!("adagrad_dense {t} L {len} splits {splits}");
        assert_close(
            &what("param"),
            &read_f32(gpu, &pb, len),
            &want_p,
            1e-7,
            1e-5,
        );
        assert_close(
            &what("accum"),
            &read_f32(gpu, &ab, len),
            &want_a,
            1e-7,
            1e-5,
        );
    }
}

/// Keras Adagrad by hand: the accumulator starts at 0.1 and the gradient is 0.5 (two splits of 0.25), so
/// acc = 0.1 + 0.25 = 0.35 and w -= 0.1 * 0.5 / (sqrt(0.35) + 1e-7).
#[test]
fn adagrad_dense_hand_computed_step() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let w0 = [1.0f32, -2.0, 0.5, 0.0];
    let grad = [0.25f32; 8];
    let (gb, pb) = (gpu.upload("grad", &grad), gpu.upload("param", &w0));
    let ab = gpu.upload("accum", &[INITIAL_ACCUMULATOR; 4]);
    let p = AdagradDenseParams {
        len4: 1,
        splits: 2,
        learning_rate: 0.1,
        epsilon: 1e-7,
    };
    let l = Launch::new(
        gpu,
        &k.adagrad_dense,
        "adagrad_dense",
        AdagradDenseBindings {
            grad: whole(&gb),
            param: whole(&pb),
            accum: whole(&ab),
        },
        &p,
    );
    run(gpu, &[(&l, 1)]);
    let step = 0.1 * 0.5 / (0.35f64.sqrt() + 1e-7);
    let want: Vec<f32> = w0.iter().map(|&w| (w as f64 - step) as f32).collect();
    assert_close(
        "accumulator",
        &read_f32(gpu, &ab, 4),
        &[0.35; 4],
        1e-7,
        1e-6,
    );
    assert_close("weights", &read_f32(gpu, &pb, 4), &want, 1e-7, 1e-6);
}

/// pooled_gather (feature towers' multi-hot fields) on shapes over several workgroups, entities with no,
/// one and many features, into a block of a wider NaN-filled output whose other columns must stay NaN.
#[test]
fn pooled_gather_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let k = wgrec::kernels::tower::Kernels::new(gpu).unwrap();
    let mut rng = SplitMix64::new(10);
    // (output rows, field width D, output stride, output offset, entities, vocabulary)
    for (rows, dim, stride, offset, entities, vocab) in [
        (1037, 12, 40, 16, 301, 57),
        (70, 8, 8, 0, 5, 3),
        (4099, 4, 12, 8, 1700, 1000),
    ] {
        // Entity e holds 0..=7 distinct feature rows (e % 8, some empty), drawn from 1..vocab.
        let (mut offsets, mut ids) = (vec![0u32], Vec::new());
        for e in 0..entities {
            let mut mine: Vec<u32> = (0..e % 8)
                .map(|_| 1 + rng.below(vocab as u64 - 1) as u32)
                .collect();
            mine.sort_unstable();
            mine.dedup();
            ids.extend(mine);
            offsets.push(ids.len() as u32);
        }
        let table = uniform(&mut rng, vocab * dim, -1.0, 1.0);
        let entity: Vec<u32> = (0..rows)
            .map(|_| rng.below(entities as u64) as u32)
            .collect();
        let out = nans(gpu, "out", rows * stride + TAIL);
        let bufs = [
            gpu.upload("table", &table),
            gpu.upload("offsets", &offsets),
            gpu.upload("ids", &with_zero(&ids)),
            gpu.upload("entity", &entity),
        ];
        let p = EmbeddingGatherParams {
            n: rows as u32,
            dim4: (dim / 4) as u32,
            out_stride4: (stride / 4) as u32,
            out_offset4: (offset / 4) as u32,
        };
        let l = Launch::new(
            gpu,
            &k.pooled_gather,
            "pooled_gather",
            PooledGatherBindings {
                table: whole(&bufs[0]),
                offsets: whole(&bufs[1]),
                ids: whole(&bufs[2]),
                entity: whole(&bufs[3]),
                out: whole(&out),
            },
            &p,
        );
        run(gpu, &[(&l, p.n * p.dim4)]);
        let mut want = vec![f32::NAN; rows * stride + TAIL];
        cpu::pooled_gather(
            &table, &offsets, &ids, &entity, dim, &mut want, stride, offset,
        );
        assert!(want[offset..offset + dim].iter().all(|v| v.is_finite()));
        assert_close(
            &format!("pooled_gather rows {rows} D {dim} stride {stride} offset {offset}"),
            &read_f32(gpu, &out, want.len()),
            &want,
            1e-6,
            1e-5,
        );
    }
}

/// pooled_gather_backward against its twin: many distinct features over several workgroups, a block of a
/// wider output gradient, NaN past the features' rows.
#[test]
fn pooled_gather_backward_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let k = wgrec::kernels::tower::Kernels::new(gpu).unwrap();
    let mut rng = SplitMix64::new(11);
    for (rows, dim, stride, offset, entities, vocab) in
        [(1037, 12, 40, 16, 301, 257), (70, 8, 8, 0, 5, 3)]
    {
        let (mut offsets, mut ids) = (vec![0u32], Vec::new());
        for e in 0..entities {
            let mut mine: Vec<u32> = (0..e % 8)
                .map(|_| 1 + rng.below(vocab as u64 - 1) as u32)
                .collect();
            mine.sort_unstable();
            mine.dedup();
            ids.extend(mine);
            offsets.push(ids.len() as u32);
        }
        let tokens: Vec<String> = (1..vocab).map(|v| format!("f{v:04}")).collect();
        let field = wgrec::data::features::Field {
            name: "test",
            vocab: wgrec::data::Vocabulary::from_values(tokens.iter().map(String::as_str)),
            offsets,
            ids,
        };
        let entity: Vec<u32> = (0..rows)
            .map(|_| rng.below(entities as u64) as u32)
            .collect();
        let pooled = wgrec::data::features::PooledRows::new(&field, &entity);
        let f = pooled.table_rows.len();
        let dout = uniform(&mut rng, rows * stride, -1.0, 1.0);
        let out = nans(gpu, "dfeature", f * dim + TAIL);
        let bufs = [
            gpu.upload("dout", &dout),
            gpu.upload("pair_offsets", &pooled.pair_offsets),
            gpu.upload("pair_rows", &with_zero(&pooled.pair_rows)),
            gpu.upload("pair_weights", &pooled.pair_weights),
        ];
        let p = PooledGatherBackwardParams {
            features: f as u32,
            dim4: (dim / 4) as u32,
            in_stride4: (stride / 4) as u32,
            in_offset4: (offset / 4) as u32,
        };
        let l = Launch::new(
            gpu,
            &k.pooled_gather_backward,
            "pooled_gather_backward",
            PooledGatherBackwardBindings {
                dout: whole(&bufs[0]),
                pair_offsets: whole(&bufs[1]),
                pair_rows: whole(&bufs[2]),
                pair_weights: whole(&bufs[3]),
                dfeature: whole(&out),
            },
            &p,
        );
        run(gpu, &[(&l, p.features * p.dim4)]);
        let want = cpu::pooled_gather_backward(&dout, stride, offset, dim, &pooled);
        assert_close(
            &format!("pooled_gather_backward rows {rows} D {dim} features {f}"),
            &read_f32(gpu, &out, f * dim + TAIL),
            &with_tail(&want),
            1e-6,
            1e-5,
        );
    }
}

/// scatter_rows (a tower's output rows into its table) over rows spanning several workgroups, in an
/// order that is not the table's: the rows it names get y, every other row of the NaN table stays NaN.
#[test]
fn scatter_rows_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let k = wgrec::kernels::tower::Kernels::new(gpu).unwrap();
    let mut rng = SplitMix64::new(12);
    for (table_rows, n, dim) in [(1700, 1037, 12), (9, 3, 4), (70, 70, 32)] {
        let mut rows: Vec<u32> = (0..table_rows as u32).collect();
        rng.shuffle(&mut rows);
        rows.truncate(n);
        let y = uniform(&mut rng, n * dim, -1.0, 1.0);
        let table = nans(gpu, "table", table_rows * dim + TAIL);
        let bufs = [gpu.upload("y", &y), gpu.upload("rows", &rows)];
        let p = ScatterRowsParams {
            n: n as u32,
            dim4: (dim / 4) as u32,
            _pad: [0; 2],
        };
        let l = Launch::new(
            gpu,
            &k.scatter_rows,
            "scatter_rows",
            ScatterRowsBindings {
                y: whole(&bufs[0]),
                rows: whole(&bufs[1]),
                table: whole(&table),
            },
            &p,
        );
        run(gpu, &[(&l, p.n * p.dim4)]);
        let mut want = vec![f32::NAN; table_rows * dim + TAIL];
        cpu::scatter_rows(&y, &rows, dim, &mut want);
        let got = read_f32(gpu, &table, want.len());
        assert!(
            got.iter().zip(&want).all(|(g, w)| g.is_nan() == w.is_nan()),
            "scatter_rows wrote outside its rows (table {table_rows}, n {n}, D {dim})"
        );
        assert_close(
            &format!("scatter_rows table {table_rows} n {n} D {dim}"),
            &got,
            &want,
            0.0,
            0.0,
        );
    }
}

/// `ids` with one element at least: a binding may not be empty.
fn with_zero(ids: &[u32]) -> Vec<u32> {
    if ids.is_empty() {
        vec![0]
    } else {
        ids.to_vec()
    }
}

/// scale_rows (--temperature) in place over lengths that span several workgroups and end mid-vec4-row;
/// the NaN tail past n4 must stay NaN.
#[test]
fn scale_rows_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let mut rng = SplitMix64::new(9);
    for (n4, scale) in [(1037, 2.5f32), (64, 0.4), (3, 1.0 / 3.0), (0, 7.0)] {
        let x = uniform(&mut rng, 4 * n4, -1.0, 1.0);
        let buf = gpu.upload("x", &with_tail(&x));
        let p = ScaleRowsParams {
            n4: n4 as u32,
            scale,
            _pad: [0; 2],
        };
        let l = Launch::new(
            gpu,
            &k.scale_rows,
            "scale_rows",
            ScaleRowsBindings { x: whole(&buf) },
            &p,
        );
        run(gpu, &[(&l, p.n4)]);
        let mut want = x.clone();
        cpu::scale_rows(&mut want, scale);
        assert_close(
            &format!("scale_rows n4 {n4} scale {scale}"),
            &read_f32(gpu, &buf, 4 * n4 + TAIL),
            &with_tail(&want),
            0.0,
            0.0,
        );
    }
}

#[test]
fn sum_reduce_matches_cpu_into_its_slot() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let mut rng = SplitMix64::new(8);
    for (n, slot) in [(1037, 5), (8197, 0), (100, 7), (256, 1), (0, 2)] {
        let x = uniform(&mut rng, n, -1.0, 1.0);
        let xb = gpu.upload("x", &x);
        let out = nans(gpu, "out", 8 + TAIL);
        let p = SumReduceParams {
            n: n as u32,
            slot: slot as u32,
            _pad: [0; 2],
        };
        let l = Launch::new(
            gpu,
            &k.sum_reduce,
            "sum_reduce",
            SumReduceBindings {
                x: whole(&xb),
                out: whole(&out),
            },
            &p,
        );
        submit(gpu, |pass| l.run_one_group(pass));
        let mut want = vec![f32::NAN; 8 + TAIL];
        want[slot] = cpu::sum_reduce(&x);
        assert_close(
            &format!("sum_reduce n {n} slot {slot}"),
            &read_f32(gpu, &out, want.len()),
            &want,
            1e-5,
            1e-5,
        );
    }
}

/// The retrieval kernels' outputs on the GPU for one batch (D from `rb.dim`).
struct GpuRetrieval {
    lse: Vec<f32>,
    /// (B,) each row's log-normaliser: written with remove_hits only (NaN otherwise).
    row_lse: Vec<f32>,
    loss: Vec<f32>,
    grad_user: Vec<f32>,
    grad_movie: Vec<f32>,
}

/// (first row, rows, first window, last window) of each uniform window of `per` rows over `n` rows.
fn retrieval_windows(n: usize, per: usize) -> Vec<(usize, usize, bool, bool)> {
    let count = n.div_ceil(per);
    (0..count)
        .map(|w| (w * per, per.min(n - w * per), w == 0, w + 1 == count))
        .collect()
}

/// Runs retrieval_softmax_users over every window of distinct movies, then retrieval_softmax_movies over
/// every window of distinct users on the (lse, n_a) it wrote, as a training step does. The state carried
/// between windows, and grad_movie (which the movie kernel adds to), start as NaN: the first window must
/// not read them.
fn gpu_retrieval(gpu: &'static Gpu, rb: &RepeatedBatch, weight: f32) -> GpuRetrieval {
    gpu_retrieval_hits(gpu, rb, weight, false)
}

/// `gpu_retrieval`, with --remove-accidental-hits when `remove_hits`.
fn gpu_retrieval_hits(
    gpu: &'static Gpu,
    rb: &RepeatedBatch,
    weight: f32,
    remove_hits: bool,
) -> GpuRetrieval {
    let k = kernels(gpu, rb.dim);
    let (b, d) = (&rb.batch, rb.dim);
    let (nu, nm) = (b.users.len(), b.movies.len());
    let per = retrieval_window_rows(d);
    let up = |label, v: &[u32]| gpu.upload(label, v);
    // Read through uniform windows: padded by a window of NaN.
    let (user_d, movie_d) = (
        upload_windowed(gpu, "user_d", &rb.user_d()),
        upload_windowed(gpu, "movie_d", &rb.movie_d()),
    );
    let (ucount, mcount) = (
        gpu.upload("user_count", &b.users.count),
        upload_windowed(gpu, "movie_count", &b.movies.count),
    );
    let (uoff, urows, uof) = (
        up("user_offsets", &b.users.offsets),
        up("user_rows", &b.users.rows),
        up("row_user", &b.users.of_row),
    );
    let (moff, mrows, mof) = (
        up("movie_offsets", &b.movies.offsets),
        up("movie_rows", &b.movies.rows),
        up("row_movie", &b.movies.of_row),
    );
    let state = nans(gpu, "state", nu * (d + 4));
    // Written as storage, then read through windows: NaN past the users.
    let user_stat = nans(gpu, "user_stat", nu * 4 + WINDOW);
    let loss = nans(gpu, "loss", nu + TAIL);
    let grad_user = nans(gpu, "grad_user", nu * d + TAIL);
    let grad_movie = nans(gpu, "grad_movie", nm * d + TAIL);
    let row_lse = nans(gpu, "row_lse", b.rows() + TAIL);
    // The movie kernel reads the column weights as storage too.
    let mcount_plain = gpu.upload("movie_count (storage)", &b.movies.count);
    let users: Vec<(Launch, u32)> = retrieval_windows(nm, per)
        .into_iter()
        .map(|(c0, movies, first, last)| {
            let l = Launch::new(
                gpu,
                &k.retrieval_softmax_users,
                "retrieval_softmax_users",
                RetrievalSoftmaxUsersBindings {
                    user_emb: whole(&user_d),
                    movie_win: window(&movie_d, c0 * d),
                    movie_count_win: window(&mcount, c0),
                    movie_emb: whole(&movie_d),
                    user_count: whole(&ucount),
                    user_offsets: whole(&uoff),
                    user_rows: whole(&urows),
                    row_movie: whole(&mof),
                    movie_offsets: whole(&moff),
                    movie_count: whole(&mcount_plain),
                    state: whole(&state),
                    user_stat: whole(&user_stat),
                    loss: whole(&loss),
                    grad_user: whole(&grad_user),
                    row_lse: whole(&row_lse),
                },
                &RetrievalSoftmaxParams::new(nu, movies, weight, first, last)
                    .removing_hits(remove_hits),
            );
            (l, nu as u32)
        })
        .collect();
    let movies: Vec<(Launch, u32)> = retrieval_windows(nu, per)
        .into_iter()
        .map(|(a0, users, first, last)| {
            let l = Launch::new(
                gpu,
                &k.retrieval_softmax_movies,
                "retrieval_softmax_movies",
                RetrievalSoftmaxMoviesBindings {
                    movie_emb: whole(&movie_d),
                    user_win: window(&user_d, a0 * d),
                    user_stat_win: window(&user_stat, a0 * 4),
                    user_emb: whole(&user_d),
                    movie_count: whole(&mcount),
                    movie_offsets: whole(&moff),
                    movie_rows: whole(&mrows),
                    row_user: whole(&uof),
                    row_lse: whole(&row_lse),
                    grad_movie: whole(&grad_movie),
                },
                &RetrievalSoftmaxParams::new(users, nm, weight, first, last)
                    .removing_hits(remove_hits),
            );
            (l, nm as u32)
        })
        .collect();
    let runs: Vec<(&Launch, u32)> = users.iter().chain(&movies).map(|(l, t)| (l, *t)).collect();
    run(gpu, &runs);
    let stat = read_f32(gpu, &user_stat, nu * 4 + TAIL);
    let out = GpuRetrieval {
        lse: stat[..nu * 4].iter().step_by(4).copied().collect(),
        loss: read_f32(gpu, &loss, nu + TAIL),
        grad_user: read_f32(gpu, &grad_user, nu * d + TAIL),
        grad_movie: read_f32(gpu, &grad_movie, nm * d + TAIL),
        row_lse: read_f32(gpu, &row_lse, b.rows() + TAIL),
    };
    // user_stat holds (lse, n_a, 0, 0) for the movie kernel; (-log sum_i exp(-L_i), 1, 0, 0) without hits.
    for a in 0..nu {
        let n = if remove_hits { 1.0 } else { b.users.count[a] };
        assert_eq!(
            &stat[a * 4 + 1..a * 4 + 4],
            &[n, 0.0, 0.0],
            "user_stat of distinct user {a}"
        );
    }
    let written = if remove_hits { b.rows() } else { 0 };
    assert!(
        out.row_lse[written..].iter().all(|v| v.is_nan()),
        "row_lse past what is written"
    );
    // Nothing past the distinct rows is written.
    for (name, v, n) in [
        ("user_stat", &stat, nu * 4),
        ("loss", &out.loss, nu),
        ("grad_user", &out.grad_user, nu * d),
        ("grad_movie", &out.grad_movie, nm * d),
    ] {
        assert!(
            v[n..].iter().all(|x| x.is_nan()),
            "{name}: wrote past its rows"
        );
    }
    out
}

/// The shapes the dense kernels support: D 16, 32, 48 or 64 and hidden widths 64, 128, 192 or 256, each
/// weight matrix within two 64 KiB uniform windows. Needs no adapter.
#[test]
fn validate_accepts_only_the_dense_kernel_shapes() {
    let cfg = |embedding_dim, hidden1, hidden2| ModelConfig {
        users: 2,
        movies: 2,
        embedding_dim,
        hidden1,
        hidden2,
    };
    for d in [16, 32, 48, 64] {
        assert!(check_shape(&cfg(d, 256, 128)).is_ok(), "D {d}");
        assert!(check_shape(&cfg(d, 64, 64)).is_ok(), "D {d}");
    }
    for (d, h1, h2) in [
        (8, 64, 64),
        (12, 64, 64),
        (20, 64, 64),
        (80, 64, 64),
        (16, 16, 64),
        (16, 64, 16),
        (16, 96, 64),
        (16, 320, 64),
        (16, 0, 64),
        // W2 (256 x 256): 64 rows in w_lo leave 192 rows of 256 for one window of 64.
        (16, 256, 256),
    ] {
        assert!(
            check_shape(&cfg(d, h1, h2)).is_err(),
            "D {d}, H1 {h1}, H2 {h2} accepted"
        );
    }
}

/// The largest embedding dimension `check_shape` accepts: the kernels must support it.
fn largest_dim() -> usize {
    (1..=64)
        .map(|i| 4 * i)
        .filter(|&d| {
            check_shape(&ModelConfig {
                users: 2,
                movies: 2,
                embedding_dim: d,
                hidden1: 64,
                hidden2: 64,
            })
            .is_ok()
        })
        .max()
        .unwrap()
}

#[test]
fn retrieval_softmax_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let max_dim = largest_dim();
    // (seed, B, distinct users, distinct movies, D, embedding scale, atol): the third case has logits in
    // the tens, where only a max-stabilised softmax survives f32. The kernels read the other side's rows
    // through uniform windows of WINDOW / D rows (512 at D 32, 256 at D 64) and carry their sums between
    // windows: the fourth case has two windows of movies, the last one three windows of users and three of
    // movies, each with a partial last window.
    for (seed, rows, nu, nm, dim, scale, atol) in [
        (9, 300, 37, 53, 12, 0.5, 1e-4),
        (10, 1037, 137, 203, 32, 0.3, 1e-4),
        (11, 1037, 70, 90, 12, 3.0, 2e-3),
        (12, 8197, 300, 520, 32, 0.2, 2e-3),
        (13, 500, 70, 90, max_dim, 0.1, 1e-4),
        (14, 2000, 600, 700, max_dim, 0.1, 1e-4),
    ] {
        let rb = RepeatedBatch::new(seed, rows, nu, nm, dim, scale);
        let b = &rb.batch;
        assert_eq!((b.users.len(), b.movies.len()), (nu as usize, nm as usize));
        let weight = 0.8;
        let got = gpu_retrieval(gpu, &rb, weight);
        let (ud, md) = (rb.user_d(), rb.movie_d());
        // The movie side from the CPU lse, so the two kernels are checked independently.
        let (users, grad_movie) =
            cpu::retrieval_softmax(&ud, &md, &b.users, &b.movies, dim, weight, weight);
        let what = |t: &str| format!("{t}: B {rows}, {nu} x {nm}, D {dim}, scale {scale}");
        let (nu, nm) = (nu as usize, nm as usize);
        assert_close(&what("lse"), &got.lse[..nu], &users.lse, atol, 1e-5);
        assert_close(&what("loss"), &got.loss[..nu], &users.loss, atol, 1e-4);
        assert_close(
            &what("grad_user"),
            &got.grad_user[..nu * dim],
            &users.grad_user,
            atol,
            1e-4,
        );
        assert_close(
            &what("grad_movie"),
            &got.grad_movie[..nm * dim],
            &grad_movie,
            atol,
            1e-4,
        );
    }
}

/// The GPU's distinct-rows retrieval against TFRS's B x B definition (`cpu::retrieval_loss_direct`) on a
/// batch with repeated users and movies: the loss, and the per-row gradients summed into distinct rows.
/// --remove-accidental-hits on the GPU against the twins written from the definition, on the shapes of
/// `retrieval_softmax_matches_cpu` that span several windows of users and movies, with the tutorial's column
/// weights and with unit ones (logQ).
#[test]
fn retrieval_softmax_without_accidental_hits_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    for (seed, rows, nu, nm, dim, scale, unit, atol) in [
        (9, 300, 37, 53, 12, 0.5, false, 1e-4),
        (11, 1037, 70, 90, 12, 3.0, true, 2e-3),
        (14, 2000, 600, 700, largest_dim(), 0.1, false, 1e-4),
        (12, 8197, 300, 520, 32, 0.2, true, 2e-3),
    ] {
        let mut rb = RepeatedBatch::new(seed, rows, nu, nm, dim, scale);
        if unit {
            rb.batch = rb
                .batch
                .clone()
                .with_columns(wgrec::data::batches::Columns::Distinct);
        }
        let b = &rb.batch;
        let weight = 0.8;
        let got = gpu_retrieval_hits(gpu, &rb, weight, true);
        let (ud, md) = (rb.user_d(), rb.movie_d());
        let (us, ms) = (&b.users, &b.movies);
        let (users, row_lse) = cpu::retrieval_softmax_users_without_hits(
            &ud,
            &md,
            &ms.count,
            &us.offsets,
            &us.rows,
            &ms.of_row,
            &ms.offsets,
            dim,
            weight,
        );
        let grad_movie = cpu::retrieval_softmax_movies_without_hits(
            &ud,
            &md,
            &ms.count,
            &row_lse,
            &us.of_row,
            &ms.of_row,
            &ms.offsets,
            dim,
            weight,
        );
        let what = |t: &str| format!("{t}: B {rows}, {nu} x {nm}, D {dim}, unit weights {unit}");
        let (nu, nm) = (nu as usize, nm as usize);
        assert_close(&what("row_lse"), &got.row_lse[..rows], &row_lse, atol, 1e-5);
        assert_close(&what("lse"), &got.lse[..nu], &users.lse, atol, 1e-5);
        assert_close(&what("loss"), &got.loss[..nu], &users.loss, atol, 1e-4);
        let gu = &got.grad_user[..nu * dim];
        assert_close(&what("grad_user"), gu, &users.grad_user, atol, 1e-4);
        let gm = &got.grad_movie[..nm * dim];
        assert_close(&what("grad_movie"), gm, &grad_movie, atol, 1e-4);
    }
}

#[test]
fn retrieval_softmax_matches_the_direct_batch_formula() {
    let Some(gpu) = gpu() else { return };
    let rb = RepeatedBatch::new(40, 40, 7, 9, 12, 0.5);
    let b = &rb.batch;
    let got = gpu_retrieval(gpu, &rb, 1.0);
    let (loss, du, dm) = cpu::retrieval_loss_direct(&rb.user_rows(), &rb.movie_rows(), rb.dim);
    let gpu_loss: f64 = got.loss[..b.users.len()].iter().map(|&x| x as f64).sum();
    assert_close64("loss", &[gpu_loss], &[loss], 1e-4, 1e-5);
    let (nu, nm) = (b.users.len() * rb.dim, b.movies.len() * rb.dim);
    assert_close64(
        "grad_user",
        &f64s(&got.grad_user[..nu]),
        &rb.sum_rows(&b.users, &du),
        1e-5,
        1e-4,
    );
    assert_close64(
        "grad_movie",
        &f64s(&got.grad_movie[..nm]),
        &rb.sum_rows(&b.movies, &dm),
        1e-5,
        1e-4,
    );
}

#[test]
fn embedding_adagrad_matches_cpu_for_every_task_mix() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let mut rng = SplitMix64::new(13);
    let (rows, dim, vocab) = (1037, 12, 97usize);
    // The batch touches 61 of the 97 table rows; the others must keep their exact bits.
    let touched: Vec<u32> = {
        let mut all: Vec<u32> = (0..vocab as u32).collect();
        rng.shuffle(&mut all);
        all.truncate(61);
        all
    };
    let ids: Vec<u32> = ids_covering(&mut rng, rows, touched.len() as u32)
        .into_iter()
        .map(|i| touched[i as usize])
        .collect();
    let d = Distinct::new(&ids);
    let n = d.len();
    let grad_dense = uniform(&mut rng, n * dim, -1.0, 1.0);
    let dx = uniform(&mut rng, rows * 2 * dim, -0.1, 0.1);
    let table = uniform(&mut rng, vocab * dim, -0.05, 0.05);
    let accum = uniform(&mut rng, vocab * dim, 0.1, 1.0);
    let nan_dense = nans(gpu, "grad_dense (unused)", n * dim);
    let nan_dx = nans(gpu, "dx (unused)", rows * 2 * dim);
    let (gdb, dxb) = (gpu.upload("grad_dense", &grad_dense), gpu.upload("dx", &dx));
    let (offb, rowsb, trb) = (
        gpu.upload("offsets", &d.offsets),
        gpu.upload("rows", &d.rows),
        gpu.upload("table_rows", &d.table_rows),
    );
    // (use_dense, use_rows, dx column offset, L2): users read the first D columns of dx, movies the
    // second; the L2 penalty (off in the tutorial) adds l2 * row to the gradient.
    for (use_dense, use_rows, offset, l2) in [
        (true, true, 0, 0.0),
        (true, true, dim, 0.0),
        (true, false, 0, 0.0),
        (false, true, dim, 0.0),
        (false, false, 0, 0.0),
        (true, true, dim, 0.7),
        (false, false, 0, 0.7),
    ] {
        let (tb, ab) = (gpu.upload("table", &table), gpu.upload("accum", &accum));
        let p = EmbeddingAdagradParams {
            n: n as u32,
            dim4: (dim / 4) as u32,
            dx_stride4: (2 * dim / 4) as u32,
            dx_offset4: (offset / 4) as u32,
            use_dense: use_dense as u32,
            use_rows: use_rows as u32,
            learning_rate: 0.1,
            epsilon: EPSILON,
            l2,
            grad_out: 0,
            _pad: [0; 2],
        };
        // A term that is switched off is bound to NaNs: reading it would poison the update.
        let l = Launch::new(
            gpu,
            &k.embedding_adagrad,
            "embedding_adagrad",
            EmbeddingAdagradBindings {
                grad_dense: whole(if use_dense { &gdb } else { &nan_dense }),
                dx: whole(if use_rows { &dxb } else { &nan_dx }),
                offsets: whole(&offb),
                rows: whole(&rowsb),
                table_rows: whole(&trb),
                table: whole(&tb),
                accum: whole(&ab),
            },
            &p,
        );
        run(gpu, &[(&l, p.n * p.dim4)]);
        let (mut want_t, mut want_a) = (table.clone(), accum.clone());
        cpu::embedding_adagrad(
            use_dense.then_some(grad_dense.as_slice()),
            use_rows.then_some((dx.as_slice(), 2 * dim, offset)),
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
        let got_t = read_f32(gpu, &tb, vocab * dim);
        let got_a = read_f32(gpu, &ab, vocab * dim);
        let what = |t: &str| {
            format!(
                "embedding_adagrad {t} dense {use_dense} rows {use_rows} offset {offset} l2 {l2}"
            )
        };
        assert_close(&what("table"), &got_t, &want_t, 1e-7, 1e-5);
        assert_close(&what("accum"), &got_a, &want_a, 1e-7, 1e-5);
        for row in (0..vocab as u32).filter(|r| !touched.contains(r)) {
            let at = row as usize * dim..(row as usize + 1) * dim;
            assert_eq!(
                got_t[at.clone()]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>(),
                table[at.clone()]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>(),
                "{}: untouched row {row} changed",
                what("table")
            );
            assert_eq!(
                &got_a[at.clone()],
                &accum[at],
                "{}: untouched row {row}",
                what("accum")
            );
        }
        // grad_out (a feature tower's rows): the summed gradient of distinct row a lands in row a of
        // `table`, the L2 term left to the tower, and the accumulator is never read or written.
        let (gb, nan_acc) = (nans(gpu, "gradient", n * dim + 64), nans(gpu, "accum", 64));
        let po = EmbeddingAdagradParams {
            grad_out: 1,
            l2: 0.0,
            ..p
        };
        let l = Launch::new(
            gpu,
            &k.embedding_adagrad,
            "embedding_adagrad (grad_out)",
            EmbeddingAdagradBindings {
                grad_dense: whole(if use_dense { &gdb } else { &nan_dense }),
                dx: whole(if use_rows { &dxb } else { &nan_dx }),
                offsets: whole(&offb),
                rows: whole(&rowsb),
                table_rows: whole(&trb),
                table: whole(&gb),
                accum: whole(&nan_acc),
            },
            &po,
        );
        run(gpu, &[(&l, po.n * po.dim4)]);
        let mut want_g = cpu::embedding_row_gradients(
            use_dense.then_some(grad_dense.as_slice()),
            use_rows.then_some((dx.as_slice(), 2 * dim, offset)),
            &d.offsets,
            &d.rows,
            n,
            dim,
        );
        want_g.extend([f32::NAN; 64]);
        assert_close(
            &what("grad_out"),
            &read_f32(gpu, &gb, n * dim + 64),
            &want_g,
            1e-7,
            1e-5,
        );
        assert!(
            read_f32(gpu, &nan_acc, 64).iter().all(|v| v.is_nan()),
            "{}",
            what("grad_out accum")
        );
    }
}

#[test]
fn candidate_scores_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let mut rng = SplitMix64::new(14);
    for (q, c, dim) in [
        (37, 1037, 12),
        (70, 1682, 32),
        (1, 5, 12),
        (3, 100, largest_dim()),
    ] {
        let k = kernels(gpu, dim);
        let query = uniform(&mut rng, q * dim, -1.0, 1.0);
        let cand = uniform(&mut rng, c * dim, -1.0, 1.0);
        // Candidates are read through uniform windows: a full window of NaN past them.
        let qb = gpu.upload("query", &query);
        let cb = gpu.upload(
            "candidate",
            &[cand.as_slice(), &vec![f32::NAN; WINDOW]].concat(),
        );
        let scores = nans(gpu, "scores", q * c + TAIL);
        let launches =
            candidate_scores_launches(gpu, &k.candidate_scores, &qb, &cb, &scores, q, c, dim);
        // 1682 candidates at D 32 take four windows of 512.
        assert_eq!(launches.len(), c.div_ceil(wgrec::gpu::window_rows(dim)));
        let steps: Vec<(&Launch, u32)> = launches.iter().map(|(l, t)| (l, *t)).collect();
        run(gpu, &steps);
        let want = with_tail(&cpu::candidate_scores(&query, &cand, dim));
        assert_close(
            &format!("candidate_scores {q} x {c}, D {dim}"),
            &read_f32(gpu, &scores, want.len()),
            &want,
            1e-5,
            1e-5,
        );
    }
}

/// One epoch on the GPU leaves the same parameters, accumulators and loss as the CPU twins chained the way
/// a step chains the kernels: two steps (50 rows, then the last 23) on the smallest MLP `validate` allows,
/// then three steps (600, 600 and 137 rows) on the tutorial's hidden layers, where every dense kernel runs
/// over several uniform windows and the weight gradients over several splits (D 16, H1 256, H2 128: R 64,
/// so splits of 256 rows; windows of 512 rows of x, 64 of h1, 128 of dh2).
#[test]
fn training_epoch_matches_cpu_chain() {
    let Some(gpu) = gpu() else { return };
    let dim = 16;
    let k = kernels(gpu, dim);
    // The last shapes train with --temperature 0.4 (the users scaled by scale_rows), and without
    // accidental hits (with and without the logQ correction's unit weights).
    for (users, movies, hidden1, hidden2, n, batch_size, batches, temperature, hits) in [
        (11, 13, 64, 64, 73, 50, 2, None, None),
        (301, 203, 256, 128, 1337, 600, 3, None, None),
        (57, 41, 64, 64, 300, 128, 3, Some(0.4), None),
        (57, 41, 64, 64, 300, 128, 3, None, Some(false)),
        (57, 41, 64, 64, 300, 128, 3, Some(2.0), Some(true)),
    ] {
        let cfg = ModelConfig {
            users,
            movies,
            embedding_dim: dim,
            hidden1,
            hidden2,
        };
        check_shape(&cfg).unwrap();
        let mut rng = SplitMix64::new(16);
        let train = Ratings {
            user: (0..n)
                .map(|_| 1 + rng.below(users as u64 - 1) as u32)
                .collect(),
            movie: (0..n)
                .map(|_| 1 + rng.below(movies as u64 - 1) as u32)
                .collect(),
            rating: (0..n).map(|_| 1.0 + rng.below(5) as f32).collect(),
        };
        let opts = TrainOptions {
            rating_weight: 1.0,
            retrieval_weight: 1.0,
            epochs: 1,
            batch_size,
            learning_rate: 0.1,
            seed: 5,
            reshuffle: false,
            tweaks: wgrec::options::Tweaks {
                temperature,
                remove_accidental_hits: hits.is_some(),
                logq_correction: hits == Some(true),
                ..Default::default()
            },
        };
        let init = Params::init(&cfg, opts.seed);
        let model = GpuModel::new(gpu, &cfg, &init).unwrap();
        let mut trainer = Trainer::new(gpu, k, model, &train, &opts).unwrap();
        assert_eq!(trainer.batches(), batches);
        let log = trainer.epoch(None).unwrap();
        let got = trainer.model.params(gpu).unwrap();
        let (got_ua, got_ma, got_la) = trainer.model.accumulators(gpu).unwrap();

        let mut cpu_model = CpuModel::new(cfg, init);
        // Trainer's batch stream (trainer::batch_rng).
        let perm = wgrec::data::batches::permutation(
            n,
            &mut SplitMix64::new(opts.seed ^ 0xBA7C_4E55_0000_0000),
        );
        // With the options' column weights (unit ones with the logQ correction).
        let cpu_batches = opts.make_batches(&train, &perm, cfg.movies);
        assert_eq!(cpu_batches.len(), batches);
        let (mut weighted, mut rows) = (0.0, 0.0);
        for b in &cpu_batches {
            let loss = cpu_model.step(b, &opts);
            weighted += loss * b.rows() as f64;
            rows += b.rows() as f64;
        }
        let want = &cpu_model.params;
        let what = |t: &str| {
            format!(
                "{t} (H1 {hidden1}, H2 {hidden2}, batch {batch_size}, T {temperature:?}, no hits / \
                 logQ {hits:?})"
            )
        };
        assert_close(&what("user_emb"), &got.user_emb, &want.user_emb, 1e-6, 1e-4);
        assert_close(
            &what("movie_emb"),
            &got.movie_emb,
            &want.movie_emb,
            1e-6,
            1e-4,
        );
        assert_close(&what("mlp"), &got.mlp, &want.mlp, 1e-6, 1e-4);
        assert_close(&what("user_acc"), &got_ua, &cpu_model.user_acc, 1e-6, 1e-4);
        assert_close(
            &what("movie_acc"),
            &got_ma,
            &cpu_model.movie_acc,
            1e-6,
            1e-4,
        );
        assert_close(&what("mlp_acc"), &got_la, &cpu_model.mlp_acc, 1e-6, 1e-4);
        assert_close64(
            &what("epoch loss"),
            &[log.loss],
            &[weighted / rows],
            1e-5,
            1e-5,
        );
        assert_ne!(
            got.mlp,
            Params::init(&cfg, opts.seed).mlp,
            "the step changed nothing"
        );
    }
}

/// A D = 16 model for the evaluator tests: embeddings wider than the initialiser's (so the ranks, and so
/// the hits, vary with k), and candidates as u.item lists them: every movie but the OOV row in a shuffled
/// order, the movies `twice` listed once more (duplicate titles: the first occurrence is a pair's own
/// candidate, the second ties with it).
fn eval_fixture(
    users: usize,
    movies: usize,
    hidden1: usize,
    twice: &[u32],
    seed: u64,
    dim: usize,
) -> (ModelConfig, Params, Vec<u32>, SplitMix64) {
    let cfg = ModelConfig {
        users,
        movies,
        embedding_dim: dim,
        hidden1,
        hidden2: 64,
    };
    let mut rng = SplitMix64::new(seed);
    let mut params = Params::init(&cfg, seed);
    params.user_emb = uniform(&mut rng, cfg.users * dim, -1.0, 1.0);
    params.movie_emb = uniform(&mut rng, cfg.movies * dim, -1.0, 1.0);
    let mut candidates: Vec<u32> = (1..cfg.movies as u32).collect();
    candidates.extend_from_slice(twice);
    rng.shuffle(&mut candidates);
    (cfg, params, candidates, rng)
}

/// The evaluator (FactorizedTopK over tiles of users, RMSE and loss over evaluation batches) against the
/// metrics computed on the host from the same parameters with the CPU twins.
#[test]
fn evaluator_matches_cpu_metrics() {
    let Some(gpu) = gpu() else { return };
    let dim = 16;
    let k = kernels(gpu, dim);
    // Evaluation batches of 700 rows: two windows of x (512 rows), six of h1 (128).
    let (cfg, params, candidates, mut rng) =
        eval_fixture(4201, 300, 128, &[5, 17, 17, 60], 17, dim);
    // More distinct test users than one tile of the score matrix holds (4096).
    let n = 6000;
    let test = Ratings {
        user: ids_covering(&mut rng, n, cfg.users as u32),
        movie: (0..n).map(|_| 1 + rng.below(299) as u32).collect(),
        rating: (0..n).map(|_| 1.0 + rng.below(5) as f32).collect(),
    };
    let model = GpuModel::new(gpu, &cfg, &params).unwrap();
    let batch_size = 700;
    let evaluator =
        wgrec::eval::Evaluator::new(gpu, k, &model, &test, &candidates, batch_size).unwrap();

    // Host side: scores of every test row's user against every candidate, and the rating MLP per batch.
    let scores = cpu::candidate_scores(
        &params.user_emb,
        &{
            let mut c = vec![0.0; candidates.len() * dim];
            cpu::embedding_gather(&params.movie_emb, &candidates, dim, &mut c, dim, 0);
            c
        },
        dim,
    );
    let own: Vec<u32> = test
        .movie
        .iter()
        .map(|m| candidates.iter().position(|c| c == m).unwrap() as u32)
        .collect();
    let ks = wgrec::eval::KS;
    // FactorizedTopK: a hit at k when fewer than k candidates score strictly higher.
    let ranks = cpu::pair_ranks(&scores, candidates.len(), &test.user, &own, |_, _| false);
    let hits: Vec<u32> = ks
        .iter()
        .map(|&k| ranks.iter().filter(|(all, _)| *all < k).count() as u32)
        .collect();
    let p = &params;
    let order: Vec<u32> = (0..n as u32).collect();
    let batches = wgrec::data::batches::make_batches(&test, &order, batch_size);
    for (rating_weight, retrieval_weight) in [(0.6f32, 1.3f32), (1.0, 0.0)] {
        let (mut sq_total, mut loss) = (0.0f64, 0.0f64);
        for b in &batches {
            let rows = b.rows();
            let head = wgrec::cpu::reference::rating_forward(&cfg, p, b, 0.0).head;
            let sq: f64 = head.sq_err.iter().map(|&v| v as f64).sum();
            sq_total += sq;
            let mut batch_loss = rating_weight as f64 * sq / rows as f64;
            if retrieval_weight != 0.0 {
                let (us, ms) = (&b.users, &b.movies);
                let mut ud = vec![0.0; us.len() * dim];
                let mut md = vec![0.0; ms.len() * dim];
                cpu::embedding_gather(&p.user_emb, &us.table_rows, dim, &mut ud, dim, 0);
                cpu::embedding_gather(&p.movie_emb, &ms.table_rows, dim, &mut md, dim, 0);
                let r = cpu::retrieval_softmax_users(
                    &ud,
                    &md,
                    &us.count,
                    &ms.count,
                    &us.offsets,
                    &us.rows,
                    &ms.of_row,
                    dim,
                    0.0,
                );
                let ret: f64 = r.loss.iter().map(|&v| v as f64).sum();
                batch_loss += retrieval_weight as f64 * ret;
            }
            loss += batch_loss * rows as f64 / n as f64;
        }
        let got = evaluator.run(rating_weight, retrieval_weight).unwrap();
        let want_top: Vec<(u32, f64)> = ks
            .iter()
            .zip(&hits)
            .map(|(&k, &h)| (k, h as f64 / n as f64))
            .collect();
        assert_eq!(got.top_k, want_top, "FactorizedTopK (gpu left, cpu right)");
        let what = format!("weights {rating_weight}, {retrieval_weight}");
        let rmse = (sq_total / n as f64).sqrt();
        assert_close64(&format!("RMSE, {what}"), &[got.rmse], &[rmse], 1e-6, 1e-5);
        assert_close64(&format!("loss, {what}"), &[got.loss], &[loss], 1e-6, 1e-5);
    }
    assert!(
        hits[0] > 0 && hits[4] < n as u32,
        "hits {hits:?} do not vary with k"
    );
}

#[test]
fn streamed_batches_fill_the_work_buffers_like_resident_ones() {
    let Some(gpu) = gpu() else { return };
    use wgrec::gpu::batches::{BatchBuffers, BatchStore};
    let mut rng = SplitMix64::new(21);
    let n = 1000;
    let ratings = Ratings {
        user: (0..n).map(|_| 1 + rng.below(40) as u32).collect(),
        movie: (0..n).map(|_| 1 + rng.below(70) as u32).collect(),
        rating: (0..n).map(|_| 1.0 + rng.below(5) as f32).collect(),
    };
    let perm = wgrec::data::batches::permutation(n, &mut rng);
    let resident = BatchStore::with_budget(
        gpu,
        "resident",
        &ratings,
        &perm,
        300,
        wgrec::data::batches::Columns::Batch,
        u64::MAX,
    )
    .unwrap();
    let streamed = BatchStore::with_budget(
        gpu,
        "streamed",
        &ratings,
        &perm,
        300,
        wgrec::data::batches::Columns::Batch,
        0,
    )
    .unwrap();
    assert!(resident.resident() && !streamed.resident());
    assert_eq!(resident.batches.len(), 4);
    let read = |store: &BatchStore, b: usize| {
        let work = BatchBuffers::new(gpu, "work", 300);
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        store.copy_to(gpu, &mut enc, b, &work);
        gpu.queue.submit([enc.finish()]);
        let rows = store.batches[b].rows;
        [
            &work.user,
            &work.movie,
            &work.rating,
            &work.users.rows,
            &work.movies.offsets,
        ]
        .map(|buf| read_u32(gpu, buf, rows))
    };
    for b in 0..4 {
        assert_eq!(resident.batches[b].users, streamed.batches[b].users);
        assert_eq!(resident.batches[b].movies, streamed.batches[b].movies);
        assert_eq!(read(&resident, b), read(&streamed, b), "batch {b}");
    }
}

/// pair_ranks against its twin: tied integer scores, users with more pairs than a group holds, a candidate
/// count that leaves a partial mask word, two tiles, with and without an exclusion mask.
#[test]
fn pair_ranks_matches_cpu_with_ties_groups_and_masks() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let mut rng = SplitMix64::new(33);
    let (users, c) = (29usize, 1037usize);
    let words = c.div_ceil(32);
    let scores: Vec<f32> = (0..users * c).map(|_| rng.below(150) as f32).collect();
    // Pairs sorted by user, 0 to 20 per user (several groups for some).
    let mut pq = Vec::new();
    for u in 0..users as u32 {
        for _ in 0..rng.below(21) {
            pq.push(u);
        }
    }
    let pc: Vec<u32> = pq.iter().map(|_| rng.below(c as u64) as u32).collect();
    let mask: Vec<u32> = (0..users * words)
        .map(|_| (rng.next_u64() & rng.next_u64()) as u32)
        .collect();
    let bit = |q: u32, cand: usize| (mask[q as usize * words + cand / 32] >> (cand % 32)) & 1 == 1;
    let (pcb, maskb) = (
        gpu.upload("pair_candidate", &pc),
        gpu.upload("excluded", &mask),
    );
    // Tile 1: users 0..12, tile 2: users 12..29, each with its own slice of the score matrix.
    let split = pq.iter().position(|&q| q >= 12).unwrap();
    for use_mask in [false, true] {
        let all = nans(gpu, "rank_all", pq.len());
        let unseen = nans(gpu, "rank_unseen", pq.len());
        let mut launches = Vec::new();
        for (u0, p0, p1) in [(0usize, 0usize, split), (12, split, pq.len())] {
            let local: Vec<u32> = pq[p0..p1].iter().map(|&q| q - u0 as u32).collect();
            let groups = pair_groups(&local, p0);
            assert!(groups.iter().all(|g| g[2] as usize <= PAIRS_PER_GROUP));
            let gb = gpu.upload("groups", &groups);
            let sb = gpu.upload("tile scores", &scores[u0 * c..]);
            let params = PairRanksParams {
                groups: groups.len() as u32,
                candidates: c as u32,
                words: if use_mask { words as u32 } else { 0 },
                user0: u0 as u32,
                ..Default::default()
            };
            let buffers = [&sb, &gb, &pcb, &maskb, &all, &unseen];
            for l in pair_ranks_launches(gpu, &k.pair_ranks, buffers, params) {
                launches.push((l, groups.len() as u32));
            }
        }
        let runs: Vec<(&Launch, u32)> = launches.iter().map(|(l, n)| (l, *n)).collect();
        run(gpu, &runs);
        let want = cpu::pair_ranks(&scores, c, &pq, &pc, |q, cand| use_mask && bit(q, cand));
        let got: Vec<(u32, u32)> = read_u32(gpu, &all, pq.len())
            .into_iter()
            .zip(read_u32(gpu, &unseen, pq.len()))
            .collect();
        assert_eq!(
            got, want,
            "pair ranks, mask {use_mask} (gpu left, cpu right)"
        );
        if use_mask {
            assert!(
                want.iter().any(|(a, u)| u < a),
                "the mask excludes something"
            );
        }
    }
}

/// Recall@K / NDCG@K from the evaluator (training movies and duplicate u.item rows excluded) against the
/// same metrics computed on the host from CPU scores; FactorizedTopK is unaffected by the exclusion.
#[test]
fn evaluator_ranked_metrics_exclude_training_movies() {
    let Some(gpu) = gpu() else { return };
    let dim = 16;
    let k = kernels(gpu, dim);
    // More distinct test users than one tile holds (4096): the second tile's mask rows start at user 4096.
    let (cfg, params, candidates, mut rng) = eval_fixture(4301, 121, 64, &[7, 7, 30], 23, dim);
    let draw = |rng: &mut SplitMix64, n: usize| Ratings {
        user: (0..n).map(|_| 1 + rng.below(4300) as u32).collect(),
        movie: (0..n).map(|_| 1 + rng.below(120) as u32).collect(),
        rating: (0..n).map(|_| 1.0 + rng.below(5) as f32).collect(),
    };
    let (test, train) = (draw(&mut rng, 20000), draw(&mut rng, 30000));
    let model = GpuModel::new(gpu, &cfg, &params).unwrap();
    let plain = wgrec::eval::Evaluator::new(gpu, k, &model, &test, &candidates, 512).unwrap();
    let ranked =
        wgrec::eval::Evaluator::excluding_training(gpu, k, &model, &test, &train, &candidates, 512)
            .unwrap();
    let (a, b) = (plain.run(1.0, 1.0).unwrap(), ranked.run(1.0, 1.0).unwrap());
    assert!(Distinct::new(&test.user).len() > 4096, "two tiles");
    assert_eq!(a.top_k, b.top_k);
    assert!(a.ranked.is_none());
    let got = b.ranked.expect("ranked metrics");

    let mut cand_emb = vec![0.0; candidates.len() * dim];
    cpu::embedding_gather(&params.movie_emb, &candidates, dim, &mut cand_emb, dim, 0);
    let scores = cpu::candidate_scores(&params.user_emb, &cand_emb, dim);
    let first = |m: u32| candidates.iter().position(|&c| c == m).unwrap();
    let rated: std::collections::HashSet<(u32, u32)> = train
        .user
        .iter()
        .copied()
        .zip(train.movie.iter().copied())
        .collect();
    let seen = |u: u32, m: u32| rated.contains(&(u, m));
    // Pairs grouped by distinct user, as the evaluator orders them.
    let users = Distinct::new(&test.user);
    let (mut pq, mut pc) = (Vec::new(), Vec::new());
    for a in 0..users.len() {
        for &r in &users.rows[users.offsets[a] as usize..users.offsets[a + 1] as usize] {
            pq.push(test.user[r as usize]);
            pc.push(first(test.movie[r as usize]) as u32);
        }
    }
    let ranks = cpu::pair_ranks(&scores, candidates.len(), &pq, &pc, |u, c| {
        first(candidates[c]) != c || seen(u, candidates[c])
    });
    let unseen: Vec<u32> = ranks.iter().map(|r| r.1).collect();
    let ks = wgrec::eval::RANKED_KS;
    let (recall, ndcg) = wgrec::eval::metrics::recall_ndcg(&unseen, &users.offsets, &ks);
    assert_eq!(got.recall, recall);
    assert_eq!(got.ndcg, ndcg);
    assert!(
        recall.iter().any(|(_, r)| *r > 0.0) && ranks.iter().any(|(all, u)| u < all),
        "the check exercises hits and exclusions"
    );
}

/// FactorizedTopK at ML-25M's candidate count (62,423 movies): score tiles of 512 users, 122 uniform
/// windows of candidates per tile. The ranks of every test pair against the host's.
#[test]
fn evaluator_ranks_at_ml_25m_candidate_count() {
    let Some(gpu) = gpu() else { return };
    let dim = 32;
    let k = kernels(gpu, dim);
    let (cfg, params, candidates, mut rng) = eval_fixture(700, 62_424, 64, &[3], 29, dim);
    let n = 3000;
    let test = Ratings {
        user: ids_covering(&mut rng, n, cfg.users as u32),
        movie: (0..n).map(|_| 1 + rng.below(62_423) as u32).collect(),
        rating: (0..n).map(|_| 1.0 + rng.below(5) as f32).collect(),
    };
    let model = GpuModel::new(gpu, &cfg, &params).unwrap();
    let got = wgrec::eval::Evaluator::new(gpu, k, &model, &test, &candidates, 1024)
        .unwrap()
        .run(0.0, 0.0)
        .unwrap();
    let mut cand_emb = vec![0.0; candidates.len() * dim];
    cpu::embedding_gather(&params.movie_emb, &candidates, dim, &mut cand_emb, dim, 0);
    let mut position = vec![u32::MAX; cfg.movies];
    for (i, &m) in candidates.iter().enumerate().rev() {
        position[m as usize] = i as u32;
    }
    let ranks: Vec<u32> = (0..n)
        .map(|i| {
            let u = test.user[i] as usize;
            let query = &params.user_emb[u * dim..][..dim];
            let scores = cpu::candidate_scores(query, &cand_emb, dim);
            let own = scores[position[test.movie[i] as usize] as usize];
            scores.iter().filter(|&&s| s > own).count() as u32
        })
        .collect();
    let want: Vec<(u32, f64)> = wgrec::eval::KS
        .iter()
        .map(|&k| {
            (
                k,
                ranks.iter().filter(|&&r| r < k).count() as f64 / n as f64,
            )
        })
        .collect();
    assert_eq!(got.top_k, want, "FactorizedTopK (gpu left, cpu right)");
}

/// pair_ranks over more candidates than llvmpipe lets one invocation loop over (65,535 iterations in all):
/// the evaluator's chunks of RANK_CHUNK candidates, the first storing and the others adding, against the
/// twin, with tied scores and an exclusion mask.
#[test]
fn pair_ranks_chunks_rows_longer_than_the_llvmpipe_loop_limit() {
    let Some(gpu) = gpu() else { return };
    let k = kernels(gpu, 12);
    let mut rng = SplitMix64::new(34);
    let (users, c) = (12usize, 70_001usize);
    let words = c.div_ceil(32);
    let scores: Vec<f32> = (0..users * c).map(|_| rng.below(5000) as f32).collect();
    let mut pq = Vec::new();
    for u in 0..users as u32 {
        for _ in 0..1 + rng.below(12) {
            pq.push(u);
        }
    }
    // Own candidates on both sides of every chunk boundary.
    let pc: Vec<u32> = pq.iter().map(|_| rng.below(c as u64) as u32).collect();
    let mask: Vec<u32> = (0..users * words)
        .map(|_| (rng.next_u64() & rng.next_u64()) as u32)
        .collect();
    let bit = |q: u32, cand: usize| (mask[q as usize * words + cand / 32] >> (cand % 32)) & 1 == 1;
    let groups = pair_groups(&pq, 0);
    let (sb, gb, pcb, maskb) = (
        gpu.upload("scores", &scores),
        gpu.upload("groups", &groups),
        gpu.upload("pair_candidate", &pc),
        gpu.upload("excluded", &mask),
    );
    let (all, unseen) = (
        nans(gpu, "rank_all", pq.len()),
        nans(gpu, "rank_unseen", pq.len()),
    );
    let params = PairRanksParams {
        groups: groups.len() as u32,
        candidates: c as u32,
        words: words as u32,
        ..Default::default()
    };
    let chunks = params.chunks();
    assert_eq!(chunks.len(), c.div_ceil(RANK_CHUNK));
    assert!(chunks.len() >= 4 && chunks.last().unwrap().c_end == c as u32);
    let buffers = [&sb, &gb, &pcb, &maskb, &all, &unseen];
    let launches = pair_ranks_launches(gpu, &k.pair_ranks, buffers, params);
    assert_eq!(launches.len(), chunks.len());
    let runs: Vec<(&Launch, u32)> = launches.iter().map(|l| (l, groups.len() as u32)).collect();
    run(gpu, &runs);
    let want = cpu::pair_ranks(&scores, c, &pq, &pc, bit);
    let got: Vec<(u32, u32)> = read_u32(gpu, &all, pq.len())
        .into_iter()
        .zip(read_u32(gpu, &unseen, pq.len()))
        .collect();
    assert_eq!(
        got, want,
        "pair ranks over 70,001 candidates (gpu left, cpu right)"
    );
    assert!(
        want.iter().any(|&(a, _)| a > 65_535 / 2),
        "ranks deep into the row"
    );
}
