// In-batch softmax retrieval, user side. The batch logits are u_i . m_j for every row i and column j of the
// batch; rows of the same user and columns of the same movie are identical, so we work on distinct users a
// (row count n_a) and distinct movies c (column count m_c) and never build the B x B matrix:
//   lse_a  = log sum_c m_c exp(U_a . M_c)                        (online, max-stabilised)
//   loss_a = n_a lse_a - U_a . sum_{rows i of a} M_{movie(i)}     (cross-entropy of a's rows, summed)
//   dU_a   = w (n_a sum_c m_c softmax_ac M_c - sum_{rows i of a} M_{movie(i)})
// One invocation per distinct user. The movies are read through 64 KiB uniform windows (storage loads are
// ~15x slower than uniform loads on CPU adapters): the host dispatches once per window of movies and the
// online-softmax state (max, sum, weighted movie sum) is carried between dispatches in `state`. Vectors
// of up to 64 floats live in registers as four mat4x4 blocks; blocks past D are constant-folded away.
//
// With remove_hits (TFRS's remove_accidental_hits) a batch column holding row i's own movie c is not a
// negative of row i, except row i's own column: row i sees movie c with weight w_c / m_c (m_c rows of movie c
// in the batch, w_c its column weight: m_c, or 1 with the logQ correction) and every other movie c' with w_c'.
// Its normaliser is S_i = S_a - w_c (1 - 1 / m_c) exp(U_a . M_c), so each row has its own log-normaliser
// L_i (written to row_lse for the movie side), and
//   loss_a = sum_i L_i - U_a . sum_i M_c(i)
//   dU_a   = w (acc_a sum_i 1/S_i - sum_i w_c(i) (1 - 1/m_c(i)) exp(U_a . M_c(i)) / S_i M_c(i) - sum_i M_c(i))
// with acc_a = sum_c w_c exp(U_a . M_c) M_c; user_stat gets (-log sum_i exp(-L_i), 1), which makes the movie
// side's sum over users exact unchanged (see retrieval_softmax_movies).

override D4: u32 = 8u; // D / 4, at most 16

struct Params {
    users: u32,  // distinct users in the batch
    movies: u32, // distinct movies in this window
    weight: f32, // retrieval_weight
    first: u32,  // 1: this is the first window (start the state)
    last: u32,   // 1: this is the last window (finish: lse, loss, gradient)
    remove_hits: u32, // 1: --remove-accidental-hits
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> user_emb: array<vec4<f32>>;      // (NU, D)
@group(0) @binding(1) var<uniform> movie_win: array<vec4<f32>, 4096>;     // (movies, D) window
@group(0) @binding(2) var<uniform> movie_count_win: array<vec4<f32>, 4096>; // (movies,) window, 4 per vec4
@group(0) @binding(3) var<storage, read> movie_emb: array<vec4<f32>>;     // (NM, D) for the labels
@group(0) @binding(4) var<storage, read> user_count: array<f32>;          // (NU,) rows per distinct user
@group(0) @binding(5) var<storage, read> user_offsets: array<u32>;        // (NU + 1,) CSR into user_rows
@group(0) @binding(6) var<storage, read> user_rows: array<u32>;           // (B,) batch rows grouped by user
@group(0) @binding(7) var<storage, read> row_movie: array<u32>;           // (B,) distinct movie of each row
@group(0) @binding(8) var<storage, read> movie_offsets: array<u32>;       // (NM + 1,) CSR: m_c = rows of c
@group(0) @binding(9) var<storage, read> movie_count: array<f32>;         // (NM,) column weights w_c
@group(0) @binding(10) var<storage, read_write> state: array<vec4<f32>>;  // (NU, 1 + D4): (max, sum), acc
@group(0) @binding(11) var<storage, read_write> user_stat: array<vec4<f32>>; // (NU,): (lse, n_a, 0, 0)
@group(0) @binding(12) var<storage, read_write> loss: array<f32>;         // (NU,)
@group(0) @binding(13) var<storage, read_write> grad_user: array<vec4<f32>>; // (NU, D)
@group(0) @binding(14) var<storage, read_write> row_lse: array<f32>;      // (B,) L_i, with remove_hits
@group(0) @binding(15) var<uniform> p: Params;

fn zero_past_d(k: u32, m: mat4x4<f32>) -> mat4x4<f32> {
    let z = vec4<f32>(0.0);
    return mat4x4<f32>(
        select(z, m[0], 4u * k < D4),
        select(z, m[1], 4u * k + 1u < D4),
        select(z, m[2], 4u * k + 2u < D4),
        select(z, m[3], 4u * k + 3u < D4),
    );
}

// Block k (vec4s 4k .. 4k+3) of a row; vec4s past D4 read as zero.
fn movie_block(c: u32, k: u32) -> mat4x4<f32> {
    let i = c * D4 + 4u * k;
    return zero_past_d(k, mat4x4<f32>(movie_win[i], movie_win[i + 1u], movie_win[i + 2u], movie_win[i + 3u]));
}

fn label_block(c: u32, k: u32) -> mat4x4<f32> {
    let i = c * D4 + 4u * k;
    return zero_past_d(k, mat4x4<f32>(movie_emb[i], movie_emb[i + 1u], movie_emb[i + 2u], movie_emb[i + 3u]));
}

fn user_block(a: u32, k: u32) -> mat4x4<f32> {
    let i = a * D4 + 4u * k;
    return zero_past_d(k, mat4x4<f32>(user_emb[i], user_emb[i + 1u], user_emb[i + 2u], user_emb[i + 3u]));
}

fn state_block(a: u32, k: u32) -> mat4x4<f32> {
    let i = a * (D4 + 1u) + 1u + 4u * k;
    return zero_past_d(k, mat4x4<f32>(state[i], state[i + 1u], state[i + 2u], state[i + 3u]));
}

fn mdot(a: mat4x4<f32>, b: mat4x4<f32>) -> vec4<f32> {
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3];
}

fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

fn store_state(a: u32, k: u32, v: mat4x4<f32>) {
    let i = a * (D4 + 1u) + 1u + 4u * k;
    for (var j = 0u; j < 4u; j++) {
        if 4u * k + j < D4 {
            state[i + j] = v[j];
        }
    }
}

fn store_grad(a: u32, k: u32, g: mat4x4<f32>) {
    let i = a * D4 + 4u * k;
    for (var j = 0u; j < 4u; j++) {
        if 4u * k + j < D4 {
            grad_user[i + j] = g[j];
        }
    }
}

@compute @workgroup_size(64)
fn retrieval_softmax_users(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let a = gid.x + gid.y * nwg.x * 64u;
    if a >= p.users {
        return;
    }
    let q0 = user_block(a, 0u);
    let q1 = user_block(a, 1u);
    let q2 = user_block(a, 2u);
    let q3 = user_block(a, 3u);
    var m = -3.0e38;
    var sum = 0.0;
    var acc0 = mat4x4<f32>();
    var acc1 = mat4x4<f32>();
    var acc2 = mat4x4<f32>();
    var acc3 = mat4x4<f32>();
    let s0 = a * (D4 + 1u);
    if p.first == 0u {
        m = state[s0].x;
        sum = state[s0].y;
        acc0 = state_block(a, 0u);
        acc1 = state_block(a, 1u);
        acc2 = state_block(a, 2u);
        acc3 = state_block(a, 3u);
    }
    for (var c = 0u; c < p.movies; c++) {
        let k0 = movie_block(c, 0u);
        let k1 = movie_block(c, 1u);
        let k2 = movie_block(c, 2u);
        let k3 = movie_block(c, 3u);
        let s = hsum(mdot(q0, k0) + mdot(q1, k1) + mdot(q2, k2) + mdot(q3, k3));
        if s > m {
            let scale = exp(m - s);
            sum *= scale;
            acc0 *= scale;
            acc1 *= scale;
            acc2 *= scale;
            acc3 *= scale;
            m = s;
        }
        let e = movie_count_win[c / 4u][c % 4u] * exp(s - m);
        sum += e;
        acc0 += k0 * e;
        acc1 += k1 * e;
        acc2 += k2 * e;
        acc3 += k3 * e;
    }
    if p.last == 0u {
        state[s0] = vec4<f32>(m, sum, 0.0, 0.0);
        store_state(a, 0u, acc0);
        store_state(a, 1u, acc1);
        store_state(a, 2u, acc2);
        store_state(a, 3u, acc3);
        return;
    }
    let l = m + log(sum);
    if p.remove_hits != 0u {
        finish_without_hits(a, m, sum, q0, q1, q2, q3, acc0, acc1, acc2, acc3);
        return;
    }

    // The labels: the diagonal of the batch logit matrix, for every row of this user.
    var pos0 = mat4x4<f32>();
    var pos1 = mat4x4<f32>();
    var pos2 = mat4x4<f32>();
    var pos3 = mat4x4<f32>();
    for (var r = user_offsets[a]; r < user_offsets[a + 1u]; r++) {
        let c = row_movie[user_rows[r]];
        pos0 += label_block(c, 0u);
        pos1 += label_block(c, 1u);
        pos2 += label_block(c, 2u);
        pos3 += label_block(c, 3u);
    }
    let n = user_count[a];
    user_stat[a] = vec4<f32>(l, n, 0.0, 0.0);
    let diag = hsum(mdot(q0, pos0) + mdot(q1, pos1) + mdot(q2, pos2) + mdot(q3, pos3));
    loss[a] = n * l - diag;
    let f = n / sum;
    store_grad(a, 0u, (acc0 * f - pos0) * p.weight);
    store_grad(a, 1u, (acc1 * f - pos1) * p.weight);
    store_grad(a, 2u, (acc2 * f - pos2) * p.weight);
    store_grad(a, 3u, (acc3 * f - pos3) * p.weight);
}

