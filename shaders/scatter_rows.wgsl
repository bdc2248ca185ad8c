// A feature tower's output rows into the table both tasks read: table[rows[i]] = y[i]. The rows of one
// batch are distinct, so no two invocations write the same element. One invocation per vec4.

struct Params {
    n: u32,    // rows
    dim4: u32, // D / 4
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> y: array<vec4<f32>>;             // (n, D)
@group(0) @binding(1) var<storage, read> rows: array<u32>;                // (n,) table row of each
@group(0) @binding(2) var<storage, read_write> table: array<vec4<f32>>;   // (V, D)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn scatter_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.n * p.dim4 {
        return;
    }
    let i = t / p.dim4;
    let k = t % p.dim4;
    table[rows[i] * p.dim4 + k] = y[t];
}
