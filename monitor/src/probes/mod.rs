//! Loading and attaching the kernel programs (see `monitor-ebpf/`), filling their maps,
//! reading their counters.
//!
//! | program        | tracepoint(s)                                       | kernel | required |
//! |----------------|-----------------------------------------------------|--------|----------|
//! | `kd_exec`      | sched:sched_process_exec                            | 3.4    | yes      |
//! | `kd_exit`      | sched:sched_process_exit                            | 2.6.32 | yes      |
//! | `kd_open*`     | syscalls:sys_enter_open, openat, creat              | 2.6.37 | yes (open/creat absent on arm64) |
//! | `kd_openat2`   | syscalls:sys_enter_openat2                          | 5.6    | no       |
//! | `kd_close`     | syscalls:sys_enter_close                            | 2.6.37 | yes      |
//! | path ops       | syscalls:sys_enter_rename/renameat/renameat2, unlink/unlinkat, link/linkat, symlink/symlinkat, mkdir/mkdirat, truncate, ftruncate | 3.15 (renameat2) | renameat2, unlinkat, linkat, symlinkat, mkdirat, truncate, ftruncate: yes |
//! | `kd_open_exit`, `kd_path_exit` | syscalls:sys_exit_* of the open family / of the path ops | | as above |
//!
//! Ring buffers need 5.8; BTF (for the inode match and the actor's ppid) 5.2 with
//! CONFIG_DEBUG_INFO_BTF. Without BTF the programs still load and match by name only.

pub mod blindspots;
pub mod btf;
pub mod preflight;
pub mod tracefs;

use std::{
    collections::{BTreeMap, BTreeSet},
    os::unix::fs::MetadataExt,
    path::Path,
};

use anyhow::{Context, Result, anyhow, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf},
    programs::TracePoint,
};
use monitor_common::{CommKey, EntryKey, InodeKey, Offsets, counter, mode, name_hash, state};

use crate::settings::RingSize;

/// The kernel programs, built by `monitor/build.rs`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/kubelet-drift-ebpf"));

/// (program, syscall) pairs: each enter program is attached to `sys_enter_<syscall>`, and
/// `kd_open_exit` or `kd_path_exit` to `sys_exit_<syscall>`. The bool says whether a missing tracepoint is fatal.
const SYSCALLS: &[(&str, &str, bool)] = &[
    ("kd_open", "open", false),
    ("kd_openat", "openat", true),
    ("kd_openat2", "openat2", false),
    ("kd_creat", "creat", false),
    ("kd_rename", "rename", false),
    ("kd_renameat", "renameat", false),
    ("kd_renameat2", "renameat2", true),
    ("kd_unlink", "unlink", false),
    ("kd_unlinkat", "unlinkat", true),
    ("kd_link", "link", false),
    ("kd_linkat", "linkat", true),
    ("kd_symlink", "symlink", false),
    ("kd_symlinkat", "symlinkat", true),
    ("kd_mkdir", "mkdir", false),
    ("kd_mkdirat", "mkdirat", true),
    ("kd_truncate", "truncate", true),
    ("kd_ftruncate", "ftruncate", true),
];

#[derive(Clone, Debug, Default)]
pub struct ProbeOptions {
    /// The ring buffer's size, checked where it was read (settings file, `run` or `events`
    /// command line): a power of two from 4 KiB to 1 GiB.
    pub ring: RingSize,
}

/// Sums of the per-CPU counters (see `monitor_common::counter`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub exec_seen: u64,
    pub exec_filtered: u64,
    pub file_seen: u64,
    pub file_filtered: u64,
    pub sent: u64,
    pub dropped: u64,
    pub exit_seen: u64,
    pub stash_full: u64,
    /// Processes now holding a watched file open for writing (a gauge, not a counter).
    pub writers: u64,
}

/// The loaded, attached programs and handles on their maps.
pub struct Probes {
    ebpf: Ebpf,
    /// What is missing and how the programs degrade (said once at start).
    pub warnings: Vec<String>,
    comms: BTreeSet<Vec<u8>>,
    names: BTreeMap<Vec<u8>, u8>,
    /// The watched-names and tail filters, with their words as last written (see
    /// `set_names`).
    name_filter: Filter,
    tail_filter: Filter,
    inodes: BTreeMap<InodeKey, u32>,
    entries: BTreeSet<EntryKey>,
    /// The ancestor-names map's keys as last written (see `set_ancestor_names`): reading the
    /// map back was one syscall per key on every rename-over.
    ancestor_names: BTreeSet<[u8; monitor_common::NAME_LEN]>,
    mode: u64,
}

