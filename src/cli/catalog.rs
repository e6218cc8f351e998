//! `profile catalog`: the GPUs and models the ceilings are computed from, with their figures
//! and sources, so that an operator can check (and override with `--catalog DIR`) what the
//! analysis assumes.

use super::analyze::load_catalog;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use profile::catalog::CatalogEntries;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `profile catalog`.
#[derive(Debug, clap::Args)]
pub struct CatalogArgs {
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Read gpus.toml and models.toml from this directory instead of the built-in catalog.
    #[arg(long, value_name = "DIR")]
    catalog: Option<PathBuf>,
}

pub fn run(args: CatalogArgs) -> anyhow::Result<ExitCode> {
    let catalog = load_catalog(args.catalog.as_deref())?;
    let entries = catalog.entries();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &entries)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&entries).as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn num(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.prec$}"))
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.force_no_tty();
    t.set_header(header.to_vec());
    t
}

/// The two tables, in file order. Every figure is a catalog estimate.
fn render(e: &CatalogEntries<'_>) -> String {
    let mut s = format!("catalog: {} (all figures are estimates)\n", e.origin);
    let mut t = table(&[
        "gpu",
        "name",
        "arch",
        "FP32 TFLOPs",
        "mem BW GB/s",
        "on-demand $/h",
        "spot $/h",
        "VRAM GB",
        "source",
    ]);
    for g in e.gpus {
        t.add_row(vec![
            g.id.clone(),
            g.name.clone(),
            g.arch.clone().unwrap_or_else(|| "-".into()),
            num(g.fp32_tflops, 1),
            num(g.mem_bw_gbps, 0),
            num(g.on_demand_usd_per_hour, 2),
            num(g.spot_usd_per_hour, 2),
            num(g.vram_gb, 0),
            g.source.clone(),
        ]);
    }
    s.push_str(&format!("{t}\n"));
    let mut t = table(&[
        "model",
        "name",
        "total B",
        "active B",
        "MoE",
        "default dtype",
        "source",
    ]);
    for m in e.models {
        t.add_row(vec![
            m.id.clone(),
            m.name.clone(),
            num(m.total_params_b, 1),
            num(m.active_params_b, 1),
            if m.moe { "yes" } else { "no" }.to_string(),
            m.default_dtype.clone().unwrap_or_else(|| "-".into()),
            m.source.clone(),
        ]);
    }
    s.push_str(&format!("{t}\n"));
    s
}
