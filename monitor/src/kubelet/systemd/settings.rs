//! The `[Service]` settings of a unit and its drop-ins, read in order as systemd's
//! load-fragment.c applies them: `ExecStart=` (`config_parse_exec`), `Environment=`
//! (`config_parse_environ`), `EnvironmentFile=`, `UnsetEnvironment=`, `Type=`,
//! `WorkingDirectory=`, `RootDirectory=`. An empty value resets a list.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::assembly::Ctx;
use super::envfile;
use super::exec::{ExecCommand, ExecParse, parse_exec};
use super::specifiers::expand_specifiers;
use super::syntax::{Assignment, parse_unit_sections};
use super::words::{EXEC_WORDS, WordError, extract_first_word};
use super::{UnitError, UnitErrorKind};

/// One `EnvironmentFile=` entry: a path (a glob in its last component) and where it was set.
pub(super) struct EnvFileRef {
    pub(super) pattern: String,
    pub(super) optional: bool,
    pub(super) from: PathBuf,
    pub(super) line: usize,
}

/// The settings that decide the command line, after the unit file and every drop-in.
#[derive(Default)]
pub(super) struct ServiceSettings {
    /// Every `ExecStart=` command kept, with the file and line that set it.
    pub(super) commands: Vec<(ExecCommand, PathBuf, usize)>,
    /// `Environment=` assignments, each name once (the last value wins).
    pub(super) environment: HashMap<String, String>,
    pub(super) env_files: Vec<EnvFileRef>,
    pub(super) unset_env: Vec<String>,
    pub(super) service_type: String,
    pub(super) working_directory: Option<PathBuf>,
    pub(super) root_directory: Option<PathBuf>,
    /// Lines systemd ignores or warns about.
    pub(super) notes: Vec<String>,
}

/// Where a setting is, for errors and notes.
struct At<'a, 'c> {
    cx: &'a Ctx<'c>,
    path: &'a Path,
    line: usize,
}

impl At<'_, '_> {
    fn here(&self, m: &str) -> String {
        format!("{}:{}: {m}", self.path.display(), self.line)
    }
    fn err(&self, kind: UnitErrorKind, message: String) -> UnitError {
        self.cx.err(kind, Some(self.path), Some(self.line), message)
    }
    fn unsupported(&self, message: String) -> UnitError {
        self.err(UnitErrorKind::Unsupported, message)
    }
}

/// Reads the `[Service]` settings of `files` (the unit file first, then the drop-ins in order).
pub(super) fn read_settings(
    cx: &Ctx,
    files: &[(PathBuf, String)],
    unit_name: &str,
) -> Result<ServiceSettings, UnitError> {
    let mut s = ServiceSettings::default();
    for (path, text) in files {
        let assignments = parse_unit_sections(text, &|section| section == "Service")
            .map_err(|(line, msg)| cx.err(UnitErrorKind::Syntax, Some(path), Some(line), msg))?;
        for a in assignments {
            let at = At {
                cx,
                path,
                line: a.line,
            };
            s.apply(&at, &a, unit_name)?;
        }
    }
    Ok(s)
}

impl ServiceSettings {
    fn apply(&mut self, at: &At, a: &Assignment, unit_name: &str) -> Result<(), UnitError> {
        match a.key.as_str() {
            "ExecStart" => self.exec_start(at, &a.value, unit_name),
            "Environment" => self.environment(at, &a.value, unit_name),
            "EnvironmentFile" => self.environment_file(at, &a.value, unit_name),
            "UnsetEnvironment" => self.unset_environment(at, &a.value, unit_name),
            "Type" => {
                self.service_type = a.value.clone();
                Ok(())
            }
            "WorkingDirectory" => self.working_directory(at, &a.value, unit_name),
            "RootDirectory" => self.root_directory(at, &a.value, unit_name),
            _ => Ok(()),
        }
    }

    fn exec_start(&mut self, at: &At, value: &str, unit_name: &str) -> Result<(), UnitError> {
        if value.is_empty() {
            self.commands.clear();
            return Ok(());
        }
        match parse_exec(value, unit_name) {
            Ok((cmds, ignored)) => {
                if let Some(why) = ignored {
                    self.notes.push(at.here(&format!("ExecStart: {why}")));
                }
                self.commands.extend(
                    cmds.into_iter()
                        .map(|c| (c, at.path.to_path_buf(), at.line)),
                );
                Ok(())
            }
            Err(ExecParse::Fatal(m)) => Err(at.err(
                UnitErrorKind::Syntax,
                format!("ExecStart= refused by systemd, the unit does not load: {m}"),
            )),
            Err(ExecParse::Unsupported(m)) => Err(at.unsupported(m)),
        }
    }

