//! The ring-buffer record decoder on arbitrary bytes (records come from the kernel, but a
//! length or kind it does not expect must be an error, not a panic).
#![no_main]
use kubelet_drift::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode::record(data);
});
