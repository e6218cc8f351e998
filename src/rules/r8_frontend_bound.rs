//! R8, frontend-bound (ours): vLLM's API server is one Python process; when it spends about a
//! whole core on HTTP, detokenization and scheduling requests in, the engine behind it waits
//! with free slots and no queue of its own, whatever the GPUs could do.
//!
//! Trigger, per active window: the API server's CPU use (the rate of its
//! `process_cpu_seconds_total`, which the `/metrics` endpoint itself reports) at least
//! [`CPU_CORES_MIN`], running below [`OCCUPANCY_MAX`] of `max_num_seqs`, and fewer than
//! [`WAITING_MAX`] requests waiting in the engine. When the recording sampled a process
//! (`record --pid`), that process's own CPU (read from `/proc`, children left out) replaces the
//! counter, and the finding says so. Standard significance gate. The fix: more
//! API server processes (`--api-server-count`), tokenizing on the client, or more replicas.

use super::model::{Cmp, Fix, FixStep, FlagValue, Measure, RuleId, Unit, WindowCounts};
use super::{gate, tw_mean, Ctx, Draft, Outcome, Tally, NO_MAX_NUM_SEQS};
use crate::aggregate::KeptWindow;

/// CPU use from which the single-threaded API server counts as saturated, cores (ours): Python
/// with its GIL holds one core; 0.9 leaves room for the scrape's own jitter.
pub const CPU_CORES_MIN: f64 = 0.90;
/// Running below this share of the cap: the engine has room (ours; R5's "at the cap" is the
/// other side of it).
pub const OCCUPANCY_MAX: f64 = 0.75;
/// Engine queue shorter than this: requests are not piling up in vLLM's scheduler (the spec's
/// R1 "no backlog" threshold, `waiting < 2`).
pub const WAITING_MAX: f64 = 2.0;
/// Proposed API server count (ours): one more than the single default process.
pub const API_SERVERS_PROPOSED: u64 = 2;
/// R8's confidence (ours): the CPU counter is the API server's own, but part of that CPU may
/// be the engine's when both run in one process (older vLLM).
pub const CONFIDENCE: f64 = 0.75;

const C_DATA: usize = 0;
const C_CPU: usize = 1;
const C_OCCUPANCY: usize = 2;
const C_WAITING: usize = 3;

/// Where R8 reads the API server's CPU from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `process_cpu_seconds_total` of the process serving `/metrics`.
    Counter,
    /// `/proc` readings of the `record --pid` process.
    Host,
}

impl Source {
    fn cpu(self, w: &KeptWindow) -> Option<f64> {
        match self {
            Source::Counter => w.api_server_cpu_cores,
            Source::Host => w.host_cpu_cores,
        }
    }
}

fn judge(w: &KeptWindow, cap: f64, source: Source) -> Result<(), (usize, Option<f64>)> {
    let (Some(cpu), Some(running), Some(waiting)) = (source.cpu(w), w.running_mean, w.waiting_mean)
    else {
        return Err((C_DATA, None));
    };
    if cpu < CPU_CORES_MIN {
        return Err((C_CPU, Some(cpu)));
    }
    if running >= cap * OCCUPANCY_MAX {
        return Err((C_OCCUPANCY, Some(running / cap * 100.0)));
    }
    if waiting >= WAITING_MAX {
        return Err((C_WAITING, Some(waiting)));
    }
    Ok(())
}

