//! CPU twins of the GPU family's kernels (`shaders/gpu/`), named after them without the `_gpu` suffix and
//! composed from the twins in `cpu` where the maths is the same: what is new is where the kernels fuse or
//! split the work (the gather into the first layer, the head's partial gradients per split, the retrieval
//! block's parts), so the twins return exactly what each kernel writes, split by split and part by part.

use super::{dense_backward_weights, dense_forward, dot, embedding_gather};
use crate::data::batches::Batch;

/// x (B, 2D) = concat(user_emb[user], movie_emb[movie]): what the gathering kernels read instead of x.
pub fn gathered_x(user_emb: &[f32], movie_emb: &[f32], b: &Batch, dim: usize) -> Vec<f32> {
    let mut x = vec![0.0; b.rows() * 2 * dim];
    embedding_gather(user_emb, &b.user, dim, &mut x, 2 * dim, 0);
    embedding_gather(movie_emb, &b.movie, dim, &mut x, 2 * dim, dim);
    x
}

/// dense_gather_forward_gpu: y (B, N) = act(concat(user_emb[user], movie_emb[movie]) w (2D, N) + b).
#[allow(clippy::too_many_arguments)]
pub fn dense_gather_forward(
    user_emb: &[f32],
    movie_emb: &[f32],
    b: &Batch,
    dim: usize,
    w: &[f32],
    bias: &[f32],
    n: usize,
    relu: bool,
) -> Vec<f32> {
    let x = gathered_x(user_emb, movie_emb, b, dim);
    dense_forward(&x, w, bias, b.rows(), 2 * dim, n, relu)
}

/// dense_backward_weights_gpu: per split of `split_rows` rows, (dw (K, N), db (N)) of that split's rows.
pub fn dense_backward_weights_splits(
    x: &[f32],
    dy: &[f32],
    rows: usize,
    k: usize,
    n: usize,
    split_rows: usize,
) -> Vec<(Vec<f32>, Vec<f32>)> {
    (0..rows.div_ceil(split_rows).max(1))
        .map(|s| {
            let r = s * split_rows..((s + 1) * split_rows).min(rows);
            dense_backward_weights(
                &x[r.start * k..r.end * k],
                &dy[r.start * n..r.end * n],
                r.len(),
                k,
                n,
            )
        })
        .collect()
}

/// What `rating_loss_gpu` writes.
pub struct RatingLoss {
    pub pred: Vec<f32>,   // (B,)
    pub sq_err: Vec<f32>, // (B,)
    pub dh2: Vec<f32>,    // (B, H2)
    /// Per split: (dw3 (H2,), db3), the head's partial gradients.
    pub head: Vec<(Vec<f32>, f32)>,
}

/// rating_loss_gpu: `cpu::rating_loss` plus `cpu::rating_head_backward` of every split of `split_rows`.
pub fn rating_loss(
    h2: &[f32],
    w3: &[f32],
    b3: f32,
    rating: &[f32],
    scale: f32,
    split_rows: usize,
) -> RatingLoss {
    let r = super::rating_loss(h2, w3, b3, rating, scale);
    let hd = w3.len();
    let head = dense_backward_weights_splits(h2, &r.dpred, rating.len(), hd, 1, split_rows)
        .into_iter()
        .map(|(dw, db)| (dw, db[0]))
        .collect();
    RatingLoss {
        pred: r.pred,
        sq_err: r.sq_err,
        dh2: r.dh2,
        head,
    }
}

/// Rows of part `p` of `n` rows cut into `parts` parts of ceil(n / parts) (the last ones may be short or
/// empty), as the retrieval kernels cut them.
pub fn part(n: usize, parts: usize, p: usize) -> std::ops::Range<usize> {
    let chunk = n.div_ceil(parts);
    (p * chunk).min(n)..((p + 1) * chunk).min(n)
}

/// The table rows of `ids` as a (len, D) matrix.
fn rows_of(table: &[f32], ids: &[u32], dim: usize) -> Vec<f32> {
    let mut out = vec![0.0; ids.len() * dim];
    embedding_gather(table, ids, dim, &mut out, dim, 0);
    out
}

/// retrieval_lse_gpu: for every part p of the distinct movies and distinct user a, the softmax state
/// (max_c s_ac, sum_c m_c exp(s_ac - max)) over the part's movies; (P, NU) pairs, (-3e38, 0) for an
/// empty part.
pub fn retrieval_lse(
    user_emb: &[f32],
    movie_emb: &[f32],
    b: &Batch,
    dim: usize,
    parts: usize,
) -> Vec<(f32, f32)> {
    let (us, ms) = (&b.users, &b.movies);
    let ud = rows_of(user_emb, &us.table_rows, dim);
    let md = rows_of(movie_emb, &ms.table_rows, dim);
    let mut out = Vec::with_capacity(parts * us.len());
    for p in 0..parts {
        for a in 0..us.len() {
            let q = &ud[a * dim..][..dim];
            let s: Vec<f64> = part(ms.len(), parts, p)
                .map(|c| dot(q, &md[c * dim..][..dim]))
                .collect();
            let m = s.iter().copied().fold(-3.0e38, f64::max);
            let sum: f64 = part(ms.len(), parts, p)
                .zip(&s)
                .map(|(c, &v)| ms.count[c] as f64 * (v - m).exp())
                .sum();
            out.push((m as f32, sum as f32));
        }
    }
    out
}

