// In-batch softmax retrieval, movie side (see retrieval_softmax_users for the distinct-rows identity):
//   dM_c = w (m_c sum_a n_a softmax_ac U_a - sum_{rows j with movie c} U_{user(j)})
// with softmax_ac = exp(U_a . M_c - lse_a), lse from retrieval_softmax_users. One invocation per movie;
// vectors of up to 64 floats in registers as four mat4x4 blocks.

override D4: u32 = 8u; // D / 4, at most 16

struct Params {
    users: u32,
    movies: u32,
    weight: f32, // retrieval_weight
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> user_emb: array<vec4<f32>>;  // (NU, D)
@group(0) @binding(1) var<storage, read> movie_emb: array<vec4<f32>>; // (NM, D)
@group(0) @binding(2) var<storage, read> user_count: array<f32>;      // (NU,)
@group(0) @binding(3) var<storage, read> movie_count: array<f32>;     // (NM,)
@group(0) @binding(4) var<storage, read> lse: array<f32>;             // (NU,)
@group(0) @binding(5) var<storage, read> movie_offsets: array<u32>;   // (NM + 1,) CSR into movie_rows
@group(0) @binding(6) var<storage, read> movie_rows: array<u32>;      // (B,) batch rows grouped by movie
@group(0) @binding(7) var<storage, read> row_user: array<u32>;        // (B,) distinct user of each row
@group(0) @binding(8) var<storage, read_write> grad_movie: array<vec4<f32>>; // (NM, D)
@group(0) @binding(9) var<uniform> p: Params;

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
    for (var a = 0u; a < p.users; a++) {
        let u0 = user_block(a, 0u);
        let u1 = user_block(a, 1u);
        let u2 = user_block(a, 2u);
        let u3 = user_block(a, 3u);
        let s = hsum(mdot(u0, k0) + mdot(u1, k1) + mdot(u2, k2) + mdot(u3, k3));
        let e = user_count[a] * exp(s - lse[a]);
        acc0 += u0 * e;
        acc1 += u1 * e;
        acc2 += u2 * e;
        acc3 += u3 * e;
    }
    var pos0 = mat4x4<f32>();
    var pos1 = mat4x4<f32>();
    var pos2 = mat4x4<f32>();
    var pos3 = mat4x4<f32>();
    for (var r = movie_offsets[c]; r < movie_offsets[c + 1u]; r++) {
        let a = row_user[movie_rows[r]];
        pos0 += user_block(a, 0u);
        pos1 += user_block(a, 1u);
        pos2 += user_block(a, 2u);
        pos3 += user_block(a, 3u);
    }
    let m = movie_count[c];
    store_block(c, 0u, (acc0 * m - pos0) * p.weight);
    store_block(c, 1u, (acc1 * m - pos1) * p.weight);
    store_block(c, 2u, (acc2 * m - pos2) * p.weight);
    store_block(c, 3u, (acc3 * m - pos3) * p.weight);
}
