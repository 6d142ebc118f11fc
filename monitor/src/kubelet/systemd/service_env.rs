//! The environment systemd passes to the service: `Environment=`, then each
//! `EnvironmentFile=` in order (globs in the last component; a missing required file fails the
//! start), then `UnsetEnvironment=` (exec_context_load_environment() and
//! build_environment() in execute.c / exec-invoke.c).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::assembly::{Ctx, host_of};
use super::envfile::{self, EnvFile};
use super::settings::{EnvFileRef, ServiceSettings};
use super::{UnitError, UnitErrorKind};
use crate::kubelet::rootfs::DirEntry;

/// Shell glob match of one path component (`*`, `?`; `[` is refused by the caller), by the
/// usual backtracking to the last `*`: at most `pat.len() * name.len()` steps, never
/// exponential in the number of `*`.
fn glob_match(pat: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pat.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some('?') => {
                p += 1;
                n += 1;
            }
            Some(c) if *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|c| *c == '*')
}

/// What one resolution has read already: every environment file and globbed directory is read
/// once however many `EnvironmentFile=` lines name it, so the work stays linear in the input.
#[derive(Default)]
struct Loaded {
    /// Parsed files by path inside the root; `None`: missing.
    files: HashMap<PathBuf, Option<Rc<EnvFile>>>,
    /// Listings of globbed directories; `None`: missing.
    dirs: HashMap<PathBuf, Option<Rc<Vec<DirEntry>>>>,
}

/// The files one `EnvironmentFile=` names (inside the root), in order.
fn env_file_paths(
    cx: &mut Ctx,
    loaded: &mut Loaded,
    r: &EnvFileRef,
) -> Result<Vec<PathBuf>, UnitError> {
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
        let entries = match loaded.dirs.get(parent) {
            Some(e) => e.clone(),
            None => {
                cx.input_dirs.push(host_of(fs, parent));
                let e = match fs.read_dir_sorted(parent, Path::new("/")) {
                    Ok(entries) => Some(Rc::new(entries)),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(cx.fs_err(&e)),
                };
                loaded.dirs.insert(parent.to_path_buf(), e.clone());
                e
            }
        };
        let pat: Vec<char> = name.chars().collect();
        for e in entries.iter().flat_map(|e| e.iter()) {
            let Some(n) = e.name.to_str() else { continue };
            let nc: Vec<char> = n.chars().collect();
            if !n.starts_with('.') && glob_match(&pat, &nc) {
                paths.push(e.path_in_root.clone());
            }
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

/// Reads one environment file (once per resolution); `Ok(None)` when missing.
fn load_env_file(
    cx: &mut Ctx,
    loaded: &mut Loaded,
    p: &Path,
    notes: &mut Vec<String>,
) -> Result<Option<Rc<EnvFile>>, UnitError> {
    if let Some(f) = loaded.files.get(p) {
        return Ok(f.clone());
    }
    cx.look(p);
    let f = match cx.fs.read_text_optional(p, Path::new("/")) {
        Ok(Some(t)) => {
            let ef = envfile::parse(&t.text);
            for w in &ef.ignored {
                notes.push(format!("{}: {w}", p.display()));
            }
            Some(Rc::new(ef))
        }
        Ok(None) => None,
        Err(e) => return Err(cx.fs_err(&e)),
    };
    loaded.files.insert(p.to_path_buf(), f.clone());
    Ok(f)
}

/// The service's environment, as systemd builds it from the settings.
pub(super) fn resolve(
    cx: &mut Ctx,
    s: &ServiceSettings,
    notes: &mut Vec<String>,
) -> Result<HashMap<String, String>, UnitError> {
    let mut loaded = Loaded::default();
    // The files applied, in order. Errors come in systemd's order, from the first entry on.
    let mut applied: Vec<(PathBuf, Rc<EnvFile>)> = Vec::new();
    for r in &s.env_files {
        for p in env_file_paths(cx, &mut loaded, r)? {
            match load_env_file(cx, &mut loaded, &p, notes)? {
                Some(f) => applied.push((p, f)),
                None if r.optional => {}
                None => {
                    return Err(cx.err(
                        UnitErrorKind::EnvironmentFileMissing,
                        Some(&r.from),
                        Some(r.line),
                        format!(
                            "EnvironmentFile={} is required (no '-' prefix) and missing: systemd fails to start the unit",
                            p.display()
                        ),
                    ));
                }
            }
        }
    }
    // Each file sets the same variables each time it is applied, so only its last application
    // can show: applying just that one gives the same environment in linear time.
    let last: HashMap<&Path, usize> = applied
        .iter()
        .enumerate()
        .map(|(i, (p, _))| (p.as_path(), i))
        .collect();
    let mut env = s.environment.clone();
    for (i, (p, f)) in applied.iter().enumerate() {
        if last.get(p.as_path()) == Some(&i) {
            env.extend(f.vars.iter().cloned());
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

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, n: &str) -> bool {
        glob_match(
            &p.chars().collect::<Vec<_>>(),
            &n.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn globs() {
        for (p, n, want) in [
            ("*.env", "a.env", true),
            ("*.env", "a.env.bak", false),
            ("?.env", "a.env", true),
            ("?.env", "ab.env", false),
            ("a*b*c", "a-b-x-c", true),
            ("a*b*c", "a-c-b", false),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("**a", "ba", true),
            ("é*", "é.env", true),
        ] {
            assert_eq!(m(p, n), want, "{p} {n}");
        }
        // Many stars against a long name that almost matches: polynomial, not exponential.
        let t = std::time::Instant::now();
        assert!(!m(&"*a".repeat(20).replace("a*a", "a*b"), &"a".repeat(250)));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }
}
