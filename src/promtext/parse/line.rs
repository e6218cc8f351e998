//! Lexing of one line at a time: metric and label names, label sets, values, timestamps,
//! and `# HELP` text.
//!
//! Everything here walks the line's bytes and only ever stops on ASCII bytes (delimiters,
//! quotes, backslashes, whitespace). UTF-8 continuation bytes are never ASCII, so every slice
//! taken lies on a char boundary whatever the input holds: no input can make these functions
//! panic. Nothing is copied unless a label value or help text held an escape.

use std::borrow::Cow;

use crate::promtext::{Label, ParseErrorKind};

/// Longest piece of input quoted back in an error message; a garbage line can be megabytes.
const SNIPPET_MAX: usize = 64;

/// A timestamp as written. Its unit depends on the format (0.0.4: integer milliseconds;
/// OpenMetrics: seconds, possibly fractional), which is only known at the end of the body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum RawTimestamp {
    /// An integer.
    Int(i64),
    /// A number with a fraction or an exponent (valid in OpenMetrics only).
    Float(f64),
}

/// One sample line, lexed.
#[derive(Debug)]
pub(super) struct SampleLine<'a> {
    /// The metric name as written.
    pub name: &'a str,
    /// Whether the name is the `previous` one given to `parse_sample`.
    pub repeats: bool,
    /// Labels in written order.
    pub labels: Vec<Label<'a>>,
    /// The value.
    pub value: f64,
    /// The timestamp, with the text it came from (quoted in a later error, if any).
    pub timestamp: Option<(RawTimestamp, &'a str)>,
}

/// Quotes at most `SNIPPET_MAX` bytes of `s`, cut on a char boundary, for an error message.
pub(super) fn snippet(s: &str) -> String {
    if s.len() <= SNIPPET_MAX {
        return s.to_owned();
    }
    let mut end = SNIPPET_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", s.get(..end).unwrap_or(""))
}

/// Byte classes, looked up in one table: the scanning loops below run over every byte of a
/// body, and one load and mask per byte is measurably cheaper than a chain of comparisons.
const BLANK: u8 = 1;
const METRIC_NAME: u8 = 2;
const LABEL_NAME: u8 = 4;

const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b == b' ' || b == b'\t' {
            table[c] = BLANK;
        } else if b.is_ascii_alphanumeric() || b == b'_' {
            table[c] = METRIC_NAME | LABEL_NAME;
        } else if b == b':' {
            table[c] = METRIC_NAME;
        }
        c += 1;
    }
    table
};

fn is(c: u8, class: u8) -> bool {
    CLASS[usize::from(c)] & class != 0
}

fn is_blank(c: u8) -> bool {
    is(c, BLANK)
}

/// Index of the first byte at or after `i` that is not of `class` (or the end).
fn skip_class(b: &[u8], i: usize, class: u8) -> usize {
    match b.get(i..) {
        Some(rest) => {
            i + rest
                .iter()
                .position(|&c| !is(c, class))
                .unwrap_or(rest.len())
        }
        None => i,
    }
}

/// Index of the first non-blank byte at or after `i`.
fn skip_blanks(b: &[u8], i: usize) -> usize {
    skip_class(b, i, BLANK)
}

/// Index of the first blank byte at or after `i` (or the end).
fn skip_token(b: &[u8], i: usize) -> usize {
    match b.get(i..) {
        Some(rest) => i + rest.iter().position(|&c| is_blank(c)).unwrap_or(rest.len()),
        None => i,
    }
}

/// Whether `s` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(super) fn is_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(|c| !c.is_ascii_digit()) && b.iter().all(|&c| is(c, METRIC_NAME))
}

/// Splits the first blank-separated token off `s` (leading blanks skipped); returns the token
/// and the rest, which starts at the blank after the token.
pub(super) fn split_token(s: &str) -> (&str, &str) {
    let b = s.as_bytes();
    let start = skip_blanks(b, 0);
    let end = skip_token(b, start);
    (s.get(start..end).unwrap_or(""), s.get(end..).unwrap_or(""))
}

