//! NVML through nvml-wrapper: the real GPU source.
//!
//! nvml-wrapper loads `libnvidia-ml.so` at run time, so on a machine without the NVIDIA driver
//! `open` fails cleanly (`GpuError::Unavailable`) and the recorder goes on without GPU data.
//! A query a GPU does not support gives `None` quietly; any other failing query gives `None`
//! and its error text in `GpuMetrics::error`, so a bad reading is visible in the recording.
//!
//! On GPUs with GPM (GPU Performance Monitoring, Hopper and newer) each poll also takes a GPM
//! sample and computes SM activity, SM occupancy and DRAM bandwidth use between it and the
//! device's previous sample. GPM support is asked once per device at `open`; a device that
//! says no (or whose answer is an error, as from a driver without the GPM functions) never
//! takes a sample, and its three fields stay `None`.

use super::{GpuError, GpuInfo, GpuMetrics, GpuSource};
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::{gpm_metrics_get, GpmSample};
use nvml_wrapper::{Device, Nvml};
use std::sync::OnceLock;
use std::time::Duration;

/// The least time between two GPM samples of one device that gives a meaningful reading.
/// NVML's reference for `nvmlGpmMetricsGet` says the interval between the two
/// `nvmlGpmSampleGet` calls should be above 100 ms, since the counters behind a sample are
/// refreshed internally at about that rate; two samples closer together can hold the same
/// counters and read as 0. (The nvml-wrapper 0.13 sources say nothing about it.) At the
/// recorder's default 250 ms interval every poll takes a sample; see [`gpm_stride`].
pub const GPM_MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// The GPM metrics polled, in the order of [`GpmValues`]' fields.
const GPM_METRICS: [GpmMetricId; 3] = [
    GpmMetricId::SmUtil,
    GpmMetricId::SmOccupancy,
    GpmMetricId::DramBwUtil,
];
/// Their names in error texts, in the same order.
const GPM_NAMES: [&str; 3] = ["SM activity", "SM occupancy", "DRAM bandwidth"];

/// The process's one NVML handle. GPM samples borrow the handle they came from, and a source
/// keeps its devices' previous samples between polls: with the handle in a `static` they can
/// live in the source without a self-referential struct. NVML is a per-process library
/// (`nvmlInit` only counts its callers), so one handle for every source changes nothing for
/// NVML; it is released when the process exits.
static NVML: OnceLock<Nvml> = OnceLock::new();

fn nvml_handle() -> Result<&'static Nvml, GpuError> {
    if let Some(n) = NVML.get() {
        return Ok(n);
    }
    let n = Nvml::init().map_err(|e| GpuError::Unavailable(e.to_string()))?;
    // Two threads opening at once both initialise; the loser's handle is dropped (which
    // only lowers NVML's count of callers) and both use the winner's.
    let _ = NVML.set(n);
    NVML.get()
        .ok_or_else(|| GpuError::Unavailable("NVML handle not kept".to_string()))
}

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
    nvml: &'static Nvml,
    devices: Vec<GpuInfo>,
    driver_version: Option<String>,
    /// Per device, in `devices` order.
    gpm: Vec<Gpm<GpmSample<'static>>>,
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
    let nvml = nvml_handle()?;
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
    let mut gpm = Vec::with_capacity(indices.len());
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
        gpm.push(Gpm::new(device.gpm_support().unwrap_or(false)));
    }
    let driver_version = nvml.sys_driver_version().ok();
    Ok(NvmlSource {
        nvml,
        devices,
        driver_version,
        gpm,
    })
}

impl NvmlSource {
    /// Tells the source how often it is polled, so that GPM samples are never taken closer
    /// together than [`GPM_MIN_SAMPLE_INTERVAL`] (every poll at the default 250 ms).
    pub fn with_poll_interval(mut self, interval: Duration) -> NvmlSource {
        let stride = gpm_stride(interval);
        for g in &mut self.gpm {
            g.stride = stride;
        }
        self
    }

    /// Whether the device at `position` takes GPM samples; `None` past the devices.
    pub fn gpm_supported(&self, position: usize) -> Option<bool> {
        self.gpm.get(position).map(|g| g.supported)
    }
}

