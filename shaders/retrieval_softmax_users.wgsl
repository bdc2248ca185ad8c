// In-batch softmax retrieval, user side. The batch logits are u_i . m_j for every row i and column j of the
// batch; rows of the same user and columns of the same movie are identical, so we work on distinct users a
// (row count n_a) and distinct movies c (column count m_c) and never build the B x B matrix:
//   lse_a  = log sum_c m_c exp(U_a . M_c)                        (online, max-stabilised)
//   loss_a = n_a lse_a - U_a . sum_{rows i of a} M_{movie(i)}     (cross-entropy of a's rows, summed)
//   dU_a   = w (n_a sum_c m_c softmax_ac M_c - sum_{rows i of a} M_{movie(i)})
// One invocation per distinct user; its query and accumulator live in registers.

override D4: u32 = 8u; // D / 4, at most 32

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

@compute @workgroup_size(64)
fn retrieval_softmax_users(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let a = gid.x + gid.y * nwg.x * 64u;
    if a >= p.users {
        return;
    }
    var q: array<vec4<f32>, 32>;
    var acc: array<vec4<f32>, 32>;
    for (var d = 0u; d < D4; d++) {
        q[d] = user_emb[a * D4 + d];
    }
    var m = -3.0e38;
    var sum = 0.0;
    for (var c = 0u; c < p.movies; c++) {
        var sv = vec4<f32>(0.0);
        for (var d = 0u; d < D4; d++) {
            sv += q[d] * movie_emb[c * D4 + d];
        }
        let s = (sv.x + sv.y) + (sv.z + sv.w);
        if s > m {
            let scale = exp(m - s);
            sum *= scale;
            for (var d = 0u; d < D4; d++) {
                acc[d] *= scale;
            }
            m = s;
        }
        let e = movie_count[c] * exp(s - m);
        sum += e;
        for (var d = 0u; d < D4; d++) {
            acc[d] += e * movie_emb[c * D4 + d];
        }
    }
    let l = m + log(sum);
    lse[a] = l;

    // The labels: the diagonal of the batch logit matrix, for every row of this user.
    var pos: array<vec4<f32>, 32>;
    for (var r = user_offsets[a]; r < user_offsets[a + 1u]; r++) {
        let c = row_movie[user_rows[r]];
        for (var d = 0u; d < D4; d++) {
            pos[d] += movie_emb[c * D4 + d];
        }
    }
    let n = user_count[a];
    var diag = vec4<f32>(0.0);
    for (var d = 0u; d < D4; d++) {
        diag += q[d] * pos[d];
        grad_user[a * D4 + d] = p.weight * (n * acc[d] / sum - pos[d]);
    }
    loss[a] = n * l - ((diag.x + diag.y) + (diag.z + diag.w));
}
