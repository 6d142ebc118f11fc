//! The few bpf(2) calls the bench makes on another process's objects, by id: program names
//! (for the per-program breakdown) and the daemon's `COUNTERS` per-CPU array (records sent
//! to userspace, records dropped). Read-only.

use std::{collections::BTreeMap, fs, os::fd::AsRawFd, os::fd::FromRawFd, os::fd::OwnedFd};

use anyhow::{Context, Result, bail};

const BPF_MAP_LOOKUP_ELEM: i64 = 1;
const BPF_PROG_GET_FD_BY_ID: i64 = 13;
const BPF_MAP_GET_FD_BY_ID: i64 = 14;
const BPF_OBJ_GET_INFO_BY_FD: i64 = 15;

fn bpf(cmd: i64, attr: &mut [u64; 16]) -> std::io::Result<i64> {
    // SAFETY: attr is a zeroed 128-byte union bpf_attr with the fields `cmd` reads set; the
    // pointers inside it point to live buffers of the sizes given.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), 128u32) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_by_id(cmd: i64, id: u32) -> std::io::Result<OwnedFd> {
    let mut attr = [0u64; 16];
    attr[0] = u64::from(id);
    let fd = bpf(cmd, &mut attr)?;
    // SAFETY: the kernel just returned this new fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn info(fd: &OwnedFd, buf: &mut [u8; 256]) -> std::io::Result<()> {
    let mut attr = [0u64; 16];
    attr[0] = fd.as_raw_fd() as u64 | ((buf.len() as u64) << 32);
    attr[1] = buf.as_mut_ptr() as u64;
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).map(|_| ())
}

fn name_at(buf: &[u8], off: usize) -> String {
    let b = &buf[off..off + 16];
    let end = b.iter().position(|&c| c == 0).unwrap_or(16);
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// `name:` → id for the objects behind `pid`'s fds of `kind` ("bpf-prog" or "bpf-map").
fn ids(pid: u32, kind: &str, id_field: &str) -> Result<Vec<(u32, String)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(format!("/proc/{pid}/fd"))? {
        let e = e?;
        if !fs::read_link(e.path())
            .is_ok_and(|l| l.as_os_str().to_string_lossy() == format!("anon_inode:{kind}"))
        {
            continue;
        }
        let info = fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            e.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        if let Some(id) = info
            .lines()
            .find_map(|l| l.strip_prefix(id_field)?.trim().parse::<u32>().ok())
        {
            out.push((id, info));
        }
    }
    Ok(out)
}

/// Per program of `pid`: name → (run_time_ns, run_cnt) from fdinfo.
pub fn prog_breakdown(pid: u32) -> Result<BTreeMap<String, (u64, u64)>> {
    let mut out = BTreeMap::new();
    for (id, fdinfo) in ids(pid, "bpf-prog", "prog_id:")? {
        let fd = fd_by_id(BPF_PROG_GET_FD_BY_ID, id).context("BPF_PROG_GET_FD_BY_ID")?;
        let mut buf = [0u8; 256];
        info(&fd, &mut buf).context("BPF_OBJ_GET_INFO_BY_FD")?;
        // struct bpf_prog_info: name[16] at offset 64.
        let name = name_at(&buf, 64);
        let field = |f: &str| {
            fdinfo
                .lines()
                .find_map(|l| l.strip_prefix(f)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let e = out
            .entry(if name.is_empty() {
                format!("prog{id}")
            } else {
                name
            })
            .or_insert((0, 0));
        e.0 += field("run_time_ns:");
        e.1 += field("run_cnt:");
    }
    Ok(out)
}

fn possible_cpus() -> Result<usize> {
    let s = fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let mut n = 0;
    for part in s.trim().split(',') {
        n += match part.split_once('-') {
            Some((a, b)) => b.parse::<usize>()? - a.parse::<usize>()? + 1,
            None => 1,
        };
    }
    Ok(n)
}

/// The daemon's `COUNTERS` (monitor_common::counter order), summed over CPUs.
pub fn counters(pid: u32) -> Result<Vec<u64>> {
    let ncpu = possible_cpus()?;
    for (id, _) in ids(pid, "bpf-map", "map_id:")? {
        let fd = fd_by_id(BPF_MAP_GET_FD_BY_ID, id).context("BPF_MAP_GET_FD_BY_ID")?;
        let mut buf = [0u8; 256];
        info(&fd, &mut buf).context("BPF_OBJ_GET_INFO_BY_FD")?;
        // struct bpf_map_info: type, id, key_size, value_size, max_entries, map_flags, name[16].
        let u = |o: usize| u32::from_ne_bytes(buf[o..o + 4].try_into().unwrap());
        if name_at(&buf, 24) != "COUNTERS" || u(12) != 8 {
            continue;
        }
        let entries = u(16);
        let mut out = Vec::new();
        for key in 0..entries {
            let mut vals = vec![0u64; ncpu];
            let mut attr = [0u64; 16];
            attr[0] = fd.as_raw_fd() as u64;
            attr[1] = &key as *const u32 as u64;
            attr[2] = vals.as_mut_ptr() as u64;
            bpf(BPF_MAP_LOOKUP_ELEM, &mut attr).context("BPF_MAP_LOOKUP_ELEM")?;
            out.push(vals.iter().sum());
        }
        return Ok(out);
    }
    bail!("process {pid} holds no COUNTERS map")
}

/// Indices into `counters()` (monitor_common::counter).
pub const SENT: usize = 4;
pub const DROPPED: usize = 5;
