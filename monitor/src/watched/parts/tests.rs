//! The parts' set is the full build's after every kind of path operation.

use std::{fs, os::unix::fs::symlink, path::Path};

use super::*;

/// The paths of a small kubeadm-like node under `r`: a unit, a drop-in directory (listed), a
/// config file, an env file that is missing, a config under a missing directory, a config
/// through a symlinked directory, and a unit directory.
fn paths(r: &Path) -> Vec<PathBuf> {
    [
        "lib/systemd/system/kubelet.service",
        "etc/systemd/system/kubelet.service.d",
        "etc/systemd/system",
        "var/lib/kubelet/config.yaml",
        "var/lib/kubelet/kubeadm-flags.env",
        "etc/kubernetes/kubelet/config.json",
        "etc/linked/kubelet.conf",
    ]
    .iter()
    .map(|p| r.join(p))
    .collect()
}

fn node(r: &Path) {
    fs::create_dir_all(r.join("lib/systemd/system")).unwrap();
    fs::write(r.join("lib/systemd/system/kubelet.service"), "[Service]\n").unwrap();
    fs::create_dir_all(r.join("etc/systemd/system/kubelet.service.d")).unwrap();
    fs::write(r.join("etc/systemd/system/kubelet.service.d/10.conf"), "x").unwrap();
    fs::create_dir_all(r.join("var/lib/kubelet")).unwrap();
    fs::write(r.join("var/lib/kubelet/config.yaml"), "a: 1\n").unwrap();
    fs::create_dir_all(r.join("data/real")).unwrap();
    fs::write(r.join("data/real/kubelet.conf"), "x").unwrap();
    symlink(r.join("data/real"), r.join("etc/linked")).unwrap();
    fs::create_dir_all(r.join("other")).unwrap();
}

fn full(paths: &[PathBuf]) -> WatchSet {
    let mut w = WatchSet::new();
    for p in paths {
        w.add(p);
    }
    w
}

fn mv(r: &Path, a: &str, b: &str) -> Vec<PathBuf> {
    fs::rename(r.join(a), r.join(b)).unwrap();
    vec![r.join(a), r.join(b)]
}

fn put(r: &Path, p: &str, text: &str) -> Vec<PathBuf> {
    fs::write(r.join(p), text).unwrap();
    vec![r.join(p)]
}

