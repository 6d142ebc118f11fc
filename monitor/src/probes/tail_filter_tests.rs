//! The tail filter (`monitor_common::TAIL_FILTER_WORDS`): the programs' first test rules a
//! path out only when its basename is no watched name, no `*.conf`, no fd number and no
//! `.`/`..`. `rules_out` is that test as `kd_openat` makes it, on the bytes of the path.

use monitor_common::{is_hexdash, tail_filter_bit};
use proptest::prelude::*;

use super::tail_filter;

/// `kd_openat`'s first test (open.rs, `tail_may_be_watched`), for a whole path: `true` when
/// the open is ruled out before the basename is scanned.
fn rules_out(path: &[u8], words: &[u64]) -> bool {
    let len = path.len();
    if len < 4 {
        return false;
    }
    let t = &path[len - 4..];
    if t.contains(&b'/') || t.iter().all(|b| is_hexdash(*b)) {
        return false;
    }
    let (w, m) = tail_filter_bit(u32::from_le_bytes([t[0], t[1], t[2], t[3]]));
    words[w as usize] & m == 0
}

fn basename(path: &[u8]) -> &[u8] {
    path.rsplit(|b| *b == b'/').next().unwrap_or(path)
}

#[test]
fn every_name_and_conf_has_its_bit() {
    let names: Vec<Vec<u8>> = ["config.yaml", "kubelet.service", "kubelet", "abc", "x"]
        .iter()
        .map(|n| n.as_bytes().to_vec())
        .collect();
    let words = tail_filter(names.iter());
    assert_eq!(words.len(), monitor_common::TAIL_FILTER_WORDS as usize);
    for p in [
        &b"/var/lib/kubelet/config.yaml"[..],
        b"/etc/systemd/system/kubelet.service",
        b"/usr/bin/kubelet",
        b"kubelet",
        b"/etc/x/10-kubeadm.conf",
        b"/etc/abc",
        b"/etc/x",
        b"/proc/self/fd/12",
        b"/proc/1/map_files/7f00-7f10",
        b"/etc/..",
        b"/etc/.",
    ] {
        assert!(!rules_out(p, &words), "{}", String::from_utf8_lossy(p));
    }
}

#[test]
fn unrelated_paths_are_mostly_ruled_out() {
    let names: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("watched-{i}.yaml").into_bytes())
        .collect();
    let words = tail_filter(names.iter());
    let passed = (0..100_000)
        .filter(|i| !rules_out(format!("/tmp/x/data-{i}.bin").as_bytes(), &words))
        .count();
    assert!(passed < 1_000, "{passed} of 100 000 unrelated paths passed");
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    // Short and long names over a small alphabet (with '.', '-' and hex letters), so that
    // tails collide and fd-like names occur.
    prop::collection::vec(prop::sample::select(b"ab.-f09cnoyml".to_vec()), 1..12)
}

proptest! {
    /// Whatever the names, a ruled-out path's basename is none of them, no `*.conf`, not
    /// all `[0-9a-f-]` and not `.` or `..`.
    #[test]
    fn a_ruled_out_path_is_never_one_the_scan_would_keep(
        names in prop::collection::vec(name(), 0..20),
        dir in prop::collection::vec(name(), 0..3),
        base in prop_oneof![name(), name().prop_map(|mut n| { n.extend_from_slice(b".conf"); n })],
        pick in any::<prop::sample::Index>(),
        use_watched in any::<bool>(),
    ) {
        let base = if use_watched && !names.is_empty() { pick.get(&names).clone() } else { base };
        let mut path = Vec::new();
        for d in &dir {
            path.push(b'/');
            path.extend_from_slice(d);
        }
        if !dir.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&base);
        let words = tail_filter(names.iter());
        if rules_out(&path, &words) {
            let b = basename(&path);
            prop_assert!(!names.iter().any(|n| n.as_slice() == b));
            prop_assert!(!b.ends_with(b".conf"));
            prop_assert!(!b.iter().all(|c| is_hexdash(*c)));
            prop_assert!(b != b"." && b != b"..");
        }
    }
}