/// Strips leading spaces and tabs (not other Unicode whitespace, which the formats do not
/// treat as separators).
pub(super) fn trim_blanks_start(s: &str) -> &str {
    s.get(skip_blanks(s.as_bytes(), 0)..).unwrap_or("")
}

/// Strips trailing spaces and tabs.
pub(super) fn trim_blanks_end(s: &str) -> &str {
    let b = s.as_bytes();
    let end = b.iter().rposition(|&c| !is_blank(c)).map_or(0, |i| i + 1);
    s.get(..end).unwrap_or("")
}

/// Resolves `\\`, `\n` and `\"` in `# HELP` text. Any other backslash is kept as written:
/// help is documentation, and a stray backslash in it should not cost a whole scrape.
pub(super) fn unescape_help(text: &str) -> Cow<'_, str> {
    if !text.as_bytes().contains(&b'\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.clone().next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') => out.push('"'),
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    Cow::Owned(out)
}

/// Lexes a sample line: `name[{labels}] value [timestamp] [# exemplar]`. The line has no
/// `\n`, and its trailing `\r` is already gone.
///
/// `previous` is the previous sample's name, already validated: a histogram's bucket lines
/// repeat one name, and comparing it is much cheaper than classifying each of its bytes.
pub(super) fn parse_sample<'a>(
    line: &'a str,
    previous: &str,
) -> Result<SampleLine<'a>, ParseErrorKind> {
    let b = line.as_bytes();
    let start = skip_blanks(b, 0);
    let rest = b.get(start..).unwrap_or(&[]);
    let repeats = !previous.is_empty()
        && rest.starts_with(previous.as_bytes())
        && rest
            .get(previous.len())
            .is_some_and(|&c| is_blank(c) || c == b'{');
    let mut i = if repeats {
        // The full scan would stop at the same byte, since that byte is no name byte.
        start + previous.len()
    } else {
        skip_class(b, start, METRIC_NAME)
    };
    let name = line.get(start..i).unwrap_or("");
    let name_ok = i > start
        && b.get(start).is_some_and(|c| !c.is_ascii_digit())
        && b.get(i).is_none_or(|&c| is_blank(c) || c == b'{');
    if !name_ok {
        // Quote the whole would-be name, up to the first separator.
        let mut end = i;
        while b.get(end).is_some_and(|&c| !is_blank(c) && c != b'{') {
            end += 1;
        }
        return Err(ParseErrorKind::InvalidName(snippet(
            line.get(start..end).unwrap_or(""),
        )));
    }

    i = skip_blanks(b, i);
    let mut labels = Vec::new();
    if b.get(i) == Some(&b'{') {
        i = parse_labels(line, i + 1, &mut labels)?;
        i = skip_blanks(b, i);
    }

    let value_end = skip_token(b, i);
    let value_text = line.get(i..value_end).unwrap_or("");
    let value = parse_value(value_text)?;

    i = skip_blanks(b, value_end);
    let mut timestamp = None;
    // ` # ` starts an OpenMetrics exemplar, which may follow the value or the timestamp.
    if b.get(i).is_some_and(|&c| c != b'#') {
        let ts_end = skip_token(b, i);
        let ts_text = line.get(i..ts_end).unwrap_or("");
        timestamp = Some((parse_timestamp(ts_text)?, ts_text));
        i = skip_blanks(b, ts_end);
    }
    match b.get(i) {
        None | Some(b'#') => {}
        Some(_) => {
            let rest = line.get(i..).unwrap_or("");
            return Err(ParseErrorKind::Other(format!(
                "unexpected {:?} after the sample's value and timestamp",
                snippet(rest)
            )));
        }
    }
    Ok(SampleLine {
        name,
        repeats,
        labels,
        value,
        timestamp,
    })
}

