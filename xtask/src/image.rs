//! `cargo xtask image`: a container image of the monitor as an OCI image archive
//! (`target/image/kubelet-drift-<version>.oci.tar`), built from the release binary with no
//! base image: one layer holding the binary and exactly the shared objects `ldd` says it loads
//! (glibc, libgcc_s, the dynamic loader). The archive is an OCI image layout in a tar file, as
//! `podman load -i`, `ctr -n k8s.io images import` and `skopeo copy oci-archive:…` take it.
//! Entries are sorted and stamped with time 0 and owner 0, so the same binary gives the same
//! image digest.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};
use serde_json::json;
use sha2::{Digest, Sha256};

pub const IMAGE_NAME: &str = "kubelet-drift";

/// What goes into the single layer: (path in the image, file on this machine).
fn layer_files(binary: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut files = vec![(PathBuf::from("usr/bin/kubelet-drift"), binary.to_path_buf())];
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() && !text.contains("not a dynamic executable") {
        bail!(
            "ldd {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for line in text.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)";
        // the vDSO has no file.
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            if line.contains("not found") {
                bail!("ldd: {}", line.trim());
            }
            continue;
        };
        let inside = PathBuf::from(path.trim_start_matches('/'));
        // The loader and libraries are looked up by these names: store the real file's bytes
        // under the name (a symlink would point at a file the layer does not have).
        let real = fs::canonicalize(path).with_context(|| format!("resolving {path}"))?;
        files.push((inside, real));
    }
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    Ok(files)
}

/// The uncompressed layer tar: parent directories first, then the files, all owned by 0:0
/// with time 0.
fn layer_tar(files: &[(PathBuf, PathBuf)]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .flat_map(|(inside, _)| inside.ancestors().skip(1).map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    // Empty directories the pod mounts onto (config, host root, tracefs, BTF, journald).
    for d in [
        "etc/kubelet-drift",
        "host",
        "sys",
        "run/systemd/journal",
        "var/lib/kubelet-drift",
        "tmp",
    ] {
        dirs.extend(Path::new(d).ancestors().map(Path::to_path_buf));
    }
    dirs.retain(|d| !d.as_os_str().is_empty());
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(if d == Path::new("tmp") { 0o1777 } else { 0o755 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        b.append_data(&mut h, d, std::io::empty())?;
    }
    for (inside, real) in files {
        let data = fs::read(real).with_context(|| format!("reading {}", real.display()))?;
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, inside, data.as_slice())?;
    }
    Ok(b.into_inner()?)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Writes the OCI archive for `binary`, tagged `kubelet-drift:<version>`, to `out`.
pub fn write_archive(binary: &Path, version: &str, out: &Path) -> Result<String> {
    let files = layer_files(binary)?;
    let tar_bytes = layer_tar(&files)?;
    let diff_id = sha256(&tar_bytes);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar_bytes)?;
    let layer = gz.finish()?;
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": ["/usr/bin/kubelet-drift"],
            "Cmd": ["run"],
            "WorkingDir": "/",
            "Labels": {
                "org.opencontainers.image.title": IMAGE_NAME,
                "org.opencontainers.image.version": version,
                "org.opencontainers.image.licenses": "MIT OR Apache-2.0",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "cargo xtask image", "created": "1970-01-01T00:00:00Z"}],
        "created": "1970-01-01T00:00:00Z",
    }))?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": sha256(&layer),
            "size": layer.len(),
        }],
    }))?;
    let reference = format!("{IMAGE_NAME}:{version}");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(&manifest),
            "size": manifest.len(),
            "annotations": {
                // podman load names the image after this one; ctr import after the next.
                "org.opencontainers.image.ref.name": reference,
                "io.containerd.image.name": format!("docker.io/library/{reference}"),
            },
        }],
    }))?;
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index),
    ];
    for blob in [config, manifest, layer] {
        let name = format!("blobs/sha256/{}", &sha256(&blob)["sha256:".len()..]);
        entries.push((name, blob));
    }
    let mut archive = tar::Builder::new(Vec::new());
    for d in ["blobs", "blobs/sha256"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_mtime(0);
        h.set_size(0);
        archive.append_data(&mut h, d, std::io::empty())?;
    }
    for (name, data) in &entries {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        archive.append_data(&mut h, name, data.as_slice())?;
    }
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(out, archive.into_inner()?).with_context(|| format!("writing {}", out.display()))?;
    Ok(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The archive is a valid OCI image that skopeo (installed by `cargo xtask test`) reads and
    /// copies with every digest checked — what `podman load` does with it.
    #[test]
    fn archive_of_a_dynamic_binary_loads() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("img.oci.tar");
        // Any dynamically linked binary stands for the monitor here.
        let reference = write_archive(Path::new("/bin/true"), "0.0.0-test", &out).unwrap();
        assert_eq!(reference, "kubelet-drift:0.0.0-test");
        let inspect = Command::new("skopeo")
            .args(["inspect", "--config"])
            .arg(format!("oci-archive:{}", out.display()))
            .output()
            .expect("skopeo is installed by `cargo xtask test`");
        assert!(
            inspect.status.success(),
            "{}",
            String::from_utf8_lossy(&inspect.stderr)
        );
        let config: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert_eq!(config["config"]["Entrypoint"][0], "/usr/bin/kubelet-drift");
        assert_eq!(config["os"], "linux");
        let copy = Command::new("skopeo")
            .arg("copy")
            .arg(format!("oci-archive:{}", out.display()))
            .arg(format!("dir:{}", dir.path().join("copied").display()))
            .output()
            .unwrap();
        assert!(
            copy.status.success(),
            "{}",
            String::from_utf8_lossy(&copy.stderr)
        );
        // Same input, same bytes: the image digest is reproducible.
        let again = dir.path().join("again.oci.tar");
        write_archive(Path::new("/bin/true"), "0.0.0-test", &again).unwrap();
        assert_eq!(fs::read(&out).unwrap(), fs::read(&again).unwrap());
    }

    #[test]
    fn layer_holds_the_loader_and_libc() {
        let files = layer_files(Path::new("/bin/true")).unwrap();
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert!(names.iter().any(|n| n.contains("ld-linux")), "{names:?}");
        assert!(names.iter().any(|n| n.ends_with("libc.so.6")), "{names:?}");
    }
}
