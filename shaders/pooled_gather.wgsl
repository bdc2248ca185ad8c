// Mean-pooled multi-hot lookup for feature towers: output row i gets the mean of the feature-table rows
// that entity entity[i] holds (a CSR of feature rows per entity), written at a column offset of a wider
// output, so one dispatch per field fills its block of a tower input concat(id embedding, field means).
// An entity without features gets zeros. One invocation per output vec4.

struct Params {
    n: u32,           // output rows
    dim4: u32,        // the field's embedding width / 4
    out_stride4: u32, // output row length / 4
    out_offset4: u32, // first output column / 4
}

@group(0) @binding(0) var<storage, read> table: array<vec4<f32>>;      // (V, Df) the field's embeddings
@group(0) @binding(1) var<storage, read> offsets: array<u32>;          // (E + 1,) CSR into ids
@group(0) @binding(2) var<storage, read> ids: array<u32>;              // (nnz,) feature rows per entity
@group(0) @binding(3) var<storage, read> entity: array<u32>;           // (n,) entity row of each output row
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;  // (n, out_stride)
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(64)
fn pooled_gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.n * p.dim4 {
        return;
    }
    let i = t / p.dim4;
    let k = t % p.dim4;
    let e = entity[i];
    let lo = offsets[e];
    let hi = offsets[e + 1u];
    var acc = vec4<f32>(0.0);
    for (var j = lo; j < hi; j++) {
        acc += table[ids[j] * p.dim4 + k];
    }
    var mean = vec4<f32>(0.0);
    if hi > lo {
        mean = acc / f32(hi - lo);
    }
    out[i * p.out_stride4 + p.out_offset4 + k] = mean;
}
