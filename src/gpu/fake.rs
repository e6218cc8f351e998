//! A scripted GPU source, so that the recorder and everything downstream can be tested, and
//! run, on machines without an NVIDIA GPU.
//!
//! Each device answers its polls from a script: the n-th poll of a device returns the n-th
//! entry of its script, cycling when the script is shorter than the recording. Entries are
//! plain `GpuMetrics`, so a script can hold `None` fields and error texts as NVML would.

use super::{GpuInfo, GpuMetrics, GpuSource};
use std::time::Duration;

/// A GPU source that replays scripted readings.
#[derive(Debug, Clone)]
pub struct FakeGpuSource {
    devices: Vec<GpuInfo>,
    driver_version: Option<String>,
    scripts: Vec<Vec<GpuMetrics>>,
    polls: Vec<u64>,
    delay: Duration,
}

impl FakeGpuSource {
    /// A source for `devices`, each answering [`FakeGpuSource::plausible`] readings until
    /// given a script.
    pub fn new(devices: Vec<GpuInfo>) -> FakeGpuSource {
        let n = devices.len();
        FakeGpuSource {
            devices,
            driver_version: Some("fake-1.0".to_string()),
            scripts: vec![Vec::new(); n],
            polls: vec![0; n],
            delay: Duration::ZERO,
        }
    }

    /// A device description with only an index and a name.
    pub fn device(index: u32, name: &str) -> GpuInfo {
        GpuInfo {
            index,
            name: Some(name.to_string()),
            uuid: Some(format!("GPU-fake-{index:04}")),
            serial: None,
            vram_total_bytes: Some(80 * 1024 * 1024 * 1024),
            power_limit_w: Some(700.0),
        }
    }

    /// Replaces the script of the device at `position` (its place in `devices()`).
    /// Positions past the devices are ignored.
    pub fn with_script(mut self, position: usize, script: Vec<GpuMetrics>) -> FakeGpuSource {
        if let Some(s) = self.scripts.get_mut(position) {
            *s = script;
        }
        self
    }

    /// Sets the reported driver version.
    pub fn with_driver_version(mut self, version: Option<String>) -> FakeGpuSource {
        self.driver_version = version;
        self
    }

    /// Makes every poll take `delay`, like a slow NVML call.
    pub fn with_delay(mut self, delay: Duration) -> FakeGpuSource {
        self.delay = delay;
        self
    }

    /// The readings of an unscripted device: every field present, varying with the poll
    /// number `n` so that consecutive rows differ.
    pub fn plausible(n: u64) -> GpuMetrics {
        let wave = (n % 20) as u32;
        GpuMetrics {
            util_pct: Some(40 + wave * 3),
            mem_util_pct: Some(20 + wave),
            power_w: Some(300.0 + f64::from(wave) * 10.0),
            power_limit_w: Some(700.0),
            vram_used_bytes: Some((60 + u64::from(wave)) * 1024 * 1024 * 1024),
            vram_total_bytes: Some(80 * 1024 * 1024 * 1024),
            temperature_c: Some(55 + wave / 2),
            sm_clock_mhz: Some(1980),
            error: None,
        }
    }

    /// How many times the device at `position` was polled.
    pub fn poll_count(&self, position: usize) -> u64 {
        self.polls.get(position).copied().unwrap_or(0)
    }
}

impl GpuSource for FakeGpuSource {
    fn devices(&self) -> &[GpuInfo] {
        &self.devices
    }

    fn driver_version(&self) -> Option<String> {
        self.driver_version.clone()
    }

    fn poll(&mut self, position: usize) -> GpuMetrics {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let Some(n) = self.polls.get_mut(position) else {
            return GpuMetrics {
                error: Some(format!("no GPU at position {position}")),
                ..GpuMetrics::default()
            };
        };
        let this = *n;
        *n += 1;
        let script = self.scripts.get(position).map(Vec::as_slice).unwrap_or(&[]);
        if script.is_empty() {
            return FakeGpuSource::plausible(this);
        }
        let at = usize::try_from(this % script.len() as u64).unwrap_or(0);
        script.get(at).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_its_script_cyclically() {
        let a = GpuMetrics {
            util_pct: Some(10),
            ..GpuMetrics::default()
        };
        let b = GpuMetrics {
            util_pct: None,
            error: Some("GPU lost".into()),
            ..GpuMetrics::default()
        };
        let mut fake = FakeGpuSource::new(vec![
            FakeGpuSource::device(0, "A"),
            FakeGpuSource::device(3, "B"),
        ])
        .with_script(0, vec![a.clone(), b.clone()]);
        assert_eq!(fake.poll(0), a);
        assert_eq!(fake.poll(0), b);
        assert_eq!(fake.poll(0), a);
        assert_eq!(fake.poll_count(0), 3);
        // The unscripted device answers plausible readings.
        assert_eq!(fake.poll(1), FakeGpuSource::plausible(0));
        assert_ne!(FakeGpuSource::plausible(0), FakeGpuSource::plausible(1));
        assert!(fake.poll(5).error.is_some());
        assert_eq!(fake.devices()[1].index, 3);
    }
}