type Op = (&'static str, fn(&Path) -> Vec<PathBuf>);

/// Each operation, then the set read from the parts it touched against a full build.
#[test]
fn parts_equal_the_full_build_after_each_path_operation() {
    let ops: &[Op] = &[
        ("rename over config.yaml", |r| {
            put(r, "var/lib/kubelet/config.tmp", "a: 2\n");
            mv(
                r,
                "var/lib/kubelet/config.tmp",
                "var/lib/kubelet/config.yaml",
            )
        }),
        ("an unrelated rename", |r| {
            put(r, "other/a", "");
            mv(r, "other/a", "other/b")
        }),
        ("config.yaml unlinked", |r| {
            fs::remove_file(r.join("var/lib/kubelet/config.yaml")).unwrap();
            vec![r.join("var/lib/kubelet/config.yaml")]
        }),
        ("config.yaml renamed into place", |r| {
            put(r, "other/c", "a: 3\n");
            mv(r, "other/c", "var/lib/kubelet/config.yaml")
        }),
        ("a missing env file appears", |r| {
            put(r, "var/lib/kubelet/kubeadm-flags.env", "X=1\n")
        }),
        ("a drop-in appears", |r| {
            put(r, "other/20.conf", "y");
            mv(
                r,
                "other/20.conf",
                "etc/systemd/system/kubelet.service.d/20.conf",
            )
        }),
        ("a drop-in disappears", |r| {
            fs::remove_file(r.join("etc/systemd/system/kubelet.service.d/10.conf")).unwrap();
            vec![r.join("etc/systemd/system/kubelet.service.d/10.conf")]
        }),
        ("a unit renamed into place", |r| {
            put(r, "other/kubelet.service", "[Service]\nExecStart=/x\n");
            mv(
                r,
                "other/kubelet.service",
                "lib/systemd/system/kubelet.service",
            )
        }),
        ("a unit appears in a unit directory", |r| {
            put(r, "etc/systemd/system/kubelet.service", "[Service]\n")
        }),
        ("swapped drop-in directories", |r| {
            fs::create_dir_all(r.join("other/d")).unwrap();
            put(r, "other/d/99.conf", "z");
            let mut t = mv(r, "etc/systemd/system/kubelet.service.d", "other/old.d");
            t.extend(mv(r, "other/d", "etc/systemd/system/kubelet.service.d"));
            t
        }),
        ("mkdir -p of a missing directory", |r| {
            fs::create_dir(r.join("etc/kubernetes")).unwrap();
            fs::create_dir(r.join("etc/kubernetes/kubelet")).unwrap();
            let mut t = vec![r.join("etc/kubernetes"), r.join("etc/kubernetes/kubelet")];
            t.extend(put(r, "etc/kubernetes/kubelet/config.json", "{}"));
            t
        }),
        ("a hard link to config.yaml", |r| {
            fs::hard_link(r.join("var/lib/kubelet/config.yaml"), r.join("other/alias")).unwrap();
            vec![r.join("var/lib/kubelet/config.yaml"), r.join("other/alias")]
        }),
        ("the link removed", |r| {
            fs::remove_file(r.join("other/alias")).unwrap();
            vec![r.join("other/alias")]
        }),
        ("config.yaml replaced by a symlink", |r| {
            put(r, "other/target.yaml", "a: 4\n");
            symlink(r.join("other/target.yaml"), r.join("var/lib/kubelet/new")).unwrap();
            mv(r, "var/lib/kubelet/new", "var/lib/kubelet/config.yaml")
        }),
        ("the symlink's target renamed over", |r| {
            put(r, "other/t2", "a: 5\n");
            mv(r, "other/t2", "other/target.yaml")
        }),
        ("the target of a symlinked directory renamed over", |r| {
            put(r, "other/k2", "k");
            mv(r, "other/k2", "data/real/kubelet.conf")
        }),
        ("the symlinked directory's target moved", |r| {
            mv(r, "data/real", "data/moved")
        }),
        ("an ancestor renamed away and back", |r| {
            let mut t = mv(r, "var/lib", "var/lib.old");
            t.extend(mv(r, "var/lib.old", "var/lib"));
            t
        }),
        ("a directory on a path renamed over", |r| {
            fs::create_dir_all(r.join("other/kubelet")).unwrap();
            put(r, "other/kubelet/config.yaml", "a: 6\n");
            fs::remove_dir_all(r.join("var/lib/kubelet")).unwrap();
            mv(r, "other/kubelet", "var/lib/kubelet")
        }),
    ];
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    node(r);
    let paths = paths(r);
    let mut parts = Parts::default();
    let (first, read) = parts.build(paths.iter().map(PathBuf::as_path), &Dirty::All);
    assert_eq!(first, full(&paths));
    assert_eq!(read, paths.len());
    for (what, op) in ops {
        let touched = op(r);
        let (set, _) = parts.build(
            paths.iter().map(PathBuf::as_path),
            &Dirty::Paths(touched.clone()),
        );
        assert_eq!(set, full(&paths), "after: {what} ({touched:?})");
    }
}

/// A rename over config.yaml reads its part again and the parts with links, no other.
#[test]
fn a_rename_reads_only_what_it_touched() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    node(r);
    let paths = paths(r);
    let mut parts = Parts::default();
    parts.build(paths.iter().map(PathBuf::as_path), &Dirty::All);
    let (_, read) = parts.build(paths.iter().map(PathBuf::as_path), &Dirty::Nothing);
    assert_eq!(read, 0);
    put(r, "var/lib/kubelet/config.tmp", "a: 2\n");
    let touched = mv(
        r,
        "var/lib/kubelet/config.tmp",
        "var/lib/kubelet/config.yaml",
    );
    let (set, read) = parts.build(paths.iter().map(PathBuf::as_path), &Dirty::Paths(touched));
    assert_eq!(set, full(&paths));
    // config.yaml's part, and etc/linked/kubelet.conf's (through a symlinked directory).
    assert_eq!(read, 2);
    // A path no longer wanted is dropped; a new one is read.
    let fewer = &paths[1..];
    let (set, read) = parts.build(fewer.iter().map(PathBuf::as_path), &Dirty::Nothing);
    assert_eq!((set, read), (full(fewer), 0));
}

