//! Assembly: the unit file systemd would load for a name, its drop-ins in systemd's order and
//! masking (dropin.c, `unit_file_find_dropin_paths`), and the `ExecStart=` argv expanded at the
//! end. The `[Service]` settings are read in [`super::settings`], the environment resolved in
//! [`super::service_env`].

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::environment::expand_argv;
use super::exec::ExecCommand;
use super::{AssembledUnit, UNIT_PATH, UnitError, UnitErrorKind, service_env, settings};
use crate::kubelet::rootfs::{FileKind, FsError, FsErrorKind, RootFs};

/// The host path of `p` (inside the root), without following symlinks.
fn lexical_host(fs: &RootFs, p: &Path) -> PathBuf {
    fs.root().join(p.strip_prefix("/").unwrap_or(p))
}

/// The host path of `p` (inside the root), symlinks followed inside the root where they resolve.
pub(super) fn host_of(fs: &RootFs, p: &Path) -> PathBuf {
    fs.resolve(p, Path::new("/"))
        .unwrap_or_else(|_| lexical_host(fs, p))
}

/// Whether `p` (inside the root) resolves to `/dev/null` (a masked unit or drop-in).
fn is_dev_null(fs: &RootFs, p: &Path) -> bool {
    match fs.resolve(p, Path::new("/")) {
        Ok(h) => h == fs.root().join("dev/null"),
        Err(_) => false,
    }
}

/// A unit file or drop-in (inside the root) and its text.
pub(super) type FileText = (PathBuf, String);

/// One assembly: the root, and every input read or looked for (for the daemon to watch, even
/// when the assembly fails).
pub(super) struct Ctx<'a> {
    pub(super) fs: &'a RootFs,
    inputs: Vec<PathBuf>,
    pub(super) input_dirs: Vec<PathBuf>,
}

impl Ctx<'_> {
    pub(super) fn err(
        &self,
        kind: UnitErrorKind,
        path: Option<&Path>,
        line: Option<usize>,
        message: String,
    ) -> UnitError {
        UnitError {
            kind,
            path: path.map(Path::to_path_buf),
            line,
            message,
            inputs: dedup(self.inputs.clone()),
            input_dirs: dedup(self.input_dirs.clone()),
        }
    }

    pub(super) fn fs_err(&self, e: &FsError) -> UnitError {
        self.err(
            UnitErrorKind::Unreadable,
            Some(&e.path),
            None,
            e.to_string(),
        )
    }

    /// Records `p` (inside the root) as an input: its lexical host path and, if different, the
    /// file it resolves to.
    pub(super) fn look(&mut self, p: &Path) {
        let lex = lexical_host(self.fs, p);
        let res = host_of(self.fs, p);
        self.inputs.push(lex.clone());
        if res != lex {
            self.inputs.push(res);
        }
    }

    /// Reads a unit file or drop-in: `Ok(None)` when missing, `Ok(Some(None))` when masked.
    fn read_unit_file(&mut self, p: &Path) -> Result<Option<Option<String>>, UnitError> {
        self.look(p);
        if is_dev_null(self.fs, p) {
            return Ok(Some(None));
        }
        match self.fs.read_text_optional(p, Path::new("/")) {
            Ok(None) => Ok(None),
            Ok(Some(t)) if t.text.is_empty() => Ok(Some(None)),
            Ok(Some(t)) => Ok(Some(Some(t.text))),
            Err(e) => Err(self.fs_err(&e)),
        }
    }
}

/// `v` without repeats, in first-seen order.
fn dedup(v: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut seen = HashSet::with_capacity(v.len());
    v.into_iter().filter(|p| seen.insert(p.clone())).collect()
}

/// The drop-in directories of `unit_name`, in systemd's order: `<unit>.d/` of every unit
/// directory, then the top-level `<type>.d/` of every unit directory.
fn dropin_dirs(unit_name: &str) -> Vec<PathBuf> {
    let ty = unit_name
        .rsplit_once('.')
        .map(|(_, t)| t)
        .unwrap_or("service");
    UNIT_PATH
        .iter()
        .map(|d| Path::new(d).join(format!("{unit_name}.d")))
        .chain(
            UNIT_PATH
                .iter()
                .map(|d| Path::new(d).join(format!("{ty}.d"))),
        )
        .collect()
}

