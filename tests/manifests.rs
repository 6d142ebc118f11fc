//! The Kubernetes manifests validate against the API's own OpenAPI schemas (strict: an
//! unknown or misspelt field fails), for the oldest Kubernetes the DaemonSet supports and the
//! newest the validator knows. `kubernetes-validate` (PyPI) carries the schemas, so this works
//! offline; `cargo xtask test` installs it.

use std::{path::Path, process::Command};

fn validate(k8s: &str) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/daemonset.yaml");
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--no-warn", "-k", k8s])
        .arg(&manifest)
        .output()
        .expect("kubernetes-validate is installed by `cargo xtask test` (pip install kubernetes-validate)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "Kubernetes {k8s}:\n{text}");
    // Every document was checked (a document the validator does not know is only a warning).
    for kind in [
        "namespace",
        "priorityclass",
        "serviceaccount",
        "configmap",
        "daemonset",
    ] {
        assert!(
            text.contains(&format!("passed for resource {kind}/")),
            "{kind} not validated against {k8s}:\n{text}"
        );
    }
}

#[test]
fn daemonset_validates_against_kubernetes_1_30() {
    validate("1.30.0");
}

#[test]
fn daemonset_validates_against_the_newest_schema() {
    validate("1.35.0");
}
