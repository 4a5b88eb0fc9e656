//! Template values: the Go types a commit-message template sees, with Go's `fmt` printing and ordering.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::rc::Rc;

/// A value as Go's `text/template` sees it through reflection.
#[derive(Clone, Debug)]
pub enum Value {
    /// A nil interface (`<nil>` when printed by fmt, `<no value>` when printed by an action).
    Nil,
    /// A `bool`.
    Bool(bool),
    /// A signed integer of the given Go type.
    Int(i64, IntType),
    /// A `float64`.
    Float(f64),
    /// A `string`.
    Str(Rc<str>),
    /// A slice.
    List(Rc<List>),
    /// A map; shared and mutable, as sprig's `set` and `unset` change it in place.
    Map(Rc<RefCell<Map>>),
    /// A struct, with its fields, its zero-argument methods and an optional `String()`.
    Struct(Rc<Struct>),
}

/// Go's integer types that templates meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntType {
    /// `int`: number constants and `len`.
    Int,
    /// `int64`: sprig's arithmetic.
    Int64,
    /// `int32` (`rune`): character constants in sprig's string functions.
    Int32,
}

impl IntType {
    fn name(self) -> &'static str {
        match self {
            IntType::Int => "int",
            IntType::Int64 => "int64",
            IntType::Int32 => "int32",
        }
    }
}

/// A Go slice: its element type name (for `%T`) and its items.
#[derive(Clone, Debug)]
pub struct List {
    /// Go's element type, e.g. `interface {}` or `string`.
    pub elem_type: &'static str,
    /// The items.
    pub items: Vec<Value>,
}

/// Drops nested lists and maps with a loop, not recursion: a value nested thousands deep must not overflow
/// the stack when it goes away.
impl Drop for List {
    fn drop(&mut self) {
        drop_nested(std::mem::take(&mut self.items));
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        drop_nested(entries.into_iter().flat_map(|(k, v)| [k, v]).collect());
    }
}

