//! `kubelet-drift check` (to be written).
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {}

pub fn main(_args: CheckArgs) -> ExitCode {
    eprintln!("not yet implemented");
    ExitCode::from(2)
}
