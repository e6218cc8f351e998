//! NVIDIA DCGM exporter fields, mapped to the GPU table's NVML fields, so that an imported
//! recording's `gpu-*.parquet` reads like a recorded one.
//!
//! dcgm-exporter (default counters, `etc/default-counters.csv`) labels each series with
//! `gpu` (the device index), `UUID`, `device`, `modelName` and `Hostname`; memory is in MiB,
//! power in W, clocks in MHz, utilisations in percent. The profiling fields (`DCGM_FI_PROF_*`)
//! are ratios 0-1 and stand in for the utilisations when the device fields are not exported.

use crate::gpu::{GpuInfo, GpuMetrics};
use std::collections::BTreeMap;

/// NVML's utilization.gpu: percent of the period a kernel ran.
pub const GPU_UTIL: &str = "DCGM_FI_DEV_GPU_UTIL";
/// NVML's utilization.memory: percent of the period memory was read or written.
pub const MEM_COPY_UTIL: &str = "DCGM_FI_DEV_MEM_COPY_UTIL";
/// Power draw, W.
pub const POWER_USAGE: &str = "DCGM_FI_DEV_POWER_USAGE";
/// Enforced power limit, W (exported only when configured).
pub const POWER_LIMIT: &str = "DCGM_FI_DEV_POWER_MGMT_LIMIT";
/// Framebuffer memory used, MiB.
pub const FB_USED: &str = "DCGM_FI_DEV_FB_USED";
/// Framebuffer memory free, MiB.
pub const FB_FREE: &str = "DCGM_FI_DEV_FB_FREE";
/// Framebuffer memory reserved by the driver, MiB (newer exporters).
pub const FB_RESERVED: &str = "DCGM_FI_DEV_FB_RESERVED";
/// Core temperature, °C.
pub const GPU_TEMP: &str = "DCGM_FI_DEV_GPU_TEMP";
/// SM clock, MHz.
pub const SM_CLOCK: &str = "DCGM_FI_DEV_SM_CLOCK";
/// Profiling: ratio of time the graphics/compute engine was active (0-1).
pub const PROF_GR_ENGINE_ACTIVE: &str = "DCGM_FI_PROF_GR_ENGINE_ACTIVE";
/// Profiling: ratio of cycles device memory was active (0-1).
pub const PROF_DRAM_ACTIVE: &str = "DCGM_FI_PROF_DRAM_ACTIVE";

/// Every field the importer reads, for the query's name matcher.
pub const FIELDS: [&str; 11] = [
    GPU_UTIL,
    MEM_COPY_UTIL,
    POWER_USAGE,
    POWER_LIMIT,
    FB_USED,
    FB_FREE,
    FB_RESERVED,
    GPU_TEMP,
    SM_CLOCK,
    PROF_GR_ENGINE_ACTIVE,
    PROF_DRAM_ACTIVE,
];

const MIB: f64 = 1024.0 * 1024.0;
const RATIO_TO_PCT: f64 = 100.0;

/// The GPU a DCGM series describes: its `gpu` label, else its `UUID`, as a sortable key.
pub fn gpu_key(labels: &BTreeMap<String, String>) -> Option<(u32, String)> {
    let uuid = labels.get("UUID").cloned().unwrap_or_default();
    match labels.get("gpu").and_then(|g| g.parse().ok()) {
        Some(index) => Some((index, uuid)),
        None if !uuid.is_empty() => Some((u32::MAX, uuid)),
        None => None,
    }
}

/// The static facts the manifest keeps of a GPU, from a series' labels.
pub fn gpu_info(index: u32, labels: &BTreeMap<String, String>) -> GpuInfo {
    GpuInfo {
        index,
        name: labels.get("modelName").cloned(),
        uuid: labels.get("UUID").cloned(),
        serial: None,
        vram_total_bytes: None,
        power_limit_w: None,
    }
}

fn pct(v: f64) -> Option<u32> {
    (v.is_finite() && (0.0..=100.0).contains(&v)).then(|| v.round() as u32)
}

fn mib(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0).then(|| (v * MIB).round() as u64)
}

fn small(v: f64) -> Option<u32> {
    (v.is_finite() && v >= 0.0 && v <= f64::from(u32::MAX)).then(|| v.round() as u32)
}

/// The NVML-shaped reading of one GPU at one step from its fields' values there (field name
/// -> value). A field absent, NaN or out of range is `None`, never 0.
pub fn metrics(fields: &BTreeMap<&str, f64>) -> GpuMetrics {
    let get = |f: &str| fields.get(f).copied().filter(|v| v.is_finite());
    let util = get(GPU_UTIL)
        .and_then(pct)
        .or_else(|| get(PROF_GR_ENGINE_ACTIVE).and_then(|r| pct(r * RATIO_TO_PCT)));
    let mem_util = get(MEM_COPY_UTIL)
        .and_then(pct)
        .or_else(|| get(PROF_DRAM_ACTIVE).and_then(|r| pct(r * RATIO_TO_PCT)));
    let used = get(FB_USED);
    let total = match (used, get(FB_FREE)) {
        (Some(u), Some(f)) => mib(u + f + get(FB_RESERVED).unwrap_or(0.0)),
        _ => None,
    };
    GpuMetrics {
        util_pct: util,
        mem_util_pct: mem_util,
        power_w: get(POWER_USAGE).filter(|w| *w >= 0.0),
        power_limit_w: get(POWER_LIMIT).filter(|w| *w > 0.0),
        vram_used_bytes: used.and_then(mib),
        vram_total_bytes: total,
        temperature_c: get(GPU_TEMP).and_then(small),
        sm_clock_mhz: get(SM_CLOCK).and_then(small),
        error: None,
        // Not imported yet: the exporter's `DCGM_FI_PROF_SM_ACTIVE` and `SM_OCCUPANCY`
        // describe the same quantities as ratios, but whether they match NVML GPM's figures
        // has not been checked, and `DRAM_ACTIVE` already stands in for `mem_util_pct`.
        sm_active_pct: None,
        sm_occupancy_pct: None,
        dram_bw_util_pct: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dcgm_fields_map_to_nvml_units() {
        let f: BTreeMap<&str, f64> = [
            (GPU_UTIL, 87.0),
            (POWER_USAGE, 412.5),
            (FB_USED, 70_000.0),
            (FB_FREE, 10_000.0),
            (FB_RESERVED, 1_000.0),
            (GPU_TEMP, 61.0),
            (SM_CLOCK, 1980.0),
            (PROF_DRAM_ACTIVE, 0.456),
        ]
        .into_iter()
        .collect();
        let m = metrics(&f);
        assert_eq!(m.util_pct, Some(87));
        assert_eq!(
            m.mem_util_pct,
            Some(46),
            "profiling ratio stands in, as a percent"
        );
        assert_eq!(m.power_w, Some(412.5));
        assert_eq!(m.vram_used_bytes, Some(70_000 * 1024 * 1024));
        assert_eq!(m.vram_total_bytes, Some(81_000 * 1024 * 1024));
        assert_eq!((m.temperature_c, m.sm_clock_mhz), (Some(61), Some(1980)));
        assert_eq!(m.power_limit_w, None);
        let nan: BTreeMap<&str, f64> = [(GPU_UTIL, f64::NAN), (FB_USED, -1.0)].into();
        let m = metrics(&nan);
        assert_eq!(
            (m.util_pct, m.vram_used_bytes, m.vram_total_bytes),
            (None, None, None)
        );
    }
}
