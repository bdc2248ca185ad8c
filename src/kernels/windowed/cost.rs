//! What each windowed-family kernel does per dispatch: FLOPs and compulsory bytes from its parameters.

use super::*;
use crate::gpu::profile::Cost;
use crate::kernels::cost::{c, params};

pub fn of(kernel: &str, bytes: &[u8], dim: u32) -> Cost {
    let d = dim as f64;
    match kernel {
        "embedding_gather" => {
            let p: EmbeddingGatherParams = params(bytes);
            let (n, w) = (p.n as f64, 4.0 * p.dim4 as f64);
            c(0.0, n * (2.0 * w + 1.0))
        }
        "dense_forward" | "dense_backward_data" | "dense_backward_data_linear" => {
            // y = relu(x W + b) over (rows, K) x (K, N); dx = (dy W^T) * mask has the same shape.
            let p: DenseForwardParams = params(bytes);
            let (r, k, n) = (p.rows as f64, 4.0 * p.k4 as f64, 4.0 * p.n4 as f64);
            c(2.0 * r * k * n, r * k + k * n + n + r * n)
        }
        "dense_backward_weights" => {
            // dW += x^T dy and db += sum dy over one split of rows.
            let p: DenseBackwardWeightsParams = params(bytes);
            let (r, k, n) = (p.rows as f64, 4.0 * p.k4 as f64, 4.0 * p.n4 as f64);
            c(2.0 * r * k * n + r * n, r * k + r * n + k * n + n)
        }
        "rating_loss" => {
            let p: RatingLossParams = params(bytes);
            let (r, h) = (p.rows as f64, 4.0 * p.h4 as f64);
            c(2.0 * r * h + 4.0 * r, r * h + h + 3.0 * r)
        }
        "rating_head_backward" => {
            // dh2 = dy w3 * mask and the w3 / b3 gradient sums.
            let p: RatingHeadBackwardParams = params(bytes);
            let (r, h) = (p.rows as f64, 4.0 * p.h4 as f64);
            c(4.0 * r * h, 2.0 * r * h + r + h)
        }
        "adagrad_dense" => {
            let p: AdagradDenseParams = params(bytes);
            let (n, s) = (4.0 * p.len4 as f64, p.splits as f64);
            c(n * (s + 6.0), n * (s + 4.0))
        }
        "pooled_gather" => {
            // Lower bound: one table row per output row (the feature counts depend on the data).
            let p: EmbeddingGatherParams = params(bytes);
            let (n, w) = (p.n as f64, 4.0 * p.dim4 as f64);
            c(n * w, n * (2.0 * w + 3.0))
        }
        "pooled_gather_backward" => {
            // Lower bound: one output-gradient row per distinct feature (the pairs depend on the data).
            let p: PooledGatherBackwardParams = params(bytes);
            let (f, w) = (p.features as f64, 4.0 * p.dim4 as f64);
            c(2.0 * f * w, f * (2.0 * w + 4.0))
        }
        "scale_rows" => {
            let p: ScaleRowsParams = params(bytes);
            let n = 4.0 * p.n4 as f64;
            c(n, 2.0 * n)
        }
        "sum_reduce" => {
            let p: SumReduceParams = params(bytes);
            c(p.n as f64, p.n as f64 + 1.0)
        }
        "retrieval_softmax_users" | "retrieval_softmax_movies" => {
            // Every (user, movie) pair of the window: a D-long dot product and a D-long weighted sum.
            let p: RetrievalSoftmaxParams = params(bytes);
            let (u, m) = (p.users as f64, p.movies as f64);
            c(4.0 * u * m * d + 4.0 * u * m, (u + m) * (2.0 * d + 2.0))
        }
        "embedding_adagrad" => {
            // Lower bound: the per-row input gradients it also sums depend on the batch, not the params.
            let p: EmbeddingAdagradParams = params(bytes);
            let n = p.n as f64 * 4.0 * p.dim4 as f64;
            c(6.0 * n, 5.0 * n)
        }
        "brute_force_top_k" => {
            // The scoring; the heap work depends on the scores, not the params.
            let p: BruteForceTopKParams = params(bytes);
            let (q, w) = (p.queries as f64, p.window as f64);
            c(2.0 * q * w * d, q * d + w * d)
        }
        "candidate_scores" => {
            let p: CandidateScoresParams = params(bytes);
            let (q, w) = (p.queries as f64, p.window as f64);
            c(2.0 * q * w * d, q * d + w * d + q * w)
        }
        "pair_ranks" => {
            // Each group reads its user's row once and compares it with up to eight own scores.
            let p: PairRanksParams = params(bytes);
            let (g, cand) = (p.groups as f64, (p.c_end - p.c_begin) as f64);
            let mask = if p.words > 0 { cand / 32.0 } else { 0.0 };
            c(
                g * cand * PAIRS_PER_GROUP as f64 * 2.0,
                g * (cand + mask + 4.0 + 2.0 * PAIRS_PER_GROUP as f64),
            )
        }
        _ => Cost::default(),
    }
}
