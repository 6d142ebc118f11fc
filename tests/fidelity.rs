//! Differential harness: kubelet-drift's evaluator against the kubelet's own libraries.
//!
//! `tests/kubelet-ref` (Go: spf13/pflag, sigs.k8s.io/yaml on go-yaml v2, sigs.k8s.io/json,
//! evanphx/json-patch, as `cmd/kubelet/app` uses them) decides each generated case as the
//! kubelet would; the evaluator (library API, on a temporary root) decides it too. A
//! disagreement is one of:
//! - FALSE PASS: we say pass, the kubelet runs with false or does not start;
//! - WRONG: we say fail where the kubelet runs with true or does not start;
//! - CAUTIOUS ERROR: we say error where the kubelet decides (counted, listed by construct).
//!
//! The test fails on any false pass or wrong verdict, printing the seed, the counts by
//! construct and the smallest (shrunk) failing cases.
//!
//! Environment: `FIDELITY_SEED` (replay a run), `FIDELITY_CASES` (default 5000),
//! `FIDELITY_CASE` (replay one case of the seed and print it), `FIDELITY_EXAMPLES` (how many
//! shrunk examples to print, default 8), `FIDELITY_DUMP` (write every disagreement there as
//! JSON lines), `FIDELITY_SHOW_CAUTIOUS` (shrunk cautious errors too), `KUBELET_REF` (a built reference; otherwise it is
//! built here with Go). `cargo xtask fidelity --cases N` runs a larger sweep.

#[path = "fidelity/gen.rs"]
mod generator;
#[path = "fidelity/reference.rs"]
mod reference;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use generator::Case;
use kubelet_drift::{
    finding::Status,
    kubelet::{
        evaluate::{EvalInput, evaluate},
        rootfs::RootFs,
    },
};
use reference::{Reference, Verdict};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Agree,
    FalsePass,
    Wrong,
    CautiousError,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Agree => "agree",
            Kind::FalsePass => "FALSE PASS",
            Kind::Wrong => "WRONG",
            Kind::CautiousError => "cautious error",
        }
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Error => "error",
    }
}

fn classify(ours: Status, theirs: &str) -> Kind {
    match (status_word(ours), ours) {
        (o, _) if o == theirs => Kind::Agree,
        (_, Status::Pass) => Kind::FalsePass,
        (_, Status::Error) => Kind::CautiousError,
        (_, Status::Fail) => Kind::Wrong,
    }
}

fn materialize(root: &Path, case: &Case) {
    fs::create_dir_all(root).unwrap();
    for (p, bytes) in &case.files {
        let host = root.join(p.trim_start_matches('/'));
        fs::create_dir_all(host.parent().unwrap()).unwrap();
        fs::write(host, bytes).unwrap();
    }
}

fn ours(root: &Path, args: &[String]) -> (Status, String) {
    let argv: Vec<String> = std::iter::once("kubelet".to_string())
        .chain(args.iter().cloned())
        .collect();
    let fs = RootFs::new(root);
    let env = HashMap::new();
    let ev = evaluate(&EvalInput {
        fs: &fs,
        argv: &argv,
        cwd: Path::new("/"),
        env: &env,
    });
    (ev.status, ev.reason)
}

struct Checked {
    index: usize,
    seed: u64,
    case: Case,
    ours: (Status, String),
    theirs: Verdict,
    kind: Kind,
}

struct Harness {
    reference: Reference,
    corpus: generator::Corpus,
    dir: tempfile::TempDir,
    scratch: usize,
}

/// `shared/corpus` beside the repository (KUBELET_DRIFT_CORPUS overrides, for a worktree).
fn corpus_dir() -> PathBuf {
    let corpus = std::env::var_os("KUBELET_DRIFT_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    assert!(
        corpus.join("SOURCES.md").exists(),
        "the test corpus is missing: expected shared/corpus beside the repository, at {}",
        corpus.display()
    );
    corpus
}

