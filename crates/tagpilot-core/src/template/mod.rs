//! Go `text/template` for commit messages, with sprig's hermetic functions, as Flux renders
//! `git.commit.messageTemplate`.
//!
//! Written for this project (gtmpl ranges over maps in hash order and has no Stringer): the lexer, parser and
//! executor follow Go's `text/template` (Go 1.19+, plus `{{else with}}` and range over an integer from later
//! releases), and [`value`] prints values as Go's `fmt` does. The conformance corpus in
//! `tests/data/templates/` holds outputs rendered by Go itself (`make template-conformance`).
//!
//! ```
//! use tagpilot_core::template::{Template, Value};
//! let t = Template::parse("msg", "{{ range $k, $v := . }}{{ $k }}={{ $v | upper }} {{ end }}").unwrap();
//! let data = Value::from_json(&serde_json::json!({"b": "two", "a": "one"}));
//! assert_eq!(t.execute(&data).unwrap(), "a=ONE b=TWO ");
//! ```

mod budget;
mod exec;
mod fmt;
mod funcs;
mod lex;
mod parse;
pub mod value;

pub use value::{Field, IntType, List, Map, Struct, Value};

/// The most bytes a template may write, and the longest string any function may return (1 MiB). Go's engine
/// has no such limit; here one tenant's template must not exhaust the memory every tenant's automations share.
pub const MAX_OUTPUT: usize = 1 << 20;

/// The most items a function may return as a list (`until`, `untilStep`, `seq`, `append`, ...).
pub const MAX_ITEMS: usize = 100_000;

/// The most steps (nodes walked, commands evaluated, range iterations) one execution may take.
pub const MAX_STEPS: u64 = 2_000_000;

/// A template that failed to parse or to execute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The text is not a valid template.
    #[error("template: {name}:{line}:{col}: {message}")]
    Parse {
        /// The template's name.
        name: String,
        /// 1-based line.
        line: usize,
        /// 0-based byte column, as Go counts it.
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// Executing the template failed.
    #[error("template: {name}:{line}:{col}: executing {template:?} at <{context}>: {message}")]
    Exec {
        /// The template's name.
        name: String,
        /// 1-based line.
        line: usize,
        /// 0-based byte column, as Go counts it.
        col: usize,
        /// The (possibly `define`d) template being executed.
        template: String,
        /// The node being evaluated, shortened as Go does.
        context: String,
        /// What went wrong.
        message: String,
    },
}

impl TemplateError {
    /// The 1-based line of the error.
    pub fn line(&self) -> usize {
        match self {
            TemplateError::Parse { line, .. } | TemplateError::Exec { line, .. } => *line,
        }
    }
}

/// A parsed template.
#[derive(Debug)]
pub struct Template {
    name: String,
    text: String,
    tree: parse::Tree,
    helm: bool,
}

fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = &text.as_bytes()[..pos];
    let line = 1 + memchr::memchr_iter(b'\n', before).count();
    let col = match memchr::memrchr(b'\n', before) {
        Some(i) => pos - (i + 1),
        None => pos,
    };
    (line, col)
}

impl Template {
    /// Parses `text` as the template `name`.
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        Template::parse_dialect(name, text, false)
    }

    /// Parses `text` in Helm's dialect: text/template and sprig plus Helm's `include`, `toYaml` and `required`
    /// (what this project's chart uses; rendering it in tests needs no Helm).
    pub fn parse_helm(name: &str, text: &str) -> Result<Template, TemplateError> {
        Template::parse_dialect(name, text, true)
    }

    fn parse_dialect(name: &str, text: &str, helm: bool) -> Result<Template, TemplateError> {
        let known =
            |f: &str| funcs::lookup(f).is_some() || (helm && exec::HELM_FUNCTIONS.contains(&f));
        let tree = parse::parse(text, &known).map_err(|e| {
            let (line, col) = line_col(text, e.pos);
            TemplateError::Parse {
                name: name.to_string(),
                line,
                col,
                message: e.message,
            }
        })?;
        Ok(Template {
            name: name.to_string(),
            text: text.to_string(),
            tree,
            helm,
        })
    }

    /// The template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders the template with `data` as dot.
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        exec::execute(&self.tree, &self.name, data, self.helm).map_err(|e| {
            let (line, col) = line_col(&self.text, e.pos);
            let context = if e.context.chars().count() > 20 {
                format!("{}...", e.context.chars().take(20).collect::<String>())
            } else {
                e.context
            };
            TemplateError::Exec {
                name: self.name.clone(),
                line,
                col,
                template: e.template,
                context,
                message: e.message,
            }
        })
    }
}

#[cfg(test)]
mod tests;
