//! `analyze --html` and `compare --html` in a real browser: every shipped recording's page
//! and one comparison's are opened in headless Chromium, and the DOM after the scripts ran
//! must show every chart drawn, no script error and no blocked request. A screenshot of each
//! goes to `docs/screenshots/`. Chromium is required, not optional: `.ci/run` installs it,
//! and without it these tests fail.

use crate::support::profile;
use profile::report::{Html, Render, Report};
use std::path::{Path, PathBuf};

/// The bound for a 24 h recording's page.
const MAX_HTML_BYTES: usize = 3_000_000;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn recordings() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("recordings"))
        .expect("recordings/ is part of the checkout")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("manifest.json").is_file())
        .map(|e| format!("recordings/{}", e.file_name().to_string_lossy()))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no recording under recordings/");
    names
}

/// Runs `profile ARGS` from the crate root and returns the HTML it wrote to `out`.
fn html_of(args: &[&str], out: &Path) -> String {
    profile()
        .current_dir(root())
        .env("NO_COLOR", "1")
        .args(args)
        .arg("--html")
        .arg(out)
        .assert()
        .success();
    std::fs::read_to_string(out).unwrap()
}

/// The page with every `/* ... */` comment (the embedded licence and banner) and every
/// `<!-- -->` removed.
fn without_comments(html: &str) -> String {
    let mut s = String::new();
    let mut rest = html;
    while let Some(i) = rest.find("/*") {
        s.push_str(&rest[..i]);
        rest = match rest[i..].find("*/") {
            Some(j) => &rest[i + j + 2..],
            None => "",
        };
    }
    s.push_str(rest);
    s
}

/// What every page must hold before a browser opens it: the CSP that blocks any request, no
/// URL outside comments, and a size bound.
fn check_static(name: &str, html: &str) {
    assert!(
        html.contains("content=\"default-src 'none'; script-src 'unsafe-inline'"),
        "{name}: no CSP meta tag"
    );
    let code = without_comments(html);
    for scheme in ["http://", "https://"] {
        // The report may quote the scraped URL (`http://127.0.0.1:8000/metrics`) as text;
        // nothing may load it, which the CSP guarantees. Any other URL is a leak.
        let leaks: Vec<&str> = code
            .match_indices(scheme)
            .map(|(i, _)| &code[i..(i + 40).min(code.len())])
            .filter(|u| !u.starts_with("http://127.0.0.1:"))
            .collect();
        assert!(leaks.is_empty(), "{name}: URLs in the page: {leaks:?}");
    }
    assert!(!html.contains(" src="), "{name}: an element loads a source");
    assert!(html.len() < MAX_HTML_BYTES, "{name}: {} bytes", html.len());
}

fn chromium() -> PathBuf {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file());
    found.expect(
        "chromium is not installed: .ci/run installs it (apt-get install -y chromium); this \
         test does not skip",
    )
}

fn chromium_cmd(profile_dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile_dir.display()));
    c
}

/// The value of `attr` on the element whose opening tag starts with `tag`.
fn attr<'a>(dom: &'a str, tag: &str, attr: &str) -> Option<&'a str> {
    let start = dom.find(tag)?;
    let end = start + dom[start..].find('>')?;
    let el = &dom[start..end];
    let key = format!("{attr}=\"");
    let i = el.find(&key)? + key.len();
    let j = el[i..].find('"')?;
    Some(&el[i..i + j])
}