/// The configuration files real tools wrote, as bases for realistic cases.
fn load_corpus() -> generator::Corpus {
    let dir = corpus_dir();
    let read = |names: &[&str]| -> Vec<Vec<u8>> {
        names
            .iter()
            .map(|n| fs::read(dir.join(n)).unwrap_or_else(|e| panic!("corpus {n}: {e}")))
            .collect()
    };
    generator::Corpus {
        yaml: read(&[
            "kubeadm-generated/joneconsulting-config.yaml",
            "rke2/00-rke2-defaults.conf",
            "kics/negative2-config-true.yaml",
            "kics/negative3-config-absent.yaml",
            "kics/positive2-config-false.yaml",
        ]),
        json: read(&[
            "amazon-eks-ami/al2-kubelet-config.json",
            "amazon-eks-ami/nodeadm-expected-kubelet-config.json",
            "amazon-eks-ami/nodeadm-expected-kubelet-config-drop-in.json",
            "kics/positive3-config-false.json",
        ]),
    }
}

/// Case roots go to memory when the machine has a tmpfs at /dev/shm: thousands of small
/// files per run, written and removed, should not wait on a busy disk.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new().prefix("fidelity").tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().unwrap()
}

impl Harness {
    fn new() -> Harness {
        Harness {
            reference: Reference::start(),
            corpus: load_corpus(),
            dir: scratch_dir(),
            scratch: 0,
        }
    }

    /// Decides the cases `range` of `seed`, in chunks (each chunk's files are removed after).
    fn run(&mut self, seed: u64, range: std::ops::Range<usize>) -> Vec<Checked> {
        let mut out = Vec::new();
        let indexes: Vec<usize> = range.collect();
        for chunk in indexes.chunks(2000) {
            let chunk_dir = self.dir.path().join("chunk");
            let mut pending = Vec::new();
            for &i in chunk {
                let cs = generator::case_seed(seed, i);
                let case = generator::case(cs, &self.corpus);
                let root = chunk_dir.join(i.to_string());
                materialize(&root, &case);
                let o = ours(&root, &case.args);
                pending.push((i, cs, case, o, root));
            }
            let reqs: Vec<(PathBuf, Vec<String>)> = pending
                .iter()
                .map(|(_, _, c, _, r)| (r.clone(), c.args.clone()))
                .collect();
            let verdicts = self.reference.decide_all(&reqs);
            for ((index, seed, case, ours, _), theirs) in pending.into_iter().zip(verdicts) {
                let kind = classify(ours.0, &theirs.status);
                out.push(Checked {
                    index,
                    seed,
                    case,
                    ours,
                    theirs,
                    kind,
                });
            }
            fs::remove_dir_all(&chunk_dir).unwrap();
        }
        out
    }

    fn check_one(&mut self, case: &Case) -> ((Status, String), Verdict) {
        self.scratch += 1;
        let root = self.dir.path().join(format!("shrink-{}", self.scratch));
        materialize(&root, case);
        let o = ours(&root, &case.args);
        let t = self.reference.decide(&root, &case.args);
        let _ = fs::remove_dir_all(&root);
        (o, t)
    }

    /// Greedy shrinking: drop files, arguments and lines while the disagreement stays the same.
    fn shrink(&mut self, case: &Case, want: Kind) -> Case {
        let mut best = case.clone();
        let mut budget = 600;
        'outer: loop {
            for cand in candidates(&best) {
                if budget == 0 {
                    break 'outer;
                }
                budget -= 1;
                let (o, t) = self.check_one(&cand);
                if classify(o.0, &t.status) == want {
                    best = cand;
                    continue 'outer;
                }
            }
            break;
        }
        best
    }
}

fn candidates(c: &Case) -> Vec<Case> {
    let mut out = Vec::new();
    for i in 0..c.files.len() {
        let mut d = c.clone();
        d.files.remove(i);
        out.push(d);
    }
    for i in 0..c.args.len() {
        let mut d = c.clone();
        d.args.remove(i);
        out.push(d);
        if i + 1 < c.args.len() {
            let mut d = c.clone();
            d.args.drain(i..i + 2);
            out.push(d);
        }
    }
    for (fi, (_, bytes)) in c.files.iter().enumerate() {
        let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        if lines.len() < 2 {
            continue;
        }
        for li in 0..lines.len() {
            let mut d = c.clone();
            let kept: Vec<&[u8]> = lines
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != li)
                .map(|(_, l)| *l)
                .collect();
            d.files[fi].1 = kept.join(&b'\n');
            out.push(d);
        }
    }
    out
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

