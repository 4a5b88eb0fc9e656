//! The executor of Go's `text/template` (`exec.go`): walks the tree with dot and variables, evaluates
//! pipelines, fields and function calls with Go's argument typing, and reports errors at the node.

use super::funcs::{Func, Param, lookup};
use super::parse::{Command, Control, Node, Number, Operand, Pipe, Tree};
use super::value::Value;
use super::{MAX_ITEMS, MAX_OUTPUT, MAX_STEPS};

/// Go allows 100,000 nested template calls on its growable stacks; ours are fixed, so the limit is lower and
/// counts nested `if`/`with`/`range` bodies too.
pub const MAX_DEPTH: usize = 150;

/// An execution error: where (byte position and the node's text) and what.
#[derive(Debug)]
pub struct ExecError {
    /// Byte offset of the node.
    pub pos: usize,
    /// The node as text (Go's error context).
    pub context: String,
    /// The template being executed.
    pub template: String,
    /// What went wrong.
    pub message: String,
}

enum Flow {
    Break,
    Continue,
    Error(ExecError),
}

type Res<T> = Result<T, Flow>;

/// Where the executor is, for error messages.
#[derive(Clone, Copy)]
enum At<'a> {
    None,
    Operand(&'a Operand),
    Command(&'a Command),
    Pipe(&'a Pipe),
    Template(usize, &'a str, Option<&'a Pipe>),
}

/// The functions Helm adds to text/template that a chart of this project may use (with [`execute`]'s
/// `helm`).
pub const HELM_FUNCTIONS: &[&str] = &["include", "toYaml", "required"];

/// Executes `name`'s body of `tree` with `data` as dot; `helm` enables [`HELM_FUNCTIONS`].
pub fn execute(
    tree: &Tree,
    root_name: &str,
    data: &Value,
    helm: bool,
) -> Result<String, ExecError> {
    let _budget = super::budget::begin();
    let mut st = State {
        helm,
        tree,
        out: String::new(),
        vars: vec![("$".into(), data.clone())],
        depth: 0,
        steps: 0,
        at: At::None,
        name: root_name.to_string(),
    };
    match st.walk_list(data, &tree.root) {
        Ok(()) => Ok(st.out),
        Err(Flow::Error(e)) => Err(e),
        Err(Flow::Break | Flow::Continue) => {
            Err(st.error_value("break or continue outside range".into()))
        }
    }
}

struct State<'a> {
    helm: bool,
    tree: &'a Tree,
    out: String,
    vars: Vec<(String, Value)>,
    depth: usize,
    steps: u64,
    at: At<'a>,
    name: String,
}

impl<'a> State<'a> {
    fn error_value(&self, message: String) -> ExecError {
        let (pos, context) = match self.at {
            At::None => (0, String::new()),
            At::Operand(o) => (o.pos(), o.to_string()),
            At::Command(c) => (c.pos, c.to_string()),
            At::Pipe(p) => (p.pos, p.to_string()),
            At::Template(p, name, pipe) => match pipe {
                Some(pipe) => (p, format!("{{{{template {name:?} {pipe}}}}}")),
                None => (p, format!("{{{{template {name:?}}}}}")),
            },
        };
        ExecError {
            pos,
            context,
            template: self.name.clone(),
            message,
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> Res<T> {
        Err(Flow::Error(self.error_value(message.into())))
    }

    fn walk_list(&mut self, dot: &Value, list: &'a [Node]) -> Res<()> {
        for n in list {
            self.walk(dot, n)?;
        }
        Ok(())
    }

    /// Counts a step; refuses the execution past [`MAX_STEPS`].
    fn step(&mut self) -> Res<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return self.err(format!(
                "the template takes more than {MAX_STEPS} steps (tagpilot's limit)"
            ));
        }
        Ok(())
    }

    /// Refuses the execution once its output passes [`MAX_OUTPUT`] or a walk over a value stopped early.
    fn check_output(&self) -> Res<()> {
        if let Some(why) = super::budget::stopped() {
            return self.err(super::budget::message(why));
        }
        if self.out.len() > MAX_OUTPUT {
            return self.err(format!(
                "the output exceeds {MAX_OUTPUT} bytes (tagpilot's limit)"
            ));
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Value, node: &'a Node) -> Res<()> {
        self.step()?;
        self.walk_node(dot, node)?;
        self.check_output()
    }

    fn walk_node(&mut self, dot: &Value, node: &'a Node) -> Res<()> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    match v {
                        Value::Nil => self.out.push_str("<no value>"),
                        v => super::value::write_value(&mut self.out, &v, false),
                    }
                }
            }
            Node::If(c) | Node::With(c) | Node::Range(c) => {
                if self.depth >= MAX_DEPTH {
                    self.at = At::Pipe(&c.pipe);
                    return self.err(format!("exceeded maximum template depth ({MAX_DEPTH})"));
                }
                self.depth += 1;
                let r = match node {
                    Node::If(_) => self.walk_if_or_with(dot, c, false),
                    Node::With(_) => self.walk_if_or_with(dot, c, true),
                    _ => self.walk_range(dot, c),
                };
                self.depth -= 1;
                r?;
            }
            Node::Break => return Err(Flow::Break),
            Node::Continue => return Err(Flow::Continue),
            Node::Template { pos, name, pipe } => {
                self.at = At::Template(*pos, name, pipe.as_ref());
                let Some(body) = self.tree.defs.get(name) else {
                    return self.err(format!("template {name:?} not defined"));
                };
                if self.depth >= MAX_DEPTH {
                    return self.err(format!("exceeded maximum template depth ({MAX_DEPTH})"));
                }
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                let saved_name = std::mem::replace(&mut self.name, name.clone());
                self.depth += 1;
                let r = self.walk_list(&new_dot, body);
                self.depth -= 1;
                self.vars = saved_vars;
                self.name = saved_name;
                r?;
            }
        }
        Ok(())
    }

    fn walk_if_or_with(&mut self, dot: &Value, c: &'a Control, with: bool) -> Res<()> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &c.pipe)?;
        let r = if val.truth() {
            if with {
                self.walk_list(&val, &c.list)
            } else {
                self.walk_list(dot, &c.list)
            }
        } else if let Some(e) = &c.else_list {
            self.walk_list(dot, e)
        } else {
            Ok(())
        };
        self.vars.truncate(mark);
        r
    }

    fn walk_range(&mut self, dot: &Value, c: &'a Control) -> Res<()> {
        let outer = self.vars.len();
        let val = self.eval_pipeline(dot, &c.pipe)?;
        let mark = self.vars.len();
        let items: Vec<(Value, Value)> = match &val {
            Value::List(l) => l
                .items
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::int(i as i64), v.clone()))
                .collect(),
            Value::Map(m) => m.borrow().entries().to_vec(),
            Value::Int(n, _) => {
                if c.pipe.decl.len() > 1 {
                    return self.err(format!(
                        "can't use {n} to iterate over more than one variable"
                    ));
                }
                if *n > MAX_STEPS as i64 {
                    return self.err(format!(
                        "range over {n}: more iterations than the template step limit of {MAX_STEPS}"
                    ));
                }
                (0..*n).map(|i| (Value::int(i), Value::int(i))).collect()
            }
            Value::Nil => Vec::new(),
            other => return self.err(format!("range can't iterate over {}", other.to_go_string())),
        };
        let mut result = Ok(());
        if items.is_empty() {
            if let Some(e) = &c.else_list {
                result = self.walk_list(dot, e);
            }
        } else {
            for (index, elem) in items {
                if let Err(e) = self.step() {
                    result = Err(e);
                    break;
                }
                let n = self.vars.len();
                if !c.pipe.decl.is_empty() {
                    self.vars[n - 1].1 = elem.clone();
                }
                if c.pipe.decl.len() > 1 {
                    self.vars[n - 2].1 = index;
                }
                let r = self.walk_list(&elem, &c.list);
                self.vars.truncate(mark);
                match r {
                    Ok(()) | Err(Flow::Continue) => {}
                    Err(Flow::Break) => break,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        self.vars.truncate(outer);
        result
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'a Pipe) -> Res<Value> {
        self.at = At::Pipe(pipe);
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        for name in &pipe.decl {
            if pipe.is_assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.clone(),
                    None => return self.err(format!("undefined variable: {name}")),
                }
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Operand], final_: &Option<Value>) -> Res<()> {
        if args.len() > 1 || final_.is_some() {
            return self.err(format!("can't give argument to non-function {}", args[0]));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'a Command, final_: Option<Value>) -> Res<Value> {
        self.step()?;
        let first = &cmd.args[0];
        match first {
            Operand::Field { idents, .. } => {
                self.at = At::Operand(first);
                self.eval_field_chain(dot, dot.clone(), idents, &cmd.args, final_)
            }
            Operand::Chain { node, fields, .. } => {
                self.at = At::Operand(first);
                let base = self.eval_arg(dot, Param::Any, node)?;
                self.eval_field_chain(dot, base, fields, &cmd.args, final_)
            }
            Operand::Identifier { name, .. } => {
                self.at = At::Operand(first);
                self.eval_function(dot, name, cmd, &cmd.args[1..], final_)
            }
            Operand::Pipe(_, p) => {
                self.not_a_function(&cmd.args, &final_)?;
                self.eval_pipeline(dot, p)
            }
            Operand::Variable { idents, .. } => {
                self.at = At::Operand(first);
                let v = self.var_value(&idents[0])?;
                if idents.len() == 1 {
                    self.not_a_function(&cmd.args, &final_)?;
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, &idents[1..], &cmd.args, final_)
            }
            _ => {
                self.at = At::Operand(first);
                self.not_a_function(&cmd.args, &final_)?;
                match first {
                    Operand::Bool(_, b) => Ok(Value::Bool(*b)),
                    Operand::Dot(_) => Ok(dot.clone()),
                    Operand::Nil(_) => self.err("nil is not a command"),
                    Operand::Number(_, n) => self.ideal_constant(n),
                    Operand::Str(_, _, s) => Ok(Value::str(s)),
                    _ => self.err(format!("can't evaluate command {first}")),
                }
            }
        }
    }

    fn var_value(&self, name: &str) -> Res<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => self.err(format!("undefined variable: {name}")),
        }
    }

    fn ideal_constant(&self, n: &Number) -> Res<Value> {
        let hex_int = {
            let t = n.text.trim_start_matches(['+', '-']);
            (t.starts_with("0x") || t.starts_with("0X")) && !t.contains(['p', 'P'])
        };
        if n.float.is_some() && !n.is_char && !hex_int && n.text.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Value::Float(n.float.unwrap_or_default()));
        }
        match n.int {
            Some(i) => Ok(Value::int(i)),
            None => self.err(format!("{} overflows int", n.text)),
        }
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut receiver: Value,
        idents: &[String],
        args: &'a [Operand],
        final_: Option<Value>,
    ) -> Res<Value> {
        let n = idents.len();
        for name in &idents[..n - 1] {
            receiver = self.eval_field(dot, name, &[], None, receiver)?;
        }
        self.eval_field(dot, &idents[n - 1], args, final_, receiver)
    }

    fn eval_field(
        &mut self,
        _dot: &Value,
        name: &str,
        args: &[Operand],
        final_: Option<Value>,
        receiver: Value,
    ) -> Res<Value> {
        let has_args = args.len() > 1 || final_.is_some();
        match &receiver {
            Value::Nil => Ok(Value::Nil),
            Value::Struct(s) => {
                if s.methods.iter().any(|(m, _)| m == name) {
                    if has_args {
                        let got = args.len().saturating_sub(1) + final_.is_some() as usize;
                        return self
                            .err(format!("wrong number of args for {name}: want 0 got {got}"));
                    }
                    return Ok(s.lookup(name).unwrap_or(Value::Nil));
                }
                match s.lookup(name) {
                    Some(v) => {
                        if has_args {
                            return self.err(format!(
                                "{name} has arguments but cannot be invoked as function"
                            ));
                        }
                        Ok(v)
                    }
                    None => self.err(format!(
                        "can't evaluate field {name} in type {}",
                        s.type_name
                    )),
                }
            }
            Value::Map(m) if m.borrow().type_name.starts_with("map[string]") => {
                if has_args {
                    return self.err(format!("{name} is not a method but has arguments"));
                }
                Ok(m.borrow().get_str(name).cloned().unwrap_or(Value::Nil))
            }
            other => self.err(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            )),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &str,
        cmd: &'a Command,
        args: &'a [Operand],
        final_: Option<Value>,
    ) -> Res<Value> {
        if self.helm && HELM_FUNCTIONS.contains(&name) {
            return self.eval_helm(dot, name, args, final_);
        }
        let Some(func) = lookup(name) else {
            return self.err(format!("{name:?} is not a defined function"));
        };
        self.eval_call(dot, func, cmd, name, args, final_)
    }

    /// Helm's `include NAME DATA` (a defined template rendered to a string), `toYaml V` (sorted keys, no
    /// trailing newline) and `required MESSAGE V` (fails with MESSAGE when V is nil or empty).
    fn eval_helm(
        &mut self,
        dot: &Value,
        name: &str,
        args: &'a [Operand],
        final_: Option<Value>,
    ) -> Res<Value> {
        let mut argv = Vec::with_capacity(args.len() + 1);
        for arg in args {
            argv.push(self.eval_arg(dot, Param::Any, arg)?);
        }
        argv.extend(final_);
        let want = if name == "toYaml" { 1 } else { 2 };
        if argv.len() != want {
            return self.err(format!(
                "wrong number of args for {name}: want {want} got {}",
                argv.len()
            ));
        }
        match name {
            "include" => {
                let template = argv[0].as_str().unwrap_or_default().to_string();
                let Some(body) = self.tree.defs.get(&template) else {
                    return self.err(format!(
                        "error calling include: template {template:?} not defined"
                    ));
                };
                if self.depth >= MAX_DEPTH {
                    return self.err(format!("exceeded maximum template depth ({MAX_DEPTH})"));
                }
                let data = argv[1].clone();
                let saved_out = std::mem::take(&mut self.out);
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".into(), data.clone())]);
                let saved_name = std::mem::replace(&mut self.name, template);
                self.depth += 1;
                let r = self.walk_list(&data, body);
                self.depth -= 1;
                self.vars = saved_vars;
                self.name = saved_name;
                let text = std::mem::replace(&mut self.out, saved_out);
                r?;
                Ok(Value::str(&text))
            }
            "toYaml" => {
                let json = super::funcs::to_json_value(&argv[0]);
                match yaml_serde::to_string(&json) {
                    Ok(y) => Ok(Value::str(y.trim_end_matches('\n'))),
                    Err(e) => self.err(format!("error calling toYaml: {e}")),
                }
            }
            _ => {
                let empty = match &argv[1] {
                    Value::Nil => true,
                    v => v.as_str() == Some(""),
                };
                if empty {
                    let message = argv[0].as_str().unwrap_or_default().to_string();
                    return self.err(format!("error calling required: {message}"));
                }
                Ok(argv[1].clone())
            }
        }
    }

    fn eval_call(
        &mut self,
        dot: &Value,
        func: &'static Func,
        cmd: &'a Command,
        name: &str,
        args: &'a [Operand],
        final_: Option<Value>,
    ) -> Res<Value> {
        let num_in = args.len() + final_.is_some() as usize;
        let fixed = func.params.len();
        match func.variadic {
            Some(_) if num_in < fixed => {
                return self.err(format!(
                    "wrong number of args for {name}: want at least {fixed} got {num_in}"
                ));
            }
            None if num_in != fixed => {
                return self.err(format!(
                    "wrong number of args for {name}: want {fixed} got {num_in}"
                ));
            }
            _ => {}
        }
        let param = |i: usize| {
            if i < fixed {
                func.params[i]
            } else {
                func.variadic.unwrap_or(Param::Any)
            }
        };
        if name == "and" || name == "or" {
            let want = name == "or";
            let mut v = Value::Nil;
            for arg in args {
                v = self.eval_arg(dot, Param::Any, arg)?;
                if v.truth() == want {
                    return Ok(v);
                }
            }
            if let Some(f) = final_ {
                v = f;
            }
            return Ok(v);
        }
        let mut argv = Vec::with_capacity(num_in);
        for (i, arg) in args.iter().enumerate() {
            argv.push(self.eval_arg(dot, param(i), arg)?);
        }
        if let Some(f) = final_ {
            let p = param(args.len());
            argv.push(self.validate(f, p)?);
        }
        match (func.call)(argv) {
            Ok(_) if super::budget::stopped().is_some() => {
                let why = super::budget::stopped().expect("checked");
                self.at = At::Command(cmd);
                self.err(format!(
                    "error calling {name}: {}",
                    super::budget::message(why)
                ))
            }
            Ok(v) => {
                let too_big = match &v {
                    Value::Str(s) if s.len() > MAX_OUTPUT => Some(format!(
                        "the result has {} bytes, over the template limit of {MAX_OUTPUT}",
                        s.len()
                    )),
                    Value::List(l) if l.items.len() > MAX_ITEMS => Some(format!(
                        "the result has {} items, over the template limit of {MAX_ITEMS}",
                        l.items.len()
                    )),
                    _ => None,
                };
                match too_big {
                    Some(why) => {
                        self.at = At::Command(cmd);
                        self.err(format!("error calling {name}: {why}"))
                    }
                    None => Ok(v),
                }
            }
            Err(e) => {
                self.at = At::Command(cmd);
                self.err(format!("error calling {name}: {e}"))
            }
        }
    }

    fn validate(&self, v: Value, p: Param) -> Res<Value> {
        let ok = match (&v, p) {
            (_, Param::Any) => true,
            (Value::Nil, Param::Map) => true,
            (Value::Nil, _) => return self.err(format!("invalid value; expected {}", p.go_name())),
            (Value::Str(_), Param::Str) => true,
            (Value::Int(_, super::value::IntType::Int), Param::Int) => true,
            (Value::Float(_), Param::Float) => true,
            (Value::Bool(_), Param::Bool) => true,
            (Value::Map(_), Param::Map) => true,
            _ => false,
        };
        if !ok {
            return self.err(format!(
                "wrong type for value; expected {}; got {}",
                p.go_name(),
                v.type_name()
            ));
        }
        Ok(v)
    }

    fn eval_arg(&mut self, dot: &Value, p: Param, node: &'a Operand) -> Res<Value> {
        self.at = At::Operand(node);
        match node {
            Operand::Dot(_) => return self.validate(dot.clone(), p),
            Operand::Nil(_) => {
                return match p {
                    Param::Any | Param::Map => Ok(Value::Nil),
                    _ => self.err(format!("cannot assign nil to {}", p.go_name())),
                };
            }
            Operand::Field { idents, .. } => {
                let v = self.eval_field_chain(
                    dot,
                    dot.clone(),
                    idents,
                    std::slice::from_ref(node),
                    None,
                )?;
                return self.validate(v, p);
            }
            Operand::Variable { idents, .. } => {
                let v = self.var_value(&idents[0])?;
                let v = if idents.len() > 1 {
                    self.eval_field_chain(dot, v, &idents[1..], &[], None)?
                } else {
                    v
                };
                return self.validate(v, p);
            }
            Operand::Pipe(_, pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                return self.validate(v, p);
            }
            Operand::Identifier { name, .. } => {
                let Some(func) = lookup(name) else {
                    return self.err(format!("{name:?} is not a defined function"));
                };
                let v = self.eval_call_ident(dot, func, name, node)?;
                return self.validate(v, p);
            }
            Operand::Chain {
                node: inner,
                fields,
                ..
            } => {
                let base = self.eval_arg(dot, Param::Any, inner)?;
                let v = self.eval_field_chain(dot, base, fields, &[], None)?;
                return self.validate(v, p);
            }
            _ => {}
        }
        match (p, node) {
            (Param::Bool, Operand::Bool(_, b)) => Ok(Value::Bool(*b)),
            (Param::Bool, _) => self.err(format!("expected bool; found {node}")),
            (Param::Float, Operand::Number(_, n)) if n.float.is_some() => {
                Ok(Value::Float(n.float.unwrap_or_default()))
            }
            (Param::Float, _) => self.err(format!("expected float; found {node}")),
            (Param::Int, Operand::Number(_, n)) if n.int.is_some() => {
                Ok(Value::int(n.int.unwrap_or_default()))
            }
            (Param::Int, _) => self.err(format!("expected integer; found {node}")),
            (Param::Str, Operand::Str(_, _, s)) => Ok(Value::str(s)),
            (Param::Str, _) => self.err(format!("expected string; found {node}")),
            (Param::Any, Operand::Bool(_, b)) => Ok(Value::Bool(*b)),
            (Param::Any, Operand::Number(_, n)) => self.ideal_constant(n),
            (Param::Any, Operand::Str(_, _, s)) => Ok(Value::str(s)),
            _ => self.err(format!(
                "can't handle {node} for arg of type {}",
                p.go_name()
            )),
        }
    }

    /// A function named as an argument, called without arguments (`{{len (list)}}` is a pipe; `{{print list}}` is this).
    fn eval_call_ident(
        &mut self,
        dot: &Value,
        func: &'static Func,
        name: &str,
        node: &'a Operand,
    ) -> Res<Value> {
        if !func.params.is_empty() {
            let fixed = func.params.len();
            let prefix = if func.variadic.is_some() {
                "at least "
            } else {
                ""
            };
            return self.err(format!(
                "wrong number of args for {name}: want {prefix}{fixed} got 0"
            ));
        }
        let _ = (dot, node);
        match (func.call)(Vec::new()) {
            Ok(v) => Ok(v),
            Err(e) => self.err(format!("error calling {name}: {e}")),
        }
    }
}
