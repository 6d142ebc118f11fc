//! Reading inside a root: resolution, refusals, listings and walks, kept listings.
#![allow(clippy::type_complexity)]

use super::error::kind_of_io;
use super::*;
use std::ffi::CString;
use std::os::unix::fs::symlink;

fn setup() -> (tempfile::TempDir, RootFs) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    fs::create_dir_all(root.join("etc/kubernetes")).unwrap();
    fs::create_dir_all(root.join("var/lib/kubelet")).unwrap();
    fs::write(
        root.join("var/lib/kubelet/config.yaml"),
        "kind: KubeletConfiguration\n",
    )
    .unwrap();
    // Outside the root: must never be reached.
    fs::write(d.path().join("secret.yaml"), "outside\n").unwrap();
    fs::create_dir_all(d.path().join("etc")).unwrap();
    fs::write(d.path().join("etc/outside.yaml"), "outside\n").unwrap();
    let fs = RootFs::new(&root);
    (d, fs)
}

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

fn read(fs: &RootFs, p: &str) -> Result<String, FsError> {
    fs.read_text(Path::new(p), Path::new("/")).map(|t| t.text)
}

#[test]
fn reads_plain_file_and_relative_paths() {
    let (_d, fs) = setup();
    let t = fs
        .read_text(Path::new("config.yaml"), Path::new("/var/lib/kubelet"))
        .unwrap();
    assert_eq!(t.text, "kind: KubeletConfiguration\n");
    assert_eq!(t.path_in_root, Path::new("/var/lib/kubelet/config.yaml"));
    assert_eq!(t.host_path, fs.root().join("var/lib/kubelet/config.yaml"));
    assert!(read(&fs, "/var/lib/../lib/./kubelet/config.yaml").is_ok());
}

#[test]
fn symlinks_stay_inside_the_root() {
    let (_d, fs) = setup();
    let r = fs.root().to_path_buf();
    // Absolute target: relative to the root, not the host.
    symlink("/var/lib/kubelet/config.yaml", r.join("etc/abs.yaml")).unwrap();
    assert_eq!(
        read(&fs, "/etc/abs.yaml").unwrap(),
        "kind: KubeletConfiguration\n"
    );
    // Climbing out with ../../..: clamps at the root.
    symlink(
        "../../../../../secret.yaml",
        r.join("etc/kubernetes/escape.yaml"),
    )
    .unwrap();
    let e = read(&fs, "/etc/kubernetes/escape.yaml").unwrap_err();
    assert!(matches!(e.kind, FsErrorKind::DanglingSymlink { .. }), "{e}");
    assert_eq!(
        fs.resolve(Path::new("/etc/kubernetes/escape.yaml"), Path::new("/"))
            .unwrap(),
        r.join("secret.yaml")
    );
    // An absolute target naming a host path that exists outside: still inside the root.
    symlink(
        fs.root().parent().unwrap().join("etc/outside.yaml"),
        r.join("etc/host-abs.yaml"),
    )
    .unwrap();
    assert!(read(&fs, "/etc/host-abs.yaml").unwrap_err().is_not_found());
    // `..` in the asked path never climbs above the root either.
    assert!(read(&fs, "/../../secret.yaml").unwrap_err().is_not_found());
    assert_eq!(
        read(&fs, "/../../var/lib/kubelet/config.yaml").unwrap(),
        "kind: KubeletConfiguration\n"
    );
    // Directory symlinks in the middle, and `..` after them goes to the target's parent.
    symlink("/var/lib/kubelet", r.join("etc/kl")).unwrap();
    assert!(read(&fs, "/etc/kl/config.yaml").is_ok());
    assert!(read(&fs, "/etc/kl/../kubelet/config.yaml").is_ok());
}

