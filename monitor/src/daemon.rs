//! `kubelet-drift run` (to be written).
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct RunArgs {}

pub fn main(_args: RunArgs) -> ExitCode {
    eprintln!("not yet implemented");
    ExitCode::from(2)
}
