// BruteForce top-K (TFRS's `BruteForce` index): for each query row of a score tile, the K best candidates,
// best first. Ties go to the lower candidate index, so the result is exactly "sort by (score desc, index
// asc), take K" and the CPU twin can match it bit for bit. Candidates listed in the query's `seen` run
// (ascending candidate indices) are skipped (`--exclude-seen`). Slots past the number of eligible
// candidates (K larger than C minus seen) keep index 0xFFFFFFFF and score -inf. Scores must not be NaN.
//
// One invocation per query; its running top-K lives in its rows of the outputs, kept sorted by shifting
// on insert, and the K-th score in a register, so the threshold test rejects almost every candidate after
// the first few hundred. (A private-array version miscomputed on lavapipe/Mesa 22.3 for K = 100.)

struct Params {
    queries: u32,    // Q: query rows in this tile
    candidates: u32, // C: row length of scores
    k: u32,          // K
    first: u32,      // first query of this tile in seen_offsets
}

@group(0) @binding(0) var<storage, read> scores: array<f32>;            // (Q, C) for this tile
@group(0) @binding(1) var<storage, read> seen_offsets: array<u32>;      // (all queries + 1,) CSR into seen
@group(0) @binding(2) var<storage, read> seen: array<u32>;              // (S,) ascending candidate indices per query
@group(0) @binding(3) var<storage, read_write> out_index: array<u32>;   // (Q, K) candidate indices, best first
@group(0) @binding(4) var<storage, read_write> out_score: array<f32>;   // (Q, K)
@group(0) @binding(5) var<uniform> p: Params;

const NONE: u32 = 0xFFFFFFFFu;

@compute @workgroup_size(64)
fn brute_force_top_k(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let a = gid.x + gid.y * nwg.x * 64u;
    if a >= p.queries {
        return;
    }
    let k = p.k;
    let out = a * p.k;
    var n = 0u; // filled slots of out_index / out_score, which hold the running top-k
    var worst = 0.0; // out_score[out + k - 1] once n == k
    var s = seen_offsets[p.first + a];
    let s_end = seen_offsets[p.first + a + 1u];
    var next_seen = NONE;
    if s < s_end {
        next_seen = seen[s];
    }
    let row = a * p.candidates;
    for (var c = 0u; c < p.candidates; c++) {
        if c == next_seen {
            s++;
            next_seen = NONE;
            if s < s_end {
                next_seen = seen[s];
            }
            continue;
        }
        let v = scores[row + c];
        // Full and not strictly better than the K-th: an equal score loses to the earlier candidate.
        if n == k && !(v > worst) {
            continue;
        }
        var j = min(n, k - 1u);
        while j > 0u && out_score[out + j - 1u] < v {
            out_score[out + j] = out_score[out + j - 1u];
            out_index[out + j] = out_index[out + j - 1u];
            j--;
        }
        out_score[out + j] = v;
        out_index[out + j] = c;
        n = min(n + 1u, k);
        worst = out_score[out + k - 1u];
    }
    for (var j = n; j < p.k; j++) {
        out_index[out + j] = NONE;
        out_score[out + j] = bitcast<f32>(0xFF800000u); // -inf
    }
}
