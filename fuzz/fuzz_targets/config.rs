//! The kubelet config decoder (YAML/JSON, go-yaml v2 rules), strict and lenient about
//! duplicate keys, and the main-file outcome on what it decodes.
#![no_main]
use kubelet_drift::kubelet::config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for strict in [false, true] {
        if let Ok(s) = config::decode(text, strict) {
            let _ = config::main_outcome(&s);
        }
    }
});
