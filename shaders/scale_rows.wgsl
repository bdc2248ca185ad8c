// x *= scale in place over the first n4 vec4s: with --temperature T the retrieval task's distinct user rows
// are divided by T after their gather, so every logit u . m becomes u . m / T and the distinct-rows
// softmax kernels run unchanged (see kernels/windowed/retrieval.rs for the gradients).

struct Params {
    n4: u32,    // vec4s to scale: rows * D / 4
    scale: f32, // 1 / T
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<vec4<f32>>; // (rows, D)
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(64)
fn scale_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if i >= p.n4 {
        return;
    }
    x[i] = x[i] * p.scale;
}
