//! `profile diagnose`: measure, analyse, and — in a loop — compare each new measurement with a
//! baseline, so that every change an operator makes to the server is judged by what it did
//! (spec "Closed-loop delta"; Design, "Delta, not snapshot").
//!
//! The loop is an engine function, [`run`], that never touches a process, a terminal or a
//! clock: the measurement is injected ([`Measure`]: the CLI records live and analyses; tests
//! hand back prepared reports), the operator's answers come from a [`BufRead`], and results
//! and prompts go to two [`Write`]rs. So the same code runs at a terminal, under a script
//! piping answers in, and in unit tests.
//!
//! The loop, as the spec has it:
//! - iteration 0 is measured and printed; it is the first baseline;
//! - then, each round: wait for the operator to apply one change and press Enter (`q` or end
//!   of input stops), measure again for the same duration, print the report and its
//!   comparison with the baseline;
//! - Better or Plateau: the new measurement becomes the baseline ("each iteration reports
//!   what changed since the last"). A slow drift of Plateaus would then go unseen, so from the
//!   second round on a one-line comparison with iteration 0 is printed as well;
//! - Worse: the loop pauses and asks `[r]evert or [c]ontinue`. Continue makes the degraded
//!   state the new baseline; revert keeps the baseline (the operator undoes the change by hand
//!   before pressing Enter again). `q` or end of input stops.
//!
//! Loop hygiene: when the KV-capacity group's primary alternates R5 (raise `--max-num-seqs`)
//! and R2 (lower it) over three iterations, the loop says it is ping-ponging and where the
//! balance lies (`pingpong`).
//!
//! Answers are whole lines, compared case-insensitively; unknown answers to the revert
//! question are asked again. End of input never blocks: it ends the loop, so a script that
//! pipes fewer answers than rounds simply stops early.

mod pingpong;

pub use pingpong::{PingPong, Step};

use crate::compare::{compare, render_text as compare_text, CompareConfig, CompareError};
use crate::compare::{Comparison, Direction};
use crate::report::{render_json, render_text, Report};
use serde::Serialize;
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// A failure to measure, from whatever the [`Measure`] does (record, read, analyse).
pub type MeasureError = Box<dyn std::error::Error + Send + Sync>;

/// One measurement: where it was recorded and what the analysis said.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The recording directory.
    pub dir: PathBuf,
    /// Its analysis.
    pub report: Report,
    /// The operator interrupted the measurement (Ctrl-C): the loop ends after printing it.
    pub interrupted: bool,
}

/// Takes one measurement. The CLI records the server live for the configured duration and
/// analyses the recording; tests return prepared reports.
pub trait Measure {
    /// Measures iteration `iteration` (0 for the first).
    fn measure(&mut self, iteration: u32) -> Result<Measured, MeasureError>;
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tables, with ANSI colour when `color`.
    Text {
        /// Add colour (only for a terminal).
        color: bool,
    },
    /// Without the loop, the report exactly as `profile analyze --json` prints it; with the
    /// loop, one compact JSON object per iteration and line ([`IterationEvent`]).
    Json,
}

/// What `profile diagnose` was asked for, as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnoseConfig {
    /// Keep measuring after the first report, comparing each with the baseline.
    pub repeat: bool,
    /// Output format.
    pub format: Format,
    /// Options of each comparison.
    pub compare: CompareConfig,
    /// Write each answer after its prompt: when answers come from a script rather than a
    /// terminal, nothing else shows them in the log.
    pub echo_answers: bool,
}

/// Where the loop reads and writes.
pub struct Io<'a> {
    /// The operator's answers, one per line.
    pub answers: &'a mut dyn BufRead,
    /// Reports and comparisons.
    pub out: &'a mut dyn Write,
    /// Prompts and loop status (stderr at a terminal, so `> file` keeps only results).
    pub prompts: &'a mut dyn Write,
}

/// What the operator decided after a Worse result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Better or Plateau: the new measurement became the baseline without a question.
    Adopted,
    /// Worse, and the operator chose to continue from it: it became the baseline.
    Continue,
    /// Worse, and the operator will revert by hand: the baseline stayed.
    Revert,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Not looping: one measurement.
    Once,
    /// The operator answered `q`.
    Quit,
    /// The answers ran out.
    EndOfInput,
    /// A measurement was interrupted.
    Interrupted,
}