// The last window's work with remove_hits: every row of user a gets its own normaliser (see the top).
fn finish_without_hits(
    a: u32, m: f32, sum: f32,
    q0: mat4x4<f32>, q1: mat4x4<f32>, q2: mat4x4<f32>, q3: mat4x4<f32>,
    acc0: mat4x4<f32>, acc1: mat4x4<f32>, acc2: mat4x4<f32>, acc3: mat4x4<f32>,
) {
    var pos0 = mat4x4<f32>();
    var pos1 = mat4x4<f32>();
    var pos2 = mat4x4<f32>();
    var pos3 = mat4x4<f32>();
    var cor0 = mat4x4<f32>();
    var cor1 = mat4x4<f32>();
    var cor2 = mat4x4<f32>();
    var cor3 = mat4x4<f32>();
    var inv_total = 0.0;
    var lse_total = 0.0;
    for (var r = user_offsets[a]; r < user_offsets[a + 1u]; r++) {
        let row = user_rows[r];
        let c = row_movie[row];
        let b0 = label_block(c, 0u);
        let b1 = label_block(c, 1u);
        let b2 = label_block(c, 2u);
        let b3 = label_block(c, 3u);
        pos0 += b0;
        pos1 += b1;
        pos2 += b2;
        pos3 += b3;
        let e = exp(hsum(mdot(q0, b0) + mdot(q1, b1) + mdot(q2, b2) + mdot(q3, b3)) - m);
        let mc = f32(movie_offsets[c + 1u] - movie_offsets[c]);
        let wc = movie_count[c];
        let own = wc / mc * e; // the one column of movie c that row i keeps
        let g = wc * e - own;  // the other m_c - 1 columns, removed
        // S_i >= own in exact arithmetic; the max keeps cancellation from going below it.
        let s_i = max(sum - g, own);
        let inv = 1.0 / s_i;
        inv_total += inv;
        let l_i = m + log(s_i);
        lse_total += l_i;
        row_lse[row] = l_i;
        let f = g * inv;
        cor0 += b0 * f;
        cor1 += b1 * f;
        cor2 += b2 * f;
        cor3 += b3 * f;
    }
    user_stat[a] = vec4<f32>(m - log(inv_total), 1.0, 0.0, 0.0);
    let diag = hsum(mdot(q0, pos0) + mdot(q1, pos1) + mdot(q2, pos2) + mdot(q3, pos3));
    loss[a] = lse_total - diag;
    store_grad(a, 0u, (acc0 * inv_total - cor0 - pos0) * p.weight);
    store_grad(a, 1u, (acc1 * inv_total - cor1 - pos1) * p.weight);
    store_grad(a, 2u, (acc2 * inv_total - cor2 - pos2) * p.weight);
    store_grad(a, 3u, (acc3 * inv_total - cor3 - pos3) * p.weight);
}
