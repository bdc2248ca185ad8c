//! CPU twins of every kernel in `shaders/`: plain loops with f64 accumulators, same names as the kernels.
//! They are the reference the GPU is tested against, and the place to read the maths.
//! `gpu_family` composes them into the twins of the GPU family's fused kernels.

pub mod gpu_family;
pub mod reference;
pub mod tower;

use crate::data::batches::Distinct;

/// out[i, off..off + D] = table[idx[i]] for an output of row length `out_stride`.
pub fn embedding_gather(
    table: &[f32],
    idx: &[u32],
    dim: usize,
    out: &mut [f32],
    out_stride: usize,
    out_offset: usize,
) {
    for (i, &row) in idx.iter().enumerate() {
        let src = &table[row as usize * dim..][..dim];
        out[i * out_stride + out_offset..][..dim].copy_from_slice(src);
    }
}

/// y (B, N) = act(x (B, K) w (K, N) + b (N)).
pub fn dense_forward(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    rows: usize,
    k: usize,
    n: usize,
    relu: bool,
) -> Vec<f32> {
    let mut y = vec![0.0; rows * n];
    for i in 0..rows {
        for j in 0..n {
            let mut acc = b[j] as f64;
            for kk in 0..k {
                acc += x[i * k + kk] as f64 * w[kk * n + j] as f64;
            }
            y[i * n + j] = if relu {
                acc.max(0.0) as f32
            } else {
                acc as f32
            };
        }
    }
    y
}

/// dx (B, K) = dy (B, N) w^T, times (h > 0) when `h` (the ReLU output that fed the layer) is given.
pub fn dense_backward_data(
    dy: &[f32],
    w: &[f32],
    h: Option<&[f32]>,
    rows: usize,
    k: usize,
    n: usize,
) -> Vec<f32> {
    let mut dx = vec![0.0; rows * k];
    for i in 0..rows {
        for kk in 0..k {
            let mut acc = 0.0f64;
            for j in 0..n {
                acc += dy[i * n + j] as f64 * w[kk * n + j] as f64;
            }
            let open = h.is_none_or(|h| h[i * k + kk] > 0.0);
            dx[i * k + kk] = if open { acc as f32 } else { 0.0 };
        }
    }
    dx
}

/// (dw (K, N), db (N)) = (x^T dy, column sums of dy).
pub fn dense_backward_weights(
    x: &[f32],
    dy: &[f32],
    rows: usize,
    k: usize,
    n: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut dw = vec![0.0f64; k * n];
    let mut db = vec![0.0f64; n];
    for i in 0..rows {
        for j in 0..n {
            let d = dy[i * n + j] as f64;
            db[j] += d;
            for kk in 0..k {
                dw[kk * n + j] += x[i * k + kk] as f64 * d;
            }
        }
    }
    (
        dw.into_iter().map(|v| v as f32).collect(),
        db.into_iter().map(|v| v as f32).collect(),
    )
}

/// What `rating_loss` writes.
pub struct RatingLoss {
    pub pred: Vec<f32>,   // (B,)
    pub sq_err: Vec<f32>, // (B,)
    pub dpred: Vec<f32>,  // (B,) scale * (pred - rating)
    pub dh2: Vec<f32>,    // (B, H2)
}

/// The rating head w3 (H2,), b3 and its loss; `scale` = 2 * rating_weight / B.
pub fn rating_loss(h2: &[f32], w3: &[f32], b3: f32, rating: &[f32], scale: f32) -> RatingLoss {
    let (rows, hd) = (rating.len(), w3.len());
    let mut out = RatingLoss {
        pred: vec![0.0; rows],
        sq_err: vec![0.0; rows],
        dpred: vec![0.0; rows],
        dh2: vec![0.0; rows * hd],
    };
    for i in 0..rows {
        let h = &h2[i * hd..][..hd];
        let y = h
            .iter()
            .zip(w3)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum::<f64>()
            + b3 as f64;
        let err = y - rating[i] as f64;
        out.pred[i] = y as f32;
        out.sq_err[i] = (err * err) as f32;
        let d = scale as f64 * err;
        out.dpred[i] = d as f32;
        for j in 0..hd {
            out.dh2[i * hd + j] = if h[j] > 0.0 {
                (d * w3[j] as f64) as f32
            } else {
                0.0
            };
        }
    }
    out
}

