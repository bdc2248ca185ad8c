// Ranks of test pairs among all candidates, for FactorizedTopK (TFRS) and for Recall@K / NDCG@K with the
// user's training items excluded. rank_all of a pair counts the candidates scoring strictly higher than the
// pair's own movie (ties in the pair's favour, as TFRS's top-k accuracy counts them); rank_unseen counts the
// same among the candidates not excluded for the pair's user. Hit at k iff rank < k.
// One invocation handles up to eight pairs of one user (a group), so the user's row of scores is read once
// for all of them: on CPU adapters the storage loads, not the compares, are the cost. The own scores are
// read from the same score matrix as the candidates', so rounding cannot flip a comparison.
// One dispatch covers the candidates [c_begin, c_end) and adds its counts to the ranks (the first chunk
// stores them): Mesa 22.3's llvmpipe ends every loop of an invocation after 65,535 iterations in all (Mesa's
// LP_MAX_TGSI_LOOP_ITERATIONS), so one invocation must never walk a whole row of 62k+ candidates.

struct Params {
    groups: u32,     // groups in this tile
    candidates: u32, // C
    words: u32,      // u32 words per user row of `excluded`, ceil(C / 32); 0: nothing excluded
    user0: u32,      // first user of this tile in `excluded`
    c_begin: u32,    // first candidate of this chunk, a multiple of 32
    c_end: u32,      // end of this chunk
    accumulate: u32, // 0: store the counts (first chunk); 1: add them
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> scores: array<f32>;          // (Q, C) for this tile
@group(0) @binding(1) var<storage, read> groups: array<vec4<u32>>;    // (G,): tile row, first pair, pairs
@group(0) @binding(2) var<storage, read> pair_candidate: array<u32>;  // (P,) candidate of each pair's movie
@group(0) @binding(3) var<storage, read> excluded: array<u32>;        // (U, words) bit c: candidate c excluded
@group(0) @binding(4) var<storage, read_write> rank_all: array<u32>;    // (P,)
@group(0) @binding(5) var<storage, read_write> rank_unseen: array<u32>; // (P,)
@group(0) @binding(6) var<uniform> p: Params;

const NONE: f32 = 3.402823e38; // the own score of an empty slot: nothing scores higher

@compute @workgroup_size(64)
fn pair_ranks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = gid.x + gid.y * nwg.x * 64u;
    if g >= p.groups {
        return;
    }
    let grp = groups[g];
    let row = grp.x * p.candidates;
    let first = grp.y;
    let n = grp.z;
    var own: array<f32, 8>;
    for (var j = 0u; j < 8u; j++) {
        own[j] = NONE;
        if j < n {
            own[j] = scores[row + pair_candidate[first + j]];
        }
    }
    let own_lo = vec4<f32>(own[0], own[1], own[2], own[3]);
    let own_hi = vec4<f32>(own[4], own[5], own[6], own[7]);
    var all_lo = vec4<u32>(0u);
    var all_hi = vec4<u32>(0u);
    var unseen_lo = vec4<u32>(0u);
    var unseen_hi = vec4<u32>(0u);
    let one = vec4<u32>(1u);
    let zero = vec4<u32>(0u);
    let mask_row = (p.user0 + grp.x) * p.words;
    for (var c0 = p.c_begin; c0 < p.c_end; c0 += 32u) {
        var bits = 0u;
        if p.words > 0u {
            bits = excluded[mask_row + c0 / 32u];
        }
        let m = min(32u, p.c_end - c0);
        for (var b = 0u; b < m; b++) {
            let s = vec4<f32>(scores[row + c0 + b]);
            let seen = ((bits >> b) & 1u) != 0u;
            let lo = select(zero, one, s > own_lo);
            let hi = select(zero, one, s > own_hi);
            all_lo += lo;
            all_hi += hi;
            unseen_lo += select(lo, zero, seen);
            unseen_hi += select(hi, zero, seen);
        }
    }
    let all = array<u32, 8>(all_lo.x, all_lo.y, all_lo.z, all_lo.w, all_hi.x, all_hi.y, all_hi.z, all_hi.w);
    let unseen = array<u32, 8>(unseen_lo.x, unseen_lo.y, unseen_lo.z, unseen_lo.w,
                               unseen_hi.x, unseen_hi.y, unseen_hi.z, unseen_hi.w);
    for (var j = 0u; j < n; j++) {
        var before_all = 0u;
        var before_unseen = 0u;
        if p.accumulate != 0u {
            before_all = rank_all[first + j];
            before_unseen = rank_unseen[first + j];
        }
        rank_all[first + j] = before_all + all[j];
        rank_unseen[first + j] = before_unseen + unseen[j];
    }
}
