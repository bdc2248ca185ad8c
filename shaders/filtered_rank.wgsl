// Rank of each test pair's own movie among the candidates its user has not seen in training: the number of
// non-excluded candidates that score strictly higher (ties in the pair's favour, as factorized_top_k).
// Recall@K and NDCG@K with training items excluded follow exactly on the host: the pair is in the user's
// top K iff rank < K, at position rank. The mask also excludes duplicate u.item rows of one title.

struct Params {
    pairs: u32,      // pairs in this tile
    candidates: u32, // C
    first: u32,      // first pair of this tile in pair_query / pair_candidate / rank
    words: u32,      // u32 words per user row of `excluded`: ceil(C / 32)
    user0: u32,      // first user of this tile in `excluded`
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> scores: array<f32>;         // (Q, C) for this tile
@group(0) @binding(1) var<storage, read> pair_query: array<u32>;     // (P,) row of the pair's user in its tile
@group(0) @binding(2) var<storage, read> pair_candidate: array<u32>; // (P,) candidate index of the pair's movie
@group(0) @binding(3) var<storage, read> excluded: array<u32>;       // (U, words) bit c: candidate c excluded
@group(0) @binding(4) var<storage, read_write> rank: array<u32>;     // (P,)
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(64)
fn filtered_rank(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if i >= p.pairs {
        return;
    }
    let q = pair_query[p.first + i];
    let row = q * p.candidates;
    let mask_row = (p.user0 + q) * p.words;
    let own = scores[row + pair_candidate[p.first + i]];
    var higher = 0u;
    for (var w = 0u; w < p.words; w++) {
        let bits = excluded[mask_row + w];
        let c0 = 32u * w;
        let n = min(32u, p.candidates - c0);
        for (var b = 0u; b < n; b++) {
            let counts = scores[row + c0 + b] > own && ((bits >> b) & 1u) == 0u;
            higher += select(0u, 1u, counts);
        }
    }
    rank[p.first + i] = higher;
}