#[test]
fn refusals() {
    let (d, fs) = setup();
    let r = fs.root().to_path_buf();
    mkfifo(&r.join("etc/fifo.yaml"));
    symlink("/etc/fifo.yaml", r.join("etc/to-fifo.yaml")).unwrap();
    symlink("loop2", r.join("etc/loop1")).unwrap();
    symlink("loop1", r.join("etc/loop2")).unwrap();
    symlink("/nowhere.yaml", r.join("etc/dangling.yaml")).unwrap();
    let big = fs::File::create(r.join("etc/big.yaml")).unwrap();
    big.set_len(5 * 1024 * 1024).unwrap();
    fs::write(r.join("etc/big-text.yaml"), "a".repeat(5 * 1024 * 1024)).unwrap();
    fs::write(r.join("etc/latin1.yaml"), b"name: caf\xe9\n").unwrap();
    fs::write(r.join("etc/nul.yaml"), b"a: 1\n\0\0").unwrap();
    let sock = std::os::unix::net::UnixListener::bind(r.join("etc/sock")).unwrap();
    let cases: &[(&str, fn(&FsErrorKind) -> bool, &str)] = &[
        (
            "/etc/fifo.yaml",
            |k| *k == FsErrorKind::Fifo,
            "is a FIFO, not a regular file",
        ),
        ("/etc/to-fifo.yaml", |k| *k == FsErrorKind::Fifo, "FIFO"),
        (
            "/etc/loop1",
            |k| *k == FsErrorKind::SymlinkLoop,
            "symlink loop",
        ),
        (
            "/etc/loop1/x.yaml",
            |k| *k == FsErrorKind::SymlinkLoop,
            "symlink loop",
        ),
        (
            "/etc/dangling.yaml",
            |k| matches!(k, FsErrorKind::DanglingSymlink { .. }),
            "/nowhere.yaml, which does not exist",
        ),
        (
            "/etc/missing.yaml",
            |k| *k == FsErrorKind::NotFound,
            "does not exist",
        ),
        (
            "/etc/big.yaml",
            |k| matches!(k, FsErrorKind::TooLarge { .. }),
            "absurdly large",
        ),
        (
            "/etc/big-text.yaml",
            |k| matches!(k, FsErrorKind::TooLarge { .. }),
            "absurdly large",
        ),
        (
            "/etc/latin1.yaml",
            |k| *k == FsErrorKind::NotUtf8 { offset: 9 },
            "not UTF-8",
        ),
        (
            "/etc/nul.yaml",
            |k| *k == FsErrorKind::Binary { offset: 5 },
            "binary",
        ),
        (
            "/etc/kubernetes",
            |k| *k == FsErrorKind::Directory,
            "is a directory",
        ),
        ("/etc/sock", |k| *k == FsErrorKind::Socket, "is a socket"),
        // EACCES cannot be triggered as root (DAC override); a path under a file gives
        // ENOTDIR, which is refused the same way (and EACCES maps to PermissionDenied).
        (
            "/var/lib/kubelet/config.yaml/x",
            |k| *k == FsErrorKind::NotADirectory,
            "not a directory",
        ),
        (
            "/var/lib/kubelet/config.yaml/..",
            |k| *k == FsErrorKind::NotADirectory,
            "not a directory",
        ),
    ];
    for (p, ok, msg) in cases {
        let e = read(&fs, p).unwrap_err();
        assert!(ok(&e.kind), "{p}: {:?}", e.kind);
        assert_eq!(e.path, Path::new(p));
        let shown = e.to_string();
        assert!(shown.contains(msg), "{p}: {shown}");
        assert!(shown.starts_with(p), "{shown}");
    }
    assert_eq!(
        kind_of_io(&io::Error::from_raw_os_error(libc::EACCES)),
        FsErrorKind::PermissionDenied
    );
    assert_eq!(
        FsError::new(Path::new("/x"), FsErrorKind::PermissionDenied).to_string(),
        "/x cannot be read: permission denied"
    );
    // Optional reads: missing and dangling are None, everything else still an error.
    let cwd = Path::new("/");
    assert_eq!(
        fs.read_text_optional(Path::new("/etc/missing"), cwd),
        Ok(None)
    );
    assert_eq!(
        fs.read_text_optional(Path::new("/etc/dangling.yaml"), cwd),
        Ok(None)
    );
    assert!(
        fs.read_text_optional(Path::new("/etc/fifo.yaml"), cwd)
            .is_err()
    );
    assert!(fs.read_text_optional(Path::new("/etc/loop1"), cwd).is_err());
    drop(sock);
    drop(d);
}

#[test]
fn host_char_device() {
    let e = RootFs::host()
        .read_text(Path::new("/dev/null"), Path::new("/"))
        .unwrap_err();
    assert_eq!(e.kind, FsErrorKind::CharDevice);
    assert_eq!(
        e.to_string(),
        "/dev/null is a character device, not a regular file"
    );
}

