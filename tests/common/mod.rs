//! Helpers shared by the integration tests: the adapter and the MovieLens data (or a recorded skip), GPU
//! launches and readback, seeded inputs, and the per-tensor comparison `|a - b| <= atol + rtol * |b|`.
#![allow(dead_code)]

mod skip;
pub use skip::skip;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use wgrec::data::batches::{Batch, Distinct};
use wgrec::data::SplitMix64;
use wgrec::gpu::launch::{Launch, Pass};
use wgrec::gpu::Gpu;
use wgrec::kernels::windowed::Kernels;

/// The default adapter, shared by every test of the binary; None (after recording a skip) when there is
/// no adapter outside CI. In CI (`CI=true`) a missing adapter is a failure, not a skip.
pub fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    let gpu = GPU.get_or_init(Gpu::try_default).as_ref();
    if gpu.is_none() {
        no_adapter();
    }
    gpu
}

/// What a GPU test does without an adapter: fail in CI (`CI=true`), record a skip elsewhere.
pub fn no_adapter() {
    skip(
        "no wgpu adapter: install mesa-vulkan-drivers (apt-get install -y libvulkan1 \
         mesa-vulkan-drivers) so the GPU tests run on the software adapter",
    );
}

/// The folder holding `ml-100k/` and the fixed split `ml-100k-split/` (`WGREC_DATA_DIR`, else
/// `../shared/data` next to the crate), or None after recording a skip (a failure in CI).
pub fn ml_100k() -> Option<PathBuf> {
    let dir = std::env::var_os("WGREC_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let missing: Vec<&str> = [
        "ml-100k/u.data",
        "ml-100k/u.item",
        "ml-100k-split/train.data",
        "ml-100k-split/test.data",
    ]
    .into_iter()
    .filter(|f| !dir.join(f).is_file())
    .collect();
    if missing.is_empty() {
        return Some(dir);
    }
    skip(&format!(
        "MovieLens 100K not found: {} has no {} (set WGREC_DATA_DIR to the folder holding ml-100k/ \
         and ml-100k-split/)",
        dir.display(),
        missing.join(", ")
    ));
    None
}

/// The compiled kernels with D baked in, built once per D and shared by the tests.
pub fn kernels(gpu: &'static Gpu, dim: usize) -> &'static Kernels {
    static KERNELS: OnceLock<Mutex<HashMap<usize, &'static Kernels>>> = OnceLock::new();
    let mut map = KERNELS.get_or_init(Default::default).lock().unwrap();
    map.entry(dim).or_insert_with(|| {
        Box::leak(Box::new(
            Kernels::new(gpu, dim).expect("every kernel compiles"),
        ))
    })
}

/// Encodes what `encode` records in one compute pass, submits it and waits for the GPU.
pub fn submit(gpu: &Gpu, encode: impl FnOnce(&mut Pass)) {
    let mut enc = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("test"),
        });
    {
        let mut pass = Pass::begin(&mut enc, "test", None);
        encode(&mut pass);
    }
    gpu.queue.submit([enc.finish()]);
    gpu.wait().unwrap();
}

/// Runs `launches` (each with its invocation count) in order in one compute pass.
pub fn run(gpu: &Gpu, launches: &[(&Launch, u32)]) {
    submit(gpu, |pass| {
        for (launch, threads) in launches {
            launch.run(pass, *threads);
        }
    });
}

pub fn read_f32(gpu: &Gpu, b: &wgpu::Buffer, len: usize) -> Vec<f32> {
    gpu.read(b, 0, len).unwrap()
}

pub fn read_u32(gpu: &Gpu, b: &wgpu::Buffer, len: usize) -> Vec<u32> {
    gpu.read(b, 0, len).unwrap()
}

/// A buffer of `len` NaNs: elements a kernel should write but does not stay NaN and show up.
pub fn nans(gpu: &Gpu, label: &str, len: usize) -> wgpu::Buffer {
    gpu.upload(label, &vec![f32::NAN; len])
}

/// `n` values uniform in [lo, hi).
pub fn uniform(rng: &mut SplitMix64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| lo + (hi - lo) * rng.next_f32()).collect()
}

