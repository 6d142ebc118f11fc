//! The package's `/usr/share/doc/kubelet-drift/copyright` in Debian's machine-readable format
//! (DEP-5), generated from `cargo metadata`: our own files, then one stanza per crate that is
//! statically linked into `/usr/bin/kubelet-drift` (its normal dependencies on this target, as
//! resolved by Cargo.lock), then one `License:` paragraph per licence named. Generated at
//! package time so that it can never fall behind the lock file.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::Command,
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// A statically linked crate, as the copyright file names it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Crate {
    pub name: String,
    pub version: String,
    pub license: String,
    pub authors: Vec<String>,
    pub repository: Option<String>,
}

/// The crates linked into the monitor binary: `kubelet-drift`'s normal (not dev, not build)
/// dependencies, transitively, for the build target.
pub fn linked_crates(workspace: &Path) -> Result<Vec<Crate>> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            "x86_64-unknown-linux-gnu",
        ])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: Value = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    crates_from_metadata(&meta)
}

fn crates_from_metadata(meta: &Value) -> Result<Vec<Crate>> {
    let packages: BTreeMap<&str, &Value> = meta["packages"]
        .as_array()
        .context("metadata without packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .context("metadata without resolve nodes")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let root = packages
        .values()
        .find(|p| p["name"] == "kubelet-drift")
        .and_then(|p| p["id"].as_str())
        .context("no kubelet-drift package in the workspace")?;
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let deps = nodes
            .get(id)
            .and_then(|n| n["deps"].as_array())
            .into_iter()
            .flatten();
        for d in deps {
            // Normal dependencies only: build scripts and dev-dependencies are not linked in.
            let normal = d["dep_kinds"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k["kind"].is_null()));
            if let (true, Some(pkg)) = (normal, d["pkg"].as_str()) {
                stack.push(pkg);
            }
        }
    }
    let mut crates = Vec::new();
    for id in seen {
        let p = packages[id];
        // Our own workspace crates are covered by the `Files: *` stanza.
        if p["source"].is_null() {
            continue;
        }
        let license = p["license"]
            .as_str()
            .with_context(|| format!("crate {} has no license expression", p["name"]))?;
        crates.push(Crate {
            name: p["name"].as_str().unwrap_or_default().to_string(),
            version: p["version"].as_str().unwrap_or_default().to_string(),
            license: normalise_license(license),
            authors: p["authors"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            repository: p["repository"].as_str().map(str::to_string),
        });
    }
    crates.sort();
    Ok(crates)
}

/// SPDX expression → DEP-5 short names: `OR` → `or`, `AND` → `and`, the old `/` form → `or`,
/// `-or-later` → `+`, `WITH X` → ` with X exception`.
pub fn normalise_license(spdx: &str) -> String {
    spdx.replace('/', " OR ")
        .split_whitespace()
        .map(|w| match w {
            "OR" => "or".to_string(),
            "AND" => "and".to_string(),
            "WITH" => "with".to_string(),
            w => w.replace("-or-later", "+"),
        })
        .collect::<Vec<_>>()
        .join(" ")
        .replace("with LLVM-exception", "with LLVM exception")
}

/// The licence short names an expression uses, e.g. `(MIT or Apache-2.0) and Unicode-3.0`.
fn license_names(expr: &str) -> impl Iterator<Item = String> + '_ {
    expr.split(|c: char| c == '(' || c == ')' || c.is_whitespace())
        .filter(|w| !w.is_empty() && !matches!(*w, "or" | "and" | "with" | "LLVM" | "exception"))
        .map(str::to_string)
}

