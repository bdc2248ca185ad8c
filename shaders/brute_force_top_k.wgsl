// BruteForce top-K (TFRS's `BruteForce` index), scoring and selection fused: for each query, the K best
// candidates by dot product, best first. Ties go to the lower candidate index, so the result is exactly
// "sort by (score desc, index asc), take K" and the CPU twin can match it bit for bit. Candidates listed in
// the query's `seen` run (ascending positions in the norm order below) are skipped (`--exclude-seen`). Slots past the
// number of eligible candidates (K larger than C minus seen) keep index 0xFFFFFFFF and score -inf.
// Embeddings must be finite (a NaN score is never selected).
//
// One invocation per query; it keeps its query in registers (four mat4x4 blocks, D <= 64). The host
// dispatches once per 64 KiB uniform window of candidates (uniform loads are ~15x cheaper than storage
// loads on CPU adapters, and every lane reads the same candidate), so no (Q, C) score matrix is written or
// read. Each query's running top-K is a binary heap with the worst entry at the root, kept in its row of
// `heap` between dispatches as (score bits, index) pairs, so a step down the heap is two 8-byte loads; the
// root stays in registers, so almost every candidate after the first few hundred costs one dot product and
// one comparison, and an insertion O(log K). The first window starts every heap full of sentinels (-inf,
// 0xFFFFFFFF), which rank below every real candidate. The first K candidates fill the heap from its last
// slot backwards, each sifted down only below its own slot (Floyd's heap construction, online: O(K) in
// all, where inserting each at the root cost K log K); the sentinels stay a prefix, so a window finds how
// far the filling got by binary search. A last dispatch with no candidates heap-sorts each row best first
// into the outputs.
// Windows also keep each invocation under Mesa 22.3 llvmpipe's limit of 65,535 loop iterations in all (Mesa's
// LP_MAX_TGSI_LOOP_ITERATIONS): at most 4096 candidates of at most log2(K) + 1 iterations each.
// The score is computed as candidate_scores computes it, so both agree to the bit.
//
// The host orders the candidates by embedding norm, largest first, and `meta_win` gives each position's
// norm and original index (exclusions come in positions; the heap holds original indices, so ties still go
// to the lower original index). Good candidates then tend to come early, so the heap's root rises quickly
// and later candidates rarely enter; and since |q . c| <= |q| |c|, once |q| times the next norm (with a
// margin for rounding) falls below the root's score no later candidate can enter: the query stops.

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
@group(0) @binding(4) var<storage, read> seen: array<u32>;                // (S,) ascending positions per query
@group(0) @binding(5) var<storage, read_write> heap: array<vec2<u32>>;    // (Q, K) (score bits, index)
@group(0) @binding(6) var<storage, read_write> out_index: array<u32>;     // (Q, K) this tile's rows
@group(0) @binding(7) var<storage, read_write> out_score: array<f32>;     // (Q, K)
@group(0) @binding(8) var<uniform> meta_win: array<vec4<u32>, 4096>;     // this window's (norm bits, index) pairs
@group(0) @binding(9) var<uniform> p: Params;

// (norm bits, original index) of the window's candidate c, two per vec4.
fn candidate_info(c: u32) -> vec2<u32> {
    let v = meta_win[c / 2u];
    return select(v.xy, v.zw, (c & 1u) == 1u);
}

// |q| |c| (1 + BOUND_MARGIN) bounds every computed score q . c, rounding included (f32 dot products of
// D <= 64 terms are off by far less than 1e-4 relative to |q| |c|).
const BOUND_MARGIN: f32 = 1e-4;

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

// Whether entry a ranks below entry b: a lower score, or the same score and a later candidate.
fn worse(a: vec2<u32>, b: vec2<u32>) -> bool {
    let sa = bitcast<f32>(a.x);
    let sb = bitcast<f32>(b.x);
    return sa < sb || (sa == sb && a.y > b.y);
}

// Moves the entry at heap position i0 down until both children rank above it (heap of n at `base`).
fn sift_down(base: u32, n: u32, i0: u32) {
    var i = i0;
    let e = heap[base + i];
    loop {
        var child = 2u * i + 1u;
        if child >= n {
            break;
        }
        var c = heap[base + child];
        if child + 1u < n {
            let r = heap[base + child + 1u];
            if worse(r, c) {
                child += 1u;
                c = r;
            }
        }
        if !worse(c, e) {
            break;
        }
        heap[base + i] = c;
        i = child;
    }
    heap[base + i] = e;
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
    let sentinel = vec2<u32>(0xFF800000u, NONE); // (-inf, none)
    if p.start != 0u {
        for (var j = 0u; j < k; j++) {
            heap[base + j] = sentinel;
        }
    }
    if p.window > 0u {
        let row = query_rows[p.first + a];
        let q0 = query_block(row, 0u);
        let q1 = query_block(row, 1u);
        let q2 = query_block(row, 2u);
        let q3 = query_block(row, 3u);
        // Slots [0, free) still hold sentinels; the filling goes on at free - 1.
        var lo = 0u;
        var hi = k;
        while lo < hi {
            let mid = (lo + hi) / 2u;
            if heap[base + mid].y == NONE {
                lo = mid + 1u;
            } else {
                hi = mid;
            }
        }
        var free = lo;
        var worst = heap[base];
        let qv = mdot(q0, q0) + mdot(q1, q1) + mdot(q2, q2) + mdot(q3, q3);
        let q_norm = sqrt((qv.x + qv.y) + (qv.z + qv.w)) * (1.0 + BOUND_MARGIN);
        var s = first_seen_from(a, p.c0);
        let s_end = seen_offsets[p.first + a + 1u];
        var next_seen = NONE;
        if s < s_end {
            next_seen = seen[s] - p.c0; // past the window when >= p.window
        }
        for (var c = 0u; c < p.window; c++) {
            let info = candidate_info(c);
            if free == 0u && q_norm * bitcast<f32>(info.x) < bitcast<f32>(worst.x) {
                break; // this and every later candidate score below the root
            }
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
            let e = vec2<u32>(bitcast<u32>((v.x + v.y) + (v.z + v.w)), info.y);
            if free > 0u {
                free--;
                heap[base + free] = e;
                sift_down(base, k, free);
                worst = heap[base];
            } else if worse(worst, e) {
                heap[base] = e;
                sift_down(base, k, 0u);
                worst = heap[base];
            }
        }
    }
    if p.finish != 0u {
        // Heap sort: the worst left goes to the end, so the rows end best first (sentinels last).
        for (var end = k; end > 1u; end--) {
            let last = end - 1u;
            let root = heap[base];
            heap[base] = heap[base + last];
            heap[base + last] = root;
            sift_down(base, last, 0u);
        }
        for (var j = 0u; j < k; j++) {
            let e = heap[base + j];
            out_score[base + j] = bitcast<f32>(e.x);
            out_index[base + j] = e.y;
        }
    }
}
