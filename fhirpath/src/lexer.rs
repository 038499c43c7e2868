//! Splits FHIRPath text into tokens for the parser.
//!
//! Keywords (`and`, `is`, `as`, `true`, ...) come out as plain identifiers: whether `contains`
//! is an operator or a function name depends on where it stands, which only the parser knows.
//! Every token keeps its byte offset so syntax errors can say where they are.

use crate::SyntaxError;

/// One token and where it starts in the source text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub offset: usize,
}

/// The kinds of FHIRPath token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// A name, possibly a keyword (`Patient`, `where`, `and`).
    Identifier(String),
    /// A name in backticks (`` `div` ``): never a keyword.
    DelimitedIdentifier(String),
    /// A string literal, escapes already resolved.
    String(String),
    /// A number literal as written (`0`, `1.5`).
    Number(String),
    /// `%name`, `%'name'` or `` %`name` ``.
    Constant(String),
    /// `$this`, `$index`, `$total`.
    Special(String),
    Dot,
    Comma,
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    LeftBrace,
    RightBrace,
    Pipe,
    Equal,
    NotEqual,
    Equivalent,
    NotEquivalent,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Plus,
    Minus,
    Star,
    Slash,
    Ampersand,
    End,
}

/// Tokenizes `source`; the last token is always [`TokenKind::End`].
pub(crate) fn tokenize(source: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut lexer = Lexer {
        source,
        bytes: source.as_bytes(),
        position: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'s> {
    source: &'s str,
    bytes: &'s [u8],
    position: usize,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn run(&mut self) -> Result<(), SyntaxError> {
        loop {
            self.skip_space_and_comments()?;
            let offset = self.position;
            let Some(&byte) = self.bytes.get(offset) else {
                self.tokens.push(Token {
                    kind: TokenKind::End,
                    offset,
                });
                return Ok(());
            };
            let kind = match byte {
                b'\'' => TokenKind::String(self.quoted(b'\'')?),
                b'`' => TokenKind::DelimitedIdentifier(self.quoted(b'`')?),
                b'%' => self.constant()?,
                b'$' => {
                    self.position += 1;
                    let name = self.identifier();
                    if name.is_empty() {
                        return Err(SyntaxError::new(offset, "expected a name after `$`"));
                    }
                    TokenKind::Special(name.to_owned())
                }
                b'@' => {
                    return Err(SyntaxError::new(
                        offset,
                        "date and time literals are not supported",
                    ));
                }
                b'0'..=b'9' => TokenKind::Number(self.number().to_owned()),
                b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                    TokenKind::Identifier(self.identifier().to_owned())
                }
                _ => self.symbol(offset)?,
            };
            self.tokens.push(Token { kind, offset });
        }
    }

    fn skip_space_and_comments(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.bytes.get(self.position..self.position + 2) {
                Some(b"//") => {
                    while self.bytes.get(self.position).is_some_and(|&b| b != b'\n') {
                        self.position += 1;
                    }
                }
                Some(b"/*") => {
                    let start = self.position;
                    let end = self.source[start + 2..]
                        .find("*/")
                        .ok_or_else(|| SyntaxError::new(start, "unterminated comment"))?;
                    self.position = start + 2 + end + 2;
                }
                _ => match self.bytes.get(self.position) {
                    Some(b' ' | b'\t' | b'\r' | b'\n') => self.position += 1,
                    _ => return Ok(()),
                },
            }
        }
    }

    fn identifier(&mut self) -> &str {
        let start = self.position;
        while self
            .bytes
            .get(self.position)
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.position += 1;
        }
        &self.source[start..self.position]
    }

    /// An integer or decimal (`12`, `1.5`); a dot not followed by a digit is an invocation
    /// (`1.toString()`), so it is left alone.
    fn number(&mut self) -> &str {
        let start = self.position;
        self.skip_digits();
        if self.bytes.get(self.position) == Some(&b'.')
            && self
                .bytes
                .get(self.position + 1)
                .is_some_and(u8::is_ascii_digit)
        {
            self.position += 1;
            self.skip_digits();
        }
        &self.source[start..self.position]
    }

    fn skip_digits(&mut self) {
        while self
            .bytes
            .get(self.position)
            .is_some_and(u8::is_ascii_digit)
        {
            self.position += 1;
        }
    }

    fn constant(&mut self) -> Result<TokenKind, SyntaxError> {
        let offset = self.position;
        self.position += 1;
        let name = match self.bytes.get(self.position) {
            Some(b'\'') => self.quoted(b'\'')?,
            Some(b'`') => self.quoted(b'`')?,
            _ => self.identifier().to_owned(),
        };
        if name.is_empty() {
            return Err(SyntaxError::new(offset, "expected a name after `%`"));
        }
        Ok(TokenKind::Constant(name))
    }

    /// A string or delimited identifier: `quote`, text with backslash escapes, `quote`.
    fn quoted(&mut self, quote: u8) -> Result<String, SyntaxError> {
        let start = self.position;
        self.position += 1;
        let mut text = String::new();
        loop {
            let rest = &self.source[self.position..];
            let Some(c) = rest.chars().next() else {
                return Err(SyntaxError::new(start, "unterminated quoted text"));
            };
            self.position += c.len_utf8();
            match c {
                c if c as u32 == u32::from(quote) => return Ok(text),
                '\\' => text.push(self.escape()?),
                c => text.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, SyntaxError> {
        let offset = self.position - 1;
        let Some(&byte) = self.bytes.get(self.position) else {
            return Err(SyntaxError::new(offset, "unterminated escape"));
        };
        self.position += 1;
        Ok(match byte {
            b'\'' => '\'',
            b'"' => '"',
            b'`' => '`',
            b'\\' => '\\',
            b'/' => '/',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hex = self
                    .source
                    .get(self.position..self.position + 4)
                    .ok_or_else(|| SyntaxError::new(offset, "incomplete \\u escape"))?;
                self.position += 4;
                u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| SyntaxError::new(offset, "invalid \\u escape"))?
            }
            _ => return Err(SyntaxError::new(offset, "unknown escape")),
        })
    }

    fn symbol(&mut self, offset: usize) -> Result<TokenKind, SyntaxError> {
        let two = self.bytes.get(offset..offset + 2);
        let (kind, length) = match two {
            Some(b"!=") => (TokenKind::NotEqual, 2),
            Some(b"!~") => (TokenKind::NotEquivalent, 2),
            Some(b"<=") => (TokenKind::LessOrEqual, 2),
            Some(b">=") => (TokenKind::GreaterOrEqual, 2),
            _ => {
                let kind = match self.bytes[offset] {
                    b'.' => TokenKind::Dot,
                    b',' => TokenKind::Comma,
                    b'(' => TokenKind::LeftParen,
                    b')' => TokenKind::RightParen,
                    b'[' => TokenKind::LeftBracket,
                    b']' => TokenKind::RightBracket,
                    b'{' => TokenKind::LeftBrace,
                    b'}' => TokenKind::RightBrace,
                    b'|' => TokenKind::Pipe,
                    b'=' => TokenKind::Equal,
                    b'~' => TokenKind::Equivalent,
                    b'<' => TokenKind::Less,
                    b'>' => TokenKind::Greater,
                    b'+' => TokenKind::Plus,
                    b'-' => TokenKind::Minus,
                    b'*' => TokenKind::Star,
                    b'/' => TokenKind::Slash,
                    b'&' => TokenKind::Ampersand,
                    _ => {
                        let c = self.source[offset..].chars().next().unwrap_or('?');
                        return Err(SyntaxError::new(
                            offset,
                            format!("unexpected character `{c}`"),
                        ));
                    }
                };
                (kind, 1)
            }
        };
        self.position = offset + length;
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<TokenKind> {
        tokenize(source)
            .unwrap()
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    fn ident(name: &str) -> TokenKind {
        TokenKind::Identifier(name.to_owned())
    }

    #[test]
    fn paths_functions_and_operators() {
        assert_eq!(
            kinds("Patient.telecom.where(system='email') | x != y"),
            vec![
                ident("Patient"),
                TokenKind::Dot,
                ident("telecom"),
                TokenKind::Dot,
                ident("where"),
                TokenKind::LeftParen,
                ident("system"),
                TokenKind::Equal,
                TokenKind::String("email".to_owned()),
                TokenKind::RightParen,
                TokenKind::Pipe,
                ident("x"),
                TokenKind::NotEqual,
                ident("y"),
                TokenKind::End,
            ]
        );
    }

    #[test]
    fn numbers_constants_and_special_names() {
        assert_eq!(
            kinds("entry[0] 1.50 %resource $this %`vs-x`"),
            vec![
                ident("entry"),
                TokenKind::LeftBracket,
                TokenKind::Number("0".to_owned()),
                TokenKind::RightBracket,
                TokenKind::Number("1.50".to_owned()),
                TokenKind::Constant("resource".to_owned()),
                TokenKind::Special("this".to_owned()),
                TokenKind::Constant("vs-x".to_owned()),
                TokenKind::End,
            ]
        );
    }

    #[test]
    fn string_escapes_and_delimited_identifiers() {
        assert_eq!(
            kinds(r"'it\'s\n\u00e9' `div`"),
            vec![
                TokenKind::String("it's\né".to_owned()),
                TokenKind::DelimitedIdentifier("div".to_owned()),
                TokenKind::End,
            ]
        );
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(
            kinds("a // line\n /* block */ b"),
            vec![ident("a"), ident("b"), TokenKind::End]
        );
    }

    #[test]
    fn errors_say_where() {
        let error = tokenize("name = 'open").unwrap_err();
        assert_eq!(error.offset, 7);
        assert!(tokenize("a # b").unwrap_err().message.contains('#'));
        assert!(tokenize("@2020-01-01").is_err());
        assert!(tokenize("/* never closed").is_err());
    }
}
