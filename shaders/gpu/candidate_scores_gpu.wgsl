// Brute-force scores of a tile of queries against every candidate in one dispatch, for FactorizedTopK
// evaluation: scores[a, c] = user_emb[query_rows[first + a]] . movie_emb[candidate_rows[c]], both gathers
// fused in (no query or candidate copies). A workgroup owns 64 queries x 64 candidates, each invocation a
// 4 x 4 block in registers; 16 embedding values of both sides pass through workgroup memory at a time.

struct Params {
    queries: u32,    // Q: rows of this tile
    candidates: u32, // C: row length of scores
    dim4: u32,       // D / 4
    first: u32,      // this tile's first query in query_rows
}

@group(0) @binding(0) var<storage, read> user_emb: array<vec4<f32>>;   // (U, D)
@group(0) @binding(1) var<storage, read> query_rows: array<u32>;       // (all queries,) user table rows
@group(0) @binding(2) var<storage, read> movie_emb: array<vec4<f32>>;  // (M, D)
@group(0) @binding(3) var<storage, read> candidate_rows: array<u32>;   // (C,) movie table rows
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;     // (Q, C)
@group(0) @binding(5) var<uniform> p: Params;

const TK: u32 = 16u; // embedding values per step through workgroup memory

var<workgroup> qs: array<f32, 1024>; // (TK, 64): the tile's queries, transposed
var<workgroup> cs: array<f32, 1024>; // (TK, 64): its candidates, transposed

fn store(a: u32, c: u32, v: f32) {
    if a < p.queries && c < p.candidates {
        scores[a * p.candidates + c] = v;
    }
}

@compute @workgroup_size(256)
fn candidate_scores_gpu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let a0 = wg.y * 64u;
    let c0 = wg.x * 64u;
    let ty = t / 16u; // queries a0 + 4 ty ..
    let tx = t % 16u; // candidates c0 + 4 tx ..
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let lr = t / 4u; // the query (and candidate) this invocation loads
    let lq = t % 4u; // and which of the step's 4 vec4s
    for (var k0 = 0u; k0 < p.dim4; k0 += TK / 4u) {
        var q = vec4<f32>(0.0);
        if a0 + lr < p.queries && k0 + lq < p.dim4 {
            q = user_emb[query_rows[p.first + a0 + lr] * p.dim4 + k0 + lq];
        }
        var k = vec4<f32>(0.0);
        if c0 + lr < p.candidates && k0 + lq < p.dim4 {
            k = movie_emb[candidate_rows[c0 + lr] * p.dim4 + k0 + lq];
        }
        for (var j = 0u; j < 4u; j++) {
            qs[(4u * lq + j) * 64u + lr] = q[j];
            cs[(4u * lq + j) * 64u + lr] = k[j];
        }
        workgroupBarrier();
        for (var i = 0u; i < TK; i++) {
            let ci = i * 64u + 4u * tx;
            let kv = vec4<f32>(cs[ci], cs[ci + 1u], cs[ci + 2u], cs[ci + 3u]);
            let qi = i * 64u + 4u * ty;
            acc0 += qs[qi] * kv;
            acc1 += qs[qi + 1u] * kv;
            acc2 += qs[qi + 2u] * kv;
            acc3 += qs[qi + 3u] * kv;
        }
        workgroupBarrier();
    }
    var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let a = a0 + 4u * ty + i;
        for (var j = 0u; j < 4u; j++) {
            store(a, c0 + 4u * tx + j, acc[i][j]);
        }
    }
}
