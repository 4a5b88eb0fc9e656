//! The lexer of Go's `text/template` (Go 1.19+ `lex.go`): delimiters `{{ }}`, trim markers, comments, and the
//! tokens inside actions.

/// A token kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Plain text outside actions.
    Text,
    /// `{{` (with any trim marker consumed).
    LeftDelim,
    /// `}}`.
    RightDelim,
    /// Spaces inside an action.
    Space,
    /// `.Name` (the value holds the name with its dot).
    Field,
    /// `$` or `$name`.
    Variable,
    /// `.` alone.
    Dot,
    /// A function name.
    Identifier,
    /// `true` or `false`.
    Bool,
    /// `nil`.
    Nil,
    /// A number.
    Number,
    /// A character constant `'a'`.
    Char,
    /// A quoted string, with its quotes.
    String,
    /// A raw string, with its backquotes.
    RawString,
    /// `|`.
    Pipe,
    /// `(`.
    LeftParen,
    /// `)`.
    RightParen,
    /// `=`.
    Assign,
    /// `:=`.
    Declare,
    /// Another printable ASCII character (`,` in range declarations).
    Punct,
    /// A keyword.
    Keyword(Keyword),
    /// End of input.
    Eof,
}

/// The keywords.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyword {
    /// `block`
    Block,
    /// `break`
    Break,
    /// `continue`
    Continue,
    /// `define`
    Define,
    /// `else`
    Else,
    /// `end`
    End,
    /// `if`
    If,
    /// `range`
    Range,
    /// `template`
    Template,
    /// `with`
    With,
}

impl Keyword {
    fn from_word(w: &str) -> Option<Keyword> {
        Some(match w {
            "block" => Keyword::Block,
            "break" => Keyword::Break,
            "continue" => Keyword::Continue,
            "define" => Keyword::Define,
            "else" => Keyword::Else,
            "end" => Keyword::End,
            "if" => Keyword::If,
            "range" => Keyword::Range,
            "template" => Keyword::Template,
            "with" => Keyword::With,
            _ => return None,
        })
    }

    /// The keyword as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Block => "block",
            Keyword::Break => "break",
            Keyword::Continue => "continue",
            Keyword::Define => "define",
            Keyword::Else => "else",
            Keyword::End => "end",
            Keyword::If => "if",
            Keyword::Range => "range",
            Keyword::Template => "template",
            Keyword::With => "with",
        }
    }
}

/// A token: kind, text and byte position in the template.
#[derive(Clone, Debug)]
pub struct Token {
    /// The kind.
    pub kind: Kind,
    /// The text (for `Text`, after trimming).
    pub val: String,
    /// Byte offset of the token's start.
    pub pos: usize,
}

/// A lexing error at a byte position.
#[derive(Debug)]
pub struct LexError {
    /// Byte offset where the error was found.
    pub pos: usize,
    /// What is wrong.
    pub message: String,
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

fn has_left_trim(s: &[u8]) -> bool {
    s.len() >= 2 && s[0] == b'-' && is_space(s[1])
}

fn has_right_trim(s: &[u8]) -> bool {
    s.len() >= 2 && is_space(s[0]) && s[1] == b'-'
}

/// Splits a template into tokens.
pub fn lex(input: &str) -> Result<Vec<Token>, LexError> {
    let mut l = Lexer {
        input,
        b: input.as_bytes(),
        pos: 0,
        tokens: Vec::new(),
        paren_depth: 0,
    };
    l.run()?;
    Ok(l.tokens)
}

struct Lexer<'a> {
    input: &'a str,
    b: &'a [u8],
    pos: usize,
    tokens: Vec<Token>,
    paren_depth: i32,
}