/// (dw3 (H2,), db3) = (h2^T dpred, sum of dpred).
pub fn rating_head_backward(h2: &[f32], dpred: &[f32]) -> (Vec<f32>, f32) {
    let hd = h2.len() / dpred.len().max(1);
    let (dw, db) = dense_backward_weights(h2, dpred, dpred.len(), hd, 1);
    (dw, db[0])
}

/// Keras Adagrad: acc += g^2; w -= lr * g / (sqrt(acc) + eps).
pub fn adagrad(param: &mut [f32], accum: &mut [f32], grad: &[f32], lr: f32, eps: f32) {
    for ((w, a), &g) in param.iter_mut().zip(accum.iter_mut()).zip(grad) {
        *a += g * g;
        *w -= lr * g / (a.sqrt() + eps);
    }
}

/// Dense Adagrad over the summed split partials (`adagrad_dense`): grad is (S, L).
pub fn adagrad_dense(
    grad: &[f32],
    splits: usize,
    param: &mut [f32],
    accum: &mut [f32],
    lr: f32,
    eps: f32,
) {
    let len = param.len();
    let g: Vec<f32> = (0..len)
        .map(|e| (0..splits).map(|s| grad[s * len + e]).sum())
        .collect();
    adagrad(param, accum, &g, lr, eps);
}