fn show_case(c: &Checked, shrunk: Option<&Case>) -> String {
    let mut s = String::new();
    let case = shrunk.unwrap_or(&c.case);
    let _ = writeln!(
        s,
        "  {} — case {} (replay: FIDELITY_SEED={:#x} FIDELITY_CASE={})",
        c.kind.label(),
        c.index,
        SEED.get().copied().unwrap_or_default(),
        c.index
    );
    let _ = writeln!(s, "    args: {:?}", case.args);
    for (p, b) in &case.files {
        let _ = writeln!(s, "    {p}: {:?}", String::from_utf8_lossy(b));
    }
    let _ = writeln!(s, "    ours:    {} — {}", status_word(c.ours.0), c.ours.1);
    let _ = writeln!(
        s,
        "    kubelet: {} — {}",
        c.theirs.status,
        if c.theirs.reason.is_empty() {
            "(runs with that value)"
        } else {
            &c.theirs.reason
        }
    );
    let tags: Vec<&str> = c.case.tags.iter().copied().collect();
    let _ = writeln!(s, "    constructs: {}", tags.join(", "));
    s
}

static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Counts by construct: for each tag, how many cases of each kind carry it.
fn by_construct(results: &[Checked]) -> BTreeMap<&'static str, BTreeMap<Kind, usize>> {
    let mut m: BTreeMap<&'static str, BTreeMap<Kind, usize>> = BTreeMap::new();
    for r in results {
        for t in &r.case.tags {
            *m.entry(t).or_default().entry(r.kind).or_default() += 1;
        }
        if r.case.tags.is_empty() {
            *m.entry("(plain)").or_default().entry(r.kind).or_default() += 1;
        }
    }
    m
}

fn report(results: &[Checked], seed: u64, elapsed: f64) -> String {
    let n = results.len();
    let count = |k: Kind| results.iter().filter(|r| r.kind == k).count();
    let agree = count(Kind::Agree);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "fidelity: seed {seed:#x}, {n} cases in {elapsed:.1} s: agreement {agree}/{n} ({:.2}%), \
         false passes {}, wrong {}, cautious errors {}",
        100.0 * agree as f64 / n.max(1) as f64,
        count(Kind::FalsePass),
        count(Kind::Wrong),
        count(Kind::CautiousError)
    );
    let real: Vec<&Checked> = results
        .iter()
        .filter(|r| r.case.tags.iter().any(|t| t.starts_with("real:")))
        .collect();
    let real_agree = real.iter().filter(|r| r.kind == Kind::Agree).count();
    let _ = writeln!(
        s,
        "  real tools' files (shared/corpus, edited as a person would): {real_agree}/{} agree",
        real.len()
    );
    let table = by_construct(results);
    let mut rows: Vec<_> = table
        .iter()
        .filter(|(_, k)| k.keys().any(|k| *k != Kind::Agree))
        .collect();
    rows.sort_by_key(|(t, k)| {
        (
            std::cmp::Reverse(k.get(&Kind::FalsePass).copied().unwrap_or(0)),
            std::cmp::Reverse(k.get(&Kind::Wrong).copied().unwrap_or(0)),
            std::cmp::Reverse(k.get(&Kind::CautiousError).copied().unwrap_or(0)),
            **t,
        )
    });
    let _ = writeln!(
        s,
        "  {:<40} {:>7} {:>11} {:>7} {:>9}",
        "construct (cases carrying it)", "cases", "false pass", "wrong", "cautious"
    );
    for (t, k) in rows {
        let g = |kind| k.get(&kind).copied().unwrap_or(0);
        let total: usize = k.values().sum();
        let _ = writeln!(
            s,
            "  {:<40} {:>7} {:>11} {:>7} {:>9}",
            t,
            total,
            g(Kind::FalsePass),
            g(Kind::Wrong),
            g(Kind::CautiousError)
        );
    }
    s
}