/// The full DEP-5 text.
pub fn render(crates: &[Crate]) -> String {
    let mut s = String::from(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: kubelet-drift\n\
         Comment: /usr/bin/kubelet-drift is a statically linked Rust program: besides the\n \
         project's own code it contains the crates listed below, each under its own licence\n \
         (versions as resolved by the project's Cargo.lock when this package was built).\n\
         \n\
         Files: *\n\
         Copyright: 2026 kubelet-drift developers\n\
         License: MIT or Apache-2.0\n",
    );
    let mut names = BTreeSet::from(["MIT".to_string(), "Apache-2.0".to_string()]);
    for c in crates {
        let authors = if c.authors.is_empty() {
            format!("the {} authors", c.name)
        } else {
            c.authors.join("\n           ")
        };
        s.push_str(&format!(
            "\nFiles: rust-crates/{}-{}/*\nCopyright: {}\nLicense: {}\n",
            c.name, c.version, authors, c.license
        ));
        if let Some(r) = &c.repository {
            s.push_str(&format!(
                "Comment: crate {} {}, from {r}\n",
                c.name, c.version
            ));
        }
        names.extend(license_names(&c.license));
    }
    for n in names {
        s.push('\n');
        s.push_str(&license_paragraph(&n));
    }
    s
}

/// A `License:` paragraph: a pointer to /usr/share/common-licenses where Debian ships the
/// text (lintian wants that rather than a copy), the text itself otherwise.
fn license_paragraph(name: &str) -> String {
    let common = |file: &str| {
        format!(
            "License: {name}\n On Debian systems, the complete text of this licence can be found in\n \
             /usr/share/common-licenses/{file}.\n"
        )
    };
    match name {
        "Apache-2.0" => common("Apache-2.0"),
        "LGPL-2.1+" => common("LGPL-2.1"),
        "MPL-2.0" => common("MPL-2.0"),
        "CC0-1.0" => common("CC0-1.0"),
        "MIT" => format!("License: MIT\n{}", indent(MIT)),
        "Unlicense" => format!("License: Unlicense\n{}", indent(UNLICENSE)),
        "Zlib" => format!("License: Zlib\n{}", indent(ZLIB)),
        "BSD-3-Clause" => format!("License: BSD-3-Clause\n{}", indent(BSD3)),
        "BSL-1.0" => format!("License: BSL-1.0\n{}", indent(BSL)),
        "Unicode-3.0" => format!("License: Unicode-3.0\n{}", indent(UNICODE3)),
        other => format!(
            "License: {other}\n The SPDX licence {other}: see https://spdx.org/licenses/{other}.html\n"
        ),
    }
}

/// DEP-5 continuation lines: one leading space, blank lines as " .".
fn indent(text: &str) -> String {
    text.trim()
        .lines()
        .map(|l| {
            if l.trim().is_empty() {
                " .\n".to_string()
            } else {
                format!(" {l}\n")
            }
        })
        .collect()
}

const MIT: &str = include_str!("../../../LICENSE-MIT");

const UNLICENSE: &str = "\
This is free and unencumbered software released into the public domain.

Anyone is free to copy, modify, publish, use, compile, sell, or distribute this software, either
in source code form or as a compiled binary, for any purpose, commercial or non-commercial, and
by any means.

THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED. For more
information, please refer to <https://unlicense.org/>";

const ZLIB: &str = "\
This software is provided 'as-is', without any express or implied warranty. In no event will the
authors be held liable for any damages arising from the use of this software.

Permission is granted to anyone to use this software for any purpose, including commercial
applications, and to alter it and redistribute it freely, subject to the following restrictions:

1. The origin of this software must not be misrepresented; you must not claim that you wrote the
   original software. If you use this software in a product, an acknowledgment in the product
   documentation would be appreciated but is not required.
2. Altered source versions must be plainly marked as such, and must not be misrepresented as
   being the original software.
3. This notice may not be removed or altered from any source distribution.";

const BSD3: &str = "\
Redistribution and use in source and binary forms, with or without modification, are permitted
provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this list of
   conditions and the following disclaimer.
2. Redistributions in binary form must reproduce the above copyright notice, this list of
   conditions and the following disclaimer in the documentation and/or other materials provided
   with the distribution.
3. Neither the name of the copyright holder nor the names of its contributors may be used to
   endorse or promote products derived from this software without specific prior written
   permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS \"AS IS\" AND ANY EXPRESS OR
IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND
FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR
CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE,
DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER
IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT
OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.";

