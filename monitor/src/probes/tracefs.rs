//! tracefs: find it (mount it if missing) and read tracepoint `format` files, so that field
//! offsets come from the running kernel rather than from constants.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, anyhow, bail};

const CANDIDATES: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Returns the tracefs directory, mounting tracefs on /sys/kernel/tracing when no mount has
/// an `events/` directory.
pub fn ensure_mounted() -> Result<PathBuf> {
    for c in CANDIDATES {
        if Path::new(c).join("events").is_dir() {
            return Ok(PathBuf::from(c));
        }
    }
    let target = Path::new(CANDIDATES[0]);
    nix::mount::mount(
        Some("tracefs"),
        target,
        Some("tracefs"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .or_else(|e| {
        // Another process (a second monitor starting at the same moment, a test run in
        // parallel) may have mounted it between our look and our mount: EBUSY then.
        if CANDIDATES
            .iter()
            .any(|c| Path::new(c).join("events").is_dir())
        {
            return Ok(());
        }
        Err(e)
    })
    .map_err(|e| {
        anyhow!(
            "tracefs is not mounted and mounting it on {} failed: {e} (needs CAP_SYS_ADMIN; \
             mount it yourself with `mount -t tracefs tracefs /sys/kernel/tracing`)",
            target.display()
        )
    })?;
    if let Some(c) = CANDIDATES
        .iter()
        .find(|c| Path::new(c).join("events").is_dir())
    {
        Ok(PathBuf::from(c))
    } else {
        bail!(
            "mounted tracefs on {} but it has no events/ directory",
            target.display()
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: u32,
    pub size: u32,
}

/// The fields of a tracepoint, from its `format` file.
#[derive(Clone, Debug, Default)]
pub struct Format {
    pub fields: Vec<Field>,
}

impl Format {
    pub fn read(tracefs: &Path, category: &str, name: &str) -> Result<Format> {
        let path = tracefs
            .join("events")
            .join(category)
            .join(name)
            .join("format");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Format::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Parses lines such as `\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;`.
    pub fn parse(text: &str) -> Result<Format> {
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("field:") else {
                continue;
            };
            let mut decl = None;
            let mut offset = None;
            let mut size = None;
            for part in rest.split(';') {
                let part = part.trim();
                if let Some(v) = part.strip_prefix("offset:") {
                    offset = v.parse::<u32>().ok();
                } else if let Some(v) = part.strip_prefix("size:") {
                    size = v.parse::<u32>().ok();
                } else if decl.is_none() && !part.is_empty() {
                    decl = Some(part.to_string());
                }
            }
            let (Some(decl), Some(offset), Some(size)) = (decl, offset, size) else {
                bail!("malformed field line: {line:?}");
            };
            // The name is the last identifier of the declaration: `int x`, `char comm[16]`,
            // `__data_loc char[] filename`.
            let decl = match decl.trim_end().strip_suffix(']') {
                Some(d) => d.rsplit_once('[').map(|(a, _)| a).unwrap_or(d),
                None => decl.as_str(),
            };
            let name = decl
                .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .find(|s| !s.is_empty())
                .ok_or_else(|| anyhow!("no field name in {line:?}"))?;
            fields.push(Field {
                name: name.to_string(),
                offset,
                size,
            });
        }
        if fields.is_empty() {
            bail!("no fields");
        }
        Ok(Format { fields })
    }

    pub fn field(&self, name: &str) -> Result<&Field> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| anyhow!("no field {name:?}"))
    }

    /// The syscall arguments (fields after `__syscall_nr`), in order.
    pub fn syscall_args(&self) -> Vec<&Field> {
        self.fields
            .iter()
            .skip_while(|f| f.name != "__syscall_nr")
            .skip(1)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAT: &str = "name: sys_enter_openat\nID: 700\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;\n\
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n\
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;\n\
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;\n\n\
print fmt: \"dfd: 0x%08lx\"\n";

    #[test]
    fn parses_syscall_format() {
        let f = Format::parse(OPENAT).unwrap();
        let args: Vec<_> = f
            .syscall_args()
            .iter()
            .map(|f| (f.name.as_str(), f.offset))
            .collect();
        assert_eq!(
            args,
            [("dfd", 16), ("filename", 24), ("flags", 32), ("mode", 40)]
        );
    }

    #[test]
    fn parses_data_loc() {
        let f = Format::parse(
            "\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;\n\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;\n\tfield:char comm[16];\toffset:16;\tsize:16;\tsigned:0;\n",
        )
        .unwrap();
        assert_eq!(f.field("filename").unwrap().offset, 8);
        assert_eq!(f.field("pid").unwrap().offset, 12);
        assert_eq!(f.field("comm").unwrap().offset, 16);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Format::parse("").is_err());
        assert!(Format::parse("\tfield:int x;\toffset:zz;\tsize:4;\n").is_err());
    }
}
