//! `ExecStart=`, environment, syntax and specifier rules, through the parsers and through a
//! whole assembly.

use std::collections::HashMap;
use std::path::PathBuf;

use super::testkit::{BASE, argv, node, words};
use super::{ExecParse, UnitErrorKind, assemble, expand_argv, parse_exec, parse_unit_text};

#[test]
fn exec_start_reset_and_duplicates() {
    let (_d, fs) = node(&[
        ("/lib/systemd/system/kubelet.service", BASE),
        (
            "/etc/systemd/system/kubelet.service.d/10-x.conf",
            "[Service]\nExecStart=/usr/bin/kubelet --x\n",
        ),
    ]);
    let e = assemble(&fs, "kubelet.service").unwrap_err();
    assert_eq!(e.kind, UnitErrorKind::MultipleExecStart);
    assert_eq!(e.line, Some(2));
    let (_d, fs) = node(&[(
        "/lib/systemd/system/kubelet.service",
        "[Service]\nType=oneshot\nExecStart=/a\nExecStart=/b\n",
    )]);
    assert_eq!(
        assemble(&fs, "kubelet.service").unwrap_err().kind,
        UnitErrorKind::Unsupported
    );
    // a lone ; makes two commands
    let (_d, fs) = node(&[(
        "/lib/systemd/system/kubelet.service",
        "[Service]\nExecStart=/a x ; /b\n",
    )]);
    assert_eq!(
        assemble(&fs, "kubelet.service").unwrap_err().kind,
        UnitErrorKind::MultipleExecStart
    );
    // \; is a literal argument
    let (_d, fs) = node(&[(
        "/lib/systemd/system/kubelet.service",
        "[Service]\nExecStart=/a x \\; y\n",
    )]);
    assert_eq!(argv(&fs), words(&["/a", "x", ";", "y"]));
    // reset with nothing after it
    let (_d, fs) = node(&[
        ("/lib/systemd/system/kubelet.service", BASE),
        (
            "/etc/systemd/system/kubelet.service.d/10-x.conf",
            "[Service]\nExecStart=\n",
        ),
    ]);
    assert_eq!(
        assemble(&fs, "kubelet.service").unwrap_err().kind,
        UnitErrorKind::NoExecStart
    );
    // ExecStart outside [Service] does not count
    let (_d, fs) = node(&[(
        "/lib/systemd/system/kubelet.service",
        "ExecStart=/x\n[Unit]\nExecStart=/y\n[Service]\nExecStart=/usr/bin/kubelet\n[Install]\nExecStart=/z\n",
    )]);
    assert_eq!(argv(&fs), words(&["/usr/bin/kubelet"]));
}

fn exec(v: &str) -> Vec<String> {
    let (cmds, _) = parse_exec(v, "kubelet.service").unwrap();
    assert_eq!(cmds.len(), 1);
    expand_argv(&cmds[0].argv, &HashMap::new()).unwrap().0
}

#[test]
fn exec_prefixes() {
    let (c, _) = parse_exec("-@/usr/bin/kubelet kubelet-real --a", "kubelet.service").unwrap();
    assert_eq!(c[0].path, "/usr/bin/kubelet");
    assert_eq!(c[0].argv, words(&["kubelet-real", "--a"]));
    assert!(c[0].ignore_failure && c[0].separate_argv0);
    let (c, _) = parse_exec(":/k $X ${X}", "kubelet.service").unwrap();
    assert!(c[0].no_env_expand);
    for p in ["+", "!", "!!", "-+", "@-", ":!!"] {
        let (c, _) = parse_exec(&format!("{p}/k --a"), "kubelet.service").unwrap();
        assert_eq!(c[0].path, "/k", "{p}");
    }
    // relative names are allowed (looked up in PATH); paths with a slash must be absolute
    assert_eq!(exec("kubelet --a"), words(&["kubelet", "--a"]));
    assert!(matches!(
        parse_exec("bin/kubelet", "k.service"),
        Err(ExecParse::Fatal(_))
    ));
    assert!(matches!(
        parse_exec("/usr/bin/", "k.service"),
        Err(ExecParse::Fatal(_))
    ));
    assert!(matches!(
        parse_exec("@/usr/bin/kubelet", "k.service"),
        Err(ExecParse::Fatal(_))
    ));
    // '-' turns a refused command into an ignored line
    assert!(
        parse_exec("-bin/kubelet", "k.service")
            .unwrap()
            .0
            .is_empty()
    );
    // unbalanced quote in the first word: systemd ignores the line
    let (c, why) = parse_exec("\"/k --a", "k.service").unwrap();
    assert!(c.is_empty() && why.is_some());
    // ... in a later word: the unit fails to load
    assert!(matches!(
        parse_exec("/k \"--a", "k.service"),
        Err(ExecParse::Fatal(_))
    ));
}

