//! BruteForce top-k against its CPU twin (ties, exclusions, k larger than the eligible candidates, several
//! tiles), and rating predictions against the evaluation path. Needs an adapter; skips without one.

mod common;

use common::*;
use wgrec::cpu;
use wgrec::data::SplitMix64;
use wgrec::kernels::{BruteForceTopKParams, Launch};
use wgrec::serve::{BruteForce, Exclusions};

/// Random ascending, distinct exclusions per query: about `share` of the candidates.
fn random_exclusions(rng: &mut SplitMix64, q: usize, c: usize, share: f32) -> Exclusions {
    let mut e = Exclusions {
        offsets: vec![0],
        items: Vec::new(),
    };
    for _ in 0..q {
        e.items
            .extend((0..c as u32).filter(|_| rng.next_f32() < share));
        e.offsets.push(e.items.len() as u32);
    }
    e
}

/// The kernel alone on a score matrix of small integers (most candidates tie), in two tiles whose second
/// starts at query 64, with outputs pre-filled with NaN so an unwritten slot shows up.
#[test]
fn brute_force_top_k_matches_cpu_with_ties_and_large_k() {
    let Some(gpu) = gpu() else { return };
    let kern = kernels(gpu, 32);
    let mut rng = SplitMix64::new(41);
    for (q, c, k, share) in [
        (70, 300, 10, 0.1),
        (70, 300, 100, 0.5),
        (3, 5, 8, 0.0),     // k larger than the candidate count
        (66, 40, 37, 0.2),  // k larger than the eligible candidates of most queries
        (65, 1037, 1, 0.0), // the top-1 of a long row of ties
    ] {
        let scores: Vec<f32> = (0..q * c).map(|_| rng.below(16) as f32 - 8.0).collect();
        let ex = random_exclusions(&mut rng, q, c, share);
        let (want_i, want_s) = cpu::brute_force_top_k(&scores, c, &ex.offsets, &ex.items, k);
        let out_i = gpu.upload("out_index", &vec![0xDEAD_BEEFu32; q * k]);
        let out_s = nans(gpu, "out_score", q * k);
        let sb = gpu.upload("scores", &scores);
        let (ob, sib) = (
            gpu.upload("seen_offsets", &ex.offsets),
            gpu.upload("seen", &ex.items),
        );
        // Slices start 256-byte aligned: 64 rows of c floats are.
        let tiles = [(0usize, 64.min(q)), (64, q)];
        let launches: Vec<(Launch, u32)> = tiles
            .iter()
            .filter(|(a, b)| a < b)
            .map(|&(a0, a1)| {
                let n = a1 - a0;
                let l = Launch::new(
                    gpu,
                    &kern.brute_force_top_k,
                    "brute_force_top_k",
                    &[
                        wgrec::gpu::slice(&sb, a0 * c, n * c),
                        ob.as_entire_binding(),
                        sib.as_entire_binding(),
                        wgrec::gpu::slice(&out_i, a0 * k, n * k),
                        wgrec::gpu::slice(&out_s, a0 * k, n * k),
                    ],
                    &BruteForceTopKParams {
                        queries: n as u32,
                        candidates: c as u32,
                        k: k as u32,
                        first: a0 as u32,
                    },
                );
                (l, n as u32)
            })
            .collect();
        let steps: Vec<(&Launch, u32)> = launches.iter().map(|(l, t)| (l, *t)).collect();
        run(gpu, &steps);
        let got_i = read_u32(gpu, &out_i, q * k);
        let got_s = read_f32(gpu, &out_s, q * k);
        if got_i != want_i {
            let bad = (0..q * k).find(|&i| got_i[i] != want_i[i]).unwrap();
            panic!(
                "brute_force_top_k {q} x {c}, k {k}: first index mismatch at query {}, rank {}: got {:?}, want {:?}",
                bad / k,
                bad % k,
                &got_i[bad / k * k..][..k.min(12)],
                &want_i[bad / k * k..][..k.min(12)]
            );
        }
        assert_eq!(
            got_s.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want_s.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "brute_force_top_k {q} x {c}, k {k}: scores"
        );
        if c < k {
            assert!(got_i[c..k].iter().all(|&i| i == u32::MAX), "padding");
        }
    }
}

/// The whole plan (gather, scores, top-k) over embedding tables with small integer values, so every
/// dot product is exact and ties are common; 64 queries per tile, so 150 queries take three tiles, the last
/// one partial.
#[test]
fn brute_force_plan_matches_cpu_over_tiles() {
    let Some(gpu) = gpu() else { return };
    let dim = 32;
    let kern = kernels(gpu, dim);
    let mut rng = SplitMix64::new(42);
    let (users, items) = (200usize, 700usize);
    let ints = |rng: &mut SplitMix64, n: usize| -> Vec<f32> {
        (0..n).map(|_| rng.below(5) as f32 - 2.0).collect()
    };
    let (ut, it) = (ints(&mut rng, users * dim), ints(&mut rng, items * dim));
    let (ub, ib) = (gpu.upload("users", &ut), gpu.upload("items", &it));
    let queries: Vec<u32> = (0..150).map(|_| rng.below(users as u64) as u32).collect();
    let candidates: Vec<u32> = (0..600).map(|i| (i * 7 % items) as u32).collect();
    let rows = |t: &[f32], ids: &[u32]| -> Vec<f32> {
        ids.iter()
            .flat_map(|&i| t[i as usize * dim..][..dim].to_vec())
            .collect()
    };
    let scores = cpu::candidate_scores(&rows(&ut, &queries), &rows(&it, &candidates), dim);
    for (k, share) in [(10, 0.0), (100, 0.3), (256, 0.7)] {
        let ex = random_exclusions(&mut rng, queries.len(), candidates.len(), share);
        let plan = BruteForce::with_tile(
            gpu,
            kern,
            (&ub, &queries),
            (&ib, &candidates),
            dim,
            &ex,
            k,
            64,
        )
        .unwrap();
        let got = plan.run().unwrap();
        let (want_i, want_s) =
            cpu::brute_force_top_k(&scores, candidates.len(), &ex.offsets, &ex.items, k);
        assert_eq!(got.index, want_i, "top-{k} indices");
        assert_eq!(got.score, want_s, "top-{k} scores");
        // A second run of the same plan gives the same answer.
        assert_eq!(plan.run().unwrap(), got);
    }
}

#[test]
fn brute_force_rejects_bad_k() {
    let Some(gpu) = gpu() else { return };
    let kern = kernels(gpu, 32);
    let t = gpu.upload("table", &vec![0.0f32; 64]);
    for k in [0, wgrec::serve::MAX_K + 1] {
        let err = BruteForce::new(
            gpu,
            kern,
            (&t, &[0]),
            (&t, &[0, 1]),
            32,
            &Exclusions::none(1),
            k,
        )
        .err()
        .expect("k out of range is an error");
        assert!(err.to_string().contains("k must be between"), "{err}");
    }
}
