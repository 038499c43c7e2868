//! Turns tokens into the syntax tree, by recursive descent over the FHIRPath grammar.
//!
//! One function per precedence level, loosest first: `implies`, `or`/`xor`, `and`,
//! `in`/`contains`, equality, comparison, `|`, `is`/`as`, then unary signs, invocations
//! (`.name`, `.fn(...)`, `[i]`) and terms. Arithmetic (`+ - * / div mod &`) is recognised and
//! reported as unsupported: no R4 search parameter uses it, and an evaluator that silently
//! did it wrong would be worse than one that says so.

use crate::SyntaxError;
use crate::ast::{BinaryOp, Expr, Function, Literal, TypeOp, Variable};
use crate::lexer::{Token, TokenKind};
use crate::types::TypeSpecifier;

/// Parses a whole expression from `tokens` (as [`crate::lexer::tokenize`] returns them).
pub(crate) fn parse(tokens: &[Token]) -> Result<Expr, SyntaxError> {
    let mut parser = Parser {
        tokens,
        position: 0,
    };
    let expr = parser.expression()?;
    match parser.peek() {
        TokenKind::End => Ok(expr),
        other => Err(parser.error(format!("unexpected {}", describe(other)))),
    }
}

struct Parser<'t> {
    tokens: &'t [Token],
    position: usize,
}

/// Words that are operators when they stand between two operands.
const ARITHMETIC_WORDS: [&str; 2] = ["div", "mod"];