/// Parses the inside of a label set starting just after `{`; returns the index after `}`.
fn parse_labels<'a>(
    line: &'a str,
    mut i: usize,
    labels: &mut Vec<Label<'a>>,
) -> Result<usize, ParseErrorKind> {
    let b = line.as_bytes();
    loop {
        i = skip_blanks(b, i);
        match b.get(i) {
            None => return Err(malformed("label set is not closed with '}'")),
            Some(b'}') => return Ok(i + 1),
            Some(_) => {}
        }

        let name_start = i;
        i = skip_class(b, i, LABEL_NAME);
        let name = line.get(name_start..i).unwrap_or("");
        if name.is_empty() {
            let rest = line.get(name_start..).unwrap_or("");
            return Err(malformed(&format!(
                "expected a label name at {:?}",
                snippet(rest)
            )));
        }
        if name.as_bytes().first().is_some_and(|c| c.is_ascii_digit()) {
            return Err(ParseErrorKind::InvalidName(snippet(name)));
        }

        i = skip_blanks(b, i);
        if b.get(i) != Some(&b'=') {
            return Err(malformed(&format!(
                "expected '=' after label name {name:?}"
            )));
        }
        i = skip_blanks(b, i + 1);
        if b.get(i) != Some(&b'"') {
            return Err(malformed(&format!(
                "expected '\"' to open the value of label {name:?}"
            )));
        }
        let (value, after) = parse_label_value(line, i + 1, name)?;
        i = after;

        if labels.iter().any(|l| l.name == name) {
            return Err(malformed(&format!("label {name:?} appears twice")));
        }
        labels.push(Label { name, value });

        i = skip_blanks(b, i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Ok(i + 1),
            None => return Err(malformed("label set is not closed with '}'")),
            Some(_) => {
                let rest = line.get(i..).unwrap_or("");
                return Err(malformed(&format!(
                    "expected ',' or '}}' after the value of label {name:?}, found {:?}",
                    snippet(rest)
                )));
            }
        }
    }
}

/// Reads a quoted label value starting just after its opening quote; returns the unescaped
/// value and the index after the closing quote.
fn parse_label_value<'a>(
    line: &'a str,
    start: usize,
    name: &str,
) -> Result<(Cow<'a, str>, usize), ParseErrorKind> {
    let b = line.as_bytes();
    let mut i = start;
    let mut owned: Option<String> = None;
    let mut segment = start;
    loop {
        // Jump to the next quote or backslash; everything between is copied as is.
        if let Some(rest) = b.get(i..) {
            i += rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\')
                .unwrap_or(rest.len());
        }
        match b.get(i) {
            None => {
                return Err(malformed(&format!(
                    "value of label {name:?} is not closed with '\"'"
                )))
            }
            Some(b'"') => break,
            Some(b'\\') => {
                let unescaped = match b.get(i + 1) {
                    Some(b'\\') => '\\',
                    Some(b'"') => '"',
                    Some(b'n') => '\n',
                    _ => {
                        return Err(malformed(&format!(
                        "invalid escape in the value of label {name:?} (only \\\\, \\\" and \\n)"
                    )))
                    }
                };
                let out = owned.get_or_insert_with(String::new);
                out.push_str(line.get(segment..i).unwrap_or(""));
                out.push(unescaped);
                i += 2;
                segment = i;
            }
            Some(_) => i += 1,
        }
    }
    let value = match owned {
        None => Cow::Borrowed(line.get(start..i).unwrap_or("")),
        Some(mut out) => {
            out.push_str(line.get(segment..i).unwrap_or(""));
            Cow::Owned(out)
        }
    };
    Ok((value, i + 1))
}

fn malformed(what: &str) -> ParseErrorKind {
    ParseErrorKind::MalformedLabels(what.to_owned())
}

/// Parses a sample value: a float, an integer, `NaN`, `+Inf`, `-Inf` or `Inf`.
fn parse_value(text: &str) -> Result<f64, ParseErrorKind> {
    // Rust's float grammar is the formats' (digits, `.`, exponent, sign), plus
    // case-insensitive `inf`/`infinity`/`nan`, as Go's ParseFloat that Prometheus uses.
    text.parse::<f64>()
        .map_err(|_| ParseErrorKind::InvalidValue(snippet(text)))
}

