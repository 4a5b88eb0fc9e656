//! The functions a commit template can call: Go's builtins (`and`, `or`, `not`, `len`, `index`, `print`,
//! `printf`, `println`, `html`, `js`, `urlquery`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`) and sprig's hermetic
//! functions for text, lists, dicts, numbers, regexes, paths, encodings and reflection (sprig v3.2, whose
//! `slice` replaces the builtin as it does in Flux). Left out: the non-hermetic ones (dates, randomness,
//! environment, DNS), cryptography, and a few whose exact rules live in other libraries (`wrap`, `snakecase`,
//! `camelcase`, `kebabcase`, `abbrevboth`, `merge`, the decimal `*f` arithmetic, `b32*`, `sha1sum`).

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine as _;
use sha2::Digest as _;

use super::fmt::{sprint, sprintf, sprintln};
use super::parse::parse_go_int;
use super::value::{IntType, Map, Value, compare, quote};
use super::{MAX_ITEMS, MAX_OUTPUT};

/// The Go type a parameter has, which decides how arguments are checked and number constants typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// `interface{}`.
    Any,
    /// `string`.
    Str,
    /// `int`.
    Int,
    /// `float64`.
    Float,
    /// `bool`.
    Bool,
    /// `map[string]interface{}`.
    Map,
}

impl Param {
    /// Go's name of the type.
    pub fn go_name(self) -> &'static str {
        match self {
            Param::Any => "interface {}",
            Param::Str => "string",
            Param::Int => "int",
            Param::Float => "float64",
            Param::Bool => "bool",
            Param::Map => "map[string]interface {}",
        }
    }
}

/// A function: its parameters, the type of its variadic tail, and its body.
pub struct Func {
    /// Fixed parameters.
    pub params: &'static [Param],
    /// The element type of a variadic tail.
    pub variadic: Option<Param>,
    /// The body; an error becomes `error calling NAME: ...`.
    pub call: fn(Vec<Value>) -> Result<Value, String>,
}

type R = Result<Value, String>;

use Param::{Any, Bool as PBool, Float as PFloat, Int as PInt, Map as PMap, Str};

macro_rules! funcs {
    ($($name:literal => ([$($p:expr),*], $v:expr, $f:expr)),* $(,)?) => {{
        let mut m: HashMap<&'static str, Func> = HashMap::new();
        $( m.insert($name, Func { params: &[$($p),*], variadic: $v, call: $f }); )*
        m
    }};
}

