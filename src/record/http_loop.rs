//! The scrape thread: one GET per tick, each attempt (failed or not) one row, the parsed
//! samples of a successful one stored with it.

use super::scrape::{Fetched, Scraper};
use super::{run_ticks, Shared, Step};
use crate::promtext::{self, Exposition};
use crate::recording::{RecordingError, ScrapeMeta, ScrapeStatus, ScrapeWriter, WrittenFile};
use std::sync::atomic::Ordering;
use std::sync::PoisonError;

/// Runs until a stop request or the end of the duration; returns the files written.
pub(super) fn run(
    shared: &Shared,
    scraper: &Scraper,
    mut writer: ScrapeWriter,
) -> Result<Vec<WrittenFile>, RecordingError> {
    let mut files = Vec::new();
    let outcome = scrape_loop(shared, scraper, &mut writer, &mut files);
    shared.close_writer(outcome, files, || writer.finish())
}

fn scrape_loop(
    shared: &Shared,
    scraper: &Scraper,
    writer: &mut ScrapeWriter,
    files: &mut Vec<WrittenFile>,
) -> Result<(), RecordingError> {
    run_ticks(shared, |step| match step {
        Step::Rotate => {
            let written = writer.rotate()?;
            shared.add_written(&written);
            files.extend(written);
            Ok(())
        }
        Step::Tick(seq) => {
            let (requested_at, requested_mono) = shared.clock.stamp();
            let fetched = scraper.fetch();
            let (completed_at, completed_mono) = shared.clock.stamp();
            let mut meta = ScrapeMeta {
                seq,
                requested_at,
                completed_at,
                requested_mono,
                completed_mono,
                status: fetched.status,
                http_status: fetched.http_status,
                error: fetched.error.clone(),
                body_bytes: fetched.body.as_ref().map(|b| b.len() as u64),
                sample_count: None,
            };
            store(shared, writer, &mut meta, fetched)
        }
    })
}

/// Parses a fetched body and pushes the row (with its samples when it parsed).
fn store(
    shared: &Shared,
    writer: &mut ScrapeWriter,
    meta: &mut ScrapeMeta,
    fetched: Fetched,
) -> Result<(), RecordingError> {
    let body = match fetched.body {
        Some(b) if fetched.status == ScrapeStatus::Ok => b,
        _ => return push_failed(shared, writer, meta),
    };
    let text = match std::str::from_utf8(&body) {
        Ok(t) => t,
        Err(e) => {
            meta.status = ScrapeStatus::Parse;
            meta.error = Some(format!(
                "body is not valid UTF-8 (at byte {})",
                e.valid_up_to()
            ));
            return push_failed(shared, writer, meta);
        }
    };
    match promtext::parse(text) {
        Ok(exposition) if exposition.sample_count() == 0 => {
            // A 200 that measured nothing is not a good scrape of zero samples.
            meta.status = ScrapeStatus::Empty;
            meta.sample_count = Some(0);
            meta.error = Some(if body.iter().all(u8::is_ascii_whitespace) {
                format!("HTTP 200 with an empty body ({} bytes)", body.len())
            } else {
                format!("HTTP 200 whose body holds no sample ({} bytes)", body.len())
            });
            push_failed(shared, writer, meta)
        }
        Ok(exposition) => {
            let n = exposition.sample_count() as u64;
            meta.sample_count = Some(n);
            writer.push(meta, Some(&exposition))?;
            let c = &shared.counters;
            c.scrapes_ok.fetch_add(1, Ordering::Relaxed);
            c.samples.fetch_add(n, Ordering::Relaxed);
            if c.last_scrape_failed.swap(false, Ordering::Relaxed) {
                shared.events.notify();
            }
            // Only the first scrape that names the model is searched to the end.
            if !shared.model_known.load(Ordering::Relaxed) {
                if let Some(name) = model_name(&exposition) {
                    shared.set_model_name(name)?;
                }
            }
            Ok(())
        }
        Err(e) => {
            meta.status = ScrapeStatus::Parse;
            meta.error = Some(e.to_string());
            push_failed(shared, writer, meta)
        }
    }
}

fn push_failed(
    shared: &Shared,
    writer: &mut ScrapeWriter,
    meta: &ScrapeMeta,
) -> Result<(), RecordingError> {
    writer.push(meta, None)?;
    let c = &shared.counters;
    c.scrapes_failed.fetch_add(1, Ordering::Relaxed);
    {
        let mut failed = c.failed.lock().unwrap_or_else(PoisonError::into_inner);
        let kind = failed.entry(meta.status).or_default();
        kind.0 += 1;
        kind.1.clone_from(&meta.error);
    }
    *c.last_scrape_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(format!(
        "{}: {}",
        meta.status.as_str(),
        meta.error.as_deref().unwrap_or("")
    ));
    if !c.last_scrape_failed.swap(true, Ordering::Relaxed) {
        shared.events.notify();
    }
    Ok(())
}

/// The served model's name: the first `model_name` label on a `vllm:` family.
pub(super) fn model_name<'a>(exposition: &'a Exposition<'_>) -> Option<&'a str> {
    exposition
        .families
        .iter()
        .filter(|f| f.name.starts_with("vllm:"))
        .flat_map(|f| f.samples.iter())
        .flat_map(|s| s.labels.iter())
        .find(|l| l.name == "model_name" && !l.value.is_empty())
        .map(|l| l.value.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promtext::{Family, Format, Label, MetricType, Sample, Suffix};
    use std::borrow::Cow;

    fn family<'a>(name: &'a str, labels: Vec<Label<'a>>) -> Family<'a> {
        Family {
            name,
            metric_type: MetricType::Gauge,
            help: None,
            samples: vec![Sample {
                name,
                suffix: Suffix::None,
                labels,
                value: 1.0,
                timestamp_ms: None,
            }],
        }
    }

    #[test]
    fn model_name_comes_from_a_vllm_family() {
        let label = |n, v: &'static str| Label {
            name: n,
            value: Cow::Borrowed(v),
        };
        let expo = Exposition {
            format: Format::Text004,
            families: vec![
                family("python_info", vec![label("model_name", "not-this")]),
                family(
                    "vllm:num_requests_running",
                    vec![label("engine", "0"), label("model_name", "tiny")],
                ),
            ],
        };
        assert_eq!(model_name(&expo), Some("tiny"));
        let none = Exposition {
            format: Format::Text004,
            families: vec![family("vllm:x", vec![])],
        };
        assert_eq!(model_name(&none), None);
    }
}