impl Probes {
    /// Loads and attaches everything. Errors say what is missing (capability, tracefs, BTF).
    pub fn load(opts: &ProbeOptions) -> Result<Probes> {
        if OBJECT.is_empty() {
            bail!(
                "this kubelet-drift binary was built without its eBPF programs (bpf-linker was \
                 not installed when it was built); build it with `cargo xtask build`"
            );
        }
        let mut warnings = Vec::new();
        let tracefs = tracefs::ensure_mounted()?;
        let mut off = Offsets::default();

        let exec = tracefs::Format::read(&tracefs, "sched", "sched_process_exec")?;
        off.exec_filename = exec.field("filename")?.offset;
        // Every syscall tracepoint must agree on argument offsets: the programs share one table.
        let reference = tracefs::Format::read(&tracefs, "syscalls", "sys_enter_renameat2")
            .context("syscall tracepoints are missing (CONFIG_FTRACE_SYSCALLS)")?;
        let args = reference.syscall_args();
        for (i, f) in args.iter().enumerate().take(6) {
            off.sys_arg[i] = f.offset;
        }
        for i in args.len()..6 {
            off.sys_arg[i] = off.sys_arg[args.len() - 1] + 8 * (i - args.len() + 1) as u32;
        }
        let exit_fmt = tracefs::Format::read(&tracefs, "syscalls", "sys_exit_openat")?;
        off.sys_ret = exit_fmt.field("ret")?.offset;
        // The programs load arguments and `ret` at constant offsets (see SYS_ARG0).
        let expected: Vec<u32> = (0..6).map(|i| monitor_common::SYS_ARG0 + 8 * i).collect();
        if off.sys_arg[..] != expected[..] || off.sys_ret != monitor_common::SYS_RET {
            bail!(
                "this kernel's syscall tracepoint records are laid out differently (arguments at \
                 {:?}, ret at {}; the programs expect {expected:?} and {}): not supported",
                off.sys_arg,
                off.sys_ret,
                monitor_common::SYS_RET
            );
        }
        let mut present = Vec::new();
        for &(prog, sc, required) in SYSCALLS {
            match tracefs::Format::read(&tracefs, "syscalls", &format!("sys_enter_{sc}")) {
                Ok(f) => {
                    for (i, a) in f.syscall_args().iter().enumerate() {
                        if a.offset != off.sys_arg[i] {
                            bail!(
                                "sys_enter_{sc}: argument {i} at offset {} where the others have {}",
                                a.offset,
                                off.sys_arg[i]
                            );
                        }
                    }
                    present.push((prog, sc));
                }
                Err(e) if required => return Err(e),
                Err(_) => warnings.push(format!(
                    "tracepoint sys_enter_{sc} absent on this kernel; skipped"
                )),
            }
        }

        if let Err(e) = btf::fill(&mut off) {
            warnings.push(format!(
                "kernel BTF unavailable ({e:#}): files are matched by name only, not by inode, \
                 and actors have no ppid"
            ));
        }

        let blind = blindspots::offsets(&tracefs, &mut warnings);
        let mut ebpf = EbpfLoader::new()
            .override_global("OFFSETS", &off, true)
            .override_global("BLIND_OFFSETS", &blind, true)
            .map_max_entries("EVENTS", opts.ring.get())
            .load(OBJECT)
            .map_err(explain_load_error)?;

        attach(&mut ebpf, "kd_exec", "sched", "sched_process_exec")?;
        attach(&mut ebpf, "kd_exit", "sched", "sched_process_exit")?;
        attach(&mut ebpf, "kd_close", "syscalls", "sys_enter_close")?;
        for (prog, sc) in &present {
            attach(&mut ebpf, prog, "syscalls", &format!("sys_enter_{sc}"))?;
        }
        for (exit_prog, family) in [("kd_open_exit", true), ("kd_path_exit", false)] {
            let p: &mut TracePoint = ebpf
                .program_mut(exit_prog)
                .ok_or_else(|| anyhow!("program {exit_prog} missing from the object"))?
                .try_into()?;
            p.load().map_err(|e| anyhow!("loading {exit_prog}: {e}"))?;
            for (_, sc) in present
                .iter()
                .filter(|(_, sc)| is_open_family(sc) == family)
            {
                p.attach("syscalls", &format!("sys_exit_{sc}"))
                    .with_context(|| format!("attaching {exit_prog} to sys_exit_{sc}"))?;
            }
        }
        blindspots::attach(&mut ebpf, &tracefs, &off, &blind, &mut warnings)?;
        Ok(Probes {
            ebpf,
            warnings,
            comms: BTreeSet::new(),
            names: BTreeMap::new(),
            name_filter: Filter::new("NAME_FILTER", monitor_common::NAME_FILTER_WORDS),
            tail_filter: Filter::new("TAIL_FILTER", monitor_common::TAIL_FILTER_WORDS),
            inodes: BTreeMap::new(),
            entries: BTreeSet::new(),
            ancestor_names: BTreeSet::new(),
            mode: 0,
        })
    }

