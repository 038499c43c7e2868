//! The syntax tree a FHIRPath expression compiles to.
//!
//! Everything that can be decided once is decided by the parser: functions are variants with
//! their arguments already checked (`where` has exactly one criterion), type names are resolved
//! against the FHIR element model, and constants such as `%ucum` are literals. Evaluation then
//! walks this tree without looking anything up by name except element names.

use crate::types::TypeSpecifier;

/// A FHIRPath expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// `{}`: the empty collection.
    Empty,
    Literal(Literal),
    /// `$this`: the item a function argument is evaluated for (the input at top level).
    This,
    /// `%resource`, `%rootResource` or `%context`.
    Variable(Variable),
    /// A name at the start of a path: the input itself when it names the input's type
    /// (`Patient` in `Patient.name`), otherwise the child elements of that name.
    Identifier(String),
    /// `base.name`: the child elements called `name` of every item of `base`.
    Member {
        base: Box<Expr>,
        name: String,
    },
    /// A function call, on `base` or (with no base) on the input.
    Call {
        base: Option<Box<Expr>>,
        function: Function,
    },
    /// `base[index]`.
    Index {
        base: Box<Expr>,
        index: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `operand is Type` and `operand as Type`.
    TypeOperation {
        op: TypeOp,
        operand: Box<Expr>,
        type_specifier: TypeSpecifier,
    },
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Boolean(bool),
    String(String),
    Integer(i64),
    /// Kept as written so no precision is lost.
    Decimal(String),
}

/// The environment variables an expression can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variable {
    /// `%resource`: the resource the expression is evaluated on.
    Resource,
    /// `%rootResource`: the same here (the evaluator is given one resource at a time).
    RootResource,
    /// `%context`: the input the evaluation started from.
    Context,
}

/// The functions this evaluator knows, with their parsed arguments.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Function {
    /// `where(criteria)`: the items for which `criteria` is true.
    Where(Box<Expr>),
    /// `select(projection)`: the results of `projection` for every item, flattened.
    Select(Box<Expr>),
    /// `all(criteria)`: whether `criteria` is true for every item.
    All(Box<Expr>),
    /// `exists()` or `exists(criteria)`.
    Exists(Option<Box<Expr>>),
    /// `empty()`.
    Empty,
    /// `not()`.
    Not,
    /// `first()`.
    First,
    /// `last()`.
    Last,
    /// `tail()`: all but the first.
    Tail,
    /// `skip(n)`.
    Skip(Box<Expr>),
    /// `take(n)`.
    Take(Box<Expr>),
    /// `single()`: the only item; an error if there are several.
    Single,
    /// `count()`.
    Count,
    /// `distinct()`.
    Distinct,
    /// `ofType(Type)`: the items of that type.
    OfType(TypeSpecifier),
    /// `as(Type)`: the same as `ofType` (R4 search parameters use it on collections).
    As(TypeSpecifier),
    /// `is(Type)`: whether the single input item is of that type.
    Is(TypeSpecifier),
    /// `resolve()`: the resources references point to, as far as the reference text tells.
    Resolve,
    /// `extension(url)`: the extensions with that url.
    Extension(Box<Expr>),
    /// `hasValue()`: whether the input is a single primitive with a value.
    HasValue,
}

/// Binary operators, loosest-binding last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    /// `|`: the union of both collections, without duplicates.
    Union,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
    NotEqual,
    Equivalent,
    NotEquivalent,
    /// `a in b`: whether the single item `a` is in collection `b`.
    In,
    /// `a contains b`: whether collection `a` contains the single item `b`.
    Contains,
    And,
    Or,
    Xor,
    Implies,
}

/// `is` or `as` written as an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeOp {
    Is,
    As,
}
