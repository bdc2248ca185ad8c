// In-batch softmax retrieval, second pass: the loss and both embedding gradients on the distinct users x
// distinct movies (see shaders/retrieval_softmax_users.wgsl for the identity), with softmax_ac =
// exp(U_a . M_c - lse_a) and lse_a combined from retrieval_lse_gpu's parts:
//   loss_a = n_a lse_a - U_a . pos_a,                 pos_a = sum over rows i of a of M_{movie(i)}
//   dU_a   = w (n_a sum_c m_c softmax_ac M_c - pos_a)
//   dM_c   = w (m_c sum_a n_a softmax_ac U_a - pos_c), pos_c = sum over rows j of c of U_{user(j)}
// One dispatch does both sides: workgroups x < user_tiles own 64 users each, the rest 64 movies each, and
// workgroup y picks one of P parts of the other side, so the sums over it are split-K partials
// (P, NU, D) and (P, NM, D) that embedding_adagrad_gpu adds up in a fixed order; part 0 also subtracts
// the labels' pos and writes the loss. The other side passes through workgroup memory 32 rows at a time.
// With --temperature T every user row is read as U_a / T (the formulas above then hold for the tempered
// rows), and the users' gradient is taken back through the division: dU_a / T.

override D4: u32 = 8u; // D / 4, at most 16