fn drop_nested(mut stack: Vec<Value>) {
    while let Some(v) = stack.pop() {
        match v {
            Value::List(rc) => {
                if let Ok(mut l) = Rc::try_unwrap(rc) {
                    stack.append(&mut l.items);
                }
            }
            Value::Map(rc) => {
                if let Ok(cell) = Rc::try_unwrap(rc) {
                    let mut m = cell.into_inner();
                    for (k, v) in std::mem::take(&mut m.entries) {
                        stack.push(k);
                        stack.push(v);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A Go map, kept in the order Go's `fmtsort` gives its keys (the order of `range` and of printing).
#[derive(Clone, Debug, Default)]
pub struct Map {
    /// Go's type, e.g. `map[string]interface {}`.
    pub type_name: &'static str,
    entries: Vec<(Value, Value)>,
}

/// A Go struct value.
#[derive(Clone, Debug)]
pub struct Struct {
    /// Go's type name, e.g. `update.ObjectIdentifier`.
    pub type_name: String,
    /// Fields in declaration order; `embedded` fields promote theirs.
    pub fields: Vec<Field>,
    /// Zero-argument methods, evaluated up front (`.Changed.Objects`, `.Updated.Images`).
    pub methods: Vec<(String, Value)>,
    /// What `String()` returns, when the type has that method.
    pub display: Option<String>,
}

/// One struct field.
#[derive(Clone, Debug)]
pub struct Field {
    /// The field name.
    pub name: String,
    /// The value.
    pub value: Value,
    /// Whether the field is embedded (its fields and methods are promoted).
    pub embedded: bool,
}

impl Map {
    /// An empty `map[string]interface {}`.
    pub fn new() -> Map {
        Map {
            type_name: "map[string]interface {}",
            entries: Vec::new(),
        }
    }

    /// An empty map of the given Go type.
    pub fn typed(type_name: &'static str) -> Map {
        Map {
            type_name,
            entries: Vec::new(),
        }
    }

    /// Sets `key` to `value`, replacing an equal key.
    pub fn insert(&mut self, key: Value, value: Value) {
        match self.entries.binary_search_by(|(k, _)| compare(k, &key)) {
            Ok(i) => self.entries[i].1 = value,
            Err(i) => self.entries.insert(i, (key, value)),
        }
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &Value) -> Option<&Value> {
        self.entries
            .binary_search_by(|(k, _)| compare(k, key))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// The value stored under the string `key`.
    pub fn get_str(&self, key: &str) -> Option<&Value> {
        self.get(&Value::str(key))
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &Value) {
        if let Ok(i) = self.entries.binary_search_by(|(k, _)| compare(k, key)) {
            self.entries.remove(i);
        }
    }

    /// The entries in key order.
    pub fn entries(&self) -> &[(Value, Value)] {
        &self.entries
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Struct {
    /// A struct of the given type with no fields yet.
    pub fn new(type_name: impl Into<String>) -> Struct {
        Struct {
            type_name: type_name.into(),
            fields: Vec::new(),
            methods: Vec::new(),
            display: None,
        }
    }

    /// Adds a field.
    pub fn field(mut self, name: &str, value: Value) -> Struct {
        self.fields.push(Field {
            name: name.to_string(),
            value,
            embedded: false,
        });
        self
    }

    /// Adds an embedded field.
    pub fn embed(mut self, name: &str, value: Value) -> Struct {
        self.fields.push(Field {
            name: name.to_string(),
            value,
            embedded: true,
        });
        self
    }

    /// Adds a zero-argument method with its result.
    pub fn method(mut self, name: &str, value: Value) -> Struct {
        self.methods.push((name.to_string(), value));
        self
    }

    /// Gives the type a `String()` method returning `display`.
    pub fn stringer(mut self, display: impl Into<String>) -> Struct {
        self.display = Some(display.into());
        self
    }

    /// Looks up a method or field by name, searching embedded fields as Go promotes them.
    pub fn lookup(&self, name: &str) -> Option<Value> {
        if let Some((_, v)) = self.methods.iter().find(|(n, _)| n == name) {
            return Some(v.clone());
        }
        if let Some(f) = self.fields.iter().find(|f| f.name == name) {
            return Some(f.value.clone());
        }
        self.fields
            .iter()
            .filter(|f| f.embedded)
            .find_map(|f| match &f.value {
                Value::Struct(s) => s.lookup(name),
                _ => None,
            })
    }
}

impl Value {
    /// A string value.
    pub fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    /// An `int` value.
    pub fn int(i: i64) -> Value {
        Value::Int(i, IntType::Int)
    }

    /// A `[]interface {}` value.
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(List {
            elem_type: "interface {}",
            items,
        }))
    }

    /// A slice with the given element type.
    pub fn typed_list(elem_type: &'static str, items: Vec<Value>) -> Value {
        Value::List(Rc::new(List { elem_type, items }))
    }

    /// A map value.
    pub fn map(map: Map) -> Value {
        Value::Map(Rc::new(RefCell::new(map)))
    }

    /// A struct value.
    pub fn structure(s: Struct) -> Value {
        Value::Struct(Rc::new(s))
    }

    /// Converts JSON into the value Go's decoder gives an `interface{}`, except that whole numbers become `int`.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Value::str(s),
            serde_json::Value::Array(a) => Value::list(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => {
                let mut m = Map::new();
                for (k, v) in o {
                    m.insert(Value::str(k), Value::from_json(v));
                }
                Value::map(m)
            }
        }
    }

    /// Go's type name, as `%T` prints it.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_, t) => t.name().into(),
            Value::Float(_) => "float64".into(),
            Value::Str(_) => "string".into(),
            Value::List(l) => format!("[]{}", l.elem_type),
            Value::Map(m) => m.borrow().type_name.into(),
            Value::Struct(s) => s.type_name.clone(),
        }
    }

    /// Go's `reflect.Kind` name (sprig's `kindOf`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_, t) => t.name(),
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Struct(_) => "struct",
        }
    }

    /// Truth as `if` sees it; `None` for values without one.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i, _) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.items.is_empty(),
            Value::Map(m) => !m.borrow().is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// The string inside a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Go's `%v` printing.
    pub fn to_go_string(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self, false);
        out
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a, _), Value::Int(b, _)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Struct(a), Value::Struct(b)) => {
                a.type_name == b.type_name
                    && a.fields.len() == b.fields.len()
                    && a.fields
                        .iter()
                        .zip(&b.fields)
                        .all(|(x, y)| x.value == y.value)
            }
            (Value::List(a), Value::List(b)) => Rc::ptr_eq(a, b),
            (Value::Map(a), Value::Map(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// The order of Go's `internal/fmtsort`: numbers by value, strings by bytes, structs field by field,
/// values of different kinds by kind.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Nil => 0,
            Value::Bool(_) => 1,
            Value::Int(..) => 2,
            Value::Float(_) => 3,
            Value::Str(_) => 4,
            Value::List(_) => 5,
            Value::Map(_) => 6,
            Value::Struct(_) => 7,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x, _), Value::Int(y, _)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x
            .partial_cmp(y)
            .unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()).reverse()),
        (Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Struct(x), Value::Struct(y)) => {
            for (fx, fy) in x.fields.iter().zip(&y.fields) {
                let c = compare(&fx.value, &fy.value);
                if c != Ordering::Equal {
                    return c;
                }
            }
            Ordering::Equal
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Writes `v` as `%v` (or `%+v` with `plus`) prints it. Within the execution's work budget and depth: a walk
/// that stops early writes `…` and leaves the mark the executor reports.
pub fn write_value(out: &mut String, v: &Value, plus: bool) {
    write_value_at(out, v, plus, 0);
}

fn write_value_at(out: &mut String, v: &Value, plus: bool, depth: usize) {
    if !super::budget::descend(depth) || out.len() > super::MAX_OUTPUT {
        out.push('…');
        return;
    }
    let write_value =
        |out: &mut String, v: &Value, plus: bool| write_value_at(out, v, plus, depth + 1);
    match v {
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i, _) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float(*f, 'g', None)),
        Value::Str(s) => out.push_str(s),
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, item, plus);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, val)) in m.borrow().entries().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, k, plus);
                out.push(':');
                write_value(out, val, plus);
            }
            out.push(']');
        }
        Value::Struct(s) => {
            if let Some(d) = &s.display {
                out.push_str(d);
                return;
            }
            out.push('{');
            for (i, f) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                if plus {
                    out.push_str(&f.name);
                    out.push(':');
                }
                write_value(out, &f.value, plus);
            }
            out.push('}');
        }
    }
}

