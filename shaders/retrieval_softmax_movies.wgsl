// In-batch softmax retrieval, movie side (see retrieval_softmax_users for the distinct-rows identity):
//   dM_c = w (m_c sum_a n_a softmax_ac U_a - sum_{rows j with movie c} U_{user(j)})
// with softmax_ac = exp(U_a . M_c - lse_a), lse from retrieval_softmax_users. One invocation per movie.
// The users are read through 64 KiB uniform windows, one dispatch per window; the running sum over users
// is carried between dispatches in grad_movie, which holds the gradient after the last window.
// With remove_hits user_stat holds (-log sum_i exp(-L_i), 1) per user, which keeps the sum over users exact,
// and the rows j of movie c, whose other m_c - 1 columns of c were removed, give back their share:
//   dM_c -= w w_c (1 - 1/m_c) sum_{rows j of c} exp(U_a(j) . M_c - L_j) U_a(j)

override D4: u32 = 8u; // D / 4, at most 16

struct Params {
    users: u32,  // distinct users in this window
    movies: u32, // distinct movies in the batch
    weight: f32, // retrieval_weight
    first: u32,  // 1: first window (start the sum)
    last: u32,   // 1: last window (finish the gradient)
    remove_hits: u32, // 1: --remove-accidental-hits
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> movie_emb: array<vec4<f32>>;       // (NM, D)
@group(0) @binding(1) var<uniform> user_win: array<vec4<f32>, 4096>;       // (users, D) window
@group(0) @binding(2) var<uniform> user_stat_win: array<vec4<f32>, 4096>;  // (users,): (lse, n_a, 0, 0)
@group(0) @binding(3) var<storage, read> user_emb: array<vec4<f32>>;        // (NU, D) for the labels
@group(0) @binding(4) var<storage, read> movie_count: array<f32>;           // (NM,)
@group(0) @binding(5) var<storage, read> movie_offsets: array<u32>;         // (NM + 1,) CSR into movie_rows
@group(0) @binding(6) var<storage, read> movie_rows: array<u32>;            // (B,) batch rows grouped by movie
@group(0) @binding(7) var<storage, read> row_user: array<u32>;              // (B,) distinct user of each row
@group(0) @binding(8) var<storage, read> row_lse: array<f32>;               // (B,) L_j, with remove_hits
@group(0) @binding(9) var<storage, read_write> grad_movie: array<vec4<f32>>; // (NM, D)
@group(0) @binding(10) var<uniform> p: Params;

fn zero_past_d(k: u32, m: mat4x4<f32>) -> mat4x4<f32> {
    let z = vec4<f32>(0.0);
    return mat4x4<f32>(
        select(z, m[0], 4u * k < D4),
        select(z, m[1], 4u * k + 1u < D4),
        select(z, m[2], 4u * k + 2u < D4),
        select(z, m[3], 4u * k + 3u < D4),
    );
}

fn movie_block(c: u32, k: u32) -> mat4x4<f32> {
    let i = c * D4 + 4u * k;
    return zero_past_d(k, mat4x4<f32>(movie_emb[i], movie_emb[i + 1u], movie_emb[i + 2u], movie_emb[i + 3u]));
}

fn user_block(a: u32, k: u32) -> mat4x4<f32> {
    let i = a * D4 + 4u * k;
    return zero_past_d(k, mat4x4<f32>(user_win[i], user_win[i + 1u], user_win[i + 2u], user_win[i + 3u]));
}

fn label_block(a: u32, k: u32) -> mat4x4<f32> {
    let i = a * D4 + 4u * k;
    return zero_past_d(k, mat4x4<f32>(user_emb[i], user_emb[i + 1u], user_emb[i + 2u], user_emb[i + 3u]));
}

fn grad_block(c: u32, k: u32) -> mat4x4<f32> {
    let i = c * D4 + 4u * k;
    return zero_past_d(k, mat4x4<f32>(grad_movie[i], grad_movie[i + 1u], grad_movie[i + 2u], grad_movie[i + 3u]));
}

fn mdot(a: mat4x4<f32>, b: mat4x4<f32>) -> vec4<f32> {
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3];
}

fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

fn store_block(c: u32, k: u32, g: mat4x4<f32>) {
    let i = c * D4 + 4u * k;
    for (var j = 0u; j < 4u; j++) {
        if 4u * k + j < D4 {
            grad_movie[i + j] = g[j];
        }
    }
}

@compute @workgroup_size(64)
fn retrieval_softmax_movies(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = gid.x + gid.y * nwg.x * 64u;
    if c >= p.movies {
        return;
    }
    let k0 = movie_block(c, 0u);
    let k1 = movie_block(c, 1u);
    let k2 = movie_block(c, 2u);
    let k3 = movie_block(c, 3u);
    var acc0 = mat4x4<f32>();
    var acc1 = mat4x4<f32>();
    var acc2 = mat4x4<f32>();
    var acc3 = mat4x4<f32>();
    if p.first == 0u {
        acc0 = grad_block(c, 0u);
        acc1 = grad_block(c, 1u);
        acc2 = grad_block(c, 2u);
        acc3 = grad_block(c, 3u);
    }
    for (var a = 0u; a < p.users; a++) {
        let u0 = user_block(a, 0u);
        let u1 = user_block(a, 1u);
        let u2 = user_block(a, 2u);
        let u3 = user_block(a, 3u);
        let s = hsum(mdot(u0, k0) + mdot(u1, k1) + mdot(u2, k2) + mdot(u3, k3));
        let stat = user_stat_win[a];
        let e = stat.y * exp(s - stat.x);
        acc0 += u0 * e;
        acc1 += u1 * e;
        acc2 += u2 * e;
        acc3 += u3 * e;
    }
    if p.last == 0u {
        store_block(c, 0u, acc0);
        store_block(c, 1u, acc1);
        store_block(c, 2u, acc2);
        store_block(c, 3u, acc3);
        return;
    }
    var pos0 = mat4x4<f32>();
    var pos1 = mat4x4<f32>();
    var pos2 = mat4x4<f32>();
    var pos3 = mat4x4<f32>();
    for (var r = movie_offsets[c]; r < movie_offsets[c + 1u]; r++) {
        let a = row_user[movie_rows[r]];
        pos0 += label_block(a, 0u);
        pos1 += label_block(a, 1u);
        pos2 += label_block(a, 2u);
        pos3 += label_block(a, 3u);
    }
    let m = movie_count[c];
    if p.remove_hits != 0u {
        let rows = movie_offsets[c + 1u] - movie_offsets[c];
        let share = m - m / f32(rows); // w_c (1 - 1/m_c)
        for (var r = movie_offsets[c]; r < movie_offsets[c + 1u]; r++) {
            let row = movie_rows[r];
            let a = row_user[row];
            let b0 = label_block(a, 0u);
            let b1 = label_block(a, 1u);
            let b2 = label_block(a, 2u);
            let b3 = label_block(a, 3u);
            let s = hsum(mdot(b0, k0) + mdot(b1, k1) + mdot(b2, k2) + mdot(b3, k3));
            let f = share * exp(s - row_lse[row]);
            pos0 += b0 * f;
            pos1 += b1 * f;
            pos2 += b2 * f;
            pos3 += b3 * f;
        }
    }
    store_block(c, 0u, (acc0 * m - pos0) * p.weight);
    store_block(c, 1u, (acc1 * m - pos1) * p.weight);
    store_block(c, 2u, (acc2 * m - pos2) * p.weight);
    store_block(c, 3u, (acc3 * m - pos3) * p.weight);
}
