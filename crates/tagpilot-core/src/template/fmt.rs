//! Go's `fmt.Sprint`, `Sprintln` and `Sprintf` over template values: the verbs commit templates use
//! (`%v %+v %s %q %d %t %c %x %X %o %b %e %f %g %T %U %%`), flags, width and precision, and Go's
//! `%!verb(type=value)` notes for mismatches.

use std::fmt::Write as _;

/// The largest width or precision honoured: one past the template output limit.
const CAP: u64 = super::MAX_OUTPUT as u64 + 1;

use super::value::{Value, format_float, quote, write_value};

/// `fmt.Sprint`: spaces between operands when neither side is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        write_value(&mut out, a, false);
        prev_string = is_string;
    }
    out
}

/// `fmt.Sprintln`: spaces between all operands and a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_value(&mut out, a, false);
    }
    out.push('\n');
    out
}

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::CharIndices>,
                      argi: &mut usize|
         -> Option<usize> {
            if chars.peek().map(|&(_, c)| c) == Some('*') {
                chars.next();
                // A width or precision past the output limit is cut to just past it: the result is then
                // refused by the limit on function results instead of being allocated whole.
                let v = match args.get(*argi) {
                    Some(Value::Int(i, _)) => Some(((*i).max(0) as u64).min(CAP) as usize),
                    _ => None,
                };
                *argi += 1;
                return v;
            }
            let mut n: Option<usize> = None;
            while let Some(&(_, d)) = chars.peek() {
                let Some(v) = d.to_digit(10) else { break };
                n = Some(
                    (n.unwrap_or(0).saturating_mul(10).saturating_add(v as usize))
                        .min(CAP as usize),
                );
                chars.next();
            }
            n
        };
        spec.width = number(&mut chars, &mut argi);
        if chars.peek().map(|&(_, c)| c) == Some('.') {
            chars.next();
            spec.prec = Some(number(&mut chars, &mut argi).unwrap_or(0));
        }
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        argi += 1;
        let s = format_arg(arg, verb, spec);
        pad(&mut out, &s, spec, arg);
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match a {
                Value::Nil => out.push_str("<nil>"),
                a => {
                    let _ = write!(out, "{}={}", a.type_name(), a.to_go_string());
                }
            }
        }
        out.push(')');
    }
    out
}

fn pad(out: &mut String, s: &str, spec: Spec, arg: &Value) {
    let len = s.chars().count();
    let Some(w) = spec.width.filter(|&w| w > len) else {
        out.push_str(s);
        return;
    };
    let fill = w - len;
    if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && matches!(arg, Value::Int(..) | Value::Float(_)) {
        let (sign, digits) = match s.as_bytes().first() {
            Some(b'-' | b'+' | b' ') => s.split_at(1),
            _ => ("", s),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(s);
    }
}

fn bad_verb(arg: &Value, verb: char) -> String {
    match arg {
        Value::Nil => format!("%!{verb}(<nil>)"),
        a => format!("%!{verb}({}={})", a.type_name(), a.to_go_string()),
    }
}

fn format_arg(arg: &Value, verb: char, spec: Spec) -> String {
    if verb == 'T' {
        return arg.type_name();
    }
    match arg {
        Value::Nil => match verb {
            'v' => "<nil>".into(),
            _ => bad_verb(arg, verb),
        },
        Value::Bool(b) => match verb {
            'v' | 't' => b.to_string(),
            _ => bad_verb(arg, verb),
        },
        Value::Int(i, _) => format_int(*i, verb, spec).unwrap_or_else(|| bad_verb(arg, verb)),
        Value::Float(f) => format_float_verb(*f, verb, spec).unwrap_or_else(|| bad_verb(arg, verb)),
        Value::Str(s) => format_string(s, verb, spec).unwrap_or_else(|| bad_verb(arg, verb)),
        Value::Struct(st)
            if st.display.is_some() && matches!(verb, 'v' | 's' | 'q' | 'x' | 'X') =>
        {
            format_string(st.display.as_deref().unwrap_or_default(), verb, spec).unwrap_or_default()
        }
        Value::List(l) => {
            let items: Vec<String> = l.items.iter().map(|v| format_arg(v, verb, spec)).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Map(m) => {
            let items: Vec<String> = m
                .borrow()
                .entries()
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        format_arg(k, verb, spec),
                        format_arg(v, verb, spec)
                    )
                })
                .collect();
            format!("map[{}]", items.join(" "))
        }
        Value::Struct(st) => {
            let items: Vec<String> = st
                .fields
                .iter()
                .map(|f| {
                    let v = format_arg(&f.value, verb, spec);
                    if spec.plus && verb == 'v' {
                        format!("{}:{v}", f.name)
                    } else {
                        v
                    }
                })
                .collect();
            format!("{{{}}}", items.join(" "))
        }
    }
}