/// What cannot be placed reads everything.
#[test]
fn unplaced_operations_read_everything() {
    let mut d = Dirty::Nothing;
    d.add(Some(vec![PathBuf::from("/a")]));
    assert_eq!(d, Dirty::Paths(vec![PathBuf::from("/a")]));
    d.add(None);
    assert_eq!(d, Dirty::All);
    d.add(Some(vec![PathBuf::from("/b")]));
    assert_eq!(d, Dirty::All);
    let c = Canonical::default();
    assert_eq!(candidates(&[PathBuf::from("relative")], &c), None);
    assert_eq!(
        candidates(&[PathBuf::from("/nonexistent-dir-kd/x")], &c),
        None
    );
}

/// The union is made again only when a part was read or dropped; otherwise `update` says the
/// set is the one it made last, and `build` hands that same set out.
#[test]
fn the_union_is_made_again_only_when_a_part_changed() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(&a, "x").unwrap();
    let mut parts = Parts::default();
    let both = [a.clone(), b.clone()];
    let first = parts
        .update(both.iter().map(PathBuf::as_path), &Dirty::All)
        .0
        .cloned()
        .unwrap();
    assert!(
        parts
            .update(both.iter().map(PathBuf::as_path), &Dirty::Nothing)
            .0
            .is_none()
    );
    assert_eq!(
        parts
            .build(both.iter().map(PathBuf::as_path), &Dirty::Nothing)
            .0,
        first
    );
    // A path dropped, or one touched: made again.
    let fewer = [a.clone()];
    let (set, read) = parts.update(fewer.iter().map(PathBuf::as_path), &Dirty::Nothing);
    assert_eq!(read, 0);
    assert!(set.is_some_and(|s| *s != first));
    let (set, read) = parts.update(
        fewer.iter().map(PathBuf::as_path),
        &Dirty::Paths(vec![a.clone()]),
    );
    // Read again, the same: the union did not change.
    assert_eq!(read, 1);
    assert!(set.is_none());
    std::fs::write(&a, "a longer file").unwrap();
    std::fs::remove_file(&a).unwrap();
    let (set, read) = parts.update(
        fewer.iter().map(PathBuf::as_path),
        &Dirty::Paths(vec![a.clone()]),
    );
    assert_eq!(read, 1);
    assert!(set.is_some(), "a.yaml is gone: its part changed");
    parts.forget_union();
    assert!(
        parts
            .update(fewer.iter().map(PathBuf::as_path), &Dirty::Nothing)
            .0
            .is_some()
    );
}

mod strategies {
    use std::collections::{BTreeMap, BTreeSet};

    use monitor_common::{EntryKey, InodeKey};
    use proptest::prelude::*;

    use super::*;