pub fn sum_reduce(x: &[f32]) -> f32 {
    x.iter().map(|&v| v as f64).sum::<f64>() as f32
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// What `retrieval_softmax_users` writes.
pub struct RetrievalUsers {
    pub lse: Vec<f32>,       // (NU,)
    pub loss: Vec<f32>,      // (NU,)
    pub grad_user: Vec<f32>, // (NU, D)
}

/// out[i, off..off + D] = the mean of table[ids[offsets[e]..offsets[e + 1]]] for e = entity[i], zeros when
/// the entity has no features (shaders/pooled_gather.wgsl).
#[allow(clippy::too_many_arguments)]
pub fn pooled_gather(
    table: &[f32],
    offsets: &[u32],
    ids: &[u32],
    entity: &[u32],
    dim: usize,
    out: &mut [f32],
    out_stride: usize,
    out_offset: usize,
) {
    for (i, &e) in entity.iter().enumerate() {
        let mine = &ids[offsets[e as usize] as usize..offsets[e as usize + 1] as usize];
        for d in 0..dim {
            let sum: f64 = mine
                .iter()
                .map(|&v| table[v as usize * dim + d] as f64)
                .sum();
            let mean = if mine.is_empty() {
                0.0
            } else {
                sum / mine.len() as f64
            };
            out[i * out_stride + out_offset + d] = mean as f32;
        }
    }
}

/// The backward of [`pooled_gather`] over the distinct feature rows of a batch
/// (shaders/pooled_gather_backward.wgsl): dfeature[f] = sum over f's pairs q of
/// dout[pair_rows[q], off..off + D] * pair_weights[q]. Returns (F, D).
pub fn pooled_gather_backward(
    dout: &[f32],
    in_stride: usize,
    in_offset: usize,
    dim: usize,
    pooled: &crate::data::features::PooledRows,
) -> Vec<f32> {
    let f = pooled.table_rows.len();
    let mut out = vec![0.0; f * dim];
    for (g, o) in out.chunks_mut(dim).enumerate() {
        let pairs = pooled.pair_offsets[g] as usize..pooled.pair_offsets[g + 1] as usize;
        for (d, v) in o.iter_mut().enumerate() {
            let sum: f64 = pairs
                .clone()
                .map(|q| {
                    let row = pooled.pair_rows[q] as usize;
                    dout[row * in_stride + in_offset + d] as f64 * pooled.pair_weights[q] as f64
                })
                .sum();
            *v = sum as f32;
        }
    }
    out
}

/// table[rows[i]] = y[i] for rows of width `dim` (shaders/scatter_rows.wgsl).
pub fn scatter_rows(y: &[f32], rows: &[u32], dim: usize, table: &mut [f32]) {
    for (i, &r) in rows.iter().enumerate() {
        table[r as usize * dim..][..dim].copy_from_slice(&y[i * dim..][..dim]);
    }
}

/// `x *= scale` in place (shaders/scale_rows.wgsl): the distinct user rows divided by --temperature.
pub fn scale_rows(x: &mut [f32], scale: f32) {
    for v in x {
        *v *= scale;
    }
}

/// Distinct-rows retrieval, user side: see shaders/retrieval_softmax_users.wgsl for the formulas.
#[allow(clippy::too_many_arguments)]
pub fn retrieval_softmax_users(
    user_emb: &[f32],
    movie_emb: &[f32],
    user_count: &[f32],
    movie_count: &[f32],
    user_offsets: &[u32],
    user_rows: &[u32],
    row_movie: &[u32],
    dim: usize,
    weight: f32,
) -> RetrievalUsers {
    let (nu, nm) = (user_count.len(), movie_count.len());
    let mut out = RetrievalUsers {
        lse: vec![0.0; nu],
        loss: vec![0.0; nu],
        grad_user: vec![0.0; nu * dim],
    };
    for a in 0..nu {
        let q = &user_emb[a * dim..][..dim];
        let s: Vec<f64> = (0..nm)
            .map(|c| dot(q, &movie_emb[c * dim..][..dim]))
            .collect();
        let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = (0..nm)
            .map(|c| movie_count[c] as f64 * (s[c] - m).exp())
            .sum();
        let lse = m + sum.ln();
        let mut pos = vec![0.0f64; dim];
        for &r in &user_rows[user_offsets[a] as usize..user_offsets[a + 1] as usize] {
            let c = row_movie[r as usize] as usize;
            for d in 0..dim {
                pos[d] += movie_emb[c * dim + d] as f64;
            }
        }
        let n = user_count[a] as f64;
        let diag: f64 = (0..dim).map(|d| q[d] as f64 * pos[d]).sum();
        out.lse[a] = lse as f32;
        out.loss[a] = (n * lse - diag) as f32;
        for d in 0..dim {
            let expect: f64 = (0..nm)
                .map(|c| movie_count[c] as f64 * (s[c] - lse).exp() * movie_emb[c * dim + d] as f64)
                .sum();
            out.grad_user[a * dim + d] = (weight as f64 * (n * expect - pos[d])) as f32;
        }
    }
    out
}

/// Distinct-rows retrieval with TFRS's remove_accidental_hits, user side, straight from the definition: row
/// i (user a, movie c) sees movie c with weight w_c / m_c (the one column of c it keeps; m_c = rows of c in
/// the batch, from `movie_offsets`) and every other movie c' with its column weight w_c'. Returns the user
/// side's outputs, `lse` being -log sum_i exp(-L_i) per user as the kernel's user_stat holds it, and each
/// batch row's log-normaliser L_i (B,).
#[allow(clippy::too_many_arguments)]
pub fn retrieval_softmax_users_without_hits(
    user_emb: &[f32],
    movie_emb: &[f32],
    movie_count: &[f32],
    user_offsets: &[u32],
    user_rows: &[u32],
    row_movie: &[u32],
    movie_offsets: &[u32],
    dim: usize,
    weight: f32,
) -> (RetrievalUsers, Vec<f32>) {
    let (nu, nm) = (user_offsets.len() - 1, movie_count.len());
    let mut out = RetrievalUsers {
        lse: vec![0.0; nu],
        loss: vec![0.0; nu],
        grad_user: vec![0.0; nu * dim],
    };
    let mut row_lse = vec![0.0f32; row_movie.len()];
    for a in 0..nu {
        let q = &user_emb[a * dim..][..dim];
        let s: Vec<f64> = (0..nm)
            .map(|c| dot(q, &movie_emb[c * dim..][..dim]))
            .collect();
        let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (mut loss, mut neg_l) = (0.0, Vec::new());
        let mut grad = vec![0.0f64; dim];
        for &r in &user_rows[user_offsets[a] as usize..user_offsets[a + 1] as usize] {
            let own = row_movie[r as usize] as usize;
            let m_own = (movie_offsets[own + 1] - movie_offsets[own]) as f64;
            let w = |c: usize| movie_count[c] as f64 / if c == own { m_own } else { 1.0 };
            let l = mx + (0..nm).map(|c| w(c) * (s[c] - mx).exp()).sum::<f64>().ln();
            row_lse[r as usize] = l as f32;
            neg_l.push(-l);
            loss += l - s[own];
            for c in 0..nm {
                let p = w(c) * (s[c] - l).exp();
                for d in 0..dim {
                    grad[d] += p * movie_emb[c * dim + d] as f64;
                }
            }
            for d in 0..dim {
                grad[d] -= movie_emb[own * dim + d] as f64;
            }
        }
        let top = neg_l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_z = top + neg_l.iter().map(|v| (v - top).exp()).sum::<f64>().ln();
        out.lse[a] = -log_z as f32;
        out.loss[a] = loss as f32;
        for (o, g) in out.grad_user[a * dim..][..dim].iter_mut().zip(&grad) {
            *o = (weight as f64 * g) as f32;
        }
    }
    (out, row_lse)
}

/// Distinct-rows retrieval with remove_accidental_hits, movie side, straight from the definition: every
/// batch row i (user a, movie c_i, log-normaliser L_i) pushes each movie c' by its softmax probability
/// w_c' exp(U_a . M_c' - L_i) (w_c' / m_c' for c' = c_i) times U_a, and its own movie by -U_a.
#[allow(clippy::too_many_arguments)]
pub fn retrieval_softmax_movies_without_hits(
    user_emb: &[f32],
    movie_emb: &[f32],
    movie_count: &[f32],
    row_lse: &[f32],
    row_user: &[u32],
    row_movie: &[u32],
    movie_offsets: &[u32],
    dim: usize,
    weight: f32,
) -> Vec<f32> {
    let nm = movie_count.len();
    let mut grad = vec![0.0f64; nm * dim];
    for i in 0..row_user.len() {
        let (a, own) = (row_user[i] as usize, row_movie[i] as usize);
        let u = &user_emb[a * dim..][..dim];
        for c in 0..nm {
            let m_c = (movie_offsets[c + 1] - movie_offsets[c]) as f64;
            let w = movie_count[c] as f64 / if c == own { m_c } else { 1.0 };
            let p = w * (dot(u, &movie_emb[c * dim..][..dim]) - row_lse[i] as f64).exp();
            for d in 0..dim {
                grad[c * dim + d] += p * u[d] as f64;
            }
        }
        for d in 0..dim {
            grad[own * dim + d] -= u[d] as f64;
        }
    }
    grad.iter().map(|&g| (weight as f64 * g) as f32).collect()
}

/// The distinct-rows retrieval of one batch as a step composes it: `retrieval_softmax_users` over the
/// distinct rows `user_emb` / `movie_emb` of `users` / `movies`, then `retrieval_softmax_movies` from its
/// log-normalisers. Returns the users' side and the movies' gradient (NM, D).
pub fn retrieval_softmax(
    user_emb: &[f32],
    movie_emb: &[f32],
    users: &Distinct,
    movies: &Distinct,
    dim: usize,
    user_weight: f32,
    movie_weight: f32,
) -> (RetrievalUsers, Vec<f32>) {
    let (us, ms) = (users, movies);
    let out = retrieval_softmax_users(
        user_emb,
        movie_emb,
        &us.count,
        &ms.count,
        &us.offsets,
        &us.rows,
        &ms.of_row,
        dim,
        user_weight,
    );
    let grad_movie = retrieval_softmax_movies(
        user_emb,
        movie_emb,
        &us.count,
        &ms.count,
        &out.lse,
        &ms.offsets,
        &ms.rows,
        &us.of_row,
        dim,
        movie_weight,
    );
    (out, grad_movie)
}

/// Distinct-rows retrieval, movie side: see shaders/retrieval_softmax_movies.wgsl.
#[allow(clippy::too_many_arguments)]
pub fn retrieval_softmax_movies(
    user_emb: &[f32],
    movie_emb: &[f32],
    user_count: &[f32],
    movie_count: &[f32],
    lse: &[f32],
    movie_offsets: &[u32],
    movie_rows: &[u32],
    row_user: &[u32],
    dim: usize,
    weight: f32,
) -> Vec<f32> {
    let (nu, nm) = (user_count.len(), movie_count.len());
    let mut grad = vec![0.0; nm * dim];
    for c in 0..nm {
        let k = &movie_emb[c * dim..][..dim];
        let mut acc = vec![0.0f64; dim];
        for a in 0..nu {
            let u = &user_emb[a * dim..][..dim];
            let p = user_count[a] as f64 * (dot(u, k) - lse[a] as f64).exp();
            for d in 0..dim {
                acc[d] += p * u[d] as f64;
            }
        }
        let mut pos = vec![0.0f64; dim];
        for &r in &movie_rows[movie_offsets[c] as usize..movie_offsets[c + 1] as usize] {
            let a = row_user[r as usize] as usize;
            for d in 0..dim {
                pos[d] += user_emb[a * dim + d] as f64;
            }
        }
        for d in 0..dim {
            grad[c * dim + d] = (weight as f64 * (movie_count[c] as f64 * acc[d] - pos[d])) as f32;
        }
    }
    grad
}

/// The retrieval loss and gradients straight from TFRS's definition: logits = u m^T over the B x B batch,
/// labels the diagonal, softmax cross-entropy summed over rows. Returns (loss, du (B, D), dm (B, D)).
pub fn retrieval_loss_direct(u: &[f32], m: &[f32], dim: usize) -> (f64, Vec<f64>, Vec<f64>) {
    retrieval_loss_direct_corrected(u, m, dim, &vec![0.0; u.len() / dim])
}

/// `retrieval_loss_direct` with TFRS's `candidate_sampling_probability` correction: log_q[j] is subtracted
/// from every logit of column j (the diagonal included).
pub fn retrieval_loss_direct_corrected(
    u: &[f32],
    m: &[f32],
    dim: usize,
    log_q: &[f64],
) -> (f64, Vec<f64>, Vec<f64>) {
    let b = u.len() / dim;
    let (mut loss, mut du, mut dm) = (0.0, vec![0.0; b * dim], vec![0.0; b * dim]);
    for i in 0..b {
        let ui = &u[i * dim..][..dim];
        let s: Vec<f64> = (0..b)
            .map(|j| dot(ui, &m[j * dim..][..dim]) - log_q[j])
            .collect();
        let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = mx + s.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
        loss += lse - s[i];
        for j in 0..b {
            let g = (s[j] - lse).exp() - if i == j { 1.0 } else { 0.0 };
            for d in 0..dim {
                du[i * dim + d] += g * m[j * dim + d] as f64;
                dm[j * dim + d] += g * ui[d] as f64;
            }
        }
    }
    (loss, du, dm)
}

/// The gradient of each of `n` distinct rows as `embedding_adagrad` sums it: grad_dense[a] (if given)
/// plus the dx rows of a (if given, columns `dx_offset..dx_offset + D` of a row of length `dx_stride`);
/// what the kernel writes with `grad_out` for a feature tower. Returns (n, D).
pub fn embedding_row_gradients(
    grad_dense: Option<&[f32]>,
    dx: Option<(&[f32], usize, usize)>,
    offsets: &[u32],
    rows: &[u32],
    n: usize,
    dim: usize,
) -> Vec<f32> {
    let mut out = vec![0.0f32; n * dim];
    for (a, g) in out.chunks_mut(dim).enumerate() {
        if let Some(gd) = grad_dense {
            g.copy_from_slice(&gd[a * dim..][..dim]);
        }
        if let Some((dx, stride, off)) = dx {
            for &r in &rows[offsets[a] as usize..offsets[a + 1] as usize] {
                for d in 0..dim {
                    g[d] += dx[r as usize * stride + off + d];
                }
            }
        }
    }
    out
}

/// Sparse Adagrad on the distinct rows (`embedding_adagrad`): each row's gradient as
/// [`embedding_row_gradients`] sums it, plus the L2 term.
#[allow(clippy::too_many_arguments)]
pub fn embedding_adagrad(
    grad_dense: Option<&[f32]>,
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
    let grads = embedding_row_gradients(grad_dense, dx, offsets, rows, table_rows.len(), dim);
    for (&row, g) in table_rows.iter().zip(grads.chunks(dim)) {
        let mut g = g.to_vec();
        let at = row as usize * dim;
        if l2 != 0.0 {
            for d in 0..dim {
                g[d] += l2 * table[at + d];
            }
        }
        adagrad(
            &mut table[at..at + dim],
            &mut accum[at..at + dim],
            &g,
            lr,
            eps,
        );
    }
}

/// scores (Q, C) = query (Q, D) candidate (C, D)^T.
pub fn candidate_scores(query: &[f32], candidate: &[f32], dim: usize) -> Vec<f32> {
    let (q, c) = (query.len() / dim, candidate.len() / dim);
    let mut s = vec![0.0; q * c];
    for a in 0..q {
        for j in 0..c {
            s[a * c + j] = dot(&query[a * dim..][..dim], &candidate[j * dim..][..dim]) as f32;
        }
    }
    s
}

/// Per pair, (rank among all candidates, rank among the candidates not excluded for its user): the number
/// scoring strictly higher than the pair's own candidate. `excluded(q, c)`: candidate c is excluded for the
/// user of tile row q.
pub fn pair_ranks(
    scores: &[f32],
    candidates: usize,
    pair_query: &[u32],
    pair_candidate: &[u32],
    excluded: impl Fn(u32, usize) -> bool,
) -> Vec<(u32, u32)> {
    pair_query
        .iter()
        .zip(pair_candidate)
        .map(|(&q, &own)| {
            let row = &scores[q as usize * candidates..][..candidates];
            let own = row[own as usize];
            let higher = |c: &usize| row[*c] > own;
            let all = (0..candidates).filter(higher).count() as u32;
            let unseen = (0..candidates)
                .filter(|c| higher(c) && !excluded(q, *c))
                .count() as u32;
            (all, unseen)
        })
        .collect()
}

/// BruteForce top-k of every query row of `scores` (Q, C): the k best candidates not in the query's seen
/// run (`seen[seen_offsets[a]..seen_offsets[a + 1]]`), ordered by (score desc, index asc), padded with
/// (u32::MAX, -inf) when fewer than k are eligible. Returns (indices, scores), each (Q, k).
pub fn brute_force_top_k(
    scores: &[f32],
    candidates: usize,
    seen_offsets: &[u32],
    seen: &[u32],
    k: usize,
) -> (Vec<u32>, Vec<f32>) {
    let q = scores.len() / candidates.max(1);
    let (mut index, mut score) = (Vec::with_capacity(q * k), Vec::with_capacity(q * k));
    for a in 0..q {
        let excluded = &seen[seen_offsets[a] as usize..seen_offsets[a + 1] as usize];
        let row = &scores[a * candidates..][..candidates];
        let mut eligible: Vec<u32> = (0..candidates as u32)
            .filter(|c| !excluded.contains(c))
            .collect();
        // partial_cmp, as the kernel's `<` does: -0.0 ties with 0.0. Scores are not NaN.
        eligible.sort_by(|&x, &y| {
            let (sx, sy) = (row[x as usize], row[y as usize]);
            sy.partial_cmp(&sx).expect("no NaN scores").then(x.cmp(&y))
        });
        for j in 0..k {
            match eligible.get(j) {
                Some(&c) => {
                    index.push(c);
                    score.push(row[c as usize]);
                }
                None => {
                    index.push(u32::MAX);
                    score.push(f32::NEG_INFINITY);
                }
            }
        }
    }
    (index, score)
}
