//! BruteForce top-k against its CPU twin (ties, exclusions, k larger than the eligible candidates, several
//! tiles), and rating predictions against the evaluation path. Needs an adapter; skips without one.

mod common;

use common::*;
use wgrec::cpu;
use wgrec::data::SplitMix64;
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

/// Rows of `table` (D wide) for `ids`, concatenated.
fn rows(table: &[f32], ids: &[u32], dim: usize) -> Vec<f32> {
    ids.iter()
        .flat_map(|&i| table[i as usize * dim..][..dim].to_vec())
        .collect()
}

/// The plan at D = 4 (4,096 candidates per window) on embeddings in {-1, 0, 1}: every score is exact and
/// most candidates tie. Tiles of 64 queries; k larger than the candidates, than the eligible candidates,
/// the top-1 of a long row of ties, and exclusions that straddle windows.
#[test]
fn brute_force_top_k_matches_cpu_with_ties_and_large_k() {
    let Some(gpu) = gpu() else { return };
    let dim = 4;
    let kern = kernels(gpu, dim);
    let mut rng = SplitMix64::new(41);
    for (q, c, k, share) in [
        (70, 300, 10, 0.1),
        (70, 300, 100, 0.5),
        (3, 5, 8, 0.0),        // k larger than the candidate count
        (66, 40, 37, 0.2),     // k larger than the eligible candidates of most queries
        (65, 1037, 1, 0.0),    // the top-1 of a long row of ties
        (130, 9000, 256, 0.3), // three windows, three tiles
    ] {
        let mut ints =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.below(3) as f32 - 1.0).collect() };
        let (qt, ct) = (ints(q * dim), ints(c * dim));
        let ex = random_exclusions(&mut rng, q, c, share);
        let ids = |n: usize| (0..n as u32).collect::<Vec<u32>>();
        let (qb, cb) = (gpu.upload("queries", &qt), gpu.upload("candidates", &ct));
        let plan =
            BruteForce::with_tile(gpu, kern, (&qb, &ids(q)), (&cb, &ids(c)), dim, &ex, k, 64)
                .unwrap();
        let got = plan.run().unwrap();
        let scores = cpu::candidate_scores(&qt, &ct, dim);
        let (want_i, want_s) = cpu::brute_force_top_k(&scores, c, &ex.offsets, &ex.items, k);
        if got.index != want_i {
            let bad = (0..q * k).find(|&i| got.index[i] != want_i[i]).unwrap();
            panic!(
                "brute_force_top_k {q} x {c}, k {k}: first index mismatch at query {}, rank {}: got {:?}, want {:?}",
                bad / k,
                bad % k,
                &got.index[bad / k * k..][..k.min(12)],
                &want_i[bad / k * k..][..k.min(12)]
            );
        }
        assert_eq!(
            got.score.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want_s.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "brute_force_top_k {q} x {c}, k {k}: scores"
        );
        if c < k {
            assert!(got.index[c..k].iter().all(|&i| i == u32::MAX), "padding");
        }
    }
}