/// Opens `file` headless; asserts every chart drew and nothing failed; writes the
/// screenshot `docs/screenshots/<name>.png`.
fn check_in_browser(name: &str, file: &Path) {
    let _serial = crate::support::exclusive();
    let url = format!("file://{}", file.display());
    let tmp = tempfile::tempdir().unwrap();
    let out = chromium_cmd(tmp.path())
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "{name}: chromium failed: {out:?}");
    let dom = String::from_utf8_lossy(&out.stdout);
    let charts = dom.matches("class=\"chart\"").count();
    assert!(charts >= 7, "{name}: only {charts} chart containers");
    let status = "<div id=\"profile-status\"";
    assert_eq!(
        attr(&dom, status, "data-errors"),
        Some("0"),
        "{name}: script errors: {}",
        dom.split("<ul id=\"profile-errors\">")
            .nth(1)
            .unwrap_or("")
            .split("</ul>")
            .next()
            .unwrap_or("")
    );
    let n = charts.to_string();
    assert_eq!(
        attr(&dom, status, "data-charts"),
        Some(n.as_str()),
        "{name}"
    );
    assert_eq!(attr(&dom, status, "data-drawn"), Some(n.as_str()), "{name}");
    let drawn = dom
        .match_indices("<div class=\"chart\"")
        .filter(|(i, _)| attr(&dom[*i..], "<div", "data-drawn") == Some("1"))
        .count();
    assert_eq!(drawn, charts, "{name}: a chart did not draw");
    assert!(dom.contains("<canvas"), "{name}: no canvas");

    let shots = root().join("docs/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join(format!("{name}.png"));
    let tmp2 = tempfile::tempdir().unwrap();
    let out = chromium_cmd(tmp2.path())
        .arg("--window-size=1280,2600")
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "{name}: screenshot failed: {out:?}");
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "{name}: not a PNG");
}

#[test]
fn every_recording_and_a_compare_render_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    for rel in recordings() {
        let name = rel.trim_start_matches("recordings/").to_string();
        let file = tmp.path().join(format!("{name}.html"));
        let html = html_of(&["analyze", &rel], &file);
        check_static(&name, &html);
        assert_eq!(
            html,
            html_of(&["analyze", &rel], &tmp.path().join("again.html")),
            "{name}: same recording, same bytes"
        );
        check_in_browser(&name, &file);
    }
    let recs = recordings();
    let (a, b) = (&recs[recs.len() - 1], &recs[0]);
    let file = tmp.path().join("compare.html");
    let html = html_of(&["compare", a, b], &file);
    check_static("compare", &html);
    assert!(html.contains("Timelines (aligned on the first active window)"));
    assert_eq!(
        html,
        html_of(&["compare", a, b], &tmp.path().join("again.html")),
        "compare: same bytes"
    );
    check_in_browser("compare", &file);
}

/// A day of 2 s windows (43 200) stays under 3 MB, and reducing to min/max per column keeps
/// every peak: a single-window spike survives.
#[test]
fn a_day_long_recording_stays_small_and_keeps_its_peaks() {
    let out = profile()
        .current_dir(root())
        .args(["analyze", "-v", "--json", "recordings/vllm-cpu-0.32-load"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let mut r: Report = serde_json::from_slice(&out).unwrap();
    let base = r.windows.rows.clone();
    assert!(!base.is_empty());
    let n = 43_200;
    r.windows.rows = (0..n)
        .map(|i| {
            let mut w = base[i % base.len()].clone();
            w.index = i as u32;
            w.start_s = i as f64 * 2.0;
            w.generation_tokens_per_s = Some(if i == 31_337 { 98_765.0 } else { 100.0 });
            w
        })
        .collect();
    let html = Html.render(&r).unwrap();
    assert!(html.len() < MAX_HTML_BYTES, "{} bytes", html.len());
    assert!(html.contains("98765.0"), "the one-window peak was lost");
    assert_eq!(html, Html.render(&r).unwrap());
}

/// The page's bytes are a reviewed golden snapshot (`tests/snapshots/html__load.snap`), with
/// the embedded uPlot library (checked byte for byte against its file) left out so that the
/// snapshot stays readable.
#[test]
fn golden_html_of_the_load_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let html = html_of(
        &["analyze", "recordings/vllm-cpu-0.32-load"],
        &tmp.path().join("load.html"),
    );
    let lib = include_str!("../src/report/html/uPlot.iife.min.js");
    assert!(
        html.contains(lib),
        "the embedded uPlot differs from its file"
    );
    let page = html.replacen(lib, "/* uPlot.iife.min.js, embedded verbatim */", 1);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("html__load", page));
}
