//! The recordings are queryable as they lie: `scripts/tokens_per_minute.sql` (the DuckDB query
//! `docs/querying.md` shows) run by DuckDB over every shipped recording gives, per target, the
//! tokens the recording saw, counted the way `profile` counts them. DuckDB comes from PyPI
//! (`.ci/run` installs it); without it the test fails.
//! See: issue "Fleets", item 5.

use profile::recording;
use std::path::Path;

/// Σ of `increase()` steps of `vllm:generation_tokens_total` over a recording, per series,
/// through the library's own reader.
fn tokens_seen(dir: &Path) -> f64 {
    let rec = recording::open(dir).unwrap();
    let ids: Vec<u32> = rec
        .series_by_name("vllm:generation_tokens_total")
        .map(|(id, _)| id)
        .collect();
    let mut total = 0.0;
    for id in ids {
        let mut prev: Option<f64> = None;
        for s in &rec.scrapes {
            let Some(v) = s.samples.iter().find(|x| x.series == id).map(|x| x.value) else {
                continue;
            };
            if !v.is_finite() {
                continue;
            }
            if let Some(p) = prev {
                total += if v >= p { v - p } else { v };
            }
            prev = Some(v);
        }
    }
    total
}

#[test]
fn duckdb_counts_tokens_per_target_per_minute_like_profile() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = r#"
import duckdb, json, sys
con = duckdb.connect()
con.execute("SET VARIABLE rec_glob = 'recordings/*'")
rows = con.execute(open('scripts/tokens_per_minute.sql').read()).fetchall()
json.dump([[t, m, tok, tps] for t, m, tok, tps in rows], sys.stdout)
"#;
    let out = std::process::Command::new("python3")
        .current_dir(root)
        .args(["-c", script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "DuckDB query failed (is the duckdb package installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, i64, f64, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    let mut targets: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    targets.dedup();
    assert!(targets.len() >= 3, "{targets:?}");
    for t in targets {
        let by_duckdb: f64 = rows.iter().filter(|r| r.0 == t).map(|r| r.2).sum();
        let by_profile = tokens_seen(&root.join(t));
        assert!(by_profile > 0.0, "{t}");
        assert_eq!(by_duckdb, by_profile, "{t}");
        for r in rows.iter().filter(|r| r.0 == t) {
            assert!(r.3 >= 0.0 && (r.3 - r.2 / 60.0).abs() < 1e-9, "{r:?}");
        }
    }
}
