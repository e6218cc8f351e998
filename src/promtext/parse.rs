//! The body parser: splits a body into lines, handles `# HELP`/`# TYPE`/`# EOF`, and files
//! each sample under its metric family.
//!
//! A sample joins a family by exact name first, then by a suffix that the family's declared
//! type allows (a histogram's `_bucket`, an OpenMetrics counter's `_total`, ...). Guessing
//! from names alone would misfile vLLM's `vllm:iteration_tokens_total` (a histogram) and its
//! `*_created` gauges. Which format a body is in is only known at its end (`# EOF`), so
//! timestamps, whose unit depends on it, are settled in a last pass.

mod line;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::{Exposition, Family, Format, MetricType, ParseError, ParseErrorKind, Sample, Suffix};
use line::RawTimestamp;

/// Parses a whole body. Never panics; the first bad line is returned as an error naming it.
///
/// Families come out in the order they first appeared (by `# HELP`, `# TYPE` or sample);
/// families that were declared but had no samples are kept, with no samples.
pub fn parse(text: &str) -> Result<Exposition<'_>, ParseError> {
    // Room for a typical vLLM body's ~100 families, so that neither grows while parsing.
    let mut builder = Builder {
        families: Vec::with_capacity(128),
        declared: Vec::with_capacity(128),
        by_name: HashMap::with_capacity_and_hasher(128, BuildHasherDefault::default()),
        ..Builder::default()
    };
    match builder.lines(text) {
        Ok(()) => builder.finish(),
        Err(err) => Err(builder.earliest_error(err)),
    }
}

/// Suffixes a sample name may add to its family's name, in the order they are tried.
const SUFFIXES: [(&str, Suffix); 8] = [
    ("_bucket", Suffix::Bucket),
    ("_sum", Suffix::Sum),
    ("_count", Suffix::Count),
    ("_total", Suffix::Total),
    ("_created", Suffix::Created),
    ("_gsum", Suffix::Gsum),
    ("_gcount", Suffix::Gcount),
    ("_info", Suffix::Info),
];

/// Whether a family of type `t` has samples named with `suffix`.
fn suffix_allowed(t: MetricType, suffix: Suffix) -> bool {
    use Suffix as S;
    match t {
        MetricType::Histogram => matches!(suffix, S::Bucket | S::Sum | S::Count | S::Created),
        MetricType::Summary => matches!(suffix, S::Sum | S::Count | S::Created),
        MetricType::Counter => matches!(suffix, S::Total | S::Created),
        MetricType::GaugeHistogram => {
            matches!(suffix, S::Bucket | S::Gsum | S::Gcount | S::Created)
        }
        MetricType::Info => suffix == S::Info,
        MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => false,
    }
}

/// The suffix that `rest` is exactly, if any.
fn suffix_named(rest: &str) -> Option<Suffix> {
    SUFFIXES
        .iter()
        .find(|(s, _)| *s == rest)
        .map(|&(_, suffix)| suffix)
}

/// A timestamp whose unit is settled once the format is known.
struct PendingTimestamp<'a> {
    family: usize,
    sample: usize,
    raw: RawTimestamp,
    text: &'a str,
    line: usize,
}

/// FxHash (rustc's hasher): family lookups hash every sample name, and SipHash's protection
/// against chosen collisions buys nothing against the server we chose to scrape.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Default)]
struct Builder<'a> {
    families: Vec<Family<'a>>,
    /// Parallel to `families`: whether a `# TYPE` line declared it.
    declared: Vec<bool>,
    /// Family name -> index in `families`. Only looked up, never iterated.
    by_name: HashMap<&'a str, usize, BuildHasherDefault<FxHasher>>,
    /// The family of the previous sample. Samples mostly come grouped, so a histogram's
    /// `_count` after its `_bucket`s is matched against it before any wider search.
    last: Option<usize>,
    /// The previous sample's name and how it resolved; cleared whenever a family is created
    /// or typed, since either can change how a name resolves.
    recent: Option<(&'a str, usize, Suffix)>,
    timestamps: Vec<PendingTimestamp<'a>>,
    /// 1-based line of `# EOF`, once seen.
    eof_line: Option<usize>,
}

impl<'a> Builder<'a> {
    fn lines(&mut self, text: &'a str) -> Result<(), ParseError> {
        for (index, raw) in text.split('\n').enumerate() {
            let number = index + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let trimmed = line::trim_blanks_start(line);
            if line::trim_blanks_end(trimmed).is_empty() {
                continue;
            }
            if self.eof_line.is_some() {
                return Err(ParseError {
                    line: number,
                    kind: ParseErrorKind::AfterEof,
                });
            }
            let result = match trimmed.strip_prefix('#') {
                Some(comment) => self.comment(comment, number),
                None => self.sample(trimmed, number),
            };
            result.map_err(|kind| ParseError { line: number, kind })?;
        }
        Ok(())
    }

