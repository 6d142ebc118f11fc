//! `kubelet-drift events` (to be written).
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct EventsArgs {}

pub fn main(_args: EventsArgs) -> ExitCode {
    eprintln!("not yet implemented");
    ExitCode::from(2)
}
