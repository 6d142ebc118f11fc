//! The kubelet config decoder (the allowlist reader: go-yaml v2 + sigs.k8s.io/yaml rules, or
//! strict JSON), strict and lenient about duplicate keys, and the main-file outcome, with the
//! reader's invariants asserted:
//! - it never accepts YAML holding a character the allowlist excludes (an independent scan);
//! - what it accepts, written as the JSON the kubelet decodes, reads back to the same
//!   field values (so a verdict never depends on which of the two serializers saw it);
//! - a strict decode that succeeds agrees with the lenient one;
//! - a pass (true or default) needs apiVersion and kind as the kubelet's kind detection reads
//!   them (case-insensitive keys, the last non-null value), and a drop-in needs them exact.
#![no_main]
use kubelet_drift::kubelet::{config, yaml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = yaml::read(text) else {
        for strict in [false, true] {
            assert!(config::parse(text, strict).is_err());
        }
        return;
    };
    assert_eq!(yaml::excluded_character(text), None, "{text:?}");
    let again = yaml::read(&yaml::to_json(&doc)).expect("the JSON of a document reads back");
    let last = |d: &yaml::Document, k: &str| {
        d.root
            .iter()
            .rev()
            .find(|e| e.key == k)
            .map(|e| e.value.clone())
    };
    for e in &doc.root {
        let a = last(&doc, &e.key);
        let b = last(&again, &e.key);
        match (&a, &b) {
            // A plain scalar (number or string) comes back as a string.
            (Some(yaml::Value::Scalar(x)), Some(yaml::Value::Str(y))) => assert_eq!(x, y),
            (Some(yaml::Value::Num(_)), Some(yaml::Value::Num(_))) => {}
            (Some(yaml::Value::Bool(x)), _) => assert_eq!(Some(yaml::Value::Bool(*x)), b),
            (Some(yaml::Value::Null), _) => assert_eq!(Some(yaml::Value::Null), b),
            _ => {}
        }
    }
    let lenient = config::parse(text, false);
    if let Ok(strict) = config::parse(text, true) {
        assert_eq!(Ok(&strict), lenient.as_ref());
        assert!(strict.strict_errors.is_empty());
    }
    if let Ok(s) = &lenient
        && let Ok(m) = config::main_outcome(s)
        && m.set.is_none_or(|(b, _)| b)
    {
        let detected = |k: &str, v: &str| {
            doc.root
                .iter()
                .rev()
                .find(|e| config::go_fold_eq(&e.key, k) && e.value != yaml::Value::Null)
                .is_some_and(|e| e.value == yaml::Value::Str(v.into()))
        };
        assert!(detected("apiVersion", config::API_VERSION) && detected("kind", config::KIND));
    }
    if config::parse(text, true).is_ok() {
        let exact = |k: &str, v: &str| {
            doc.root
                .iter()
                .rev()
                .find(|e| e.key == k)
                .is_some_and(|e| e.value == yaml::Value::Str(v.into()))
        };
        assert!(exact("apiVersion", config::API_VERSION) && exact("kind", config::KIND));
    }
});