/// The unit file: the first found along [`UNIT_PATH`], refused when masked.
fn find_unit(cx: &mut Ctx, unit_name: &str) -> Result<(PathBuf, String), UnitError> {
    for d in UNIT_PATH {
        let p = Path::new(d).join(unit_name);
        match cx.read_unit_file(&p)? {
            None => continue,
            Some(None) => {
                return Err(cx.err(
                    UnitErrorKind::Masked,
                    Some(&p),
                    None,
                    format!("{unit_name} is masked (linked to /dev/null or empty): systemd will not start it"),
                ));
            }
            Some(Some(text)) => return Ok((p, text)),
        }
    }
    Err(cx.err(
        UnitErrorKind::NotFound,
        None,
        None,
        format!(
            "no {unit_name} in any systemd unit directory ({})",
            UNIT_PATH.join(", ")
        ),
    ))
}

/// The names of the drop-ins that count: `*.conf` in `dirs`, the first of each name wins (it
/// masks the same name in later directories), sorted by name bytes.
fn dropin_names(cx: &Ctx, dirs: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, UnitError> {
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for d in dirs {
        let entries = match cx.fs.read_dir_sorted(d, Path::new("/")) {
            Ok(e) => e,
            Err(e) if e.is_not_found() => continue,
            Err(e) if matches!(e.kind, FsErrorKind::NotADirectoryToList) => continue,
            Err(e) => return Err(cx.fs_err(&e)),
        };
        for e in entries {
            let Some(name) = e.name.to_str() else {
                // systemd does not require UTF-8 file names: skipping one could hide a
                // drop-in that sets the flag. Unknown is an error, never a pass.
                if e.name.as_bytes().ends_with(b".conf") && e.kind != FileKind::Dir {
                    return Err(cx.err(
                        UnitErrorKind::Unsupported,
                        Some(&e.path_in_root),
                        None,
                        "a drop-in whose name is not UTF-8 text cannot be evaluated exactly".into(),
                    ));
                }
                continue;
            };
            if !name.ends_with(".conf") || name.starts_with('.') || e.kind == FileKind::Dir {
                continue;
            }
            if seen.insert(name.to_owned()) {
                names.push((name.to_owned(), e.path_in_root.clone()));
            }
        }
    }
    names.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(names)
}

/// Reads the drop-ins that count, in order: `(path, text)` of those with content (masked and
/// empty ones are left out) and their paths.
fn collect_dropins(
    cx: &mut Ctx,
    dirs: &[PathBuf],
) -> Result<(Vec<FileText>, Vec<PathBuf>), UnitError> {
    let fs = cx.fs;
    let mut files = Vec::new();
    let mut dropins = Vec::new();
    for (_, p) in dropin_names(cx, dirs)? {
        let dangling = fs.is_symlink(&p, Path::new("/"))
            && !is_dev_null(fs, &p)
            && fs
                .read_text(&p, Path::new("/"))
                .is_err_and(|e| e.is_not_found());
        if dangling {
            cx.look(&p);
            return Err(cx.err(
                UnitErrorKind::Unsupported,
                Some(&p),
                None,
                "drop-in is a dangling symlink; systemd versions differ in whether it masks other drop-ins".into(),
            ));
        }
        if let Some(Some(text)) = cx.read_unit_file(&p)? {
            dropins.push(p.clone());
            files.push((p, text));
        }
    }
    Ok((files, dropins))
}

/// Unset variables named one by one in the notes; more are counted (a finding stays readable
/// whatever the unit holds).
const MAX_UNSET_NOTES: usize = 32;

/// The argv systemd executes for `cmd`: `$VAR` and `${VAR}` expanded unless the `:` prefix
/// turned expansion off.
fn expand_exec_start(
    cx: &Ctx,
    cmd: &ExecCommand,
    from: &Path,
    line: usize,
    env: &std::collections::HashMap<String, String>,
    notes: &mut Vec<String>,
) -> Result<Vec<String>, UnitError> {
    let argv = if cmd.no_env_expand {
        cmd.argv.clone()
    } else {
        let (argv, unset) = expand_argv(&cmd.argv, env).map_err(|e| {
            cx.err(
                UnitErrorKind::TooLarge,
                Some(from),
                Some(line),
                format!("ExecStart=: {e}"),
            )
        })?;
        let shown = unset.len().min(MAX_UNSET_NOTES);
        for u in &unset[..shown] {
            notes.push(format!(
                "{}:{}: ${u} is not set: expands to no argument",
                from.display(),
                line
            ));
        }
        if unset.len() > shown {
            notes.push(format!(
                "{}:{}: {} more unset variables expand to no argument",
                from.display(),
                line,
                unset.len() - shown
            ));
        }
        argv
    };
    if argv.is_empty() {
        return Err(cx.err(
            UnitErrorKind::NoExecStart,
            Some(from),
            Some(line),
            "ExecStart= expands to an empty command line".into(),
        ));
    }
    Ok(argv)
}

/// Assembles the argv systemd would start `unit_name` with, from the files in `fs`.
///
/// A root that keeps results ([`RootFs::keeping`], the daemon's) gets the assembly it kept
/// while none of the files, directories and names it read or looked for changed (see
/// `rootfs::kept` for how that is known): a config edit then re-reads only the config.
pub fn assemble(fs: &RootFs, unit_name: &str) -> Result<AssembledUnit, UnitError> {
    // One view for the whole assembly: the unit directories' paths are resolved again and
    // again (every unit and drop-in candidate), each lstat is made once.
    let snapshot = fs.snapshot();
    let fs = &snapshot;
    let key = format!("systemd unit {unit_name}");
    type Kept = Result<AssembledUnit, UnitError>;
    if let Some(kept) = fs.kept::<Kept>(&key) {
        return kept;
    }
    let start = fs.keep_start();
    let r = assemble_read(fs, unit_name);
    // Errors other than "no such unit" may be passing (EIO, a file being replaced).
    if r.as_ref().is_ok() || r.as_ref().is_err_and(|e| e.kind == UnitErrorKind::NotFound) {
        fs.keep(&key, r.clone(), start);
    }
    r
}

/// [`assemble`], reading everything.
fn assemble_read(fs: &RootFs, unit_name: &str) -> Result<AssembledUnit, UnitError> {
    let mut cx = Ctx {
        fs,
        inputs: Vec::new(),
        input_dirs: Vec::new(),
    };
    for d in UNIT_PATH {
        cx.input_dirs.push(host_of(fs, Path::new(d)));
    }
    let dirs = dropin_dirs(unit_name);
    for d in &dirs {
        cx.input_dirs.push(host_of(fs, d));
    }
    let (unit_path, unit_text) = find_unit(&mut cx, unit_name)?;
    let (dropin_files, dropins) = collect_dropins(&mut cx, &dirs)?;
    let mut files = vec![(unit_path.clone(), unit_text)];
    files.extend(dropin_files);

    let mut s = settings::read_settings(&cx, &files, unit_name)?;
    let (cmd, exec_from, exec_line) = s.the_command(&cx, &unit_path, unit_name)?;
    let mut notes = std::mem::take(&mut s.notes);
    let env = service_env::resolve(&mut cx, &s, &mut notes)?;
    let argv = expand_exec_start(&cx, &cmd, &exec_from, exec_line, &env, &mut notes)?;
    Ok(AssembledUnit {
        unit_path,
        exec_start_from: exec_from,
        exec_start_line: exec_line,
        argv,
        env,
        inputs: dedup(cx.inputs),
        input_dirs: dedup(cx.input_dirs),
        dropins,
        working_directory: s.working_directory,
        root_directory: s.root_directory,
        notes,
    })
}
