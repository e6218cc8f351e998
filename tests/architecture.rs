//! The crate's shape, checked from its source: data flows one way between the top-level
//! modules (no cycle), and `src/report/` only formats: it may name the result types the
//! stages return (so that none is mirrored), but never a stage's function, and never the
//! orchestrator, the reader, the windows or the CLI.
//!
//! Test code (`tests.rs`, `testutil.rs`, and everything after a `#[cfg(test)]` line) is left
//! out: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every non-test `.rs` file under `dir`, with its text cut at the first `#[cfg(test)]` and
/// its `//` comments removed.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".rs") || name == "tests.rs" || name == "testutil.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let live = text.split("#[cfg(test)]").next().unwrap_or("");
            let code: String = live
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            out.push((path, code));
        }
    }
    out.sort();
    out
}

/// Every `crate::…` path in `code`, expanded over one level of braces:
/// `crate::a::{B, c::D}` gives `a::B` and `a::c::D`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        // `profile_crate::` or `xcrate::` are not ours.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{'))
            .unwrap_or(rest.len());
        let head = &rest[..end];
        if let Some(open) = head.find('{') {
            let prefix = &head[..open];
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
            for item in rest[open + 1..close].split(',') {
                let item = item.split_whitespace().next().unwrap_or("");
                if !item.is_empty() {
                    out.push(format!("{prefix}{item}"));
                }
            }
        } else {
            out.push(head.trim_end_matches(':').to_string());
        }
    }
    out
}

/// The top-level module a file belongs to (`src/analyze/ceiling.rs` -> `analyze`).
fn top_module(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let m = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (m != "lib" && m != "main").then_some(m)
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let files = sources(&src());
    for (path, _) in &files {
        if let Some(m) = top_module(path) {
            graph.entry(m).or_default();
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for (path, code) in &files {
        let Some(from) = top_module(path) else {
            continue;
        };
        for p in crate_paths(code) {
            let to = p.split("::").next().unwrap_or("").to_string();
            if to != from && modules.contains(&to) {
                graph.get_mut(&from).unwrap().insert(to);
            }
        }
    }
    graph
}

/// The modules reachable from `start` (itself excluded unless on a cycle).
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = graph[start].iter().map(String::as_str).collect();
    while let Some(m) = stack.pop() {
        if seen.insert(m.to_string()) {
            stack.extend(graph[m].iter().map(String::as_str));
        }
    }
    seen
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    let graph = module_graph();
    assert!(graph.len() >= 15, "found only {:?}", graph.keys());
    let cycles: Vec<String> = graph
        .keys()
        .filter(|m| reachable(&graph, m).contains(*m))
        .map(|m| format!("{m} -> {:?}", graph[m]))
        .collect();
    assert!(
        cycles.is_empty(),
        "modules on an import cycle:\n{}",
        cycles.join("\n")
    );
    // The direction the data flows: the orchestrator reaches every stage, no stage reaches
    // the orchestrator.
    for stage in [
        "recording",
        "vllm",
        "window",
        "aggregate",
        "rules",
        "catalog",
        "inputs",
    ] {
        assert!(
            reachable(&graph, "analyze").contains(stage),
            "analyze -/-> {stage}"
        );
        assert!(
            !reachable(&graph, stage).contains("analyze"),
            "{stage} -> analyze"
        );
    }
}

/// The modules whose result types the report may name.
const REPORT_MAY_NAME_TYPES_OF: [&str; 7] = [
    "aggregate",
    "availability",
    "capacity",
    "catalog",
    "inputs",
    "rules",
    "units",
];

#[test]
fn the_report_names_result_types_only_and_no_stage() {
    let mut bad = Vec::new();
    let mut named = 0;
    for (path, code) in sources(&src().join("report")) {
        for p in crate_paths(&code) {
            let parts: Vec<&str> = p.split("::").collect();
            let module = parts[0];
            let item = parts[parts.len() - 1];
            let is_type = item.chars().next().is_some_and(|c| c.is_ascii_uppercase());
            if !REPORT_MAY_NAME_TYPES_OF.contains(&module) || !is_type {
                bad.push(format!("{}: crate::{p}", path.display()));
            }
            named += 1;
        }
    }
    assert!(
        named > 0,
        "the report names no engine type: is the scan broken?"
    );
    assert!(
        bad.is_empty(),
        "src/report reaches beyond result types:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_scan_sees_what_it_must() {
    let code = "use crate::a::{B, c::D};\nlet x = crate::e::f(1);\nlet y = mycrate::g;";
    assert_eq!(crate_paths(code), ["a::B", "a::c::D", "e::f"]);
    // The report would fail the rule if it called a stage.
    let p = crate_paths("let r = crate::analyze::analyze(&rec);");
    assert_eq!(p, ["analyze::analyze"]);
}
