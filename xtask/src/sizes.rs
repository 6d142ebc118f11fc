//! `cargo xtask sizes`: the house's size rules, checked on the source as the compiler sees it.
//!
//! - no function over [`MAX_FN_LINES`] lines outside tests, in `monitor/` and `xtask/`;
//! - no source file of the daemon (`monitor/src/daemon/`, its tests aside) over
//!   [`MAX_DAEMON_FILE_LINES`] lines.
//!
//! The crates are walked from their roots along their `mod` declarations (so a module the
//! compiler does not read is not read here either), with `syn`; whatever is `#[cfg(test)]` (a
//! test module inline or in its own file, a `#[test]` function, the feature-gated test kit) is
//! left out. The unit test at the bottom keeps the rules in `cargo test`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use syn::{
    Attribute, ImplItemFn, Item, ItemFn, ItemMod, TraitItemFn,
    spanned::Spanned,
    visit::{self, Visit},
};

pub const MAX_FN_LINES: usize = 120;
pub const MAX_DAEMON_FILE_LINES: usize = 400;

/// Functions over the limit that other work in flight is splitting (file, function): the test
/// fails on any other, and `cargo xtask sizes` still lists these. Remove an entry once its
/// function is split.
pub const BEING_SPLIT: &[(&str, &str)] = &[];

/// The crate roots the rules cover, relative to the workspace.
const ROOTS: &[&str] = &[
    "monitor/src/lib.rs",
    "monitor/src/main.rs",
    "xtask/src/main.rs",
];

/// A place that breaks a rule.
#[derive(Debug, PartialEq, Eq)]
pub struct Oversize {
    pub file: PathBuf,
    pub line: usize,
    pub what: String,
    pub lines: usize,
}

impl std::fmt::Display for Oversize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {} is {} lines",
            self.file.display(),
            self.line,
            self.what,
            self.lines
        )
    }
}

/// `cargo xtask sizes`: lists every place over the limits; fails when there is one that
/// [`BEING_SPLIT`] does not list.
pub fn run() -> Result<()> {
    let found = check(&crate::setup::workspace_root())?;
    for o in &found {
        let note = if being_split(o) { " (being split)" } else { "" };
        println!("{o}{note}");
    }
    let new = found.iter().filter(|o| !being_split(o)).count();
    if new > 0 {
        bail!(
            "{new} place(s) over the limits (functions {MAX_FN_LINES} lines, daemon files {MAX_DAEMON_FILE_LINES})"
        );
    }
    let others = if found.is_empty() {
        ""
    } else {
        " other than those"
    };
    println!(
        "no function{others} over {MAX_FN_LINES} lines outside tests, no daemon file over {MAX_DAEMON_FILE_LINES} lines"
    );
    Ok(())
}

/// Listed in [`BEING_SPLIT`].
fn being_split(o: &Oversize) -> bool {
    BEING_SPLIT
        .iter()
        .any(|(f, w)| o.file == Path::new(f) && o.what == *w)
}

/// Every function over [`MAX_FN_LINES`] and every daemon file over [`MAX_DAEMON_FILE_LINES`]
/// under `root` (the workspace), paths relative to it.
pub fn check(root: &Path) -> Result<Vec<Oversize>> {
    let mut files = Vec::new();
    for r in ROOTS {
        collect(&root.join(r), true, &mut files)?;
    }
    files.sort();
    files.dedup();
    let mut out = Vec::new();
    for (path, text) in files.iter().map(|p| (p, std::fs::read_to_string(p))) {
        let text = text.with_context(|| format!("reading {}", path.display()))?;
        let rel = path.strip_prefix(root).unwrap_or(path).to_path_buf();
        let file = syn::parse_file(&text).with_context(|| format!("parsing {}", rel.display()))?;
        let mut v = LongFns {
            file: &rel,
            out: &mut out,
        };
        v.visit_file(&file);
        let lines = text.lines().count();
        if rel.starts_with("monitor/src/daemon") && lines > MAX_DAEMON_FILE_LINES {
            out.push(Oversize {
                file: rel,
                line: 1,
                what: "daemon source file".into(),
                lines,
            });
        }
    }
    Ok(out)
}

/// `path` and, through its `mod` declarations, every non-test module file below it.
/// `owns_dir`: the file's submodules live next to it (a crate root or a `mod.rs`), not in a
/// folder named after it.
fn collect(path: &Path, owns_dir: bool, files: &mut Vec<PathBuf>) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file = syn::parse_file(&text).with_context(|| format!("parsing {}", path.display()))?;
    files.push(path.to_path_buf());
    let dir = if owns_dir {
        path.parent().unwrap().to_path_buf()
    } else {
        path.with_extension("")
    };
    collect_items(&file.items, &dir, files)
}

fn collect_items(items: &[Item], dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for item in items {
        let Item::Mod(m) = item else { continue };
        if is_test(&m.attrs) {
            continue;
        }
        let name = m.ident.to_string();
        match &m.content {
            // An inline module: its own `mod x;` lines resolve below `dir/name`.
            Some((_, inner)) => collect_items(inner, &dir.join(&name), files)?,
            None => {
                let (path, owns_dir) = module_file(m, dir, &name);
                collect(&path, owns_dir, files)?;
            }
        }
    }
    Ok(())
}