/// One iteration, as the loop remembers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IterationSummary {
    /// 0, 1, 2, ...
    pub iteration: u32,
    /// Its recording.
    pub dir: PathBuf,
    /// The iteration it was compared with; `None` for iteration 0.
    pub baseline: Option<u32>,
    /// The comparison's direction.
    pub direction: Option<Direction>,
    /// What happened to the baseline; `None` for iteration 0, for an interrupted
    /// measurement, and when the loop ended at the revert question (the baseline stayed).
    pub decision: Option<Decision>,
}

/// What the loop did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Every iteration measured, in order.
    pub iterations: Vec<IterationSummary>,
    /// The baseline when the loop ended.
    pub baseline: u32,
    /// Why it ended.
    pub end: EndReason,
    /// The last fix ping-pong detected, if any.
    pub ping_pong: Option<PingPong>,
}

/// One line of `--loop --json` output.
#[derive(Debug, Serialize)]
pub struct IterationEvent<'a> {
    /// The iteration.
    pub iteration: u32,
    /// Its recording directory.
    pub dir: String,
    /// Its analysis.
    pub report: &'a Report,
    /// Its comparison with the baseline (absent for iteration 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<&'a Comparison>,
    /// Its comparison with iteration 0, when the baseline had moved on from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_first: Option<&'a Comparison>,
    /// What happened to the baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// A fix ping-pong ending at this iteration, with its balance point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_pong: Option<&'a PingPong>,
}

/// Why the loop stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiagnoseError {
    /// A measurement failed.
    #[error("measuring iteration {iteration}")]
    Measure {
        /// The iteration.
        iteration: u32,
        /// What failed.
        #[source]
        source: MeasureError,
    },
    /// The new measurement cannot be compared with the baseline (another model or GPU).
    #[error("comparing iteration {iteration} with its baseline, iteration {baseline}")]
    Compare {
        /// The new iteration.
        iteration: u32,
        /// The baseline.
        baseline: u32,
        /// Why not.
        #[source]
        source: CompareError,
    },
    /// Reading an answer or writing output failed.
    #[error("reading answers or writing output")]
    Io(#[from] std::io::Error),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] crate::report::RenderError),
}

/// An operator's answer to a prompt.
enum Answer {
    Line(String),
    Eof,
}

/// Asks `question` and reads one line.
fn ask(io: &mut Io<'_>, question: &str, echo: bool) -> Result<Answer, std::io::Error> {
    write!(io.prompts, "{question}")?;
    io.prompts.flush()?;
    let mut line = String::new();
    if io.answers.read_line(&mut line)? == 0 {
        writeln!(io.prompts, "(end of input)")?;
        return Ok(Answer::Eof);
    }
    let answer = line.trim().to_ascii_lowercase();
    if echo {
        writeln!(io.prompts, "{answer}")?;
    }
    Ok(Answer::Line(answer))
}

fn is_quit(a: &str) -> bool {
    matches!(a, "q" | "quit")
}