static FUNCS: LazyLock<HashMap<&'static str, Func>> = LazyLock::new(|| {
    funcs! {
        // Go's builtins. `and` and `or` are evaluated lazily by the executor.
        "and" => ([Any], Some(Any), |a| Ok(a.into_iter().last().unwrap_or(Value::Nil))),
        "or" => ([Any], Some(Any), |a| Ok(a.into_iter().last().unwrap_or(Value::Nil))),
        "not" => ([Any], None, |a| Ok(Value::Bool(!a[0].truth()))),
        "len" => ([Any], None, builtin_len),
        "index" => ([Any], Some(Any), builtin_index),
        "print" => ([], Some(Any), |a| Ok(Value::str(&sprint(&a)))),
        "printf" => ([Str], Some(Any), |a| Ok(Value::str(&sprintf(s(&a[0]), &a[1..])))),
        "println" => ([], Some(Any), |a| Ok(Value::str(&sprintln(&a)))),
        "html" => ([], Some(Any), |a| Ok(Value::str(&html_escape(&eval_args(&a))))),
        "js" => ([], Some(Any), |a| Ok(Value::str(&js_escape(&eval_args(&a))))),
        "urlquery" => ([], Some(Any), |a| Ok(Value::str(&query_escape(&eval_args(&a))))),
        "eq" => ([Any], Some(Any), builtin_eq),
        "ne" => ([Any, Any], None, |a| builtin_eq(a).map(|v| Value::Bool(!v.truth()))),
        "lt" => ([Any, Any], None, |a| less(&a[0], &a[1]).map(Value::Bool)),
        "le" => ([Any, Any], None, |a| Ok(Value::Bool(less(&a[0], &a[1])? || eq2(&a[0], &a[1])?))),
        "gt" => ([Any, Any], None, |a| Ok(Value::Bool(!(less(&a[0], &a[1])? || eq2(&a[0], &a[1])?)))),
        "ge" => ([Any, Any], None, |a| less(&a[0], &a[1]).map(|l| Value::Bool(!l))),

        // sprig: strings.
        "hello" => ([], None, |_| Ok(Value::str("Hello!"))),
        "abbrev" => ([PInt, Str], None, |a| {
            let (w, st) = (int(&a[0]), s(&a[1]));
            Ok(Value::str(&if w < 4 || st.len() as i64 <= w { st.to_string() } else { format!("{}...", byte_slice(st, 0, (w - 3) as usize)) }))
        }),
        "trunc" => ([PInt, Str], None, |a| {
            let (c, st) = (int(&a[0]), s(&a[1]));
            let n = st.len() as i64;
            Ok(Value::str(&if c < 0 && n + c > 0 { byte_slice(st, (n + c) as usize, st.len()) } else if c >= 0 && n > c { byte_slice(st, 0, c as usize) } else { st.to_string() }))
        }),
        "trim" => ([Str], None, |a| Ok(Value::str(s(&a[0]).trim()))),
        "upper" => ([Str], None, |a| Ok(Value::str(&s(&a[0]).to_uppercase()))),
        "lower" => ([Str], None, |a| Ok(Value::str(&s(&a[0]).to_lowercase()))),
        "title" => ([Str], None, |a| Ok(Value::str(&title(s(&a[0]))))),
        "untitle" => ([Str], None, |a| Ok(Value::str(&untitle(s(&a[0]))))),
        "substr" => ([PInt, PInt, Str], None, |a| {
            let (start, end, st) = (int(&a[0]), int(&a[1]), s(&a[2]));
            let n = st.len() as i64;
            let (lo, hi) = if start < 0 { (0, end) } else if end < 0 || end > n { (start, n) } else { (start, end) };
            if lo < 0 || hi < lo || hi > n {
                return Err(format!("runtime error: slice bounds out of range [{lo}:{hi}] with length {n}"));
            }
            Ok(Value::str(&byte_slice(st, lo as usize, hi as usize)))
        }),
        "repeat" => ([PInt, Str], None, |a| {
            let n = int(&a[0]);
            if n < 0 {
                return Err("strings: negative Repeat count".into());
            }
            within_output(s(&a[1]).len().saturating_mul(n as usize))?;
            Ok(Value::str(&s(&a[1]).repeat(n as usize)))
        }),
        "trimall" => ([Str, Str], None, |a| Ok(Value::str(s(&a[1]).trim_matches(|c| s(&a[0]).contains(c))))),
        "trimAll" => ([Str, Str], None, |a| Ok(Value::str(s(&a[1]).trim_matches(|c| s(&a[0]).contains(c))))),
        "trimSuffix" => ([Str, Str], None, |a| Ok(Value::str(s(&a[1]).strip_suffix(s(&a[0])).unwrap_or(s(&a[1]))))),
        "trimPrefix" => ([Str, Str], None, |a| Ok(Value::str(s(&a[1]).strip_prefix(s(&a[0])).unwrap_or(s(&a[1]))))),
        "nospace" => ([Str], None, |a| Ok(Value::str(&s(&a[0]).chars().filter(|c| !c.is_whitespace()).collect::<String>()))),
        "initials" => ([Str], None, |a| Ok(Value::str(&s(&a[0]).split_whitespace().filter_map(|w| w.chars().next()).collect::<String>()))),
        "swapcase" => ([Str], None, |a| Ok(Value::str(&s(&a[0]).chars().flat_map(|c| {
            let v: Vec<char> = if c.is_uppercase() { c.to_lowercase().collect() } else if c.is_lowercase() { c.to_uppercase().collect() } else { vec![c] };
            v
        }).collect::<String>()))),
        "contains" => ([Str, Str], None, |a| Ok(Value::Bool(s(&a[1]).contains(s(&a[0]))))),
        "hasPrefix" => ([Str, Str], None, |a| Ok(Value::Bool(s(&a[1]).starts_with(s(&a[0]))))),
        "hasSuffix" => ([Str, Str], None, |a| Ok(Value::Bool(s(&a[1]).ends_with(s(&a[0]))))),
        "quote" => ([], Some(Any), |a| Ok(Value::str(&a.iter().filter(|v| !matches!(v, Value::Nil)).map(|v| quote(&strval(v))).collect::<Vec<_>>().join(" ")))),
        "squote" => ([], Some(Any), |a| Ok(Value::str(&a.iter().filter(|v| !matches!(v, Value::Nil)).map(|v| format!("'{}'", strval(v))).collect::<Vec<_>>().join(" ")))),
        "cat" => ([], Some(Any), |a| Ok(Value::str(&a.iter().filter(|v| !matches!(v, Value::Nil)).map(Value::to_go_string).collect::<Vec<_>>().join(" ")))),
        "indent" => ([PInt, Str], None, |a| Ok(Value::str(&indent(int(&a[0]), s(&a[1]))?))),
        "nindent" => ([PInt, Str], None, |a| Ok(Value::str(&format!("\n{}", indent(int(&a[0]), s(&a[1]))?)))),
        "replace" => ([Str, Str, Str], None, |a| Ok(Value::str(&go_replace(s(&a[2]), s(&a[0]), s(&a[1]))?))),
        "plural" => ([Str, Str, PInt], None, |a| Ok(if int(&a[2]) == 1 { a[0].clone() } else { a[1].clone() })),
        "sha256sum" => ([Str], None, |a| Ok(Value::str(&crate::hex::encode(&sha2::Sha256::digest(s(&a[0]).as_bytes()))))),
        "adler32sum" => ([Str], None, |a| Ok(Value::str(&adler32(s(&a[0]).as_bytes()).to_string()))),
        "toString" => ([Any], None, |a| Ok(Value::str(&strval(&a[0])))),
        "toStrings" => ([Any], None, |a| Ok(strings(strslice(&a[0])))),
        "atoi" => ([Str], None, |a| Ok(Value::int(s(&a[0]).parse::<i64>().unwrap_or(0)))),
        "int64" => ([Any], None, |a| Ok(Value::Int(to_int64(&a[0]), IntType::Int64))),
        "int" => ([Any], None, |a| Ok(Value::int(to_int64(&a[0])))),
        "float64" => ([Any], None, |a| Ok(Value::Float(to_float64(&a[0])))),
        "toDecimal" => ([Any], None, |a| Ok(Value::Int(i64::from_str_radix(&a[0].to_go_string(), 8).unwrap_or(0), IntType::Int64))),
        "seq" => ([], Some(PInt), |a| Ok(Value::str(&seq(&a.iter().map(int).collect::<Vec<_>>())?))),
        "split" => ([Str, Str], None, |a| Ok(indexed_parts(go_split(s(&a[1]), s(&a[0]), -1)))),
        "splitList" => ([Str, Str], None, |a| Ok(strings(go_split(s(&a[1]), s(&a[0]), -1)))),
        "splitn" => ([Str, PInt, Str], None, |a| Ok(indexed_parts(go_split(s(&a[2]), s(&a[0]), int(&a[1]))))),
        "until" => ([PInt], None, |a| {
            let n = int(&a[0]);
            Ok(ints(until_step(0, n, if n < 0 { -1 } else { 1 })?))
        }),
        "untilStep" => ([PInt, PInt, PInt], None, |a| Ok(ints(until_step(int(&a[0]), int(&a[1]), int(&a[2]))?))),
        "join" => ([Str, Any], None, |a| Ok(Value::str(&strslice(&a[1]).join(s(&a[0]))))),
        "sortAlpha" => ([Any], None, |a| Ok(strings(match &a[0] {
            Value::List(_) => {
                let mut v = strslice(&a[0]);
                v.sort();
                v
            }
            other => vec![strval(other)],
        }))),

        // sprig: numbers.
        "add1" => ([Any], None, |a| Ok(i64v(to_int64(&a[0]).wrapping_add(1)))),
        "add" => ([], Some(Any), |a| Ok(i64v(a.iter().map(to_int64).fold(0i64, i64::wrapping_add)))),
        "sub" => ([Any, Any], None, |a| Ok(i64v(to_int64(&a[0]).wrapping_sub(to_int64(&a[1]))))),
        "mul" => ([Any], Some(Any), |a| Ok(i64v(a.iter().map(to_int64).fold(1i64, i64::wrapping_mul)))),
        "div" => ([Any, Any], None, |a| {
            let d = to_int64(&a[1]);
            if d == 0 {
                return Err("runtime error: integer divide by zero".into());
            }
            Ok(i64v(to_int64(&a[0]).wrapping_div(d)))
        }),
        "mod" => ([Any, Any], None, |a| {
            let d = to_int64(&a[1]);
            if d == 0 {
                return Err("runtime error: integer divide by zero".into());
            }
            Ok(i64v(to_int64(&a[0]).wrapping_rem(d)))
        }),
        "max" => ([Any], Some(Any), |a| Ok(i64v(a.iter().map(to_int64).max().unwrap_or(0)))),
        "biggest" => ([Any], Some(Any), |a| Ok(i64v(a.iter().map(to_int64).max().unwrap_or(0)))),
        "min" => ([Any], Some(Any), |a| Ok(i64v(a.iter().map(to_int64).min().unwrap_or(0)))),
        "floor" => ([Any], None, |a| Ok(Value::Float(to_float64(&a[0]).floor()))),
        "ceil" => ([Any], None, |a| Ok(Value::Float(to_float64(&a[0]).ceil()))),
        "round" => ([Any, PInt], Some(PFloat), |a| {
            let round_on = match a.get(2) { Some(Value::Float(f)) => *f, _ => 0.5 };
            let val = to_float64(&a[0]);
            let pow = 10f64.powf(int(&a[1]) as f64);
            let digit = pow * val;
            let frac = digit.fract();
            let r = if frac >= round_on { digit.ceil() } else { digit.floor() };
            Ok(Value::Float(r / pow))
        }),

        // sprig: defaults, flow and reflection.
        "default" => ([Any], Some(Any), |a| Ok(match a.get(1) {
            Some(v) if !empty(v) => v.clone(),
            _ => a[0].clone(),
        })),
        "empty" => ([Any], None, |a| Ok(Value::Bool(empty(&a[0])))),
        "coalesce" => ([], Some(Any), |a| Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Nil))),
        "all" => ([], Some(Any), |a| Ok(Value::Bool(a.iter().all(|v| !empty(v))))),
        "any" => ([], Some(Any), |a| Ok(Value::Bool(a.iter().any(|v| !empty(v))))),
        "compact" => ([Any], None, |a| list_op("compact", &a[0], |l| Ok(l.iter().filter(|v| !empty(v)).cloned().collect()))),
        "ternary" => ([Any, Any, PBool], None, |a| Ok(if a[2].truth() { a[0].clone() } else { a[1].clone() })),
        "fail" => ([Str], None, |a| Err(s(&a[0]).to_string())),
        "typeOf" => ([Any], None, |a| Ok(Value::str(&a[0].type_name()))),
        "typeIs" => ([Str, Any], None, |a| Ok(Value::Bool(s(&a[0]) == a[1].type_name()))),
        "typeIsLike" => ([Str, Any], None, |a| {
            let t = a[1].type_name();
            Ok(Value::Bool(s(&a[0]) == t || s(&a[0]) == format!("*{t}")))
        }),
        "kindOf" => ([Any], None, |a| Ok(Value::str(a[0].kind_name()))),
        "kindIs" => ([Str, Any], None, |a| Ok(Value::Bool(s(&a[0]) == a[1].kind_name()))),
        "deepEqual" => ([Any, Any], None, |a| Ok(Value::Bool(deep_equal(&a[0], &a[1])))),
        "deepCopy" => ([Any], None, |a| Ok(deep_copy(&a[0]))),
        "toJson" => ([Any], None, |a| Ok(Value::str(&to_json(&a[0], true, None)))),
        "toPrettyJson" => ([Any], None, |a| Ok(Value::str(&to_json(&a[0], true, Some(0))))),
        "toRawJson" => ([Any], None, |a| Ok(Value::str(&to_json(&a[0], false, None)))),
        "fromJson" => ([Str], None, |a| Ok(serde_json::from_str::<serde_json::Value>(s(&a[0])).map(|j| from_json_float(&j)).unwrap_or_else(|_| Value::map(Map::new())))),
        "mustFromJson" => ([Str], None, |a| serde_json::from_str::<serde_json::Value>(s(&a[0])).map(|j| from_json_float(&j)).map_err(|e| e.to_string())),

        // sprig: paths and encodings.
        "base" => ([Str], None, |a| Ok(Value::str(&path_base(s(&a[0]))))),
        "dir" => ([Str], None, |a| Ok(Value::str(&path_dir(s(&a[0]))))),
        "clean" => ([Str], None, |a| Ok(Value::str(&path_clean(s(&a[0]))))),
        "ext" => ([Str], None, |a| Ok(Value::str(path_ext(s(&a[0]))))),
        "isAbs" => ([Str], None, |a| Ok(Value::Bool(s(&a[0]).starts_with('/')))),
        "b64enc" => ([Str], None, |a| Ok(Value::str(&base64::engine::general_purpose::STANDARD.encode(s(&a[0]))))),
        "b64dec" => ([Str], None, |a| Ok(Value::str(&match base64::engine::general_purpose::STANDARD.decode(s(&a[0])) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => e.to_string(),
        }))),

        // sprig: lists.
        "list" => ([], Some(Any), |a| Ok(Value::list(a))),
        "tuple" => ([], Some(Any), |a| Ok(Value::list(a))),
        "first" => ([Any], None, |a| list_get("first", &a[0], |l| l.first().cloned())),
        "last" => ([Any], None, |a| list_get("last", &a[0], |l| l.last().cloned())),
        "rest" => ([Any], None, |a| list_get("rest", &a[0], |l| (!l.is_empty()).then(|| Value::list(l[1..].to_vec())))),
        "initial" => ([Any], None, |a| list_get("initial", &a[0], |l| (!l.is_empty()).then(|| Value::list(l[..l.len() - 1].to_vec())))),
        "append" => ([Any, Any], None, |a| list_op("append", &a[0], |l| Ok([l, std::slice::from_ref(&a[1])].concat()))),
        "push" => ([Any, Any], None, |a| list_op("push", &a[0], |l| Ok([l, std::slice::from_ref(&a[1])].concat()))),
        "prepend" => ([Any, Any], None, |a| list_op("prepend", &a[0], |l| Ok([std::slice::from_ref(&a[1]), l].concat()))),
        "reverse" => ([Any], None, |a| list_op("reverse", &a[0], |l| Ok(l.iter().rev().cloned().collect()))),
        "uniq" => ([Any], None, |a| list_op("uniq", &a[0], |l| Ok(uniq(l)))),
        "without" => ([Any], Some(Any), |a| list_op("without", &a[0], |l| Ok(l.iter().filter(|v| !a[1..].iter().any(|o| deep_equal(v, o))).cloned().collect()))),
        "has" => ([Any, Any], None, |a| has(&a[0], &a[1])),
        "slice" => ([Any], Some(Any), sprig_slice),
        "concat" => ([], Some(Any), |a| {
            let mut out = Vec::new();
            for v in &a {
                match v {
                    Value::List(l) => out.extend(l.items.iter().cloned()),
                    other => return Err(format!("Cannot concat type {} as list", other.kind_name())),
                }
            }
            Ok(Value::list(out))
        }),
        "chunk" => ([PInt, Any], None, |a| {
            let size = int(&a[0]).max(1) as usize;
            list_op("chunk", &a[1], |l| Ok(l.chunks(size).map(|c| Value::list(c.to_vec())).collect()))
        }),

        // sprig: dicts.
        "dict" => ([], Some(Any), |a| {
            let mut m = Map::new();
            for pair in a.chunks(2) {
                m.insert(Value::str(&strval(&pair[0])), pair.get(1).cloned().unwrap_or_else(|| Value::str("")));
            }
            Ok(Value::map(m))
        }),
        "get" => ([PMap, Str], None, |a| Ok(dict(&a[0])?.borrow().get(&a[1]).cloned().unwrap_or_else(|| Value::str("")))),
        "set" => ([PMap, Str, Any], None, |a| {
            let target = dict(&a[0])?;
            // A dict holding itself would be infinitely deep: refused (every walk over it would not end).
            if reaches(&a[2], target) {
                return Err("the value holds the dict itself (a cycle)".into());
            }
            target.borrow_mut().insert(a[1].clone(), a[2].clone());
            Ok(a[0].clone())
        }),
        "unset" => ([PMap, Str], None, |a| {
            dict(&a[0])?.borrow_mut().remove(&a[1]);
            Ok(a[0].clone())
        }),
        "hasKey" => ([PMap, Str], None, |a| Ok(Value::Bool(dict(&a[0])?.borrow().get(&a[1]).is_some()))),
        "pluck" => ([Str], Some(PMap), |a| {
            let mut out = Vec::new();
            for d in &a[1..] {
                if let Some(v) = dict(d)?.borrow().get(&a[0]) {
                    out.push(v.clone());
                }
            }
            Ok(Value::list(out))
        }),
        "keys" => ([], Some(PMap), |a| {
            let mut out = Vec::new();
            for d in &a {
                out.extend(dict(d)?.borrow().entries().iter().map(|(k, _)| strval(k)));
            }
            Ok(strings(out))
        }),
        "values" => ([PMap], None, |a| Ok(Value::list(dict(&a[0])?.borrow().entries().iter().map(|(_, v)| v.clone()).collect()))),
        "pick" => ([PMap], Some(Str), |a| {
            let src = dict(&a[0])?.borrow().clone();
            let mut m = Map::new();
            for k in &a[1..] {
                if let Some(v) = src.get(k) {
                    m.insert(k.clone(), v.clone());
                }
            }
            Ok(Value::map(m))
        }),
        "omit" => ([PMap], Some(Str), |a| {
            let mut m = dict(&a[0])?.borrow().clone();
            for k in &a[1..] {
                m.remove(k);
            }
            Ok(Value::map(m))
        }),
        "dig" => ([], Some(Any), |a| {
            if a.len() < 3 {
                return Err("dig needs at least three arguments".into());
            }
            let default = a[a.len() - 2].clone();
            let mut cur = a[a.len() - 1].clone();
            for k in &a[..a.len() - 2] {
                let next = dict(&cur)?.borrow().get(k).cloned();
                match next {
                    Some(v) => cur = v,
                    None => return Ok(default),
                }
            }
            Ok(cur)
        }),

        // sprig: regular expressions (RE2 syntax) and versions.
        "regexMatch" => ([Str, Str], None, |a| Ok(Value::Bool(regex(&a[0])?.is_match(s(&a[1]).as_bytes())))),
        "regexFind" => ([Str, Str], None, |a| Ok(Value::str(&regex(&a[0])?.find(s(&a[1]).as_bytes()).map(|m| lossy(m.as_bytes())).unwrap_or_default()))),
        "regexFindAll" => ([Str, Str, PInt], None, regex_find_all),
        "regexReplaceAll" => ([Str, Str, Str], None, |a| Ok(Value::str(&lossy(&regex(&a[0])?.replace_all(s(&a[1]).as_bytes(), s(&a[2]).as_bytes()))))),
        "regexReplaceAllLiteral" => ([Str, Str, Str], None, |a| Ok(Value::str(&lossy(&regex(&a[0])?.replace_all(s(&a[1]).as_bytes(), regex::bytes::NoExpand(s(&a[2]).as_bytes())))))),
        "regexSplit" => ([Str, Str, PInt], None, regex_split),
        "regexQuoteMeta" => ([Str], None, |a| Ok(Value::str(&quote_meta(s(&a[0]))))),
        "semverCompare" => ([Str, Str], None, |a| {
            let range = crate::semver::Range::parse(s(&a[0])).map_err(|e| e.reason)?;
            let version = crate::semver::Version::parse(s(&a[1])).map_err(|_| "Invalid Semantic Version".to_string())?;
            Ok(Value::Bool(range.matches(&version)))
        }),
    }
});

