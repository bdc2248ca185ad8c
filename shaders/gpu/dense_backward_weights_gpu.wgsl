// Split-K partial weight and bias gradients of a dense layer: split s (workgroup z) sums its rows
//   grad[s, W] = sum over rows i of split s of x[i, :]^T dy[i, :],   grad[s, b] = sum of dy[i, :],
// and adagrad_dense adds the splits up in a fixed order (deterministic: no float atomics). A workgroup owns
// 64 inputs x 64 outputs of dW, each invocation a 4 x 4 block; 16 rows of x and dy pass through workgroup
// memory at a time.

struct Params {
    rows: u32,       // B
    k4: u32,         // K / 4
    n4: u32,         // N / 4
    split_rows: u32, // rows per split, a multiple of 16
    grad_len4: u32,  // L / 4: one split's slice of grad holds every MLP parameter
    w_offset4: u32,  // where this layer's W starts in a slice, / 4
    b_offset4: u32,  // and its b
    // The rest of the uniform it shares with dense_gather_backward_weights_gpu (unused here).
    _user_at: u32,
    _movie_at: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;          // (B, K)
@group(0) @binding(1) var<storage, read> dy: array<vec4<f32>>;         // (B, N)
@group(0) @binding(2) var<storage, read_write> grad: array<vec4<f32>>; // (S, L)
@group(0) @binding(3) var<uniform> p: Params;

const TR: u32 = 16u; // rows per step through workgroup memory

var<workgroup> xs: array<f32, 1024>;      // (TR, 64): x rows, the tile's inputs
var<workgroup> ds: array<vec4<f32>, 256>; // (TR, 64 / 4): dy rows, the tile's outputs

@compute @workgroup_size(256)
fn dense_backward_weights_gpu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let k0 = wg.y * 64u;          // first input of the tile
    let c = wg.x * 16u + t % 16u; // this invocation's vec4 column of dW
    let ty = t / 16u;             // and its inputs k0 + 4 ty .. k0 + 4 ty + 3
    let first = wg.z * p.split_rows;
    let end = min(first + p.split_rows, p.rows);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var bias = vec4<f32>(0.0);
    let lr = t / 16u; // the row this invocation loads
    let lq = t % 16u; // and which vec4 of the tile's part of it
    for (var r0 = first; r0 < end; r0 += TR) {
        let r = r0 + lr;
        var v = vec4<f32>(0.0);
        if r < end && k0 / 4u + lq < p.k4 {
            v = x[r * p.k4 + k0 / 4u + lq];
        }
        xs[lr * 64u + 4u * lq] = v.x;
        xs[lr * 64u + 4u * lq + 1u] = v.y;
        xs[lr * 64u + 4u * lq + 2u] = v.z;
        xs[lr * 64u + 4u * lq + 3u] = v.w;
        var d = vec4<f32>(0.0);
        if r < end && wg.x * 16u + lq < p.n4 {
            d = dy[r * p.n4 + wg.x * 16u + lq];
        }
        ds[t] = d;
        workgroupBarrier();
        for (var i = 0u; i < TR; i++) {
            let dv = ds[i * 16u + t % 16u];
            let xi = i * 64u + 4u * ty;
            acc0 += xs[xi] * dv;
            acc1 += xs[xi + 1u] * dv;
            acc2 += xs[xi + 2u] * dv;
            acc3 += xs[xi + 3u] * dv;
            bias += dv;
        }
        workgroupBarrier();
    }
    if c >= p.n4 {
        return;
    }
    let o = wg.z * p.grad_len4;
    let k = k0 + 4u * ty;
    store(o, k, c, acc0);
    store(o, k + 1u, c, acc1);
    store(o, k + 2u, c, acc2);
    store(o, k + 3u, c, acc3);
    if wg.y == 0u && ty == 0u {
        grad[o + p.b_offset4 + c] = bias;
    }
}

fn store(o: u32, k: u32, c: u32, v: vec4<f32>) {
    if k < 4u * p.k4 {
        grad[o + p.w_offset4 + k * p.n4 + c] = v;
    }
}