/// Formats a float as Go's `strconv.FormatFloat` does for the verbs `e`, `f` and `g`; `None` precision is the
/// shortest representation that reads back exactly.
pub fn format_float(f: f64, verb: char, prec: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let neg = f.is_sign_negative();
    let a = f.abs();
    // Decimal digits and the position of the decimal point (digits[0] is before it when dp == 1).
    let (digits, dp) = match (verb, prec) {
        (_, None) => shortest_digits(a),
        ('e', Some(p)) => rounded_digits(a, p + 1),
        ('g', Some(p)) => rounded_digits(a, p.max(1)),
        (_, Some(p)) => {
            // A double's exact decimal expansion ends within 1,074 fraction digits: past that, zeros (Rust's
            // formatter takes at most 65,535 digits of precision).
            let exact = p.min(EXACT_FRACTION_DIGITS);
            let mut text = format!("{}{a:.exact$}", if neg { "-" } else { "" });
            text.extend(std::iter::repeat_n('0', p - exact));
            return text;
        }
    };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let nd = digits.len() as i32;
    let use_e = match verb {
        'e' => true,
        'f' => false,
        _ => {
            let eprec = match prec {
                None => 6,
                Some(p) => {
                    let mut e = p.max(1) as i32;
                    if e > nd && nd >= dp {
                        e = nd;
                    }
                    e
                }
            };
            let exp = dp - 1;
            exp < -4 || exp >= eprec
        }
    };
    if use_e {
        out.push(digits.as_bytes()[0] as char);
        let rest = &digits[1..];
        let rest = if verb == 'g' {
            rest.trim_end_matches('0')
        } else {
            rest
        };
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        if let ('e', Some(p)) = (verb, prec)
            && rest.len() < p
        {
            if rest.is_empty() && p > 0 {
                out.push('.');
            }
            out.push_str(&"0".repeat(p - rest.len()));
        }
        let exp = dp - 1;
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else {
        let digits = if verb == 'g' {
            digits.trim_end_matches('0')
        } else {
            &digits[..]
        };
        let digits = if digits.is_empty() { "0" } else { digits };
        let nd = digits.len() as i32;
        if dp <= 0 {
            out.push_str("0.");
            out.push_str(&"0".repeat((-dp) as usize));
            out.push_str(digits);
        } else if dp >= nd {
            out.push_str(digits);
            out.push_str(&"0".repeat((dp - nd) as usize));
        } else {
            out.push_str(&digits[..dp as usize]);
            out.push('.');
            out.push_str(&digits[dp as usize..]);
        }
    }
    out
}

/// The shortest decimal digits of `a` (positive) and its decimal-point position.
fn shortest_digits(a: f64) -> (String, i32) {
    if a == 0.0 {
        return ("0".into(), 1);
    }
    split_exp(&format!("{a:e}"))
}

/// `n` significant digits of `a`, correctly rounded.
/// Past this many fraction digits (and significant digits) a double's decimal expansion is all zeros.
const EXACT_FRACTION_DIGITS: usize = 1100;

fn rounded_digits(a: f64, n: usize) -> (String, i32) {
    if a == 0.0 {
        return ("0".repeat(n), 1);
    }
    let exact = n.min(EXACT_FRACTION_DIGITS);
    let (mut digits, dp) = split_exp(&format!("{a:.prec$e}", prec = exact - 1));
    digits.extend(std::iter::repeat_n('0', n - exact));
    (digits, dp)
}

fn split_exp(s: &str) -> (String, i32) {
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp + 1)
}

