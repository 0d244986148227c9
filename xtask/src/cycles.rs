//! `cargo xtask cycles`: fails, naming each cycle, when modules of the same folder import each
//! other in a circle (`a` uses `b`, `b` uses `a`, or longer rings), in every crate of
//! `observer/src` and `xtask/src`.
//!
//! Modules are found by following `mod name;` from each crate root (`lib.rs`, `main.rs`). A
//! module depends on every module that a `crate::`, `super::` or `self::` path in its files
//! names (use trees included; comments and string literals are ignored). For each folder, the
//! graph has one node per child module (its whole subtree) and an edge where one child's subtree
//! names something in another child's subtree; a strongly connected component of two or more
//! children is a cycle. A child naming its parent (`use super::Args`) is not a cycle: the parent
//! owns its children.
//!
//! Written here rather than taken from `cargo-modules`: its `dependencies --acyclic` also counts
//! those child-to-parent uses, so it cannot tell this project's cycles from its normal layout, and
//! it is a rust-analyzer-sized build for CI.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

/// The crates' source folders, from the workspace root.
pub(crate) const SOURCES: [&str; 2] = ["observer/src", "xtask/src"];

#[derive(clap::Args)]
pub(crate) struct CyclesArgs {
    /// Source folders to check [default: observer/src and xtask/src].
    pub dirs: Vec<PathBuf>,
}

pub(crate) fn run(root: &Path, args: &CyclesArgs) -> anyhow::Result<()> {
    let dirs: Vec<PathBuf> = if args.dirs.is_empty() {
        SOURCES.iter().map(|d| root.join(d)).collect()
    } else {
        args.dirs.clone()
    };
    let mut found = Vec::new();
    for dir in &dirs {
        for crate_root in ["lib.rs", "main.rs"] {
            if dir.join(crate_root).is_file() {
                let krate = Crate::read(dir, crate_root)?;
                found.extend(krate.cycles());
            }
        }
    }
    for c in &found {
        eprintln!("cycles: {c}");
    }
    if !found.is_empty() {
        bail!("{} module cycle(s); each is listed above", found.len());
    }
    eprintln!("cycles: none in {}", show(&dirs));
    Ok(())
}

fn show(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A module path from the crate root: `["lab", "scenario"]`; empty for the root.
type ModPath = Vec<String>;

/// One place where a module names another.
#[derive(Clone, Debug)]
struct Use {
    to: ModPath,
    file: PathBuf,
    line: usize,
}

/// A crate's modules and what each one names.
struct Crate {
    /// `observer/src/lib.rs`, for messages.
    root_file: PathBuf,
    modules: BTreeSet<ModPath>,
    uses: BTreeMap<ModPath, Vec<Use>>,
}

/// A ring of sibling modules, with one place for each step.
#[derive(Debug)]
pub(crate) struct Cycle {
    crate_root: PathBuf,
    folder: ModPath,
    ring: Vec<(String, Use)>,
}

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let folder = if self.folder.is_empty() {
            "the crate root".to_owned()
        } else {
            self.folder.join("::")
        };
        let names: Vec<&str> = self.ring.iter().map(|(n, _)| n.as_str()).collect();
        write!(
            f,
            "{} ({folder}): {} -> {}",
            self.crate_root.display(),
            names.join(" -> "),
            names[0]
        )?;
        for (name, u) in &self.ring {
            write!(
                f,
                "\n    {name} uses {} at {}:{}",
                u.to.join("::"),
                u.file.display(),
                u.line
            )?;
        }
        Ok(())
    }
}

impl Crate {
    fn read(dir: &Path, root_file: &str) -> anyhow::Result<Self> {
        let mut krate = Self {
            root_file: dir.join(root_file),
            modules: BTreeSet::new(),
            uses: BTreeMap::new(),
        };
        krate.visit(&[], &dir.join(root_file), dir)?;
        Ok(krate)
    }

