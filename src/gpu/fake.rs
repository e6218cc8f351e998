//! A scripted GPU source, so that the recorder and everything downstream can be tested, and
//! run, on machines without an NVIDIA GPU.
//!
//! Each device answers its polls from a script: the n-th poll of a device returns the n-th
//! entry of its script, cycling when the script is shorter than the recording. Entries are
//! plain `GpuMetrics`, so a script can hold `None` fields and error texts as NVML would.
//! The GPM fields are `None` unless scripted, in a full script or with
//! [`FakeGpuSource::with_gpm`], as on a GPU without GPM.

use super::{GpuInfo, GpuMetrics, GpuSource};
use std::time::Duration;

/// One poll's GPM fields for [`FakeGpuSource::with_gpm`]: SM active, SM occupancy and DRAM
/// bandwidth use, percent, in the order of `GpuMetrics`.
pub type GpmReading = [Option<f64>; 3];

/// A GPU source that replays scripted readings.
#[derive(Debug, Clone)]
pub struct FakeGpuSource {
    devices: Vec<GpuInfo>,
    driver_version: Option<String>,
    scripts: Vec<Vec<GpuMetrics>>,
    gpm: Vec<Vec<GpmReading>>,
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
            gpm: vec![Vec::new(); n],
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

    /// Sets the GPM fields of the device at `position`, over whatever else it answers (its
    /// script or plausible readings): the n-th poll gets the n-th reading, cycling. Positions
    /// past the devices are ignored.
    pub fn with_gpm(mut self, position: usize, readings: Vec<GpmReading>) -> FakeGpuSource {
        if let Some(g) = self.gpm.get_mut(position) {
            *g = readings;
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
            sm_active_pct: None,
            sm_occupancy_pct: None,
            dram_bw_util_pct: None,
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
        let mut m = match cyclic(script, this) {
            Some(m) => m.clone(),
            None if script.is_empty() => FakeGpuSource::plausible(this),
            None => GpuMetrics::default(),
        };
        let gpm = self.gpm.get(position).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(&[active, occupancy, dram]) = cyclic(gpm, this) {
            m.sm_active_pct = active;
            m.sm_occupancy_pct = occupancy;
            m.dram_bw_util_pct = dram;
        }
        m
    }
}

/// The `n`-th entry of a script that repeats; `None` for an empty one.
fn cyclic<T>(script: &[T], n: u64) -> Option<&T> {
    if script.is_empty() {
        return None;
    }
    let at = usize::try_from(n % script.len() as u64).ok()?;
    script.get(at)
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

    #[test]
    fn gpm_fields_are_none_unless_scripted() {
        let mut fake = FakeGpuSource::new(vec![
            FakeGpuSource::device(0, "A"),
            FakeGpuSource::device(1, "B"),
        ])
        .with_gpm(1, vec![[None, None, None], [Some(80.0), Some(40.0), None]]);
        let plain = fake.poll(0);
        assert_eq!(
            (
                plain.sm_active_pct,
                plain.sm_occupancy_pct,
                plain.dram_bw_util_pct
            ),
            (None, None, None)
        );
        assert_eq!(fake.poll(1), FakeGpuSource::plausible(0));
        let second = fake.poll(1);
        assert_eq!(second.sm_active_pct, Some(80.0));
        assert_eq!(second.sm_occupancy_pct, Some(40.0));
        assert_eq!(second.dram_bw_util_pct, None);
        // The rest of the reading is the device's plausible one.
        assert_eq!(second.util_pct, FakeGpuSource::plausible(1).util_pct);
        assert_eq!(fake.poll(1).sm_active_pct, None, "cycles");
    }
}