    /// Handles a line that started with `#` (given without it).
    fn comment(&mut self, comment: &'a str, number: usize) -> Result<(), ParseErrorKind> {
        let (keyword, rest) = line::split_token(comment);
        match keyword {
            "HELP" => self.help(rest),
            "TYPE" => self.declare(rest),
            "EOF" if line::trim_blanks_end(rest).is_empty() => {
                self.eof_line = Some(number);
                Ok(())
            }
            // `# UNIT` (OpenMetrics) and free comments carry nothing we keep.
            _ => Ok(()),
        }
    }

    /// `# HELP name text`: the text may be empty; a second HELP for a family is ignored.
    fn help(&mut self, rest: &'a str) -> Result<(), ParseErrorKind> {
        let (name, text) = line::split_token(rest);
        if name.is_empty() {
            return Err(ParseErrorKind::Other(
                "HELP line without a metric name".into(),
            ));
        }
        if !line::is_metric_name(name) {
            return Err(ParseErrorKind::InvalidName(line::snippet(name)));
        }
        let text = line::trim_blanks_start(text);
        let index = self.family(name);
        if let Some(family) = self.families.get_mut(index) {
            if family.help.is_none() {
                family.help = Some(line::unescape_help(text));
            }
        }
        Ok(())
    }

    /// `# TYPE name type`.
    fn declare(&mut self, rest: &'a str) -> Result<(), ParseErrorKind> {
        let (name, rest) = line::split_token(rest);
        if name.is_empty() {
            return Err(ParseErrorKind::MalformedType("no metric name".into()));
        }
        if !line::is_metric_name(name) {
            return Err(ParseErrorKind::InvalidName(line::snippet(name)));
        }
        let (keyword, rest) = line::split_token(rest);
        if keyword.is_empty() {
            return Err(ParseErrorKind::MalformedType(format!(
                "no type for {name:?}"
            )));
        }
        if !line::trim_blanks_end(rest).is_empty() {
            return Err(ParseErrorKind::MalformedType(format!(
                "unexpected {:?} after the type of {name:?}",
                line::snippet(line::trim_blanks_start(rest))
            )));
        }
        let Some(metric_type) = MetricType::from_keyword(keyword) else {
            return Err(ParseErrorKind::MalformedType(format!(
                "unknown type {:?} for {name:?}",
                line::snippet(keyword)
            )));
        };
        let index = self.family(name);
        let (Some(family), Some(declared)) =
            (self.families.get_mut(index), self.declared.get_mut(index))
        else {
            return Err(ParseErrorKind::Other(
                "internal: family index out of range".into(),
            ));
        };
        if *declared {
            if family.metric_type != metric_type {
                return Err(ParseErrorKind::DuplicateType(name.to_owned()));
            }
        } else {
            // A family first seen through HELP, or through samples of its exact name, gets
            // its type now. (Samples already filed under it carry no suffix, so stay right.)
            family.metric_type = metric_type;
            *declared = true;
            self.recent = None;
        }
        Ok(())
    }

    /// The index of the family named exactly `name`, created (undeclared) if new.
    fn family(&mut self, name: &'a str) -> usize {
        if let Some(&index) = self.by_name.get(name) {
            return index;
        }
        self.recent = None;
        let index = self.families.len();
        self.families.push(Family {
            name,
            metric_type: MetricType::Unknown,
            help: None,
            samples: Vec::new(),
        });
        self.declared.push(false);
        self.by_name.insert(name, index);
        index
    }

    /// Which family a sample named `name` belongs to, and with what suffix.
    fn resolve(&mut self, name: &'a str) -> (usize, Suffix) {
        let last = self.last.and_then(|i| self.families.get(i).map(|f| (i, f)));
        if let Some((i, family)) = last {
            if family.name == name {
                return (i, Suffix::None);
            }
        }
        // An exact match wins over any suffix reading: vLLM V1 declares
        // `vllm:prompt_tokens_created` as a gauge family of its own.
        if let Some(&i) = self.by_name.get(name) {
            return (i, Suffix::None);
        }
        if let Some((i, family)) = last {
            let suffix = name.strip_prefix(family.name).and_then(suffix_named);
            if let Some(suffix) = suffix.filter(|&s| suffix_allowed(family.metric_type, s)) {
                return (i, suffix);
            }
        }
        for &(text, suffix) in &SUFFIXES {
            let Some(base) = name.strip_suffix(text) else {
                continue;
            };
            let Some(&i) = self.by_name.get(base) else {
                continue;
            };
            if self
                .families
                .get(i)
                .is_some_and(|f| suffix_allowed(f.metric_type, suffix))
            {
                return (i, suffix);
            }
        }
        (self.family(name), Suffix::None)
    }

