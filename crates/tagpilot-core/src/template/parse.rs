//! The parser of Go's `text/template` (`parse/parse.go`): the tree of text, actions and control structures,
//! with Go's checks (undefined variables and functions, `break` outside `range`, misplaced `else`/`end`).

use std::collections::HashMap;
use std::fmt;

use super::lex::{Keyword, Kind, Token, lex};

/// How deep controls and parentheses may nest.
pub const MAX_NESTING: usize = 100;

/// A node of a template body.
#[derive(Debug)]
pub enum Node {
    /// Text copied to the output.
    Text(String),
    /// `{{pipeline}}`: printed unless it declares variables.
    Action(Pipe),
    /// `{{if}}`.
    If(Control),
    /// `{{range}}`.
    Range(Control),
    /// `{{with}}`.
    With(Control),
    /// `{{template "name" pipeline}}` (and the call half of `{{block}}`).
    Template {
        /// Position of the template's name.
        pos: usize,
        /// The template invoked.
        name: String,
        /// The value of dot inside it.
        pipe: Option<Pipe>,
    },
    /// `{{break}}`.
    Break,
    /// `{{continue}}`.
    Continue,
}

/// The parts of `if`, `range` and `with`.
#[derive(Debug)]
pub struct Control {
    /// The condition or the ranged value.
    pub pipe: Pipe,
    /// The body.
    pub list: Vec<Node>,
    /// The `else` body.
    pub else_list: Option<Vec<Node>>,
}

/// A pipeline: optional declarations and commands separated by `|`.
#[derive(Debug)]
pub struct Pipe {
    /// Position of the first token.
    pub pos: usize,
    /// Variables declared (`:=`) or assigned (`=`).
    pub decl: Vec<String>,
    /// Whether the variables are assigned rather than declared.
    pub is_assign: bool,
    /// The commands.
    pub cmds: Vec<Command>,
}

/// A command: a function or value followed by arguments.
#[derive(Debug)]
pub struct Command {
    /// Position of the first operand.
    pub pos: usize,
    /// The operands.
    pub args: Vec<Operand>,
}

/// A number constant and the types it can take.
#[derive(Debug, Clone)]
pub struct Number {
    /// The text as written.
    pub text: String,
    /// The value as an integer, when it is one.
    pub int: Option<i64>,
    /// The value as a float, when it is one.
    pub float: Option<f64>,
    /// Whether it is a character constant.
    pub is_char: bool,
}

/// An operand.
#[derive(Debug)]
pub enum Operand {
    /// `.A.b`
    Field {
        /// Position (Go's: of the last field when chained).
        pos: usize,
        /// Field names.
        idents: Vec<String>,
    },
    /// `$x.a`
    Variable {
        /// Position.
        pos: usize,
        /// `$x` then field names.
        idents: Vec<String>,
    },
    /// `(pipeline).a`
    Chain {
        /// Position.
        pos: usize,
        /// The term the fields apply to.
        node: Box<Operand>,
        /// Field names.
        fields: Vec<String>,
    },
    /// A function name.
    Identifier {
        /// Position.
        pos: usize,
        /// The name.
        name: String,
    },
    /// `.`
    Dot(usize),
    /// `nil`
    Nil(usize),
    /// `true` / `false`
    Bool(usize, bool),
    /// A number.
    Number(usize, Number),
    /// A string (quoted text, unquoted value).
    Str(usize, String, String),
    /// `(pipeline)`
    Pipe(usize, Box<Pipe>),
}