/// What a disagreement is about, for grouping: the two reasons with their particulars (quoted
/// values, paths, numbers) left out.
fn signature(c: &Checked) -> String {
    let mut out = String::new();
    for text in [&c.ours.1, &c.theirs.reason] {
        let mut quoted = false;
        for w in text.split_whitespace().take(9) {
            if w.contains('/') || w.chars().any(|ch| ch.is_ascii_digit()) {
                continue;
            }
            for ch in w.chars() {
                if ch == '"' {
                    quoted = !quoted;
                } else if !quoted {
                    out.push(ch);
                }
            }
            out.push(' ');
        }
        out.push('|');
    }
    out
}

/// The smallest failing cases of each kind, shrunk, one per kind of disagreement.
fn examples(h: &mut Harness, results: &[Checked], kinds: &[Kind], max: usize) -> String {
    let mut s = String::new();
    for kind in kinds {
        let mut failing: Vec<&Checked> = results.iter().filter(|r| r.kind == *kind).collect();
        failing.sort_by_key(|r| r.case.size());
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for r in failing.into_iter().take(max * 4) {
            if seen.len() >= max {
                break;
            }
            let small = h.shrink(&r.case, r.kind);
            let (o, t) = h.check_one(&small);
            let shown = Checked {
                index: r.index,
                seed: r.seed,
                case: r.case.clone(),
                ours: o,
                theirs: t,
                kind: r.kind,
            };
            if seen.insert(signature(&shown)) {
                s.push_str(&show_case(&shown, Some(&small)));
            }
        }
    }
    s
}

