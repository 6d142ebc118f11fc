//! The kubelet flag parser (pflag's rules) on arbitrary argv: NUL-separated words.
#![no_main]
use kubelet_drift::kubelet::flags;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut argv: Vec<String> = vec!["kubelet".into()];
    argv.extend(text.split('\0').map(String::from));
    if let Ok(p) = flags::parse(&argv) {
        let _ = p.config_path();
        let _ = p.config_dir_path();
    }
});
