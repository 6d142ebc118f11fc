//! The after-restart argv of `kubelet.service`, assembled as systemd does when it starts the unit.
//!
//! Followed from systemd's source (conf-parser.c, load-fragment.c `config_parse_exec`/
//! `config_parse_environ`, extract-word.c, env-util.c `replace_env_argv`, dropin.c,
//! env-file.c) and systemd.unit(5), systemd.service(5), systemd.exec(5), systemd.syntax(7):
//!
//! - Unit search path, first found wins ([`UNIT_PATH`]); a unit that is a symlink to
//!   `/dev/null` or an empty file is masked (the kubelet will not start: an error).
//! - Drop-ins: `*.conf` in `kubelet.service.d/` of every unit directory, then in the top-level
//!   `service.d/` of every unit directory. A name seen first (more specific, then higher
//!   priority directory) masks the same name later; a drop-in linked to `/dev/null` (or empty)
//!   masks without content. The survivors apply sorted by file name, after the unit file.
//! - Syntax: lines end at LF, CR, CR LF or LF CR (`read_line()`), each shorter than
//!   [`LONG_LINE_MAX`]; comment lines (`#`, `;`, also inside a continuation), a trailing
//!   unescaped `\` continues the line (replaced by a space; the whole under `LONG_LINE_MAX`
//!   too), keys and values trimmed, an invalid section header fails the load. Only `[Service]` keys `ExecStart`, `Environment`,
//!   `EnvironmentFile`, `UnsetEnvironment`, `Type`, `WorkingDirectory`, `RootDirectory` are read.
//! - `ExecStart=`: empty resets; a lone `;` separates commands; prefixes `-@:+!`/`!!`; words
//!   split with systemd's quoting and C escapes (an invalid escape is kept verbatim); more than one
//!   command in a non-oneshot unit is refused.
//! - `Environment=` (quoted words, invalid ones ignored, empty resets), `EnvironmentFile=`
//!   (`-` optional, glob in the last component, files override `Environment=` in order, a missing
//!   required file fails the start), `UnsetEnvironment=` applied last.
//! - At exec: `$VAR` as a whole word splits on blanks (with quote removal; unset or invalid:
//!   no word at all), `${VAR}` anywhere stays one word (unset: empty), `$$` is `$`; a `:` prefix
//!   turns expansion off.
//! - At exec, a command line over [`EXEC_ARGS_MAX`] bytes fails (E2BIG): an error.
//! - Specifiers: `%%`, `%n %N %p %P %i %I %j %J %f`, and the fixed directories
//!   `%t %S %C %L %E %T %V`. Specifiers that depend on the running host (`%H %m %b %u %h` ...)
//!   are refused as [`UnitErrorKind::Unsupported`]: an error finding, never a guess.
//!
//! Not modelled: the manager's own environment (`PATH`, `PassEnvironment=`, `$HOME`...), unit
//! aliases and their drop-ins, `foo-.service.d` prefix drop-ins (the name `kubelet` has no
//! dash), `.include`, and `RootDirectory=` images (reported, not applied here).

//!
//! The rooms, each named for what it holds: [`words`] (extract-word.c), [`specifiers`],
//! [`syntax`] (conf-parser.c), [`exec`] (`ExecStart=`), [`environment`] (expansion at exec),
//! [`envfile`] (`EnvironmentFile=` files), and the assembly: [`assembly`] (finding the unit,
//! collecting drop-ins), [`settings`] (reading the `[Service]` settings), [`service_env`]
//! (resolving the environment) and the `ExecStart=` expansion at the end of [`assembly`].

use std::collections::HashMap;
use std::path::PathBuf;

mod assembly;
pub mod envfile;
mod environment;
mod exec;
mod service_env;
mod settings;
mod specifiers;
mod syntax;
mod words;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests_bounds;
#[cfg(test)]
mod tests_layouts;
#[cfg(test)]
mod tests_rules;

pub use assembly::assemble;
pub use environment::{ArgsTooLong, EXEC_ARGS_MAX, expand_argv};
pub use exec::{ExecCommand, ExecParse, parse_exec};
pub use syntax::{Assignment, LONG_LINE_MAX, parse_unit_text};
pub use words::split_value;

/// systemd's system unit search path, highest priority first (systemd.unit(5)).
pub const UNIT_PATH: &[&str] = &[
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/generator.late",
];

/// What systemd would run for the unit's `ExecStart=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssembledUnit {
    /// The unit file, inside the root.
    pub unit_path: PathBuf,
    /// The file (unit or drop-in, inside the root) whose `ExecStart=` is used.
    pub exec_start_from: PathBuf,
    /// 1-based line of that `ExecStart=` (where its logical line starts).
    pub exec_start_line: usize,
    /// The argv after environment expansion; `argv[0]` is what the program sees.
    pub argv: Vec<String>,
    /// The environment systemd passes (from the unit only: the manager's own is not modelled).
    pub env: HashMap<String, String>,
    /// Host paths of every unit file, drop-in and environment file read or looked for.
    pub inputs: Vec<PathBuf>,
    /// Host paths of the unit directories and drop-in directories.
    pub input_dirs: Vec<PathBuf>,
    /// The drop-ins applied, in order, inside the root.
    pub dropins: Vec<PathBuf>,
    /// `WorkingDirectory=` inside the root, if set (systemd's default for system services: `/`).
    pub working_directory: Option<PathBuf>,
    /// `RootDirectory=`, if set: the kubelet then runs chrooted there.
    pub root_directory: Option<PathBuf>,
    /// Things systemd ignores or warns about (ignored lines, unset variables).
    pub notes: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitErrorKind {
    /// No unit file in any unit directory.
    NotFound,
    /// The unit file is a symlink to `/dev/null` or empty.
    Masked,
    /// A unit file, drop-in or environment file could not be read.
    Unreadable,
    /// systemd refuses to load the unit (invalid section header, bad `ExecStart=`).
    Syntax,
    /// No `ExecStart=` is left.
    NoExecStart,
    /// More than one `ExecStart=` command in a unit that is not `Type=oneshot`.
    MultipleExecStart,
    /// A required `EnvironmentFile=` is missing: the unit fails to start.
    EnvironmentFileMissing,
    /// Something this tool does not model well enough to give a verdict.
    Unsupported,
    /// Beyond a limit where systemd or the kernel gives up: a line over systemd's
    /// `LONG_LINE_MAX`, a command line over what `execve()` takes.
    TooLarge,
}

/// Why no argv could be assembled; carries the inputs so that the daemon can still watch them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", match (path, line) {
    (Some(p), Some(l)) => format!("{}:{l}: ", p.display()),
    (Some(p), None) => format!("{}: ", p.display()),
    _ => String::new(),
})]
pub struct UnitError {
    pub kind: UnitErrorKind,
    /// The file at fault, inside the root.
    pub path: Option<PathBuf>,
    pub line: Option<usize>,
    pub message: String,
    pub inputs: Vec<PathBuf>,
    pub input_dirs: Vec<PathBuf>,
}
