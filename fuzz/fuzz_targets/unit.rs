//! systemd unit text, ExecStart expansion and EnvironmentFile parsing: the input is split
//! at the first NUL into a unit file and an environment file.
#![no_main]
use std::collections::HashMap;

use kubelet_drift::kubelet::{envfile, unit};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (unit_text, env_text) = text.split_once('\0').unwrap_or((&text, ""));
    let env = envfile::parse(env_text);
    let _ = envfile::parse_raw(env_text);
    let vars: HashMap<String, String> = env.vars.iter().cloned().collect();
    if let Ok(assignments) = unit::parse_unit_text(unit_text) {
        for a in &assignments {
            let words = unit::split_value(&a.value);
            let _ = unit::expand_argv(&words, &vars);
        }
    }
    // The words of the whole text too, so expansion sees arbitrary `$`/`${` forms.
    let words = unit::split_value(unit_text);
    let _ = unit::expand_argv(&words, &vars);
});
