//! `wgrec adapters`: every adapter wgpu finds, and the one wgrec would use.

use anyhow::Result;
use wgrec::gpu::{self, AdapterChoice};

pub fn run(adapter: &AdapterChoice) -> Result<()> {
    let adapters = gpu::list_adapters(&adapter);
    if adapters.is_empty() {
        return Err(gpu::no_adapter(&adapter));
    }
    for (a, chosen) in adapters {
        println!(
            "{} {} (backend {}, {}, driver {})",
            if chosen { "*" } else { " " },
            a.name,
            a.backend,
            a.device_type,
            if a.driver_info.is_empty() {
                "unknown"
            } else {
                &a.driver_info
            }
        );
    }
    println!("* = the adapter wgrec would use with these options");
    Ok(())
}
