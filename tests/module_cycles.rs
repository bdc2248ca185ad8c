//! The library's modules import one another without cycles, at every level of the tree: `train` may use
//! `eval`, but then nothing under `eval` may use `train`; inside `kernels`, `gpu` and `windowed` likewise.
//! Read from the `crate::` and `super::` paths of every file under `src/` (the binary's files excepted),
//! comments left out. A second test plants a cycle and checks that it is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path of a file under `src/`: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `lib.rs` is the root.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// The code without `//` comments and string literals, so that prose and messages name no modules.
fn code_only(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    for line in src.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if in_str {
                if c == '"' && prev != '\\' {
                    in_str = false;
                }
                prev = if prev == '\\' && c == '\\' { ' ' } else { c };
                continue;
            }
            if c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' {
                in_str = true;
                prev = ' ';
                continue;
            }
            out.push(c);
        }
        out.push('\n');
    }
    out
}

/// Every path that starts with `crate::` or `super::` (brace groups expanded), as segments, with
/// `super` resolved against `module` (a file `a/b.rs` or `a/b/mod.rs` is module `a::b`; its super is `a`).
fn paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let bytes: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let base = if boundary && rest.starts_with("crate::") {
            Some((Vec::new(), 7))
        } else if boundary && rest.starts_with("super::") {
            Some((module[..module.len().saturating_sub(1)].to_vec(), 7))
        } else {
            None
        };
        let Some((mut prefix, skip)) = base else {
            i += 1;
            continue;
        };
        i += skip;
        while i + 7 <= bytes.len() && bytes[i..i + 7].iter().collect::<String>() == "super::" {
            prefix.pop();
            i += 7;
        }
        i = read_tree(&bytes, i, prefix, &mut found);
    }
    found
}

/// Reads `a::b::{c, d::e}` from `i` onwards, pushing every full path; returns the index after it.
fn read_tree(
    s: &[char],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        while i < s.len() && s[i].is_whitespace() {
            i += 1;
        }
        if i < s.len() && s[i] == '{' {
            i += 1;
            loop {
                i = read_tree(s, i, prefix.clone(), out);
                while i < s.len() && (s[i].is_whitespace() || s[i] == ',') {
                    i += 1;
                }
                if i >= s.len() || s[i] == '}' {
                    return i + 1;
                }
            }
        }
        let start = i;
        while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
            i += 1;
        }
        if start == i {
            out.push(prefix);
            return i;
        }
        prefix.push(s[start..i].iter().collect());
        if i + 1 < s.len() && s[i] == ':' && s[i + 1] == ':' {
            i += 2;
        } else {
            out.push(prefix);
            return i;
        }
    }
}

/// Module -> modules it uses, reduced to siblings: `a::x -> a::y` is an edge of `a`'s children.
type Graph = BTreeMap<Vec<String>, BTreeMap<Vec<String>, BTreeSet<String>>>;

fn graph(root: &Path, skip: &[&str]) -> Graph {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let rel = |p: &PathBuf| p.strip_prefix(root).unwrap().to_path_buf();
    files.retain(|p| !skip.iter().any(|s| rel(p).starts_with(s)));
    let modules: BTreeSet<Vec<String>> = files.iter().map(|p| module_of(&rel(p))).collect();
    let mut g = Graph::new();
    for f in &files {
        let from = module_of(&rel(f));
        let code = code_only(&std::fs::read_to_string(f).unwrap());
        for path in paths(&code, &from) {
            // The longest prefix of the path that is a module (the rest names an item).
            let Some(to) = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains(p))
            else {
                continue;
            };
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue; // a module and its own ancestors or descendants
            }
            let a = from[..=common].to_vec();
            let b = to[..=common].to_vec();
            let name = path.join("::");
            g.entry(a)
                .or_default()
                .entry(b)
                .or_default()
                .insert(format!("{} uses crate::{name}", rel(f).display()));
        }
    }
    g
}

/// One cycle of the graph, as the modules on it with the uses that tie each to the next; None if acyclic.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        n: &Vec<String>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in g
            .get(n)
            .map(|e| e.keys().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            match state.get(m) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut c = stack[at..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(g, m, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.contains_key(n) {
            continue;
        }
        if let Some(c) = visit(g, n, &mut state, &mut Vec::new()) {
            return Some(
                c.windows(2)
                    .map(|w| {
                        let why = g[&w[0]][&w[1]].iter().next().unwrap();
                        format!("{} -> {} ({why})", w[0].join("::"), w[1].join("::"))
                    })
                    .collect(),
            );
        }
    }
    None
}

#[test]
fn the_library_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // main.rs, cli.rs and commands/ are the binary: they use the library as `wgrec::`.
    let g = graph(&src, &["main.rs", "cli.rs", "commands"]);
    let edges: usize = g.values().map(BTreeMap::len).sum();
    assert!(
        edges > 20,
        "only {edges} module edges read: the scan is broken"
    );
    if let Some(cycle) = find_cycle(&g) {
        panic!("import cycle between modules:\n  {}", cycle.join("\n  "));
    }
}

#[test]
fn a_planted_cycle_is_found() {
    let dir = std::env::temp_dir().join(format!("wgrec-cycles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("train")).unwrap();
    std::fs::create_dir_all(dir.join("eval")).unwrap();
    let write = |p: &str, s: &str| std::fs::write(dir.join(p), s).unwrap();
    write("lib.rs", "pub mod eval;\npub mod train;\n");
    write("train/mod.rs", "pub mod run;\n");
    write(
        "train/run.rs",
        "use crate::eval::{metrics::Metrics, Evaluator};\n",
    );
    write("eval/mod.rs", "pub mod metrics;\npub struct Evaluator;\n");
    // A comment and a string must not count; the `super::super` path must.
    write(
        "eval/metrics.rs",
        "// crate::nothing\nconst S: &str = \"crate::train\";\nuse super::super::train::run;\n",
    );
    let g = graph(&dir, &[]);
    let cycle = find_cycle(&g).expect("the planted cycle is found");
    let text = cycle.join("\n");
    assert!(text.contains("eval -> train"), "{text}");
    assert!(text.contains("train -> eval"), "{text}");
    // Without the planted use the tree is acyclic, and within one folder siblings count too.
    write("eval/metrics.rs", "pub struct Metrics;\n");
    assert_eq!(find_cycle(&graph(&dir, &[])), None);
    write(
        "eval/mod.rs",
        "pub mod metrics;\nuse metrics::Metrics;\npub struct Evaluator;\n",
    );
    write(
        "eval/metrics.rs",
        "use super::Evaluator;\npub struct Metrics;\n",
    );
    assert_eq!(
        find_cycle(&graph(&dir, &[])),
        None,
        "a child using its parent is no cycle"
    );
    std::fs::create_dir_all(dir.join("eval/x")).unwrap();
    write("eval/x/mod.rs", "use crate::eval::metrics::Metrics;\n");
    write(
        "eval/metrics.rs",
        "use super::x::Thing;\npub struct Metrics;\n",
    );
    let text = find_cycle(&graph(&dir, &[]))
        .expect("a cycle of siblings")
        .join("\n");
    assert!(text.contains("eval::metrics -> eval::x"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
