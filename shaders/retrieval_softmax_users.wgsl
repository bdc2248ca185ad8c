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

override D4: u32 = 8u; // D / 4, at most 16

struct Params {
    users: u32,  // distinct users in the batch
    movies: u32, // distinct movies in this window
    weight: f32, // retrieval_weight
    first: u32,  // 1: this is the first window (start the state)
    last: u32,   // 1: this is the last window (finish: lse, loss, gradient)
    _pad0: u32,
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
@group(0) @binding(8) var<storage, read_write> state: array<vec4<f32>>;   // (NU, 1 + D4): (max, sum), acc
@group(0) @binding(9) var<storage, read_write> user_stat: array<vec4<f32>>; // (NU,): (lse, n_a, 0, 0)
@group(0) @binding(10) var<storage, read_write> loss: array<f32>;         // (NU,)
@group(0) @binding(11) var<storage, read_write> grad_user: array<vec4<f32>>; // (NU, D)
@group(0) @binding(12) var<uniform> p: Params;

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
