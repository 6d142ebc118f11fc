//! Work linear in the input, and systemd's own limits: long continued lines, many drop-ins,
//! large environments used many times. Each case also measures itself; the time bound is a
//! generous guard against quadratic work (debug builds, a loaded machine), not a benchmark:
//! `cargo xtask bench` prints the figures.

use std::time::{Duration, Instant};

use super::testkit::{node, words};
use super::{EXEC_ARGS_MAX, LONG_LINE_MAX, UnitErrorKind, assemble, parse_unit_text};

/// Far above what linear work takes here, far below what the quadratic work took (200k
/// continuation lines: 25 s; 20k drop-ins: 23 s, in release builds).
const GUARD: Duration = Duration::from_secs(30);

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    let took = t.elapsed();
    eprintln!("{what}: {took:?}");
    assert!(took < GUARD, "{what} took {took:?}: not linear");
    out
}

#[test]
fn two_hundred_thousand_continuation_lines() {
    let n = 200_000;
    let mut unit = String::from("[Service]\nExecStart=/usr/bin/kubelet \\\n");
    for _ in 0..n {
        unit.push_str("x \\\n");
    }
    unit.push_str("  --make-iptables-util-chains=false\n");
    let (_d, fs) = node(&[("/lib/systemd/system/kubelet.service", &unit)]);
    let u = timed("200k continuation lines", || {
        assemble(&fs, "kubelet.service").unwrap()
    });
    assert_eq!(u.argv.len(), n + 2);
    assert_eq!(u.argv.last().unwrap(), "--make-iptables-util-chains=false");
    assert_eq!(u.exec_start_line, 2);
}

#[test]
fn systemd_line_limits() {
    // A physical line of LONG_LINE_MAX bytes: read_line() fails, the unit does not load.
    let long = format!("[Service]\nExecStart=/k {}\n", "a".repeat(LONG_LINE_MAX));
    let e = parse_unit_text(&long).unwrap_err();
    assert_eq!(e.0, 2);
    assert!(e.1.contains("line too long"), "{}", e.1);
    // One byte less is a line systemd reads (also as a comment, which is read before it is
    // skipped).
    let line = format!("ExecStart=/k {}", "a".repeat(LONG_LINE_MAX - 1 - 13));
    assert_eq!(line.len(), LONG_LINE_MAX - 1);
    assert_eq!(
        parse_unit_text(&format!("[Service]\n{line}\n")).unwrap()[0]
            .value
            .len(),
        LONG_LINE_MAX - 1 - 10
    );
    assert!(parse_unit_text(&format!("# {}\n", "a".repeat(LONG_LINE_MAX))).is_err());
    // A continued line that grows past LONG_LINE_MAX: refused at the line that does it.
    let mut unit = String::from("[Service]\nExecStart=/k \\\n");
    let piece = format!("{} \\\n", "a".repeat(1000));
    let lines = LONG_LINE_MAX / 1002 + 1;
    for _ in 0..lines {
        unit.push_str(&piece);
    }
    let e = parse_unit_text(&unit).unwrap_err();
    assert!(e.1.contains("continuation line too long"), "{}", e.1);
    assert!(e.0 > 2 && e.0 <= lines + 2, "{}", e.0);
    let (_d, fs) = node(&[("/lib/systemd/system/kubelet.service", &unit)]);
    let e = assemble(&fs, "kubelet.service").unwrap_err();
    assert_eq!(e.kind, UnitErrorKind::Syntax, "{e}");
}

#[test]
fn twenty_thousand_dropins() {
    let n = 20_000;
    let (d, fs) = node(&[(
        "/lib/systemd/system/kubelet.service",
        "[Service]\nExecStart=/usr/bin/kubelet\n",
    )]);
    let dir = d.path().join("etc/systemd/system/kubelet.service.d");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("{i:05}.conf")), "").unwrap();
    }
    std::fs::write(
        dir.join("99999-last.conf"),
        "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --make-iptables-util-chains=false\n",
    )
    .unwrap();
    let u = timed("20k drop-ins", || assemble(&fs, "kubelet.service").unwrap());
    assert_eq!(
        u.argv,
        words(&["/usr/bin/kubelet", "--make-iptables-util-chains=false"])
    );
    assert_eq!(u.dropins.len(), 1);
    assert!(u.inputs.len() > n, "every drop-in is an input");
}

