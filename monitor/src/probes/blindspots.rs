//! Loading and attaching the blind-spot programs (monitor-ebpf's `ancestors.rs`, `mount.rs`,
//! `mmap.rs`, `handle.rs`, `io_uring.rs`) and filling their map. Each is optional: a
//! tracepoint or BTF type this kernel lacks leaves that blind spot open, and a warning says
//! which.
//!
//! | program                | tracepoint(s)                                               | kernel |
//! |------------------------|-------------------------------------------------------------|--------|
//! | `kd_anc_*`             | syscalls:sys_enter_rename/renameat/renameat2/unlink/unlinkat/rmdir | 3.15 |
//! | `kd_mount`, `kd_move_mount`, `kd_umount` | syscalls:sys_enter_mount, move_mount (5.2), umount |   |
//! | `kd_blind_exit`        | syscalls:sys_exit_* of the two rows above, and of mmap      |        |
//! | `kd_mmap`, `kd_msync`, `kd_munmap` | syscalls:sys_enter_mmap/msync/munmap            |        |
//! | `kd_mmap_exit`         | sched:sched_process_exit                                    |        |
//! | `kd_open_by_handle_at` | syscalls:sys_enter_open_by_handle_at (+ `kd_open_exit` on its exit) | 2.6.39 |
//! | `kd_uring_complete`    | io_uring:io_uring_complete (BTF: io_kiocb.opcode, .file)    | 5.5    |
//! | `kd_uring_submit`      | io_uring:io_uring_submit_req (BTF: io_kiocb.cqe.fd, the fixed-file table) | 5.18 (IOSQE_CQE_SKIP_SUCCESS) |

use std::{collections::BTreeSet, path::Path};

use anyhow::{Context, Result, anyhow};
use aya::{Ebpf, maps::HashMap as BpfHashMap, programs::TracePoint};
use btf_rs::Btf;
use monitor_common::{NameKey, Offsets, blind::BlindOffsets};

use super::{Probes, btf::VMLINUX, btf::member_offset, tracefs::Format};

/// (program, syscall): enter programs whose sys_exit gets `kd_blind_exit`.
const STASHING: &[(&str, &str)] = &[
    ("kd_anc_rename", "rename"),
    ("kd_anc_renameat", "renameat"),
    ("kd_anc_renameat2", "renameat2"),
    ("kd_anc_unlink", "unlink"),
    ("kd_anc_unlinkat", "unlinkat"),
    ("kd_anc_rmdir", "rmdir"),
    ("kd_mount", "mount"),
    ("kd_move_mount", "move_mount"),
    ("kd_umount", "umount"),
    ("kd_mmap", "mmap"),
];

/// (program, syscall): enter programs that send at once.
const DIRECT: &[(&str, &str)] = &[
    ("kd_msync", "msync"),
    ("kd_munmap", "munmap"),
    ("kd_open_by_handle_at", "open_by_handle_at"),
];

/// The `BLIND_OFFSETS` global: io_uring's completion fields and request members. Zero (the
/// io_uring program disabled, with a warning) when this kernel has neither.
pub fn offsets(tracefs: &Path, warnings: &mut Vec<String>) -> BlindOffsets {
    let mut off = BlindOffsets::ZERO;
    let found = (|| -> Result<()> {
        let f = Format::read(tracefs, "io_uring", "io_uring_complete")?;
        off.uring_req = f.field("req")?.offset;
        off.uring_res = f.field("res")?.offset;
        let bytes = std::fs::read(VMLINUX).with_context(|| format!("reading {VMLINUX}"))?;
        let btf = Btf::from_bytes(&bytes).with_context(|| format!("parsing {VMLINUX}"))?;
        off.kiocb_opcode = member_offset(&btf, "io_kiocb", &["opcode"])?;
        off.kiocb_file = member_offset(&btf, "io_kiocb", &["file"])?;
        off.have_uring = 1;
        // Requests whose completion is not posted: looked at when submitted.
        let s = Format::read(tracefs, "io_uring", "io_uring_submit_req")?;
        off.sub_ctx = s.field("ctx")?.offset;
        off.sub_req = s.field("req")?.offset;
        off.sub_opcode = s.field("opcode")?.offset;
        off.sub_flags = s.field("flags")?.offset;
        off.kiocb_fd = member_offset(&btf, "io_kiocb", &["cqe", "fd"])?;
        off.have_submit = 1;
        // The fixed-file table (its layout changed across kernels; without it, a fixed-file
        // request whose completion is not posted counts as unknown and is re-evaluated).
        let fixed = (|| -> Result<(u32, u32, u32)> {
            Ok((
                member_offset(&btf, "io_ring_ctx", &["file_table", "data", "nr"])?,
                member_offset(&btf, "io_ring_ctx", &["file_table", "data", "nodes"])?,
                member_offset(&btf, "io_rsrc_node", &["file_ptr"])?,
            ))
        })();
        if let Ok((nr, nodes, ptr)) = fixed {
            (off.ctx_files_nr, off.ctx_files_nodes, off.rsrc_file_ptr) = (nr, nodes, ptr);
            off.have_fixed = 1;
        }
        Ok(())
    })();
    match found {
        Ok(()) => {}
        Err(e) if off.have_uring != 0 => {
            // Completions are followed; requests that post none are not.
            off.have_submit = 0;
            warnings.push(format!(
                "io_uring requests submitted with IOSQE_CQE_SKIP_SUCCESS are not followed \
                 ({e:#}): such a write of a config file is seen only by the periodic rescan"
            ));
        }
        Err(e) => {
            off = BlindOffsets::ZERO;
            warnings.push(format!(
                "io_uring requests are not followed ({e:#}): an io_uring open, rename, unlink \
                 or write of a config file is seen only by the periodic rescan"
            ));
        }
    }
    off
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut TracePoint> {
    let p: &mut TracePoint = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("program {name} missing from the object"))?
        .try_into()?;
    Ok(p)
}

