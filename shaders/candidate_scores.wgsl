// Brute-force scores of a tile of queries against every candidate: scores[a, c] = q_a . k_c.
// Used by FactorizedTopK evaluation; the tile keeps the matrix inside the adapter's binding limit.

override D4: u32 = 8u; // D / 4, at most 32

struct Params {
    queries: u32,    // rows in this tile
    candidates: u32, // C
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> query: array<vec4<f32>>;      // (Q, D)
@group(0) @binding(1) var<storage, read> candidate: array<vec4<f32>>;  // (C, D)
@group(0) @binding(2) var<storage, read_write> scores: array<f32>;     // (Q, C)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn candidate_scores(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.queries * p.candidates {
        return;
    }
    let c = t % p.candidates;
    let a = t / p.candidates;
    var sv = vec4<f32>(0.0);
    for (var d = 0u; d < D4; d++) {
        sv += query[a * D4 + d] * candidate[c * D4 + d];
    }
    scores[t] = (sv.x + sv.y) + (sv.z + sv.w);
}
