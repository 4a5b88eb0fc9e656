//! Go's `strconv.ParseFloat(s, 64)`, the grammar Flux's numerical policy accepts.
//!
//! Decimal and hexadecimal (`0x1p4`, exponent required) floats, an optional sign, `_` between digits, and
//! `Inf`/`Infinity`/`NaN` in any case (a sign only on the infinities). A finite literal too large for an f64 is an
//! error, as Go reports it with `ErrRange`; underflow rounds to zero without error, as in Go.

/// Parses `s` as Go's `ParseFloat(s, 64)` does; `None` when Go returns an error.
pub fn parse_go_float(s: &str) -> Option<f64> {
    // Fast path: up to 15 ASCII digits (build numbers, timestamps) are exact as an integer.
    if !s.is_empty() && s.len() <= 15 && s.bytes().all(|c| c.is_ascii_digit()) {
        return Some(s.bytes().fold(0u64, |n, c| n * 10 + u64::from(c - b'0')) as f64);
    }
    if let Some(f) = special(s) {
        return Some(f);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let negative = match b.first() {
        Some(b'+') => {
            i = 1;
            false
        }
        Some(b'-') => {
            i = 1;
            true
        }
        _ => false,
    };
    let hex = b.len() > i + 2 && b[i] == b'0' && (b[i + 1] | 0x20) == b'x';
    if hex {
        i += 2;
    }
    let is_digit = |c: u8| c.is_ascii_digit() || (hex && c.is_ascii_hexdigit());
    let mut saw_dot = false;
    let mut saw_digits = false;
    let mut underscores = false;
    let mantissa_start = i;
    while i < b.len() {
        let c = b[i];
        if c == b'_' {
            underscores = true;
        } else if c == b'.' {
            if saw_dot {
                break;
            }
            saw_dot = true;
        } else if is_digit(c) {
            saw_digits = true;
        } else {
            break;
        }
        i += 1;
    }
    if !saw_digits {
        return None;
    }
    let mantissa_end = i;
    let exp_char = if hex { b'p' } else { b'e' };
    let mut exponent: Option<(usize, usize)> = None;
    if i < b.len() && (b[i] | 0x20) == exp_char {
        i += 1;
        if i >= b.len() {
            return None;
        }
        let exp_start = i;
        if b[i] == b'+' || b[i] == b'-' {
            i += 1;
        }
        let digits_start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            if b[i] == b'_' {
                underscores = true;
            }
            i += 1;
        }
        if !b[digits_start..i].iter().any(u8::is_ascii_digit) {
            return None;
        }
        exponent = Some((exp_start, i));
    } else if hex {
        return None;
    }
    if i != b.len() {
        return None;
    }
    if underscores && !underscores_ok(s) {
        return None;
    }
    let value = if hex {
        hex_value(
            &s[mantissa_start..mantissa_end],
            exponent.map(|(a, z)| &s[a..z]),
        )?
    } else {
        let digits = &s[mantissa_start..i];
        if underscores {
            digits.replace('_', "").parse::<f64>().ok()?
        } else {
            digits.parse::<f64>().ok()?
        }
    };
    if value.is_infinite() {
        return None; // ErrRange: a finite literal that overflows
    }
    Some(if negative { -value } else { value })
}

/// `Inf`, `+Inf`, `-Infinity`, `NaN` (any case), which Go accepts whole or not at all.
fn special(s: &str) -> Option<f64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        return Some(sign * f64::INFINITY);
    }
    if rest.len() == s.len() && s.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    None
}

/// Go's `underscoreOK`: `_` only between digits, or between a base prefix and a digit.
fn underscores_ok(s: &str) -> bool {
    let mut b = s.as_bytes();
    if matches!(b.first(), Some(b'+' | b'-')) {
        b = &b[1..];
    }
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = (b[1] | 0x20) == b'x';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// The value of a hex mantissa (`1.8`, underscores allowed) times 2^exponent.
fn hex_value(mantissa: &str, exponent: Option<&str>) -> Option<f64> {
    let mut bits: u64 = 0;
    let mut scale: i64 = 0; // binary exponent adjustment
    let mut sticky = false;
    let mut after_dot = false;
    for c in mantissa.chars() {
        match c {
            '_' => {}
            '.' => after_dot = true,
            _ => {
                let d = u64::from(c.to_digit(16)?);
                if bits >> 60 == 0 {
                    bits = bits * 16 + d;
                    if after_dot {
                        scale -= 4;
                    }
                } else {
                    sticky |= d != 0;
                    if !after_dot {
                        scale += 4;
                    }
                }
            }
        }
    }
    if sticky {
        bits |= 1;
    }
    let exp: i64 = exponent
        .map(|e| {
            e.replace('_', "")
                .parse::<i64>()
                .unwrap_or(if e.starts_with('-') {
                    -100_000
                } else {
                    100_000
                })
        })
        .unwrap_or(0);
    let total = (exp + scale).clamp(-100_000, 100_000);
    let mut value = bits as f64;
    // Scale in steps so that intermediate results neither overflow nor underflow early.
    let mut remaining = total;
    while remaining != 0 {
        let step = remaining.clamp(-1000, 1000);
        value *= 2f64.powi(step as i32);
        remaining -= step;
        if value == 0.0 || value.is_infinite() {
            break;
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::parse_go_float as p;

    #[test]
    fn accepts_go_float_syntax() {
        assert_eq!(p("1"), Some(1.0));
        assert_eq!(p("-62"), Some(-62.0));
        assert_eq!(p("+5"), Some(5.0));
        assert_eq!(p("1e3"), Some(1000.0));
        assert_eq!(p("1E-2"), Some(0.01));
        assert_eq!(p(".5"), Some(0.5));
        assert_eq!(p("5."), Some(5.0));
        assert_eq!(p("1_000"), Some(1000.0));
        assert_eq!(p("1_000.000_1"), Some(1000.0001));
        assert_eq!(p("0x1p4"), Some(16.0));
        assert_eq!(p("0x1.8p1"), Some(3.0));
        assert_eq!(p("0X_1P-2"), Some(0.25));
        assert_eq!(p("Inf"), Some(f64::INFINITY));
        assert_eq!(p("-infinity"), Some(f64::NEG_INFINITY));
        assert!(p("NaN").unwrap().is_nan());
        assert_eq!(p("1e-400"), Some(0.0));
        assert_eq!(p("007"), Some(7.0));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "", "+", "-", ".", "e3", "1e", "1e+", "1a", "a", "0x1", "0x", "0xp1", "1__0", "_1",
            "1_", "1._0", "+nan", "infin", "1e400", "0b101", "1.2.3", " 1", "1 ", "0x1.8", "--1",
            "1e3.5",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }
}
