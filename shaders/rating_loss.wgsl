// The rating head and its loss, fused, for one window of rows: pred = h2 . w3 + b3, squared error per
// row, and (when training) the start of the backward pass: dpred = scale * (pred - rating) with
// scale = 2 * rating_weight / B, and dh2 = dpred * w3 * (h2 > 0) through the ReLU of the second hidden
// layer. h2, w3 and b3 are read through uniform windows (see dense_forward for why).

struct Params {
    rows: u32,  // rows in this window
    h4: u32,    // H2 / 4
    train: u32, // 0: evaluation, only pred and squared error are written
    scale: f32, // 2 * rating_weight / B
    row0: u32,  // first row of this window in the batch
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> h2_win: array<vec4<f32>, 4096>; // (rows, H2) window of h2
@group(0) @binding(1) var<uniform> w3: array<vec4<f32>, 64>;       // (H2,), H2 <= 256
@group(0) @binding(2) var<uniform> b3: vec4<f32>;                  // (1,) in .x
@group(0) @binding(3) var<storage, read> rating: array<f32>;       // (B,)
@group(0) @binding(4) var<storage, read_write> pred: array<f32>;   // (B,)
@group(0) @binding(5) var<storage, read_write> sq_err: array<f32>; // (B,)
@group(0) @binding(6) var<storage, read_write> dpred: array<f32>;  // (B,)
@group(0) @binding(7) var<storage, read_write> dh2: array<vec4<f32>>; // (B, H2)
@group(0) @binding(8) var<uniform> p: Params;

@compute @workgroup_size(64)
fn rating_loss(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if r >= p.rows {
        return;
    }
    let i = p.row0 + r;
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < p.h4; j++) {
        acc += h2_win[r * p.h4 + j] * w3[j];
    }
    let y = (acc.x + acc.y) + (acc.z + acc.w) + b3.x;
    let err = y - rating[i];
    pred[i] = y;
    sq_err[i] = err * err;
    if p.train != 0u {
        let d = p.scale * err;
        dpred[i] = d;
        for (var j = 0u; j < p.h4; j++) {
            dh2[i * p.h4 + j] = select(vec4<f32>(0.0), d * w3[j], h2_win[r * p.h4 + j] > vec4<f32>(0.0));
        }
    }
}
