// The rating head, its loss and the start of the backward pass, fused, over one split of rows per
// workgroup: pred = h2 . w3 + b3 and the squared error per row, and when training dpred = scale * (pred -
// rating) with scale = 2 * rating_weight / B, dh2 = dpred * w3 * (h2 > 0) through the second layer's
// ReLU, and the split's partial head gradients grad[s, w3] = sum of h2 * dpred, grad[s, b3] = sum of dpred
// (adagrad_dense adds the splits up). dpred stays in workgroup memory: nothing downstream needs it.

struct Params {
    rows: u32,       // B
    h4: u32,         // H2 / 4
    train: u32,      // 0: evaluation, only pred and sq_err are written
    scale: f32,      // 2 * rating_weight / B
    split_rows: u32, // rows per split (workgroup)
    grad_len: u32,   // L: one split's slice of grad holds every MLP parameter
    w3_offset: u32,  // w3 (H2,) in mlp and in a slice of grad
    b3_offset: u32,  // b3
    rating_at: u32,  // where the batch's ratings start in `batch`
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> h2: array<vec4<f32>>;         // (B, H2)
@group(0) @binding(1) var<storage, read> mlp: array<vec4<f32>>;        // (L,) holding w3 and b3
@group(0) @binding(2) var<storage, read> batch: array<u32>;            // the packed batch (PackedBatch)
@group(0) @binding(3) var<storage, read_write> pred: array<f32>;       // (B,)
@group(0) @binding(4) var<storage, read_write> sq_err: array<f32>;     // (B,)
@group(0) @binding(5) var<storage, read_write> dh2: array<vec4<f32>>;  // (B, H2)
@group(0) @binding(6) var<storage, read_write> grad: array<f32>;       // (S, L)
@group(0) @binding(7) var<uniform> p: Params;

const WG: u32 = 256u;

var<workgroup> dp: array<f32, 256>; // dpred of the rows of this step

@compute @workgroup_size(256)
fn rating_loss_gpu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let first = wg.x * p.split_rows;
    let end = min(first + p.split_rows, p.rows);
    let w3 = p.w3_offset / 4u;
    let b3 = mlp[p.b3_offset / 4u][p.b3_offset % 4u];
    // Column j of the partial w3 gradient is summed by invocation j % 256, the b3 one by invocation 0.
    var dw_lo = 0.0;
    var dw_hi = 0.0; // columns 256 + t (H2 up to 512)
    var db = 0.0;
    for (var r0 = first; r0 < end; r0 += WG) {
        let r = r0 + t;
        var d = 0.0;
        if r < end {
            var acc = vec4<f32>(0.0);
            for (var j = 0u; j < p.h4; j++) {
                acc += h2[r * p.h4 + j] * mlp[w3 + j];
            }
            let y = (acc.x + acc.y) + (acc.z + acc.w) + b3;
            let err = y - bitcast<f32>(batch[p.rating_at + r]);
            pred[r] = y;
            sq_err[r] = err * err;
            if p.train != 0u {
                d = p.scale * err;
                for (var j = 0u; j < p.h4; j++) {
                    let h = h2[r * p.h4 + j];
                    dh2[r * p.h4 + j] = select(vec4<f32>(0.0), d * mlp[w3 + j], h > vec4<f32>(0.0));
                }
            }
        }
        dp[t] = d;
        workgroupBarrier();
        if p.train != 0u {
            let n = min(WG, end - r0);
            for (var i = 0u; i < n; i++) {
                let row = (r0 + i) * 4u * p.h4;
                if t < 4u * p.h4 {
                    dw_lo += h2[(row + t) / 4u][t % 4u] * dp[i];
                }
                if t + WG < 4u * p.h4 {
                    dw_hi += h2[(row + t + WG) / 4u][(t + WG) % 4u] * dp[i];
                }
                db += dp[i];
            }
        }
        workgroupBarrier();
    }
    if p.train == 0u {
        return;
    }
    let o = wg.x * p.grad_len;
    if t < 4u * p.h4 {
        grad[o + p.w3_offset + t] = dw_lo;
    }
    if t + WG < 4u * p.h4 {
        grad[o + p.w3_offset + t + WG] = dw_hi;
    }
    if t == 0u {
        grad[o + p.b3_offset] = db;
    }
}
