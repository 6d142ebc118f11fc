//! The man pages and shell completions, generated from the clap definitions themselves (so
//! they can never disagree with `--help`): `kubelet-drift generate-docs DIR` writes
//! `DIR/man/kubelet-drift.8` with one page per subcommand (`kubelet-drift-run.8`, …) and
//! `DIR/completions/{kubelet-drift.bash,_kubelet-drift,kubelet-drift.fish}`. The .deb ships them.

use std::{fs, path::Path};

use anyhow::{Context, Result};
use clap::Command;
use clap_complete::Shell;

/// Section 8: system administration commands (it is a root daemon).
const SECTION: &str = "8";

pub fn write(cmd: Command, dir: &Path) -> Result<()> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    fs::create_dir_all(&completions)
        .with_context(|| format!("creating {}", completions.display()))?;
    let mut cmd = cmd;
    cmd.build();
    write_pages(&cmd, &man, "kubelet-drift")?;
    for (shell, name) in [
        (Shell::Bash, "kubelet-drift.bash"),
        (Shell::Zsh, "_kubelet-drift"),
        (Shell::Fish, "kubelet-drift.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "kubelet-drift", &mut out);
        let p = completions.join(name);
        fs::write(&p, out).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// One page for `cmd` named `name`, then one per visible subcommand (`name-sub`).
fn write_pages(cmd: &Command, dir: &Path, name: &str) -> Result<()> {
    let page = cmd.clone().name(name.to_string());
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .section(SECTION)
        .manual("kubelet-drift")
        .render(&mut out)
        .context("rendering a man page")?;
    let p = dir.join(format!("{name}.{SECTION}"));
    fs::write(&p, out).with_context(|| format!("writing {}", p.display()))?;
    // clap's own `help` subcommand gets no page: `kubelet-drift help run` is `--help`.
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_pages(sub, dir, &format!("{name}-{}", sub.get_name()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    #[test]
    fn pages_and_completions_for_every_subcommand() {
        let cmd = Command::new("kubelet-drift")
            .about("test")
            .subcommand(
                Command::new("check").arg(Arg::new("format").long("format").action(ArgAction::Set)),
            )
            .subcommand(Command::new("hidden").hide(true));
        let dir = tempfile::tempdir().unwrap();
        write(cmd, dir.path()).unwrap();
        let check = fs::read_to_string(dir.path().join("man/kubelet-drift-check.8")).unwrap();
        assert!(check.contains(".TH kubelet-drift-check 8"), "{check}");
        assert!(check.contains("format"), "{check}");
        assert!(dir.path().join("man/kubelet-drift.8").exists());
        assert!(!dir.path().join("man/kubelet-drift-hidden.8").exists());
        let bash = fs::read_to_string(dir.path().join("completions/kubelet-drift.bash")).unwrap();
        assert!(bash.contains("--format"), "{bash}");
        assert!(dir.path().join("completions/_kubelet-drift").exists());
        assert!(dir.path().join("completions/kubelet-drift.fish").exists());
    }
}