    /// Paths over a few components, so that parts share ancestors, files and directories.
    pub fn path() -> impl Strategy<Value = PathBuf> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "d.d"]), 0..5)
            .prop_map(|c| Path::new("/").join(c.join("/")))
    }

    fn paths(n: usize) -> impl Strategy<Value = BTreeSet<PathBuf>> {
        prop::collection::btree_set(path(), 0..n)
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::sample::select(vec!["x", "y", "z", "kubelet"]).prop_map(|s| s.as_bytes().to_vec())
    }

    fn inode() -> impl Strategy<Value = InodeKey> {
        (0u32..2, 0u64..4).prop_map(|(dev, ino)| InodeKey { dev, _pad: 0, ino })
    }

    /// Any part (not one that `WatchSet::add` could make: every field on its own).
    pub fn part() -> impl Strategy<Value = WatchSet> {
        (
            (paths(4), paths(3), paths(5), paths(2)),
            prop::collection::btree_map(bytes(), 0u8..32, 0..3),
            prop::collection::btree_map(inode(), 0u32..8, 0..3),
            prop::collection::btree_set((inode(), 0u64..3), 0..3),
            any::<bool>(),
            prop::collection::btree_set(bytes(), 0..3),
        )
            .prop_map(
                |(
                    (files, dirs, ancestor_paths, linked),
                    names,
                    inodes,
                    entries,
                    walk_all,
                    ancestor_names,
                )| {
                    WatchSet {
                        files,
                        dirs,
                        names: names.into_iter().collect::<BTreeMap<_, _>>(),
                        inodes,
                        entries: entries
                            .into_iter()
                            .map(|(d, name)| EntryKey {
                                dev: d.dev,
                                _pad: 0,
                                ino: d.ino,
                                name,
                            })
                            .collect(),
                        walk_all,
                        ancestor_names,
                        ancestor_paths,
                        linked,
                        ..WatchSet::default()
                    }
                },
            )
    }
}

proptest::proptest! {
    /// The index names exactly the parts whose `matches` holds, for any path.
    #[test]
    fn the_index_finds_the_parts_that_match(
        parts in proptest::collection::vec(strategies::part(), 1..6),
        probes in proptest::collection::vec(strategies::path(), 1..8),
    ) {
        let mut index = index::Index::default();
        let keys: Vec<PathBuf> = (0..parts.len()).map(|i| PathBuf::from(format!("/part{i}"))).collect();
        for (k, p) in keys.iter().zip(&parts) {
            index.add(k, p);
        }
        // One removed and added again: removal leaves nothing of it behind.
        index.remove(&keys[0], &parts[0]);
        index.add(&keys[0], &parts[0]);
        for probe in &probes {
            let mut found = std::collections::HashSet::new();
            index.touched(probe, &mut found);
            let want: std::collections::HashSet<PathBuf> = keys
                .iter()
                .zip(&parts)
                .filter(|(_, p)| p.matches(probe))
                .map(|(k, _)| k.clone())
                .collect();
            proptest::prop_assert_eq!(found, want, "probe {:?}", probe);
        }
    }

    /// After any sequence of adds and removes, the counted union is the merge of the parts
    /// still in it.
    #[test]
    fn the_counted_union_is_the_merge_of_its_parts(
        parts in proptest::collection::vec(strategies::part(), 1..8),
        removed in proptest::collection::vec(proptest::bool::ANY, 8),
    ) {
        let mut c = counted::Counted::default();
        for p in &parts {
            c.add(p);
        }
        let mut kept = WatchSet::new();
        for (p, r) in parts.iter().zip(&removed) {
            if *r {
                c.remove(p);
            } else {
                kept.merge(p);
            }
        }
        proptest::prop_assert_eq!(c.set(), &kept);
    }
}

proptest::proptest! {
    /// `normal` is `normalize`, whatever the path.
    #[test]
    fn normal_is_normalize(
        parts in proptest::collection::vec(
            proptest::sample::select(vec!["a", "b", ".", "..", "", "c.d"]), 0..6),
        absolute in proptest::bool::ANY,
        trailing in proptest::bool::ANY,
    ) {
        let mut s = if absolute { String::from("/") } else { String::new() };
        s.push_str(&parts.join("/"));
        if trailing {
            s.push('/');
        }
        let p = Path::new(&s);
        let (fast, slow) = (normal(p), normalize(p));
        proptest::prop_assert_eq!(fast.as_os_str(), slow.as_os_str());
    }
}
