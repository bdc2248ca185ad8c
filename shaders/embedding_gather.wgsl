// Embedding lookup: copies table rows into a (possibly wider) output matrix, so the same kernel builds the
// MLP input concat(user, movie) and the distinct-user / distinct-movie matrices of the retrieval task.

struct Params {
    n: u32,           // rows to gather
    dim4: u32,        // D / 4
    out_stride4: u32, // output row length / 4
    out_offset4: u32, // first output column / 4
}

@group(0) @binding(0) var<storage, read> table: array<vec4<f32>>; // (rows, D)
@group(0) @binding(1) var<storage, read> idx: array<u32>;         // (n,)
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>; // (n, out_stride)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn embedding_gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.n * p.dim4 {
        return;
    }
    let i = t / p.dim4;
    let d = t % p.dim4;
    out[i * p.out_stride4 + p.out_offset4 + d] = table[idx[i] * p.dim4 + d];
}