/// Measures once, or loops when `config.repeat`: see the module header.
pub fn run(
    measure: &mut dyn Measure,
    io: &mut Io<'_>,
    config: &DiagnoseConfig,
) -> Result<Summary, DiagnoseError> {
    let first = measure
        .measure(0)
        .map_err(|source| DiagnoseError::Measure {
            iteration: 0,
            source,
        })?;
    let mut summary = Summary {
        iterations: vec![IterationSummary {
            iteration: 0,
            dir: first.dir.clone(),
            baseline: None,
            direction: None,
            decision: None,
        }],
        baseline: 0,
        end: EndReason::Once,
        ping_pong: None,
    };
    if !config.repeat {
        match config.format {
            Format::Json => io.out.write_all(render_json(&first.report)?.as_bytes())?,
            Format::Text { color } => print_report(io, &first, 0, color)?,
        }
        io.out.flush()?;
        return Ok(summary);
    }
    emit(io, config, 0, &first, None, None, None)?;
    let mut steps = vec![Step::of(0, &first.report)];
    if first.interrupted {
        summary.end = EndReason::Interrupted;
        return finish(io, summary);
    }
    let origin = first.report.clone();
    let mut baseline = (0u32, first.report);
    let mut iteration = 0u32;
    loop {
        let question = format!(
            "Apply one change to the server, then press Enter to measure iteration {} \
             against iteration {} (q to quit): ",
            iteration + 1,
            baseline.0
        );
        match ask(io, &question, config.echo_answers)? {
            Answer::Eof => {
                summary.end = EndReason::EndOfInput;
                break;
            }
            Answer::Line(a) if is_quit(&a) => {
                summary.end = EndReason::Quit;
                break;
            }
            Answer::Line(_) => {}
        }
        iteration += 1;
        let now = measure
            .measure(iteration)
            .map_err(|source| DiagnoseError::Measure { iteration, source })?;
        let cmp = compare(&baseline.1, &now.report, &config.compare).map_err(|source| {
            DiagnoseError::Compare {
                iteration,
                baseline: baseline.0,
                source,
            }
        })?;
        // Against iteration 0 too, once the baseline has moved on: Plateau after Plateau
        // adopts each step, and only this line shows where they add up to.
        let since_first = (baseline.0 != 0)
            .then(|| compare(&origin, &now.report, &config.compare).ok())
            .flatten();
        let direction = cmp.verdict.direction;
        steps.push(Step::of(iteration, &now.report));
        let ping_pong = pingpong::detect(&steps);
        let mut record = IterationSummary {
            iteration,
            dir: now.dir.clone(),
            baseline: Some(baseline.0),
            direction: Some(direction),
            decision: None,
        };
        if config.format != Format::Json {
            emit(
                io,
                config,
                iteration,
                &now,
                Some(&cmp),
                since_first.as_ref(),
                None,
            )?;
            if let Some(p) = &ping_pong {
                writeln!(io.out, "{}", pingpong::describe(p))?;
            }
        }
        // An interrupted measurement is partial: printed, never adopted.
        let decided: Result<Decision, EndReason> = if now.interrupted {
            Err(EndReason::Interrupted)
        } else if direction == Direction::Worse {
            ask_revert(io, baseline.0, config.echo_answers)?
        } else {
            Ok(Decision::Adopted)
        };
        record.decision = decided.ok();
        if config.format == Format::Json {
            let since = since_first.as_ref();
            emit_event(
                io,
                iteration,
                &now,
                (Some(&cmp), since),
                record.decision,
                ping_pong.as_ref(),
            )?;
        }
        summary.iterations.push(record);
        if ping_pong.is_some() {
            summary.ping_pong = ping_pong;
        }
        match decided {
            Ok(Decision::Revert) => writeln!(
                io.prompts,
                "Baseline stays iteration {}: undo the change on the server before the next \
                 measurement.",
                baseline.0
            )?,
            Ok(_) => {
                baseline = (iteration, now.report);
                writeln!(io.prompts, "Baseline is now iteration {iteration}.")?;
            }
            Err(end) => {
                summary.end = end;
                break;
            }
        }
    }
    summary.baseline = baseline.0;
    finish(io, summary)
}

/// Asks `[r]evert or [c]ontinue` until it gets one of them, or `q`, or the end of input.
fn ask_revert(
    io: &mut Io<'_>,
    baseline: u32,
    echo: bool,
) -> Result<Result<Decision, EndReason>, std::io::Error> {
    let question = format!(
        "Worse than iteration {baseline}. [r]evert (keep iteration {baseline} as the baseline; \
         undo the change by hand) or [c]ontinue (make this the baseline)? "
    );
    loop {
        match ask(io, &question, echo)? {
            Answer::Eof => return Ok(Err(EndReason::EndOfInput)),
            Answer::Line(a) => match a.as_str() {
                "r" | "revert" => return Ok(Ok(Decision::Revert)),
                "c" | "continue" => return Ok(Ok(Decision::Continue)),
                q if is_quit(q) => return Ok(Err(EndReason::Quit)),
                other => writeln!(io.prompts, "{other:?}: answer r, c or q.")?,
            },
        }
    }
}

fn finish(io: &mut Io<'_>, summary: Summary) -> Result<Summary, DiagnoseError> {
    let runs = summary.iterations.len();
    writeln!(
        io.prompts,
        "Done: {runs} measurement{}; the baseline is iteration {}.",
        if runs == 1 { "" } else { "s" },
        summary.baseline
    )?;
    io.out.flush()?;
    Ok(summary)
}

fn print_report(io: &mut Io<'_>, m: &Measured, i: u32, color: bool) -> std::io::Result<()> {
    writeln!(io.out, "== iteration {i}: {} ==", m.dir.display())?;
    io.out.write_all(render_text(&m.report, color).as_bytes())
}