/// Scores rising with the candidate index, so every candidate enters every heap (the most loop
/// iterations an invocation can run), over 70,001 candidates: more than llvmpipe lets one invocation
/// loop (65,535 iterations in all), which the windows keep each dispatch under.
#[test]
fn brute_force_top_k_worst_case_beyond_the_llvmpipe_loop_limit() {
    let Some(gpu) = gpu() else { return };
    let dim = 4;
    let kern = kernels(gpu, dim);
    let mut rng = SplitMix64::new(43);
    let (q, c, k) = (5usize, 70_001usize, wgrec::serve::MAX_K);
    let qt: Vec<f32> = (0..q).flat_map(|a| [1.0, 0.0, a as f32, 0.0]).collect();
    let ct: Vec<f32> = (0..c).flat_map(|i| [i as f32, 1.0, -1.0, 0.0]).collect();
    let ex = random_exclusions(&mut rng, q, c, 0.01);
    let ids = |n: usize| (0..n as u32).collect::<Vec<u32>>();
    let (qb, cb) = (gpu.upload("queries", &qt), gpu.upload("candidates", &ct));
    let got = BruteForce::new(gpu, kern, (&qb, &ids(q)), (&cb, &ids(c)), dim, &ex, k)
        .unwrap()
        .run()
        .unwrap();
    let scores = cpu::candidate_scores(&qt, &ct, dim);
    let (want_i, want_s) = cpu::brute_force_top_k(&scores, c, &ex.offsets, &ex.items, k);
    assert_eq!(got.index, want_i, "top-{k} of {c} rising scores");
    assert_eq!(got.score, want_s);
    let excluded = &ex.items[..ex.offsets[1] as usize];
    let best = (0..c as u32).rev().find(|i| !excluded.contains(i)).unwrap();
    assert_eq!(
        got.index[0], best,
        "the last candidate not excluded ranks first"
    );
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
    let scores =
        cpu::candidate_scores(&rows(&ut, &queries, dim), &rows(&it, &candidates, dim), dim);
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

/// Candidates of very different norms (integer rows times 1 to 6, so every score is exact and ties
/// abound), so the norm-ordered scan stops early for most queries: the results must still equal the twin's,
/// ties to the lower original index included.
#[test]
fn brute_force_norm_pruning_is_exact() {
    let Some(gpu) = gpu() else { return };
    let dim = 32;
    let kern = kernels(gpu, dim);
    let mut rng = SplitMix64::new(44);
    let (q, c) = (130usize, 5000usize);
    let qt: Vec<f32> = (0..q * dim).map(|_| rng.below(5) as f32 - 2.0).collect();
    let mut ct = Vec::with_capacity(c * dim);
    for _ in 0..c {
        let scale = 1.0 + rng.below(6) as f32;
        ct.extend((0..dim).map(|_| scale * (rng.below(3) as f32 - 1.0)));
    }
    let ids = |n: usize| (0..n as u32).collect::<Vec<u32>>();
    let (qb, cb) = (gpu.upload("queries", &qt), gpu.upload("candidates", &ct));
    let scores = cpu::candidate_scores(&qt, &ct, dim);
    for (k, share) in [(1, 0.0), (10, 0.2), (100, 0.05)] {
        let ex = random_exclusions(&mut rng, q, c, share);
        let got = BruteForce::new(gpu, kern, (&qb, &ids(q)), (&cb, &ids(c)), dim, &ex, k)
            .unwrap()
            .run()
            .unwrap();
        let (want_i, want_s) = cpu::brute_force_top_k(&scores, c, &ex.offsets, &ex.items, k);
        assert_eq!(got.index, want_i, "top-{k} indices");
        assert_eq!(got.score, want_s, "top-{k} scores");
    }
    // An exclusion past the candidates is an error, not a panic.
    let bad = Exclusions {
        offsets: vec![0, 1],
        items: vec![c as u32],
    };
    let err = BruteForce::new(gpu, kern, (&qb, &[0]), (&cb, &ids(c)), dim, &bad, 5)
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("an exclusion names candidate"),
        "{err}"
    );
}

/// A tile whose heaps (queries x k pairs of 8 bytes) would not fit one storage binding is refused with
/// the adapter's limit, before anything is allocated.
#[test]
fn brute_force_refuses_heaps_larger_than_a_binding() {
    let Some(gpu) = gpu() else { return };
    let kern = kernels(gpu, 32);
    let k = wgrec::serve::MAX_K;
    let limit = gpu.max_binding() as usize;
    let tile = (limit / (k * 8) + 1).next_multiple_of(64);
    if tile > 1 << 21 {
        return; // too many queries to build for this adapter's limit
    }
    let t = gpu.upload("table", &vec![0.0f32; 64]);
    let queries = vec![0u32; tile];
    let err = BruteForce::with_tile(
        gpu,
        kern,
        (&t, &queries),
        (&t, &[0, 1]),
        32,
        &Exclusions::none(tile),
        k,
        tile,
    )
    .err()
    .expect("refused");
    assert!(err.to_string().contains("top-k heaps"), "{err}");
}
