// BruteForce top-K (TFRS's `BruteForce` index), scoring and selection fused: for each query, the K best
// candidates by dot product, best first. Ties go to the lower candidate index, so the result is exactly
// "sort by (score desc, index asc), take K" and the CPU twin can match it bit for bit. Candidates listed in
// the query's `seen` run (ascending candidate indices) are skipped (`--exclude-seen`). Slots past the
// number of eligible candidates (K larger than C minus seen) keep index 0xFFFFFFFF and score -inf.
// Embeddings must be finite (a NaN score is never selected).
//
// One invocation per query; it keeps its query in registers (four mat4x4 blocks, D <= 64). The host
// dispatches once per 64 KiB uniform window of candidates (uniform loads are ~15x cheaper than storage
// loads on CPU adapters, and every lane reads the same candidate), so no (Q, C) score matrix is written or
// read. Each query's running top-K is a binary heap with the worst entry at the root, kept in its own rows
// of the outputs between dispatches; the root stays in registers, so almost every candidate after the first
// few hundred costs one dot product and one comparison, and an insertion O(log K). The first window starts
// every heap full of sentinels (-inf, 0xFFFFFFFF), which rank below every real candidate; a last dispatch
// with no candidates heap-sorts the rows best first.
// Windows also keep each invocation under Mesa 22.3 llvmpipe's limit of 65,535 loop iterations in all (Mesa's
// LP_MAX_TGSI_LOOP_ITERATIONS): at most 4096 candidates of at most log2(K) + 1 iterations each.
// The score is computed as candidate_scores computes it, so both agree to the bit.

override D4: u32 = 8u; // D / 4, at most 16

struct Params {
    queries: u32, // Q: queries in this tile
    k: u32,       // K
    first: u32,   // first query of this tile in query_rows and seen_offsets
    c0: u32,      // first candidate of this window
    window: u32,  // candidates in this window (0: the sorting dispatch)
    start: u32,   // 1: the first window (fill the heaps with sentinels)
    finish: u32,  // 1: sort the heaps best first (after the last window)
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> query_table: array<vec4<f32>>;   // (rows, D) embedding table
@group(0) @binding(1) var<storage, read> query_rows: array<u32>;          // (all queries,) table row of each
@group(0) @binding(2) var<uniform> candidate_win: array<vec4<f32>, 4096>; // (window, D)
@group(0) @binding(3) var<storage, read> seen_offsets: array<u32>;        // (all queries + 1,) CSR into seen
@group(0) @binding(4) var<storage, read> seen: array<u32>;                // (S,) ascending candidates per query
@group(0) @binding(5) var<storage, read_write> out_index: array<u32>;     // (Q, K) this tile's rows
@group(0) @binding(6) var<storage, read_write> out_score: array<f32>;     // (Q, K)
@group(0) @binding(7) var<uniform> p: Params;

const NONE: u32 = 0xFFFFFFFFu;

fn zero_past_d(k: u32, m: mat4x4<f32>) -> mat4x4<f32> {
    let z = vec4<f32>(0.0);
    return mat4x4<f32>(
        select(z, m[0], 4u * k < D4),
        select(z, m[1], 4u * k + 1u < D4),
        select(z, m[2], 4u * k + 2u < D4),
        select(z, m[3], 4u * k + 3u < D4),
    );
}

fn query_block(row: u32, k: u32) -> mat4x4<f32> {
    let i = row * D4 + 4u * k;
    return zero_past_d(k, mat4x4<f32>(query_table[i], query_table[i + 1u], query_table[i + 2u], query_table[i + 3u]));
}

fn candidate_block(c: u32, k: u32) -> mat4x4<f32> {
    let i = c * D4 + 4u * k;
    return zero_past_d(k, mat4x4<f32>(candidate_win[i], candidate_win[i + 1u], candidate_win[i + 2u], candidate_win[i + 3u]));
}

fn mdot(a: mat4x4<f32>, b: mat4x4<f32>) -> vec4<f32> {
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3];
}

// Whether (sa, ia) ranks below (sb, ib): a lower score, or the same score and a later candidate.
fn worse(sa: f32, ia: u32, sb: f32, ib: u32) -> bool {
    return sa < sb || (sa == sb && ia > ib);
}

// Moves the entry at heap position i0 down until both children rank above it (heap of n at `base`).
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

// The first seen position of query `a` at or after candidate c0 (binary search of its ascending run).
fn first_seen_from(a: u32, c0: u32) -> u32 {
    var lo = seen_offsets[p.first + a];
    var hi = seen_offsets[p.first + a + 1u];
    while lo < hi {
        let mid = (lo + hi) / 2u;
        if seen[mid] < c0 {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return lo;
}

@compute @workgroup_size(64)
fn brute_force_top_k(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let a = gid.x + gid.y * nwg.x * 64u;
    if a >= p.queries {
        return;
    }
    let k = p.k;
    let base = a * k;
    if p.start != 0u {
        for (var j = 0u; j < k; j++) {
            out_score[base + j] = bitcast<f32>(0xFF800000u); // -inf
            out_index[base + j] = NONE;
        }
    }
    if p.window > 0u {
        let row = query_rows[p.first + a];
        let q0 = query_block(row, 0u);
        let q1 = query_block(row, 1u);
        let q2 = query_block(row, 2u);
        let q3 = query_block(row, 3u);
        var worst = out_score[base];
        var worst_index = out_index[base];
        var s = first_seen_from(a, p.c0);
        let s_end = seen_offsets[p.first + a + 1u];
        var next_seen = NONE;
        if s < s_end {
            next_seen = seen[s] - p.c0; // past the window when >= p.window
        }
        for (var c = 0u; c < p.window; c++) {
            if c == next_seen {
                s++;
                next_seen = NONE;
                if s < s_end {
                    next_seen = seen[s] - p.c0;
                }
                continue;
            }
            let v = mdot(q0, candidate_block(c, 0u)) + mdot(q1, candidate_block(c, 1u))
                + mdot(q2, candidate_block(c, 2u)) + mdot(q3, candidate_block(c, 3u));
            let score = (v.x + v.y) + (v.z + v.w);
            let index = p.c0 + c;
            if worse(worst, worst_index, score, index) {
                out_score[base] = score;
                out_index[base] = index;
                sift_down(base, k, 0u);
                worst = out_score[base];
                worst_index = out_index[base];
            }
        }
    }
    if p.finish != 0u {
        // Heap sort: the worst left goes to the end, so the rows end best first (sentinels last).
        for (var end = k; end > 1u; end--) {
            let last = end - 1u;
            let rs = out_score[base];
            let rx = out_index[base];
            out_score[base] = out_score[base + last];
            out_index[base] = out_index[base + last];
            out_score[base + last] = rs;
            out_index[base + last] = rx;
            sift_down(base, last, 0u);
        }
    }
}
