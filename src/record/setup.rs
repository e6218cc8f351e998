//! What happens before the first tick: the settings checked, the output directory prepared,
//! and the start manifest filled in. Kept apart from the sampling threads in `mod.rs`.

use super::{scrape, RecordConfig, RecordError};
use crate::gpu::GpuSource;
use crate::recording::Manifest;
use crate::units::WallNs;
use std::path::Path;
use std::time::Duration;

pub(super) fn check_config(c: &RecordConfig) -> Result<(), RecordError> {
    let bad = |m: &str| Err(RecordError::Config(m.to_string()));
    if c.interval.is_zero() {
        return bad("the interval must be above zero");
    }
    if c.rotate.is_zero() {
        return bad("the rotation period must be above zero");
    }
    if c.timeout.is_zero() {
        return bad("the timeout must be above zero");
    }
    if c.max_body_bytes == 0 {
        return bad("the body cap must be above zero");
    }
    if c.duration.is_some_and(|d| d.is_zero()) {
        return bad("the duration must be above zero");
    }
    scrape::check_url(&c.url).map_err(RecordError::Config)
}

/// Creates `dir`, or accepts it when it exists and is empty.
pub(super) fn prepare_dir(dir: &Path) -> Result<(), RecordError> {
    let io_err = |error| RecordError::OutDir {
        path: dir.to_path_buf(),
        error,
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(RecordError::OutDirNotEmpty(dir.to_path_buf()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io_err)
        }
        Err(e) => Err(io_err(e)),
    }
}

pub(super) fn start_manifest(
    config: &RecordConfig,
    started: WallNs,
    vllm_version: Option<String>,
    gpu: Option<&dyn GpuSource>,
) -> Manifest {
    Manifest {
        format_version: crate::recording::schema::FORMAT_VERSION.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at_ns: started.0,
        started_at: started.to_rfc3339_millis(),
        stopped_at_ns: None,
        stop_reason: None,
        target_url: config.url.clone(),
        recorder_host: host_name(),
        interval_ms: millis(config.interval),
        rotate_ms: millis(config.rotate),
        vllm_version,
        model_name: None,
        gpu_note: if gpu.is_some() {
            None
        } else {
            config.gpu_note.clone()
        },
        driver_version: gpu.and_then(GpuSource::driver_version),
        gpus: gpu.map(|g| g.devices().to_vec()).unwrap_or_default(),
        analysis_inputs: config.analysis_inputs.clone(),
        totals: None,
        import: None,
        host: None,
        targets: Vec::new(),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// This machine's name: the kernel's, else `$HOSTNAME`.
fn host_name() -> Option<String> {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    from_kernel
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_hides_the_token() {
        let mut c = RecordConfig::new("http://127.0.0.1:1/metrics");
        c.bearer_token = Some("s3cret".into());
        let text = format!("{c:?}");
        assert!(!text.contains("s3cret"));
        assert!(text.contains("redacted"));
    }

    #[test]
    fn rejects_unusable_settings() {
        let mut c = RecordConfig::new("http://127.0.0.1:1/metrics");
        assert!(check_config(&c).is_ok());
        c.interval = Duration::ZERO;
        assert!(matches!(check_config(&c), Err(RecordError::Config(_))));
        let c = RecordConfig::new("127.0.0.1:8000/metrics");
        assert!(matches!(check_config(&c), Err(RecordError::Config(_))));
    }

    #[test]
    fn refuses_a_non_empty_directory() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(prepare_dir(tmp.path()).is_ok());
        let sub = tmp.path().join("a/b");
        assert!(prepare_dir(&sub).is_ok());
        assert!(sub.is_dir());
        std::fs::write(tmp.path().join("x"), "x").unwrap();
        assert!(matches!(
            prepare_dir(tmp.path()),
            Err(RecordError::OutDirNotEmpty(_))
        ));
    }
}
