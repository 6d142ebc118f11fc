//! The metrics written for node_exporter's textfile collector: the same exposition, replaced
//! atomically (a temporary file in the same directory, then rename), so the collector never
//! reads half a file. For nodes where the monitor runs under the hardened unit with
//! `PrivateNetwork=yes` and so serves no port.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use super::Metrics;

/// Writes `metrics` to `path` (must end in `.prom`, as the collector reads only those).
pub fn write(metrics: &Metrics, path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .context("metrics textfile: the path has no file name")?;
    let mut tmp = PathBuf::from(dir);
    tmp.push(format!(".{}.tmp", name.to_string_lossy()));
    let mut f = fs::File::create(&tmp)
        .with_context(|| format!("metrics textfile: creating {}", tmp.display()))?;
    f.write_all(metrics.render().as_bytes())
        .and_then(|()| f.sync_data())
        .with_context(|| format!("metrics textfile: writing {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("metrics textfile: renaming onto {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kubelet_drift.prom");
        let m = Metrics::new();
        m.set_status("4.2.7", "after_restart", "fail");
        write(&m, &p).unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.contains(r#"status="fail"} 1"#), "{text}");
        m.set_status("4.2.7", "after_restart", "pass");
        write(&m, &p).unwrap();
        assert!(
            fs::read_to_string(&p)
                .unwrap()
                .contains(r#"status="pass"} 1"#)
        );
        // No temporary file is left behind for the collector to read.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
