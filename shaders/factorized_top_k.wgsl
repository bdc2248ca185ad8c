// FactorizedTopK accuracy (TFRS): a test pair is a hit at k when fewer than k candidates score strictly
// higher than the pair's own movie. The own score is read from the same score matrix as the candidates',
// so both come from identical arithmetic and rounding cannot flip a hit.

struct Params {
    pairs: u32,      // pairs in this tile
    candidates: u32, // C
    n_ks: u32,       // how many cut-offs are used in ks
    first: u32,      // first pair of this tile in pair_query / pair_candidate
    ks: array<vec4<u32>, 2>, // cut-offs, e.g. 1, 5, 10, 50, 100
}

@group(0) @binding(0) var<storage, read> scores: array<f32>;        // (Q, C) for this tile
@group(0) @binding(1) var<storage, read> pair_query: array<u32>;    // (P,) row of the pair's user in its tile
@group(0) @binding(2) var<storage, read> pair_candidate: array<u32>; // (P,) candidate index of the pair's movie
@group(0) @binding(3) var<storage, read_write> hits: array<atomic<u32>>; // (8,) hits per cut-off
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn factorized_top_k(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if i >= p.pairs {
        return;
    }
    let row = pair_query[p.first + i] * p.candidates;
    let own = scores[row + pair_candidate[p.first + i]];
    var higher = 0u;
    for (var c = 0u; c < p.candidates; c++) {
        higher += select(0u, 1u, scores[row + c] > own);
    }
    for (var j = 0u; j < p.n_ks; j++) {
        if higher < p.ks[j / 4u][j % 4u] {
            atomicAdd(&hits[j], 1u);
        }
    }
}