/// Where `mod name;` lives: `#[path]`, `dir/name.rs` or `dir/name/mod.rs`.
fn module_file(m: &ItemMod, dir: &Path, name: &str) -> (PathBuf, bool) {
    for a in &m.attrs {
        if let syn::Meta::NameValue(nv) = &a.meta
            && nv.path.is_ident("path")
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
        {
            return (dir.join(s.value()), true);
        }
    }
    let flat = dir.join(format!("{name}.rs"));
    if flat.exists() {
        (flat, false)
    } else {
        (dir.join(name).join("mod.rs"), true)
    }
}

/// `#[test]`, or a `#[cfg(...)]` that names `test` (`cfg(test)`, `cfg(any(test, ...))`).
fn is_test(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("test")
            || (a.path().is_ident("cfg")
                && a.meta.require_list().is_ok_and(|l| {
                    l.tokens.clone().into_iter().any(|t| {
                        matches!(&t, proc_macro2::TokenTree::Ident(i) if i == "test")
                            || matches!(&t, proc_macro2::TokenTree::Group(g)
                                if g.stream().into_iter().any(|t| matches!(&t, proc_macro2::TokenTree::Ident(i) if i == "test")))
                    })
                }))
    })
}

struct LongFns<'a> {
    file: &'a Path,
    out: &'a mut Vec<Oversize>,
}

impl LongFns<'_> {
    fn measure(&mut self, name: &syn::Ident, sig: &syn::Signature, body: &syn::Block) {
        let start = sig.span().start().line;
        let end = body.span().end().line;
        let lines = end + 1 - start;
        if lines > MAX_FN_LINES {
            self.out.push(Oversize {
                file: self.file.to_path_buf(),
                line: start,
                what: format!("fn {name}"),
                lines,
            });
        }
    }
}

impl<'ast> Visit<'ast> for LongFns<'_> {
    fn visit_item_mod(&mut self, m: &'ast ItemMod) {
        if !is_test(&m.attrs) {
            visit::visit_item_mod(self, m);
        }
    }
    fn visit_item_fn(&mut self, f: &'ast ItemFn) {
        if !is_test(&f.attrs) {
            self.measure(&f.sig.ident, &f.sig, &f.block);
            visit::visit_item_fn(self, f);
        }
    }
    fn visit_impl_item_fn(&mut self, f: &'ast ImplItemFn) {
        if !is_test(&f.attrs) {
            self.measure(&f.sig.ident, &f.sig, &f.block);
            visit::visit_impl_item_fn(self, f);
        }
    }
    fn visit_trait_item_fn(&mut self, f: &'ast TraitItemFn) {
        if let Some(body) = &f.default
            && !is_test(&f.attrs)
        {
            self.measure(&f.sig.ident, &f.sig, body);
        }
        visit::visit_trait_item_fn(self, f);
    }
    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if !is_test(&i.attrs) {
            visit::visit_item_impl(self, i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules hold for the tree as it is (`cargo xtask sizes` lists what breaks them).
    #[test]
    fn the_tree_keeps_the_size_rules() {
        let found = check(&crate::setup::workspace_root()).unwrap();
        let list: Vec<String> = found
            .iter()
            .filter(|o| !being_split(o))
            .map(ToString::to_string)
            .collect();
        assert!(list.is_empty(), "over the limits:\n{}", list.join("\n"));
    }

    /// The checker sees a long function, skips tests, and follows `mod` lines.
    #[test]
    fn finds_long_functions_and_skips_tests() {
        let d = tempfile::tempdir().unwrap();
        let body = "    let _x = 1;\n".repeat(MAX_FN_LINES);
        let src = format!(
            "mod sub;\nfn long() {{\n{body}}}\nfn short() {{}}\n#[test]\nfn long_test() {{\n{body}}}\n#[cfg(test)]\nmod tests {{\n    fn long_helper() {{\n{body}    }}\n}}\n"
        );
        std::fs::create_dir_all(d.path().join("monitor/src")).unwrap();
        std::fs::create_dir_all(d.path().join("xtask/src")).unwrap();
        std::fs::write(d.path().join("monitor/src/lib.rs"), &src).unwrap();
        std::fs::write(
            d.path().join("monitor/src/sub.rs"),
            format!("impl S {{\n    fn m() {{\n{body}    }}\n}}\n"),
        )
        .unwrap();
        std::fs::write(d.path().join("monitor/src/main.rs"), "fn main() {}\n").unwrap();
        std::fs::write(d.path().join("xtask/src/main.rs"), "fn main() {}\n").unwrap();
        let found = check(d.path()).unwrap();
        let names: Vec<(&str, usize)> = found.iter().map(|o| (o.what.as_str(), o.line)).collect();
        assert_eq!(names, [("fn long", 2), ("fn m", 2)], "{found:?}");
        assert_eq!(found[0].lines, MAX_FN_LINES + 2);
    }
}
