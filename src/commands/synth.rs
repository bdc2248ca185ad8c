//! `wgrec synth`: a synthetic data set in one of the MovieLens formats.

use anyhow::Result;
use wgrec::data::synth::{self, SynthOptions};

pub fn run(quiet: bool, opts: SynthOptions) -> Result<()> {
    let t = std::time::Instant::now();
    synth::write(&opts)?;
    if !quiet {
        eprintln!(
            "wrote {} ratings of {} users on {} movies to {} in {:.1} s",
            opts.ratings,
            opts.users,
            opts.movies,
            opts.out.display(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
