#![no_std]
// Host-side library target so that `monitor`'s build script can depend on this crate (and be
// rebuilt when it changes); the programs themselves are in the binary target.
