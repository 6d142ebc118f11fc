//! Why a file could not be read, in plain words.

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::MAX_TEXT_BYTES;

/// Why a file could not be read (each message follows the path in [`FsError`]'s).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FsErrorKind {
    #[error("does not exist")]
    NotFound,
    /// A symlink points at something that does not exist.
    #[error(
        "does not exist: a symlink on its path points at {}, which does not exist",
        target.display()
    )]
    DanglingSymlink { target: PathBuf },
    /// A path component (not the last) is not a directory (ENOTDIR).
    #[error("cannot be reached: a component of its path is not a directory")]
    NotADirectory,
    /// More than [`MAX_SYMLINKS`] symlinks, i.e. a loop (ELOOP).
    #[error("cannot be reached: too many levels of symbolic links (a symlink loop)")]
    SymlinkLoop,
    /// EACCES/EPERM.
    #[error("cannot be read: permission denied")]
    PermissionDenied,
    #[error("is a FIFO, not a regular file")]
    Fifo,
    #[error("is a character device, not a regular file")]
    CharDevice,
    #[error("is a block device, not a regular file")]
    BlockDevice,
    #[error("is a socket, not a regular file")]
    Socket,
    #[error("is a directory, not a regular file")]
    Directory,
    /// Not a regular file, of no kind above.
    #[error("is not a regular file")]
    NotRegular,
    /// Expected a directory.
    #[error("is not a directory")]
    NotADirectoryToList,
    #[error(
        "is absurdly large for a configuration file ({size} bytes, the limit is {MAX_TEXT_BYTES})"
    )]
    TooLarge { size: u64 },
    #[error("is not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    /// Contains NUL bytes.
    #[error("is a binary file, not text (NUL byte at offset {offset})")]
    Binary { offset: usize },
    /// Any other I/O error, with the system's message.
    #[error("cannot be read: {0}")]
    Io(String),
}

/// A file could not be read: the path (inside the root, as given) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} {kind}", path.display())]
pub struct FsError {
    pub path: PathBuf,
    pub kind: FsErrorKind,
}

impl FsError {
    pub(super) fn new(path: &Path, kind: FsErrorKind) -> FsError {
        FsError {
            path: path.to_path_buf(),
            kind,
        }
    }
    pub(super) fn io(path: &Path, e: &io::Error) -> FsError {
        FsError::new(path, kind_of_io(e))
    }
    /// The file (or a component of its path) does not exist, possibly through a dangling link.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.kind,
            FsErrorKind::NotFound | FsErrorKind::DanglingSymlink { .. }
        )
    }
}

pub(super) fn kind_of_io(e: &io::Error) -> FsErrorKind {
    match e.raw_os_error() {
        Some(libc::ENOENT) => FsErrorKind::NotFound,
        Some(libc::ENOTDIR) => FsErrorKind::NotADirectory,
        Some(libc::ELOOP) => FsErrorKind::SymlinkLoop,
        Some(libc::EACCES) | Some(libc::EPERM) => FsErrorKind::PermissionDenied,
        Some(libc::EISDIR) => FsErrorKind::Directory,
        Some(libc::ENXIO) => FsErrorKind::NotRegular,
        _ => FsErrorKind::Io(e.to_string()),
    }
}

pub(super) fn kind_of_meta(m: &Metadata) -> Option<FsErrorKind> {
    let ft = m.file_type();
    if ft.is_file() {
        None
    } else if ft.is_fifo() {
        Some(FsErrorKind::Fifo)
    } else if ft.is_char_device() {
        Some(FsErrorKind::CharDevice)
    } else if ft.is_block_device() {
        Some(FsErrorKind::BlockDevice)
    } else if ft.is_socket() {
        Some(FsErrorKind::Socket)
    } else if ft.is_dir() {
        Some(FsErrorKind::Directory)
    } else {
        Some(FsErrorKind::NotRegular)
    }
}
