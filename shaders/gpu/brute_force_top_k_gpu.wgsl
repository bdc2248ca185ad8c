// BruteForce top-K (TFRS's `BruteForce` index) for GPUs, scoring and selection fused: one workgroup per
// query scores 256 candidates at a time (query in registers, candidates read from the table through
// candidate_rows) and keeps the K best, by (score desc, candidate index asc), so the result is exactly
// "sort, take K" and the CPU twin can match it bit for bit. Candidates in the query's `seen` run (ascending
// candidate indices) are skipped; slots past the eligible candidates get index 0xFFFFFFFF and score -inf.
// Embeddings must be finite.
//
// Selection: each candidate becomes a unique 64-bit key (order-preserving score bits, then the inverted
// index, so that ties go to the lower index). A pool of 1024 keys lives in workgroup memory (8 KiB): slots
// [0, 256) the best so far, the rest a buffer that candidates beating the current K-th best are appended to
// (integer atomic slot counter). When the buffer could overflow with the next 256, and after the last
// candidate, a bitonic sort of the pool (descending) merges them and the K-th key becomes the new bar. The
// order of appends does not matter: the sort orders unique keys, so the result is deterministic.

override D4: u32 = 8u; // D / 4, at most 16

struct Params {
    queries: u32,    // Q: queries in this dispatch
    k: u32,          // K, at most 256
    candidates: u32, // C
    first: u32,      // first query of this dispatch in query_rows and seen_offsets
}

@group(0) @binding(0) var<storage, read> query_table: array<vec4<f32>>;     // (rows, D)
@group(0) @binding(1) var<storage, read> query_rows: array<u32>;            // (all queries,)
@group(0) @binding(2) var<storage, read> candidate_table: array<vec4<f32>>; // (rows, D)
@group(0) @binding(3) var<storage, read> candidate_rows: array<u32>;        // (C,)
@group(0) @binding(4) var<storage, read> seen_offsets: array<u32>;          // (all queries + 1,) CSR
@group(0) @binding(5) var<storage, read> seen: array<u32>;                  // (S,) ascending per query
@group(0) @binding(6) var<storage, read_write> out_index: array<u32>;       // (Q, K)
@group(0) @binding(7) var<storage, read_write> out_score: array<f32>;       // (Q, K)
@group(0) @binding(8) var<uniform> p: Params;

const WG: u32 = 256u;   // invocations, and candidates scored per step
const POOL: u32 = 1024u;
const KEEP: u32 = 256u; // slots holding the best so far (K <= KEEP)
const NONE: u32 = 0xFFFFFFFFu;

var<workgroup> pool: array<vec2<u32>, 1024>; // (hi: score bits, lo: ~index); (0, 0) is the empty key
var<workgroup> fill: atomic<u32>;            // keys in the buffer
var<workgroup> filled: u32;                  // fill, read back for a uniform decision
var<workgroup> bar: vec2<u32>;               // the K-th best key so far

// Unsigned order of the keys = (score, -index) order; every real key is above (0, 0).
fn key_of(s: f32, c: u32) -> vec2<u32> {
    let b = bitcast<u32>(s);
    let hi = select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
    return vec2<u32>(hi, ~c);
}

fn score_of(hi: u32) -> f32 {
    return bitcast<f32>(select(~hi, hi & 0x7FFFFFFFu, (hi & 0x80000000u) != 0u));
}

fn above(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.x > b.x || (a.x == b.x && a.y > b.y);
}

// Whether candidate c is in the ascending run seen[lo..hi) (binary search).
fn is_seen(lo: u32, hi: u32, c: u32) -> bool {
    var l = lo;
    var h = hi;
    while l < h {
        let m = (l + h) / 2u;
        if seen[m] < c {
            l = m + 1u;
        } else {
            h = m;
        }
    }
    return l < hi && seen[l] == c;
}

// Bitonic sort of the pool, descending; each invocation handles two of the 512 pairs per stage.
fn sort_pool(t: u32) {
    for (var size = 2u; size <= POOL; size *= 2u) {
        for (var stride = size / 2u; stride > 0u; stride /= 2u) {
            for (var h = 0u; h < 2u; h++) {
                let i = t + h * WG;
                let lo = 2u * stride * (i / stride) + i % stride;
                let a = pool[lo];
                let b = pool[lo + stride];
                // Blocks with (lo & size) == 0 sort descending, the others ascending; the last is descending.
                let down = (lo & size) == 0u;
                if select(above(a, b), above(b, a), down) {
                    pool[lo] = b;
                    pool[lo + stride] = a;
                }
            }
            workgroupBarrier();
        }
    }
}

@compute @workgroup_size(256)
fn brute_force_top_k_gpu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) t: u32) {
    let a = wg.x + wg.y * nwg.x;
    if a >= p.queries {
        return;
    }
    var q: array<vec4<f32>, 16>;
    let row = query_rows[p.first + a];
    for (var j = 0u; j < D4; j++) {
        q[j] = query_table[row * D4 + j];
    }
    let seen_lo = seen_offsets[p.first + a];
    let seen_hi = seen_offsets[p.first + a + 1u];
    for (var i = t; i < POOL; i += WG) {
        pool[i] = vec2<u32>(0u);
    }
    if t == 0u {
        atomicStore(&fill, 0u);
        bar = vec2<u32>(0u);
    }
    workgroupBarrier();
    for (var c0 = 0u; c0 < p.candidates; c0 += WG) {
        let c = c0 + t;
        let threshold = bar;
        if c < p.candidates && !is_seen(seen_lo, seen_hi, c) {
            let crow = candidate_rows[c];
            var v = vec4<f32>(0.0);
            for (var j = 0u; j < D4; j++) {
                v += q[j] * candidate_table[crow * D4 + j];
            }
            let key = key_of((v.x + v.y) + (v.z + v.w), c);
            if above(key, threshold) {
                pool[KEEP + atomicAdd(&fill, 1u)] = key;
            }
        }
        workgroupBarrier();
        if t == 0u {
            filled = atomicLoad(&fill);
        }
        let n = workgroupUniformLoad(&filled);
        // Merge before the next step could overflow the buffer, and after the last candidate.
        if n > POOL - KEEP - WG || c0 + WG >= p.candidates {
            for (var i = KEEP + n + t; i < POOL; i += WG) {
                pool[i] = vec2<u32>(0u);
            }
            workgroupBarrier();
            sort_pool(t);
            if t == 0u {
                atomicStore(&fill, 0u);
                bar = pool[p.k - 1u];
            }
            workgroupBarrier();
        }
    }
    for (var j = t; j < p.k; j += WG) {
        let key = pool[j];
        let empty = key.x == 0u && key.y == 0u;
        out_index[a * p.k + j] = select(~key.y, NONE, empty);
        out_score[a * p.k + j] = select(score_of(key.x), bitcast<f32>(0xFF800000u), empty);
    }
}