/// `n` ids below `bound`, each of 0..bound at least once (n >= bound), in random order.
pub fn ids_covering(rng: &mut SplitMix64, n: usize, bound: u32) -> Vec<u32> {
    assert!(n >= bound as usize);
    let mut v: Vec<u32> = (0..n as u32)
        .map(|i| {
            if i < bound {
                i
            } else {
                rng.below(bound as u64) as u32
            }
        })
        .collect();
    rng.shuffle(&mut v);
    v
}

/// ReLU-like activations: about a third exactly zero, the rest positive.
pub fn relu_like(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let v = rng.next_f32();
            if v < 0.33 {
                0.0
            } else {
                v
            }
        })
        .collect()
}

/// Checks `|got - want| <= atol + rtol * |want|` element-wise; a NaN in `want` (an element the kernel must
/// leave alone) must be NaN in `got`. Prints the first mismatches side by side, then panics.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_close64(what, &f64s(got), &f64s(want), atol as f64, rtol as f64);
}

pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn close(got: f64, want: f64, atol: f64, rtol: f64) -> bool {
    if want.is_nan() {
        got.is_nan()
    } else {
        (got - want).abs() <= atol + rtol * want.abs()
    }
}

/// [`assert_close`] for f64 values.
#[track_caller]
pub fn assert_close64(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let bad: Vec<usize> = (0..got.len())
        .filter(|&i| !close(got[i], want[i], atol, rtol))
        .collect();
    if bad.is_empty() {
        return;
    }
    let mut msg = format!(
        "{what}: {} of {} elements differ beyond atol {atol:e} + rtol {rtol:e} * |want|\n  \
         {:>8} {:>18} {:>18} {:>12}\n",
        bad.len(),
        got.len(),
        "index",
        "got",
        "want",
        "|diff|"
    );
    for &i in bad.iter().take(8) {
        msg += &format!(
            "  {i:>8} {:>18.10e} {:>18.10e} {:>12.3e}\n",
            got[i],
            want[i],
            (got[i] - want[i]).abs()
        );
    }
    panic!("{msg}");
}

/// A batch with repeated users and movies: `rows` rows over exactly `users` distinct users and `movies`
/// distinct movies (table rows 0..users and 0..movies), with embedding tables uniform in (-scale, scale).
pub struct RepeatedBatch {
    pub batch: Batch,
    pub dim: usize,
    pub user_table: Vec<f32>,  // (users, D)
    pub movie_table: Vec<f32>, // (movies, D)
}

impl RepeatedBatch {
    pub fn new(seed: u64, rows: usize, users: u32, movies: u32, dim: usize, scale: f32) -> Self {
        let mut rng = SplitMix64::new(seed);
        let user = ids_covering(&mut rng, rows, users);
        let movie = ids_covering(&mut rng, rows, movies);
        let rating = (0..rows).map(|_| 1.0 + rng.below(5) as f32).collect();
        Self {
            batch: Batch::new(user, movie, rating),
            dim,
            user_table: uniform(&mut rng, users as usize * dim, -scale, scale),
            movie_table: uniform(&mut rng, movies as usize * dim, -scale, scale),
        }
    }

    fn rows_of(table: &[f32], ids: &[u32], dim: usize) -> Vec<f32> {
        ids.iter()
            .flat_map(|&i| table[i as usize * dim..][..dim].iter().copied())
            .collect()
    }

    /// (NU, D) embeddings of the distinct users, in `Distinct` order.
    pub fn user_d(&self) -> Vec<f32> {
        Self::rows_of(&self.user_table, &self.batch.users.table_rows, self.dim)
    }

    pub fn movie_d(&self) -> Vec<f32> {
        Self::rows_of(&self.movie_table, &self.batch.movies.table_rows, self.dim)
    }

    /// (B, D) user embedding of every batch row.
    pub fn user_rows(&self) -> Vec<f32> {
        Self::rows_of(&self.user_table, &self.batch.user, self.dim)
    }

    pub fn movie_rows(&self) -> Vec<f32> {
        Self::rows_of(&self.movie_table, &self.batch.movie, self.dim)
    }

    /// Per-row gradients (B, D) summed into the distinct rows of `d`: (n, D).
    pub fn sum_rows(&self, d: &Distinct, per_row: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; d.len() * self.dim];
        for (r, &a) in d.of_row.iter().enumerate() {
            for k in 0..self.dim {
                out[a as usize * self.dim + k] += per_row[r * self.dim + k];
            }
        }
        out
    }
}
