//! Tables for every construct the issue lists (each checked against go-yaml v2 v2.4.0 and
//! sigs.k8s.io/yaml v1.3.0), properties of the reader, and an opt-in differential run
//! against a reference built from those libraries (`KUBELET_DRIFT_YAML_REF`, see
//! [`differential_against_reference`]).

use super::*;

const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

/// The top-level `makeIPTablesUtilChains` of a buffer after the kubelet's reading (the
/// last in JSON text order), or the error.
fn field(text: &str) -> Result<Option<Value>, ReadError> {
    let doc = read(text)?;
    Ok(doc
        .root
        .iter()
        .rev()
        .find(|e| e.key == "makeIPTablesUtilChains")
        .map(|e| e.value.clone()))
}

#[derive(Debug)]
enum Want {
    Val(Option<Value>),
    /// The kubelet fails (go-yaml, sigs.k8s.io/yaml or JSON error).
    Invalid,
    /// Outside the allowlist.
    Refused,
}

fn check(cases: &[(&str, Want)]) {
    for (body, want) in cases {
        let text = format!("{HEAD}{body}");
        let got = field(&text);
        match (want, &got) {
            (Want::Val(v), Ok(g)) => assert_eq!(v, g, "{body:?}"),
            (Want::Invalid, Err(e)) if !e.refused => {}
            (Want::Refused, Err(e)) if e.refused => {}
            _ => panic!("{body:?}: want {want:?}, got {got:?}"),
        }
    }
}

use Want::*;
const F: Want = Val(Some(Value::Bool(false)));
const T: Want = Val(Some(Value::Bool(true)));
const NULL: Want = Val(Some(Value::Null));

#[test]
fn scalars_and_tags() {
    let s = |x: &str| Val(Some(Value::Str(x.into())));
    check(&[
        ("makeIPTablesUtilChains: false\n", F),
        ("makeIPTablesUtilChains: off # c\n", F),
        ("makeIPTablesUtilChains: n\n", F),
        ("makeIPTablesUtilChains: Yes\n", T),
        ("makeIPTablesUtilChains: ~\n", NULL),
        ("makeIPTablesUtilChains:\n", NULL),
        ("makeIPTablesUtilChains: \"false\"\n", s("false")),
        // go-yaml v2's prepare() looks at "null" and "~" before the style, but decoder.scalar
        // still makes a quoted one a string.
        ("makeIPTablesUtilChains: \"null\"\n", s("null")),
        ("makeIPTablesUtilChains: '~'\n", s("~")),
        ("makeIPTablesUtilChains: !!bool off\n", F),
        ("makeIPTablesUtilChains: !!bool \"no\"\n", F),
        (
            "makeIPTablesUtilChains: !<tag:yaml.org,2002:bool> false\n",
            F,
        ),
        ("makeIPTablesUtilChains: !!bool 0\n", Invalid),
        ("makeIPTablesUtilChains: !!null false\n", Invalid),
        ("makeIPTablesUtilChains: !!null ~\n", NULL),
        ("makeIPTablesUtilChains: ! true\n", s("true")),
        ("makeIPTablesUtilChains: !!str false\n", s("false")),
        ("makeIPTablesUtilChains: !!binary ZmFsc2U=\n", Refused),
        ("makeIPTablesUtilChains: !!int 0\n", Refused),
        ("makeIPTablesUtilChains: !foo false\n", Refused),
        ("makeIPTablesUtilChains: !!b%6Fol false\n", Refused),
        ("makeIPTablesUtilChains: .inf\n", Invalid),
        ("a: -.INF\nmakeIPTablesUtilChains: true\n", Invalid),
        ("makeIPTablesUtilChains: |\n  false\n", Refused),
        ("makeIPTablesUtilChains: >-\n  false\n", Refused),
        ("makeIPTablesUtilChains: 'fal\n  se'\n", Refused),
        ("makeIPTablesUtilChains: fal\n  se\n", Refused),
        ("makeIPTablesUtilChains: \"\\x66alse\"\n", s("false")),
        ("makeIPTablesUtilChains: \"\\/\"\n", Invalid),
    ]);
}

