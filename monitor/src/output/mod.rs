//! Where reports go: journald (native protocol), OCSF JSON lines, human text on stderr.

pub mod journald;
pub mod ocsf;
pub mod text;
