// In-batch softmax retrieval, first pass: the log-sum-exp of every distinct user's row of logits over the
// distinct movies, lse_a = log sum_c m_c exp(U_a . M_c) (the distinct-rows identity of
// shaders/retrieval_softmax_users.wgsl), split over P parts of the movies so that a GPU has enough
// workgroups: part p (workgroup y) writes its online-softmax state (max, sum of m_c exp(s - max)) and
// retrieval_grads_gpu combines the parts in a fixed order. One invocation per distinct user; the part's
// movies pass through workgroup memory 32 at a time, read straight from the table (no gathered copy).
// With --temperature T every user row is read as U_a / T, so the logits are U_a . M_c / T.

override D4: u32 = 8u; // D / 4, at most 16

struct Params {
    users: u32,          // NU: distinct users
    movies: u32,         // NM: distinct movies
    chunk: u32,          // movies per part
    user_rows_at: u32,   // where the distinct users' table rows start in `batch`
    movie_rows_at: u32,  // the distinct movies' table rows
    movie_count_at: u32, // the distinct movies' column counts m_c (f32 bits)
    inv_temperature: f32, // 1 / T (1: the plain softmax)
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> user_emb: array<vec4<f32>>;    // (U, D)
@group(0) @binding(1) var<storage, read> movie_emb: array<vec4<f32>>;   // (M, D)
@group(0) @binding(2) var<storage, read> batch: array<u32>;             // the packed batch (PackedBatch)
@group(0) @binding(3) var<storage, read_write> part: array<vec2<f32>>;  // (P, NU): (max, sum)
@group(0) @binding(4) var<uniform> p: Params;

const TC: u32 = 32u; // movies per step through workgroup memory

var<workgroup> tile: array<vec4<f32>, 512>; // (TC, 16): movie embeddings, 16 vec4 slots per row
var<workgroup> tile_count: array<f32, 32>;  // (TC,)

@compute @workgroup_size(64)
fn retrieval_lse_gpu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let a = wg.x * 64u + t;
    let live = a < p.users;
    var q: array<vec4<f32>, 16>;
    if live {
        let row = batch[p.user_rows_at + a];
        for (var j = 0u; j < D4; j++) {
            q[j] = user_emb[row * D4 + j] * p.inv_temperature;
        }
    }
    let c_begin = min(wg.y * p.chunk, p.movies);
    let c_end = min(c_begin + p.chunk, p.movies);
    var m = -3.0e38;
    var sum = 0.0;
    for (var c0 = c_begin; c0 < c_end; c0 += TC) {
        let n = min(TC, c_end - c0);
        for (var i = t; i < n * D4; i += 64u) {
            let c = i / D4;
            tile[c * 16u + i % D4] = movie_emb[batch[p.movie_rows_at + c0 + c] * D4 + i % D4];
        }
        if t < n {
            tile_count[t] = bitcast<f32>(batch[p.movie_count_at + c0 + t]);
        }
        workgroupBarrier();
        for (var c = 0u; c < n; c++) {
            var v = vec4<f32>(0.0);
            for (var j = 0u; j < D4; j++) {
                v += q[j] * tile[c * 16u + j];
            }
            let s = (v.x + v.y) + (v.z + v.w);
            if s > m {
                sum *= exp(m - s);
                m = s;
            }
            sum += tile_count[c] * exp(s - m);
        }
        workgroupBarrier();
    }
    if live {
        part[wg.y * p.users + a] = vec2<f32>(m, sum);
    }
}