    /// Reads the module at `path` from `file`; its children live in `child_dir`.
    fn visit(&mut self, path: &[String], file: &Path, child_dir: &Path) -> anyhow::Result<()> {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let code = without_test_modules(&strip(&text));
        self.modules.insert(path.to_vec());
        let mut uses = Vec::new();
        for (to, line) in referenced(&code, path) {
            uses.push(Use {
                to,
                file: file.to_path_buf(),
                line,
            });
        }
        self.uses.insert(path.to_vec(), uses);
        for child in declared_modules(&code) {
            let flat = child_dir.join(format!("{child}.rs"));
            let nested = child_dir.join(&child).join("mod.rs");
            let (child_file, grandchildren) = if flat.is_file() {
                (flat, child_dir.join(&child))
            } else if nested.is_file() {
                (nested, child_dir.join(&child))
            } else {
                bail!(
                    "{}: `mod {child};` but neither {} nor {} exists",
                    file.display(),
                    flat.display(),
                    nested.display()
                );
            };
            let mut child_path = path.to_vec();
            child_path.push(child);
            self.visit(&child_path, &child_file, &grandchildren)?;
        }
        Ok(())
    }

    /// The longest known module that `path` starts with.
    fn module_of(&self, path: &[String]) -> Option<&ModPath> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.modules.get(&path[..n]))
    }

    fn cycles(&self) -> Vec<Cycle> {
        let mut out = Vec::new();
        for folder in &self.modules {
            let children: Vec<&String> = self
                .modules
                .iter()
                .filter(|m| m.len() == folder.len() + 1 && m.starts_with(folder))
                .map(|m| &m[folder.len()])
                .collect();
            if children.len() < 2 {
                continue;
            }
            // child -> child -> first place seen.
            let mut edges: BTreeMap<&str, BTreeMap<&str, &Use>> = BTreeMap::new();
            for (from, uses) in &self.uses {
                let Some(from_child) = child_under(folder, from) else {
                    continue;
                };
                for u in uses {
                    let Some(target) = self.module_of(&u.to) else {
                        continue;
                    };
                    match child_under(folder, target) {
                        Some(to_child) if to_child != from_child => {
                            edges
                                .entry(from_child)
                                .or_default()
                                .entry(to_child)
                                .or_insert(u);
                        }
                        _ => {}
                    }
                }
            }
            for component in components(&children, &edges) {
                let ring = ring(&component, &edges);
                out.push(Cycle {
                    crate_root: self.root_file.clone(),
                    folder: folder.clone(),
                    ring: ring
                        .iter()
                        .zip(ring.iter().cycle().skip(1))
                        .map(|(a, b)| ((*a).to_owned(), edges[a][b].clone()))
                        .collect(),
                });
            }
        }
        out
    }
}

/// The child of `folder` that `module` is in (or is).
fn child_under<'a>(folder: &[String], module: &'a [String]) -> Option<&'a str> {
    (module.len() > folder.len() && module.starts_with(folder))
        .then(|| module[folder.len()].as_str())
}

