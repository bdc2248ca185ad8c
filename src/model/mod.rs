//! The TFRS multi-task model's parameters: two embedding tables and the rating MLP
//! concat(user, movie) (2D) -> H1 ReLU -> H2 ReLU -> 1, with Keras initialisers.

use crate::data::SplitMix64;

pub mod tower;

/// Keras Adagrad's defaults.
pub const INITIAL_ACCUMULATOR: f32 = 0.1;
pub const EPSILON: f32 = 1e-7;

/// Shapes of the model. U and M count the out-of-vocabulary row 0.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ModelConfig {
    pub users: usize,         // U: user table rows
    pub movies: usize,        // M: movie table rows
    pub embedding_dim: usize, // D
    pub hidden1: usize,       // H1
    pub hidden2: usize,       // H2
}

impl ModelConfig {
    /// The tutorial's model for the given vocabulary sizes (table rows, OOV included).
    pub fn tutorial(users: usize, movies: usize, embedding_dim: usize) -> Self {
        Self {
            users,
            movies,
            embedding_dim,
            hidden1: 256,
            hidden2: 128,
        }
    }

    pub fn layout(&self) -> MlpLayout {
        MlpLayout::new(2 * self.embedding_dim, self.hidden1, self.hidden2)
    }
}

/// Where each MLP tensor lives in the one flat parameter vector (f32 offsets). Every tensor starts on a
/// 64-float (256-byte) boundary so it can be bound as its own storage-buffer slice; the padding stays zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlpLayout {
    pub k: usize,  // 2D
    pub h1: usize, // H1
    pub h2: usize, // H2
    pub w1: usize, // (2D, H1)
    pub b1: usize, // (H1,)
    pub w2: usize, // (H1, H2)
    pub b2: usize, // (H2,)
    pub w3: usize, // (H2,)  [the (H2, 1) kernel]
    pub b3: usize, // (1,)
    pub len: usize,
}

pub const ALIGN: usize = 64;

impl MlpLayout {
    pub fn new(k: usize, h1: usize, h2: usize) -> Self {
        let mut at = 0;
        let mut take = |n: usize| {
            let o = at;
            at = (at + n).next_multiple_of(ALIGN);
            o
        };
        let (w1, b1, w2, b2, w3, b3) = (
            take(k * h1),
            take(h1),
            take(h1 * h2),
            take(h2),
            take(h2),
            take(1),
        );
        Self {
            k,
            h1,
            h2,
            w1,
            b1,
            w2,
            b2,
            w3,
            b3,
            len: at,
        }
    }
}

/// All trainable parameters, host side.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub user_emb: Vec<f32>,  // (U, D)
    pub movie_emb: Vec<f32>, // (M, D)
    pub mlp: Vec<f32>,       // (L,) laid out by MlpLayout
    /// The feature towers' flat vectors, users' then movies' (`tower::Towers`); empty without towers,
    /// and then the tables are the model. With towers the tables hold the towers' outputs.
    pub towers: Vec<f32>,
}

/// Uniform in [lo, hi) from the top 24 bits of SplitMix64.
fn uniform(rng: &mut SplitMix64, lo: f32, hi: f32, n: usize) -> Vec<f32> {
    (0..n).map(|_| lo + (hi - lo) * rng.next_f32()).collect()
}

impl Params {
    /// Keras initialisers: embeddings uniform(-0.05, 0.05), dense kernels glorot_uniform
    /// (limit sqrt(6 / (fan_in + fan_out))), biases zero. Each tensor draws from its own SplitMix64 stream,
    /// seeded `seed * 0x100 + tensor number`, so changing one shape leaves the others' values alone.
    pub fn init(cfg: &ModelConfig, seed: u64) -> Self {
        let stream = |i: u64| SplitMix64::new(seed.wrapping_mul(0x100).wrapping_add(i));
        let d = cfg.embedding_dim;
        let user_emb = uniform(&mut stream(1), -0.05, 0.05, cfg.users * d);
        let movie_emb = uniform(&mut stream(2), -0.05, 0.05, cfg.movies * d);
        let l = cfg.layout();
        let mut mlp = vec![0.0; l.len];
        for (i, (off, fan_in, fan_out)) in [(l.w1, l.k, l.h1), (l.w2, l.h1, l.h2), (l.w3, l.h2, 1)]
            .into_iter()
            .enumerate()
        {
            let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
            let w = uniform(&mut stream(3 + i as u64), -limit, limit, fan_in * fan_out);
            mlp[off..off + w.len()].copy_from_slice(&w);
        }
        Self {
            user_emb,
            movie_emb,
            mlp,
            towers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_aligned_and_disjoint() {
        let l = MlpLayout::new(64, 256, 128);
        let spans = [
            (l.w1, 64 * 256),
            (l.b1, 256),
            (l.w2, 256 * 128),
            (l.b2, 128),
            (l.w3, 128),
            (l.b3, 1),
        ];
        for w in spans.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0);
        }
        assert!(spans.iter().all(|(o, _)| o % ALIGN == 0));
        assert!(l.b3 < l.len && l.len.is_multiple_of(ALIGN));
    }

    #[test]
    fn init_matches_keras_ranges() {
        let cfg = ModelConfig::tutorial(944, 1665, 32);
        let p = Params::init(&cfg, 42);
        assert!(p.user_emb.iter().all(|v| v.abs() <= 0.05));
        let l = cfg.layout();
        let limit = (6.0f32 / (64.0 + 256.0)).sqrt();
        let w1 = &p.mlp[l.w1..l.w1 + 64 * 256];
        assert!(w1.iter().all(|v| v.abs() <= limit));
        assert!(w1.iter().map(|v| v.abs()).fold(0.0, f32::max) > 0.9 * limit);
        assert!(p.mlp[l.b1..l.b1 + 256].iter().all(|&v| v == 0.0));
        assert_ne!(Params::init(&cfg, 43), p);
        assert_eq!(Params::init(&cfg, 42), p);
    }
}
