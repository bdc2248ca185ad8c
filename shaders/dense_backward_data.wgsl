// dx = (dy W^T) [* (h > 0)] for one window of rows: the gradient w.r.t. a dense layer's input, optionally
// through the ReLU that produced that input (h is the ReLU's output). dy and W are read through 64 KiB
// uniform windows as in dense_forward (see there for why). Each invocation owns 8 rows x 16 inputs: eight
// mat4x4 accumulators whose column j holds inputs k0 + 4j .. k0 + 4j + 3.

override MASK: bool = true;

struct Params {
    rows: u32,  // rows in this window
    k4: u32,    // K / 4 (layer input width, a multiple of 4)
    n4: u32,    // N / 4 (layer output width)
    k4_lo: u32, // K_lo / 4: rows of W in w_lo
    row0: u32,  // first row of this window in dx and h
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> dy_win: array<vec4<f32>, 4096>; // (rows, N) window of dy
@group(0) @binding(1) var<uniform> w_lo: array<vec4<f32>, 4096>;   // (K_lo, N)
@group(0) @binding(2) var<uniform> w_hi: array<vec4<f32>, 4096>;   // (K - K_lo, N)
@group(0) @binding(3) var<storage, read> h: array<vec4<f32>>;       // (B, K) ReLU output (unused without MASK)
@group(0) @binding(4) var<storage, read_write> dx: array<vec4<f32>>; // (B, K)
@group(0) @binding(5) var<uniform> p: Params;

// Rows k .. k+3 (relative to the window) of W at vec4 column n, transposed: (W^T block) * dy[n] adds to
// dx[k .. k+4]. One function per window: CPU adapters run both sides of a branch, so the window is chosen
// once per invocation, not per load.
fn w_t_lo(k: u32, n: u32) -> mat4x4<f32> {
    let i = k * p.n4 + n;
    let s = p.n4;
    return transpose(mat4x4<f32>(w_lo[i], w_lo[i + s], w_lo[i + 2u * s], w_lo[i + 3u * s]));
}

fn w_t_hi(k: u32, n: u32) -> mat4x4<f32> {
    let i = k * p.n4 + n;
    let s = p.n4;
    return transpose(mat4x4<f32>(w_hi[i], w_hi[i + s], w_hi[i + 2u * s], w_hi[i + 3u * s]));
}

// The accumulators of an invocation: rows r0 .. r0+7, each a mat4x4 whose column j holds inputs
// k0 + 4j .. k0 + 4j + 3.
struct Acc {
    a0: mat4x4<f32>,
    a1: mat4x4<f32>,
    a2: mat4x4<f32>,
    a3: mat4x4<f32>,
    a4: mat4x4<f32>,
    a5: mat4x4<f32>,
    a6: mat4x4<f32>,
    a7: mat4x4<f32>,
}

fn update(a: mat4x4<f32>, t0: mat4x4<f32>, t1: mat4x4<f32>, t2: mat4x4<f32>, t3: mat4x4<f32>, d: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(a[0] + t0 * d, a[1] + t1 * d, a[2] + t2 * d, a[3] + t3 * d);
}

fn store_row(r: u32, kb: u32, a: mat4x4<f32>) {
    if r >= p.rows {
        return;
    }
    let o = (p.row0 + r) * p.k4 + kb;
    for (var j = 0u; j < 4u; j++) {
        var v = a[j];
        if MASK {
            v = select(vec4<f32>(0.0), v, h[o + j] > vec4<f32>(0.0));
        }
        dx[o + j] = v;
    }
}

fn update_rows(acc: Acc, t0: mat4x4<f32>, t1: mat4x4<f32>, t2: mat4x4<f32>, t3: mat4x4<f32>, d: array<vec4<f32>, 8>) -> Acc {
    return Acc(
        update(acc.a0, t0, t1, t2, t3, d[0]),
        update(acc.a1, t0, t1, t2, t3, d[1]),
        update(acc.a2, t0, t1, t2, t3, d[2]),
        update(acc.a3, t0, t1, t2, t3, d[3]),
        update(acc.a4, t0, t1, t2, t3, d[4]),
        update(acc.a5, t0, t1, t2, t3, d[5]),
        update(acc.a6, t0, t1, t2, t3, d[6]),
        update(acc.a7, t0, t1, t2, t3, d[7]),
    );
}

@compute @workgroup_size(64)
fn dense_backward_data(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    // Row blocks vary fastest, so neighbouring invocations share their inputs' window of W.
    let row_blocks = (p.rows + 7u) / 8u;
    let kb = (t / row_blocks) * 4u; // first vec4 of this invocation's 16 inputs
    if kb >= p.k4 {
        return;
    }
    let r0 = (t % row_blocks) * 8u;
    let k0 = kb * 4u;
    let last = p.rows - 1u;
    let d0 = min(r0, last) * p.n4;
    let d1 = min(r0 + 1u, last) * p.n4;
    let d2 = min(r0 + 2u, last) * p.n4;
    let d3 = min(r0 + 3u, last) * p.n4;
    let d4 = min(r0 + 4u, last) * p.n4;
    let d5 = min(r0 + 5u, last) * p.n4;
    let d6 = min(r0 + 6u, last) * p.n4;
    let d7 = min(r0 + 7u, last) * p.n4;
    let z = mat4x4<f32>();
    var acc = Acc(z, z, z, z, z, z, z, z);
    if k0 < 4u * p.k4_lo {
        for (var n = 0u; n < p.n4; n++) {
            let d = array<vec4<f32>, 8>(dy_win[d0 + n], dy_win[d1 + n], dy_win[d2 + n], dy_win[d3 + n],
                                        dy_win[d4 + n], dy_win[d5 + n], dy_win[d6 + n], dy_win[d7 + n]);
            acc = update_rows(acc, w_t_lo(k0, n), w_t_lo(k0 + 4u, n), w_t_lo(k0 + 8u, n), w_t_lo(k0 + 12u, n), d);
        }
    } else {
        let k = k0 - 4u * p.k4_lo;
        for (var n = 0u; n < p.n4; n++) {
            let d = array<vec4<f32>, 8>(dy_win[d0 + n], dy_win[d1 + n], dy_win[d2 + n], dy_win[d3 + n],
                                        dy_win[d4 + n], dy_win[d5 + n], dy_win[d6 + n], dy_win[d7 + n]);
            acc = update_rows(acc, w_t_hi(k, n), w_t_hi(k + 4u, n), w_t_hi(k + 8u, n), w_t_hi(k + 12u, n), d);
        }
    }
    store_row(r0, kb, acc.a0);
    store_row(r0 + 1u, kb, acc.a1);
    store_row(r0 + 2u, kb, acc.a2);
    store_row(r0 + 3u, kb, acc.a3);
    store_row(r0 + 4u, kb, acc.a4);
    store_row(r0 + 5u, kb, acc.a5);
    store_row(r0 + 6u, kb, acc.a6);
    store_row(r0 + 7u, kb, acc.a7);
}