impl Parser<'_> {
    fn peek(&self) -> &TokenKind {
        self.tokens
            .get(self.position)
            .map_or(&TokenKind::End, |token| &token.kind)
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.position)
            .or_else(|| self.tokens.last())
            .map_or(0, |token| token.offset)
    }

    fn advance(&mut self) -> TokenKind {
        let kind = self.peek().clone();
        if self.position < self.tokens.len() {
            self.position += 1;
        }
        kind
    }

    fn error(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError::new(self.offset(), message)
    }

    fn expect(&mut self, expected: &TokenKind) -> Result<(), SyntaxError> {
        if self.peek() == expected {
            self.advance();
            Ok(())
        } else {
            Err(self.error(format!(
                "expected {}, found {}",
                describe(expected),
                describe(self.peek())
            )))
        }
    }

    /// Whether the next token is the (undelimited) word `word`.
    fn at_word(&self, word: &str) -> bool {
        matches!(self.peek(), TokenKind::Identifier(name) if name == word)
    }

    fn expression(&mut self) -> Result<Expr, SyntaxError> {
        self.implies()
    }

    fn implies(&mut self) -> Result<Expr, SyntaxError> {
        let mut lhs = self.or()?;
        while self.at_word("implies") {
            self.advance();
            let rhs = self.or()?;
            lhs = binary(BinaryOp::Implies, lhs, rhs);
        }
        Ok(lhs)
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut lhs = self.and()?;
        loop {
            let op = if self.at_word("or") {
                BinaryOp::Or
            } else if self.at_word("xor") {
                BinaryOp::Xor
            } else {
                return Ok(lhs);
            };
            self.advance();
            let rhs = self.and()?;
            lhs = binary(op, lhs, rhs);
        }
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut lhs = self.membership()?;
        while self.at_word("and") {
            self.advance();
            let rhs = self.membership()?;
            lhs = binary(BinaryOp::And, lhs, rhs);
        }
        Ok(lhs)
    }

    fn membership(&mut self) -> Result<Expr, SyntaxError> {
        let mut lhs = self.equality()?;
        loop {
            let op = if self.at_word("in") {
                BinaryOp::In
            } else if self.at_word("contains") {
                BinaryOp::Contains
            } else {
                return Ok(lhs);
            };
            self.advance();
            let rhs = self.equality()?;
            lhs = binary(op, lhs, rhs);
        }
    }

    fn equality(&mut self) -> Result<Expr, SyntaxError> {
        let mut lhs = self.comparison()?;
        loop {
            let op = match self.peek() {
                TokenKind::Equal => BinaryOp::Equal,
                TokenKind::NotEqual => BinaryOp::NotEqual,
                TokenKind::Equivalent => BinaryOp::Equivalent,
                TokenKind::NotEquivalent => BinaryOp::NotEquivalent,
                _ => return Ok(lhs),
            };
            self.advance();
            let rhs = self.comparison()?;
            lhs = binary(op, lhs, rhs);
        }
    }

    fn comparison(&mut self) -> Result<Expr, SyntaxError> {
        let mut lhs = self.union()?;
        loop {
            let op = match self.peek() {
                TokenKind::Less => BinaryOp::Less,
                TokenKind::LessOrEqual => BinaryOp::LessOrEqual,
                TokenKind::Greater => BinaryOp::Greater,
                TokenKind::GreaterOrEqual => BinaryOp::GreaterOrEqual,
                _ => return Ok(lhs),
            };
            self.advance();
            let rhs = self.union()?;
            lhs = binary(op, lhs, rhs);
        }
    }

    fn union(&mut self) -> Result<Expr, SyntaxError> {
        let mut lhs = self.type_operation()?;
        while *self.peek() == TokenKind::Pipe {
            self.advance();
            let rhs = self.type_operation()?;
            lhs = binary(BinaryOp::Union, lhs, rhs);
        }
        Ok(lhs)
    }

    fn type_operation(&mut self) -> Result<Expr, SyntaxError> {
        let mut operand = self.arithmetic()?;
        loop {
            let op = if self.at_word("is") {
                TypeOp::Is
            } else if self.at_word("as") {
                TypeOp::As
            } else {
                return Ok(operand);
            };
            self.advance();
            let type_specifier = self.type_specifier()?;
            operand = Expr::TypeOperation {
                op,
                operand: Box::new(operand),
                type_specifier,
            };
        }
    }

    /// The additive and multiplicative levels, recognised only to be refused.
    fn arithmetic(&mut self) -> Result<Expr, SyntaxError> {
        let operand = self.unary()?;
        let arithmetic = matches!(
            self.peek(),
            TokenKind::Plus
                | TokenKind::Minus
                | TokenKind::Star
                | TokenKind::Slash
                | TokenKind::Ampersand
        ) || ARITHMETIC_WORDS.iter().any(|word| self.at_word(word));
        if arithmetic {
            return Err(self.error("arithmetic and string concatenation are not supported"));
        }
        Ok(operand)
    }

    /// A sign before a number literal; any other signed operand is arithmetic.
    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        let negative = match self.peek() {
            TokenKind::Minus => true,
            TokenKind::Plus => false,
            _ => return self.invocations(),
        };
        self.advance();
        let offset = self.offset();
        match self.invocations()? {
            Expr::Literal(Literal::Integer(value)) => {
                Ok(Expr::Literal(Literal::Integer(if negative {
                    -value
                } else {
                    value
                })))
            }
            Expr::Literal(Literal::Decimal(text)) => {
                Ok(Expr::Literal(Literal::Decimal(if negative {
                    format!("-{text}")
                } else {
                    text
                })))
            }
            _ => Err(SyntaxError::new(
                offset,
                "a sign is only supported before a number literal",
            )),
        }
    }

    /// A term followed by any number of `.name`, `.function(...)` and `[index]`.
    fn invocations(&mut self) -> Result<Expr, SyntaxError> {
        let mut expr = self.term()?;
        loop {
            match self.peek() {
                TokenKind::Dot => {
                    self.advance();
                    let name = self.identifier()?;
                    expr = if *self.peek() == TokenKind::LeftParen {
                        Expr::Call {
                            base: Some(Box::new(expr)),
                            function: self.function(&name)?,
                        }
                    } else {
                        Expr::Member {
                            base: Box::new(expr),
                            name,
                        }
                    };
                }
                TokenKind::LeftBracket => {
                    self.advance();
                    let index = self.expression()?;
                    self.expect(&TokenKind::RightBracket)?;
                    expr = Expr::Index {
                        base: Box::new(expr),
                        index: Box::new(index),
                    };
                }
                _ => return Ok(expr),
            }
        }
    }

    fn term(&mut self) -> Result<Expr, SyntaxError> {
        let offset = self.offset();
        match self.advance() {
            TokenKind::String(text) => Ok(Expr::Literal(Literal::String(text))),
            TokenKind::Number(text) => number_literal(&text, offset),
            TokenKind::LeftParen => {
                let expr = self.expression()?;
                self.expect(&TokenKind::RightParen)?;
                Ok(expr)
            }
            TokenKind::LeftBrace => {
                self.expect(&TokenKind::RightBrace)?;
                Ok(Expr::Empty)
            }
            TokenKind::Constant(name) => constant(&name, offset),
            TokenKind::Special(name) => match name.as_str() {
                "this" => Ok(Expr::This),
                other => Err(SyntaxError::new(
                    offset,
                    format!("`${other}` is not supported"),
                )),
            },
            TokenKind::Identifier(name) if name == "true" || name == "false" => {
                Ok(Expr::Literal(Literal::Boolean(name == "true")))
            }
            TokenKind::Identifier(name) | TokenKind::DelimitedIdentifier(name) => {
                if *self.peek() == TokenKind::LeftParen {
                    Ok(Expr::Call {
                        base: None,
                        function: self.function(&name)?,
                    })
                } else {
                    Ok(Expr::Identifier(name))
                }
            }
            other => Err(SyntaxError::new(
                offset,
                format!("unexpected {}", describe(&other)),
            )),
        }
    }

    /// A name after a dot: any identifier, keywords included (`.contains(...)`, `.is(...)`).
    fn identifier(&mut self) -> Result<String, SyntaxError> {
        match self.advance() {
            TokenKind::Identifier(name) | TokenKind::DelimitedIdentifier(name) => Ok(name),
            other => {
                self.position -= 1;
                Err(self.error(format!("expected a name, found {}", describe(&other))))
            }
        }
    }

    /// `Name` or `Namespace.Name`, resolved against the FHIR and system types.
    fn type_specifier(&mut self) -> Result<TypeSpecifier, SyntaxError> {
        let offset = self.offset();
        let first = self.identifier()?;
        let (qualifier, name) = if *self.peek() == TokenKind::Dot
            && matches!(
                self.tokens.get(self.position + 1).map(|t| &t.kind),
                Some(TokenKind::Identifier(_) | TokenKind::DelimitedIdentifier(_))
            )
            && (first == "FHIR" || first == "System")
        {
            self.advance();
            (Some(first), self.identifier()?)
        } else {
            (None, first)
        };
        TypeSpecifier::resolve(qualifier.as_deref(), &name)
            .map_err(|message| SyntaxError::new(offset, message))
    }

    /// The argument list of function `name`, the opening parenthesis next.
    fn function(&mut self, name: &str) -> Result<Function, SyntaxError> {
        let offset = self.offset();
        self.expect(&TokenKind::LeftParen)?;
        let function = match name {
            "ofType" | "as" | "is" => {
                let type_specifier = self.type_specifier()?;
                match name {
                    "ofType" => Function::OfType(type_specifier),
                    "as" => Function::As(type_specifier),
                    _ => Function::Is(type_specifier),
                }
            }
            _ => {
                let mut arguments = self.arguments()?;
                let arity = arguments.len();
                let mut one = || arguments.pop().map(Box::new);
                let function = match (name, arity) {
                    ("where", 1) => one().map(Function::Where),
                    ("select", 1) => one().map(Function::Select),
                    ("all", 1) => one().map(Function::All),
                    ("exists", 0) => Some(Function::Exists(None)),
                    ("exists", 1) => Some(Function::Exists(one())),
                    ("empty", 0) => Some(Function::Empty),
                    ("not", 0) => Some(Function::Not),
                    ("first", 0) => Some(Function::First),
                    ("last", 0) => Some(Function::Last),
                    ("tail", 0) => Some(Function::Tail),
                    ("skip", 1) => one().map(Function::Skip),
                    ("take", 1) => one().map(Function::Take),
                    ("single", 0) => Some(Function::Single),
                    ("count", 0) => Some(Function::Count),
                    ("distinct", 0) => Some(Function::Distinct),
                    ("resolve", 0) => Some(Function::Resolve),
                    ("extension", 1) => one().map(Function::Extension),
                    ("hasValue", 0) => Some(Function::HasValue),
                    _ => None,
                };
                return function.ok_or_else(|| {
                    SyntaxError::new(
                        offset,
                        format!("unknown function `{name}` with {arity} argument(s)"),
                    )
                });
            }
        };
        self.expect(&TokenKind::RightParen)?;
        Ok(function)
    }

    /// Comma-separated expressions up to and including the closing parenthesis.
    fn arguments(&mut self) -> Result<Vec<Expr>, SyntaxError> {
        let mut arguments = Vec::new();
        if *self.peek() == TokenKind::RightParen {
            self.advance();
            return Ok(arguments);
        }
        loop {
            arguments.push(self.expression()?);
            match self.advance() {
                TokenKind::Comma => {}
                TokenKind::RightParen => return Ok(arguments),
                other => {
                    self.position -= 1;
                    return Err(
                        self.error(format!("expected `,` or `)`, found {}", describe(&other)))
                    );
                }
            }
        }
    }
}

fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    Expr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    }
}

fn number_literal(text: &str, offset: usize) -> Result<Expr, SyntaxError> {
    if text.contains('.') {
        return Ok(Expr::Literal(Literal::Decimal(text.to_owned())));
    }
    text.parse()
        .map(|value| Expr::Literal(Literal::Integer(value)))
        .map_err(|_| SyntaxError::new(offset, format!("integer `{text}` is too large")))
}

/// `%resource` and friends, and the constants FHIR defines for code systems.
fn constant(name: &str, offset: usize) -> Result<Expr, SyntaxError> {
    let string = |text: &str| Ok(Expr::Literal(Literal::String(text.to_owned())));
    match name {
        "resource" => Ok(Expr::Variable(Variable::Resource)),
        "rootResource" => Ok(Expr::Variable(Variable::RootResource)),
        "context" => Ok(Expr::Variable(Variable::Context)),
        "ucum" => string("http://unitsofmeasure.org"),
        "sct" => string("http://snomed.info/sct"),
        "loinc" => string("http://loinc.org"),
        _ => Err(SyntaxError::new(
            offset,
            format!("unknown environment variable `%{name}`"),
        )),
    }
}

fn describe(kind: &TokenKind) -> String {
    match kind {
        TokenKind::Identifier(name) | TokenKind::DelimitedIdentifier(name) => format!("`{name}`"),
        TokenKind::String(text) => format!("string '{text}'"),
        TokenKind::Number(text) => format!("number {text}"),
        TokenKind::Constant(name) => format!("`%{name}`"),
        TokenKind::Special(name) => format!("`${name}`"),
        TokenKind::End => "the end of the expression".to_owned(),
        symbol => format!("`{}`", symbol_text(symbol)),
    }
}