/// sprig's `must*` variants return an error where the plain ones panic; through a template both end as
/// an execution error, so they are the same function here.
const MUST_ALIASES: &[(&str, &str)] = &[
    ("mustCompact", "compact"),
    ("mustDeepCopy", "deepCopy"),
    ("mustToJson", "toJson"),
    ("mustToPrettyJson", "toPrettyJson"),
    ("mustToRawJson", "toRawJson"),
    ("mustFirst", "first"),
    ("mustLast", "last"),
    ("mustRest", "rest"),
    ("mustInitial", "initial"),
    ("mustAppend", "append"),
    ("mustPush", "push"),
    ("mustPrepend", "prepend"),
    ("mustReverse", "reverse"),
    ("mustUniq", "uniq"),
    ("mustWithout", "without"),
    ("mustHas", "has"),
    ("mustSlice", "slice"),
    ("mustRegexMatch", "regexMatch"),
    ("mustRegexFind", "regexFind"),
    ("mustRegexFindAll", "regexFindAll"),
    ("mustRegexReplaceAll", "regexReplaceAll"),
    ("mustRegexReplaceAllLiteral", "regexReplaceAllLiteral"),
    ("mustRegexSplit", "regexSplit"),
];

/// Looks up a function by name.
pub fn lookup(name: &str) -> Option<&'static Func> {
    FUNCS.get(name).or_else(|| {
        let (_, base) = MUST_ALIASES.iter().find(|(alias, _)| *alias == name)?;
        FUNCS.get(base)
    })
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i, _) => *i,
        _ => 0,
    }
}