#[test]
fn dir_listing_and_walk_in_lexical_order() {
    let (_d, fs) = setup();
    let r = fs.root().join("etc/kubelet.conf.d");
    fs::create_dir_all(r.join("b.d/z")).unwrap();
    fs::create_dir_all(r.join("a")).unwrap();
    fs::create_dir_all(r.join("B")).unwrap();
    for f in [
        "20.conf",
        "10.conf",
        "a/x.conf",
        "b.d/1.conf",
        "b.d/z/0.conf",
        "B/9.conf",
        "b.conf",
    ] {
        fs::write(r.join(f), "").unwrap();
    }
    symlink("/etc/kubernetes", r.join("c-link")).unwrap();
    let names: Vec<_> = fs
        .read_dir_sorted(Path::new("/etc/kubelet.conf.d"), Path::new("/"))
        .unwrap()
        .into_iter()
        .map(|e| (e.name.into_string().unwrap(), e.kind))
        .collect();
    assert_eq!(
        names,
        vec![
            ("10.conf".into(), FileKind::File),
            ("20.conf".into(), FileKind::File),
            ("B".into(), FileKind::Dir),
            ("a".into(), FileKind::Dir),
            ("b.conf".into(), FileKind::File),
            ("b.d".into(), FileKind::Dir),
            ("c-link".into(), FileKind::Symlink),
        ]
    );
    let walked: Vec<_> = fs
        .walk_files(Path::new("kubelet.conf.d"), Path::new("/etc"))
        .unwrap()
        .into_iter()
        .map(|p| {
            p.strip_prefix("/etc/kubelet.conf.d")
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        walked,
        [
            "10.conf",
            "20.conf",
            "B/9.conf",
            "a/x.conf",
            "b.conf",
            "b.d/1.conf",
            "b.d/z/0.conf",
            "c-link"
        ]
    );
    // A symlinked root is lstat'ed, as WalkDir does: one non-directory entry.
    symlink("/etc/kubelet.conf.d", fs.root().join("etc/linked.d")).unwrap();
    assert_eq!(
        fs.walk_files(Path::new("/etc/linked.d"), Path::new("/"))
            .unwrap(),
        vec![PathBuf::from("/etc/linked.d")]
    );
    assert!(fs.is_symlink(Path::new("/etc/linked.d"), Path::new("/")));
    assert!(
        fs.walk_files(Path::new("/etc/none.d"), Path::new("/"))
            .unwrap_err()
            .is_not_found()
    );
    let e = fs
        .read_dir_sorted(Path::new("/var/lib/kubelet/config.yaml"), Path::new("/"))
        .unwrap_err();
    assert_eq!(e.kind, FsErrorKind::NotADirectoryToList);
}

/// Reads stay exact with kept listings: a change after a read is seen however small, at
/// once and at the same size; a snapshot sees its own moment only.
#[test]
fn kept_reads_stay_exact() {
    let (_d, fs) = setup();
    let r = fs.root().to_path_buf();
    let cfg = "/var/lib/kubelet/config.yaml";
    fs::write(r.join("var/lib/kubelet/config.yaml"), "value: true \n").unwrap();
    fs::create_dir_all(r.join("etc/d")).unwrap();
    fs::write(r.join("etc/d/a.conf"), "").unwrap();
    // Old enough to be kept.
    std::thread::sleep(fscache::SETTLE * 2);
    let names = |fs: &RootFs| -> Vec<String> {
        fs.read_dir_sorted(Path::new("/etc/d"), Path::new("/"))
            .unwrap()
            .into_iter()
            .map(|e| e.name.into_string().unwrap())
            .collect()
    };
    for round in 0..20 {
        let (old, new) = if round % 2 == 0 {
            ("value: true \n", "value: false\n")
        } else {
            ("value: false\n", "value: true \n")
        };
        assert_eq!(read(&fs, cfg).unwrap(), old, "round {round}");
        assert_eq!(read(&fs, cfg).unwrap(), old, "round {round}, kept");
        // Same size, at once: the read after it sees it.
        fs::write(r.join("var/lib/kubelet/config.yaml"), new).unwrap();
        assert_eq!(read(&fs, cfg).unwrap(), new, "round {round}, changed");
        std::thread::sleep(fscache::SETTLE * 2);
    }
    // Replaced by rename, same size and same mtime: a new inode.
    let t = fs::metadata(r.join("var/lib/kubelet/config.yaml"))
        .unwrap()
        .modified()
        .unwrap();
    fs::write(r.join("var/lib/kubelet/new.yaml"), "value: fals3\n").unwrap();
    fs::File::options()
        .write(true)
        .open(r.join("var/lib/kubelet/new.yaml"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    fs::rename(
        r.join("var/lib/kubelet/new.yaml"),
        r.join("var/lib/kubelet/config.yaml"),
    )
    .unwrap();
    assert_eq!(read(&fs, cfg).unwrap(), "value: fals3\n");
    // Listings: an entry added, removed, replaced by a symlink.
    assert_eq!(names(&fs), ["a.conf"]);
    assert_eq!(names(&fs), ["a.conf"]);
    fs::write(r.join("etc/d/b.conf"), "").unwrap();
    assert_eq!(names(&fs), ["a.conf", "b.conf"]);
    std::thread::sleep(fscache::SETTLE * 2);
    assert_eq!(names(&fs), ["a.conf", "b.conf"]);
    fs::remove_file(r.join("etc/d/a.conf")).unwrap();
    assert_eq!(names(&fs), ["b.conf"]);
    fs::remove_file(r.join("etc/d/b.conf")).unwrap();
    symlink("/dev/null", r.join("etc/d/b.conf")).unwrap();
    let e = fs
        .read_dir_sorted(Path::new("/etc/d"), Path::new("/"))
        .unwrap();
    assert_eq!(e[0].kind, FileKind::Symlink);
    // A snapshot answers from its own moment; a new one sees the change.
    let snap = fs.snapshot();
    assert!(snap.is_symlink(Path::new("/etc/d/b.conf"), Path::new("/")));
    fs::remove_file(r.join("etc/d/b.conf")).unwrap();
    assert!(snap.is_symlink(Path::new("/etc/d/b.conf"), Path::new("/")));
    assert!(
        !fs.snapshot()
            .is_symlink(Path::new("/etc/d/b.conf"), Path::new("/"))
    );
    assert!(!fs.is_symlink(Path::new("/etc/d/b.conf"), Path::new("/")));
}
