// The first dense layer with the embedding gather fused in: y = act(x W + b) with x = concat(user_emb[user],
// movie_emb[movie]) (B, 2D) read straight from the tables, so no x is ever written. Otherwise as
// dense_forward_gpu: one dispatch over the whole batch, 64 x 64 tiles of y per workgroup, 4 x 4 per
// invocation, x and W through workgroup memory 16 inputs at a time.

override RELU: bool = true;

struct Params {
    rows: u32,      // B
    k4: u32,        // K / 4 = 2 D / 4
    n4: u32,        // N / 4
    w_offset4: u32, // W (K, N) in mlp, / 4
    b_offset4: u32, // b (N,) in mlp, / 4
    user_at: u32,   // where the batch's user table rows start in `batch`
    movie_at: u32,  // and its movie table rows
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> user_emb: array<vec4<f32>>;  // (U, D)
@group(0) @binding(1) var<storage, read> movie_emb: array<vec4<f32>>; // (M, D)
@group(0) @binding(2) var<storage, read> batch: array<u32>;           // the packed batch (PackedBatch)
@group(0) @binding(3) var<storage, read> mlp: array<vec4<f32>>;       // (L,) holding W and b
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;   // (B, N)
@group(0) @binding(5) var<uniform> p: Params;

// vec4 q of row r of x: the user's embedding for q < D / 4, then the movie's.
fn load_x(r: u32, q: u32) -> vec4<f32> {
    let d4 = p.k4 / 2u;
    if q < d4 {
        return user_emb[batch[p.user_at + r] * d4 + q];
    }
    return movie_emb[batch[p.movie_at + r] * d4 + q - d4];
}

const TM: u32 = 64u; // rows per tile
const TK: u32 = 16u; // inputs per step through workgroup memory

var<workgroup> xs: array<f32, 1024>;      // (TK, TM): the tile's x, transposed
var<workgroup> ws: array<vec4<f32>, 256>; // (TK, 64 / 4): the matching rows of W

fn store(r: u32, c: u32, v: vec4<f32>) {
    if r < p.rows {
        y[r * p.n4 + c] = select(v, max(v, vec4<f32>(0.0)), RELU);
    }
}

@compute @workgroup_size(256)
fn dense_gather_forward_gpu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r0 = wg.y * TM;
    let c = wg.x * 16u + t % 16u; // this invocation's vec4 column of y
    let ty = t / 16u;             // and its rows r0 + 4 ty .. r0 + 4 ty + 3
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k4; k0 += TK / 4u) {
        // x: invocation t loads vec4 t % 4 of row t / 4; out-of-range elements load as zero.
        let lr = t / 4u;
        let lq = t % 4u;
        var v = vec4<f32>(0.0);
        if r0 + lr < p.rows && k0 + lq < p.k4 {
            v = load_x(r0 + lr, k0 + lq);
        }
        xs[(4u * lq) * TM + lr] = v.x;
        xs[(4u * lq + 1u) * TM + lr] = v.y;
        xs[(4u * lq + 2u) * TM + lr] = v.z;
        xs[(4u * lq + 3u) * TM + lr] = v.w;
        // W: invocation t loads vec4 column t % 16 of row t / 16.
        let wk = 4u * k0 + t / 16u;
        let wc = wg.x * 16u + t % 16u;
        var w = vec4<f32>(0.0);
        if wk < 4u * p.k4 && wc < p.n4 {
            w = mlp[p.w_offset4 + wk * p.n4 + wc];
        }
        ws[t] = w;
        workgroupBarrier();
        for (var k = 0u; k < TK; k++) {
            let wv = ws[k * 16u + t % 16u];
            let xi = k * TM + 4u * ty;
            acc0 += xs[xi] * wv;
            acc1 += xs[xi + 1u] * wv;
            acc2 += xs[xi + 2u] * wv;
            acc3 += xs[xi + 3u] * wv;
        }
        workgroupBarrier();
    }
    if c >= p.n4 {
        return;
    }
    let bias = mlp[p.b_offset4 + c];
    let r = r0 + 4u * ty;
    store(r, c, acc0 + bias);
    store(r + 1u, c, acc1 + bias);
    store(r + 2u, c, acc2 + bias);
    store(r + 3u, c, acc3 + bias);
}