/// Loads `name` (once) and attaches it to `category:event`.
fn attach_one(ebpf: &mut Ebpf, name: &str, category: &str, event: &str) -> Result<()> {
    let p = program(ebpf, name)?;
    if p.fd().is_err() {
        p.load().map_err(|e| anyhow!("loading {name}: {e}"))?;
    }
    p.attach(category, event)
        .map_err(|e| anyhow!("attaching {name} to {category}:{event}: {e}"))?;
    Ok(())
}

/// Does `sys_enter_<sc>` exist with the argument layout the programs were given?
fn syscall_present(tracefs: &Path, off: &Offsets, sc: &str) -> Result<()> {
    let f = Format::read(tracefs, "syscalls", &format!("sys_enter_{sc}"))?;
    for (i, a) in f.syscall_args().iter().enumerate().take(6) {
        if a.offset != off.sys_arg[i] {
            anyhow::bail!(
                "sys_enter_{sc}: argument {i} at offset {} where the others have {}",
                a.offset,
                off.sys_arg[i]
            );
        }
    }
    Ok(())
}

/// Attaches every blind-spot program this kernel supports; what it lacks becomes a warning.
pub fn attach(
    ebpf: &mut Ebpf,
    tracefs: &Path,
    off: &Offsets,
    blind: &BlindOffsets,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let mut warn = |what: &str, e: anyhow::Error| {
        warnings.push(format!("{what} is seen only by the periodic rescan: {e:#}"));
    };
    for &(prog, sc) in STASHING {
        let r = syscall_present(tracefs, off, sc)
            .and_then(|()| attach_one(ebpf, prog, "syscalls", &format!("sys_enter_{sc}")))
            .and_then(|()| {
                attach_one(ebpf, "kd_blind_exit", "syscalls", &format!("sys_exit_{sc}"))
            });
        if let Err(e) = r {
            // rename, unlink, rmdir and move_mount are absent on some architectures.
            if !matches!(sc, "rename" | "unlink" | "rmdir" | "move_mount") {
                warn(
                    &format!("{sc}(2) on a directory of an input's path, a mount, a mapping"),
                    e,
                );
            }
        }
    }
    for &(prog, sc) in DIRECT {
        let r = syscall_present(tracefs, off, sc)
            .and_then(|()| attach_one(ebpf, prog, "syscalls", &format!("sys_enter_{sc}")));
        let r = if sc == "open_by_handle_at" {
            r.and_then(|()| {
                attach_one(
                    ebpf,
                    "kd_open_exit",
                    "syscalls",
                    "sys_exit_open_by_handle_at",
                )
            })
        } else {
            r
        };
        if let Err(e) = r {
            warn(&format!("{sc}(2) of a config file"), e);
        }
    }
    if let Err(e) = attach_one(ebpf, "kd_mmap_exit", "sched", "sched_process_exit") {
        warn("the exit of a process that mapped a config file shared", e);
    }
    if blind.have_uring != 0
        && let Err(e) = attach_one(ebpf, "kd_uring_complete", "io_uring", "io_uring_complete")
    {
        warn("an io_uring request on a config file", e);
    }
    if blind.have_submit != 0
        && let Err(e) = attach_one(ebpf, "kd_uring_submit", "io_uring", "io_uring_submit_req")
    {
        warn(
            "an io_uring request on a config file that posts no completion",
            e,
        );
    }
    Ok(())
}

impl Probes {
    /// Names of the directories on the inputs' paths (see `crate::ancestors`): a rename,
    /// unlink or rmdir whose last component is one of them is reported.
    pub fn set_ancestor_names(&mut self, names: &BTreeSet<Vec<u8>>) -> Result<()> {
        let mut map: BpfHashMap<_, NameKey, u8> = BpfHashMap::try_from(
            self.ebpf
                .map_mut("ANCESTOR_NAMES")
                .ok_or_else(|| anyhow!("ANCESTOR_NAMES map missing"))?,
        )?;
        let want: BTreeSet<[u8; monitor_common::NAME_LEN]> = names
            .iter()
            .filter_map(|n| NameKey::new(n))
            .map(|k| k.name)
            .collect();
        let have = &self.ancestor_names;
        for old in have.difference(&want) {
            let _ = map.remove(&NameKey { name: *old });
        }
        for new in want.difference(have) {
            map.insert(NameKey { name: *new }, 1, 0)?;
        }
        self.ancestor_names = want;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against this machine's kernel (6.18, BTF, tracefs): every io_uring offset is found,
    /// the fixed-file table too, and nothing is left to warn about.
    #[test]
    fn io_uring_offsets_from_running_kernel() {
        let tracefs = super::super::tracefs::ensure_mounted().expect("tracefs");
        let mut warnings = Vec::new();
        let off = offsets(&tracefs, &mut warnings);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!((off.have_uring, off.have_submit, off.have_fixed), (1, 1, 1));
        assert!(off.uring_req > 0 && off.uring_res > off.uring_req);
        assert!(off.sub_flags > off.sub_opcode);
        assert!(off.kiocb_opcode > 0, "opcode follows the file/cmd union");
    }
}
