// Sparse Adagrad on the embedding rows a batch touched (Keras applies IndexedSlices the same way). The
// gradient of distinct row a is the retrieval gradient of that row (already summed over its batch rows) plus
// the MLP input gradients of its batch rows, summed in a fixed order through a CSR list (deterministic; no
// float atomics). Each table row appears once per batch, so the update needs no synchronisation.
// An optional L2 penalty (l2 / 2) |row|^2 on the rows the batch touched adds l2 * row to the gradient.
// With grad_out the rows are a feature tower's outputs: the gradient of distinct row a is written to row a
// of `table` (bound to the tower's (n, D) gradient) and the tower's backward takes it from there.

struct Params {
    n: u32,          // distinct rows
    dim4: u32,       // D / 4
    dx_stride4: u32, // row length of dx / 4 (2D / 4)
    dx_offset4: u32, // this table's columns in dx / 4 (0 for users, D / 4 for movies)
    use_dense: u32,  // add grad_dense (retrieval task on)
    use_rows: u32,   // add dx rows (rating task on)
    learning_rate: f32,
    epsilon: f32,
    l2: f32,         // 0: no penalty (the tutorial)
    grad_out: u32,   // write the gradient instead of updating (accum unused)
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> grad_dense: array<vec4<f32>>; // (n, D)
@group(0) @binding(1) var<storage, read> dx: array<vec4<f32>>;         // (B, 2D)
@group(0) @binding(2) var<storage, read> offsets: array<u32>;          // (n + 1,)
@group(0) @binding(3) var<storage, read> rows: array<u32>;             // (B,)
@group(0) @binding(4) var<storage, read> table_rows: array<u32>;       // (n,) table row of each distinct row
@group(0) @binding(5) var<storage, read_write> table: array<vec4<f32>>; // (V, D)
@group(0) @binding(6) var<storage, read_write> accum: array<vec4<f32>>; // (V, D)
@group(0) @binding(7) var<uniform> p: Params;

@compute @workgroup_size(64)
fn embedding_adagrad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.n * p.dim4 {
        return;
    }
    let a = t / p.dim4;
    let d = t % p.dim4;
    var g = vec4<f32>(0.0);
    if p.use_dense != 0u {
        g = grad_dense[a * p.dim4 + d];
    }
    if p.use_rows != 0u {
        for (var r = offsets[a]; r < offsets[a + 1u]; r++) {
            g += dx[rows[r] * p.dx_stride4 + p.dx_offset4 + d];
        }
    }
    if p.grad_out != 0u {
        table[a * p.dim4 + d] = g;
        return;
    }
    let e = table_rows[a] * p.dim4 + d;
    let w = table[e];
    if p.l2 != 0.0 {
        g += p.l2 * w;
    }
    let acc = accum[e] + g * g;
    accum[e] = acc;
    table[e] = w - p.learning_rate * g / (sqrt(acc) + p.epsilon);
}
