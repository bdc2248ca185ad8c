// Partial weight and bias gradients of a dense layer, split along the batch so that there is enough
// parallelism (split-K); adagrad_dense adds the splits up. Each invocation owns 8 input rows (k) x 16
// output columns (n) of dW for one split of the batch:
//   grad[s, W] = sum over rows i of split s of x[i, :]^T dy[i, :],   grad[s, b] = sum of dy[i, :].

struct Params {
    rows: u32,       // B
    k4: u32,         // K / 4 (multiple of 2)
    n4: u32,         // N / 4 (multiple of 4)
    split_rows: u32, // rows per split
    grad_len4: u32,  // L / 4: one split's slice of the gradient buffer holds every MLP parameter
    w_offset4: u32,  // where this layer's W starts in a slice, / 4
    b_offset4: u32,  // where this layer's b starts, / 4
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;  // (B, K)
@group(0) @binding(1) var<storage, read> dy: array<vec4<f32>>; // (B, N)
@group(0) @binding(2) var<storage, read_write> grad: array<vec4<f32>>; // (S, L)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn dense_backward_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    let n_blocks = p.n4 / 4u;
    let k_blocks = p.k4 / 2u;
    let splits = (p.rows + p.split_rows - 1u) / p.split_rows;
    if t >= n_blocks * k_blocks * splits {
        return;
    }
    let nb = t % n_blocks;
    let kb = (t / n_blocks) % k_blocks;
    let s = t / (n_blocks * k_blocks);
    let n0 = nb * 4u;
    let k0 = kb * 2u;

    var acc: array<vec4<f32>, 32>; // [kk * 4 + j]: row 4*k0 + kk of W, vec4 column n0 + j
    var bacc: array<vec4<f32>, 4>;
    let i_end = min((s + 1u) * p.split_rows, p.rows);
    for (var i = s * p.split_rows; i < i_end; i++) {
        let xa = x[i * p.k4 + k0];
        let xb = x[i * p.k4 + k0 + 1u];
        let xs = array<f32, 8>(xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w);
        for (var j = 0u; j < 4u; j++) {
            let d = dy[i * p.n4 + n0 + j];
            bacc[j] += d;
            for (var kk = 0u; kk < 8u; kk++) {
                acc[kk * 4u + j] += xs[kk] * d;
            }
        }
    }
    let base = s * p.grad_len4;
    for (var kk = 0u; kk < 8u; kk++) {
        for (var j = 0u; j < 4u; j++) {
            grad[base + p.w_offset4 + (4u * k0 + kk) * p.n4 + n0 + j] = acc[kk * 4u + j];
        }
    }
    if kb == 0u {
        for (var j = 0u; j < 4u; j++) {
            grad[base + p.b_offset4 + n0 + j] = bacc[j];
        }
    }
}
