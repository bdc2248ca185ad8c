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

// The accumulators of an invocation: rows r0 .. r0+7, each a mat4x4 of four vec4 output columns.
struct Acc {
    a0: mat4x4<f32>,
    a1: mat4x4<f32>,
    a2: mat4x4<f32>,
    a3: mat4x4<f32>,
    a4: mat4x4<f32>,
    a5: mat4x4<f32>,
    a6: mat4x4<f32>,
    a7: mat4x4<f32>,
}

// Adds x[rows, 4 k] W[4 k, 16 columns] given the four W rows as matrices (column j = vec4 column j).
fn update(acc: Acc, m0: mat4x4<f32>, m1: mat4x4<f32>, m2: mat4x4<f32>, m3: mat4x4<f32>, x: array<vec4<f32>, 8>) -> Acc {
    var a = acc;
    a.a0 += m0 * x[0].x + m1 * x[0].y + m2 * x[0].z + m3 * x[0].w;
    a.a1 += m0 * x[1].x + m1 * x[1].y + m2 * x[1].z + m3 * x[1].w;
    a.a2 += m0 * x[2].x + m1 * x[2].y + m2 * x[2].z + m3 * x[2].w;
    a.a3 += m0 * x[3].x + m1 * x[3].y + m2 * x[3].z + m3 * x[3].w;
    a.a4 += m0 * x[4].x + m1 * x[4].y + m2 * x[4].z + m3 * x[4].w;
    a.a5 += m0 * x[5].x + m1 * x[5].y + m2 * x[5].z + m3 * x[5].w;
    a.a6 += m0 * x[6].x + m1 * x[6].y + m2 * x[6].z + m3 * x[6].w;
    a.a7 += m0 * x[7].x + m1 * x[7].y + m2 * x[7].z + m3 * x[7].w;
    return a;
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
    var acc = Acc(bias, bias, bias, bias, bias, bias, bias, bias);
    let n = p.n4;
    // Two loops, one per weight window, rather than a branch per load: CPU adapters run both sides of a
    // branch.
    for (var k4 = 0u; k4 < p.k4_lo; k4++) {
        let xs = array<vec4<f32>, 8>(x_win[x0 + k4], x_win[x1 + k4], x_win[x2 + k4], x_win[x3 + k4],
                                     x_win[x4 + k4], x_win[x5 + k4], x_win[x6 + k4], x_win[x7 + k4]);
        let r = 4u * k4 * n + c0;
        let m0 = mat4x4<f32>(w_lo[r], w_lo[r + 1u], w_lo[r + 2u], w_lo[r + 3u]);
        let m1 = mat4x4<f32>(w_lo[r + n], w_lo[r + n + 1u], w_lo[r + n + 2u], w_lo[r + n + 3u]);
        let m2 = mat4x4<f32>(w_lo[r + 2u * n], w_lo[r + 2u * n + 1u], w_lo[r + 2u * n + 2u], w_lo[r + 2u * n + 3u]);
        let m3 = mat4x4<f32>(w_lo[r + 3u * n], w_lo[r + 3u * n + 1u], w_lo[r + 3u * n + 2u], w_lo[r + 3u * n + 3u]);
        acc = update(acc, m0, m1, m2, m3, xs);
    }
    for (var k4 = p.k4_lo; k4 < p.k4; k4++) {
        let xs = array<vec4<f32>, 8>(x_win[x0 + k4], x_win[x1 + k4], x_win[x2 + k4], x_win[x3 + k4],
                                     x_win[x4 + k4], x_win[x5 + k4], x_win[x6 + k4], x_win[x7 + k4]);
        let r = 4u * (k4 - p.k4_lo) * n + c0;
        let m0 = mat4x4<f32>(w_hi[r], w_hi[r + 1u], w_hi[r + 2u], w_hi[r + 3u]);
        let m1 = mat4x4<f32>(w_hi[r + n], w_hi[r + n + 1u], w_hi[r + n + 2u], w_hi[r + n + 3u]);
        let m2 = mat4x4<f32>(w_hi[r + 2u * n], w_hi[r + 2u * n + 1u], w_hi[r + 2u * n + 2u], w_hi[r + 2u * n + 3u]);
        let m3 = mat4x4<f32>(w_hi[r + 3u * n], w_hi[r + 3u * n + 1u], w_hi[r + 3u * n + 2u], w_hi[r + 3u * n + 3u]);
        acc = update(acc, m0, m1, m2, m3, xs);
    }
    store_row(r0, c0, acc.a0);
    store_row(r0 + 1u, c0, acc.a1);
    store_row(r0 + 2u, c0, acc.a2);
    store_row(r0 + 3u, c0, acc.a3);
    store_row(r0 + 4u, c0, acc.a4);
    store_row(r0 + 5u, c0, acc.a5);
    store_row(r0 + 6u, c0, acc.a6);
    store_row(r0 + 7u, c0, acc.a7);
}
