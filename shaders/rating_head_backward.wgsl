// Partial gradients of the rating head (w3: H2 -> 1, b3), split along the batch like dense_backward_weights:
//   grad[s, w3] = sum over rows i of split s of dpred[i] * h2[i, :],   grad[s, b3] = sum of dpred[i].
// Invocation j < H2/4 owns one vec4 of w3; invocation j == H2/4 owns b3.

struct Params {
    rows: u32,       // B
    h4: u32,         // H2 / 4
    split_rows: u32,
    grad_len4: u32,  // L / 4
    w_offset4: u32,
    b_offset4: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> h2: array<vec4<f32>>; // (B, H2)
@group(0) @binding(1) var<storage, read> dpred: array<f32>;    // (B,)
@group(0) @binding(2) var<storage, read_write> grad: array<vec4<f32>>; // (S, L)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn rating_head_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    let per_split = p.h4 + 1u;
    let splits = (p.rows + p.split_rows - 1u) / p.split_rows;
    if t >= per_split * splits {
        return;
    }
    let j = t % per_split;
    let s = t / per_split;
    let i_end = min((s + 1u) * p.split_rows, p.rows);
    var acc = vec4<f32>(0.0);
    if j < p.h4 {
        for (var i = s * p.split_rows; i < i_end; i++) {
            acc += dpred[i] * h2[i * p.h4 + j];
        }
        grad[s * p.grad_len4 + p.w_offset4 + j] = acc;
    } else {
        for (var i = s * p.split_rows; i < i_end; i++) {
            acc.x += dpred[i];
        }
        grad[s * p.grad_len4 + p.b_offset4] = acc;
    }
}
