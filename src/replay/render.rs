//! One stored scrape back to Prometheus text format 0.0.4, as vLLM's Python client would
//! have served it: `# HELP`/`# TYPE` per family, families in the order they were stored,
//! label values escaped, histogram children with their buckets ascending by `le` (`+Inf`
//! last) followed by `_count` and `_sum` (prometheus_client's order, which vLLM serves), and
//! numbers formatted like prometheus_client's `floatToGoString` (`0.1`, `1.0`, `1e+06`,
//! `+Inf`).
//!
//! What cannot come back: the original label order (the recording stores labels sorted by
//! name, and `le` is written last, as prometheus_client does), NaN payloads (every NaN is
//! written `NaN`), and the exact spelling of numbers (`1` and `1.0` are one double).

use crate::promtext::MetricType;
use crate::recording::{Recording, Scrape, SeriesInfo};
use std::collections::HashMap;
use std::fmt::Write;

/// One sample to write: its series, value and exposition timestamp.
type Row<'a> = (&'a SeriesInfo, f64, Option<i64>);

/// One family of a scrape, with its samples grouped for output.
struct FamilyOut<'a> {
    info: &'a SeriesInfo,
    /// Rows in stored order: (series, value, timestamp).
    rows: Vec<Row<'a>>,
}

/// Renders one stored scrape as a text 0.0.4 body. A failed scrape (no samples) renders as
/// an empty body.
pub fn render_scrape(rec: &Recording, scrape: &Scrape) -> String {
    let mut families: Vec<FamilyOut<'_>> = Vec::new();
    // (family, type, help) -> position; looked up only, never iterated into output.
    let mut at: HashMap<(&str, MetricType, Option<&str>), usize> = HashMap::new();
    for (n, s) in scrape.samples.iter().enumerate() {
        let Some(info) = rec.series.get(s.series as usize) else {
            continue;
        };
        let key = (&*info.family, info.metric_type, info.help.as_deref());
        let i = *at.entry(key).or_insert_with(|| {
            families.push(FamilyOut {
                info,
                rows: Vec::new(),
            });
            families.len() - 1
        });
        families[i]
            .rows
            .push((info, s.value, scrape.timestamp_ms(n)));
    }
    let mut out = String::with_capacity(scrape.samples.len() * 96);
    for f in &families {
        write_family(&mut out, f);
    }
    out
}

fn write_family(out: &mut String, f: &FamilyOut<'_>) {
    let name = &*f.info.family;
    if let Some(help) = &f.info.help {
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "# TYPE {name} {}", f.info.metric_type.as_str());
    match f.info.metric_type {
        MetricType::Histogram | MetricType::GaugeHistogram => {
            for row in histogram_order(name, &f.rows) {
                write_sample(out, row);
            }
        }
        _ => {
            for row in &f.rows {
                write_sample(out, row);
            }
        }
    }
}

/// Histogram rows child by child (children = label sets, in order of first appearance):
/// buckets by ascending `le`, then `_count`/`_gcount`, `_sum`/`_gsum`, then anything else in
/// stored order.
fn histogram_order<'r, 'a>(family: &str, rows: &'r [Row<'a>]) -> Vec<&'r Row<'a>> {
    let rank = |s: &SeriesInfo| -> u8 {
        let suffix = s.name.strip_prefix(family).unwrap_or("");
        match suffix {
            "_bucket" if s.le.is_some() => 0,
            "_count" | "_gcount" => 1,
            "_sum" | "_gsum" => 2,
            _ => 3,
        }
    };
    let mut children: Vec<&str> = Vec::new();
    for (s, _, _) in rows {
        if !children.contains(&&*s.labels) {
            children.push(&s.labels);
        }
    }
    let mut ordered: Vec<(usize, u8, usize, &Row<'_>)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let child = children
                .iter()
                .position(|c| *c == &*r.0.labels)
                .unwrap_or(0);
            (child, rank(r.0), i, r)
        })
        .collect();
    ordered.sort_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| match (a.1, a.3 .0.le, b.3 .0.le) {
                (0, Some(x), Some(y)) => x.total_cmp(&y),
                _ => std::cmp::Ordering::Equal,
            })
            .then(a.2.cmp(&b.2))
    });
    ordered.into_iter().map(|(_, _, _, r)| r).collect()
}

fn write_sample(out: &mut String, (s, value, ts): &Row<'_>) {
    out.push_str(&s.name);
    // The canonical label string is already escaped as the text format wants.
    match (s.labels.is_empty(), s.le) {
        (true, None) => {}
        (false, None) => {
            out.push('{');
            out.push_str(&s.labels);
            out.push('}');
        }
        (empty, Some(le)) => {
            out.push('{');
            out.push_str(&s.labels);
            if !empty {
                out.push(',');
            }
            out.push_str("le=\"");
            out.push_str(&go_float(le));
            out.push_str("\"}");
        }
    }
    out.push(' ');
    out.push_str(&go_float(*value));
    if let Some(ts) = ts {
        let _ = write!(out, " {ts}");
    }
    out.push('\n');
}

/// A float as prometheus_client's `floatToGoString` writes it: `+Inf`, `-Inf`, `NaN`,
/// Python's `repr` otherwise (`0.1`, `1.0`, `1e-05`), except that positive numbers of 7 or
/// more integer digits switch to Go's exponent form (`1e+06`, `1.5e+07`). Every output reads
/// back as the same double.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let s = python_repr(v);
    match s.find('.') {
        Some(dot) if v > 0.0 && dot > 6 && !s.contains('e') => {
            let mantissa = format!("{}.{}{}", &s[..1], &s[1..dot], &s[dot + 1..]);
            let mantissa = mantissa.trim_end_matches(['0', '.']);
            format!("{mantissa}e+0{}", dot - 1)
        }
        _ => s,
    }
}

/// Python's `repr(float)`: the shortest digits that read back as `v`, in fixed notation for
/// exponents -4..15 (with `.0` on integral values) and scientific notation otherwise
/// (`1e-05`, `1.5e+16`).
fn python_repr(v: f64) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits Python uses.
    let sci = format!("{v:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mant) = match mant.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    if !(-4..16).contains(&exp) {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{esign}{:02}", exp.abs());
    }
    if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            let zeros = "0".repeat(int_len - digits.len());
            format!("{sign}{digits}{zeros}.0")
        } else {
            format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
        }
    } else {
        let zeros = "0".repeat((-exp - 1) as usize);
        format!("{sign}0.{zeros}{digits}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_prometheus_client_writes_them() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (2.5, "2.5"),
            (7.75, "7.75"),
            (100.0, "100.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456.0, "123456.0"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (2.5e7, "2.5e+07"),
            (1.5e16, "1.5e+16"),
            (1e22, "1e+22"),
            (-3.0, "-3.0"),
            (-1e6, "-1000000.0"),
            (-2.5e-5, "-2.5e-05"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (1_073_741_824.0, "1.073741824e+09"),
            (0.30000000000000004, "0.30000000000000004"),
        ];
        for &(v, want) in cases {
            assert_eq!(go_float(v), want, "{v:e}");
            if !v.is_nan() {
                assert_eq!(
                    want.parse::<f64>().unwrap().to_bits(),
                    v.to_bits(),
                    "{want}"
                );
            }
        }
    }
}