#[test]
fn large_variables_used_many_times() {
    // A 512 KiB variable of blanks used 100k times: split once, no argument.
    let blanks = " ".repeat(512 * 1024);
    let uses = " $B".repeat(100_000);
    let unit =
        format!("[Service]\nEnvironmentFile=/etc/k.env\nExecStart=/usr/bin/kubelet{uses} --v=2\n");
    let (_d, fs) = node(&[
        ("/lib/systemd/system/kubelet.service", &unit),
        ("/etc/k.env", &format!("B=\"{blanks}\"\n")),
    ]);
    let u = timed("100k uses of a blank variable", || {
        assemble(&fs, "kubelet.service").unwrap()
    });
    assert_eq!(u.argv, words(&["/usr/bin/kubelet", "--v=2"]));
    // A 512 KiB value used 100k times, split or not: past what execve() takes, refused early.
    for word in ["$A", "${A}", "x${A}"] {
        let uses = format!(" {word}").repeat(100_000);
        let unit = format!("[Service]\nEnvironmentFile=/etc/k.env\nExecStart=/k{uses}\n");
        let (_d, fs) = node(&[
            ("/lib/systemd/system/kubelet.service", &unit),
            (
                "/etc/k.env",
                &format!("A=\"{}\"\n", "ab ".repeat(512 * 1024 / 3)),
            ),
        ]);
        let e = timed(&format!("100k uses of {word}"), || {
            assemble(&fs, "kubelet.service").unwrap_err()
        });
        assert_eq!(e.kind, UnitErrorKind::TooLarge, "{e}");
        assert!(e.message.contains("E2BIG"), "{}", e.message);
    }
    // Just under the limit still assembles.
    let value = "a".repeat(EXEC_ARGS_MAX / 8);
    let unit = "[Service]\nEnvironmentFile=/etc/k.env\nExecStart=/k $A $A $A $A\n";
    let (_d, fs) = node(&[
        ("/lib/systemd/system/kubelet.service", unit),
        ("/etc/k.env", &format!("A={value}\n")),
    ]);
    assert_eq!(assemble(&fs, "kubelet.service").unwrap().argv.len(), 5);
}

#[test]
fn one_environment_file_named_many_times() {
    // 50k EnvironmentFile= lines naming one file of 20k variables: read and applied once.
    let vars: String = (0..20_000).map(|i| format!("V{i}=x\n")).collect();
    let refs = "EnvironmentFile=/etc/k.env\nEnvironmentFile=-/etc/k*.env\n".repeat(25_000);
    let unit = format!("[Service]\n{refs}ExecStart=/k $V19999 $V7\n");
    let (_d, fs) = node(&[
        ("/lib/systemd/system/kubelet.service", &unit),
        ("/etc/k.env", &vars),
    ]);
    let u = timed("50k EnvironmentFile= lines", || {
        assemble(&fs, "kubelet.service").unwrap()
    });
    assert_eq!(u.argv, words(&["/k", "x", "x"]));
    assert_eq!(u.env.len(), 20_000);
}

#[test]
fn many_unset_variables_are_counted_not_listed() {
    let uses = " $U".repeat(10_000);
    let unit = format!("[Service]\nExecStart=/k{uses}\n");
    let (_d, fs) = node(&[("/lib/systemd/system/kubelet.service", &unit)]);
    let u = assemble(&fs, "kubelet.service").unwrap();
    assert_eq!(u.argv, words(&["/k"]));
    assert!(u.notes.len() < 40, "{}", u.notes.len());
    assert!(
        u.notes
            .last()
            .unwrap()
            .contains("9968 more unset variables"),
        "{:?}",
        u.notes.last()
    );
}
