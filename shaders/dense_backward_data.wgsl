// dx = (dy W^T) [* (h > 0)]: the gradient w.r.t. a dense layer's input, optionally through the ReLU that
// produced that input (h is the ReLU's output). Each invocation owns 8 rows x 4 input columns; both dy and
// W are read along N, so every load is a contiguous vec4.

override MASK: bool = true;

struct Params {
    rows: u32, // B
    k4: u32,   // K / 4 (input width of the layer = output width here)
    n4: u32,   // N / 4 (layer output width)
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> dy: array<vec4<f32>>; // (B, N)
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;  // (K, N)
@group(0) @binding(2) var<storage, read> h: array<vec4<f32>>;  // (B, K) ReLU output (unused without MASK)
@group(0) @binding(3) var<storage, read_write> dx: array<vec4<f32>>; // (B, K)
@group(0) @binding(4) var<uniform> p: Params;

const R: u32 = 8u;

fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(64)
fn dense_backward_data(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    let row_blocks = (p.rows + R - 1u) / R;
    if t >= p.k4 * row_blocks {
        return;
    }
    let kb = t % p.k4; // output vec4 column: input features 4kb..4kb+3
    let r0 = (t / p.k4) * R;

    var acc: array<vec4<f32>, 32>; // [r * 4 + kk]
    var dyrow: array<u32, 8>;
    for (var r = 0u; r < R; r++) {
        dyrow[r] = min(r0 + r, p.rows - 1u) * p.n4;
    }
    let wrow = 4u * kb * p.n4;
    for (var n4 = 0u; n4 < p.n4; n4++) {
        let w0 = w[wrow + n4];
        let w1 = w[wrow + p.n4 + n4];
        let w2 = w[wrow + 2u * p.n4 + n4];
        let w3 = w[wrow + 3u * p.n4 + n4];
        for (var r = 0u; r < R; r++) {
            let d = dy[dyrow[r] + n4];
            acc[r * 4u] += d * w0;
            acc[r * 4u + 1u] += d * w1;
            acc[r * 4u + 2u] += d * w2;
            acc[r * 4u + 3u] += d * w3;
        }
    }
    for (var r = 0u; r < R; r++) {
        let row = r0 + r;
        if row < p.rows {
            var v = vec4<f32>(hsum(acc[r * 4u]), hsum(acc[r * 4u + 1u]), hsum(acc[r * 4u + 2u]), hsum(acc[r * 4u + 3u]));
            if MASK {
                v = select(vec4<f32>(0.0), v, h[row * p.k4 + kb] > vec4<f32>(0.0));
            }
            dx[row * p.k4 + kb] = v;
        }
    }
}