struct Params {
    users: u32,       // NU
    movies: u32,      // NM
    user_chunk: u32,  // users per part (movie side)
    movie_chunk: u32, // movies per part (user side)
    parts: u32,       // P
    user_tiles: u32,  // workgroups of the user side: ceil(NU / 64)
    weight: f32,      // retrieval_weight
    inv_temperature: f32, // 1 / T (1: the plain softmax)
    user_at: u32,     // `batch` fields (PackedBatch): table row of every batch row's user
    movie_at: u32,    // and movie
    u_rows_at: u32,   // distinct users: table rows, counts (f32 bits), CSR offsets and rows
    u_count_at: u32,
    u_offsets_at: u32,
    u_list_at: u32,
    m_rows_at: u32,   // distinct movies: the same
    m_count_at: u32,
    m_offsets_at: u32,
    m_list_at: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> user_emb: array<vec4<f32>>;            // (U, D)
@group(0) @binding(1) var<storage, read> movie_emb: array<vec4<f32>>;           // (M, D)
@group(0) @binding(2) var<storage, read> batch: array<u32>;                     // the packed batch
@group(0) @binding(3) var<storage, read> lse_part: array<vec2<f32>>;            // (P, NU): (max, sum)
@group(0) @binding(4) var<storage, read_write> grad_user: array<vec4<f32>>;     // (P, NU, D)
@group(0) @binding(5) var<storage, read_write> grad_movie: array<vec4<f32>>;    // (P, NM, D)
@group(0) @binding(6) var<storage, read_write> loss: array<f32>;                // (NU,)
@group(0) @binding(7) var<uniform> p: Params;

const TC: u32 = 32u; // rows of the other side per step through workgroup memory

var<workgroup> tile: array<vec4<f32>, 512>; // (TC, 16): embeddings, 16 vec4 slots per row
var<workgroup> tile_count: array<f32, 32>;  // (TC,) their counts
var<workgroup> tile_lse: array<f32, 32>;    // (TC,) their lse (movie side)

// lse_a from the P parts, in part order.
fn lse(a: u32) -> f32 {
    var m = -3.0e38;
    for (var i = 0u; i < p.parts; i++) {
        m = max(m, lse_part[i * p.users + a].x);
    }
    var s = 0.0;
    for (var i = 0u; i < p.parts; i++) {
        let v = lse_part[i * p.users + a];
        s += v.y * exp(v.x - m);
    }
    return m + log(s);
}

@compute @workgroup_size(64)
fn retrieval_grads_gpu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let users_side = wg.x < p.user_tiles;
    var e0 = wg.x * 64u + t; // this invocation's user, or movie
    var n_own = p.users;
    var chunk = p.movie_chunk;
    var n_other = p.movies;
    if !users_side {
        e0 = (wg.x - p.user_tiles) * 64u + t;
        n_own = p.movies;
        chunk = p.user_chunk;
        n_other = p.users;
    }
    let live = e0 < n_own;
    var q: array<vec4<f32>, 16>;
    var l = 0.0;
    if live {
        var row = batch[p.u_rows_at + e0];
        if !users_side {
            row = batch[p.m_rows_at + e0];
        }
        for (var j = 0u; j < D4; j++) {
            if users_side {
                q[j] = user_emb[row * D4 + j] * p.inv_temperature;
            } else {
                q[j] = movie_emb[row * D4 + j];
            }
        }
        if users_side {
            l = lse(e0);
        }
    }
    var acc: array<vec4<f32>, 16>;
    let o_begin = min(wg.y * chunk, n_other);
    let o_end = min(o_begin + chunk, n_other);
    for (var o0 = o_begin; o0 < o_end; o0 += TC) {
        let n = min(TC, o_end - o0);
        for (var i = t; i < n * D4; i += 64u) {
            let o = o0 + i / D4;
            let slot = (i / D4) * 16u + i % D4;
            if users_side {
                tile[slot] = movie_emb[batch[p.m_rows_at + o] * D4 + i % D4];
            } else {
                tile[slot] = user_emb[batch[p.u_rows_at + o] * D4 + i % D4] * p.inv_temperature;
            }
        }
        if t < n {
            if users_side {
                tile_count[t] = bitcast<f32>(batch[p.m_count_at + o0 + t]);
            } else {
                tile_count[t] = bitcast<f32>(batch[p.u_count_at + o0 + t]);
                tile_lse[t] = lse(o0 + t);
            }
        }
        workgroupBarrier();
        for (var c = 0u; c < n; c++) {
            var v = vec4<f32>(0.0);
            for (var j = 0u; j < D4; j++) {
                v += q[j] * tile[c * 16u + j];
            }
            let s = (v.x + v.y) + (v.z + v.w);
            var e = 0.0;
            if users_side {
                e = tile_count[c] * exp(s - l);
            } else {
                e = tile_count[c] * exp(s - tile_lse[c]);
            }
            for (var j = 0u; j < D4; j++) {
                acc[j] += e * tile[c * 16u + j];
            }
        }
        workgroupBarrier();
    }
    if !live {
        return;
    }
    // The labels (part 0 only): the other side's rows paired with this one in the batch.
    var pos: array<vec4<f32>, 16>;
    var own_count = 0.0;
    if users_side {
        own_count = bitcast<f32>(batch[p.u_count_at + e0]);
        if wg.y == 0u {
            for (var r = batch[p.u_offsets_at + e0]; r < batch[p.u_offsets_at + e0 + 1u]; r++) {
                let row = batch[p.movie_at + batch[p.u_list_at + r]];
                for (var j = 0u; j < D4; j++) {
                    pos[j] += movie_emb[row * D4 + j];
                }
            }
        }
    } else {
        own_count = bitcast<f32>(batch[p.m_count_at + e0]);
        if wg.y == 0u {
            for (var r = batch[p.m_offsets_at + e0]; r < batch[p.m_offsets_at + e0 + 1u]; r++) {
                let row = batch[p.user_at + batch[p.m_list_at + r]];
                for (var j = 0u; j < D4; j++) {
                    pos[j] += user_emb[row * D4 + j] * p.inv_temperature;
                }
            }
        }
    }
    var diag = vec4<f32>(0.0);
    for (var j = 0u; j < D4; j++) {
        let g = p.weight * (own_count * acc[j] - pos[j]);
        if users_side {
            grad_user[(wg.y * p.users + e0) * D4 + j] = g * p.inv_temperature;
        } else {
            grad_movie[(wg.y * p.movies + e0) * D4 + j] = g;
        }
        diag += q[j] * pos[j];
    }
    if users_side && wg.y == 0u {
        loss[e0] = own_count * l - ((diag.x + diag.y) + (diag.z + diag.w));
    }
}
