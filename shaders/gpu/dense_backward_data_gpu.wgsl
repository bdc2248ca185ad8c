// The data gradient of a dense layer over the whole batch in one dispatch: dx = (dy W^T) * (h > 0), the
// mask being the ReLU output that fed the layer (MASK), or none for the first layer. Tiled as
// dense_forward_gpu: a workgroup owns 64 rows x 64 inputs of dx, each invocation a 4 x 4 block; 16 outputs
// of dy and the matching 16 columns of W (as rows of W^T) pass through workgroup memory at a time.

override MASK: bool = true;

struct Params {
    rows: u32,      // B
    k4: u32,        // K / 4: width of dx
    n4: u32,        // N / 4: width of dy
    w_offset4: u32, // W (K, N) in mlp, / 4
}

@group(0) @binding(0) var<storage, read> dy: array<vec4<f32>>;       // (B, N)
@group(0) @binding(1) var<storage, read> mlp: array<vec4<f32>>;      // (L,) holding W
@group(0) @binding(2) var<storage, read> h: array<vec4<f32>>;        // (B, K) the layer's input (MASK)
@group(0) @binding(3) var<storage, read_write> dx: array<vec4<f32>>; // (B, K)
@group(0) @binding(4) var<uniform> p: Params;

const TM: u32 = 64u; // rows per tile
const TN: u32 = 16u; // outputs of dy per step through workgroup memory

var<workgroup> ds: array<f32, 1024>; // (TN, TM): the tile's dy, transposed
var<workgroup> ws: array<f32, 1024>; // (TN, 64): W^T, i.e. W[k, n] at n * 64 + k

fn store(r: u32, c: u32, v: vec4<f32>) {
    if r < p.rows {
        var g = v;
        if MASK {
            g = select(vec4<f32>(0.0), v, h[r * p.k4 + c] > vec4<f32>(0.0));
        }
        dx[r * p.k4 + c] = g;
    }
}

@compute @workgroup_size(256)
fn dense_backward_data_gpu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r0 = wg.y * TM;
    let k0 = wg.x * 64u; // first input of the tile
    let c = wg.x * 16u + t % 16u; // this invocation's vec4 column of dx
    let ty = t / 16u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let lr = t / 4u; // the row (of dy) or input (of W) this invocation loads
    let lq = t % 4u; // and which of its 4 vec4s
    for (var n0 = 0u; n0 < p.n4; n0 += TN / 4u) {
        var v = vec4<f32>(0.0);
        if r0 + lr < p.rows && n0 + lq < p.n4 {
            v = dy[(r0 + lr) * p.n4 + n0 + lq];
        }
        ds[(4u * lq) * TM + lr] = v.x;
        ds[(4u * lq + 1u) * TM + lr] = v.y;
        ds[(4u * lq + 2u) * TM + lr] = v.z;
        ds[(4u * lq + 3u) * TM + lr] = v.w;
        var w = vec4<f32>(0.0);
        if k0 + lr < 4u * p.k4 && n0 + lq < p.n4 {
            w = mlp[p.w_offset4 + (k0 + lr) * p.n4 + n0 + lq];
        }
        ws[(4u * lq) * 64u + lr] = w.x;
        ws[(4u * lq + 1u) * 64u + lr] = w.y;
        ws[(4u * lq + 2u) * 64u + lr] = w.z;
        ws[(4u * lq + 3u) * 64u + lr] = w.w;
        workgroupBarrier();
        for (var n = 0u; n < TN; n++) {
            let wi = n * 64u + 4u * (t % 16u);
            let wv = vec4<f32>(ws[wi], ws[wi + 1u], ws[wi + 2u], ws[wi + 3u]);
            let di = n * TM + 4u * ty;
            acc0 += ds[di] * wv;
            acc1 += ds[di + 1u] * wv;
            acc2 += ds[di + 2u] * wv;
            acc3 += ds[di + 3u] * wv;
        }
        workgroupBarrier();
    }
    if c >= p.k4 {
        return;
    }
    let r = r0 + 4u * ty;
    store(r, c, acc0);
    store(r + 1u, c, acc1);
    store(r + 2u, c, acc2);
    store(r + 3u, c, acc3);
}