#[test]
fn line_breaks_bom_comments_and_tabs() {
    check(&[
        // YAML 1.1 line breaks end a comment in go-yaml: refused anywhere.
        (
            "makeIPTablesUtilChains: true # ok\u{2028}makeIPTablesUtilChains: false\n",
            Refused,
        ),
        (
            "makeIPTablesUtilChains: true # ok\u{2029}makeIPTablesUtilChains: false\n",
            Refused,
        ),
        (
            "makeIPTablesUtilChains: true # ok\u{85}makeIPTablesUtilChains: false\n",
            Refused,
        ),
        (
            "makeIPTablesUtilChains: true\rmakeIPTablesUtilChains: false\n",
            Refused,
        ),
        ("makeIPTablesUtilChains: true\r\n# c\r\n", T),
        ("makeIPTablesUtilChains: true\t\n", T),
        ("makeIPTablesUtilChains: true\t# c\n", T),
        ("makeIPTablesUtilChains:\ttrue\n", Refused),
        ("a:\n\tb: 1\nmakeIPTablesUtilChains: true\n", Refused),
        ("makeIPTablesUtilChains: true\n\t\n", Refused),
        ("makeIPTablesUtilChains: true #\tc\n", T),
        (
            "makeIPTablesUtilChains: tr#ue\n",
            Val(Some(Value::Str("tr#ue".into()))),
        ),
        ("makeIPTablesUtilChains: true\n  # c\n", T),
        ("makeIPTablesUtilChains: true\u{feff}\n", Refused),
        ("makeIPTablesUtilChains: true\u{1}\n", Refused),
    ]);
    // A leading byte-order mark is skipped by go-yaml (and makes the buffer YAML, not JSON).
    let bom = format!("\u{feff}makeIPTablesUtilChains: false\n{HEAD}");
    assert_eq!(field(&bom), Ok(Some(Value::Bool(false))));
    let bom_json = "\u{feff}{\"makeIPTablesUtilChains\": false}";
    assert_eq!(field(bom_json), Ok(Some(Value::Bool(false))));
    assert_eq!(read(bom_json).unwrap().format, Format::Yaml);
}

#[test]
fn documents_and_directives() {
    let f = |t: &str| field(t);
    assert_eq!(
        f(&format!(
            "---\n{HEAD}makeIPTablesUtilChains: false\n---\nmakeIPTablesUtilChains: true\n"
        )),
        Ok(Some(Value::Bool(false)))
    );
    assert_eq!(
        f(&format!(
            "# c\n--- # c\n{HEAD}makeIPTablesUtilChains: false\n...\n: junk [\n"
        )),
        Ok(Some(Value::Bool(false)))
    );
    assert!(f(&format!("%YAML 1.1\n---\n{HEAD}")).unwrap_err().refused);
    assert!(
        f(&format!("%TAG !e! tag:yaml.org,2002:\n---\n{HEAD}"))
            .unwrap_err()
            .refused
    );
    assert!(f(&format!("--- {HEAD}")).unwrap_err().refused);
    assert!(!f("").unwrap_err().refused);
    assert!(!f("# c\n---\n").unwrap_err().refused);
    assert!(!f("- a\n").unwrap_err().refused);
    assert!(f(&format!("  {HEAD}")).unwrap_err().refused);
}

