// y = act(x W + b) for one window of rows. Every operand is read through 64 KiB uniform windows: on CPU
// adapters (lavapipe) a storage-buffer load costs ~15x a uniform load and ~50x a vec4 multiply-add, so
// the host dispatches once per window of rows (x_win), and W (K, N) is split by rows into two windows:
// rows [0, K_lo) in w_lo, [K_lo, K) in w_hi. Each invocation owns an 8-row x 16-column block of y held in
// eight mat4x4 accumulators (named values, so they stay in registers rather than a spilled array).

override RELU: bool = true;

struct Params {
    rows: u32,  // rows in this window
    k4: u32,    // K / 4 (input width)
    n4: u32,    // N / 4 (output width, a multiple of 4)
    k4_lo: u32, // K_lo / 4: rows of W in w_lo
    row0: u32,  // first row of this window in y
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> x_win: array<vec4<f32>, 4096>; // (rows, K) window of x
@group(0) @binding(1) var<uniform> w_lo: array<vec4<f32>, 4096>;  // (K_lo, N)
@group(0) @binding(2) var<uniform> w_hi: array<vec4<f32>, 4096>;  // (K - K_lo, N)
@group(0) @binding(3) var<uniform> b: array<vec4<f32>, 64>;       // (N,), N <= 256
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>; // (B, N)
@group(0) @binding(5) var<uniform> p: Params;

// W[k, vec4 columns i .. i+3] as a matrix (column j = vec4 column i + j).
fn w_block(hi: bool, i: u32) -> mat4x4<f32> {
    if hi {
        return mat4x4<f32>(w_hi[i], w_hi[i + 1u], w_hi[i + 2u], w_hi[i + 3u]);
    }
    return mat4x4<f32>(w_lo[i], w_lo[i + 1u], w_lo[i + 2u], w_lo[i + 3u]);
}

fn store_row(r: u32, c0: u32, acc: mat4x4<f32>) {
    if r >= p.rows {
        return;
    }
    let o = (p.row0 + r) * p.n4 + c0;
    for (var j = 0u; j < 4u; j++) {
        var v = acc[j];
        if RELU {
            v = max(v, vec4<f32>(0.0));
        }
        y[o + j] = v;
    }
}

@compute @workgroup_size(64)
fn dense_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    let col_blocks = p.n4 / 4u;
    let r0 = (t / col_blocks) * 8u;
    if r0 >= p.rows {
        return;
    }
    let c0 = (t % col_blocks) * 4u;
    // Rows past the window's end read clamped rows and are never stored.
    let last = p.rows - 1u;
    let x0 = min(r0, last) * p.k4;
    let x1 = min(r0 + 1u, last) * p.k4;
    let x2 = min(r0 + 2u, last) * p.k4;
    let x3 = min(r0 + 3u, last) * p.k4;
    let x4 = min(r0 + 4u, last) * p.k4;
    let x5 = min(r0 + 5u, last) * p.k4;
    let x6 = min(r0 + 6u, last) * p.k4;
    let x7 = min(r0 + 7u, last) * p.k4;
    let bias = mat4x4<f32>(b[c0], b[c0 + 1u], b[c0 + 2u], b[c0 + 3u]);
    var a0 = bias;
    var a1 = bias;
    var a2 = bias;
    var a3 = bias;
    var a4 = bias;
    var a5 = bias;
    var a6 = bias;
    var a7 = bias;
    for (var k4 = 0u; k4 < p.k4; k4++) {
        let v0 = x_win[x0 + k4];
        let v1 = x_win[x1 + k4];
        let v2 = x_win[x2 + k4];
        let v3 = x_win[x3 + k4];
        let v4 = x_win[x4 + k4];
        let v5 = x_win[x5 + k4];
        let v6 = x_win[x6 + k4];
        let v7 = x_win[x7 + k4];
        let hi = k4 >= p.k4_lo;
        let base = 4u * select(k4, k4 - p.k4_lo, hi) * p.n4 + c0;
        for (var kk = 0u; kk < 4u; kk++) {
            let m = w_block(hi, base + kk * p.n4);
            a0 += m * v0[kk];
            a1 += m * v1[kk];
            a2 += m * v2[kk];
            a3 += m * v3[kk];
            a4 += m * v4[kk];
            a5 += m * v5[kk];
            a6 += m * v6[kk];
            a7 += m * v7[kk];
        }
    }
    store_row(r0, c0, a0);
    store_row(r0 + 1u, c0, a1);
    store_row(r0 + 2u, c0, a2);
    store_row(r0 + 3u, c0, a3);
    store_row(r0 + 4u, c0, a4);
    store_row(r0 + 5u, c0, a5);
    store_row(r0 + 6u, c0, a6);
    store_row(r0 + 7u, c0, a7);
}
