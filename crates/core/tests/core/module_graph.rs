//! The core's top-level modules depend on each other in one direction only: a `crate::x`
//! path in a module's code (tests and comments aside) is an arrow to `x`, and the arrows form no
//! cycle. Read from the source files, so a new arrow that closes a loop fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The core library's source; `main.rs` is the binary.
fn library_files() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            if !["main", "lib"].contains(&module.as_str()) {
                out.push((module, path));
            }
        }
    }
    out
}

/// The top-level modules a file's code names through `crate::`.
fn arrows(source: &str) -> BTreeSet<String> {
    let code: String = source
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            // `use crate::{a::X, b::{Y, Z}};`: the names at the group's top level.
            Some(group) => {
                let (mut depth, mut start, mut names) = (0, 0, Vec::new());
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            names.push(&group[start..j]);
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            names.push(&group[start..j]);
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
                names
            }
            None => vec![rest],
        };
        for n in names {
            let name: String = n
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let mut g: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for (module, path) in library_files() {
        let source = std::fs::read_to_string(&path).unwrap();
        let node = g.entry(module.clone()).or_default();
        for to in arrows(&source) {
            if to != module {
                node.entry(to).or_insert_with(|| path.clone());
            }
        }
    }
    g
}

/// A cycle through the graph, as the modules on it, if there is one.
fn find_cycle(g: &BTreeMap<String, BTreeMap<String, PathBuf>>) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeMap<String, PathBuf>>,
        at: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|m| m == at) {
            let mut cycle = path[i..].to_vec();
            cycle.push(at.to_string());
            return Some(cycle);
        }
        if !done.insert(at.to_string()) {
            return None;
        }
        path.push(at.to_string());
        for to in g.get(at).into_iter().flat_map(|m| m.keys()) {
            if let Some(c) = visit(g, to, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|m| visit(g, m, &mut Vec::new(), &mut done))
}

#[test]
fn the_top_level_modules_import_each_other_without_a_cycle() {
    let g = graph();
    assert!(
        g.contains_key("config") && g.contains_key("service") && g.contains_key("channels"),
        "the source was found: {:?}",
        g.keys().collect::<Vec<_>>()
    );
    if let Some(cycle) = find_cycle(&g) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("{} -> {} (in {})", w[0], w[1], g[&w[0]][&w[1]].display()))
            .collect();
        panic!("an import cycle:\n  {}", steps.join("\n  "));
    }
}

#[test]
fn the_checker_sees_a_cycle_when_there_is_one() {
    let mut g = graph();
    g.entry("store".into())
        .or_default()
        .insert("service".into(), PathBuf::from("made up"));
    assert!(find_cycle(&g).is_some());
    assert_eq!(
        arrows(
            "use crate::{\n    config::X,\n    pairing::{a, b},\n    store,\n};\n\
             // crate::events\nfn f() { crate::rpc::call() }\n"
        ),
        ["config", "pairing", "rpc", "store"]
            .map(String::from)
            .into()
    );
}
