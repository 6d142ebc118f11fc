//! The environment systemd passes to the service: `Environment=`, then each
//! `EnvironmentFile=` in order (globs in the last component; a missing required file fails the
//! start), then `UnsetEnvironment=` (exec_context_load_environment() and
//! build_environment() in execute.c / exec-invoke.c).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::assembly::{Ctx, host_of};
use super::envfile;
use super::settings::{EnvFileRef, ServiceSettings};
use super::{UnitError, UnitErrorKind};

/// Simple shell glob match of one path component (`*`, `?`; `[` is refused by the caller).
fn glob_match(pat: &[char], name: &[char]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|i| glob_match(&pat[1..], &name[i..])),
        Some('?') => !name.is_empty() && glob_match(&pat[1..], &name[1..]),
        Some(c) => name.first() == Some(c) && glob_match(&pat[1..], &name[1..]),
    }
}

/// The files one `EnvironmentFile=` names (inside the root), in order.
fn env_file_paths(cx: &mut Ctx, r: &EnvFileRef) -> Result<Vec<PathBuf>, UnitError> {
    let fs = cx.fs;
    let mut paths = Vec::new();
    let p = Path::new(&r.pattern);
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parent = p.parent().unwrap_or(Path::new("/"));
    let parent_glob = parent.to_string_lossy().contains(['*', '?', '[']);
    if parent_glob || name.contains('[') {
        cx.look(p);
        return Err(cx.err(
            UnitErrorKind::Unsupported,
            Some(&r.from),
            Some(r.line),
            format!(
                "EnvironmentFile={}: this glob is not supported by this tool",
                r.pattern
            ),
        ));
    }
    if name.contains(['*', '?']) {
        cx.input_dirs.push(host_of(fs, parent));
        let pat: Vec<char> = name.chars().collect();
        match fs.read_dir_sorted(parent, Path::new("/")) {
            Ok(entries) => {
                for e in entries {
                    let Some(n) = e.name.to_str() else { continue };
                    let nc: Vec<char> = n.chars().collect();
                    if !n.starts_with('.') && glob_match(&pat, &nc) {
                        paths.push(e.path_in_root);
                    }
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(cx.fs_err(&e)),
        }
    } else {
        paths.push(p.to_path_buf());
    }
    if paths.is_empty() && !r.optional {
        return Err(cx.err(
            UnitErrorKind::EnvironmentFileMissing,
            Some(&r.from),
            Some(r.line),
            format!(
                "EnvironmentFile={} matches no file: the unit fails to start",
                r.pattern
            ),
        ));
    }
    Ok(paths)
}

/// Reads one environment file into `env`; a missing file is an error unless `r` is optional.
fn load_env_file(
    cx: &mut Ctx,
    r: &EnvFileRef,
    p: &Path,
    env: &mut HashMap<String, String>,
    notes: &mut Vec<String>,
) -> Result<(), UnitError> {
    cx.look(p);
    match cx.fs.read_text_optional(p, Path::new("/")) {
        Ok(Some(t)) => {
            let ef = envfile::parse(&t.text);
            for w in &ef.ignored {
                notes.push(format!("{}: {w}", p.display()));
            }
            env.extend(ef.vars);
            Ok(())
        }
        Ok(None) if r.optional => Ok(()),
        Ok(None) => Err(cx.err(
            UnitErrorKind::EnvironmentFileMissing,
            Some(&r.from),
            Some(r.line),
            format!(
                "EnvironmentFile={} is required (no '-' prefix) and missing: systemd fails to start the unit",
                p.display()
            ),
        )),
        Err(e) => Err(cx.fs_err(&e)),
    }
}

/// The service's environment, as systemd builds it from the settings.
pub(super) fn resolve(
    cx: &mut Ctx,
    s: &ServiceSettings,
    notes: &mut Vec<String>,
) -> Result<HashMap<String, String>, UnitError> {
    let mut env: HashMap<String, String> = s.environment.iter().cloned().collect();
    for r in &s.env_files {
        for p in env_file_paths(cx, r)? {
            load_env_file(cx, r, &p, &mut env, notes)?;
        }
    }
    for u in &s.unset_env {
        match u.split_once('=') {
            Some((k, v)) => {
                if env.get(k).map(String::as_str) == Some(v) {
                    env.remove(k);
                }
            }
            None => {
                env.remove(u.as_str());
            }
        }
    }
    Ok(env)
}
