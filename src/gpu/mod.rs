//! GPU state through NVML, behind a trait so that tests and GPU-less machines use a fake.
//!
//! Every field is optional: a GPU that does not support a query gives `None` (stored as a
//! Parquet null), never 0. The three GPM fields (`sm_active_pct`, `sm_occupancy_pct`,
//! `dram_bw_util_pct`) exist only on GPUs with NVML's GPU Performance Monitoring (Hopper and
//! newer), and only from a device's second poll on: each is computed between two samples.

pub mod fake;
pub mod nvml;

use serde::{Deserialize, Serialize};

/// Static facts about one GPU, learned once at start and stored in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// NVML device index.
    pub index: u32,
    /// Product name as NVML reports it, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: Option<String>,
    /// Device UUID.
    pub uuid: Option<String>,
    /// Board serial number, where NVML exposes it.
    pub serial: Option<String>,
    /// Total memory, bytes.
    pub vram_total_bytes: Option<u64>,
    /// Enforced power limit at start, watts.
    pub power_limit_w: Option<f64>,
}

/// One poll of one GPU. Each field is `None` when NVML did not give it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuMetrics {
    /// Percent of the sample period during which a kernel ran (0-100).
    pub util_pct: Option<u32>,
    /// Percent of the sample period during which device memory was read or written (0-100).
    pub mem_util_pct: Option<u32>,
    /// Power draw, watts.
    pub power_w: Option<f64>,
    /// Enforced power limit, watts.
    pub power_limit_w: Option<f64>,
    /// Memory in use, bytes.
    pub vram_used_bytes: Option<u64>,
    /// Total memory, bytes.
    pub vram_total_bytes: Option<u64>,
    /// Core temperature, degrees Celsius.
    pub temperature_c: Option<u32>,
    /// SM clock, MHz.
    pub sm_clock_mhz: Option<u32>,
    /// The errors of the fields that failed, joined, if any failed for a reason other than
    /// "not supported".
    pub error: Option<String>,
    /// GPM: percent of the time since the previous poll that the SMs had at least one warp
    /// assigned, averaged over all SMs (`NVML_GPM_METRIC_SM_UTIL`, 0-100). Unlike
    /// `util_pct`, a kernel on one SM does not read as 100.
    pub sm_active_pct: Option<f64>,
    /// GPM: warps resident on the SMs as a percent of the most they can hold, averaged over
    /// the time since the previous poll and over all SMs (`NVML_GPM_METRIC_SM_OCCUPANCY`).
    pub sm_occupancy_pct: Option<f64>,
    /// GPM: DRAM bandwidth used since the previous poll, percent of the device's peak
    /// (`NVML_GPM_METRIC_DRAM_BW_UTIL`). Unlike `mem_util_pct` (time memory was busy at
    /// all), this is a share of the bandwidth.
    pub dram_bw_util_pct: Option<f64>,
}

/// Why no GPU source could be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// The NVML library could not be loaded or initialised (no driver, no GPU).
    #[error("NVML unavailable: {0}")]
    Unavailable(String),
    /// A device asked for by index does not exist.
    #[error("GPU {index} not found ({count} present)")]
    NoSuchDevice {
        /// The index asked for.
        index: u32,
        /// How many devices NVML reports.
        count: u32,
    },
}

/// A source of GPU readings: NVML on a real host, a fake in tests.
pub trait GpuSource: Send {
    /// The devices this source polls, in poll order.
    fn devices(&self) -> &[GpuInfo];
    /// The NVIDIA driver version, if known.
    fn driver_version(&self) -> Option<String>;
    /// Reads one device (by position in `devices()`). Never fails as a whole: a failing field
    /// is `None` and its error is noted in `GpuMetrics::error`.
    fn poll(&mut self, position: usize) -> GpuMetrics;
}
