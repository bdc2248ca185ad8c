//! `wgrec selftest`: the chosen kernel family against the CPU twins on the chosen adapter.

use anyhow::{bail, Result};
use wgrec::gpu::{AdapterChoice, Gpu};
use wgrec::kernels::Choice;
use wgrec::{progress, selftest};

pub fn run(adapter: &AdapterChoice, quiet: bool, kernels: Choice) -> Result<()> {
    let gpu = Gpu::new(adapter)?;
    let family = kernels.resolve(&gpu.adapter);
    println!("{}", family.adapter_line(&gpu.adapter));
    let checks = {
        let _spinner = (!quiet).then(|| progress::spinner("checking the kernels against the CPU"));
        selftest::run(&gpu, family)?
    };
    print!("{}", selftest::table(&checks));
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        bail!(
            "{failed} of {} checks failed on adapter {} ({}, driver {}) with the {} kernels",
            checks.len(),
            gpu.adapter.name,
            gpu.adapter.backend,
            gpu.adapter.driver_info,
            family.name()
        );
    }
    println!("all {} checks passed", checks.len());
    Ok(())
}