#[test]
fn exec_quoting_and_escapes() {
    assert_eq!(
        exec(r#"/k "a b" 'c d' e\ f \x41 "x\ty" a"b c"d '\'' \q"#),
        // `\ ` is no C escape: systemd keeps it verbatim (and warns)
        words(&[
            "/k", "a b", "c d", "e\\ f", "A", "x\ty", "ab cd", "'", "\\q"
        ])
    );
    assert_eq!(exec("/k \\u00e9 \\101"), words(&["/k", "é", "A"]));
    assert!(matches!(
        parse_exec("/k \\xff", "k.service"),
        Err(ExecParse::Unsupported(_))
    ));
}

#[test]
fn env_expansion() {
    let env: HashMap<String, String> = [
        ("A".to_string(), "1  2".to_string()),
        ("Q".to_string(), "--a='b c' \"--d\" e\\ f".to_string()),
        ("E".to_string(), "".to_string()),
    ]
    .into_iter()
    .collect();
    let (out, unset) = expand_argv(
        &words(&[
            "/k", "$A", "${A}", "x${A}y", "$UNSET", "${UNSET}", "$$A", "$Q", "$E", "x$A",
            "${A:-z}", "$", "$A/b",
        ]),
        &env,
    )
    .unwrap();
    assert_eq!(
        out,
        words(&[
            "/k", "1", "2", "1  2", "x1  2y", "", "$A", "--a=b c", "--d", "e f", "x$A", "${A:-z}"
        ])
    );
    assert_eq!(unset, words(&["UNSET", "", "A/b"]));
}

#[test]
fn environment_and_files_order() {
    let (_d, fs) = node(&[
        (
            "/lib/systemd/system/kubelet.service",
            "[Service]\nEnvironmentFile=/etc/k.env\nEnvironment=\"A=from unit\" B=b 'C=c c' bad-name=1 D\nEnvironment=B=b2\nExecStart=/k ${A} ${B} ${C} ${F}\n",
        ),
        ("/etc/k.env", "A=from-file\n"),
        (
            "/etc/systemd/system/kubelet.service.d/x.conf",
            "[Service]\nEnvironmentFile=-/etc/k2.env\nEnvironmentFile=-/etc/none.env\n",
        ),
        ("/etc/k2.env", "F=f\nA=from-k2\n"),
    ]);
    let u = assemble(&fs, "kubelet.service").unwrap();
    // EnvironmentFile= beats Environment= whatever the line order; later files win
    assert_eq!(u.argv, words(&["/k", "from-k2", "b2", "c c", "f"]));
    assert!(u.notes.iter().any(|n| n.contains("bad-name=1")));
    // Environment= empty resets; UnsetEnvironment= applies last
    let (_d, fs) = node(&[(
        "/lib/systemd/system/kubelet.service",
        "[Service]\nEnvironment=A=1 B=2 C=3\nEnvironment=\nEnvironment=B=2 C=3\nUnsetEnvironment=B C=4\nExecStart=/k $A $B $C\n",
    )]);
    assert_eq!(argv(&fs), words(&["/k", "3"]));
    // EnvironmentFile= empty resets the list (the required missing file is dropped)
    let (_d, fs) = node(&[(
        "/lib/systemd/system/kubelet.service",
        "[Service]\nEnvironmentFile=/missing\nEnvironmentFile=\nExecStart=/k\n",
    )]);
    assert_eq!(argv(&fs), words(&["/k"]));
}

#[test]
fn environment_file_glob_and_bad_files() {
    let (d, fs) = node(&[
        (
            "/lib/systemd/system/kubelet.service",
            "[Service]\nEnvironmentFile=/etc/k/*.env\nExecStart=/k $A\n",
        ),
        ("/etc/k/a.env", "A=1\n"),
        ("/etc/k/b.env", "A=2\n"),
    ]);
    assert_eq!(argv(&fs), words(&["/k", "2"]));
    // an optional env file that is a directory or a FIFO: an error, not a guess
    let (_d2, fs2) = node(&[(
        "/lib/systemd/system/kubelet.service",
        "[Service]\nEnvironmentFile=-/etc/k\nExecStart=/k\n",
    )]);
    std::fs::create_dir_all(_d2.path().join("etc/k")).unwrap();
    assert_eq!(
        assemble(&fs2, "kubelet.service").unwrap_err().kind,
        UnitErrorKind::Unreadable
    );
    nix::unistd::mkfifo(
        &d.path().join("etc/k/c.env"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    assert_eq!(
        assemble(&fs, "kubelet.service").unwrap_err().kind,
        UnitErrorKind::Unreadable
    );
}

#[test]
fn syntax_rules() {
    let text = "\u{feff}[Service]\n  # comment\n; comment\nExecStart=/k \\\n# inside a continuation\n\t\t--a \\\n  --b\\\\\nType = simple  \n[Broken\n";
    let e = parse_unit_text(text).unwrap_err();
    assert_eq!(e.0, 9);
    let a = parse_unit_text(&text.replace("[Broken\n", "")).unwrap();
    assert_eq!(a[0].key, "ExecStart");
    assert_eq!(a[0].line, 4);
    assert_eq!(a[0].value, "/k  \t\t--a    --b\\\\");
    assert_eq!(a[1].key, "Type");
    assert_eq!(a[1].value, "simple");
    assert_eq!(exec(&a[0].value), words(&["/k", "--a", "--b\\"]));
    // CRLF line ends, a last line without newline, a continuation at EOF
    let a = parse_unit_text("[Service]\r\nExecStart=/k\r\nEnvironment=A=1 \\").unwrap();
    assert_eq!(a[0].value, "/k");
    assert_eq!(a[1].value, "A=1");
    // A lone CR ends a line, as systemd's read_line() has it (CR LF and LF CR are one end of
    // line, LF CR LF two): what follows a comment's CR is a setting, not part of the comment.
    let a = parse_unit_text("[Service]\n#\rExecStart=/k --a\n\rType=simple\n\r\nX=1").unwrap();
    assert_eq!(
        a.iter()
            .map(|a| (a.key.as_str(), a.line))
            .collect::<Vec<_>>(),
        [("ExecStart", 3), ("Type", 4), ("X", 6)]
    );
    // no '=' or empty key: ignored
    assert_eq!(parse_unit_text("[Service]\nfoo\n=bar\n").unwrap(), vec![]);
}

#[test]
fn carriage_return_ends_a_line_in_a_dropin() {
    // An editor shows one comment line; systemd reads a reset and a new ExecStart=.
    let (_d, fs) = node(&[
        ("/lib/systemd/system/kubelet.service", BASE),
        (
            "/etc/systemd/system/kubelet.service.d/10-x.conf",
            "[Service]\n# note\rExecStart=\rExecStart=/usr/bin/kubelet --make-iptables-util-chains=false\n",
        ),
    ]);
    assert_eq!(
        argv(&fs),
        words(&["/usr/bin/kubelet", "--make-iptables-util-chains=false"])
    );
}

#[test]
fn specifiers() {
    assert_eq!(
        exec("/k 100%% %n %N %p %i x%Iy %t %S"),
        words(&[
            "/k",
            "100%",
            "kubelet.service",
            "kubelet",
            "kubelet",
            "",
            "xy",
            "/run",
            "/var/lib"
        ])
    );
    assert!(matches!(
        parse_exec("/k %H", "kubelet.service"),
        Err(ExecParse::Unsupported(_))
    ));
    let (_d, fs) = node(&[(
        "/lib/systemd/system/kubelet.service",
        "[Service]\nExecStart=/k --hostname-override=%H\n",
    )]);
    assert_eq!(
        assemble(&fs, "kubelet.service").unwrap_err().kind,
        UnitErrorKind::Unsupported
    );
}

#[test]
fn working_and_root_directory() {
    let (_d, fs) = node(&[(
        "/lib/systemd/system/kubelet.service",
        "[Service]\nWorkingDirectory=-/var/lib/kubelet\nRootDirectory=/srv/k\nExecStart=/k\n",
    )]);
    let u = assemble(&fs, "kubelet.service").unwrap();
    assert_eq!(u.working_directory, Some(PathBuf::from("/var/lib/kubelet")));
    assert_eq!(u.root_directory, Some(PathBuf::from("/srv/k")));
}

proptest::proptest! {
    #[test]
    fn random_unit_text_never_panics(s in "(?s).{0,300}") {
        let _ = parse_unit_text(&s);
        let _ = parse_exec(&s, "kubelet.service");
        let env: HashMap<String, String> = [("A".to_string(), s.clone())].into_iter().collect();
        let _ = expand_argv(&[s.clone(), "$A".into(), "${A}".into()], &env);
    }
    #[test]
    fn unitish_text_never_panics(s in "[\\[\\]A-Za-z=$%{}\"' \\\\;\n\t#@:!+-]{0,200}") {
        if let Ok(a) = parse_unit_text(&s) {
            for a in a {
                let _ = parse_exec(&a.value, "kubelet.service");
            }
        }
        let (_d, fs) = node(&[("/lib/systemd/system/kubelet.service", &s)]);
        let _ = assemble(&fs, "kubelet.service");
    }
}