/// Evaluates R8 over the active windows.
pub(crate) fn evaluate(ctx: &Ctx<'_>) -> Outcome {
    let Some(cap) = ctx.inputs.max_num_seqs.as_ref() else {
        return Outcome::silent(RuleId::R8, NO_MAX_NUM_SEQS);
    };
    if let Some(r) = ctx.no_load_reason() {
        return Outcome::silent(RuleId::R8, r);
    }
    let capf = f64::from(cap.value);
    let source = if ctx.windows.iter().any(|w| w.host_cpu_cores.is_some()) {
        Source::Host
    } else {
        Source::Counter
    };
    let mut fired: Vec<&KeptWindow> = Vec::new();
    let mut tally = Tally::new(4);
    for w in ctx.active_windows() {
        match judge(w, capf, source) {
            Ok(()) => fired.push(w),
            Err((c, v)) => tally.add(c, v),
        }
    }
    if fired.is_empty() {
        let d = tally.dominant();
        let v = d.as_ref().and_then(|d| d.mean).unwrap_or(f64::NAN);
        let why = match d.map(|d| d.cond) {
            Some(C_CPU) if source == Source::Host => format!(
                "not triggered (the --pid process at {v:.2} cores < {CPU_CORES_MIN:.2}, host \
                 sampling)"
            ),
            Some(C_CPU) => {
                format!("not triggered (API server at {v:.2} cores < {CPU_CORES_MIN:.2})")
            }
            Some(C_OCCUPANCY) => format!(
                "not triggered (running {v:.0}% of max_num_seqs >= {:.0}%: the engine is busy)",
                OCCUPANCY_MAX * 100.0
            ),
            Some(C_WAITING) => {
                format!("not triggered (the engine queues {v:.1} requests: the frontend keeps up)")
            }
            _ if source == Source::Host => {
                "not evaluated (no CPU reading of the --pid process in active windows)".to_string()
            }
            _ => "not evaluated (no process_cpu_seconds_total of the API server)".to_string(),
        };
        return Outcome::silent(RuleId::R8, why);
    }
    let n = fired.len() as u64;
    let cpu = tw_mean(&fired, |w| source.cpu(w)).unwrap_or(0.0);
    let (cpu_name, basis) = match source {
        Source::Counter => ("API server CPU", "API server CPU counter (ours)"),
        Source::Host => (
            "API server CPU (host sampling of the --pid process)",
            "host sampling of the --pid process, children left out (ours)",
        ),
    };
    let running = tw_mean(&fired, |w| w.running_mean).unwrap_or(0.0);
    let mut measures = vec![
        Measure::condition(cpu_name, cpu, Unit::Cores, Cmp::Ge, CPU_CORES_MIN),
        Measure::condition(
            "occupancy of max_num_seqs",
            running / capf * 100.0,
            Unit::Percent,
            Cmp::Lt,
            OCCUPANCY_MAX * 100.0,
        ),
    ];
    if let Some(w) = tw_mean(&fired, |w| w.waiting_mean) {
        measures.push(Measure::condition(
            "requests waiting in the engine",
            w,
            Unit::Requests,
            Cmp::Lt,
            WAITING_MAX,
        ));
    }
    Outcome::fired(Draft {
        rule: RuleId::R8,
        r2_path: None,
        confidence: CONFIDENCE,
        confidence_basis: basis,
        windows: Some(WindowCounts::of(&fired, ctx.evaluable, 0)),
        significance: gate::standard_significance(n, ctx.evaluable),
        measures,
        fix: Fix {
            summary: "Unload the API server".to_string(),
            steps: vec![
                FixStep::flag(
                    "Run more API server processes (vLLM >= 0.10)",
                    "--api-server-count",
                    Some(FlagValue::Count(API_SERVERS_PROPOSED)),
                    Some(FlagValue::Count(1)),
                ),
                FixStep {
                    text: "or send token ids from the client (skip server-side tokenization), \
                           or add replicas behind the router"
                        .to_string(),
                    flag: None,
                    value: None,
                    current: None,
                },
            ],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::{inputs_m, windows, Fixture};

    fn run(cpu: f64, running: f64, waiting: f64) -> Outcome {
        let ws = windows(4, |w| {
            w.api_server_cpu_cores = Some(cpu);
            w.running_mean = Some(running);
            w.running_last = Some(running);
            w.waiting_mean = Some(waiting);
        });
        Fixture::new(ws, inputs_m(16)).run(evaluate)
    }

    #[test]
    fn fires_at_the_thresholds_and_stays_silent_past_them() {
        let f = run(0.90, 8.0, 0.0).finding.unwrap();
        assert_eq!(f.fix.steps[0].flag.as_deref(), Some("--api-server-count"));
        assert!(run(0.89, 8.0, 0.0)
            .not_fired
            .unwrap()
            .reason
            .contains("0.89 cores"));
        // 12 of 16 is 75%: the engine is busy.
        assert!(run(1.0, 12.0, 0.0)
            .not_fired
            .unwrap()
            .reason
            .contains("busy"));
        assert!(run(1.0, 8.0, 2.0)
            .not_fired
            .unwrap()
            .reason
            .contains("queues"));
    }

    /// With host sampling, the sampled process's CPU decides and the finding names it; the
    /// counter is ignored even where it alone would fire.
    #[test]
    fn host_sampled_cpu_replaces_the_counter() {
        let host = |cpu: f64| {
            let ws = windows(4, |w| {
                w.api_server_cpu_cores = Some(1.0);
                w.host_cpu_cores = Some(cpu);
                w.running_mean = Some(8.0);
                w.running_last = Some(8.0);
                w.waiting_mean = Some(0.0);
            });
            Fixture::new(ws, inputs_m(16)).run(evaluate)
        };
        let f = host(0.95).finding.unwrap();
        assert!(
            f.measures[0].name.contains("host sampling"),
            "{:?}",
            f.measures
        );
        assert!(f.confidence_basis.contains("--pid"));
        let silent = host(0.5).not_fired.unwrap().reason;
        assert!(silent.contains("--pid process at 0.50 cores"), "{silent}");
    }
}
