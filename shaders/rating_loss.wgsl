// The rating head and its loss, fused: pred = h2 . w3 + b3, squared error per row, and (when training)
// the start of the backward pass: dpred = scale * (pred - rating) with scale = 2 * rating_weight / B, and
// dh2 = dpred * w3 * (h2 > 0) through the ReLU of the second hidden layer.

struct Params {
    rows: u32,  // B
    h4: u32,    // H2 / 4
    train: u32, // 0: evaluation, only pred and squared error are written
    scale: f32, // 2 * rating_weight / B
}

@group(0) @binding(0) var<storage, read> h2: array<vec4<f32>>;    // (B, H2)
@group(0) @binding(1) var<storage, read> w3: array<vec4<f32>>;    // (H2,)
@group(0) @binding(2) var<storage, read> b3: array<vec4<f32>>;    // (1,) in .x
@group(0) @binding(3) var<storage, read> rating: array<f32>;      // (B,)
@group(0) @binding(4) var<storage, read_write> pred: array<f32>;  // (B,)
@group(0) @binding(5) var<storage, read_write> sq_err: array<f32>; // (B,)
@group(0) @binding(6) var<storage, read_write> dpred: array<f32>; // (B,)
@group(0) @binding(7) var<storage, read_write> dh2: array<vec4<f32>>; // (B, H2)
@group(0) @binding(8) var<uniform> p: Params;

@compute @workgroup_size(64)
fn rating_loss(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if i >= p.rows {
        return;
    }
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < p.h4; j++) {
        acc += h2[i * p.h4 + j] * w3[j];
    }
    let y = (acc.x + acc.y) + (acc.z + acc.w) + b3[0].x;
    let err = y - rating[i];
    pred[i] = y;
    sq_err[i] = err * err;
    if p.train != 0u {
        let d = p.scale * err;
        dpred[i] = d;
        for (var j = 0u; j < p.h4; j++) {
            dh2[i * p.h4 + j] = select(vec4<f32>(0.0), d * w3[j], h2[i * p.h4 + j] > vec4<f32>(0.0));
        }
    }
}
