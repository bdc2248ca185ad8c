//! Times the MLP kernels at the tutorial's shapes (B = 8192) on the default adapter:
//! `cargo run --release --example kernel_times`. A stop-gap until `wgrec bench` (issue 3).

use std::time::Instant;
use wgrec::gpu::{whole, Gpu, WINDOW};
use wgrec::kernels::*;

fn time_all(gpu: &Gpu, launches: &[Launch], threads: u32, reps: usize) -> f64 {
    let go = |n: usize| {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = Pass::begin(&mut enc, "kernel_times", None);
            for _ in 0..n {
                for l in launches {
                    l.run(&mut pass, threads);
                }
            }
        }
        gpu.queue.submit([enc.finish()]);
        gpu.wait().unwrap();
    };
    go(1); // compiles the pipeline
    let t = Instant::now();
    go(reps);
    t.elapsed().as_secs_f64() / reps as f64
}

/// Times one layer dispatched window by window over `b` rows.
fn time_windows(
    gpu: &Gpu,
    layer: &Windowed,
    b: usize,
    k: usize,
    n: usize,
    threads: impl Fn(u32) -> u32,
) -> f64 {
    let mut total = 0.0;
    for (l, row0, rows) in layer.windows(b) {
        l.set(gpu, &DenseParams::new(row0, rows, k, n));
        total += time_all(gpu, std::slice::from_ref(l), threads(rows as u32), 3);
    }
    total
}

fn report(name: &str, k: usize, n: usize, b: usize, secs: f64) {
    let gflops = 2.0 * (b * k * n) as f64 / secs / 1e9;
    println!(
        "{name:<24} {k:>4} x {n:<4} {:>8.2} ms {gflops:>6.1} GFLOP/s",
        secs * 1e3
    );
}

fn main() -> anyhow::Result<()> {
    let gpu = Gpu::new(&Default::default())?;
    println!("adapter: {} ({})", gpu.adapter.name, gpu.adapter.backend);
    let k = Kernels::new(&gpu, 32)?;
    let b = 8192usize;
    let w = gpu.upload("w", &vec![0.01f32; 256 * 256 + 2 * WINDOW]);
    let x = gpu.upload("x", &vec![0.5f32; b * 256 + WINDOW]);
    let y = gpu.buffer("y", b * 256);
    let y2 = gpu.buffer("y2", b * 256);
    let g = gpu.buffer("g", 16 * 256 * 256);
    for (kk, n) in [(64usize, 256usize), (256, 128)] {
        let layer =
            |kernel, input: &wgpu::Buffer, row_len: usize, rest: &[wgpu::BindingResource]| {
                Windowed::new(
                    &gpu,
                    kernel,
                    "layer",
                    input,
                    row_len,
                    b,
                    rest,
                    &DenseParams::default(),
                )
            };
        let [lo, hi] = weight_windows(&w, 0, kk, n);
        let fwd = layer(
            &k.dense_forward,
            &x,
            kk,
            &[lo, hi, wgrec::gpu::window(&w, 0), whole(&y)],
        );
        let secs = time_windows(&gpu, &fwd, b, kk, n, |rows| {
            threads::dense_forward(rows, n as u32)
        });
        report("dense_forward", kk, n, b, secs);
        let [lo, hi] = weight_windows(&w, 0, kk, n);
        let data = layer(
            &k.dense_backward_data,
            &x,
            n,
            &[lo, hi, whole(&y), whole(&y2)],
        );
        let secs = time_windows(&gpu, &data, b, kk, n, |rows| {
            threads::dense_backward_data(rows, kk as u32)
        });
        report("dense_backward_data", kk, n, b, secs);
        let rows_w = window_rows(&[kk, n]);
        let launches = dense_backward_weights_launches(
            &gpu,
            &k.dense_backward_weights,
            "w",
            (&x, kk),
            (&x, n),
            &g,
            rows_w,
            b,
        );
        let split = WINDOWS_PER_SPLIT * rows_w;
        for (s, l) in launches.iter().enumerate() {
            let p = DenseWeightsParams {
                rows: split.min(b - s * split) as u32,
                k4: (kk / 4) as u32,
                n4: (n / 4) as u32,
                window_rows: rows_w as u32,
                grad_len4: (256 * 256 / 4) as u32,
                w_offset4: 0,
                b_offset4: 0,
                split: s as u32,
            };
            l.set(&gpu, &p);
        }
        let secs = time_all(
            &gpu,
            &launches,
            threads::dense_backward_weights(kk as u32, n as u32),
            5,
        );
        report("dense_backward_weights", kk, n, b, secs);
    }
    Ok(())
}