    /// The ring buffer, to be drained by one reader (see `crate::events::Stream`).
    pub fn take_ring(&mut self) -> Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .ok_or_else(|| anyhow!("EVENTS map already taken"))?;
        Ok(RingBuf::try_from(map)?)
    }

    /// Executable names whose exec/exit are reported (cut to the kernel's 15-byte comm).
    pub fn set_comms<S: AsRef<str>>(&mut self, names: &[S]) -> Result<()> {
        let want: BTreeSet<Vec<u8>> = names
            .iter()
            .map(|n| CommKey::new(n.as_ref().as_bytes()).comm.to_vec())
            .collect();
        let mut map: BpfHashMap<_, CommKey, u8> =
            BpfHashMap::try_from(self.ebpf.map_mut("WATCHED_COMMS").unwrap())?;
        for old in self.comms.difference(&want) {
            let _ = map.remove(&CommKey::new(trim_nul(old)));
        }
        for new in want.difference(&self.comms) {
            map.insert(CommKey::new(trim_nul(new)), 1, 0)?;
        }
        self.comms = want;
        Ok(())
    }

    /// Basenames and what they are to the watch set (`name_bits::*`), keyed in the kernel by
    /// `name_hash`. Two names with one hash get the union of their bits.
    pub fn set_names(&mut self, names: &BTreeMap<Vec<u8>, u8>) -> Result<()> {
        if *names == self.names {
            return Ok(()); // a rename-over changes an inode, not the names
        }
        let by_hash = |m: &BTreeMap<Vec<u8>, u8>| {
            let mut h: BTreeMap<u64, u8> = BTreeMap::new();
            for (n, b) in m {
                *h.entry(name_hash(n)).or_insert(0) |= *b;
            }
            h
        };
        let (old, new) = (by_hash(&self.names), by_hash(names));
        // The filter's bits of the names coming in are set before they enter the map, and
        // those of the names going out cleared after they left (see NAME_FILTER_WORDS).
        self.name_filter
            .write(&mut self.ebpf, &name_filter(old.keys().chain(new.keys())))?;
        self.tail_filter.write(
            &mut self.ebpf,
            &tail_filter(self.names.keys().chain(names.keys())),
        )?;
        let mut map: BpfHashMap<_, u64, u8> =
            BpfHashMap::try_from(self.ebpf.map_mut("WATCHED_NAMES").unwrap())?;
        for k in old.keys() {
            if !new.contains_key(k) {
                let _ = map.remove(k);
            }
        }
        for (k, v) in &new {
            if old.get(k) != Some(v) {
                map.insert(*k, *v, 0)?;
            }
        }
        self.names = names.clone();
        self.tail_filter
            .write(&mut self.ebpf, &tail_filter(names.keys()))?;
        self.name_filter
            .write(&mut self.ebpf, &name_filter(new.keys()))
    }

    /// Names looked for in directories: (directory inode, `name_hash`).
    pub fn set_entries(&mut self, entries: &BTreeSet<EntryKey>) -> Result<()> {
        let mut map: BpfHashMap<_, EntryKey, u8> =
            BpfHashMap::try_from(self.ebpf.map_mut("WATCHED_ENTRIES").unwrap())?;
        for k in self.entries.difference(entries) {
            let _ = map.remove(k);
        }
        for k in entries.difference(&self.entries) {
            map.insert(*k, 1, 0)?;
        }
        self.entries = entries.clone();
        Ok(())
    }

    /// Whether every write-intent open takes the fd-table walk (`mode::WALK_ALL`).
    pub fn set_walk_all(&mut self, on: bool) -> Result<()> {
        let want = if on { mode::WALK_ALL } else { 0 };
        if want != self.mode {
            let mut map: aya::maps::Array<_, u64> =
                aya::maps::Array::try_from(self.ebpf.map_mut("STATE").unwrap())?;
            map.set(state::MODE, want, 0)?;
            self.mode = want;
        }
        Ok(())
    }

    /// Links made before `ns` (CLOCK_MONOTONIC) are in the watch set: see
    /// `monitor_common::state::LINKED_SEEN`.
    pub fn set_links_seen(&mut self, ns: u64) -> Result<()> {
        let mut map: aya::maps::Array<_, u64> =
            aya::maps::Array::try_from(self.ebpf.map_mut("STATE").unwrap())?;
        map.set(state::LINKED_SEEN, ns, 0)?;
        Ok(())
    }

    /// Inodes watched (`watch::*` bits).
    pub fn set_inodes(&mut self, inodes: &BTreeMap<InodeKey, u32>) -> Result<()> {
        let mut map: BpfHashMap<_, InodeKey, u32> =
            BpfHashMap::try_from(self.ebpf.map_mut("WATCHED_INODES").unwrap())?;
        for k in self.inodes.keys() {
            if !inodes.contains_key(k) {
                let _ = map.remove(k);
            }
        }
        for (k, v) in inodes {
            if self.inodes.get(k) != Some(v) {
                map.insert(*k, *v, 0)?;
            }
        }
        self.inodes = inodes.clone();
        Ok(())
    }

    /// Marks a running kubelet (found by procfs, before the monitor started) so that its exit
    /// is reported like that of one whose exec was seen.
    pub fn track(&mut self, tgid: u32) -> Result<()> {
        let mut map: BpfHashMap<_, u32, u8> =
            BpfHashMap::try_from(self.ebpf.map_mut("TRACKED").unwrap())?;
        let why = map.get(&tgid, 0).unwrap_or(0) | monitor_common::tracked::KUBELET;
        map.insert(tgid, why, 0)?;
        Ok(())
    }

    pub fn counters(&self) -> Result<Counters> {
        let map: PerCpuArray<_, u64> = PerCpuArray::try_from(self.ebpf.map("COUNTERS").unwrap())?;
        let sum = |i: u32| -> Result<u64> { Ok(map.get(&i, 0)?.iter().sum()) };
        Ok(Counters {
            exec_seen: sum(counter::EXEC_SEEN)?,
            exec_filtered: sum(counter::EXEC_FILTERED)?,
            file_seen: sum(counter::FILE_SEEN)?,
            file_filtered: sum(counter::FILE_FILTERED)?,
            sent: sum(counter::SENT)?,
            dropped: sum(counter::DROPPED)?,
            exit_seen: sum(counter::EXIT_SEEN)?,
            stash_full: sum(counter::STASH_FULL)?,
            writers: {
                let w: aya::maps::Array<_, u64> =
                    aya::maps::Array::try_from(self.ebpf.map("WRITERS").unwrap())?;
                w.get(&0, 0)?
            },
        })
    }
}