const BSL: &str = "\
Boost Software License - Version 1.0 - August 17th, 2003

Permission is hereby granted, free of charge, to any person or organization obtaining a copy of
the software and accompanying documentation covered by this license (the \"Software\") to use,
reproduce, display, distribute, execute, and transmit the Software, and to prepare derivative
works of the Software, and to permit third-parties to whom the Software is furnished to do so,
all subject to the following:

The copyright notices in the Software and this entire statement, including the above license
grant, this restriction and the following disclaimer, must be included in all copies of the
Software, in whole or in part, and all derivative works of the Software, unless such copies or
derivative works are solely in the form of machine-executable object code generated by a source
language processor.

THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE, TITLE AND
NON-INFRINGEMENT. IN NO EVENT SHALL THE COPYRIGHT HOLDERS OR ANYONE DISTRIBUTING THE SOFTWARE BE
LIABLE FOR ANY DAMAGES OR OTHER LIABILITY, WHETHER IN CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.";

const UNICODE3: &str = "\
UNICODE LICENSE V3

Permission is hereby granted, free of charge, to any person obtaining a copy of data files and
any associated documentation (the \"Data Files\") or software and any associated documentation
(the \"Software\") to deal in the Data Files or Software without restriction, including without
limitation the rights to use, copy, modify, merge, publish, distribute, and/or sell copies of the
Data Files or Software, and to permit persons to whom the Data Files or Software are furnished to
do so, provided that either (a) this copyright and permission notice appear with all copies of
the Data Files or Software, or (b) this copyright and permission notice appear in associated
Documentation.

THE DATA FILES AND SOFTWARE ARE PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT OF THIRD PARTY RIGHTS. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR
HOLDERS INCLUDED IN THIS NOTICE BE LIABLE FOR ANY CLAIM, OR ANY SPECIAL INDIRECT OR CONSEQUENTIAL
DAMAGES, OR ANY DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE
USE OR PERFORMANCE OF THE DATA FILES OR SOFTWARE.

Except as contained in this notice, the name of a copyright holder shall not be used in
advertising or otherwise to promote the sale, use or other dealings in these Data Files or
Software without prior written authorization of the copyright holder.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spdx_becomes_dep5() {
        assert_eq!(normalise_license("MIT/Apache-2.0"), "MIT or Apache-2.0");
        assert_eq!(normalise_license("LGPL-2.1-or-later"), "LGPL-2.1+");
        assert_eq!(
            normalise_license("(MIT OR Apache-2.0) AND Unicode-3.0"),
            "(MIT or Apache-2.0) and Unicode-3.0"
        );
        assert_eq!(
            normalise_license("Apache-2.0 WITH LLVM-exception OR MIT"),
            "Apache-2.0 with LLVM exception or MIT"
        );
    }

    #[test]
    fn every_license_named_has_a_paragraph() {
        let crates = vec![Crate {
            name: "x".into(),
            version: "1.0.0".into(),
            license: normalise_license("(Apache-2.0 OR MIT) AND BSD-3-Clause"),
            authors: vec![],
            repository: None,
        }];
        let text = render(&crates);
        for n in ["MIT", "Apache-2.0", "BSD-3-Clause"] {
            assert!(text.contains(&format!("\nLicense: {n}\n")), "{n}:\n{text}");
        }
        assert!(text.contains("Files: rust-crates/x-1.0.0/*"));
    }

    #[test]
    fn the_workspace_lock_resolves_to_a_complete_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let crates = linked_crates(root).expect("cargo metadata");
        assert!(crates.iter().any(|c| c.name == "aya"), "aya is linked in");
        assert!(
            !crates.iter().any(|c| c.name == "proptest"),
            "dev-dependency"
        );
        let text = render(&crates);
        // Every short name used in a Files stanza has its License paragraph.
        let used: BTreeSet<String> = crates
            .iter()
            .flat_map(|c| license_names(&c.license))
            .collect();
        for n in used {
            assert!(
                text.contains(&format!("\nLicense: {n}\n")),
                "no paragraph for {n}"
            );
        }
    }
}