/// Every disagreement as a JSON line (for analysis with jq): kind, case, both verdicts.
fn dump(path: &Path, results: &[Checked]) {
    let mut out = String::new();
    for r in results.iter().filter(|r| r.kind != Kind::Agree) {
        let files: serde_json::Map<String, serde_json::Value> = r
            .case
            .files
            .iter()
            .map(|(p, b)| (p.clone(), String::from_utf8_lossy(b).into()))
            .collect();
        let line = serde_json::json!({
            "kind": r.kind.label(),
            "case": r.index,
            "args": r.case.args,
            "files": files,
            "ours": {"status": status_word(r.ours.0), "reason": r.ours.1},
            "kubelet": {"status": r.theirs.status, "reason": r.theirs.reason},
            "constructs": r.case.tags,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    fs::write(path, out).unwrap_or_else(|e| panic!("FIDELITY_DUMP {}: {e}", path.display()));
}

#[test]
fn evaluator_agrees_with_the_kubelet() {
    let seed = env_u64("FIDELITY_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        t.as_nanos() as u64 ^ u64::from(std::process::id())
    });
    SEED.set(seed).unwrap();
    let mut h = Harness::new();
    if let Some(i) = env_u64("FIDELITY_CASE") {
        let r = h.run(seed, i as usize..i as usize + 1);
        eprint!("{}", show_case(&r[0], None));
        assert!(
            matches!(r[0].kind, Kind::Agree | Kind::CautiousError),
            "case {i} of seed {seed:#x}: {}",
            r[0].kind.label()
        );
        return;
    }
    let n = env_u64("FIDELITY_CASES").unwrap_or(5000) as usize;
    let max_examples = env_u64("FIDELITY_EXAMPLES").unwrap_or(8) as usize;
    let start = Instant::now();
    let results = h.run(seed, 0..n);
    let text = report(&results, seed, start.elapsed().as_secs_f64());
    // Straight to the process's stderr, past the test harness's capture: the agreement and the
    // cautious errors by construct are shown on success too.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
    if let Some(path) = std::env::var_os("FIDELITY_DUMP") {
        dump(Path::new(&path), &results);
    }
    let bad = results
        .iter()
        .filter(|r| matches!(r.kind, Kind::FalsePass | Kind::Wrong))
        .count();
    if std::env::var_os("FIDELITY_SHOW_CAUTIOUS").is_some() {
        let ex = examples(&mut h, &results, &[Kind::CautiousError], max_examples);
        eprint!("smallest cautious errors (shrunk):\n{ex}");
    }
    if bad > 0 {
        let ex = examples(
            &mut h,
            &results,
            &[Kind::FalsePass, Kind::Wrong],
            max_examples,
        );
        eprint!(
            "smallest disagreements (shrunk; constructs are those of the original case):\n{ex}"
        );
        panic!(
            "{bad} false passes or wrong verdicts out of {n} cases (seed {seed:#x}; replay with \
             FIDELITY_SEED={seed:#x}); see the table and the shrunk cases above"
        );
    }
}

const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

/// (name, files (path, bytes), args, the kubelet's verdict)
type KnownCase<'a> = (&'a str, Vec<(&'a str, Vec<u8>)>, Vec<String>, &'a str);

/// The reference itself, on cases whose verdict is known: the hand-made tricks (what
/// the kubelet does with them) and the shared corpus (where the evaluator must agree too).
#[test]
fn reference_on_known_cases() {
    let mut refr = Reference::start();
    let dir = tempfile::tempdir().unwrap();
    let c = |s: &str| format!("{HEAD}{s}");
    let cfg =
        |s: &str| -> Vec<(&'static str, Vec<u8>)> { vec![("/c.yaml", s.as_bytes().to_vec())] };
    let with = |f: &str| vec![format!("--config={f}")];
    let cases: Vec<KnownCase> = vec![
        (
            "LS in a comment",
            cfg(&c(
                "makeIPTablesUtilChains: true # ok\u{2028}makeIPTablesUtilChains: false\n",
            )),
            with("/c.yaml"),
            "fail",
        ),
        (
            "PS in a comment",
            cfg(&c(
                "makeIPTablesUtilChains: true # ok\u{2029}makeIPTablesUtilChains: false\n",
            )),
            with("/c.yaml"),
            "fail",
        ),
        (
            "NEL in a comment",
            cfg(&c(
                "makeIPTablesUtilChains: true # ok\u{85}makeIPTablesUtilChains: false\n",
            )),
            with("/c.yaml"),
            "fail",
        ),
        (
            "merge key",
            cfg(&c("<<: {makeIPTablesUtilChains: false}\n")),
            with("/c.yaml"),
            "fail",
        ),
        (
            "merge alias",
            cfg(&c("base: &b {makeIPTablesUtilChains: false}\n<<: *b\n")),
            with("/c.yaml"),
            "fail",
        ),
        (
            "binary key",
            cfg(&c("? !!binary bWFrZUlQVGFibGVzVXRpbENoYWlucw==\n: false\n")),
            with("/c.yaml"),
            "fail",
        ),
        (
            "BOM first line",
            cfg(&format!("\u{feff}makeIPTablesUtilChains: false\n{HEAD}")),
            with("/c.yaml"),
            "fail",
        ),
        (
            "!!null false",
            cfg(&c("makeIPTablesUtilChains: !!null false\n")),
            with("/c.yaml"),
            "error",
        ),
        (
            "! true",
            cfg(&c("makeIPTablesUtilChains: ! true\n")),
            with("/c.yaml"),
            "error",
        ),
        (
            "{ is JSON",
            cfg(
                "{apiVersion: kubelet.config.k8s.io/v1beta1, kind: KubeletConfiguration, makeIPTablesUtilChains: true}\n",
            ),
            with("/c.yaml"),
            "error",
        ),
        (
            "alias bomb",
            cfg(&c(
                "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
            )),
            with("/c.yaml"),
            "error",
        ),
        (
            "--v swallows",
            vec![],
            vec!["--v".into(), "--make-iptables-util-chains=false".into()],
            "error",
        ),
        (
            "bool next arg",
            vec![],
            vec!["--make-iptables-util-chains".into(), "false".into()],
            "error",
        ),
        (
            "YAML 1.1 off",
            cfg(&c("makeIPTablesUtilChains: off\n")),
            with("/c.yaml"),
            "fail",
        ),
        (
            "quoted false",
            cfg(&c("makeIPTablesUtilChains: \"false\"\n")),
            with("/c.yaml"),
            "error",
        ),
        (
            "wrong case main",
            cfg(&c("MakeIPTablesUtilChains: false\n")),
            with("/c.yaml"),
            "pass",
        ),
        (
            "duplicate main, last wins",
            cfg(&c(
                "makeIPTablesUtilChains: false\nmakeIPTablesUtilChains: true\n",
            )),
            with("/c.yaml"),
            "pass",
        ),
        (
            "flag over file",
            cfg(&c("makeIPTablesUtilChains: false\n")),
            vec![
                "--config=/c.yaml".into(),
                "--make_iptables_util_chains=1".into(),
            ],
            "pass",
        ),
        (
            "drop-in null restores default",
            vec![
                ("/c.yaml", c("makeIPTablesUtilChains: false\n").into_bytes()),
                (
                    "/d/10.conf",
                    c("makeIPTablesUtilChains: null\n").into_bytes(),
                ),
            ],
            vec!["--config=/c.yaml".into(), "--config-dir=/d".into()],
            "pass",
        ),
        (
            "drop-in duplicate is fatal",
            vec![
                ("/c.yaml", HEAD.as_bytes().to_vec()),
                (
                    "/d/10.conf",
                    c("makeIPTablesUtilChains: true\nmakeIPTablesUtilChains: true\n").into_bytes(),
                ),
            ],
            vec!["--config=/c.yaml".into(), "--config-dir=/d".into()],
            "error",
        ),
        (
            "drop-in without kind is fatal",
            vec![
                ("/c.yaml", HEAD.as_bytes().to_vec()),
                ("/d/10.conf", b"makeIPTablesUtilChains: true\n".to_vec()),
            ],
            vec!["--config=/c.yaml".into(), "--config-dir=/d".into()],
            "error",
        ),
        (
            "drop-in sub dir applies",
            vec![
                ("/c.yaml", HEAD.as_bytes().to_vec()),
                (
                    "/d/s/10.conf",
                    c("makeIPTablesUtilChains: false\n").into_bytes(),
                ),
                ("/d/x.conf.bak", b"junk".to_vec()),
            ],
            vec!["--config=/c.yaml".into(), "--config-dir=/d".into()],
            "fail",
        ),
    ];
    // What the kubelet's own code does that is easy to get wrong, pinned here so the
    // reference cannot drift from it unnoticed (cmd/kubelet/app/server.go, go-yaml v2).
    let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let dropin = |body: &str| {
        vec![
            ("/c.yaml", HEAD.as_bytes().to_vec()),
            ("/d/10.conf", c(body).into_bytes()),
        ]
    };
    let main_and_dir = argv(&["--config=/c.yaml", "--config-dir=/d"]);
    let subtle: Vec<KnownCase> = vec![
        // v2 merges into the same map: a later `<<` overrides an earlier explicit key.
        (
            "merge after key wins",
            cfg(&c(
                "makeIPTablesUtilChains: false\n<<: {makeIPTablesUtilChains: true}\n",
            )),
            with("/c.yaml"),
            "pass",
        ),
        (
            "key after merge wins",
            cfg(&c(
                "<<: {makeIPTablesUtilChains: true}\nmakeIPTablesUtilChains: false\n",
            )),
            with("/c.yaml"),
            "fail",
        ),
        // The group/version/kind is read case-insensitively, then strict fails, lenient works.
        (
            "Kind: in the main file",
            cfg("apiVersion: kubelet.config.k8s.io/v1beta1\nKind: KubeletConfiguration\n"),
            with("/c.yaml"),
            "pass",
        ),
        // Second parse: no --help, and cadvisor's bool globals are no-op values taking the next argument.
        (
            "--help=false with --config",
            cfg(HEAD),
            argv(&["--help=false", "--config=/c.yaml"]),
            "error",
        ),
        (
            "global bool swallows the flag",
            cfg(&c("makeIPTablesUtilChains: false\n")),
            argv(&[
                "--config=/c.yaml",
                "--enable-load-reader",
                "--make-iptables-util-chains=true",
            ]),
            "fail",
        ),
        (
            "global bool last",
            cfg(HEAD),
            argv(&["--config=/c.yaml", "--storage-driver-secure"]),
            "error",
        ),
        (
            "global bool, positional in the second parse only",
            cfg(HEAD),
            argv(&["--log-cadvisor-usage", "--config", "/c.yaml"]),
            "pass",
        ),
        // 1.32+ drop-ins: encoding/json, case-insensitive, the last key in sorted order wins.
        (
            "drop-in key sorting after the field wins",
            dropin("makeiptablesutilchains: false\n"),
            main_and_dir.clone(),
            "fail",
        ),
        (
            "drop-in key sorting before the field loses",
            dropin("MakeIPTablesUtilChains: false\n"),
            main_and_dir.clone(),
            "pass",
        ),
        (
            "drop-in key with a long s",
            dropin("makeIPTableſUtilChainſ: false\n"),
            main_and_dir.clone(),
            "fail",
        ),
        (
            "drop-in Kind: is fatal",
            vec![
                ("/c.yaml", HEAD.as_bytes().to_vec()),
                (
                    "/d/10.conf",
                    b"apiVersion: kubelet.config.k8s.io/v1beta1\nKind: KubeletConfiguration\n"
                        .to_vec(),
                ),
            ],
            main_and_dir,
            "error",
        ),
        // A null Duration reaches metav1.Duration's UnmarshalJSON: "" is not a duration.
        (
            "null duration",
            cfg(&c("syncFrequency:\n")),
            with("/c.yaml"),
            "error",
        ),
    ];
    let cases: Vec<KnownCase> = cases.into_iter().chain(subtle).collect();
    let mut failures = Vec::new();
    for (i, (name, files, args, want)) in cases.iter().enumerate() {
        let root = dir.path().join(i.to_string());
        let case = Case {
            files: files
                .iter()
                .map(|(p, b)| (p.to_string(), b.clone()))
                .collect(),
            args: args.clone(),
            tags: BTreeSet::new(),
        };
        materialize(&root, &case);
        let v = refr.decide(&root, args);
        if v.status != *want {
            failures.push(format!(
                "{name}: reference says {} ({}), expected {want}",
                v.status, v.reason
            ));
        }
    }
    // The corpus: both must agree, on what SOURCES.md says.
    let corpus = corpus_dir();
    let corpus_cases: &[(&str, &str)] = &[
        ("kics/positive2-config-false.yaml", "fail"),
        ("kics/positive3-config-false.json", "fail"),
        ("kics/negative2-config-true.yaml", "pass"),
        ("kics/negative3-config-absent.yaml", "pass"),
        ("kubeadm-generated/joneconsulting-config.yaml", "pass"),
        ("amazon-eks-ami/al2-kubelet-config.json", "pass"),
        (
            "amazon-eks-ami/nodeadm-expected-kubelet-config.json",
            "pass",
        ),
        (
            "amazon-eks-ami/nodeadm-expected-kubelet-config-drop-in.json",
            "pass",
        ),
        ("rke2/00-rke2-defaults.conf", "pass"),
        (
            "kubernetes/kubeadm-testdata-defaulted-multidoc.yaml",
            "error",
        ),
    ];
    for (i, (rel, want)) in corpus_cases.iter().enumerate() {
        let text = fs::read(corpus.join(rel)).unwrap_or_else(|e| panic!("corpus {rel}: {e}"));
        let root = dir.path().join(format!("corpus-{i}"));
        let mut files = vec![("/etc/kubelet/config".to_string(), text.clone())];
        let mut args = vec!["--config".to_string(), "/etc/kubelet/config".to_string()];
        if rel.contains("drop-in") || rel.contains("rke2") {
            // As a drop-in over the EKS main file.
            files = vec![
                (
                    "/etc/kubelet/config".to_string(),
                    fs::read(corpus.join("amazon-eks-ami/nodeadm-expected-kubelet-config.json"))
                        .unwrap(),
                ),
                ("/etc/kubelet/config.d/40.conf".to_string(), text),
            ];
            args.push("--config-dir=/etc/kubelet/config.d".into());
        }
        let case = Case {
            files,
            args: args.clone(),
            tags: BTreeSet::new(),
        };
        materialize(&root, &case);
        let v = refr.decide(&root, &args);
        let (o, reason) = ours(&root, &args);
        if v.status != *want || status_word(o) != *want {
            failures.push(format!(
                "corpus {rel}: reference {} ({}), ours {} ({reason}), expected {want}",
                v.status,
                v.reason,
                status_word(o)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