fn i64v(i: i64) -> Value {
    Value::Int(i, IntType::Int64)
}

fn strings(v: Vec<String>) -> Value {
    Value::typed_list("string", v.iter().map(|x| Value::str(x)).collect())
}

fn ints(v: Vec<i64>) -> Value {
    Value::typed_list("int", v.into_iter().map(Value::int).collect())
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn byte_slice(s: &str, lo: usize, hi: usize) -> String {
    lossy(&s.as_bytes()[lo..hi])
}

/// sprig's `strval`: strings as they are, Stringers by `String()`, anything else by `%v`.
pub fn strval(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        Value::Struct(st) if st.display.is_some() => st.display.clone().unwrap_or_default(),
        other => other.to_go_string(),
    }
}

fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l
            .items
            .iter()
            .filter(|i| !matches!(i, Value::Nil))
            .map(strval)
            .collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

/// spf13/cast's `ToInt64`.
fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(i, _) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => *b as i64,
        Value::Str(s) => parse_go_int(trim_zero_decimal(s)).unwrap_or(0),
        _ => 0,
    }
}

fn trim_zero_decimal(s: &str) -> &str {
    let mut found_zero = false;
    for (i, c) in s.bytes().enumerate().rev() {
        match c {
            b'.' if found_zero => return &s[..i],
            b'.' => return s,
            b'0' => found_zero = true,
            _ => return s,
        }
    }
    s
}

fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Int(i, _) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => *b as i64 as f64,
        Value::Str(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// sprig's `empty`.
pub fn empty(v: &Value) -> bool {
    !v.truth()
}

fn deep_equal(a: &Value, b: &Value) -> bool {
    deep_equal_at(a, b, 0)
}

/// Go's `reflect.DeepEqual` within the execution's work budget and depth (false when it stops early; the
/// executor then fails the call).
fn deep_equal_at(a: &Value, b: &Value, depth: usize) -> bool {
    if !super::budget::descend(depth) {
        return false;
    }
    let deep_equal = |p: &Value, q: &Value| deep_equal_at(p, q, depth + 1);
    match (a, b) {
        (Value::Int(x, tx), Value::Int(y, ty)) => x == y && tx == ty,
        (Value::List(x), Value::List(y)) => {
            x.elem_type == y.elem_type
                && x.items.len() == y.items.len()
                && x.items.iter().zip(&y.items).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            let (x, y) = (x.borrow(), y.borrow());
            x.len() == y.len()
                && x.entries()
                    .iter()
                    .zip(y.entries())
                    .all(|((k1, v1), (k2, v2))| deep_equal(k1, k2) && deep_equal(v1, v2))
        }
        (Value::Struct(x), Value::Struct(y)) => {
            x.type_name == y.type_name
                && x.fields
                    .iter()
                    .zip(&y.fields)
                    .all(|(p, q)| deep_equal(&p.value, &q.value))
        }
        _ => a == b,
    }
}

fn deep_copy(v: &Value) -> Value {
    deep_copy_at(v, 0)
}

/// A copy within the execution's work budget and depth (nil below where it stops; the executor then fails
/// the call).
fn deep_copy_at(v: &Value, depth: usize) -> Value {
    if !super::budget::descend(depth) {
        return Value::Nil;
    }
    let deep_copy = |v: &Value| deep_copy_at(v, depth + 1);
    match v {
        Value::List(l) => Value::typed_list(l.elem_type, l.items.iter().map(deep_copy).collect()),
        Value::Map(m) => {
            let src = m.borrow();
            let mut out = Map::typed(src.type_name);
            for (k, v) in src.entries() {
                out.insert(k.clone(), deep_copy(v));
            }
            Value::map(out)
        }
        other => other.clone(),
    }
}

/// Whether `v` is or contains the map `target` (each shared container visited once).
fn reaches(v: &Value, target: &std::rc::Rc<std::cell::RefCell<Map>>) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![v.clone()];
    while let Some(v) = stack.pop() {
        if !super::budget::spend(1) {
            return true;
        }
        match v {
            Value::Map(m) => {
                if std::rc::Rc::ptr_eq(&m, target) {
                    return true;
                }
                if seen.insert(std::rc::Rc::as_ptr(&m) as usize) {
                    for (k, val) in m.borrow().entries() {
                        stack.push(k.clone());
                        stack.push(val.clone());
                    }
                }
            }
            Value::List(l) if seen.insert(std::rc::Rc::as_ptr(&l) as usize) => {
                stack.extend(l.items.iter().cloned());
            }
            _ => {}
        }
    }
    false
}

