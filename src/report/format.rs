//! Number and unit formatting, the one place a float becomes text. Every text renderer (the
//! report's and `compare`'s) and every sentence the engine writes with a number in it goes
//! through here, so the same value always reads the same way: a fixed precision per use, no
//! `-0.0`, `-` for a missing value.

/// Shown for every missing value.
pub const MISSING: &str = "-";
/// Marks a catalog-derived figure.
pub const EST: &str = "(est)";

/// Formats a number at `prec` decimals; `-` when absent or not finite. A value that rounds to
/// zero is printed without a sign, so `-0.0` never appears.
pub fn num(v: Option<f64>, prec: usize) -> String {
    match v {
        Some(x) if x.is_finite() => {
            let s = format!("{x:.prec$}");
            if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
                s[1..].to_string()
            } else {
                s
            }
        }
        _ => MISSING.to_string(),
    }
}

/// A number with an explicit sign (`+3.1`, `-2.0`) at `prec` decimals; a value that rounds to
/// zero has no sign (`0.0`).
pub fn signed(x: f64, prec: usize) -> String {
    let s = format!("{x:+.prec$}");
    if s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// [`signed`] for an optional value; `-` when absent or not finite.
pub fn signed_opt(v: Option<f64>, prec: usize) -> String {
    match v {
        Some(x) if x.is_finite() => signed(x, prec),
        _ => MISSING.to_string(),
    }
}

/// A number with a unit (`12.5 ms`), or `-`.
pub fn with_unit(v: Option<f64>, prec: usize, unit: &str) -> String {
    match v {
        Some(_) => format!("{} {unit}", num(v, prec)),
        None => MISSING.to_string(),
    }
}

/// Appends ` (est)` to a present value.
pub fn est(s: String) -> String {
    if s == MISSING {
        s
    } else {
        format!("{s} {EST}")
    }
}

/// An optional string, or `-`.
pub fn opt_str(v: Option<&str>) -> String {
    v.map_or_else(|| MISSING.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_precision_without_negative_zero() {
        assert_eq!(num(Some(-0.00001), 1), "0.0");
        assert_eq!(num(Some(-0.06), 1), "-0.1");
        assert_eq!(num(Some(2.345), 2), "2.35");
        assert_eq!(num(None, 1), "-");
        assert_eq!(num(Some(f64::NAN), 1), "-");
        assert_eq!(signed(3.06, 1), "+3.1");
        assert_eq!(signed(-0.04, 1), "0.0");
        assert_eq!(signed(-2.0, 1), "-2.0");
        assert_eq!(signed_opt(None, 1), "-");
        assert_eq!(with_unit(Some(12.5), 1, "ms"), "12.5 ms");
        assert_eq!(with_unit(None, 1, "ms"), "-");
        assert_eq!(est("3.2".into()), "3.2 (est)");
        assert_eq!(est(MISSING.into()), "-");
        assert_eq!(opt_str(None), "-");
    }
}
