// Adagrad (Keras semantics) on every MLP parameter at once: the gradient is the sum of the batch splits,
// then acc += g^2; w -= lr * g / (sqrt(acc) + eps).

struct Params {
    len4: u32,   // L / 4
    splits: u32, // S used by this batch
    learning_rate: f32,
    epsilon: f32,
}

@group(0) @binding(0) var<storage, read> grad: array<vec4<f32>>;          // (S, L)
@group(0) @binding(1) var<storage, read_write> param: array<vec4<f32>>;   // (L,)
@group(0) @binding(2) var<storage, read_write> accum: array<vec4<f32>>;   // (L,)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn adagrad_dense(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 64u;
    if e >= p.len4 {
        return;
    }
    var g = vec4<f32>(0.0);
    for (var s = 0u; s < p.splits; s++) {
        g += grad[s * p.len4 + e];
    }
    let a = accum[e] + g * g;
    accum[e] = a;
    param[e] -= p.learning_rate * g / (sqrt(a) + p.epsilon);
}