fn with_sign(neg: bool, body: String, spec: Spec) -> String {
    if neg {
        format!("-{body}")
    } else if spec.plus {
        format!("+{body}")
    } else if spec.space {
        format!(" {body}")
    } else {
        body
    }
}

fn format_int(i: i64, verb: char, spec: Spec) -> Option<String> {
    let neg = i < 0;
    let m = i.unsigned_abs();
    let body = match verb {
        'v' | 'd' => m.to_string(),
        'b' => format!("{m:b}"),
        'o' => {
            if spec.sharp {
                format!("0{m:o}")
            } else {
                format!("{m:o}")
            }
        }
        'O' => format!("0o{m:o}"),
        'x' => {
            if spec.sharp {
                format!("0x{m:x}")
            } else {
                format!("{m:x}")
            }
        }
        'X' => {
            if spec.sharp {
                format!("0X{m:X}")
            } else {
                format!("{m:X}")
            }
        }
        'c' => return Some(char::from_u32(i as u32).unwrap_or('\u{fffd}').to_string()),
        'q' => {
            let c = char::from_u32(i as u32).unwrap_or('\u{fffd}');
            let q = quote(&c.to_string());
            let inner = &q[1..q.len() - 1];
            let inner = if inner == "\\\"" {
                "\""
            } else if inner == "'" {
                "\\'"
            } else {
                inner
            };
            return Some(format!("'{inner}'"));
        }
        'U' => return Some(format!("U+{:04X}", i)),
        _ => return None,
    };
    let body = match spec.prec {
        Some(p) if body.len() < p => format!("{}{body}", "0".repeat(p - body.len())),
        _ => body,
    };
    Some(with_sign(neg, body, spec))
}

fn format_float_verb(f: f64, verb: char, spec: Spec) -> Option<String> {
    let s = match verb {
        'v' | 'g' => format_float(f, 'g', spec.prec),
        'G' => format_float(f, 'g', spec.prec).to_uppercase(),
        'e' => format_float(f, 'e', Some(spec.prec.unwrap_or(6))),
        'E' => format_float(f, 'e', Some(spec.prec.unwrap_or(6))).to_uppercase(),
        'f' | 'F' => format_float(f, 'f', Some(spec.prec.unwrap_or(6))),
        _ => return None,
    };
    if !s.starts_with('-') && (spec.plus || spec.space) {
        return Some(format!("{}{s}", if spec.plus { '+' } else { ' ' }));
    }
    Some(s)
}

fn format_string(s: &str, verb: char, spec: Spec) -> Option<String> {
    let s: &str = match spec.prec {
        Some(p) => match s.char_indices().nth(p) {
            Some((i, _)) => &s[..i],
            None => s,
        },
        None => s,
    };
    Some(match verb {
        'v' | 's' => s.to_string(),
        'q' => {
            if spec.sharp && !s.contains('`') {
                format!("`{s}`")
            } else {
                quote(s)
            }
        }
        'x' => s
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(if spec.space { " " } else { "" }),
        'X' => s
            .bytes()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(if spec.space { " " } else { "" }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sprintf_as_go() {
        let args = [
            Value::str("a\"b\n\x01é"),
            Value::str("hi"),
            Value::Float(3.14659),
            Value::int(7),
            Value::int(5),
            Value::int(42),
            Value::Bool(true),
            Value::Float(1234.5678),
            Value::Float(0.000012),
            Value::list(vec![Value::int(1), Value::int(2)]),
            Value::str("str"),
            Value::int(42),
            Value::int(65),
            Value::int(0x1F600),
        ];
        assert_eq!(
            sprintf("%q|%x|%5.2f|%-4d|%+d|%05d|%t|%e|%g|%v|%d|%s|%c|%U", &args),
            "\"a\\\"b\\n\\x01é\"|6869| 3.15|7   |+5|00042|true|1.234568e+03|1.2e-05|[1 2]|%!d(string=str)|%!s(int=42)|A|U+1F600"
        );
        assert_eq!(sprintf("%d %d", &[Value::int(1)]), "1 %!d(MISSING)");
        assert_eq!(
            sprintf("%d", &[Value::int(1), Value::str("x")]),
            "1%!(EXTRA string=x)"
        );
        assert_eq!(
            sprint(&[
                Value::int(1),
                Value::int(2),
                Value::str("a"),
                Value::str("b"),
                Value::int(3),
                Value::Nil
            ]),
            "1 2ab3 <nil>"
        );
    }
}