    fn environment(&mut self, at: &At, value: &str, unit_name: &str) -> Result<(), UnitError> {
        if value.is_empty() {
            self.environment.clear();
            return Ok(());
        }
        let s: Vec<char> = value.chars().collect();
        let mut pos = 0;
        loop {
            let w =
                match extract_first_word(&s, &mut pos, EXEC_WORDS) {
                    Ok(Some(w)) => w,
                    Ok(None) => break,
                    Err(WordError::EightBit) => {
                        return Err(at.unsupported(
                            "Environment=: an escape produces a non-UTF-8 byte".into(),
                        ));
                    }
                    Err(WordError::Invalid) => {
                        self.notes.push(at.here(
                            "Environment=: invalid syntax, rest of the line ignored by systemd",
                        ));
                        break;
                    }
                };
            let w = expand_specifiers(&w, unit_name).map_err(|e| at.unsupported(e))?;
            match w.split_once('=') {
                Some((k, v)) if envfile::env_name_is_valid(k) => {
                    self.environment.insert(k.to_owned(), v.to_owned());
                }
                _ => self.notes.push(at.here(&format!(
                    "Environment=: invalid assignment {w:?} ignored by systemd"
                ))),
            }
        }
        Ok(())
    }

    fn environment_file(&mut self, at: &At, value: &str, unit_name: &str) -> Result<(), UnitError> {
        if value.is_empty() {
            self.env_files.clear();
            return Ok(());
        }
        let v = expand_specifiers(value, unit_name).map_err(|e| at.unsupported(e))?;
        let (optional, p) = match v.strip_prefix('-') {
            Some(p) => (true, p.to_owned()),
            None => (false, v.clone()),
        };
        if !p.starts_with('/') {
            self.notes.push(at.here(&format!(
                "EnvironmentFile={v}: not an absolute path, ignored by systemd"
            )));
            return Ok(());
        }
        self.env_files.push(EnvFileRef {
            pattern: p,
            optional,
            from: at.path.to_path_buf(),
            line: at.line,
        });
        Ok(())
    }

    fn unset_environment(
        &mut self,
        at: &At,
        value: &str,
        unit_name: &str,
    ) -> Result<(), UnitError> {
        if value.is_empty() {
            self.unset_env.clear();
            return Ok(());
        }
        let s: Vec<char> = value.chars().collect();
        let mut pos = 0;
        while let Ok(Some(w)) = extract_first_word(&s, &mut pos, EXEC_WORDS) {
            let w = expand_specifiers(&w, unit_name).map_err(|e| at.unsupported(e))?;
            self.unset_env.push(w);
        }
        Ok(())
    }

    fn working_directory(
        &mut self,
        at: &At,
        value: &str,
        unit_name: &str,
    ) -> Result<(), UnitError> {
        let v = value.strip_prefix('-').unwrap_or(value);
        if v.is_empty() {
            self.working_directory = None;
        } else if v == "~" {
            self.working_directory = Some(PathBuf::from("/root"));
            self.notes
                .push(at.here("WorkingDirectory=~ taken as /root (the home of User=root)"));
        } else {
            match expand_specifiers(v, unit_name).map_err(|e| at.unsupported(e))? {
                v if v.starts_with('/') => self.working_directory = Some(PathBuf::from(v)),
                v => self.notes.push(at.here(&format!(
                    "WorkingDirectory={v}: not absolute, ignored by systemd"
                ))),
            }
        }
        Ok(())
    }

    fn root_directory(&mut self, at: &At, value: &str, unit_name: &str) -> Result<(), UnitError> {
        if value.is_empty() {
            self.root_directory = None;
            return Ok(());
        }
        match expand_specifiers(value, unit_name).map_err(|e| at.unsupported(e))? {
            v if v.starts_with('/') => self.root_directory = Some(PathBuf::from(v)),
            _ => self
                .notes
                .push(at.here("RootDirectory=: not absolute, ignored by systemd")),
        }
        Ok(())
    }

    /// The one command systemd would start, or why there is none.
    pub(super) fn the_command(
        &mut self,
        cx: &Ctx,
        unit_path: &Path,
        unit_name: &str,
    ) -> Result<(ExecCommand, PathBuf, usize), UnitError> {
        let oneshot = self.service_type == "oneshot";
        if self.commands.is_empty() {
            return Err(cx.err(
                UnitErrorKind::NoExecStart,
                Some(unit_path),
                None,
                format!(
                    "{unit_name} has no ExecStart= after its drop-ins: systemd refuses to start it"
                ),
            ));
        }
        if self.commands.len() > 1 {
            let (_, p, l) = &self.commands[1];
            return Err(cx.err(
                if oneshot {
                    UnitErrorKind::Unsupported
                } else {
                    UnitErrorKind::MultipleExecStart
                },
                Some(p),
                Some(*l),
                if oneshot {
                    "Type=oneshot unit with several ExecStart= commands: which one is the kubelet is not determined".into()
                } else {
                    format!(
                        "{unit_name} has more than one ExecStart= (a drop-in adds one without resetting with an empty ExecStart= first): systemd refuses to load it"
                    )
                },
            ));
        }
        Ok(self.commands.remove(0))
    }
}