fn uniq(l: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in l {
        // Quadratic: it stops with the work budget (the executor then fails the call).
        if super::budget::stopped().is_some() {
            break;
        }
        if !out.iter().any(|o| deep_equal(o, v)) {
            out.push(v.clone());
        }
    }
    out
}

fn has(needle: &Value, haystack: &Value) -> R {
    match haystack {
        Value::Nil => Ok(Value::Bool(false)),
        Value::List(l) => Ok(Value::Bool(l.items.iter().any(|v| deep_equal(v, needle)))),
        other => Err(format!("Cannot find has on type {}", other.kind_name())),
    }
}

fn list_get(name: &str, v: &Value, f: impl Fn(&[Value]) -> Option<Value>) -> R {
    match v {
        Value::List(l) => Ok(f(&l.items).unwrap_or(Value::Nil)),
        other => Err(format!("Cannot find {name} on type {}", other.kind_name())),
    }
}

fn list_op(name: &str, v: &Value, f: impl Fn(&[Value]) -> Result<Vec<Value>, String>) -> R {
    match v {
        Value::List(l) => Ok(Value::list(f(&l.items)?)),
        other => Err(format!("Cannot {name} on type {}", other.kind_name())),
    }
}

fn sprig_slice(a: Vec<Value>) -> R {
    let Value::List(l) = &a[0] else {
        return Err(format!(
            "list should be type of slice or array but {} is not",
            a[0].kind_name()
        ));
    };
    let n = l.items.len() as i64;
    if n == 0 {
        return Ok(Value::Nil);
    }
    let start = a.get(1).map(to_int64).unwrap_or(0);
    let end = a.get(2).map(to_int64).unwrap_or(n);
    if start < 0 || end < start || end > n {
        return Err(format!(
            "reflect: slice index out of range [{start}:{end}] with length {n}"
        ));
    }
    Ok(Value::typed_list(
        l.elem_type,
        l.items[start as usize..end as usize].to_vec(),
    ))
}

fn dict(v: &Value) -> Result<&std::rc::Rc<std::cell::RefCell<Map>>, String> {
    match v {
        Value::Map(m) => Ok(m),
        Value::Nil => Err("assignment to entry in nil map".into()),
        other => Err(format!(
            "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
            other.type_name()
        )),
    }
}

fn regex(v: &Value) -> Result<regex::bytes::Regex, String> {
    crate::re2::compile(s(v)).map_err(|e| format!("error parsing regexp: {e}"))
}

fn regex_find_all(a: Vec<Value>) -> R {
    let re = regex(&a[0])?;
    let n = int(&a[2]);
    let hay = s(&a[1]).as_bytes();
    let found: Vec<String> = if n == 0 {
        Vec::new()
    } else {
        let it = re.find_iter(hay).map(|m| lossy(m.as_bytes()));
        if n < 0 {
            it.collect()
        } else {
            it.take(n as usize).collect()
        }
    };
    Ok(strings(found))
}

/// Go's `regexp.Split`.
fn regex_split(a: Vec<Value>) -> R {
    let re = regex(&a[0])?;
    let n = int(&a[2]);
    let text = s(&a[1]);
    if n == 0 {
        return Ok(strings(Vec::new()));
    }
    if !s(&a[0]).is_empty() && text.is_empty() {
        return Ok(strings(vec![String::new()]));
    }
    let hay = text.as_bytes();
    let matches: Vec<(usize, usize)> = if n < 0 {
        re.find_iter(hay).map(|m| (m.start(), m.end())).collect()
    } else {
        re.find_iter(hay)
            .take(n as usize)
            .map(|m| (m.start(), m.end()))
            .collect()
    };
    let mut out = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for (ms, me) in matches {
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        end = ms;
        if me != 0 {
            out.push(lossy(&hay[beg..end]));
        }
        beg = me;
    }
    if end != hay.len() {
        out.push(lossy(&hay[beg..]));
    }
    Ok(strings(out))
}

fn quote_meta(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Go's `strings.SplitN` (`n < 0`: all).
fn go_split(s: &str, sep: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if sep.is_empty() {
        let chars: Vec<String> = s.chars().map(String::from).collect();
        if n > 0 && chars.len() as i64 > n {
            let head: Vec<String> = chars[..(n - 1) as usize].to_vec();
            let tail: String = s.chars().skip((n - 1) as usize).collect();
            return head.into_iter().chain(std::iter::once(tail)).collect();
        }
        return chars;
    }
    if n < 0 {
        s.split(sep).map(String::from).collect()
    } else {
        s.splitn(n as usize, sep).map(String::from).collect()
    }
}

fn indexed_parts(parts: Vec<String>) -> Value {
    let mut m = Map::typed("map[string]string");
    for (i, p) in parts.iter().enumerate() {
        m.insert(Value::str(&format!("_{i}")), Value::str(p));
    }
    Value::map(m)
}

/// Refuses a result of `bytes` over [`MAX_OUTPUT`] before it is built.
fn within_output(bytes: usize) -> Result<(), String> {
    if bytes > MAX_OUTPUT {
        return Err(format!(
            "the result would have {bytes} bytes, over the template limit of {MAX_OUTPUT}"
        ));
    }
    Ok(())
}

fn go_replace(s: &str, old: &str, new: &str) -> Result<String, String> {
    let count = if old.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(old).count()
    };
    within_output(
        s.len()
            .saturating_add(count.saturating_mul(new.len().saturating_sub(old.len()))),
    )?;
    Ok(go_replace_unchecked(s, old, new))
}

fn go_replace_unchecked(s: &str, old: &str, new: &str) -> String {
    if old.is_empty() {
        // Go inserts `new` before every rune and at the end.
        let mut out = String::new();
        for c in s.chars() {
            out.push_str(new);
            out.push(c);
        }
        out.push_str(new);
        return out;
    }
    s.replace(old, new)
}

fn indent(spaces: i64, v: &str) -> Result<String, String> {
    let spaces = spaces.max(0) as usize;
    let lines = v.matches('\n').count() + 1;
    within_output(v.len().saturating_add(lines.saturating_mul(spaces)))?;
    let pad = " ".repeat(spaces);
    Ok(format!("{pad}{}", v.replace('\n', &format!("\n{pad}"))))
}

