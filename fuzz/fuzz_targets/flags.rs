//! The kubelet flag parser (pflag's rules, each flag's value type, the second parse over the
//! config files) on arbitrary argv: NUL-separated words. Invariants asserted:
//! - a decided `--make-iptables-util-chains` names an argument that spells that flag;
//! - appending `--make-iptables-util-chains=false` to an argv the kubelet accepts always
//!   yields false (nothing can swallow or hide a last flag of an accepted command line),
//!   unless a `--` made it positional.
#![no_main]
use kubelet_drift::kubelet::flags;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut argv: Vec<String> = vec!["kubelet".into()];
    argv.extend(text.split('\0').map(String::from));
    let Ok(p) = flags::parse(&argv) else {
        return;
    };
    let _ = p.config_path();
    let _ = p.config_dir_path();
    if let Some((at, _)) = &p.make_iptables_util_chains {
        let arg = argv[at.index].replace('_', "-");
        assert!(arg.starts_with("--make-iptables-util-chains"), "{argv:?}");
    }
    if argv[1..].iter().any(|a| a == "--") {
        // After `--` everything is positional.
        return;
    }
    let mut more = argv.clone();
    more.push("--make-iptables-util-chains=false".into());
    let q = flags::parse(&more).expect("an accepted argv plus a valid flag is accepted");
    assert_eq!(
        q.make_iptables_util_chains.map(|(_, b)| b),
        Some(false),
        "{argv:?}"
    );
});