/// Parses a timestamp: an integer, or (OpenMetrics only, checked later) a finite float.
fn parse_timestamp(text: &str) -> Result<RawTimestamp, ParseErrorKind> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .map(RawTimestamp::Int)
            .map_err(|_| ParseErrorKind::InvalidTimestamp(snippet(text)));
    }
    // Only digits, sign, point and exponent: this keeps out `NaN`, `Inf` and the like.
    let numeric = text
        .bytes()
        .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c));
    match text.parse::<f64>() {
        Ok(f) if numeric && f.is_finite() => Ok(RawTimestamp::Float(f)),
        _ => Err(ParseErrorKind::InvalidTimestamp(snippet(text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(line: &str) -> SampleLine<'_> {
        parse_sample(line, "").unwrap()
    }

    fn err(line: &str) -> ParseErrorKind {
        parse_sample(line, "").unwrap_err()
    }

    #[test]
    fn previous_name_is_reused_only_when_it_is_the_whole_name() {
        let s = parse_sample("m_bucket{le=\"1\"} 1", "m_bucket").unwrap();
        assert!(s.repeats);
        assert_eq!(s.name, "m_bucket");
        assert!(parse_sample("m_bucket 1", "m_bucket").unwrap().repeats);
        let s = parse_sample("m_bucket_x 1", "m_bucket").unwrap();
        assert!(!s.repeats);
        assert_eq!(s.name, "m_bucket_x");
        assert!(!parse_sample("m_bu 1", "m_bucket").unwrap().repeats);
        assert_eq!(
            parse_sample("m_bucket-x 1", "m_bucket").unwrap_err(),
            ParseErrorKind::InvalidName("m_bucket-x".into())
        );
    }

    #[test]
    fn name_with_colons_and_no_labels() {
        let s = sample("vllm:num_requests_running 3");
        assert_eq!(s.name, "vllm:num_requests_running");
        assert!(s.labels.is_empty());
        assert_eq!(s.value, 3.0);
        assert_eq!(s.timestamp, None);
    }

    #[test]
    fn labels_borrow_when_unescaped_and_own_when_escaped() {
        let s = sample(r#"m{a="plain",b="x\\y\"z\nw"} 1"#);
        assert_eq!(s.labels.len(), 2);
        assert_eq!(s.labels[0].name, "a");
        assert!(matches!(s.labels[0].value, Cow::Borrowed("plain")));
        assert_eq!(s.labels[1].name, "b");
        assert!(matches!(&s.labels[1].value, Cow::Owned(v) if v == "x\\y\"z\nw"));
    }

    #[test]
    fn empty_value_and_utf8_value() {
        let s = sample(r#"m{a="",b="héllo €"} 1"#);
        assert_eq!(s.labels[0].value, "");
        assert_eq!(s.labels[1].value, "héllo €");
    }

    #[test]
    fn trailing_comma_and_spaces_around_tokens() {
        let s = sample("  m { a = \"1\" , b=\"2\", }\t 7 \t");
        assert_eq!(s.name, "m");
        let names: Vec<_> = s
            .labels
            .iter()
            .map(|l| (l.name, l.value.as_ref()))
            .collect();
        assert_eq!(names, [("a", "1"), ("b", "2")]);
        assert_eq!(s.value, 7.0);
        assert_eq!(sample("m{} 1").labels.len(), 0);
        assert_eq!(sample("m{a=\"1\"}2").value, 2.0);
    }

    #[test]
    fn special_and_exponent_values() {
        assert!(sample("m NaN").value.is_nan());
        assert_eq!(sample("m +Inf").value, f64::INFINITY);
        assert_eq!(sample("m Inf").value, f64::INFINITY);
        assert_eq!(sample("m -Inf").value, f64::NEG_INFINITY);
        assert_eq!(sample("m 1.755e+09").value, 1.755e9);
        assert_eq!(sample("m 2.5E-3").value, 0.0025);
        assert_eq!(sample("m -12").value, -12.0);
        assert_eq!(sample("m 1234567890123").value, 1234567890123.0);
    }

    #[test]
    fn timestamps_integer_and_float() {
        assert_eq!(
            sample("m 1 1700000000123").timestamp.unwrap().0,
            RawTimestamp::Int(1700000000123)
        );
        assert_eq!(sample("m 1 -5").timestamp.unwrap().0, RawTimestamp::Int(-5));
        let (ts, text) = sample("m 1 1700000000.5").timestamp.unwrap();
        assert_eq!(ts, RawTimestamp::Float(1700000000.5));
        assert_eq!(text, "1700000000.5");
    }

    #[test]
    fn exemplars_are_ignored() {
        let s = sample(r#"m_total{a="b"} 5 # {trace_id="abc"} 1.0 1700000000.1"#);
        assert_eq!(s.value, 5.0);
        assert_eq!(s.timestamp, None);
        let s = sample(r#"m_bucket{le="1"} 5 1700000000.2 # {trace_id="abc"} 0.4"#);
        assert_eq!(s.timestamp.unwrap().0, RawTimestamp::Float(1700000000.2));
    }

    #[test]
    fn invalid_names() {
        assert_eq!(
            err("foo-bar 1"),
            ParseErrorKind::InvalidName("foo-bar".into())
        );
        assert_eq!(err("1foo 1"), ParseErrorKind::InvalidName("1foo".into()));
        assert_eq!(err("{a=\"b\"} 1"), ParseErrorKind::InvalidName("".into()));
        assert_eq!(err("fé 1"), ParseErrorKind::InvalidName("fé".into()));
        assert_eq!(
            err("m{1a=\"b\"} 1"),
            ParseErrorKind::InvalidName("1a".into())
        );
    }

    #[test]
    fn malformed_labels() {
        for line in [
            "m{a=\"b\" 1",
            "m{a=\"b",
            "m{a=\"b\\",
            "m{a=b} 1",
            "m{a \"b\"} 1",
            "m{,} 1",
            "m{a=\"b\" c=\"d\"} 1",
            "m{a=\"x\\t\"} 1",
            "m{a=\"1\",a=\"2\"} 1",
            "m{a-b=\"1\"} 1",
        ] {
            assert!(
                matches!(err(line), ParseErrorKind::MalformedLabels(_)),
                "{line}"
            );
        }
    }

    #[test]
    fn invalid_values_and_timestamps() {
        assert_eq!(err("m"), ParseErrorKind::InvalidValue("".into()));
        assert_eq!(err("m{a=\"b\"}"), ParseErrorKind::InvalidValue("".into()));
        assert_eq!(err("m 1,5"), ParseErrorKind::InvalidValue("1,5".into()));
        assert_eq!(err("m abc"), ParseErrorKind::InvalidValue("abc".into()));
        assert_eq!(
            err("m 1 abc"),
            ParseErrorKind::InvalidTimestamp("abc".into())
        );
        assert_eq!(
            err("m 1 NaN"),
            ParseErrorKind::InvalidTimestamp("NaN".into())
        );
        assert_eq!(
            err("m 1 1e999"),
            ParseErrorKind::InvalidTimestamp("1e999".into())
        );
        assert_eq!(
            err("m 1 99999999999999999999"),
            ParseErrorKind::InvalidTimestamp("99999999999999999999".into())
        );
        assert!(matches!(err("m 1 2 3"), ParseErrorKind::Other(_)));
    }

    #[test]
    fn help_unescaping() {
        assert!(matches!(
            unescape_help("plain text"),
            Cow::Borrowed("plain text")
        ));
        assert_eq!(unescape_help(r#"a\\b\nc\"d"#), "a\\b\nc\"d");
        assert_eq!(
            unescape_help(r"keep \t and trailing \"),
            "keep \\t and trailing \\"
        );
    }

    #[test]
    fn snippets_cut_on_char_boundaries() {
        let long = "é".repeat(100);
        let s = snippet(&long);
        assert!(s.ends_with("..."));
        assert!(s.len() <= SNIPPET_MAX + 3);
        assert_eq!(snippet("short"), "short");
    }
}