    fn sample(&mut self, text: &'a str, number: usize) -> Result<(), ParseErrorKind> {
        let previous = self.recent.map_or("", |(name, _, _)| name);
        let lexed = line::parse_sample(text, previous)?;
        let (index, suffix) = match self.recent {
            Some((_, index, suffix)) if lexed.repeats => (index, suffix),
            _ => self.resolve(lexed.name),
        };
        self.last = Some(index);
        self.recent = Some((lexed.name, index, suffix));
        let Some(family) = self.families.get_mut(index) else {
            return Err(ParseErrorKind::Other(
                "internal: family index out of range".into(),
            ));
        };
        if let Some((raw, text)) = lexed.timestamp {
            let sample = family.samples.len();
            self.timestamps.push(PendingTimestamp {
                family: index,
                sample,
                raw,
                text,
                line: number,
            });
        }
        family.samples.push(Sample {
            name: lexed.name,
            suffix,
            labels: lexed.labels,
            value: lexed.value,
            timestamp_ms: None,
        });
        Ok(())
    }

    /// Settles the format and the timestamps' unit.
    fn finish(mut self) -> Result<Exposition<'a>, ParseError> {
        let format = if self.eof_line.is_some() {
            Format::OpenMetrics
        } else {
            Format::Text004
        };
        for pending in &self.timestamps {
            let bad = || ParseError {
                line: pending.line,
                kind: ParseErrorKind::InvalidTimestamp(line::snippet(pending.text)),
            };
            let ms = match (format, pending.raw) {
                (Format::Text004, RawTimestamp::Int(ms)) => ms,
                // 0.0.4 timestamps are integer milliseconds.
                (Format::Text004, RawTimestamp::Float(_)) => return Err(bad()),
                // OpenMetrics timestamps are seconds.
                (Format::OpenMetrics, RawTimestamp::Int(s)) => {
                    s.checked_mul(1000).ok_or_else(bad)?
                }
                (Format::OpenMetrics, RawTimestamp::Float(s)) => {
                    let ms = (s * 1000.0).round();
                    // i64::MAX as f64 rounds up to 2^63, itself out of range: hence `<`.
                    if !(ms >= i64::MIN as f64 && ms < i64::MAX as f64) {
                        return Err(bad());
                    }
                    ms as i64
                }
            };
            let sample = self
                .families
                .get_mut(pending.family)
                .and_then(|f| f.samples.get_mut(pending.sample));
            if let Some(sample) = sample {
                sample.timestamp_ms = Some(ms);
            }
        }
        Ok(Exposition {
            format,
            families: self.families,
        })
    }

    /// A fractional timestamp is only wrong in 0.0.4, which a body is known to be only at its
    /// end; a body that failed before any `# EOF` is 0.0.4, so an earlier such line is the
    /// first bad one.
    fn earliest_error(&self, err: ParseError) -> ParseError {
        if self.eof_line.is_some() {
            return err;
        }
        let first_float = self
            .timestamps
            .iter()
            .find(|t| matches!(t.raw, RawTimestamp::Float(_)));
        match first_float {
            Some(t) if t.line < err.line => ParseError {
                line: t.line,
                kind: ParseErrorKind::InvalidTimestamp(line::snippet(t.text)),
            },
            _ => err,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::promtext::Label;

    fn ok(text: &str) -> Exposition<'_> {
        match parse(text) {
            Ok(exposition) => exposition,
            Err(err) => panic!("{err}\n--- body:\n{text}"),
        }
    }

    fn err(text: &str) -> ParseError {
        parse(text).expect_err("expected an error")
    }

    fn family<'e, 'a>(e: &'e Exposition<'a>, name: &str) -> &'e Family<'a> {
        e.families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no family {name}"))
    }

    fn names(e: &Exposition<'_>) -> Vec<String> {
        e.families.iter().map(|f| f.name.to_owned()).collect()
    }

    fn suffixes(f: &Family<'_>) -> Vec<Suffix> {
        f.samples.iter().map(|s| s.suffix).collect()
    }

    #[test]
    fn text004_body_with_help_type_and_labels() {
        let e = ok(concat!(
            "# HELP vllm:num_requests_running Number of requests.\\nSecond line \\\\ done\n",
            "# TYPE vllm:num_requests_running gauge\n",
            "vllm:num_requests_running{model_name=\"m\",engine=\"0\"} 3.0\n",
            "# a free comment\n",
            "# HELP plain Plain help.\n",
            "# TYPE plain counter\n",
            "plain 7 1700000000123\n",
        ));
        assert_eq!(e.format, Format::Text004);
        assert_eq!(names(&e), ["vllm:num_requests_running", "plain"]);
        let running = family(&e, "vllm:num_requests_running");
        assert_eq!(running.metric_type, MetricType::Gauge);
        assert_eq!(
            running.help.as_deref(),
            Some("Number of requests.\nSecond line \\ done")
        );
        assert_eq!(
            running.samples[0].labels,
            [
                Label {
                    name: "model_name",
                    value: Cow::Borrowed("m")
                },
                Label {
                    name: "engine",
                    value: Cow::Borrowed("0")
                }
            ]
        );
        assert_eq!(running.samples[0].value, 3.0);
        assert_eq!(running.samples[0].timestamp_ms, None);
        let plain = family(&e, "plain");
        assert!(matches!(plain.help, Some(Cow::Borrowed("Plain help."))));
        assert_eq!(plain.samples[0].timestamp_ms, Some(1_700_000_000_123));
        assert_eq!(e.sample_count(), 2);
    }

    #[test]
    fn empty_lines_blank_lines_and_crlf() {
        let e = ok("\n\r\n  \t\r\n# TYPE a gauge\r\na 1\r\n\r\na{x=\"y\"} 2 \r\n");
        assert_eq!(family(&e, "a").samples.len(), 2);
        assert_eq!(family(&e, "a").samples[1].labels[0].value, "y");
        assert_eq!(ok("").families.len(), 0);
    }

    #[test]
    fn histogram_suffixes_by_declared_type() {
        // `_total` in a histogram's name is part of the family name, not a counter suffix.
        let e = ok(concat!(
            "# TYPE vllm:iteration_tokens_total histogram\n",
            "vllm:iteration_tokens_total_sum 10\n",
            "vllm:iteration_tokens_total_bucket{le=\"1.0\"} 1\n",
            "vllm:iteration_tokens_total_bucket{le=\"+Inf\"} 2\n",
            "vllm:iteration_tokens_total_count 2\n",
            "vllm:iteration_tokens_total_created 1.7e9\n",
        ));
        assert_eq!(names(&e), ["vllm:iteration_tokens_total"]);
        let f = family(&e, "vllm:iteration_tokens_total");
        assert_eq!(f.metric_type, MetricType::Histogram);
        use Suffix as S;
        assert_eq!(
            suffixes(f),
            [S::Sum, S::Bucket, S::Bucket, S::Count, S::Created]
        );
        assert_eq!(f.samples[2].labels[0].value, "+Inf");
    }

    #[test]
    fn exact_family_match_wins_over_suffix() {
        // vLLM V1 in 0.0.4 declares each counter's `_created` as a gauge family of its own.
        let e = ok(concat!(
            "# TYPE vllm:prompt_tokens counter\n",
            "vllm:prompt_tokens_total 5\n",
            "# TYPE vllm:prompt_tokens_created gauge\n",
            "vllm:prompt_tokens_created 1.7e9\n",
        ));
        assert_eq!(
            names(&e),
            ["vllm:prompt_tokens", "vllm:prompt_tokens_created"]
        );
        assert_eq!(suffixes(family(&e, "vllm:prompt_tokens")), [Suffix::Total]);
        let created = family(&e, "vllm:prompt_tokens_created");
        assert_eq!(created.metric_type, MetricType::Gauge);
        assert_eq!(suffixes(created), [Suffix::None]);
    }

    #[test]
    fn suffix_not_valid_for_the_type_makes_its_own_family() {
        let e = ok(concat!(
            "# TYPE s summary\n",
            "s{quantile=\"0.5\"} 1\n",
            "s_sum 3\n",
            "s_count 2\n",
            "s_bucket{le=\"1\"} 1\n",
            "# TYPE g gauge\n",
            "g 1\n",
            "g_sum 2\n",
            "g_total 3\n",
            "# TYPE c_total counter\n",
            "c_total 4\n",
            "c_total_total 5\n",
        ));
        assert_eq!(
            suffixes(family(&e, "s")),
            [Suffix::None, Suffix::Sum, Suffix::Count]
        );
        for undeclared in ["s_bucket", "g_sum", "g_total"] {
            let f = family(&e, undeclared);
            assert_eq!(f.metric_type, MetricType::Unknown, "{undeclared}");
            assert_eq!(suffixes(f), [Suffix::None]);
        }
        // A 0.0.4 counter is declared with its `_total`; `_total_total` still strips once.
        assert_eq!(
            suffixes(family(&e, "c_total")),
            [Suffix::None, Suffix::Total]
        );
    }

    #[test]
    fn gaugehistogram_info_and_stateset_suffixes() {
        let e = ok(concat!(
            "# TYPE gh gaugehistogram\n",
            "gh_bucket{le=\"+Inf\"} 1\n",
            "gh_gcount 1\n",
            "gh_gsum 2\n",
            "gh_sum 2\n",
            "# TYPE build info\n",
            "build_info{version=\"1\"} 1\n",
            "# TYPE st stateset\n",
            "st{st=\"a\"} 1\n",
            "# EOF\n",
        ));
        use Suffix as S;
        assert_eq!(suffixes(family(&e, "gh")), [S::Bucket, S::Gcount, S::Gsum]);
        assert_eq!(family(&e, "gh_sum").metric_type, MetricType::Unknown);
        assert_eq!(family(&e, "build").metric_type, MetricType::Info);
        assert_eq!(suffixes(family(&e, "build")), [S::Info]);
        assert_eq!(family(&e, "st").metric_type, MetricType::StateSet);
    }

    #[test]
    fn undeclared_samples_and_non_contiguous_families() {
        let e = ok(concat!(
            "http_requests_total{code=\"200\"} 5\n",
            "# TYPE h histogram\n",
            "h_bucket{le=\"1\"} 1\n",
            "other 2\n",
            "h_sum 3\n",
            "http_requests_total{code=\"500\"} 1\n",
            "h_count 1\n",
        ));
        assert_eq!(names(&e), ["http_requests_total", "h", "other"]);
        let http = family(&e, "http_requests_total");
        assert_eq!(http.metric_type, MetricType::Unknown);
        assert_eq!(http.help, None);
        assert_eq!(http.samples.len(), 2);
        assert_eq!(http.samples[1].labels[0].value, "500");
        assert_eq!(
            suffixes(family(&e, "h")),
            [Suffix::Bucket, Suffix::Sum, Suffix::Count]
        );
    }

    #[test]
    fn help_and_type_after_first_appearance() {
        // Family order is first appearance, by HELP, TYPE or sample; a later TYPE types an
        // undeclared family; a family declared without samples is kept.
        let e = ok(concat!(
            "late 1\n",
            "# HELP first First.\n",
            "# TYPE late counter\n",
            "# TYPE empty gauge\n",
            "first 2\n",
            "# HELP first Second help is ignored.\n",
            "# HELP bare\n",
        ));
        assert_eq!(names(&e), ["late", "first", "empty", "bare"]);
        assert_eq!(family(&e, "late").metric_type, MetricType::Counter);
        assert_eq!(family(&e, "first").metric_type, MetricType::Unknown);
        assert_eq!(family(&e, "first").help.as_deref(), Some("First."));
        assert!(family(&e, "empty").samples.is_empty());
        assert_eq!(family(&e, "bare").help.as_deref(), Some(""));
    }

    #[test]
    fn duplicate_type_same_is_tolerated_different_is_an_error() {
        let e = ok("# TYPE a gauge\na 1\n# TYPE a gauge\na 2\n");
        assert_eq!(family(&e, "a").samples.len(), 2);
        let e = err("# TYPE a gauge\na 1\n\n# TYPE a counter\n");
        assert_eq!(
            e,
            ParseError {
                line: 4,
                kind: ParseErrorKind::DuplicateType("a".into())
            }
        );
        // `untyped` and `unknown` are the same type.
        ok("# TYPE u untyped\n# TYPE u unknown\n");
    }

    #[test]
    fn malformed_type_lines() {
        for (body, line) in [
            ("# TYPE\n", 1),
            ("a 1\n# TYPE a\n", 2),
            ("\n\n# TYPE a sometimes\n", 3),
            ("# TYPE a gauge extra\n", 1),
        ] {
            let e = err(body);
            assert_eq!(e.line, line, "{body:?}");
            assert!(
                matches!(e.kind, ParseErrorKind::MalformedType(_)),
                "{body:?}: {e}"
            );
        }
        let e = err("# TYPE a-b gauge\n");
        assert_eq!(e.kind, ParseErrorKind::InvalidName("a-b".into()));
        let e = err("ok 1\n# HELP 9lives text\n");
        assert_eq!(
            (e.line, e.kind),
            (2, ParseErrorKind::InvalidName("9lives".into()))
        );
        assert!(matches!(err("# HELP\n").kind, ParseErrorKind::Other(_)));
    }

    #[test]
    fn sample_errors_name_their_line() {
        let head = "# TYPE a gauge\na 1\n";
        type Check = fn(&ParseErrorKind) -> bool;
        let cases: [(&str, Check); 6] = [
            (
                "a-b 1",
                |k| matches!(k, ParseErrorKind::InvalidName(n) if n == "a-b"),
            ),
            ("a{x=\"1\" 2", |k| {
                matches!(k, ParseErrorKind::MalformedLabels(_))
            }),
            ("a{x=\"\\q\"} 2", |k| {
                matches!(k, ParseErrorKind::MalformedLabels(_))
            }),
            (
                "a one",
                |k| matches!(k, ParseErrorKind::InvalidValue(v) if v == "one"),
            ),
            (
                "a 1 soon",
                |k| matches!(k, ParseErrorKind::InvalidTimestamp(t) if t == "soon"),
            ),
            ("a 1 2 3", |k| matches!(k, ParseErrorKind::Other(_))),
        ];
        for (bad, check) in cases {
            let body = format!("{head}{bad}\na 3\n");
            let e = err(&body);
            assert_eq!(e.line, 3, "{bad}");
            assert!(check(&e.kind), "{bad}: {e}");
        }
        // The message names the line.
        assert_eq!(err("a one").to_string(), "line 1: invalid value \"one\"");
    }

    #[test]
    fn text004_rejects_fractional_timestamps_at_their_line() {
        let e = err("# TYPE a gauge\na 1 1700000000.5\n");
        assert_eq!(
            e,
            ParseError {
                line: 2,
                kind: ParseErrorKind::InvalidTimestamp("1700000000.5".into())
            }
        );
        // A later syntax error leaves the body 0.0.4, so the earlier timestamp is the first
        // bad line.
        let e = err("a 1 1.5\nb 2\nc{x 3\n");
        assert_eq!(e.line, 1);
        assert!(matches!(e.kind, ParseErrorKind::InvalidTimestamp(_)));
        // Before any fractional timestamp, the syntax error stands.
        let e = err("c{x 3\na 1 1.5\n");
        assert_eq!(e.line, 1);
        assert!(matches!(e.kind, ParseErrorKind::MalformedLabels(_)));
    }

    #[test]
    fn openmetrics_body_end_to_end() {
        let body = concat!(
            "# TYPE vllm:prompt_tokens counter\n",
            "# UNIT vllm:prompt_tokens tokens\n",
            "# HELP vllm:prompt_tokens Number of prefill tokens processed.\n",
            "vllm:prompt_tokens_total{model_name=\"m\"} 148.0 1700000000.123\n",
            "vllm:prompt_tokens_created{model_name=\"m\"} 1.7382173358407154e+09 1700000000\n",
            "# TYPE vllm:e2e_request_latency_seconds histogram\n",
            "vllm:e2e_request_latency_seconds_bucket{le=\"0.5\"} 1 # {trace_id=\"x y\"} 0.4 1.7e9\n",
            "vllm:e2e_request_latency_seconds_bucket{le=\"+Inf\"} 2\n",
            "vllm:e2e_request_latency_seconds_count 2\n",
            "vllm:e2e_request_latency_seconds_sum 1.25\n",
            "vllm:e2e_request_latency_seconds_created 1.7e9\n",
            "# TYPE vllm:cache_config info\n",
            "vllm:cache_config_info{block_size=\"16\",note=\"say \\\"hi\\\"\"} 1\n",
            "# TYPE vllm:num_requests_running gauge\n",
            "vllm:num_requests_running NaN\n",
            "# EOF\n",
        );
        let e = ok(body);
        assert_eq!(e.format, Format::OpenMetrics);
        assert_eq!(
            names(&e),
            [
                "vllm:prompt_tokens",
                "vllm:e2e_request_latency_seconds",
                "vllm:cache_config",
                "vllm:num_requests_running"
            ]
        );
        let counter = family(&e, "vllm:prompt_tokens");
        assert_eq!(counter.metric_type, MetricType::Counter);
        assert_eq!(
            counter.help.as_deref(),
            Some("Number of prefill tokens processed.")
        );
        assert_eq!(suffixes(counter), [Suffix::Total, Suffix::Created]);
        assert_eq!(counter.samples[0].value, 148.0);
        // Float seconds, and integer seconds, become milliseconds.
        assert_eq!(counter.samples[0].timestamp_ms, Some(1_700_000_000_123));
        assert_eq!(counter.samples[1].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(counter.samples[1].value, 1.7382173358407154e9);
        let hist = family(&e, "vllm:e2e_request_latency_seconds");
        use Suffix as S;
        assert_eq!(
            suffixes(hist),
            [S::Bucket, S::Bucket, S::Count, S::Sum, S::Created]
        );
        // The exemplar is dropped, including its own timestamp.
        assert_eq!(hist.samples[0].value, 1.0);
        assert_eq!(hist.samples[0].timestamp_ms, None);
        let info = family(&e, "vllm:cache_config");
        assert_eq!(suffixes(info), [S::Info]);
        assert_eq!(info.samples[0].labels[1].value, "say \"hi\"");
        assert!(matches!(info.samples[0].labels[1].value, Cow::Owned(_)));
        assert!(family(&e, "vllm:num_requests_running").samples[0]
            .value
            .is_nan());
    }

    #[test]
    fn content_after_eof_is_an_error() {
        ok("a 1\n# EOF");
        ok("a 1\n# EOF\n");
        ok("a 1\n# EOF\r\n\n");
        let e = err("a 1\n# EOF\na 2\n");
        assert_eq!(
            e,
            ParseError {
                line: 3,
                kind: ParseErrorKind::AfterEof
            }
        );
        let e = err("# EOF\n\n# EOF\n");
        assert_eq!(
            e,
            ParseError {
                line: 3,
                kind: ParseErrorKind::AfterEof
            }
        );
        // `# EOF` followed by text on the same line is only a comment.
        assert_eq!(ok("# EOF is near\na 1\n").format, Format::Text004);
    }

    #[test]
    fn openmetrics_timestamp_out_of_range() {
        let e = err("a 1 99999999999999999\n# EOF\n");
        assert_eq!(e.line, 1);
        assert!(matches!(e.kind, ParseErrorKind::InvalidTimestamp(_)));
        let e = err("a 1 0\nb 1 1e300\n# EOF\n");
        assert_eq!(e.line, 2);
        assert!(matches!(e.kind, ParseErrorKind::InvalidTimestamp(_)));
    }

    #[test]
    fn zero_copy_where_no_escapes() {
        let text = String::from("# HELP a Help.\na{x=\"y\"} 1\n");
        let e = ok(&text);
        let f = &e.families[0];
        let range = text.as_ptr() as usize..text.as_ptr() as usize + text.len();
        assert!(range.contains(&(f.name.as_ptr() as usize)));
        assert!(
            matches!(&f.help, Some(Cow::Borrowed(h)) if range.contains(&(h.as_ptr() as usize)))
        );
        let label = &f.samples[0].labels[0];
        assert!(matches!(&label.value, Cow::Borrowed(v) if range.contains(&(v.as_ptr() as usize))));
    }

    // ---- Fixture bodies: real captures and hand-made older shapes (tests/fixtures) ----

    /// The fixture bodies, in the repository so that no test depends on anything beside it.
    const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metrics");

    /// Every fixture body, by file name, sorted. A missing folder fails the test.
    fn fixture_bodies() -> Vec<(String, String)> {
        let dir = std::fs::read_dir(FIXTURE_DIR)
            .unwrap_or_else(|e| panic!("fixture folder {FIXTURE_DIR}: {e}"));
        let mut bodies: Vec<(String, String)> = dir
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|x| x == "txt"))
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&path).unwrap())
            })
            .collect();
        bodies.sort();
        bodies
    }

    fn fixture(name: &str) -> String {
        let path = format!("{FIXTURE_DIR}/{name}");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
    }

    #[test]
    fn every_fixture_body_parses() {
        let bodies = fixture_bodies();
        assert_eq!(bodies.len(), 5, "expected the five fixture bodies");
        for (name, body) in &bodies {
            let e = parse(body).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(e.format, Format::Text004, "{name}");
            assert!(e.sample_count() > 0, "{name}");
            // Every family name is distinct.
            let mut seen: Vec<&str> = e.families.iter().map(|f| f.name).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), e.families.len(), "{name}");
        }
    }

    #[test]
    fn real_vllm_cpu_idle_facts() {
        let body = fixture("vllm-0.32-cpu-idle.txt");
        let e = ok(&body);
        // 92 distinct `# TYPE` names, and every sample belongs to one of them.
        assert_eq!(e.families.len(), 92);
        assert_eq!(e.sample_count(), 425);
        assert!(e
            .families
            .iter()
            .all(|f| f.metric_type != MetricType::Unknown));
        assert_eq!(e.families[0].name, "python_gc_objects_collected_total");
        assert_eq!(e.families[0].metric_type, MetricType::Counter);

        let iter = family(&e, "vllm:iteration_tokens_total");
        assert_eq!(iter.metric_type, MetricType::Histogram);
        let buckets: Vec<&Sample<'_>> = iter
            .samples
            .iter()
            .filter(|s| s.suffix == Suffix::Bucket)
            .collect();
        assert_eq!(buckets.len(), 14);
        assert_eq!(
            buckets[13].labels[1],
            Label {
                name: "le",
                value: Cow::Borrowed("+Inf")
            }
        );
        assert_eq!(buckets[13].value, 258.0);
        assert_eq!(iter.samples.len(), 16);
        assert_eq!(iter.samples[15].suffix, Suffix::Sum);
        assert_eq!(iter.samples[15].value, 3228.0);

        // prometheus_client writes each counter's and histogram's `_created` as a gauge
        // family of its own in format 0.0.4; they must not be folded into their parents.
        let created: Vec<&Family<'_>> = e
            .families
            .iter()
            .filter(|f| f.name.ends_with("_created"))
            .collect();
        assert_eq!(created.len(), 38);
        for f in &created {
            assert_eq!(f.metric_type, MetricType::Gauge, "{}", f.name);
            assert!(
                f.samples.iter().all(|s| s.suffix == Suffix::None),
                "{}",
                f.name
            );
        }
        let summary = family(&e, "http_request_size_bytes");
        assert_eq!(summary.metric_type, MetricType::Summary);
        assert_eq!(suffixes(summary), [Suffix::Count, Suffix::Sum]);
        // HELP text is kept as written, trailing space included.
        assert!(summary
            .help
            .as_deref()
            .unwrap()
            .ends_with("No percentile calculated. "));
    }

    #[test]
    fn older_and_foreign_shapes_facts() {
        let v1 = fixture("vllm-v1-cut-short.txt");
        let e = ok(&v1);
        // Seven declared families, plus a HELP cut off before its TYPE.
        assert_eq!(e.families.len(), 8);
        let prompt = family(&e, "vllm:prompt_tokens_created");
        assert_eq!(prompt.metric_type, MetricType::Gauge);
        assert_eq!(prompt.samples[0].value, 1.7769301736864982e9);
        let cut = e.families.last().unwrap();
        assert_eq!(
            (cut.name, cut.metric_type),
            ("vllm:request_success_total", MetricType::Unknown)
        );
        assert!(cut.samples.is_empty());

        let v0 = fixture("vllm-v0-shape.txt");
        let e = ok(&v0);
        assert_eq!(e.families.len(), 14);
        let lora = family(&e, "vllm:lora_requests_info");
        assert_eq!(lora.metric_type, MetricType::Gauge);
        assert_eq!(lora.samples[0].labels[1].value, "");
        assert_eq!(lora.samples[0].value, 1.7601e9);
        // The multiprocess collector's order: _sum and _count before the buckets.
        let ttft = family(&e, "vllm:time_to_first_token_seconds");
        assert_eq!(ttft.metric_type, MetricType::Histogram);
        assert_eq!(ttft.samples[0].suffix, Suffix::Sum);
        assert_eq!(ttft.samples[1].suffix, Suffix::Count);
        assert_eq!(ttft.samples.len(), 8);

        let foreign = fixture("untyped-and-sglang.txt");
        let e = ok(&foreign);
        // Three declared families, then three undeclared samples of unknown type.
        assert_eq!(e.families.len(), 6);
        let unknown: Vec<&str> = e
            .families
            .iter()
            .filter(|f| f.metric_type == MetricType::Unknown)
            .map(|f| f.name)
            .collect();
        assert_eq!(
            unknown,
            [
                "http_requests_total",
                "http_request_duration_seconds_count",
                "http_request_duration_seconds_sum"
            ]
        );
        assert_eq!(
            family(&e, "sglang:time_to_first_token_seconds").metric_type,
            MetricType::Histogram
        );
    }

    #[test]
    fn real_body_as_openmetrics_converts_nothing_but_the_format() {
        let body = fixture("vllm-0.32-cpu-idle.txt");
        let text004 = ok(&body);
        let om_body = format!("{body}# EOF\n");
        let om = ok(&om_body);
        assert_eq!(om.format, Format::OpenMetrics);
        assert_eq!(om.families.len(), text004.families.len());
        assert_eq!(om.sample_count(), text004.sample_count());
    }

    // ---- Robustness: no input may panic ----

    /// Deterministic xorshift64*: the same mutations on every run, no extra crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
    }

    /// A body that exercises every syntax the fixture bodies do not.
    const SEED_BODY: &str = concat!(
        "# HELP vllm:iteration_tokens_total Tokens \\\\ per\\nstep.\n",
        "# TYPE vllm:iteration_tokens_total histogram\n",
        "vllm:iteration_tokens_total_bucket{engine=\"0\",le=\"+Inf\",} 3 1700000000000\n",
        "vllm:iteration_tokens_total_sum { engine = \"0\" } 1.755e+09\n",
        "# TYPE c counter\n# UNIT c seconds\n",
        "c_total{path=\"a\\\"b\\\\c\\nd\",x=\"é€\"} NaN 1700000000.5 # {id=\"t\"} 1 1.7e9\n",
        "c_created -Inf\r\n",
        "\n# EOF\n",
    );

    /// Bytes that mutations insert: the syntax's delimiters, and multi-byte characters to
    /// land slices inside a char if any code slices carelessly.
    const INTERESTING: &[&str] = &[
        "{", "}", "\"", "\\", "#", " ", "\n", "=", ",", "\r", "é", "€", "𝄞", "# EOF\n", "e+", ".",
    ];

    fn mutate(rng: &mut XorShift, body: &str) -> String {
        // Work on a window of the body so that debug-build runs stay fast.
        let mut bytes = body.as_bytes().to_vec();
        if bytes.len() > 4096 {
            let start = rng.below(bytes.len() - 4096);
            bytes = bytes[start..start + 4096].to_vec();
        }
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(5) {
                0 => bytes.truncate(at),
                1 => {
                    let end = (at + 1 + rng.below(16)).min(bytes.len());
                    bytes.drain(at.min(end)..end);
                }
                2 => {
                    let piece = INTERESTING[rng.below(INTERESTING.len())];
                    bytes.splice(at..at, piece.bytes());
                }
                3 if at < bytes.len() => bytes[at] = (rng.next() & 0xff) as u8,
                _ => {
                    // Duplicate a stretch, to repeat families and TYPE lines.
                    let end = (at + rng.below(200)).min(bytes.len());
                    let copy = bytes[at..end].to_vec();
                    let to = rng.below(bytes.len() + 1);
                    bytes.splice(to..to, copy);
                }
            }
        }
        // Random bytes and cuts make invalid UTF-8; the parser takes `&str`, so repair it
        // (which itself adds multi-byte U+FFFD characters).
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn mutated_and_truncated_bodies_never_panic() {
        let mut bodies = vec![SEED_BODY.to_owned()];
        bodies.extend(fixture_bodies().into_iter().map(|(_, b)| b));
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut outcomes = [0usize; 2];
        for _ in 0..20_000 {
            let body = &bodies[rng.below(bodies.len())];
            let mutated = mutate(&mut rng, body);
            outcomes[usize::from(parse(&mutated).is_ok())] += 1;
        }
        // Every truncation of the seed body, at every char boundary.
        for end in (0..=SEED_BODY.len()).filter(|&i| SEED_BODY.is_char_boundary(i)) {
            let _ = parse(&SEED_BODY[..end]);
        }
        eprintln!(
            "mutated bodies: {} rejected, {} accepted",
            outcomes[0], outcomes[1]
        );
        // The mutations must reach both outcomes, or they test little.
        assert!(
            outcomes[0] > 500 && outcomes[1] > 500,
            "errors/oks: {outcomes:?}"
        );
    }
}
