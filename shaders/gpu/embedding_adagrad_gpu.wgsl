// Sparse Adagrad on the embedding rows a batch touched, with the gradient scatter fused in: the gradient of
// distinct row a is its P retrieval partials (retrieval_grads_gpu), added in part order, plus the MLP input
// gradients dx of its batch rows, added in the fixed order of its CSR list (deterministic; no float
// atomics), plus the optional L2 term l2 * row. Each table row appears once per batch, so the update needs
// no synchronisation. One invocation per vec4 of a distinct row. With grad_out the rows are a feature
// tower's outputs: the gradient is written to row a of `table` (the tower's (n, D) gradient) instead.

struct Params {
    n: u32,          // distinct rows
    dim4: u32,       // D / 4
    parts: u32,      // P: retrieval partials per row
    dx_stride4: u32, // row length of dx / 4 (2D / 4)
    dx_offset4: u32, // this table's columns in dx / 4 (0 for users, D / 4 for movies)
    use_dense: u32,  // add the retrieval partials (retrieval task on)
    use_rows: u32,   // add dx rows (rating task on)
    learning_rate: f32,
    epsilon: f32,
    l2: f32,         // 0: no penalty (the tutorial)
    rows_at: u32,    // `batch` fields (PackedBatch) of this side: table row of each distinct row,
    offsets_at: u32, // CSR offsets (n + 1,)
    list_at: u32,    // and the batch rows grouped by distinct row
    grad_out: u32,   // write the gradient instead of updating (accum unused)
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> grad_part: array<vec4<f32>>;  // (P, n, D)
@group(0) @binding(1) var<storage, read> dx: array<vec4<f32>>;         // (B, 2D)
@group(0) @binding(2) var<storage, read> batch: array<u32>;            // the packed batch
@group(0) @binding(3) var<storage, read_write> table: array<vec4<f32>>; // (V, D)
@group(0) @binding(4) var<storage, read_write> accum: array<vec4<f32>>; // (V, D)
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(64)
fn embedding_adagrad_gpu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.n * p.dim4 {
        return;
    }
    let a = t / p.dim4;
    let d = t % p.dim4;
    var g = vec4<f32>(0.0);
    if p.use_dense != 0u {
        for (var i = 0u; i < p.parts; i++) {
            g += grad_part[(i * p.n + a) * p.dim4 + d];
        }
    }
    if p.use_rows != 0u {
        for (var r = batch[p.offsets_at + a]; r < batch[p.offsets_at + a + 1u]; r++) {
            g += dx[batch[p.list_at + r] * p.dx_stride4 + p.dx_offset4 + d];
        }
    }
    if p.grad_out != 0u {
        table[a * p.dim4 + d] = g;
        return;
    }
    let e = batch[p.rows_at + a] * p.dim4 + d;
    let w = table[e];
    if p.l2 != 0.0 {
        g += p.l2 * w;
    }
    let acc = accum[e] + g * g;
    accum[e] = acc;
    table[e] = w - p.learning_rate * g / (sqrt(acc) + p.epsilon);
}