/// Go's `strconv.Quote`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

fn is_go_printable(c: char) -> bool {
    // Go's unicode.IsPrint, approximated: no control or format characters, no separators but the space.
    let special = matches!(
        c,
        '\u{a0}' | '\u{ad}' | '\u{2028}' | '\u{2029}' | '\u{200b}'..='\u{200f}' | '\u{feff}'
    );
    !(c.is_control() || special)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go() {
        let cases = [
            (1e6, "1e+06"),
            (123456789.0, "1.23456789e+08"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (3.0, "3"),
            (2.5e-7, "2.5e-07"),
            (100000.0, "100000"),
            (-1.5, "-1.5"),
            (0.0, "0"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float(f, 'g', None), want, "{f}");
        }
        assert_eq!(format_float(1234.5678, 'e', Some(6)), "1.234568e+03");
        assert_eq!(format_float(0.000012, 'g', None), "1.2e-05");
        assert_eq!(format_float(3.14659, 'f', Some(2)), "3.15");
        assert_eq!(format_float(2.0, 'f', Some(0)), "2");
    }

    #[test]
    fn quotes_as_go() {
        assert_eq!(quote("a\"b\n\x01é"), r#""a\"b\n\x01é""#);
    }

    #[test]
    fn maps_keep_fmtsort_order() {
        let mut m = Map::new();
        for k in ["b", "a", "B", "c"] {
            m.insert(Value::str(k), Value::int(1));
        }
        let keys: Vec<String> = m.entries().iter().map(|(k, _)| k.to_go_string()).collect();
        assert_eq!(keys, ["B", "a", "b", "c"]);
        assert_eq!(Value::map(m).to_go_string(), "map[B:1 a:1 b:1 c:1]");
    }
}