impl Operand {
    /// Byte position in the template.
    pub fn pos(&self) -> usize {
        match self {
            Operand::Field { pos, .. }
            | Operand::Variable { pos, .. }
            | Operand::Chain { pos, .. }
            | Operand::Identifier { pos, .. }
            | Operand::Dot(pos)
            | Operand::Nil(pos)
            | Operand::Bool(pos, _)
            | Operand::Number(pos, _)
            | Operand::Str(pos, _, _)
            | Operand::Pipe(pos, _) => *pos,
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Operand::Variable { idents, .. } => f.write_str(&idents.join(".")),
            Operand::Chain { node, fields, .. } => {
                write!(f, "{node}")?;
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Operand::Identifier { name, .. } => f.write_str(name),
            Operand::Dot(_) => f.write_str("."),
            Operand::Nil(_) => f.write_str("nil"),
            Operand::Bool(_, b) => write!(f, "{b}"),
            Operand::Number(_, n) => f.write_str(&n.text),
            Operand::Str(_, quoted, _) => f.write_str(quoted),
            Operand::Pipe(_, p) => write!(f, "({p})"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            write!(
                f,
                "{} {} ",
                self.decl.join(", "),
                if self.is_assign { "=" } else { ":=" }
            )?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A parse error at a byte position.
#[derive(Debug)]
pub struct ParseError {
    /// Byte offset.
    pub pos: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed template set: the main body and the `define`d templates.
#[derive(Debug, Default)]
pub struct Tree {
    /// The main template's body.
    pub root: Vec<Node>,
    /// Templates defined by `define` and `block`.
    pub defs: HashMap<String, Vec<Node>>,
}

/// Parses `text`; `has_function` says which identifiers are functions.
pub fn parse(text: &str, has_function: &dyn Fn(&str) -> bool) -> Result<Tree, ParseError> {
    let tokens = lex(text).map_err(|e| ParseError {
        pos: e.pos,
        message: e.message,
    })?;
    let mut p = Parser {
        tokens,
        i: 0,
        vars: vec!["$".into()],
        range_depth: 0,
        nesting: 0,
        tree: Tree::default(),
        has_function,
    };
    p.parse_root()?;
    Ok(p.tree)
}

struct Parser<'f> {
    tokens: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    nesting: usize,
    tree: Tree,
    has_function: &'f dyn Fn(&str) -> bool,
}

type PResult<T> = Result<T, ParseError>;

enum Item {
    Node(Node),
    Else(usize, bool),
    End(usize),
}

fn describe(t: &Token) -> String {
    match &t.kind {
        Kind::Eof => "EOF".into(),
        Kind::Keyword(k) => format!("<{}>", k.as_str()),
        Kind::Space => "space".into(),
        Kind::Text => format!("{:?}", t.val),
        _ => format!("{:?}", t.val),
    }
}

impl Parser<'_> {
    fn err<T>(&self, pos: usize, message: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            pos,
            message: message.into(),
        })
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.i += 1;
        t
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.i.min(self.tokens.len() - 1)]
    }

    fn backup(&mut self) {
        self.i -= 1;
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.kind != Kind::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn unexpected<T>(&self, t: &Token, context: &str) -> PResult<T> {
        self.err(t.pos, format!("unexpected {} in {context}", describe(t)))
    }

    fn expect(&mut self, kind: Kind, context: &str) -> PResult<Token> {
        let t = self.next_non_space();
        if t.kind != kind {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn parse_root(&mut self) -> PResult<()> {
        while self.peek().kind != Kind::Eof {
            if self.peek().kind == Kind::LeftDelim {
                let save = self.i;
                self.next();
                if self.next_non_space().kind == Kind::Keyword(Keyword::Define) {
                    self.parse_definition()?;
                    continue;
                }
                self.i = save;
            }
            match self.text_or_action()? {
                Item::Node(n) => self.tree.root.push(n),
                Item::Else(pos, _) => return self.err(pos, "unexpected {{else}}"),
                Item::End(pos) => return self.err(pos, "unexpected {{end}}"),
            }
        }
        Ok(())
    }

    fn add_definition(&mut self, pos: usize, name: String, body: Vec<Node>) -> PResult<()> {
        let empty = |b: &Vec<Node>| {
            b.iter()
                .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
        };
        match self.tree.defs.get(&name) {
            Some(existing) if !empty(existing) && !empty(&body) => self.err(
                pos,
                format!("template: multiple definition of template {name:?}"),
            ),
            Some(_) if empty(&body) => Ok(()),
            _ => {
                self.tree.defs.insert(name, body);
                Ok(())
            }
        }
    }

    /// A body with its own variable scope (`define` and `block`), up to its `{{end}}`.
    fn definition_body(&mut self, context: &str) -> PResult<Vec<Node>> {
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_depth = std::mem::replace(&mut self.range_depth, 0);
        // Restored on every path: an error inside a `block` in a `range` left the depth at 0 and the range's
        // own decrement underflowed (found by the template fuzz target).
        let listed = self.item_list();
        self.vars = saved_vars;
        self.range_depth = saved_depth;
        let (list, end) = listed?;
        match end {
            Item::End(_) => Ok(list),
            Item::Else(pos, _) => self.err(pos, format!("unexpected {{{{else}}}} in {context}")),
            Item::Node(_) => unreachable!("item_list stops at else or end"),
        }
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let t = self.next_non_space();
        let name = match t.kind {
            Kind::String | Kind::RawString => self.unquote_token(&t)?,
            _ => return self.unexpected(&t, CONTEXT),
        };
        self.expect(Kind::RightDelim, CONTEXT)?;
        let body = self.definition_body(CONTEXT)?;
        self.add_definition(t.pos, name, body)
    }

    fn item_list(&mut self) -> PResult<(Vec<Node>, Item)> {
        let mut list = Vec::new();
        while self.peek_non_space().kind != Kind::Eof {
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                other => return Ok((list, other)),
            }
        }
        let pos = self.peek().pos;
        self.err(pos, "unexpected EOF")
    }

    fn text_or_action(&mut self) -> PResult<Item> {
        let t = self.next_non_space();
        match t.kind {
            Kind::Text => Ok(Item::Node(Node::Text(t.val))),
            Kind::LeftDelim => self.action(),
            _ => self.unexpected(&t, "input"),
        }
    }

    fn action(&mut self) -> PResult<Item> {
        let t = self.next_non_space();
        match t.kind {
            Kind::Keyword(Keyword::Block) => return self.block_control().map(Item::Node),
            Kind::Keyword(Keyword::Break) => {
                return self.break_or_continue(t, true).map(Item::Node);
            }
            Kind::Keyword(Keyword::Continue) => {
                return self.break_or_continue(t, false).map(Item::Node);
            }
            Kind::Keyword(Keyword::Else) => {
                let peek = self.peek_non_space();
                if matches!(peek.kind, Kind::Keyword(Keyword::If | Keyword::With)) {
                    return Ok(Item::Else(peek.pos, true));
                }
                let t = self.expect(Kind::RightDelim, "else")?;
                return Ok(Item::Else(t.pos, false));
            }
            Kind::Keyword(Keyword::End) => {
                let t = self.expect(Kind::RightDelim, "end")?;
                return Ok(Item::End(t.pos));
            }
            Kind::Keyword(Keyword::If) => {
                return self.control(Keyword::If).map(|c| Item::Node(Node::If(c)));
            }
            Kind::Keyword(Keyword::Range) => {
                return self
                    .control(Keyword::Range)
                    .map(|c| Item::Node(Node::Range(c)));
            }
            Kind::Keyword(Keyword::With) => {
                return self
                    .control(Keyword::With)
                    .map(|c| Item::Node(Node::With(c)));
            }
            Kind::Keyword(Keyword::Template) => return self.template_control().map(Item::Node),
            _ => {}
        }
        self.backup();
        Ok(Item::Node(Node::Action(
            self.pipeline("command", Kind::RightDelim)?,
        )))
    }

    fn break_or_continue(&mut self, t: Token, is_break: bool) -> PResult<Node> {
        let word = if is_break { "break" } else { "continue" };
        let next = self.next_non_space();
        if next.kind != Kind::RightDelim {
            return self.unexpected(&next, &format!("{{{{{word}}}}}"));
        }
        if self.range_depth == 0 {
            return self.err(t.pos, format!("{{{{{word}}}}} outside {{{{range}}}}"));
        }
        Ok(if is_break {
            Node::Break
        } else {
            Node::Continue
        })
    }

    /// Guards the parser's recursion (nested controls and parentheses) against stack exhaustion.
    fn nest(&mut self, pos: usize) -> PResult<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return self.err(
                pos,
                format!("template nested deeper than {MAX_NESTING} levels"),
            );
        }
        Ok(())
    }

    fn control(&mut self, kw: Keyword) -> PResult<Control> {
        let pos = self.peek().pos;
        self.nest(pos)?;
        let vars = self.vars.len();
        let context = kw.as_str();
        let result = self.control_inner(kw, context);
        self.vars.truncate(vars);
        self.nesting -= 1;
        result
    }

    fn control_inner(&mut self, kw: Keyword, context: &str) -> PResult<Control> {
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        if kw == Keyword::Range {
            self.range_depth += 1;
        }
        let listed = self.item_list();
        if kw == Keyword::Range {
            self.range_depth -= 1;
        }
        let (list, next) = listed?;
        let mut else_list = None;
        match next {
            Item::End(_) => {}
            Item::Else(pos, chained) => {
                if chained {
                    // `{{else if}}` / `{{else with}}`: a nested control that shares our {{end}}.
                    let t = self.next_non_space();
                    let nested = match (kw, &t.kind) {
                        (Keyword::If, Kind::Keyword(Keyword::If)) => {
                            Node::If(self.control(Keyword::If)?)
                        }
                        (Keyword::With, Kind::Keyword(Keyword::With)) => {
                            Node::With(self.control(Keyword::With)?)
                        }
                        _ => {
                            return self.err(
                                pos,
                                format!("unexpected {} in {{{{else}}}} of {context}", describe(&t)),
                            );
                        }
                    };
                    else_list = Some(vec![nested]);
                } else {
                    let (l, end) = self.item_list()?;
                    match end {
                        Item::End(_) => else_list = Some(l),
                        Item::Else(pos, _) => return self.err(pos, "expected end; found {{else}}"),
                        Item::Node(_) => unreachable!("item_list stops at else or end"),
                    }
                }
            }
            Item::Node(_) => unreachable!("item_list stops at else or end"),
        }
        Ok(Control {
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&mut self, context: &str) -> PResult<(String, usize)> {
        let t = self.next_non_space();
        match t.kind {
            Kind::String | Kind::RawString => Ok((self.unquote_token(&t)?, t.pos)),
            _ => self.unexpected(&t, context),
        }
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let (name, pos) = self.template_name(CONTEXT)?;
        let pipe = if self.next_non_space().kind != Kind::RightDelim {
            self.backup();
            Some(self.pipeline(CONTEXT, Kind::RightDelim)?)
        } else {
            None
        };
        Ok(Node::Template { pos, name, pipe })
    }

    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let (name, pos) = self.template_name(CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, Kind::RightDelim)?;
        let body = self.definition_body(CONTEXT)?;
        self.add_definition(pos, name.clone(), body)?;
        Ok(Node::Template {
            pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn pipeline(&mut self, context: &str, end: Kind) -> PResult<Pipe> {
        let first = self.peek_non_space();
        let mut pipe = Pipe {
            pos: first.pos,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        loop {
            let v = self.peek_non_space();
            if v.kind != Kind::Variable {
                break;
            }
            let save = self.i;
            self.next_non_space();
            let next = self.peek_non_space();
            match next.kind {
                Kind::Assign | Kind::Declare => {
                    pipe.is_assign = next.kind == Kind::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val.clone());
                    break;
                }
                Kind::Punct if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val.clone());
                    if context == "range" && pipe.decl.len() < 2 {
                        let p = self.peek_non_space();
                        if matches!(p.kind, Kind::Variable | Kind::RightDelim | Kind::RightParen) {
                            continue;
                        }
                        return self.err(p.pos, "range can only initialize variables");
                    }
                    return self.err(next.pos, format!("too many declarations in {context}"));
                }
                _ => {
                    self.i = save;
                    break;
                }
            }
        }
        loop {
            let t = self.next_non_space();
            if t.kind == end {
                self.check_pipeline(&pipe, context, t.pos)?;
                return Ok(pipe);
            }
            match t.kind {
                Kind::Bool
                | Kind::Char
                | Kind::Dot
                | Kind::Field
                | Kind::Identifier
                | Kind::Number
                | Kind::Nil
                | Kind::RawString
                | Kind::String
                | Kind::Variable
                | Kind::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&t, context),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str, pos: usize) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return self.err(pos, format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args[0],
                Operand::Bool(..)
                    | Operand::Dot(_)
                    | Operand::Nil(_)
                    | Operand::Number(..)
                    | Operand::Str(..)
            ) {
                return self.err(
                    c.pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                );
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                args.push(op);
            }
            let t = self.next();
            match t.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.backup(),
                Kind::Pipe => {}
                _ => return self.unexpected(&t, "operand"),
            }
            break;
        }
        if args.is_empty() {
            return self.err(pos, "empty command");
        }
        Ok(Command { pos, args })
    }

    fn operand(&mut self) -> PResult<Option<Operand>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Kind::Field {
            return Ok(Some(node));
        }
        let chain_pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().kind == Kind::Field {
            fields.push(self.next().val[1..].to_string());
        }
        Ok(Some(match node {
            Operand::Field { mut idents, .. } => {
                idents.extend(fields);
                Operand::Field {
                    pos: chain_pos,
                    idents,
                }
            }
            Operand::Variable { mut idents, .. } => {
                idents.extend(fields);
                Operand::Variable {
                    pos: chain_pos,
                    idents,
                }
            }
            Operand::Bool(..)
            | Operand::Str(..)
            | Operand::Number(..)
            | Operand::Nil(_)
            | Operand::Dot(_) => {
                return self.err(
                    chain_pos,
                    format!("unexpected . after term {:?}", node.to_string()),
                );
            }
            other => Operand::Chain {
                pos: chain_pos,
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Operand>> {
        let t = self.next_non_space();
        Ok(Some(match t.kind {
            Kind::Identifier => {
                if !(self.has_function)(&t.val) {
                    return self.err(t.pos, format!("function {:?} not defined", t.val));
                }
                Operand::Identifier {
                    pos: t.pos,
                    name: t.val,
                }
            }
            Kind::Dot => Operand::Dot(t.pos),
            Kind::Nil => Operand::Nil(t.pos),
            Kind::Variable => {
                let idents: Vec<String> = t.val.split('.').map(str::to_string).collect();
                if !self.vars.contains(&idents[0]) {
                    return self.err(t.pos, format!("undefined variable {:?}", idents[0]));
                }
                Operand::Variable { pos: t.pos, idents }
            }
            Kind::Field => Operand::Field {
                pos: t.pos,
                idents: vec![t.val[1..].to_string()],
            },
            Kind::Bool => Operand::Bool(t.pos, t.val == "true"),
            Kind::Char | Kind::Number => Operand::Number(t.pos, self.number(&t)?),
            Kind::LeftParen => {
                self.nest(t.pos)?;
                let p = self.pipeline("parenthesized pipeline", Kind::RightParen)?;
                self.nesting -= 1;
                Operand::Pipe(t.pos, Box::new(p))
            }
            Kind::String | Kind::RawString => {
                let s = self.unquote_token(&t)?;
                Operand::Str(t.pos, t.val, s)
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }

    fn unquote_token(&self, t: &Token) -> PResult<String> {
        unquote(&t.val).map_err(|m| ParseError {
            pos: t.pos,
            message: m,
        })
    }

    fn number(&self, t: &Token) -> PResult<Number> {
        let text = t.val.clone();
        if t.kind == Kind::Char {
            let s = unquote(&text).map_err(|m| ParseError {
                pos: t.pos,
                message: m,
            })?;
            let mut chars = s.chars();
            let c = match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => return self.err(t.pos, format!("malformed character constant: {text}")),
            };
            return Ok(Number {
                text,
                int: Some(c as i64),
                float: Some(c as u32 as f64),
                is_char: true,
            });
        }
        if text.ends_with('i') {
            return self.err(
                t.pos,
                format!("complex constants are not supported: {text}"),
            );
        }
        if let Some(i) = parse_go_int(&text) {
            return Ok(Number {
                text,
                int: Some(i),
                float: Some(i as f64),
                is_char: false,
            });
        }
        let cleaned = text.replace('_', "");
        match cleaned.parse::<f64>() {
            Ok(f) if !is_hex(&cleaned) => {
                if !text.contains(['.', 'e', 'E', 'p', 'P']) {
                    return self.err(t.pos, format!("integer overflow: {text:?}"));
                }
                let int = (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64);
                Ok(Number {
                    text,
                    int,
                    float: Some(f),
                    is_char: false,
                })
            }
            _ => self.err(t.pos, format!("illegal number syntax: {text:?}")),
        }
    }
}

fn is_hex(s: &str) -> bool {
    let s = s.trim_start_matches(['+', '-']);
    s.starts_with("0x") || s.starts_with("0X")
}

/// Go's `strconv.ParseInt(s, 0, 64)`: sign, base prefixes `0x` `0o` `0b` or a leading `0` for octal, underscores
/// only after a prefix.
pub fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    // Underscores only between digits (or right after a base prefix).
    if digits.is_empty()
        || digits.ends_with('_')
        || digits.contains("__")
        || (digits.starts_with('_') && !prefixed)
    {
        return None;
    }
    let digits = digits.replace('_', "");
    let mag = u64::from_str_radix(&digits, radix).ok()?;
    if neg {
        if mag <= i64::MAX as u64 + 1 {
            Some((mag as i128).wrapping_neg() as i64)
        } else {
            None
        }
    } else {
        i64::try_from(mag).ok()
    }
}

/// Go's `strconv.Unquote` for `"..."`, `` `...` `` and `'.'`.
pub fn unquote(s: &str) -> Result<String, String> {
    let bad = || "invalid syntax".to_string();
    let b = s.as_bytes();
    if b.len() < 2 {
        return Err(bad());
    }
    let q = b[0];
    if b[b.len() - 1] != q {
        return Err(bad());
    }
    let inner = &s[1..s.len() - 1];
    if q == b'`' {
        return Ok(inner.replace('\r', ""));
    }
    if q != b'"' && q != b'\'' {
        return Err(bad());
    }
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '\\' {
            if c as u32 == q as u32 {
                return Err(bad());
            }
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some((_, e)) = chars.next() else {
            return Err(bad());
        };
        let mut hex = |n: usize| -> Result<u32, String> {
            let mut v = 0u32;
            for _ in 0..n {
                let (_, d) = chars.next().ok_or_else(bad)?;
                v = v * 16 + d.to_digit(16).ok_or_else(bad)?;
            }
            Ok(v)
        };
        match e {
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            '\'' if q == b'\'' => out.push(b'\''),
            '"' if q == b'"' => out.push(b'"'),
            'x' => out.push(hex(2)? as u8),
            'u' | 'U' => {
                let v = hex(if e == 'u' { 4 } else { 8 })?;
                let c = char::from_u32(v).ok_or_else(bad)?;
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let (_, d) = chars.next().ok_or_else(bad)?;
                    v = v * 8 + d.to_digit(8).ok_or_else(bad)?;
                }
                if v > 255 {
                    return Err(bad());
                }
                out.push(v as u8);
            }
            _ => return Err(bad()),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_as_go() {
        assert_eq!(parse_go_int("0x1F"), Some(31));
        assert_eq!(parse_go_int("017"), Some(15));
        assert_eq!(parse_go_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_go_int("1_000"), Some(1000));
        assert_eq!(parse_go_int("1__0"), None);
        assert_eq!(parse_go_int("0x_1"), Some(1));
        assert_eq!(parse_go_int("1.5"), None);
    }

    #[test]
    fn unquotes_as_go() {
        assert_eq!(unquote(r#""a\tb\x41\u00e9\101""#).unwrap(), "a\tbAéA");
        assert_eq!(unquote("`a\r\\n`").unwrap(), "a\\n");
        assert_eq!(unquote("'x'").unwrap(), "x");
        assert!(unquote(r#""\q""#).is_err());
    }

    #[test]
    fn checks_variables_and_functions() {
        let f = |n: &str| n == "print";
        assert_eq!(
            parse("{{$x}}", &f).unwrap_err().message,
            "undefined variable \"$x\""
        );
        assert_eq!(
            parse("{{nope 1}}", &f).unwrap_err().message,
            "function \"nope\" not defined"
        );
        assert_eq!(
            parse("{{if 1}}{{$y := 2}}{{end}}{{$y}}", &f)
                .unwrap_err()
                .message,
            "undefined variable \"$y\""
        );
        assert_eq!(
            parse("{{break}}", &f).unwrap_err().message,
            "{{break}} outside {{range}}"
        );
        assert!(parse("{{range .}}{{break}}{{end}}", &f).is_ok());
        let deep = format!("{}{}", "{{if 1}}".repeat(5000), "{{end}}".repeat(5000));
        assert!(
            parse(&deep, &f)
                .unwrap_err()
                .message
                .contains("nested deeper")
        );
        let parens = format!("{{{{print {}1{}}}}}", "(".repeat(5000), ")".repeat(5000));
        assert!(
            parse(&parens, &f)
                .unwrap_err()
                .message
                .contains("nested deeper")
        );
        assert_eq!(
            parse("{{end}}", &f).unwrap_err().message,
            "unexpected {{end}}"
        );
        assert_eq!(parse("{{if 1}}", &f).unwrap_err().message, "unexpected EOF");
    }
}