#[test]
fn anchors_aliases_and_merges() {
    check(&[
        ("a: &x false\nmakeIPTablesUtilChains: *x\n", F),
        ("<<: {makeIPTablesUtilChains: false}\n", F),
        ("base: &b {makeIPTablesUtilChains: false}\n<<: *b\n", F),
        ("base: &b\n  makeIPTablesUtilChains: false\n<<: *b\n", F),
        ("<<:\n  makeIPTablesUtilChains: false\n", F),
        (
            "a: &a {makeIPTablesUtilChains: false}\nb: &b {makeIPTablesUtilChains: true}\n<<: [*a, *b]\n",
            F,
        ),
        (
            "<<:\n- {makeIPTablesUtilChains: true}\n- {makeIPTablesUtilChains: false}\n",
            T,
        ),
        // go-yaml v2 sets merged keys into the same map at the `<<`: an explicit key after
        // it wins, one before it is replaced.
        (
            "<<: {makeIPTablesUtilChains: false}\nmakeIPTablesUtilChains: true\n",
            T,
        ),
        (
            "makeIPTablesUtilChains: true\n<<: {makeIPTablesUtilChains: false}\n",
            F,
        ),
        ("'<<': {makeIPTablesUtilChains: false}\n", Val(None)),
        ("<<: false\n", Invalid),
        ("a: &a [1]\n<<: *a\n", Invalid),
        ("<<: [{a: 1}, false]\n", Invalid),
        ("makeIPTablesUtilChains: *nope\n", Invalid),
        ("a: &a [1, *a]\n", Invalid),
        ("a: &a\n  b: *a\n", Invalid),
        ("a: &a 1\na: &a [*a]\n", Invalid),
        ("? makeIPTablesUtilChains\n: false\n", Refused),
        (
            "? !!binary bWFrZUlQVGFibGVzVXRpbENoYWlucw==\n: false\n",
            Refused,
        ),
        (
            "!!binary bWFrZUlQVGFibGVzVXRpbENoYWlucw==: false\n",
            Refused,
        ),
        ("&k makeIPTablesUtilChains: false\n", Refused),
        ("[a]: false\n", Refused),
        ("yes: 1\n", Refused),
        ("1: 1\n", Refused),
    ]);
    // A sequence-alias bomb: refused long before go-yaml's "excessive aliasing".
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (i, prev) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
        let name = ["b", "c", "d", "e", "f", "g"][i];
        bomb.push_str(&format!(
            "{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    let e = field(&format!("{HEAD}{bomb}")).unwrap_err();
    assert!(e.refused && e.reason.contains("aliases"), "{e:?}");
}

#[test]
fn keys_duplicates_and_flow() {
    check(&[
        ("\"makeIPTablesUtilChains\": false\n", F),
        ("'makeIPTablesUtilChains' : false\n", F),
        ("\"make\\x49PTablesUtilChains\": false\n", F),
        ("\"make\\u0049PTablesUtilChains\": false\n", F),
        (
            "makeIPTablesUtilChains: false\nmakeIPTablesUtilChains: true\n",
            T,
        ),
        (
            "makeIPTablesUtilChains: true\nmakeIPTablesUtilChains: false\n",
            F,
        ),
        (
            "makeIPTablesUtilChains: [false]\n",
            Val(Some(Value::Seq(vec![Value::Bool(false)]))),
        ),
        (
            "a: {b: [1, {c: d}], e: 'f'}\nmakeIPTablesUtilChains: true\n",
            T,
        ),
        ("a: [1,2]\n", Val(None)),
        ("a: {b:c}\n", Refused),
        ("a: [1, 2,]\n", Refused),
        ("a: [1,\n  2]\n", Refused),
        ("a: b: c\n", Refused),
        ("a: - b\n", Refused),
        ("a:\n- b\n- c\nmakeIPTablesUtilChains: false\n", F),
        (
            "a:\n  - b: 1\n    c: 2\n  - - d\nmakeIPTablesUtilChains: false\n",
            F,
        ),
        ("a:\n  b: 1\n c: 2\n", Refused),
    ]);
    let doc = read(&format!("{HEAD}a:\n  x: 1\n  x: 2\n")).unwrap();
    assert_eq!(doc.strict_errors.len(), 1, "{doc:?}");
    let doc = read(&format!("{HEAD}<<: {{a: 1}}\na: 2\n")).unwrap();
    assert_eq!(doc.strict_errors.len(), 1, "{doc:?}");
}

#[test]
fn json_buffers() {
    let j = |s: &str| field(s);
    assert_eq!(
        j("{\"makeIPTablesUtilChains\": false, \"makeIPTablesUtilChains\": true}"),
        Ok(Some(Value::Bool(true)))
    );
    assert_eq!(
        j(" \n\t{\"make\\u0049PTablesUtilChains\": false}"),
        Ok(Some(Value::Bool(false)))
    );
    // Strict JSON: YAML syntax is the kubelet's error.
    let e =
        j("{apiVersion: kubelet.config.k8s.io/v1beta1, makeIPTablesUtilChains: true}").unwrap_err();
    assert!(!e.refused && e.reason.contains("JSON"), "{e:?}");
    assert!(!j("{\"a\": 1}\n{}").unwrap_err().refused);
    assert!(!j("\u{2028}{\"a\": 1}").unwrap_err().refused);
    assert!(!j("{\"a\": 01}").unwrap_err().refused);
    assert!(!j("{\"a\": True}").unwrap_err().refused);
    let doc = read("{\"a\": {\"b\": 1, \"b\": 2},\n \"c\": 1}").unwrap();
    assert_eq!(doc.strict_errors.len(), 1);
    assert_eq!(doc.root[1].line, 2);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Whether every line of `text` is in the allowlist's character set: a pass can only
    /// come from text the preliminary checks accepted.
    fn chars_ok(text: &str) -> bool {
        let t = text.strip_prefix('\u{feff}').unwrap_or(text);
        !t.chars().any(|c| {
            matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
                || (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        }) && !t.replace("\r\n", "\n").contains('\r')
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = read(&s);
        }

        #[test]
        fn yamlish(s in "(makeIPTablesUtilChains|apiVersion|<<|&a|\\*a|!!bool|!!str|! |[:\\-\\[\\]{},'\"!~ \t\n\r#?|>%]|\u{2028}|\u{85}|\u{feff}|off|no|1){0,60}") {
            let text = format!("{HEAD}{s}");
            if let Ok(doc) = read(&text) {
                prop_assert!(chars_ok(&text) || doc.format == Format::Json);
                prop_assert_eq!(excluded_character(&text), None);
                // The JSON the kubelet decodes reads back to the same top-level values.
                let again = read(&to_json(&doc)).unwrap();
                prop_assert_eq!(again.root.len(), {
                    let mut k: Vec<&String> = doc.root.iter().map(|e| &e.key).collect();
                    k.dedup();
                    k.len()
                });
                // Keys are unique and sorted in YAML, as json.Marshal writes them.
                let keys: Vec<&String> = doc.root.iter().map(|e| &e.key).collect();
                let mut sorted = keys.clone();
                sorted.sort();
                sorted.dedup();
                prop_assert_eq!(keys, sorted);
            }
        }
    }
}

/// Runs generated cases against a reference program built from go-yaml v2,
/// sigs.k8s.io/yaml and sigs.k8s.io/json (set `KUBELET_DRIFT_YAML_REF` to it: it takes file
/// paths and prints, for each, `ERR ...` or `OK <format> <json>` then `STRICT ok|<error>`,
/// then a NUL line). Disagreements other than a refusal fail the test.
#[test]
#[ignore = "needs KUBELET_DRIFT_YAML_REF, a reference built from the Go libraries"]
fn differential_against_reference() {
    let Ok(reference) = std::env::var("KUBELET_DRIFT_YAML_REF") else {
        panic!("set KUBELET_DRIFT_YAML_REF");
    };
    let n: usize = std::env::var("KUBELET_DRIFT_YAML_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("KUBELET_DRIFT_YAML_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = generate::Rng(seed.wrapping_mul(2).wrapping_add(1));
    let cases: Vec<String> = (0..n).map(|_| generate::document(&mut rng)).collect();
    let paths: Vec<std::path::PathBuf> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let p = dir.path().join(format!("{i}.yaml"));
            std::fs::write(&p, c).unwrap();
            p
        })
        .collect();
    let out = std::process::Command::new(&reference)
        .args(&paths)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    let answers: Vec<&str> = out.split("\n\0\n").collect();
    let (mut agree, mut refused, mut bad) = (0, 0, Vec::new());
    for (case, answer) in cases.iter().zip(&answers) {
        match generate::compare(case, answer) {
            generate::Verdict::Agree => agree += 1,
            generate::Verdict::Refused => refused += 1,
            generate::Verdict::Disagree(why) => {
                bad.push(format!("{case:?}\n  reference: {answer}\n  {why}"))
            }
        }
    }
    eprintln!(
        "seed {seed}: {agree} agree, {refused} refused, {} disagree",
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "seed {seed}: {} disagreements, first:\n{}",
        bad.len(),
        bad[..bad.len().min(5)].join("\n")
    );
}

mod generate {
    use super::*;

    pub struct Rng(pub u64);
    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[(self.next() % xs.len() as u64) as usize]
        }
        pub fn chance(&mut self, pct: u64) -> bool {
            self.next() % 100 < pct
        }
    }

    const KEYS: &[&str] = &[
        "makeIPTablesUtilChains",
        "makeIPTablesUtilChains",
        "makeIPTablesUtilChains",
        "MakeIPTablesUtilChains",
        "\"makeIPTablesUtilChains\"",
        "'makeIPTablesUtilChains'",
        "\"make\\x49PTablesUtilChains\"",
        "a",
        "b",
        "<<",
        "'<<'",
        "yes",
        "1",
        "!!str a",
        "&k a",
        "? a",
        "a b",
        "a#b",
        "-a",
        ":a",
        "a:b",
    ];
    const VALUES: &[&str] = &[
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "y",
        "N",
        "~",
        "null",
        "Null",
        "",
        "'false'",
        "\"true\"",
        "\"null\"",
        "'~'",
        "!!bool false",
        "!!bool yes",
        "!!bool \"off\"",
        "!!bool 1",
        "!!null false",
        "!!null ~",
        "!!null",
        "! true",
        "!!str false",
        "!!binary ZmFsc2U=",
        "!<tag:yaml.org,2002:bool> false",
        "!foo x",
        "0",
        "1.5",
        ".inf",
        "-.Inf",
        ".nan",
        "0x1F",
        "1_000",
        "2001-12-14",
        "+1",
        "-",
        "[1, 2]",
        "[false]",
        "[]",
        "{}",
        "{a: b}",
        "{a: [1, {b: c}]}",
        "{a:b}",
        "[a,b]",
        "[a, ]",
        "*a",
        "*b",
        "&a false",
        "&a {makeIPTablesUtilChains: false}",
        "&b [1, 2]",
        "false # c",
        "false #c",
        "false#c",
        "false\t",
        "false\t# c",
        "\ttrue",
        "tr ue",
        "'it''s'",
        "\"a\\tb\"",
        "\"\\/\"",
        "|",
        "|\n  false",
        ">-\n  x",
        "- a",
        "a: b",
        "? x",
        "@x",
        "%x",
        "`x",
        "<<",
        "\"a\" # c",
        "\"a\"#c",
        "'a'x",
        "[1]x",
        "{a: 1} # c",
        "http://x:80/y",
        "a:",
        ":x",
    ];
    const COMMENTS: &[&str] = &[
        "",
        "",
        "",
        " # c",
        " #\u{2028}makeIPTablesUtilChains: false",
        " # \u{85}x: 1",
        " # \u{2029}",
        "\t# t",
    ];

    fn entry(rng: &mut Rng, out: &mut String, indent: &str, depth: usize) {
        let key = rng.pick(KEYS);
        match rng.next() % 10 {
            0 if depth < 2 => {
                out.push_str(&format!("{indent}{key}:{}\n", rng.pick(COMMENTS)));
                let sub = format!("{indent}{}", rng.pick(&["  ", " ", "    ", "\t"]));
                for _ in 0..1 + rng.next() % 3 {
                    entry(rng, out, &sub, depth + 1);
                }
            }
            1 if depth < 2 => {
                out.push_str(&format!("{indent}{key}:\n"));
                let sub = format!("{indent}{}", rng.pick(&["", "  ", "  "]));
                for _ in 0..1 + rng.next() % 3 {
                    let v = rng.pick(VALUES);
                    out.push_str(&format!("{sub}- {v}\n"));
                }
            }
            _ => {
                let v = rng.pick(VALUES);
                let sep = rng.pick(&[": ", ": ", ": ", ":  ", " : ", ":\t", ":"]);
                out.push_str(&format!("{indent}{key}{sep}{v}{}\n", rng.pick(COMMENTS)));
            }
        }
    }

    fn json(rng: &mut Rng) -> String {
        let mut s = String::from(rng.pick(&["", " ", "\n", "\t", "\u{2028}", "\u{b}"]));
        s.push_str("{\"apiVersion\": \"kubelet.config.k8s.io/v1beta1\", \"kind\": \"KubeletConfiguration\"");
        for _ in 0..rng.next() % 4 {
            let k = rng.pick(&[
                "\"makeIPTablesUtilChains\"",
                "\"make\\u0049PTablesUtilChains\"",
                "\"MakeIPTablesUtilChains\"",
                "makeIPTablesUtilChains",
                "\"a\"",
            ]);
            let v = rng.pick(&[
                "true",
                "false",
                "null",
                "\"false\"",
                "0",
                "[false]",
                "{\"a\": 1, \"a\": 2}",
                "True",
                "1e400",
            ]);
            s.push_str(&format!(", {k}: {v}"));
        }
        s.push_str(rng.pick(&["}", "}\n", "} x", "}}"]));
        s
    }

    pub fn document(rng: &mut Rng) -> String {
        if rng.chance(10) {
            return json(rng);
        }
        let mut s = String::new();
        if rng.chance(5) {
            s.push('\u{feff}');
        }
        s.push_str(rng.pick(&[
            "",
            "",
            "---\n",
            "# c\n",
            "%YAML 1.1\n---\n",
            "--- # x\n",
            "...\n",
        ]));
        if rng.chance(90) {
            s.push_str(HEAD);
        }
        if rng.chance(30) {
            s.push_str(
                "a: &a {makeIPTablesUtilChains: false}\nb: &b\n  makeIPTablesUtilChains: true\n",
            );
        }
        for _ in 0..1 + rng.next() % 5 {
            entry(rng, &mut s, "", 0);
        }
        s.push_str(rng.pick(&[
            "",
            "",
            "---\nmakeIPTablesUtilChains: false\n",
            "...\n",
            "# end",
        ]));
        if rng.chance(10) {
            s = s.replace('\n', "\r\n");
        }
        s
    }

    pub enum Verdict {
        Agree,
        Refused,
        Disagree(String),
    }

    fn same(mine: &Value, go: &serde_json::Value) -> bool {
        use serde_json::Value as J;
        match (mine, go) {
            (Value::Null, J::Null) => true,
            (Value::Bool(a), J::Bool(b)) => a == b,
            (Value::Str(a), J::String(b)) => a == b,
            (Value::Scalar(a), J::String(b)) => a == b,
            (Value::Scalar(_) | Value::Num(_), J::Number(_)) => true,
            (Value::Seq(a), J::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
            }
            (Value::Map(a), J::Object(b)) => same_map(a, b),
            _ => false,
        }
    }

    fn same_map(a: &[Entry], b: &serde_json::Map<String, serde_json::Value>) -> bool {
        // Last wins (JSON duplicates).
        let mut last: Vec<&Entry> = Vec::new();
        for e in a {
            last.retain(|x| x.key != e.key);
            last.push(e);
        }
        last.len() == b.len()
            && last
                .iter()
                .all(|e| b.get(&e.key).is_some_and(|v| same(&e.value, v)))
    }

    pub fn compare(case: &str, answer: &str) -> Verdict {
        let mine = read(case);
        let answer = answer.trim_start_matches('\n');
        // A document that is not an object is the kubelet's error too.
        let go_ok = answer
            .strip_prefix("OK ")
            .filter(|r| r.split_once(' ').is_some_and(|(_, j)| j.starts_with('{')));
        match (&mine, go_ok) {
            (Err(e), _) if e.refused => Verdict::Refused,
            (Err(_), None) => Verdict::Agree,
            (Err(e), Some(_)) => Verdict::Disagree(format!("mine: error {e:?}")),
            (Ok(_), None) => Verdict::Disagree("mine: accepted".into()),
            (Ok(doc), Some(rest)) => {
                let (first, strict) = rest.split_once("\nSTRICT ").unwrap_or((rest, ""));
                let (_, js) = first.split_once(' ').unwrap_or(("", first));
                let Ok(go) = serde_json::from_str::<serde_json::Value>(js) else {
                    return Verdict::Disagree(format!("reference JSON {js:?}"));
                };
                let go_strict_ok = strict.trim() == "ok";
                if !same(&Value::Map(doc.root.clone()), &go) {
                    Verdict::Disagree(format!("mine: {:?}", doc.root))
                } else if go_strict_ok != doc.strict_errors.is_empty() {
                    Verdict::Disagree(format!("strict: mine {:?}", doc.strict_errors))
                } else {
                    Verdict::Agree
                }
            }
        }
    }
}
