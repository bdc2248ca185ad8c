//! `wgrec man`: the man page of wgrec or of one subcommand, in roff.

use anyhow::{bail, Result};

/// Prints the man page of `wgrec`, or of one of its subcommands (named `wgrec-SUBCOMMAND`, as git's are).
pub fn run(mut cmd: clap::Command, subcommand: Option<&str>) -> Result<()> {
    // Building propagates the global options (--backend, --adapter, --quiet) into every subcommand.
    cmd.build();
    let page = match subcommand {
        None => cmd,
        Some(name) => {
            let names: Vec<String> = cmd
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            let Some(sub) = cmd.find_subcommand(name) else {
                bail!("no subcommand {name:?}; subcommands: {}", names.join(", "));
            };
            // clap takes &'static names (without its "string" feature); the process ends after printing.
            sub.clone()
                .name(format!("wgrec-{name}").leak() as &str)
                .bin_name(format!("wgrec {name}"))
        }
    };
    clap_mangen::Man::new(page).render(&mut std::io::stdout())?;
    Ok(())
}