impl Lexer<'_> {
    fn err<T>(&self, pos: usize, message: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            pos,
            message: message.into(),
        })
    }

    fn emit(&mut self, kind: Kind, start: usize, end: usize) {
        self.tokens.push(Token {
            kind,
            val: self.input[start..end].to_string(),
            pos: start,
        });
    }

    fn peek_char(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn run(&mut self) -> Result<(), LexError> {
        loop {
            // Text up to the next left delimiter.
            let start = self.pos;
            let Some(x) = self.input[start..].find(LEFT) else {
                if start < self.b.len() {
                    self.emit(Kind::Text, start, self.b.len());
                }
                self.tokens.push(Token {
                    kind: Kind::Eof,
                    val: String::new(),
                    pos: self.b.len(),
                });
                return Ok(());
            };
            let delim = start + x;
            let after = delim + LEFT.len();
            let trim = has_left_trim(&self.b[after..]);
            let mut text_end = delim;
            if trim {
                while text_end > start && is_space(self.b[text_end - 1]) {
                    text_end -= 1;
                }
            }
            if text_end > start {
                self.emit(Kind::Text, start, text_end);
            }
            let marker = if trim { 2 } else { 0 };
            if self.input[after + marker..].starts_with("/*") {
                self.pos = after + marker;
                self.comment()?;
                continue;
            }
            self.tokens.push(Token {
                kind: Kind::LeftDelim,
                val: LEFT.into(),
                pos: delim,
            });
            self.pos = after + marker;
            self.paren_depth = 0;
            self.inside_action(delim)?;
        }
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let s = &self.b[self.pos..];
        if has_right_trim(s) && s[2..].starts_with(RIGHT.as_bytes()) {
            return (true, true);
        }
        (s.starts_with(RIGHT.as_bytes()), false)
    }

    fn skip_leading_space_after_trim(&mut self) {
        while self.pos < self.b.len() && is_space(self.b[self.pos]) {
            self.pos += 1;
        }
    }

    fn comment(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        self.pos += 2;
        let Some(x) = self.input[self.pos..].find("*/") else {
            return self.err(start, "unclosed comment");
        };
        self.pos += x + 2;
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.err(start, "comment ends before closing delimiter");
        }
        if trim {
            self.pos += 2;
        }
        self.pos += RIGHT.len();
        if trim {
            self.skip_leading_space_after_trim();
        }
        Ok(())
    }

    fn at_terminator(&self) -> bool {
        match self.b.get(self.pos) {
            None => true,
            Some(&c) if is_space(c) => true,
            Some(b'.' | b',' | b'|' | b':' | b')' | b'(') => true,
            _ => self.b[self.pos..].starts_with(RIGHT.as_bytes()),
        }
    }

    fn inside_action(&mut self, action_start: usize) -> Result<(), LexError> {
        loop {
            let (delim, trim) = self.at_right_delim();
            if delim {
                if self.paren_depth != 0 {
                    return self.err(self.pos, "unclosed left paren");
                }
                if trim {
                    self.pos += 2;
                }
                self.tokens.push(Token {
                    kind: Kind::RightDelim,
                    val: RIGHT.into(),
                    pos: self.pos,
                });
                self.pos += RIGHT.len();
                if trim {
                    self.skip_leading_space_after_trim();
                }
                return Ok(());
            }
            let start = self.pos;
            let Some(c) = self.peek_char() else {
                return self.err(action_start, "unclosed action");
            };
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    let mut n = 0;
                    while self.pos < self.b.len() && is_space(self.b[self.pos]) {
                        self.pos += 1;
                        n += 1;
                    }
                    // A trim-marked right delimiter: leave its space in place.
                    if has_right_trim(&self.b[self.pos - 1..])
                        && self.b[self.pos + 1..].starts_with(RIGHT.as_bytes())
                    {
                        self.pos -= 1;
                        if n == 1 {
                            continue;
                        }
                    }
                    self.emit(Kind::Space, start, self.pos);
                }
                '=' => {
                    self.pos += 1;
                    self.emit(Kind::Assign, start, self.pos);
                }
                ':' => {
                    if self.b.get(self.pos + 1) != Some(&b'=') {
                        return self.err(start, "expected :=");
                    }
                    self.pos += 2;
                    self.emit(Kind::Declare, start, self.pos);
                }
                '|' => {
                    self.pos += 1;
                    self.emit(Kind::Pipe, start, self.pos);
                }
                '"' => self.quoted(b'"', Kind::String, "unterminated quoted string")?,
                '\'' => self.quoted(b'\'', Kind::Char, "unterminated character constant")?,
                '`' => {
                    let Some(x) = self.input[start + 1..].find('`') else {
                        return self.err(start, "unterminated raw quoted string");
                    };
                    self.pos = start + 1 + x + 1;
                    self.emit(Kind::RawString, start, self.pos);
                }
                '$' => {
                    self.pos += 1;
                    self.field_or_variable(start, Kind::Variable)?;
                }
                '.' if !matches!(self.b.get(self.pos + 1), Some(b'0'..=b'9')) => {
                    self.pos += 1;
                    self.field_or_variable(start, Kind::Field)?;
                }
                '.' | '+' | '-' | '0'..='9' => self.number()?,
                c if is_alnum(c) => self.identifier()?,
                '(' => {
                    self.pos += 1;
                    self.paren_depth += 1;
                    self.emit(Kind::LeftParen, start, self.pos);
                }
                ')' => {
                    self.pos += 1;
                    self.paren_depth -= 1;
                    if self.paren_depth < 0 {
                        return self.err(start, "unexpected right paren U+0029 ')'");
                    }
                    self.emit(Kind::RightParen, start, self.pos);
                }
                c if c.is_ascii() && !c.is_ascii_control() => {
                    self.pos += 1;
                    self.emit(Kind::Punct, start, self.pos);
                }
                c => {
                    return self.err(
                        start,
                        format!("unrecognized character in action: U+{:04X} {c:?}", c as u32),
                    );
                }
            }
        }
    }

    fn quoted(&mut self, quote: u8, kind: Kind, unterminated: &str) -> Result<(), LexError> {
        let start = self.pos;
        let mut i = start + 1;
        loop {
            match self.b.get(i) {
                None | Some(b'\n') => return self.err(start, unterminated),
                Some(b'\\') => {
                    if matches!(self.b.get(i + 1), None | Some(b'\n')) {
                        return self.err(start, unterminated);
                    }
                    i += 2;
                }
                Some(&c) if c == quote => break,
                _ => i += 1,
            }
        }
        self.pos = i + 1;
        self.emit(kind, start, self.pos);
        Ok(())
    }

    fn field_or_variable(&mut self, start: usize, kind: Kind) -> Result<(), LexError> {
        if self.at_terminator() {
            let kind = if kind == Kind::Variable {
                Kind::Variable
            } else {
                Kind::Dot
            };
            self.emit(kind, start, self.pos);
            return Ok(());
        }
        self.alphanumeric_run()?;
        self.emit(kind, start, self.pos);
        Ok(())
    }

    /// Consumes letters, digits and `_`, which must end at a terminator.
    fn alphanumeric_run(&mut self) -> Result<(), LexError> {
        while let Some(c) = self.peek_char() {
            if !is_alnum(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        if !self.at_terminator() {
            let c = self.peek_char().unwrap_or('\0');
            return self.err(self.pos, format!("bad character U+{:04X} {c:?}", c as u32));
        }
        Ok(())
    }

    fn identifier(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        self.alphanumeric_run()?;
        let word = &self.input[start..self.pos];
        let kind = match word {
            "true" | "false" => Kind::Bool,
            "nil" => Kind::Nil,
            w => match Keyword::from_word(w) {
                Some(k) => Kind::Keyword(k),
                None => Kind::Identifier,
            },
        };
        self.emit(kind, start, self.pos);
        Ok(())
    }

    fn accept(&mut self, set: &str) -> bool {
        match self.b.get(self.pos) {
            Some(&c) if set.as_bytes().contains(&c) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, set: &str) {
        while self.accept(set) {}
    }

    fn number(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek_char().is_some_and(is_alnum) {
            self.pos += self.peek_char().map_or(1, char::len_utf8);
            return self.err(
                start,
                format!("bad number syntax: {:?}", &self.input[start..self.pos]),
            );
        }
        self.emit(Kind::Number, start, self.pos);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Kind> {
        lex(s).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn trims_and_comments() {
        let t = lex("a  {{- .X -}}  b {{/* c */}} d {{- /* e */ -}} f").unwrap();
        let texts: Vec<&str> = t
            .iter()
            .filter(|t| t.kind == Kind::Text)
            .map(|t| t.val.as_str())
            .collect();
        assert_eq!(texts, ["a", "b ", " d", "f"]);
        assert_eq!(
            kinds("{{$x := .A.b | printf \"%d\" 1.5}}"),
            [
                Kind::LeftDelim,
                Kind::Variable,
                Kind::Space,
                Kind::Declare,
                Kind::Space,
                Kind::Field,
                Kind::Field,
                Kind::Space,
                Kind::Pipe,
                Kind::Space,
                Kind::Identifier,
                Kind::Space,
                Kind::String,
                Kind::Space,
                Kind::Number,
                Kind::RightDelim,
                Kind::Eof
            ]
        );
    }

    #[test]
    fn reports_errors() {
        assert_eq!(lex("{{ .X ").unwrap_err().message, "unclosed action");
        assert_eq!(
            lex("{{/* x */ .Y}}").unwrap_err().message,
            "comment ends before closing delimiter"
        );
        assert!(
            lex("{{ 3x }}")
                .unwrap_err()
                .message
                .starts_with("bad number syntax")
        );
    }
}
