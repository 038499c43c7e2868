//! Composite parameters: rows of several components that must come from the same element.
//!
//! The composite's expression gives the elements (`Observation | Observation.component` for
//! `combo-code-value-quantity`); each element is a group, numbered in the order found (0, 1,
//! ...). Each component's expression is evaluated relative to the element, and its values become
//! rows in the component's type table with `param` = the composite's code and
//! `composite = { component, group }`. An element that lacks a value for some component (an
//! Observation without a value, for `code-value-quantity`) can never match, so its rows are not
//! kept; its group number is not reused.

use fhirpath::Item;

use super::{Context, Target, emit};
use crate::ResourceIndex;
use crate::index::CompositePart;
use crate::registry::{Branch, ParamType, SearchParam, branch::element_path};

pub(super) fn extract(
    ctx: &Context<'_>,
    out: &mut ResourceIndex,
    param: &SearchParam,
    branch: &Branch,
    next_group: &mut i32,
) {
    let elements = match branch.expression.evaluate(ctx.root) {
        Ok(elements) => elements,
        Err(error) => {
            out.problems.push(format!("{}: {error}", param.code));
            return;
        }
    };
    for element in &elements {
        let group = *next_group;
        *next_group = next_group.saturating_add(1);
        let mark = Mark::of(out);
        if !components(ctx, out, param, branch, element, group) {
            mark.roll_back(out);
        }
    }
}

/// Emits every component of one element; false when one has no value (or failed).
fn components(
    ctx: &Context<'_>,
    out: &mut ResourceIndex,
    param: &SearchParam,
    branch: &Branch,
    element: &Item<'_>,
    group: i32,
) -> bool {
    for (index, component) in param.components.iter().enumerate() {
        let Some(expression) = &component.compiled else {
            return false;
        };
        let values = match expression.evaluate_on(ctx.root, element) {
            Ok(values) => values,
            Err(error) => {
                out.problems.push(format!(
                    "{} (component {}): {error}",
                    param.code, component.code
                ));
                return false;
            }
        };
        let source_path = if component.kind == ParamType::Reference {
            format!(
                "{}.{}",
                branch.source_path,
                element_path(&component.expression)
            )
        } else {
            String::new()
        };
        let target = Target {
            code: &param.code,
            kind: component.kind,
            composite: Some(CompositePart {
                component: i16::try_from(index).unwrap_or(i16::MAX),
                group,
            }),
            source_path: &source_path,
            targets: &component.target,
        };
        let before = Mark::of(out);
        for value in &values {
            emit(ctx, out, &target, value);
        }
        if Mark::of(out) == before {
            return false;
        }
    }
    true
}

/// The lengths of the tables composite rows go to.
#[derive(PartialEq, Eq)]
struct Mark([usize; 7]);

impl Mark {
    fn of(out: &ResourceIndex) -> Self {
        Mark([
            out.strings.len(),
            out.tokens.len(),
            out.dates.len(),
            out.numbers.len(),
            out.quantities.len(),
            out.uris.len(),
            out.links.len(),
        ])
    }

    fn roll_back(&self, out: &mut ResourceIndex) {
        let [strings, tokens, dates, numbers, quantities, uris, links] = self.0;
        out.strings.truncate(strings);
        out.tokens.truncate(tokens);
        out.dates.truncate(dates);
        out.numbers.truncate(numbers);
        out.quantities.truncate(quantities);
        out.uris.truncate(uris);
        out.links.truncate(links);
    }
}
