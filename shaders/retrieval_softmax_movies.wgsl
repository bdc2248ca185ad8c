// In-batch softmax retrieval, movie side (see retrieval_softmax_users for the distinct-rows identity):
//   dM_c = w (m_c sum_a n_a softmax_ac U_a - sum_{rows j with movie c} U_{user(j)})
// with softmax_ac = exp(U_a . M_c - lse_a), lse from retrieval_softmax_users. One invocation per movie.

override D4: u32 = 8u; // D / 4, at most 32

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

@compute @workgroup_size(64)
fn retrieval_softmax_movies(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = gid.x + gid.y * nwg.x * 64u;
    if c >= p.movies {
        return;
    }
    var k: array<vec4<f32>, 32>;
    var acc: array<vec4<f32>, 32>;
    for (var d = 0u; d < D4; d++) {
        k[d] = movie_emb[c * D4 + d];
    }
    for (var a = 0u; a < p.users; a++) {
        var sv = vec4<f32>(0.0);
        for (var d = 0u; d < D4; d++) {
            sv += user_emb[a * D4 + d] * k[d];
        }
        let s = (sv.x + sv.y) + (sv.z + sv.w);
        let e = user_count[a] * exp(s - lse[a]);
        for (var d = 0u; d < D4; d++) {
            acc[d] += e * user_emb[a * D4 + d];
        }
    }
    var pos: array<vec4<f32>, 32>;
    for (var r = movie_offsets[c]; r < movie_offsets[c + 1u]; r++) {
        let a = row_user[movie_rows[r]];
        for (var d = 0u; d < D4; d++) {
            pos[d] += user_emb[a * D4 + d];
        }
    }
    let m = movie_count[c];
    for (var d = 0u; d < D4; d++) {
        grad_movie[c * D4 + d] = p.weight * (m * acc[d] - pos[d]);
    }
}