/// One `--loop --json` line.
fn emit_event(
    io: &mut Io<'_>,
    i: u32,
    m: &Measured,
    (cmp, since_first): (Option<&Comparison>, Option<&Comparison>),
    decision: Option<Decision>,
    ping_pong: Option<&PingPong>,
) -> Result<(), DiagnoseError> {
    let event = IterationEvent {
        iteration: i,
        dir: m.dir.display().to_string(),
        report: &m.report,
        comparison: cmp,
        since_first,
        decision,
        ping_pong,
    };
    serde_json::to_writer(&mut *io.out, &event).map_err(crate::report::RenderError::from)?;
    writeln!(io.out)?;
    io.out.flush()?;
    Ok(())
}

/// Prints one iteration: its report, and its comparisons.
fn emit(
    io: &mut Io<'_>,
    config: &DiagnoseConfig,
    i: u32,
    m: &Measured,
    cmp: Option<&Comparison>,
    since_first: Option<&Comparison>,
    decision: Option<Decision>,
) -> Result<(), DiagnoseError> {
    match config.format {
        Format::Json => emit_event(io, i, m, (cmp, since_first), decision, None)?,
        Format::Text { color } => {
            print_report(io, m, i, color)?;
            if let Some(c) = cmp {
                writeln!(io.out, "== iteration {i} vs its baseline ==")?;
                io.out.write_all(compare_text(c, color).as_bytes())?;
            }
            if let Some(s) = since_first {
                writeln!(
                    io.out,
                    "since iteration 0: {} ({})",
                    s.verdict.direction.label(),
                    s.verdict.reason
                )?;
            }
        }
    }
    io.out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::testutil::report_with;
    use std::collections::VecDeque;

    /// Hands out prepared reports (efficiency %, one per iteration); an exhausted queue fails.
    struct Fake {
        effs: VecDeque<f64>,
        interrupt_at: Option<u32>,
        asked: Vec<u32>,
        /// The KV-capacity group's primary, running mean and KV peak per iteration.
        kv: VecDeque<(crate::rules::RuleId, f64, f64)>,
    }

    impl Fake {
        fn new(effs: &[f64]) -> Fake {
            Fake {
                effs: effs.iter().copied().collect(),
                interrupt_at: None,
                asked: vec![],
                kv: VecDeque::new(),
            }
        }
    }

    impl Measure for Fake {
        fn measure(&mut self, iteration: u32) -> Result<Measured, MeasureError> {
            self.asked.push(iteration);
            let eff = self.effs.pop_front().ok_or("the server went away")?;
            let mut report = report_with(Some(eff), Some(100.0), Some(100.0));
            if let Some((rule, running, kv)) = self.kv.pop_front() {
                report.metrics.running_mean = Some(running);
                report.metrics.kv_cache_peak_pct = Some(kv);
                report.diagnosis = Some(crate::rules::Diagnosis {
                    windows_total: 10,
                    windows_evaluable: 10,
                    windows_active: 10,
                    findings: vec![],
                    groups: vec![crate::rules::IssueGroup {
                        root_cause: crate::rules::RootCause::KvCapacity,
                        title: "KV".to_string(),
                        primary: rule,
                        supporting: vec![],
                        score: 3.0,
                    }],
                    not_fired: vec![],
                });
            }
            Ok(Measured {
                dir: PathBuf::from(format!("iter-{iteration}")),
                report,
                interrupted: self.interrupt_at == Some(iteration),
            })
        }
    }

    struct Run {
        summary: Result<Summary, DiagnoseError>,
        out: String,
        prompts: String,
        unread: String,
    }

    fn drive(fake: &mut Fake, answers: &str, repeat: bool, format: Format) -> Run {
        let mut answers = std::io::Cursor::new(answers.as_bytes().to_vec());
        let (mut out, mut prompts) = (Vec::new(), Vec::new());
        let config = DiagnoseConfig {
            repeat,
            format,
            compare: CompareConfig::default(),
            echo_answers: true,
        };
        let summary = run(
            fake,
            &mut Io {
                answers: &mut answers,
                out: &mut out,
                prompts: &mut prompts,
            },
            &config,
        );
        let pos = answers.position() as usize;
        let all = answers.into_inner();
        Run {
            summary,
            out: String::from_utf8(out).unwrap(),
            prompts: String::from_utf8(prompts).unwrap(),
            unread: String::from_utf8(all[pos..].to_vec()).unwrap(),
        }
    }

    const TEXT: Format = Format::Text { color: false };

    fn directions(s: &Summary) -> Vec<(Option<Direction>, Option<Decision>, Option<u32>)> {
        s.iterations
            .iter()
            .map(|i| (i.direction, i.decision, i.baseline))
            .collect()
    }

    #[test]
    fn the_loop_names_an_r5_r2_ping_pong_and_its_balance_point() {
        use crate::rules::RuleId::{R2, R5};
        let mut fake = Fake::new(&[50.0, 50.0, 50.0, 50.0]);
        fake.kv = [
            (R5, 8.0, 40.0),
            (R2, 16.0, 96.0),
            (R5, 8.0, 40.0),
            (R2, 16.0, 96.0),
        ]
        .into_iter()
        .collect();
        let r = drive(&mut fake, "\n\n\n", true, TEXT);
        let s = r.summary.unwrap();
        let lines: Vec<&str> = r
            .out
            .lines()
            .filter(|l| l.starts_with("fix ping-pong"))
            .collect();
        // Not after iteration 1 (one fix and its reversal), but after 2 and again after 3.
        assert_eq!(lines.len(), 2, "{}", r.out);
        assert!(lines[0].contains("R5 asked to raise --max-num-seqs (iterations 0, 2)"));
        assert!(lines[1].contains("(iterations 1, 3)"), "{}", lines[1]);
        assert!(lines[0].contains("--max-num-seqs 13"), "{}", lines[0]);
        let p = s.ping_pong.unwrap();
        assert_eq!((p.raise_at, p.lower_at), (vec![0, 2], vec![1, 3]));
    }

    #[test]
    fn without_the_loop_it_measures_once_and_reads_nothing() {
        let mut fake = Fake::new(&[40.0, 50.0]);
        let r = drive(&mut fake, "c\n", false, TEXT);
        let s = r.summary.unwrap();
        assert_eq!((s.iterations.len(), s.end), (1, EndReason::Once));
        assert_eq!(fake.asked, vec![0]);
        assert_eq!(r.unread, "c\n");
        assert!(r.out.starts_with("== iteration 0: iter-0 =="), "{}", r.out);
        assert!(r.prompts.is_empty(), "{}", r.prompts);
        // JSON without the loop is the analyze report itself.
        let mut fake = Fake::new(&[40.0]);
        let r = drive(&mut fake, "", false, Format::Json);
        let back: Report = serde_json::from_str(&r.out).unwrap();
        assert_eq!(back.ceiling.efficiency.pct(), Some(40.0));
    }

    #[test]
    fn better_adopts_worse_asks_and_continue_adopts_the_degraded_state() {
        // 40 -> 45 Better; 45 -> 30 Worse, continue; 30 -> 32 Plateau (against 30, not 45).
        let mut fake = Fake::new(&[40.0, 45.0, 30.0, 32.0]);
        let r = drive(&mut fake, "\n\nc\n\nq\n", true, TEXT);
        let s = r.summary.unwrap();
        assert_eq!(
            directions(&s),
            vec![
                (None, None, None),
                (Some(Direction::Better), Some(Decision::Adopted), Some(0)),
                (Some(Direction::Worse), Some(Decision::Continue), Some(1)),
                (Some(Direction::Plateau), Some(Decision::Adopted), Some(2)),
            ]
        );
        assert_eq!((s.baseline, s.end), (3, EndReason::Quit));
        assert_eq!(r.unread, "");
        assert!(r
            .out
            .contains("direction: BETTER (efficiency): efficiency +5.0 pp"));
        assert!(r
            .out
            .contains("direction: WORSE (efficiency): efficiency -15.0 pp"));
        assert!(r
            .out
            .contains("direction: PLATEAU (efficiency): efficiency +2.0 pp"));
        // Against iteration 0 once the baseline moved: 40 -> 32 is Worse overall.
        assert!(
            r.out
                .contains("since iteration 0: WORSE (efficiency -8.0 pp"),
            "{}",
            r.out
        );
        assert_eq!(r.prompts.matches("[r]evert").count(), 1, "{}", r.prompts);
        assert!(r.prompts.contains("Baseline is now iteration 2."));
    }

    #[test]
    fn revert_keeps_the_baseline_for_the_next_comparison() {
        // 40 -> 30 Worse, revert; the next one (41) is compared with 40, not 30: Plateau.
        let mut fake = Fake::new(&[40.0, 30.0, 41.0]);
        let r = drive(&mut fake, "\nr\n\n", true, TEXT);
        let s = r.summary.unwrap();
        assert_eq!(
            directions(&s)[1..],
            [
                (Some(Direction::Worse), Some(Decision::Revert), Some(0)),
                (Some(Direction::Plateau), Some(Decision::Adopted), Some(0)),
            ]
        );
        assert_eq!((s.baseline, s.end), (2, EndReason::EndOfInput));
        assert!(
            r.prompts.contains("Baseline stays iteration 0"),
            "{}",
            r.prompts
        );
        assert!(
            !r.out.contains("since iteration 0"),
            "the baseline never moved before"
        );
    }

    #[test]
    fn unknown_answers_are_asked_again_and_end_of_input_never_blocks() {
        let mut fake = Fake::new(&[40.0, 30.0, 50.0]);
        let r = drive(&mut fake, "\nmaybe\n", true, TEXT);
        let s = r.summary.unwrap();
        assert_eq!(directions(&s)[1], (Some(Direction::Worse), None, Some(0)));
        assert_eq!((s.baseline, s.end), (0, EndReason::EndOfInput));
        assert!(
            r.prompts.contains("\"maybe\": answer r, c or q."),
            "{}",
            r.prompts
        );
        assert_eq!(r.prompts.matches("[r]evert").count(), 2);
        assert_eq!(fake.asked, vec![0, 1], "no third measurement");
        // `q` at the first prompt: one measurement.
        let mut fake = Fake::new(&[40.0, 30.0]);
        let s = drive(&mut fake, "Q\n", true, TEXT).summary.unwrap();
        assert_eq!((s.iterations.len(), s.end), (1, EndReason::Quit));
    }

    #[test]
    fn loop_json_is_one_object_per_iteration_and_line() {
        let mut fake = Fake::new(&[40.0, 45.0, 30.0]);
        let r = drive(&mut fake, "\n\nr\n", true, Format::Json);
        r.summary.unwrap();
        let lines: Vec<serde_json::Value> = r
            .out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{}", r.out);
        assert_eq!(lines[0]["iteration"], 0);
        assert!(lines[0].get("comparison").is_none());
        assert_eq!(lines[1]["comparison"]["verdict"]["direction"], "better");
        assert_eq!(lines[1]["decision"], "adopted");
        assert_eq!(lines[2]["comparison"]["verdict"]["direction"], "worse");
        assert_eq!(lines[2]["decision"], "revert");
        assert_eq!(lines[2]["since_first"]["verdict"]["direction"], "worse");
    }

    #[test]
    fn an_interrupted_measurement_ends_the_loop_unadopted() {
        let mut fake = Fake::new(&[40.0, 60.0, 70.0]);
        fake.interrupt_at = Some(1);
        let r = drive(&mut fake, "\n\n\n", true, TEXT);
        let s = r.summary.unwrap();
        assert_eq!(directions(&s)[1], (Some(Direction::Better), None, Some(0)));
        assert_eq!((s.baseline, s.end), (0, EndReason::Interrupted));
        assert_eq!(fake.asked, vec![0, 1]);
    }

    #[test]
    fn a_failed_measurement_names_its_iteration() {
        let mut fake = Fake::new(&[40.0]);
        let err = drive(&mut fake, "\n", true, TEXT).summary.unwrap_err();
        assert!(
            matches!(err, DiagnoseError::Measure { iteration: 1, .. }),
            "{err}"
        );
        let mut other = Fake::new(&[40.0, 40.0]);
        let mut answers = std::io::Cursor::new(b"\n".to_vec());
        struct Renamed<'a>(&'a mut Fake);
        impl Measure for Renamed<'_> {
            fn measure(&mut self, i: u32) -> Result<Measured, MeasureError> {
                let mut m = self.0.measure(i)?;
                m.report.recording.model_name = Some(format!("model-{i}"));
                Ok(m)
            }
        }
        let (mut out, mut prompts) = (Vec::new(), Vec::new());
        let config = DiagnoseConfig {
            repeat: true,
            format: TEXT,
            compare: CompareConfig::default(),
            echo_answers: false,
        };
        let mut io = Io {
            answers: &mut answers,
            out: &mut out,
            prompts: &mut prompts,
        };
        let err = run(&mut Renamed(&mut other), &mut io, &config).unwrap_err();
        assert!(
            matches!(
                err,
                DiagnoseError::Compare {
                    iteration: 1,
                    baseline: 0,
                    ..
                }
            ),
            "{err}"
        );
    }
}
