// y = act(x W + b) for a batch of rows. Each invocation owns an 8-row x 16-column block of y in registers:
// eight mat4x4 accumulators (one per row; columns = four vec4 of outputs). Named values, not arrays: CPU
// adapters spill dynamically indexed arrays. Register blocking beats shared-memory tiling on CPU adapters.

override RELU: bool = true;

struct Params {
    rows: u32, // B
    k4: u32,   // K / 4 (input width)
    n4: u32,   // N / 4 (output width, a multiple of 16)
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>; // (B, K)
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>; // (K, N)
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>; // (N,)
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>; // (B, N)
@group(0) @binding(4) var<uniform> p: Params;

// Column j of the result: W[k..k+4, vec4 column j] applied to the row's x[k..k+4].
fn fma_row(acc: mat4x4<f32>, w0: mat4x4<f32>, w1: mat4x4<f32>, w2: mat4x4<f32>, w3: mat4x4<f32>, xv: vec4<f32>) -> mat4x4<f32> {
    return acc + mat4x4<f32>(w0 * xv, w1 * xv, w2 * xv, w3 * xv);
}

fn store_row(row: u32, c0: u32, acc: mat4x4<f32>) {
    if row >= p.rows {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        var v = acc[j];
        if RELU {
            v = max(v, vec4<f32>(0.0));
        }
        y[row * p.n4 + c0 + j] = v;
    }
}

@compute @workgroup_size(64)
fn dense_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    let col_blocks = p.n4 / 4u;
    let row_blocks = (p.rows + 7u) / 8u;
    if t >= col_blocks * row_blocks {
        return;
    }
    let c0 = (t % col_blocks) * 4u;
    let r0 = (t / col_blocks) * 8u;
    // Rows past B are clamped for loading (computed, never stored).
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
    let n = p.n4;
    for (var k4 = 0u; k4 < p.k4; k4++) {
        let r = 4u * k4 * n + c0;
        // wj: vec4 output column c0 + j; its columns are W rows 4k4 .. 4k4+3.
        let w0 = mat4x4<f32>(w[r], w[r + n], w[r + 2u * n], w[r + 3u * n]);
        let w1 = mat4x4<f32>(w[r + 1u], w[r + n + 1u], w[r + 2u * n + 1u], w[r + 3u * n + 1u]);
        let w2 = mat4x4<f32>(w[r + 2u], w[r + n + 2u], w[r + 2u * n + 2u], w[r + 3u * n + 2u]);
        let w3 = mat4x4<f32>(w[r + 3u], w[r + n + 3u], w[r + 2u * n + 3u], w[r + 3u * n + 3u]);
        a0 = fma_row(a0, w0, w1, w2, w3, x[x0 + k4]);
        a1 = fma_row(a1, w0, w1, w2, w3, x[x1 + k4]);
        a2 = fma_row(a2, w0, w1, w2, w3, x[x2 + k4]);
        a3 = fma_row(a3, w0, w1, w2, w3, x[x3 + k4]);
        a4 = fma_row(a4, w0, w1, w2, w3, x[x4 + k4]);
        a5 = fma_row(a5, w0, w1, w2, w3, x[x5 + k4]);
        a6 = fma_row(a6, w0, w1, w2, w3, x[x6 + k4]);
        a7 = fma_row(a7, w0, w1, w2, w3, x[x7 + k4]);
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