fn is_open_family(syscall: &str) -> bool {
    matches!(syscall, "open" | "openat" | "openat2" | "creat")
}

fn trim_nul(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

fn attach(ebpf: &mut Ebpf, prog: &str, category: &str, name: &str) -> Result<()> {
    let p: &mut TracePoint = ebpf
        .program_mut(prog)
        .ok_or_else(|| anyhow!("program {prog} missing from the object"))?
        .try_into()?;
    p.load().map_err(|e| anyhow!("loading {prog}: {e}"))?;
    p.attach(category, name)
        .map_err(|e| anyhow!("attaching {prog} to {category}:{name}: {e}"))?;
    Ok(())
}

fn explain_load_error(e: aya::EbpfError) -> anyhow::Error {
    // The whole chain: the top-level message alone ("failed to create map") hides the cause.
    let mut text = format!("{e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    if text.contains("Operation not permitted") || text.contains("EPERM") {
        anyhow!(
            "loading the eBPF programs was refused ({text}): kubelet-drift needs CAP_BPF and \
             CAP_PERFMON (or root), and kernel.unprivileged_bpf_disabled does not matter for those"
        )
    } else {
        anyhow!("loading the eBPF programs failed: {text}")
    }
}

/// The map key for a file as the kernel sees it: `sb->s_dev` is `major << 20 | minor`.
pub fn inode_key(meta: &std::fs::Metadata) -> InodeKey {
    let dev = meta.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    InodeKey {
        dev: (major << 20) | minor,
        _pad: 0,
        ino: meta.ino(),
    }
}

/// The key for `path` (following symlinks), or `None` if it does not exist.
pub fn inode_key_of(path: &Path) -> Option<InodeKey> {
    std::fs::metadata(path).ok().map(|m| inode_key(&m))
}

/// The watched-names filter's words for these name hashes (see
/// `monitor_common::NAME_FILTER_WORDS`).
fn name_filter<'a>(hashes: impl Iterator<Item = &'a u64>) -> Vec<u64> {
    let mut words = vec![0u64; monitor_common::NAME_FILTER_WORDS as usize];
    for h in hashes {
        let (word, mask) = monitor_common::name_filter_bit(*h);
        words[word as usize] |= mask;
    }
    words
}

