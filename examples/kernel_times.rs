//! Times the dense kernels at the tutorial's shapes (B = 8192) on the default adapter:
//! `cargo run --release --example kernel_times`. A stop-gap until `wgrec bench` (issue 3).

use std::time::Instant;
use wgrec::gpu::{whole, Gpu};
use wgrec::kernels::*;

fn time(gpu: &Gpu, l: &Launch, threads: u32, reps: usize) -> f64 {
    time3(gpu, l, (threads.div_ceil(64), 1, 1), reps)
}
fn time3(gpu: &Gpu, l: &Launch, g: (u32, u32, u32), reps: usize) -> f64 {
    let go = |n: usize| {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for _ in 0..n {
                l.run_groups(&mut pass, g);
            }
        }
        gpu.queue.submit([enc.finish()]);
        gpu.wait().unwrap();
    };
    go(1);
    let t = Instant::now();
    go(reps);
    t.elapsed().as_secs_f64() / reps as f64
}

fn main() {
    let gpu = Gpu::try_default().unwrap();
    let k = Kernels::new(&gpu, 32).unwrap();
    let b = 8192usize;
    let x = gpu.upload("x", &vec![0.5f32; b * 256]);
    let w = gpu.upload("w", &vec![0.01f32; 256 * 256]);
    let bias = gpu.upload("b", &vec![0.0f32; 256]);
    let y = gpu.buffer("y", b * 256);
    let g = gpu.buffer("g", 16 * 256 * 256);
    for (kk, n) in [(64usize, 256usize), (256, 128)] {
        let p = DenseParams {
            rows: b as u32,
            k4: (kk / 4) as u32,
            n4: (n / 4) as u32,
            _pad: 0,
        };
        let l = Launch::new(
            &gpu,
            &k.dense_forward,
            "f",
            &[whole(&x), whole(&w), whole(&bias), whole(&y)],
            &p,
        );
        let t = time(&gpu, &l, threads::dense_forward(b as u32, n as u32), 5);
        println!(
            "dense_forward {kk}x{n}: {:.2} ms {:.1} GFLOP/s",
            t * 1e3,
            2.0 * (b * kk * n) as f64 / t / 1e9
        );
        let l = Launch::new(
            &gpu,
            &k.dense_backward_data,
            "d",
            &[whole(&x), whole(&w), whole(&x), whole(&y)],
            &p,
        );
        let t = time(
            &gpu,
            &l,
            threads::dense_backward_data(b as u32, kk as u32),
            5,
        );
        println!(
            "dense_backward_data {kk}x{n}: {:.2} ms {:.1} GFLOP/s",
            t * 1e3,
            2.0 * (b * kk * n) as f64 / t / 1e9
        );
        let p = DenseWeightsParams {
            rows: b as u32,
            k4: (kk / 4) as u32,
            n4: (n / 4) as u32,
            split_rows: 512,
            grad_len4: (256 * 256 / 4) as u32,
            w_offset4: 0,
            b_offset4: 0,
            _pad: 0,
        };
        let l = Launch::new(
            &gpu,
            &k.dense_backward_weights,
            "w",
            &[whole(&x), whole(&y), whole(&g)],
            &p,
        );
        let t = time(
            &gpu,
            &l,
            threads::dense_backward_weights(b as u32, kk as u32, n as u32, 512),
            5,
        );
        println!(
            "dense_backward_weights {kk}x{n}: {:.2} ms {:.1} GFLOP/s",
            t * 1e3,
            2.0 * (b * kk * n) as f64 / t / 1e9
        );
    }
}
