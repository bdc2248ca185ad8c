// In-batch softmax retrieval, user side. The batch logits are u_i . m_j for every row i and column j of the
// batch; rows of the same user and columns of the same movie are identical, so we work on distinct users a
// (row count n_a) and distinct movies c (column count m_c) and never build the B x B matrix:
//   lse_a  = log sum_c m_c exp(U_a . M_c)                        (online, max-stabilised)
//   loss_a = n_a lse_a - U_a . sum_{rows i of a} M_{movie(i)}     (cross-entropy of a's rows, summed)
//   dU_a   = w (n_a sum_c m_c softmax_ac M_c - sum_{rows i of a} M_{movie(i)})
// One invocation per distinct user. Vectors of up to 64 floats live in registers as four mat4x4 blocks
// (named values: CPU adapters spill dynamically indexed arrays); blocks past D are constant-folded away.

override D4: u32 = 8u; // D / 4, at most 16

struct Params {
    users: u32,  // distinct users in the batch
    movies: u32, // distinct movies in the batch
    weight: f32, // retrieval_weight
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> user_emb: array<vec4<f32>>;  // (NU, D)
@group(0) @binding(1) var<storage, read> movie_emb: array<vec4<f32>>; // (NM, D)
@group(0) @binding(2) var<storage, read> user_count: array<f32>;      // (NU,) rows per distinct user
@group(0) @binding(3) var<storage, read> movie_count: array<f32>;     // (NM,) columns per distinct movie
@group(0) @binding(4) var<storage, read> user_offsets: array<u32>;    // (NU + 1,) CSR into user_rows
@group(0) @binding(5) var<storage, read> user_rows: array<u32>;       // (B,) batch rows grouped by user
@group(0) @binding(6) var<storage, read> row_movie: array<u32>;       // (B,) distinct movie of each row
@group(0) @binding(7) var<storage, read_write> lse: array<f32>;       // (NU,)
@group(0) @binding(8) var<storage, read_write> loss: array<f32>;      // (NU,)
@group(0) @binding(9) var<storage, read_write> grad_user: array<vec4<f32>>; // (NU, D)
@group(0) @binding(10) var<uniform> p: Params;

// Block k (vec4s 4k .. 4k+3) of a row of D4 vec4s; vec4s past D4 read as zero.
fn movie_block(c: u32, k: u32) -> mat4x4<f32> {
    let i = c * D4 + 4u * k;
    let z = vec4<f32>(0.0);
    return mat4x4<f32>(
        select(z, movie_emb[i], 4u * k < D4),
        select(z, movie_emb[i + 1u], 4u * k + 1u < D4),
        select(z, movie_emb[i + 2u], 4u * k + 2u < D4),
        select(z, movie_emb[i + 3u], 4u * k + 3u < D4),
    );
}

fn user_block(a: u32, k: u32) -> mat4x4<f32> {
    let i = a * D4 + 4u * k;
    let z = vec4<f32>(0.0);
    return mat4x4<f32>(
        select(z, user_emb[i], 4u * k < D4),
        select(z, user_emb[i + 1u], 4u * k + 1u < D4),
        select(z, user_emb[i + 2u], 4u * k + 2u < D4),
        select(z, user_emb[i + 3u], 4u * k + 3u < D4),
    );
}

fn mdot(a: mat4x4<f32>, b: mat4x4<f32>) -> vec4<f32> {
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3];
}

fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

fn store_block(a: u32, k: u32, g: mat4x4<f32>) {
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
    var acc0 = mat4x4<f32>();
    var acc1 = mat4x4<f32>();
    var acc2 = mat4x4<f32>();
    var acc3 = mat4x4<f32>();
    var m = -3.0e38;
    var sum = 0.0;
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
        let e = movie_count[c] * exp(s - m);
        sum += e;
        acc0 += k0 * e;
        acc1 += k1 * e;
        acc2 += k2 * e;
        acc3 += k3 * e;
    }
    let l = m + log(sum);
    lse[a] = l;

    // The labels: the diagonal of the batch logit matrix, for every row of this user.
    var pos0 = mat4x4<f32>();
    var pos1 = mat4x4<f32>();
    var pos2 = mat4x4<f32>();
    var pos3 = mat4x4<f32>();
    for (var r = user_offsets[a]; r < user_offsets[a + 1u]; r++) {
        let c = row_movie[user_rows[r]];
        pos0 += movie_block(c, 0u);
        pos1 += movie_block(c, 1u);
        pos2 += movie_block(c, 2u);
        pos3 += movie_block(c, 3u);
    }
    let n = user_count[a];
    let diag = hsum(mdot(q0, pos0) + mdot(q1, pos1) + mdot(q2, pos2) + mdot(q3, pos3));
    loss[a] = n * l - diag;
    let f = n / sum;
    store_block(a, 0u, (acc0 * f - pos0) * p.weight);
    store_block(a, 1u, (acc1 * f - pos1) * p.weight);
    store_block(a, 2u, (acc2 * f - pos2) * p.weight);
    store_block(a, 3u, (acc3 * f - pos3) * p.weight);
}
