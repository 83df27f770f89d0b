//! `completions SHELL` and `man`: the command line described for shells and `man`, from
//! the same definitions clap parses with (so they cannot drift from the flags).

use anyhow::Result;

use crate::contract::Verb;

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, verbs: &[Verb]) -> Result<i32> {
    let mut cmd = crate::cli::command(verbs);
    clap_complete::generate(shell, &mut cmd, "vds-proxy", &mut std::io::stdout());
    Ok(0)
}

/// Prints the manual page (roff).
pub fn man(verbs: &[Verb]) -> Result<i32> {
    clap_mangen::Man::new(crate::cli::command(verbs)).render(&mut std::io::stdout())?;
    Ok(0)
}
