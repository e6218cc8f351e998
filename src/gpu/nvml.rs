//! NVML through nvml-wrapper: the real GPU source.
//!
//! nvml-wrapper loads `libnvidia-ml.so` at run time, so on a machine without the NVIDIA driver
//! `open` fails cleanly (`GpuError::Unavailable`) and the recorder goes on without GPU data.
//! A query a GPU does not support gives `None` quietly; any other failing query gives `None`
//! and its error text in `GpuMetrics::error`, so a bad reading is visible in the recording.

use super::{GpuError, GpuInfo, GpuMetrics, GpuSource};
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

/// Which GPUs to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuSelection {
    /// Every GPU NVML reports.
    All,
    /// These NVML indices, in this order.
    Indices(Vec<u32>),
}

/// Polls the selected GPUs through NVML.
pub struct NvmlSource {
    nvml: Nvml,
    devices: Vec<GpuInfo>,
    driver_version: Option<String>,
}

impl std::fmt::Debug for NvmlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlSource")
            .field("devices", &self.devices)
            .field("driver_version", &self.driver_version)
            .finish_non_exhaustive()
    }
}

/// Initialises NVML and learns the static facts of every selected GPU.
pub fn open(selection: &GpuSelection) -> Result<NvmlSource, GpuError> {
    let nvml = Nvml::init().map_err(|e| GpuError::Unavailable(e.to_string()))?;
    let count = nvml
        .device_count()
        .map_err(|e| GpuError::Unavailable(format!("counting GPUs: {e}")))?;
    let indices: Vec<u32> = match selection {
        GpuSelection::All => (0..count).collect(),
        GpuSelection::Indices(list) => {
            if let Some(&index) = list.iter().find(|&&i| i >= count) {
                return Err(GpuError::NoSuchDevice { index, count });
            }
            list.clone()
        }
    };
    if indices.is_empty() {
        return Err(GpuError::Unavailable("NVML reports no GPU".to_string()));
    }
    let mut devices = Vec::with_capacity(indices.len());
    for index in indices {
        let device = nvml
            .device_by_index(index)
            .map_err(|e| GpuError::Unavailable(format!("GPU {index}: {e}")))?;
        devices.push(GpuInfo {
            index,
            name: device.name().ok(),
            uuid: device.uuid().ok(),
            serial: device.serial().ok().filter(|s| !s.trim().is_empty()),
            vram_total_bytes: device.memory_info().ok().map(|m| m.total),
            power_limit_w: device.enforced_power_limit().ok().map(milliwatts_to_watts),
        });
    }
    let driver_version = nvml.sys_driver_version().ok();
    Ok(NvmlSource {
        nvml,
        devices,
        driver_version,
    })
}

impl GpuSource for NvmlSource {
    fn devices(&self) -> &[GpuInfo] {
        &self.devices
    }

    fn driver_version(&self) -> Option<String> {
        self.driver_version.clone()
    }

    fn poll(&mut self, position: usize) -> GpuMetrics {
        let Some(info) = self.devices.get(position) else {
            return GpuMetrics {
                error: Some(format!("no GPU at position {position}")),
                ..GpuMetrics::default()
            };
        };
        // The handle is looked up per poll rather than kept, since `Device` borrows `Nvml`;
        // after the first lookup at `open` NVML answers it from its own table.
        match self.nvml.device_by_index(info.index) {
            Ok(device) => read(&device),
            Err(e) => GpuMetrics {
                error: Some(format!("GPU {}: {e}", info.index)),
                ..GpuMetrics::default()
            },
        }
    }
}

/// Reads every field of one poll.
fn read(device: &Device<'_>) -> GpuMetrics {
    let mut errors = Vec::new();
    let utilization = field(device.utilization_rates(), "utilization", &mut errors);
    let memory = field(device.memory_info(), "memory", &mut errors);
    GpuMetrics {
        util_pct: utilization.as_ref().map(|u| u.gpu),
        mem_util_pct: utilization.as_ref().map(|u| u.memory),
        power_w: field(device.power_usage(), "power", &mut errors).map(milliwatts_to_watts),
        power_limit_w: field(device.enforced_power_limit(), "power limit", &mut errors)
            .map(milliwatts_to_watts),
        vram_used_bytes: memory.as_ref().map(|m| m.used),
        vram_total_bytes: memory.as_ref().map(|m| m.total),
        temperature_c: field(
            device.temperature(TemperatureSensor::Gpu),
            "temperature",
            &mut errors,
        ),
        sm_clock_mhz: field(device.clock_info(Clock::SM), "SM clock", &mut errors),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
    }
}

/// A field's value; `NotSupported` is quietly `None`, any other error is noted.
fn field<T>(result: Result<T, NvmlError>, what: &str, errors: &mut Vec<String>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(NvmlError::NotSupported) => None,
        Err(e) => {
            errors.push(format!("{what}: {e}"));
            None
        }
    }
}

fn milliwatts_to_watts(mw: u32) -> f64 {
    f64::from(mw) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_supported_is_quiet_other_errors_are_noted() {
        let mut errors = Vec::new();
        assert_eq!(
            field::<u32>(Err(NvmlError::NotSupported), "power", &mut errors),
            None
        );
        assert!(errors.is_empty());
        assert_eq!(
            field::<u32>(Err(NvmlError::GpuLost), "power", &mut errors),
            None
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("power: "));
        assert_eq!(field(Ok(7u32), "power", &mut errors), Some(7));
    }

    #[test]
    fn power_is_converted_to_watts() {
        assert_eq!(milliwatts_to_watts(350_500), 350.5);
    }

    /// On a machine without the NVIDIA driver, opening fails cleanly; on one with it, every
    /// device is described. Either way nothing panics.
    #[test]
    fn open_fails_cleanly_or_describes_devices() {
        match open(&GpuSelection::All) {
            Ok(source) => assert!(!source.devices().is_empty()),
            Err(e) => assert!(matches!(e, GpuError::Unavailable(_)), "{e}"),
        }
    }

    /// Needs a real GPU: run with `cargo test -- --ignored nvml`.
    #[test]
    #[ignore]
    fn nvml_polls_a_real_gpu() {
        let mut source = open(&GpuSelection::All).unwrap();
        let m = source.poll(0);
        assert!(m.vram_total_bytes.unwrap() > 0, "{m:?}");
        assert!(m.power_w.is_some() || m.error.is_none(), "{m:?}");
        eprintln!(
            "{:?}\n{:?}\n{m:?}",
            source.devices(),
            source.driver_version()
        );
    }
}