/// Every how many polls a device takes a GPM sample, so that two samples are more than
/// [`GPM_MIN_SAMPLE_INTERVAL`] apart at this poll interval: 1 above 100 ms, 2 at 51-100 ms,
/// 3 at 34-50 ms. The polls between samples have no GPM fields. A tick that starts late
/// shortens the gap to the next one; at 250 ms it would have to be 150 ms late to matter.
pub fn gpm_stride(interval: Duration) -> u64 {
    let min = GPM_MIN_SAMPLE_INTERVAL.as_nanos();
    let step = interval.as_nanos().max(1);
    u64::try_from(min / step + 1).unwrap_or(u64::MAX)
}

/// The three GPM readings of one poll.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct GpmValues {
    sm_active_pct: Option<f64>,
    sm_occupancy_pct: Option<f64>,
    dram_bw_util_pct: Option<f64>,
}

/// One device's GPM state: whether it takes samples, and its previous sample. Generic over
/// the sample so that the sequencing is tested without a GPU.
#[derive(Debug)]
struct Gpm<S> {
    supported: bool,
    /// A sample every `stride` polls (see [`gpm_stride`]).
    stride: u64,
    polls: u64,
    previous: Option<S>,
}

impl<S> Gpm<S> {
    fn new(supported: bool) -> Gpm<S> {
        Gpm {
            supported,
            stride: 1,
            polls: 0,
            previous: None,
        }
    }

    /// One poll: takes a sample when one is due and computes the metrics between the
    /// previous sample and it. A device's first sample has nothing to compare with, so its
    /// poll has no GPM fields; a failed sample drops the previous one too, so that a
    /// reading always spans one sampling step.
    fn step(
        &mut self,
        take: impl FnOnce() -> Result<S, NvmlError>,
        between: impl FnOnce(&S, &S) -> Result<Vec<Result<f64, NvmlError>>, NvmlError>,
        errors: &mut Vec<String>,
    ) -> GpmValues {
        if !self.supported {
            return GpmValues::default();
        }
        let due = self.polls % self.stride.max(1) == 0;
        self.polls = self.polls.wrapping_add(1);
        if !due {
            return GpmValues::default();
        }
        let sample = match take() {
            Ok(s) => s,
            Err(NvmlError::NotSupported) => {
                // Said at sampling although not at `open` (a MIG-enabled GPU, for one):
                // stop asking.
                self.supported = false;
                self.previous = None;
                return GpmValues::default();
            }
            Err(e) => {
                errors.push(format!("GPM sample: {e}"));
                self.previous = None;
                return GpmValues::default();
            }
        };
        let values = match self.previous.take() {
            Some(prev) => gpm_values(between(&prev, &sample), errors),
            None => GpmValues::default(),
        };
        self.previous = Some(sample);
        values
    }

    /// Forgets the previous sample (the poll that would have followed it failed).
    fn forget(&mut self) {
        self.previous = None;
    }
}

/// The three metrics from NVML's answer: a failed call leaves all three `None`, a failed
/// metric only its own field, and a value that is not a finite number is noted, not stored.
fn gpm_values(
    answer: Result<Vec<Result<f64, NvmlError>>, NvmlError>,
    errors: &mut Vec<String>,
) -> GpmValues {
    let Some(results) = field(answer, "GPM metrics", errors) else {
        return GpmValues::default();
    };
    let mut out = [None; 3];
    for ((slot, name), r) in out.iter_mut().zip(GPM_NAMES).zip(results) {
        *slot = match field(r, name, errors) {
            Some(v) if v.is_finite() => Some(v),
            Some(v) => {
                errors.push(format!("{name}: NVML gave {v}"));
                None
            }
            None => None,
        };
    }
    let [sm_active_pct, sm_occupancy_pct, dram_bw_util_pct] = out;
    GpmValues {
        sm_active_pct,
        sm_occupancy_pct,
        dram_bw_util_pct,
    }
}

/// Asks NVML for [`GPM_METRICS`] between two samples.
fn gpm_between(
    nvml: &'static Nvml,
    a: &GpmSample<'static>,
    b: &GpmSample<'static>,
) -> Result<Vec<Result<f64, NvmlError>>, NvmlError> {
    let results = gpm_metrics_get(nvml, a, b, &GPM_METRICS)?;
    Ok(results.into_iter().map(|r| r.map(|m| m.value)).collect())
}

impl GpuSource for NvmlSource {
    fn devices(&self) -> &[GpuInfo] {
        &self.devices
    }

    fn driver_version(&self) -> Option<String> {
        self.driver_version.clone()
    }

