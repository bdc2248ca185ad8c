// Brute-force scores of a tile of queries against one window of candidates: scores[a, c0 + c] = q_a . k_c.
// Used by FactorizedTopK evaluation. The candidates are read through a 64 KiB uniform window (storage
// loads are ~15x slower than uniform loads on CPU adapters); each invocation keeps its query in registers
// (four mat4x4 blocks, D <= 64) and scores 16 candidates with it.

override D4: u32 = 8u; // D / 4, at most 16

struct Params {
    queries: u32,    // rows in this tile
    candidates: u32, // C: row length of scores
    c0: u32,         // first candidate of this window
    window: u32,     // candidates in this window
}

@group(0) @binding(0) var<storage, read> query: array<vec4<f32>>;         // (Q, D)
@group(0) @binding(1) var<uniform> candidate_win: array<vec4<f32>, 4096>; // (window, D)
@group(0) @binding(2) var<storage, read_write> scores: array<f32>;        // (Q, C)
@group(0) @binding(3) var<uniform> p: Params;

fn zero_past_d(k: u32, m: mat4x4<f32>) -> mat4x4<f32> {
    let z = vec4<f32>(0.0);
    return mat4x4<f32>(
        select(z, m[0], 4u * k < D4),
        select(z, m[1], 4u * k + 1u < D4),
        select(z, m[2], 4u * k + 2u < D4),
        select(z, m[3], 4u * k + 3u < D4),
    );
}

fn query_block(a: u32, k: u32) -> mat4x4<f32> {
    let i = a * D4 + 4u * k;
    return zero_past_d(k, mat4x4<f32>(query[i], query[i + 1u], query[i + 2u], query[i + 3u]));
}

fn candidate_block(c: u32, k: u32) -> mat4x4<f32> {
    let i = c * D4 + 4u * k;
    return zero_past_d(k, mat4x4<f32>(candidate_win[i], candidate_win[i + 1u], candidate_win[i + 2u], candidate_win[i + 3u]));
}

fn mdot(a: mat4x4<f32>, b: mat4x4<f32>) -> vec4<f32> {
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3];
}

@compute @workgroup_size(64)
fn candidate_scores(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    let blocks = (p.window + 15u) / 16u;
    let a = t / blocks;
    if a >= p.queries {
        return;
    }
    let first = (t % blocks) * 16u;
    let q0 = query_block(a, 0u);
    let q1 = query_block(a, 1u);
    let q2 = query_block(a, 2u);
    let q3 = query_block(a, 3u);
    for (var c = first; c < min(first + 16u, p.window); c++) {
        let v = mdot(q0, candidate_block(c, 0u)) + mdot(q1, candidate_block(c, 1u))
            + mdot(q2, candidate_block(c, 2u)) + mdot(q3, candidate_block(c, 3u));
        scores[a * p.candidates + p.c0 + c] = (v.x + v.y) + (v.z + v.w);
    }
}
