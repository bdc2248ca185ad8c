// y = act(x W + b) for a batch of rows. Each invocation owns an 8-row x 16-column block held in registers
// (register blocking beats shared-memory tiling on CPU adapters and is fine on GPUs at these sizes).

override RELU: bool = true;

struct Params {
    rows: u32, // B
    k4: u32,   // K / 4 (input width)
    n4: u32,   // N / 4 (output width, a multiple of 16)
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>; // (B, K)
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>; // (K, N)
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>; // (N,)
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>; // (B, N)
@group(0) @binding(4) var<uniform> p: Params;

const R: u32 = 8u; // rows per invocation
const C: u32 = 4u; // vec4 columns per invocation

@compute @workgroup_size(64)
fn dense_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    let col_blocks = p.n4 / C;
    let row_blocks = (p.rows + R - 1u) / R;
    if t >= col_blocks * row_blocks {
        return;
    }
    let c0 = (t % col_blocks) * C;
    let r0 = (t / col_blocks) * R;

    var acc: array<vec4<f32>, 32>; // [r * C + j]
    var xrow: array<u32, 8>;
    for (var r = 0u; r < R; r++) {
        xrow[r] = min(r0 + r, p.rows - 1u) * p.k4; // clamped: rows past B are computed, never stored
        for (var j = 0u; j < C; j++) {
            acc[r * C + j] = b[c0 + j];
        }
    }
    for (var k4 = 0u; k4 < p.k4; k4++) {
        let w0 = 4u * k4 * p.n4 + c0;
        var wk: array<vec4<f32>, 16>; // [kk * C + j]: W rows 4k4..4k4+3, columns c0..c0+15
        for (var kk = 0u; kk < 4u; kk++) {
            for (var j = 0u; j < C; j++) {
                wk[kk * C + j] = w[w0 + kk * p.n4 + j];
            }
        }
        for (var r = 0u; r < R; r++) {
            let xv = x[xrow[r] + k4];
            for (var j = 0u; j < C; j++) {
                acc[r * C + j] += xv.x * wk[j] + xv.y * wk[C + j] + xv.z * wk[2u * C + j] + xv.w * wk[3u * C + j];
            }
        }
    }
    for (var r = 0u; r < R; r++) {
        if r0 + r < p.rows {
            for (var j = 0u; j < C; j++) {
                var v = acc[r * C + j];
                if RELU {
                    v = max(v, vec4<f32>(0.0));
                }
                y[(r0 + r) * p.n4 + c0 + j] = v;
            }
        }
    }
}
