// Partial weight and bias gradients of a dense layer over one split of the batch, which is up to four
// windows of rows; adagrad_dense adds the splits up:
//   grad[s, W] = sum over rows i of split s of x[i, :]^T dy[i, :],   grad[s, b] = sum of dy[i, :].
// x and dy are read through 64 KiB uniform windows (see dense_forward for why), window j holding rows
// [j R, (j + 1) R) of the split for both. Each invocation owns 8 rows (k) x 16 columns (n) of dW: eight
// mat4x4 accumulators, one per k, whose columns are four vec4 of n.

struct Params {
    rows: u32,        // rows in this split (at most 4 R)
    k4: u32,          // K / 4 (multiple of 2)
    n4: u32,          // N / 4 (multiple of 4)
    window_rows: u32, // R: rows per window
    grad_len4: u32,   // L / 4: one split's slice of the gradient buffer holds every MLP parameter
    w_offset4: u32,   // where this layer's W starts in a slice, / 4
    b_offset4: u32,   // where this layer's b starts, / 4
    split: u32,       // s
}

@group(0) @binding(0) var<uniform> x0: array<vec4<f32>, 4096>;  // (R, K) windows of x
@group(0) @binding(1) var<uniform> x1: array<vec4<f32>, 4096>;
@group(0) @binding(2) var<uniform> x2: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<uniform> x3: array<vec4<f32>, 4096>;
@group(0) @binding(4) var<uniform> dy0: array<vec4<f32>, 4096>; // (R, N) windows of dy, same rows
@group(0) @binding(5) var<uniform> dy1: array<vec4<f32>, 4096>;
@group(0) @binding(6) var<uniform> dy2: array<vec4<f32>, 4096>;
@group(0) @binding(7) var<uniform> dy3: array<vec4<f32>, 4096>;
@group(0) @binding(8) var<storage, read_write> grad: array<vec4<f32>>; // (S, L)
@group(0) @binding(9) var<uniform> p: Params;

struct Acc {
    k0: mat4x4<f32>,
    k1: mat4x4<f32>,
    k2: mat4x4<f32>,
    k3: mat4x4<f32>,
    k4: mat4x4<f32>,
    k5: mat4x4<f32>,
    k6: mat4x4<f32>,
    k7: mat4x4<f32>,
    bias: mat4x4<f32>,
}

// One row's contribution: dy row block d (four vec4 of n) times the row's 8 x values.
fn accumulate(a: Acc, d: mat4x4<f32>, xa: vec4<f32>, xb: vec4<f32>) -> Acc {
    return Acc(
        a.k0 + d * xa.x,
        a.k1 + d * xa.y,
        a.k2 + d * xa.z,
        a.k3 + d * xa.w,
        a.k4 + d * xb.x,
        a.k5 + d * xb.y,
        a.k6 + d * xb.z,
        a.k7 + d * xb.w,
        a.bias + d,
    );
}

@compute @workgroup_size(64)
fn dense_backward_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    let n_blocks = p.n4 / 4u;
    if t >= n_blocks * (p.k4 / 2u) {
        return;
    }
    let n0 = (t % n_blocks) * 4u;
    let kb = t / n_blocks; // x vec4s 2kb, 2kb + 1: k = 8kb .. 8kb + 7
    var a: Acc;
    // One loop per window (not a switch per load: CPU adapters run every case of a switch).
    let r = p.window_rows;
    let xi = 2u * kb;
    for (var i = 0u; i < min(p.rows, r); i++) {
        let j = i * p.n4 + n0;
        a = accumulate(a, mat4x4<f32>(dy0[j], dy0[j + 1u], dy0[j + 2u], dy0[j + 3u]), x0[i * p.k4 + xi], x0[i * p.k4 + xi + 1u]);
    }
    for (var i = 0u; i + r < min(p.rows, 2u * r); i++) {
        let j = i * p.n4 + n0;
        a = accumulate(a, mat4x4<f32>(dy1[j], dy1[j + 1u], dy1[j + 2u], dy1[j + 3u]), x1[i * p.k4 + xi], x1[i * p.k4 + xi + 1u]);
    }
    for (var i = 0u; i + 2u * r < min(p.rows, 3u * r); i++) {
        let j = i * p.n4 + n0;
        a = accumulate(a, mat4x4<f32>(dy2[j], dy2[j + 1u], dy2[j + 2u], dy2[j + 3u]), x2[i * p.k4 + xi], x2[i * p.k4 + xi + 1u]);
    }
    for (var i = 0u; i + 3u * r < p.rows; i++) {
        let j = i * p.n4 + n0;
        a = accumulate(a, mat4x4<f32>(dy3[j], dy3[j + 1u], dy3[j + 2u], dy3[j + 3u]), x3[i * p.k4 + xi], x3[i * p.k4 + xi + 1u]);
    }
    let o = p.split * p.grad_len4 + p.w_offset4 + 8u * kb * p.n4 + n0;
    let n = p.n4;
    for (var j = 0u; j < 4u; j++) {
        grad[o + j] = a.k0[j];
        grad[o + n + j] = a.k1[j];
        grad[o + 2u * n + j] = a.k2[j];
        grad[o + 3u * n + j] = a.k3[j];
        grad[o + 4u * n + j] = a.k4[j];
        grad[o + 5u * n + j] = a.k5[j];
        grad[o + 6u * n + j] = a.k6[j];
        grad[o + 7u * n + j] = a.k7[j];
    }
    if kb == 0u {
        for (var j = 0u; j < 4u; j++) {
            grad[p.split * p.grad_len4 + p.b_offset4 + n0 + j] = a.bias[j];
        }
    }
}