/// lse_a from the parts of `retrieval_lse`, combined as retrieval_grads_gpu combines them.
pub fn combine_lse(part_state: &[(f32, f32)], users: usize) -> Vec<f64> {
    let parts = part_state.len() / users.max(1);
    (0..users)
        .map(|a| {
            let at = |p: usize| part_state[p * users + a];
            let m = (0..parts).map(|p| at(p).0 as f64).fold(-3.0e38, f64::max);
            let s: f64 = (0..parts)
                .map(|p| at(p).1 as f64 * (at(p).0 as f64 - m).exp())
                .sum();
            m + s.ln()
        })
        .collect()
}

/// What `retrieval_grads_gpu` writes.
pub struct RetrievalGrads {
    pub loss: Vec<f32>,       // (NU,)
    pub grad_user: Vec<f32>,  // (P, NU, D)
    pub grad_movie: Vec<f32>, // (P, NM, D)
}

/// retrieval_grads_gpu: with lse_a given, part p of the user side is
/// w (n_a sum over the part's movies c of m_c exp(s_ac - lse_a) M_c), minus w pos_a in part 0, and the
/// movie side likewise over the part's users; loss_a = n_a lse_a - U_a . pos_a. Summed over the parts they
/// are `cpu::retrieval_softmax_users`' and `cpu::retrieval_softmax_movies`' gradients.
pub fn retrieval_grads(
    user_emb: &[f32],
    movie_emb: &[f32],
    b: &Batch,
    dim: usize,
    lse: &[f64],
    parts: usize,
    weight: f32,
) -> RetrievalGrads {
    let (us, ms) = (&b.users, &b.movies);
    let (nu, nm) = (us.len(), ms.len());
    let ud = rows_of(user_emb, &us.table_rows, dim);
    let md = rows_of(movie_emb, &ms.table_rows, dim);
    let w = weight as f64;
    let pos = |table: &[f32], d: &crate::data::batches::Distinct, other: &[u32], i: usize| {
        let mut v = vec![0.0f64; dim];
        for &r in &d.rows[d.offsets[i] as usize..d.offsets[i + 1] as usize] {
            let row = &table[other[r as usize] as usize * dim..][..dim];
            for (acc, &x) in v.iter_mut().zip(row) {
                *acc += x as f64;
            }
        }
        v
    };
    let mut out = RetrievalGrads {
        loss: vec![0.0; nu],
        grad_user: vec![0.0; parts * nu * dim],
        grad_movie: vec![0.0; parts * nm * dim],
    };
    for a in 0..nu {
        let q = &ud[a * dim..][..dim];
        let pa = pos(movie_emb, us, &b.movie, a);
        let n = us.count[a] as f64;
        let diag: f64 = q.iter().zip(&pa).map(|(&x, y)| x as f64 * y).sum();
        out.loss[a] = (n * lse[a] - diag) as f32;
        for p in 0..parts {
            let mut acc = vec![0.0f64; dim];
            for c in part(nm, parts, p) {
                let k = &md[c * dim..][..dim];
                let e = ms.count[c] as f64 * (dot(q, k) - lse[a]).exp();
                for (v, &x) in acc.iter_mut().zip(k) {
                    *v += e * x as f64;
                }
            }
            for d in 0..dim {
                let label = if p == 0 { pa[d] } else { 0.0 };
                out.grad_user[(p * nu + a) * dim + d] = (w * (n * acc[d] - label)) as f32;
            }
        }
    }
    for c in 0..nm {
        let k = &md[c * dim..][..dim];
        let pc = pos(user_emb, ms, &b.user, c);
        let m = ms.count[c] as f64;
        for p in 0..parts {
            let mut acc = vec![0.0f64; dim];
            for a in part(nu, parts, p) {
                let u = &ud[a * dim..][..dim];
                let e = us.count[a] as f64 * (dot(u, k) - lse[a]).exp();
                for (v, &x) in acc.iter_mut().zip(u) {
                    *v += e * x as f64;
                }
            }
            for d in 0..dim {
                let label = if p == 0 { pc[d] } else { 0.0 };
                out.grad_movie[(p * nm + c) * dim + d] = (w * (m * acc[d] - label)) as f32;
            }
        }
    }
    out
}

/// embedding_adagrad_gpu: `cpu::embedding_adagrad` with the retrieval gradient of distinct row a the sum
/// of its `parts` partials (P, n, D), in part order.
#[allow(clippy::too_many_arguments)]
pub fn embedding_adagrad(
    grad_part: Option<(&[f32], usize)>,
    dx: Option<(&[f32], usize, usize)>,
    offsets: &[u32],
    rows: &[u32],
    table_rows: &[u32],
    table: &mut [f32],
    accum: &mut [f32],
    dim: usize,
    lr: f32,
    eps: f32,
    l2: f32,
) {
    let n = table_rows.len();
    let dense = grad_part.map(|(g, parts)| {
        let mut sum = vec![0.0f32; n * dim];
        for p in 0..parts {
            for (s, &v) in sum.iter_mut().zip(&g[p * n * dim..(p + 1) * n * dim]) {
                *s += v;
            }
        }
        sum
    });
    super::embedding_adagrad(
        dense.as_deref(),
        dx,
        offsets,
        rows,
        table_rows,
        table,
        accum,
        dim,
        lr,
        eps,
        l2,
    );
}

/// adagrad_dense over split partials is `cpu::adagrad_dense`; the family's MLP update is that twin.
pub use super::adagrad_dense;
