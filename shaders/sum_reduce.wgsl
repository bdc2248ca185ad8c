// out[slot] = sum of x[0..n], in one workgroup with a fixed reduction order (deterministic losses).

struct Params {
    n: u32,
    slot: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;          // (n,)
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // (slots,)
@group(0) @binding(2) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn sum_reduce(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var i = lid; i < p.n; i += WG) {
        acc += x[i];
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if lid < stride {
            partial[lid] += partial[lid + stride];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        out[p.slot] = partial[0];
    }
}
