// BruteForce top-K (TFRS's `BruteForce` index): for each query row of a score tile, the K best candidates,
// best first. Ties go to the lower candidate index, so the result is exactly "sort by (score desc, index
// asc), take K" and the CPU twin can match it bit for bit. Candidates listed in the query's `seen` run
// (ascending candidate indices) are skipped (`--exclude-seen`). Slots past the number of eligible
// candidates (K larger than C minus seen) get index 0xFFFFFFFF and score -inf. Scores must not be NaN.
//
// One invocation per query. Its running top-K is a binary heap with the worst entry at the root, kept in
// its own rows of the outputs; the root's score stays in a register, so almost every candidate after the
// first few hundred costs one comparison, and an insertion O(log K). A heap sort at the end leaves the
// rows best first. (Keeping the top-K sorted by shifting was 8x slower at K = 100 on lavapipe; a copy in
// private arrays miscomputed there, Mesa 22.3.)

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

// Whether (sa, ia) ranks below (sb, ib): a lower score, or the same score and a later candidate.
fn worse(sa: f32, ia: u32, sb: f32, ib: u32) -> bool {
    return sa < sb || (sa == sb && ia > ib);
}

// Moves the entry at heap position i down until both children rank above it (heap of n at `base`).
fn sift_down(base: u32, n: u32, i0: u32) {
    var i = i0;
    let s = out_score[base + i];
    let x = out_index[base + i];
    loop {
        var child = 2u * i + 1u;
        if child >= n {
            break;
        }
        var cs = out_score[base + child];
        var ci = out_index[base + child];
        let right = child + 1u;
        if right < n {
            let rs = out_score[base + right];
            let ri = out_index[base + right];
            if worse(rs, ri, cs, ci) {
                child = right;
                cs = rs;
                ci = ri;
            }
        }
        if !worse(cs, ci, s, x) {
            break;
        }
        out_score[base + i] = cs;
        out_index[base + i] = ci;
        i = child;
    }
    out_score[base + i] = s;
    out_index[base + i] = x;
}

// Places (s, x) at heap position i0 and moves it up while it ranks below its parent.
fn sift_up(base: u32, i0: u32, s: f32, x: u32) {
    var i = i0;
    loop {
        if i == 0u {
            break;
        }
        let parent = (i - 1u) / 2u;
        let ps = out_score[base + parent];
        let px = out_index[base + parent];
        if !worse(s, x, ps, px) {
            break;
        }
        out_score[base + i] = ps;
        out_index[base + i] = px;
        i = parent;
    }
    out_score[base + i] = s;
    out_index[base + i] = x;
}

@compute @workgroup_size(64)
fn brute_force_top_k(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let a = gid.x + gid.y * nwg.x * 64u;
    if a >= p.queries {
        return;
    }
    let k = p.k;
    let base = a * k;
    var n = 0u;       // entries in the heap
    var worst = 0.0;  // the root's score once n == k
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
        if n < k {
            sift_up(base, n, v, c);
            n++;
            worst = out_score[base];
        } else if v > worst {
            // Strictly better than the root: an equal score loses to the root's earlier candidate.
            out_score[base] = v;
            out_index[base] = c;
            sift_down(base, k, 0u);
            worst = out_score[base];
        }
    }
    // Heap sort: the worst left goes to the end, so the rows end best first.
    for (var end = n; end > 1u; end--) {
        let last = end - 1u;
        let rs = out_score[base];
        let rx = out_index[base];
        out_score[base] = out_score[base + last];
        out_index[base] = out_index[base + last];
        out_score[base + last] = rs;
        out_index[base + last] = rx;
        sift_down(base, last, 0u);
    }
    for (var j = n; j < k; j++) {
        out_index[base + j] = NONE;
        out_score[base + j] = bitcast<f32>(0xFF800000u); // -inf
    }
}
