//! `wgrec selftest` passes with both kernel families on this machine's adapter, and says so; the
//! comparison it rests on fails on a mismatch (src/selftest.rs's unit test).

mod common;

use wgrec::kernels::Family;

#[test]
fn every_check_passes_with_both_families() {
    let Some(gpu) = common::gpu() else { return };
    for family in [Family::Windowed, Family::Gpu] {
        let checks = wgrec::selftest::run(gpu, family).unwrap();
        assert!(checks.len() >= 40, "{family:?}: {} checks", checks.len());
        let failed: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
        assert!(failed.is_empty(), "{family:?}: {failed:?}");
        // The evaluation and serving rows name the family's kernels they ran.
        let serve_kernel = match family {
            Family::Windowed => "serve (brute_force_top_k)",
            Family::Gpu => "serve (brute_force_top_k_gpu)",
        };
        assert!(
            checks.iter().any(|c| c.name.starts_with(serve_kernel)),
            "{family:?}: no {serve_kernel} row"
        );
        let eval_kernel = match family {
            Family::Windowed => "evaluate (candidate_scores,",
            Family::Gpu => "evaluate (candidate_scores_gpu,",
        };
        assert!(checks.iter().any(|c| c.name.starts_with(eval_kernel)));
    }
}