fn symbol_text(kind: &TokenKind) -> &'static str {
    match kind {
        TokenKind::Dot => ".",
        TokenKind::Comma => ",",
        TokenKind::LeftParen => "(",
        TokenKind::RightParen => ")",
        TokenKind::LeftBracket => "[",
        TokenKind::RightBracket => "]",
        TokenKind::LeftBrace => "{",
        TokenKind::RightBrace => "}",
        TokenKind::Pipe => "|",
        TokenKind::Equal => "=",
        TokenKind::NotEqual => "!=",
        TokenKind::Equivalent => "~",
        TokenKind::NotEquivalent => "!~",
        TokenKind::Less => "<",
        TokenKind::LessOrEqual => "<=",
        TokenKind::Greater => ">",
        TokenKind::GreaterOrEqual => ">=",
        TokenKind::Plus => "+",
        TokenKind::Minus => "-",
        TokenKind::Star => "*",
        TokenKind::Slash => "/",
        TokenKind::Ampersand => "&",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    fn parse_text(source: &str) -> Result<Expr, SyntaxError> {
        parse(&tokenize(source)?)
    }

    fn ident(name: &str) -> Box<Expr> {
        Box::new(Expr::Identifier(name.to_owned()))
    }

    fn member(base: Box<Expr>, name: &str) -> Box<Expr> {
        Box::new(Expr::Member {
            base,
            name: name.to_owned(),
        })
    }

    #[test]
    fn paths_are_left_nested_members() {
        assert_eq!(
            parse_text("Patient.name.given").unwrap(),
            *member(member(ident("Patient"), "name"), "given")
        );
    }

    #[test]
    fn type_operators_bind_tighter_than_union() {
        let expr =
            parse_text("Observation.value as Quantity | Observation.value as Range").unwrap();
        let Expr::Binary { op, lhs, rhs } = expr else {
            panic!("not a union: {expr:?}");
        };
        assert_eq!(op, BinaryOp::Union);
        assert!(matches!(
            *lhs,
            Expr::TypeOperation {
                op: TypeOp::As,
                type_specifier: TypeSpecifier::Fhir("Quantity"),
                ..
            }
        ));
        assert!(matches!(
            *rhs,
            Expr::TypeOperation {
                op: TypeOp::As,
                type_specifier: TypeSpecifier::Fhir("Range"),
                ..
            }
        ));
    }

    #[test]
    fn functions_get_checked_arguments() {
        let expr = parse_text("Encounter.subject.where(resolve() is Patient)").unwrap();
        let Expr::Call {
            function: Function::Where(criteria),
            ..
        } = expr
        else {
            panic!("not a where call");
        };
        assert_eq!(
            *criteria,
            Expr::TypeOperation {
                op: TypeOp::Is,
                operand: Box::new(Expr::Call {
                    base: None,
                    function: Function::Resolve
                }),
                type_specifier: TypeSpecifier::Fhir("Patient"),
            }
        );
        assert!(parse_text("a.where()").is_err());
        assert!(parse_text("a.first(1)").is_err());
        assert!(parse_text("a.frobnicate()").is_err());
    }

    #[test]
    fn precedence_of_logic_and_equality() {
        let expr = parse_text("a.exists() and a != false or b = 'x'").unwrap();
        let Expr::Binary {
            op: BinaryOp::Or,
            lhs,
            ..
        } = expr
        else {
            panic!("`or` is not at the top");
        };
        assert!(matches!(
            *lhs,
            Expr::Binary {
                op: BinaryOp::And,
                ..
            }
        ));
    }

    #[test]
    fn qualified_and_system_type_names() {
        assert!(matches!(
            parse_text("value.as(FHIR.Quantity)").unwrap(),
            Expr::Call {
                function: Function::As(TypeSpecifier::Fhir("Quantity")),
                ..
            }
        ));
        assert!(matches!(
            parse_text("value.as(DateTime)").unwrap(),
            Expr::Call {
                function: Function::As(TypeSpecifier::System(_)),
                ..
            }
        ));
        assert!(parse_text("value is NoSuchType").is_err());
        assert!(parse_text("value is Observation.component").is_err());
    }

    #[test]
    fn literals_indexers_and_constants() {
        assert_eq!(
            parse_text("entry[0]").unwrap(),
            Expr::Index {
                base: ident("entry"),
                index: Box::new(Expr::Literal(Literal::Integer(0))),
            }
        );
        assert_eq!(
            parse_text("-1.5").unwrap(),
            Expr::Literal(Literal::Decimal("-1.5".to_owned()))
        );
        assert_eq!(parse_text("{}").unwrap(), Expr::Empty);
        assert_eq!(
            parse_text("%resource").unwrap(),
            Expr::Variable(Variable::Resource)
        );
        assert!(parse_text("%nope").is_err());
        assert!(parse_text("$index").is_err());
    }

    #[test]
    fn unsupported_and_malformed_input_is_refused_with_a_position() {
        let error = parse_text("a + b").unwrap_err();
        assert_eq!(error.offset, 2);
        assert!(error.message.contains("not supported"));
        assert!(parse_text("a div 2").is_err());
        assert!(parse_text("(a").is_err());
        assert!(parse_text("a b").is_err());
        assert!(parse_text("a.").is_err());
        assert!(parse_text("").is_err());
    }
}