/// A bitmap filter map (`NAME_FILTER`, `TAIL_FILTER`) and its words as last written.
#[derive(Debug)]
struct Filter {
    map: &'static str,
    words: Vec<u64>,
}

impl Filter {
    fn new(map: &'static str, words: u32) -> Filter {
        Filter {
            map,
            words: vec![0; words as usize],
        }
    }

    /// Writes the words that differ from `words`.
    fn write(&mut self, ebpf: &mut Ebpf, words: &[u64]) -> Result<()> {
        let mut map: aya::maps::Array<_, u64> = aya::maps::Array::try_from(
            ebpf.map_mut(self.map)
                .ok_or_else(|| anyhow!("{} map missing", self.map))?,
        )?;
        for (i, (have, want)) in self.words.iter_mut().zip(words).enumerate() {
            if have != want {
                map.set(i as u32, *want, 0)?;
                *have = *want;
            }
        }
        Ok(())
    }
}

/// The tail filter's words for these names (see `monitor_common::TAIL_FILTER_WORDS`): each
/// name's last four bytes, and `conf` always.
fn tail_filter<'a>(names: impl Iterator<Item = &'a Vec<u8>>) -> Vec<u64> {
    let mut words = vec![0u64; monitor_common::TAIL_FILTER_WORDS as usize];
    let tails = names.filter_map(|n| monitor_common::name_tail(n));
    for t in tails.chain(monitor_common::name_tail(b"conf")) {
        let (word, mask) = monitor_common::tail_filter_bit(t);
        words[word as usize] |= mask;
    }
    words
}

#[cfg(test)]
mod tail_filter_tests;

#[cfg(test)]
mod name_filter_tests {
    use monitor_common::{name_filter_bit, name_hash};

    use super::name_filter;

    #[test]
    fn every_hash_has_its_bit_and_the_words_fit_the_map() {
        let names: Vec<u64> = [
            &b"config.yaml"[..],
            b"kubelet.service",
            b"10-kubeadm.conf",
            b"kubelet",
        ]
        .iter()
        .map(|n| name_hash(n))
        .collect();
        let words = name_filter(names.iter());
        assert_eq!(words.len(), monitor_common::NAME_FILTER_WORDS as usize);
        for h in &names {
            let (w, m) = name_filter_bit(*h);
            assert_ne!(words[w as usize] & m, 0);
        }
        assert_eq!(words.iter().map(|w| w.count_ones()).sum::<u32>(), 4);
    }

    #[test]
    fn the_bit_is_in_range_for_any_hash() {
        for h in [0, u64::MAX, 1 << 63, 0xffff << 48] {
            let (w, m) = name_filter_bit(h);
            assert!(w < monitor_common::NAME_FILTER_WORDS);
            assert_eq!(m.count_ones(), 1);
        }
    }

    #[test]
    fn unrelated_names_are_mostly_ruled_out() {
        let watched: Vec<u64> = (0..200)
            .map(|i| name_hash(format!("watched-{i}.conf").as_bytes()))
            .collect();
        let words = name_filter(watched.iter());
        let passed = (0..100_000)
            .filter(|i| {
                let (w, m) = name_filter_bit(name_hash(format!("data-{i}.bin").as_bytes()));
                words[w as usize] & m != 0
            })
            .count();
        // 200 of 65 536 bits set: about 0.3 % pass to the hash lookup.
        assert!(
            passed < 1_000,
            "{passed} of 100 000 unrelated names passed the filter"
        );
    }
}