fn title(s: &str) -> String {
    let is_sep = |c: char| {
        if c.is_ascii() {
            return !(c.is_ascii_alphanumeric() || c == '_');
        }
        if c.is_alphabetic() || c.is_numeric() {
            return false;
        }
        c.is_whitespace()
    };
    let mut prev = ' ';
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_sep(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

fn untitle(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        if c.is_whitespace() {
            at_start = true;
            out.push(c);
        } else if at_start {
            out.extend(c.to_lowercase());
            at_start = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// sprig's `untilStep`; refused when it would have more than [`MAX_ITEMS`] items.
fn until_step(start: i64, stop: i64, step: i64) -> Result<Vec<i64>, String> {
    let count = match step {
        0 => 0,
        s if s > 0 && stop > start => (stop as i128 - start as i128 + s as i128 - 1) / s as i128,
        s if s < 0 && stop < start => (start as i128 - stop as i128 - s as i128 - 1) / -(s as i128),
        _ => 0,
    };
    if count > MAX_ITEMS as i128 {
        return Err(format!(
            "the list would have {count} items, over the template limit of {MAX_ITEMS}"
        ));
    }
    Ok(until_step_unchecked(start, stop, step))
}

fn until_step_unchecked(start: i64, stop: i64, step: i64) -> Vec<i64> {
    let mut v = Vec::new();
    if stop < start {
        if step >= 0 {
            return v;
        }
        let mut i = start;
        while i > stop {
            v.push(i);
            i += step;
        }
        return v;
    }
    if step <= 0 {
        return v;
    }
    let mut i = start;
    while i < stop {
        v.push(i);
        i += step;
    }
    v
}

fn seq(p: &[i64]) -> Result<String, String> {
    let v = match *p {
        [end] => {
            let inc = if end < 1 { -1 } else { 1 };
            until_step(1, end.saturating_add(inc), inc)?
        }
        [start, end] => {
            let step = if end < start { -1 } else { 1 };
            until_step(start, end.saturating_add(step), step)?
        }
        [start, step, end] => {
            let mut inc = 1;
            if end < start {
                inc = -1;
                if step > 0 {
                    return Ok(String::new());
                }
            }
            until_step(start, end.saturating_add(inc), step)?
        }
        _ => return Ok(String::new()),
    };
    Ok(v.iter().map(i64::to_string).collect::<Vec<_>>().join(" "))
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &d in data {
        a = (a + d as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn path_dir(p: &str) -> String {
    let i = p.rfind('/').map(|i| i + 1).unwrap_or(0);
    path_clean(&p[..i])
}

fn path_ext(p: &str) -> &str {
    for (i, c) in p.char_indices().rev() {
        if c == '/' {
            break;
        }
        if c == '.' {
            return &p[i..];
        }
    }
    ""
}

fn from_json_float(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::Array(a) => Value::list(a.iter().map(from_json_float).collect()),
        serde_json::Value::Object(o) => {
            let mut m = Map::new();
            for (k, v) in o {
                m.insert(Value::str(k), from_json_float(v));
            }
            Value::map(m)
        }
        other => Value::from_json(other),
    }
}

/// Go's `encoding/json` encoding (`html`: escape `<`, `>`, `&`; `indent`: `MarshalIndent` with two spaces).
/// A value as JSON (as `toJson` writes it), for Helm's `toYaml`.
pub fn to_json_value(v: &Value) -> serde_json::Value {
    serde_json::from_str(&to_json(v, false, None)).unwrap_or(serde_json::Value::Null)
}

fn to_json(v: &Value, html: bool, indent: Option<usize>) -> String {
    let mut out = String::new();
    write_json(&mut out, v, html, indent);
    out
}

fn newline(out: &mut String, indent: Option<usize>) {
    if let Some(level) = indent {
        out.push('\n');
        out.push_str(&"  ".repeat(level));
    }
}

fn write_json(out: &mut String, v: &Value, html: bool, indent: Option<usize>) {
    write_json_at(out, v, html, indent, 0);
}

/// JSON within the execution's work budget and depth (`null` where it stops; the executor then fails the call).
fn write_json_at(out: &mut String, v: &Value, html: bool, indent: Option<usize>, depth: usize) {
    if !super::budget::descend(depth) || out.len() > MAX_OUTPUT {
        out.push_str("null");
        return;
    }
    let write_json = |out: &mut String, v: &Value, html: bool, indent: Option<usize>| {
        write_json_at(out, v, html, indent, depth + 1)
    };
    let deeper = indent.map(|l| l + 1);
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i, _) => out.push_str(&i.to_string()),
        Value::Float(f) => {
            let a = f.abs();
            if a != 0.0 && !(1e-6..1e21).contains(&a) {
                let s = super::value::format_float(*f, 'e', None);
                // Go writes e-07 as e-7.
                let s = match s.split_once('e') {
                    Some((m, e)) => {
                        let (sign, digits) = e.split_at(1);
                        format!("{m}e{sign}{}", digits.trim_start_matches('0'))
                    }
                    None => s,
                };
                out.push_str(&s);
            } else {
                out.push_str(&super::value::format_float(*f, 'f', None));
            }
        }
        Value::Str(s) => json_string(out, s, html),
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, deeper);
                write_json(out, item, html, deeper);
            }
            if !l.items.is_empty() {
                newline(out, indent);
            }
            out.push(']');
        }
        Value::Map(m) => {
            let m = m.borrow();
            let mut entries: Vec<(String, &Value)> =
                m.entries().iter().map(|(k, v)| (strval(k), v)).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            write_object(out, &entries, html, indent);
        }
        Value::Struct(st) => {
            let mut entries: Vec<(String, &Value)> = Vec::new();
            collect_fields(st, &mut entries);
            write_object(out, &entries, html, indent);
        }
    }
}

fn collect_fields<'a>(st: &'a super::value::Struct, out: &mut Vec<(String, &'a Value)>) {
    for f in &st.fields {
        match (&f.value, f.embedded) {
            (Value::Struct(inner), true) => collect_fields(inner, out),
            (v, _) => out.push((f.name.clone(), v)),
        }
    }
}

fn write_object(out: &mut String, entries: &[(String, &Value)], html: bool, indent: Option<usize>) {
    let deeper = indent.map(|l| l + 1);
    out.push('{');
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, deeper);
        json_string(out, k, html);
        out.push(':');
        if indent.is_some() {
            out.push(' ');
        }
        write_json(out, v, html, deeper);
    }
    if !entries.is_empty() {
        newline(out, indent);
    }
    out.push('}');
}

