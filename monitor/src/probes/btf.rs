//! Kernel structure member offsets from the running kernel's BTF (`/sys/kernel/btf/vmlinux`),
//! handed to the kernel programs through the `OFFSETS` global: this is how they walk
//! task->files->fdt->fd[fd]->f_inode without CO-RE relocations.

use anyhow::{Context, Result, anyhow, bail};
use btf_rs::{Btf, Type};
use monitor_common::Offsets;

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// Fills the BTF part of `off`. Returns what could not be found (the programs then run in a
/// degraded mode: no ppid, or matching by name instead of by inode).
pub fn fill(off: &mut Offsets) -> Result<()> {
    // Read it whole first: parsing through the file makes >100k small reads and seeks.
    let bytes = std::fs::read(VMLINUX).with_context(|| format!("reading {VMLINUX}"))?;
    let btf = Btf::from_bytes(&bytes).with_context(|| format!("parsing {VMLINUX}"))?;
    let m = |s: &str, path: &[&str]| member_offset(&btf, s, path);

    off.task_real_parent = m("task_struct", &["real_parent"])?;
    off.task_tgid = m("task_struct", &["tgid"])?;
    off.task_exit_code = m("task_struct", &["exit_code"])?;
    off.have_parent = 1;

    off.task_files = m("task_struct", &["files"])?;
    off.files_fdt = m("files_struct", &["fdt"])?;
    off.fdt_fd = m("fdtable", &["fd"])?;
    off.fdt_max_fds = m("fdtable", &["max_fds"])?;
    off.file_inode = m("file", &["f_inode"])?;
    off.file_dentry = m("file", &["f_path", "dentry"])?;
    off.dentry_parent = m("dentry", &["d_parent"])?;
    off.dentry_inode = m("dentry", &["d_inode"])?;
    off.dentry_name = m("dentry", &["d_name", "name"])?;
    off.inode_ino = m("inode", &["i_ino"])?;
    off.inode_sb = m("inode", &["i_sb"])?;
    off.sb_dev = m("super_block", &["s_dev"])?;
    off.have_files = 1;

    off.task_mm = m("task_struct", &["mm"])?;
    off.mm_exe_file = m("mm_struct", &["exe_file"])?;
    off.have_exe = 1;

    off.task_fs = m("task_struct", &["fs"])?;
    off.fs_pwd_dentry = m("fs_struct", &["pwd", "dentry"])?;
    off.have_cwd = 1;
    Ok(())
}

/// Byte offset of `path` (a chain of member names, each in the previous member's struct)
/// inside struct `name`. Anonymous struct/union members are searched through.
pub fn member_offset(btf: &Btf, name: &str, path: &[&str]) -> Result<u32> {
    let ty = btf
        .resolve_types_by_name(name)
        .with_context(|| format!("BTF has no type {name}"))?
        .into_iter()
        .find(|t| matches!(t, Type::Struct(s) if !s.members.is_empty()))
        .ok_or_else(|| anyhow!("BTF has no struct {name}"))?;
    let mut bits = 0u32;
    let mut cur = ty;
    for (i, want) in path.iter().enumerate() {
        let (off, member_ty) = find_member(btf, &cur, want, 0)?
            .ok_or_else(|| anyhow!("struct {name}: no member {}", path[..=i].join(".")))?;
        bits += off;
        cur = member_ty;
    }
    if !bits.is_multiple_of(8) {
        bail!("struct {name}.{} is a bitfield", path.join("."));
    }
    Ok(bits / 8)
}

/// Finds `want` in struct/union `ty`; returns (bit offset, the member's resolved type).
fn find_member(btf: &Btf, ty: &Type, want: &str, depth: u32) -> Result<Option<(u32, Type)>> {
    if depth > 8 {
        return Ok(None);
    }
    let members = match ty {
        Type::Struct(s) | Type::Union(s) => &s.members,
        _ => return Ok(None),
    };
    for member in members {
        let name = btf.resolve_name(member).unwrap_or_default();
        let mty = strip(btf, btf.resolve_chained_type(member)?)?;
        if name == want {
            return Ok(Some((member.bit_offset(), mty)));
        }
        if name.is_empty()
            && let Some((off, t)) = find_member(btf, &mty, want, depth + 1)?
        {
            return Ok(Some((member.bit_offset() + off, t)));
        }
    }
    Ok(None)
}

/// Follows typedefs and qualifiers to the underlying type.
fn strip(btf: &Btf, mut ty: Type) -> Result<Type> {
    for _ in 0..16 {
        ty = match &ty {
            Type::Typedef(t) => btf.resolve_chained_type(t)?,
            Type::Const(t) => btf.resolve_chained_type(t)?,
            Type::Volatile(t) => btf.resolve_chained_type(t)?,
            Type::Restrict(t) => btf.resolve_chained_type(t)?,
            Type::TypeTag(t) => btf.resolve_chained_type(t)?,
            _ => return Ok(ty),
        };
    }
    Ok(ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against this machine's kernel: the offsets exist and are plausible.
    #[test]
    fn offsets_from_running_kernel() {
        if !std::path::Path::new(VMLINUX).exists() {
            panic!("{VMLINUX} missing: this product needs a kernel with BTF");
        }
        let mut off = Offsets::default();
        fill(&mut off).unwrap();
        assert!(off.task_real_parent > 0 && off.task_tgid > 0 && off.task_files > 0);
        assert!(off.file_dentry > 0 && off.inode_sb > 0);
        assert_eq!(off.have_files, 1);
    }
}
