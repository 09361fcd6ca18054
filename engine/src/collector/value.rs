//! The values of a CombinedStatus's cells, as KubeStellar encodes them
//! (`pkg/status/combinedstatus-resolution.go:678-782`): a union of `String`, `Number`
//! (its text in `float`), `Bool`, `Null` and `Object` (any other JSON: lists, maps,
//! timestamps). [`Cell`] is that union in an ordered, hashable form, so that cells can be
//! dataflow records and group keys; numbers are written as Go's
//! `strconv.FormatFloat(x, 'g', -1, 64)` writes them ([`go_float`]).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One cell of a CombinedStatus row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Cell {
    /// `{type: Null}`.
    Null,
    /// `{type: Bool, bool}`.
    Bool(bool),
    /// `{type: Number, float}`: the number's text (an integer's decimal digits, or a
    /// float as [`go_float`] writes it).
    Number(String),
    /// `{type: String, string}`.
    String(String),
    /// `{type: Object, object}`: any other JSON value, as its compact JSON text.
    Object(String),
}

impl Cell {
    /// An integer cell.
    pub fn int(i: i64) -> Cell {
        Cell::Number(i.to_string())
    }

    /// An unsigned integer cell.
    pub fn uint(u: u64) -> Cell {
        Cell::Number(u.to_string())
    }

    /// A float cell ([`go_float`]).
    pub fn float(x: f64) -> Cell {
        Cell::Number(go_float(x))
    }

    /// A cell holding `value` as an `Object` (lists, maps, timestamps as JSON strings).
    pub fn object(value: &Value) -> Cell {
        Cell::Object(value.to_string())
    }

    /// The number this cell holds, if it is a number.
    pub fn number(&self) -> Option<f64> {
        match self {
            Cell::Number(text) => text.parse().ok(),
            _ => None,
        }
    }

    /// The cell in KubeStellar's JSON layout (`{"type": "Number", "float": "2"}`, ...).
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Null => json!({"type": "Null"}),
            Cell::Bool(b) => json!({"type": "Bool", "bool": b}),
            Cell::Number(n) => json!({"type": "Number", "float": n}),
            Cell::String(s) => json!({"type": "String", "string": s}),
            Cell::Object(text) => {
                let object: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                json!({"type": "Object", "object": object})
            }
        }
    }
}

/// `x` as Go's `strconv.FormatFloat(x, 'g', -1, 64)` writes it: the shortest digits
/// that read back as `x`, in exponent form (`1e+06`, `1.234567e+06`, `1e-05`: at least
/// two exponent digits) when the decimal exponent is below -4 or at least 6 (the
/// precision Go's shortest `'g'` decides with), else positional (`100000`, `0.0001`);
/// `+Inf`, `-Inf`, `NaN`; `-0` as `-0`.
pub fn go_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `d.ddd` then `e` and the
    // decimal exponent.
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("LowerExp writes an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if x < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{point}{rest}e{exp_sign}{:02}", exponent.abs());
    }
    // Positional: the point sits after `exponent + 1` digits.
    let point = exponent + 1;
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against what Go 1.26 prints (`strconv.FormatFloat(x, 'g', -1, 64)`), run here.
    #[test]
    fn floats_are_written_as_go_writes_them() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (1.0, "1"),
            (2.5, "2.5"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (123456789.0, "1.23456789e+08"),
            (1e20, "1e+20"),
            (1e21, "1e+21"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (0.0001234, "0.0001234"),
            (1.0 / 3.0, "0.3333333333333333"),
            (-7.0, "-7"),
            (2e9, "2e+09"),
            (9007199254740993.0, "9.007199254740992e+15"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (12345678.9, "1.23456789e+07"),
            (1234567.0, "1.234567e+06"),
            (100000.5, "100000.5"),
            (999999.0, "999999"),
            (999999.5, "999999.5"),
            (123456.7, "123456.7"),
            (12345678912345678.0, "1.2345678912345678e+16"),
            (0.00001234, "1.234e-05"),
            (0.000099, "9.9e-05"),
        ];
        for (x, want) in cases {
            assert_eq!(go_float(*x), *want, "{x:e}");
        }
    }

    #[test]
    fn cells_in_kubestellars_layout() {
        assert_eq!(
            Cell::int(2).to_json(),
            json!({"type": "Number", "float": "2"})
        );
        assert_eq!(Cell::float(f64::NAN).to_json()["float"], "NaN");
        assert_eq!(Cell::Null.to_json(), json!({"type": "Null"}));
        assert_eq!(
            Cell::String("c1".into()).to_json(),
            json!({"type": "String", "string": "c1"})
        );
        assert_eq!(
            Cell::object(&json!({"a": [1, 2]})).to_json(),
            json!({"type": "Object", "object": {"a": [1, 2]}})
        );
        assert_eq!(
            Cell::Bool(true).to_json(),
            json!({"type": "Bool", "bool": true})
        );
        assert_eq!(Cell::int(3).number(), Some(3.0));
    }
}