/// Strongly connected components of two or more nodes (Tarjan's algorithm).
fn components<'a>(
    nodes: &[&'a String],
    edges: &BTreeMap<&'a str, BTreeMap<&'a str, &Use>>,
) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<Vec<&'a str>>,
    }
    fn connect<'a>(
        v: &'a str,
        edges: &BTreeMap<&'a str, BTreeMap<&'a str, &Use>>,
        s: &mut State<'a>,
    ) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        for &w in edges.get(v).into_iter().flat_map(BTreeMap::keys) {
            if !s.index.contains_key(w) {
                connect(w, edges, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let at = s.stack.iter().position(|&x| x == v).unwrap_or(0);
            let mut component = s.stack.split_off(at);
            if component.len() > 1 {
                component.sort_unstable();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in nodes {
        if !s.index.contains_key(v.as_str()) {
            connect(v, edges, &mut s);
        }
    }
    s.out
}

/// A shortest ring through the first node of `component`, staying inside it.
fn ring<'a>(
    component: &[&'a str],
    edges: &BTreeMap<&'a str, BTreeMap<&'a str, &Use>>,
) -> Vec<&'a str> {
    let start = component[0];
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in edges.get(v).into_iter().flat_map(BTreeMap::keys) {
            if !component.contains(&w) {
                continue;
            }
            if w == start {
                let mut ring = vec![v];
                let mut at = v;
                while at != start {
                    at = came_from[at];
                    ring.push(at);
                }
                ring.reverse();
                return ring;
            }
            if !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    component.to_vec()
}

/// `code` (already stripped) with its inline `#[cfg(test)] mod name { ... }` blocks blanked:
/// what tests import is not part of the module graph.
fn without_test_modules(code: &str) -> String {
    let mut out = code.to_owned();
    let mut from = 0;
    while let Some(found) = out[from..].find("#[cfg(test)]") {
        let attr = from + found;
        let after = &out[attr + "#[cfg(test)]".len()..];
        let rest = after.trim_start();
        let is_inline_mod = rest.strip_prefix("mod ").is_some_and(|r| {
            let r = r.trim_start();
            let name_end = r.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            name_end.is_some_and(|n| r[n..].trim_start().starts_with('{'))
        });
        if !is_inline_mod {
            from = attr + 1;
            continue;
        }
        let open = attr + out[attr..].find('{').unwrap_or(0);
        let mut depth = 0usize;
        let mut end = out.len();
        for (i, c) in out[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        let blanked: String = out[attr..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(attr..end, &blanked);
        from = end;
    }
    out
}

/// `mod name;` declarations (not inline `mod name { ... }` blocks).
fn declared_modules(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let words: Vec<&str> = code
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        if *w != "mod" {
            continue;
        }
        if let Some(name) = words.get(i + 1).and_then(|n| n.strip_suffix(';'))
            && is_ident(name)
        {
            out.push(name.to_owned());
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Every module path named by `crate::`, `super::` or `self::` paths in `code` (of module
/// `here`), with its line; use trees are expanded.
fn referenced(code: &str, here: &[String]) -> Vec<(ModPath, usize)> {
    let tokens = tokenize(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (t, line) = &tokens[i];
        let starts_path = matches!(t.as_str(), "crate" | "super" | "self")
            && tokens.get(i + 1).is_some_and(|(n, _)| n == "::")
            && (i == 0 || tokens[i - 1].0 != "::");
        if !starts_path {
            i += 1;
            continue;
        }
        let mut prefix: ModPath = Vec::new();
        let mut at = i;
        // The anchor: crate, self, super(::super)*.
        let mut base = here.to_vec();
        match t.as_str() {
            "crate" => base.clear(),
            "super" => {
                base.pop();
            }
            _ => {}
        }
        at += 2;
        while tokens.get(at).is_some_and(|(n, _)| n == "super")
            && tokens.get(at + 1).is_some_and(|(n, _)| n == "::")
        {
            base.pop();
            at += 2;
        }
        prefix.extend(base);
        let end = walk_tree(&tokens, at, &prefix, *line, &mut out);
        i = end.max(i + 1);
    }
    out
}

/// Reads a path (or use tree) from `tokens[at]`; pushes every full path; returns where it ends.
fn walk_tree(
    tokens: &[(String, usize)],
    mut at: usize,
    prefix: &[String],
    line: usize,
    out: &mut Vec<(ModPath, usize)>,
) -> usize {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(at).map(|(t, _)| t.as_str()) {
            Some("{") => {
                at += 1;
                loop {
                    match tokens.get(at).map(|(t, _)| t.as_str()) {
                        None => return at,
                        Some("}") => return at + 1,
                        Some(",") => at += 1,
                        Some(_) => {
                            // Always move on, even past a token that is no path (`*`).
                            at = walk_tree(tokens, at, &path, tokens[at].1, out).max(at + 1);
                        }
                    }
                }
            }
            Some("self") => {
                at += 1;
            }
            Some(t) if is_ident(t) => {
                path.push(t.to_owned());
                at += 1;
                if tokens.get(at).is_some_and(|(n, _)| n == "::") {
                    at += 1;
                    continue;
                }
            }
            _ => {}
        }
        out.push((path, line));
        return at;
    }
}

/// Identifiers, `::`, braces and commas, with their line; everything else is a separator.
fn tokenize(code: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            ':' if chars.peek() == Some(&':') => {
                chars.next();
                out.push(("::".to_owned(), line));
            }
            '{' | '}' | ',' => out.push((c.to_string(), line)),
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        word.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push((word, line));
            }
            c if c.is_ascii_digit() => {
                while chars
                    .peek()
                    .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '_')
                {
                    chars.next();
                }
            }
            _ => out.push((";".to_owned(), line)),
        }
    }
    out
}

/// `code` with comments, string and character literals blanked (newlines kept).
fn strip(code: &str) -> String {
    let bytes: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < bytes.len() && bytes[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < bytes.len() {
                if bytes[i] == '/' && bytes.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if bytes[i] == '*' && bytes.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(bytes[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&bytes, i) {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while bytes.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if bytes.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < bytes.len() {
                if bytes[j] == '"' && (0..hashes).all(|h| bytes.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                out.push(blank(bytes[j]));
                j += 1;
            }
            out.push(' ');
            i = j;
        } else if c == '"' {
            i += 1;
            while i < bytes.len() && bytes[i] != '"' {
                if bytes[i] == '\\' {
                    i += 1;
                }
                if let Some(&b) = bytes.get(i) {
                    out.push(blank(b));
                }
                i += 1;
            }
            i += 1;
            out.push(' ');
        } else if c == '\'' && next == Some('\\') {
            // An escaped character literal: '\n', '\'', '\u{..}'.
            i += 2;
            while i < bytes.len() && bytes[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push(' ');
        } else if c == '\'' && bytes.get(i + 2) == Some(&'\'') {
            i += 3;
            out.push(' ');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(bytes: &[char], i: usize) -> bool {
    i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn rings(dir: &Path) -> Vec<String> {
        Crate::read(dir, "main.rs")
            .unwrap()
            .cycles()
            .iter()
            .map(|c| {
                c.ring
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(" -> ")
            })
            .collect()
    }

    #[test]
    fn finds_a_cycle_between_top_level_modules_and_names_the_lines() {
        let dir = tree(&[
            ("main.rs", "mod a;\nmod b;\nmod c;\n"),
            ("a.rs", "use crate::b::Thing;\n"),
            ("b.rs", "// use crate::c;\nfn f() { crate::a::g(); }\n"),
            ("c.rs", "const S: &str = \"crate::a::x\";\n"),
        ]);
        let krate = Crate::read(dir.path(), "main.rs").unwrap();
        let cycles = krate.cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        let text = cycles[0].to_string();
        assert!(text.contains("a -> b -> a"), "{text}");
        assert!(text.contains("b.rs:2"), "{text}");
        assert!(text.contains("a.rs:1"), "{text}");
    }

    #[test]
    fn finds_rings_inside_a_folder_through_use_trees_and_super() {
        let dir = tree(&[
            ("main.rs", "mod lab;\n"),
            (
                "lab/mod.rs",
                "pub mod x;\npub mod y;\npub mod z;\npub struct Args;\n",
            ),
            ("lab/x.rs", "use crate::{lab::{self, y::Y}};\n"),
            ("lab/y.rs", "use super::super::lab::z;\n"),
            ("lab/z.rs", "use super::{Args, x};\n"),
        ]);
        assert_eq!(rings(dir.path()), ["x -> y -> z"]);
    }

    #[test]
    fn a_child_using_its_parent_and_one_way_uses_are_no_cycle() {
        let dir = tree(&[
            ("main.rs", "mod a;\nmod b;\nfn main() { a::f(); }\n"),
            ("a/mod.rs", "mod inner;\nuse crate::b;\npub fn f() {}\n"),
            ("a/inner.rs", "use super::f;\nuse crate::b::g;\n"),
            (
                "b.rs",
                "pub fn g() { let _ = 'a'; let _ = r#\"crate::a\"#; }\n",
            ),
        ]);
        let found = rings(dir.path());
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn what_tests_import_is_left_out() {
        let dir = tree(&[
            ("main.rs", "mod a;\nmod b;\n"),
            ("a.rs", "use crate::b;\n"),
            (
                "b.rs",
                "pub fn g() {}\n#[cfg(test)]\nmod tests {\n    use crate::a;\n    fn f() { if true { a::x(); } }\n}\n",
            ),
        ]);
        let found = rings(dir.path());
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_missing_module_file_is_an_error() {
        let dir = tree(&[("main.rs", "mod gone;\n")]);
        let err = Crate::read(dir.path(), "main.rs")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("gone.rs"), "{err}");
    }
}