    fn poll(&mut self, position: usize) -> GpuMetrics {
        let (Some(info), Some(gpm)) = (self.devices.get(position), self.gpm.get_mut(position))
        else {
            return GpuMetrics {
                error: Some(format!("no GPU at position {position}")),
                ..GpuMetrics::default()
            };
        };
        let nvml = self.nvml;
        // The handle is looked up per poll rather than kept; after the first lookup at `open`
        // NVML answers it from its own table.
        match nvml.device_by_index(info.index) {
            Ok(device) => {
                let mut errors = Vec::new();
                let mut m = read(&device, &mut errors);
                let g = gpm.step(
                    || device.gpm_sample(),
                    |a, b| gpm_between(nvml, a, b),
                    &mut errors,
                );
                m.sm_active_pct = g.sm_active_pct;
                m.sm_occupancy_pct = g.sm_occupancy_pct;
                m.dram_bw_util_pct = g.dram_bw_util_pct;
                m.error = (!errors.is_empty()).then(|| errors.join("; "));
                m
            }
            Err(e) => {
                gpm.forget();
                GpuMetrics {
                    error: Some(format!("GPU {}: {e}", info.index)),
                    ..GpuMetrics::default()
                }
            }
        }
    }
}

/// Reads every non-GPM field of one poll; the errors go to `errors`.
fn read(device: &Device<'_>, errors: &mut Vec<String>) -> GpuMetrics {
    let utilization = field(device.utilization_rates(), "utilization", errors);
    let memory = field(device.memory_info(), "memory", errors);
    GpuMetrics {
        util_pct: utilization.as_ref().map(|u| u.gpu),
        mem_util_pct: utilization.as_ref().map(|u| u.memory),
        power_w: field(device.power_usage(), "power", errors).map(milliwatts_to_watts),
        power_limit_w: field(device.enforced_power_limit(), "power limit", errors)
            .map(milliwatts_to_watts),
        vram_used_bytes: memory.as_ref().map(|m| m.used),
        vram_total_bytes: memory.as_ref().map(|m| m.total),
        temperature_c: field(
            device.temperature(TemperatureSensor::Gpu),
            "temperature",
            errors,
        ),
        sm_clock_mhz: field(device.clock_info(Clock::SM), "SM clock", errors),
        ..GpuMetrics::default()
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

    #[test]
    fn gpm_samples_stay_more_than_100_ms_apart() {
        let ms = Duration::from_millis;
        assert_eq!(gpm_stride(ms(250)), 1);
        assert_eq!(gpm_stride(ms(101)), 1);
        assert_eq!(gpm_stride(ms(100)), 2);
        assert_eq!(gpm_stride(ms(50)), 3);
        assert_eq!(gpm_stride(ms(10)), 11);
        for i in [1u64, 7, 33, 50, 99, 100, 101, 250] {
            assert!(
                ms(i) * gpm_stride(ms(i)) as u32 > GPM_MIN_SAMPLE_INTERVAL,
                "{i} ms"
            );
        }
        assert_eq!(gpm_stride(Duration::ZERO), 100_000_001);
    }

    type Answer = Result<Vec<Result<f64, NvmlError>>, NvmlError>;

    /// The metrics "between" samples `a` and `b`: each value is `b - a` plus 10x the metric's
    /// place, so a test sees which two samples were compared.
    fn between(a: &u32, b: &u32) -> Answer {
        Ok((0..3)
            .map(|i| Ok(f64::from(b - a) + 10.0 * f64::from(i)))
            .collect())
    }

    #[test]
    fn gpm_needs_a_previous_sample_and_a_supported_device() {
        let mut errors = Vec::new();
        let mut next = 0u32;
        let mut take = || {
            next += 1;
            Ok(next)
        };
        // First poll: a sample, nothing to compare it with.
        let mut g = Gpm::new(true);
        assert_eq!(
            g.step(&mut take, between, &mut errors),
            GpmValues::default()
        );
        let v = g.step(&mut take, between, &mut errors);
        assert_eq!(
            v,
            GpmValues {
                sm_active_pct: Some(1.0),
                sm_occupancy_pct: Some(11.0),
                dram_bw_util_pct: Some(21.0),
            }
        );
        assert!(errors.is_empty(), "{errors:?}");

        // An unsupported device never takes a sample, and its fields are None, not 0.
        let mut u: Gpm<u32> = Gpm::new(false);
        for _ in 0..3 {
            let v = u.step(
                || panic!("sampled an unsupported GPU"),
                between,
                &mut errors,
            );
            assert_eq!(v, GpmValues::default());
        }
        assert!(errors.is_empty());
    }

    #[test]
    fn gpm_samples_every_stride_polls() {
        let mut errors = Vec::new();
        let mut taken = Vec::new();
        let mut g = Gpm::new(true);
        g.stride = 3;
        let mut got = Vec::new();
        for poll in 0..7u32 {
            let v = g.step(
                || {
                    taken.push(poll);
                    Ok(poll)
                },
                between,
                &mut errors,
            );
            got.push(v.sm_active_pct);
        }
        assert_eq!(taken, vec![0, 3, 6]);
        // Each reading spans the three polls since the previous sample.
        assert_eq!(
            got,
            vec![None, None, None, Some(3.0), None, None, Some(3.0)]
        );
    }

    #[test]
    fn a_failed_gpm_sample_or_metric_is_none_for_that_field_only() {
        let mut errors = Vec::new();
        // One metric failing leaves the other two.
        let v = gpm_values(
            Ok(vec![Ok(55.5), Err(NvmlError::Unknown), Ok(71.25)]),
            &mut errors,
        );
        assert_eq!(
            v,
            GpmValues {
                sm_active_pct: Some(55.5),
                sm_occupancy_pct: None,
                dram_bw_util_pct: Some(71.25),
            }
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("SM occupancy: "), "{errors:?}");
        // Not supported is quiet; a NaN is noted and not stored.
        errors.clear();
        let v = gpm_values(
            Ok(vec![Err(NvmlError::NotSupported), Ok(f64::NAN), Ok(0.0)]),
            &mut errors,
        );
        assert_eq!((v.sm_active_pct, v.sm_occupancy_pct), (None, None));
        assert_eq!(v.dram_bw_util_pct, Some(0.0), "a measured 0 stays 0");
        assert_eq!(errors, vec!["SM occupancy: NVML gave NaN".to_string()]);
        // The whole call failing: all three None, one error.
        errors.clear();
        assert_eq!(
            gpm_values(Err(NvmlError::GpuLost), &mut errors),
            GpmValues::default()
        );
        assert_eq!(errors.len(), 1);

        // A failed sample drops the previous one: the next reading needs two new samples.
        errors.clear();
        let mut g = Gpm::new(true);
        let mut script = vec![Ok(1u32), Err(NvmlError::Unknown), Ok(5), Ok(8)].into_iter();
        let mut got = Vec::new();
        for _ in 0..4 {
            let next = script.next().unwrap();
            got.push(g.step(|| next, between, &mut errors).sm_active_pct);
        }
        assert_eq!(got, vec![None, None, None, Some(3.0)]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("GPM sample: "), "{errors:?}");
        // A sample refused as not supported turns GPM off for the device, quietly.
        errors.clear();
        let mut g: Gpm<u32> = Gpm::new(true);
        g.step(|| Err(NvmlError::NotSupported), between, &mut errors);
        assert!(!g.supported && errors.is_empty());
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

    /// On the device machine: `cargo test --lib gpm_on_a_real_gpu -- --ignored --nocapture`.
    #[test]
    #[ignore = "needs an NVIDIA Hopper GPU with GPM: run on the device machine"]
    fn gpm_on_a_real_gpu() {
        let mut source = open(&GpuSelection::All)
            .unwrap()
            .with_poll_interval(Duration::from_millis(300));
        let nvml = nvml_handle().unwrap();
        let device = nvml.device_by_index(source.devices()[0].index).unwrap();
        let supported = device.gpm_support();
        eprintln!(
            "{:?}: gpm_support() = {supported:?}",
            source.devices()[0].name
        );
        assert_eq!(source.gpm_supported(0), Some(matches!(supported, Ok(true))));
        let first = source.poll(0);
        std::thread::sleep(Duration::from_millis(300));
        let second = source.poll(0);
        eprintln!("first poll: {first:?}\nsecond poll: {second:?}");
        let gpm = |m: &GpuMetrics| [m.sm_active_pct, m.sm_occupancy_pct, m.dram_bw_util_pct];
        // The first poll has no previous sample to compare with.
        assert_eq!(gpm(&first), [None; 3]);
        if matches!(supported, Ok(true)) {
            for v in gpm(&second) {
                let v = v.unwrap_or_else(|| panic!("a GPM field is missing: {second:?}"));
                assert!(v.is_finite() && (0.0..=100.0).contains(&v), "{second:?}");
            }
        } else {
            // Without GPM the fields are None, never 0.
            assert_eq!(gpm(&second), [None; 3]);
        }
    }
}
