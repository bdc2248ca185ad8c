// The backward of pooled_gather: the gradient of each distinct feature row of a batch is the sum, over the
// output rows whose entity holds it, of that row's output gradient divided by the entity's feature count.
// The host inverts the CSR once per batch (feature -> (output row, 1 / count) pairs), so each invocation sums
// its own pairs in a fixed order: no atomics, deterministic. One invocation per (distinct feature, vec4).

struct Params {
    features: u32,    // distinct feature rows in the batch
    dim4: u32,        // the field's embedding width / 4
    in_stride4: u32,  // output-gradient row length / 4
    in_offset4: u32,  // the field's first column in it / 4
}

@group(0) @binding(0) var<storage, read> dout: array<vec4<f32>>;        // (n, in_stride) tower-input gradient
@group(0) @binding(1) var<storage, read> pair_offsets: array<u32>;      // (F + 1,) CSR into the pairs
@group(0) @binding(2) var<storage, read> pair_rows: array<u32>;         // (P,) output row of each pair
@group(0) @binding(3) var<storage, read> pair_weights: array<f32>;      // (P,) 1 / the entity's feature count
@group(0) @binding(4) var<storage, read_write> dfeature: array<vec4<f32>>; // (F, Df)
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(64)
fn pooled_gather_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.features * p.dim4 {
        return;
    }
    let f = t / p.dim4;
    let k = t % p.dim4;
    var acc = vec4<f32>(0.0);
    for (var q = pair_offsets[f]; q < pair_offsets[f + 1u]; q++) {
        acc += dout[pair_rows[q] * p.in_stride4 + p.in_offset4 + k] * pair_weights[q];
    }
    dfeature[f * p.dim4 + k] = acc;
}