fn json_string(out: &mut String, s: &str, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn builtin_len(a: Vec<Value>) -> R {
    Ok(Value::int(match &a[0] {
        Value::Str(s) => s.len() as i64,
        Value::List(l) => l.items.len() as i64,
        Value::Map(m) => m.borrow().len() as i64,
        Value::Nil => return Err("len of nil pointer".into()),
        other => return Err(format!("len of type {}", other.type_name())),
    }))
}

fn builtin_index(a: Vec<Value>) -> R {
    let mut item = a[0].clone();
    if matches!(item, Value::Nil) {
        return Err("index of untyped nil".into());
    }
    for idx in &a[1..] {
        item = match &item {
            Value::List(l) => {
                let Value::Int(i, _) = idx else {
                    return Err(format!(
                        "cannot index slice/array with type {}",
                        idx.type_name()
                    ));
                };
                if *i < 0 || *i as usize >= l.items.len() {
                    return Err(format!("index out of range: {i}"));
                }
                l.items[*i as usize].clone()
            }
            Value::Str(s) => {
                let Value::Int(i, _) = idx else {
                    return Err(format!(
                        "cannot index slice/array with type {}",
                        idx.type_name()
                    ));
                };
                if *i < 0 || *i as usize >= s.len() {
                    return Err(format!("index out of range: {i}"));
                }
                Value::Int(s.as_bytes()[*i as usize] as i64, IntType::Int)
            }
            Value::Map(m) => {
                let m = m.borrow();
                let string_keys = m.type_name.starts_with("map[string]");
                if string_keys && !matches!(idx, Value::Str(_)) {
                    return Err(format!(
                        "value has type {}; should be string",
                        idx.type_name()
                    ));
                }
                match m.get(idx) {
                    Some(v) => v.clone(),
                    None if m.type_name == "map[string]string" => Value::str(""),
                    None => Value::Nil,
                }
            }
            Value::Nil => return Err("index of nil pointer".into()),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

#[derive(PartialEq)]
enum BasicKind {
    Invalid,
    Bool,
    Int,
    Float,
    String,
    Other,
}

fn basic_kind(v: &Value) -> BasicKind {
    match v {
        Value::Nil => BasicKind::Invalid,
        Value::Bool(_) => BasicKind::Bool,
        Value::Int(..) => BasicKind::Int,
        Value::Float(_) => BasicKind::Float,
        Value::Str(_) => BasicKind::String,
        _ => BasicKind::Other,
    }
}

fn eq2(a: &Value, b: &Value) -> Result<bool, String> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if k1 != k2 {
        if k1 != BasicKind::Invalid && k2 != BasicKind::Invalid {
            return Err("incompatible types for comparison".into());
        }
        return Ok(false);
    }
    match (a, b) {
        (Value::List(_), _) | (Value::Map(_), _) => Err(format!(
            "non-comparable type {}: {}",
            a.to_go_string(),
            a.type_name()
        )),
        (Value::Struct(x), Value::Struct(y)) if x.type_name != y.type_name => Err(format!(
            "non-comparable types {}: {}, {}: {}",
            a.to_go_string(),
            a.type_name(),
            b.type_name(),
            b.to_go_string()
        )),
        _ => Ok(a == b),
    }
}

fn builtin_eq(a: Vec<Value>) -> R {
    if a.len() < 2 {
        return Err("missing argument for comparison".into());
    }
    for b in &a[1..] {
        if eq2(&a[0], b)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn less(a: &Value, b: &Value) -> Result<bool, String> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if matches!(k1, BasicKind::Invalid | BasicKind::Bool | BasicKind::Other)
        || matches!(k2, BasicKind::Invalid | BasicKind::Bool | BasicKind::Other)
    {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return Err("incompatible types for comparison".into());
    }
    Ok(compare(a, b) == std::cmp::Ordering::Less)
}

fn eval_args(a: &[Value]) -> String {
    match a {
        [Value::Str(s)] => s.to_string(),
        _ => sprint(a),
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if !c.is_ascii() && c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_go() {
        assert_eq!(path_clean("a//b/../c/./"), "a/c");
        assert_eq!(path_clean("/../a"), "/a");
        assert_eq!(path_clean("../../a"), "../../a");
        assert_eq!(path_base("/a/b.yaml/"), "b.yaml");
        assert_eq!(path_dir("apps/prod/deploy.yaml"), "apps/prod");
        assert_eq!(path_dir("deploy.yaml"), ".");
        assert_eq!(path_ext("a/b.tar.gz"), ".gz");
    }

    #[test]
    fn seq_and_split_as_sprig() {
        assert_eq!(seq(&[5]).unwrap(), "1 2 3 4 5");
        assert_eq!(seq(&[0]).unwrap(), "1 0");
        assert_eq!(seq(&[2, -2]).unwrap(), "2 1 0 -1 -2");
        assert_eq!(seq(&[0, 2, 10]).unwrap(), "0 2 4 6 8 10");
        assert!(seq(&[i64::MAX]).is_err());
        assert_eq!(until_step(0, 10, 3).unwrap(), [0, 3, 6, 9]);
        assert_eq!(until_step(10, 0, -4).unwrap(), [10, 6, 2]);
        assert!(until_step(i64::MIN, i64::MAX, 1).is_err());
        assert_eq!(go_split("a,b,c", ",", 2), ["a", "b,c"]);
        assert_eq!(go_split("abc", "", -1), ["a", "b", "c"]);
        assert_eq!(to_int64(&Value::str("12.00")), 12);
        assert_eq!(to_int64(&Value::str("0x10")), 16);
        assert_eq!(to_int64(&Value::str("x")), 0);
    }
}
