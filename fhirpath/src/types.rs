//! FHIR types of the nodes an evaluation walks through, from the R4 element model.
//!
//! Every node carries the type its element declares (from `fhir_model::ElementModel`, i.e. the
//! StructureDefinitions), never a guess from the JSON shape: `effectiveDateTime` is a `dateTime`
//! because `Observation.effective[x]` says so, and the downstream indexer picks its index by
//! that name. This module also navigates to child elements (resolving choice elements such as
//! `value` to `valueQuantity`, ...) and decides what `is`, `as` and `ofType` match.

use std::ptr;

use fhir_model::{ElementDefinition, ElementModel, TypeDefinition, TypeKind};
use serde_json::Value;

use crate::value::Val;

/// The process-wide element model.
pub(crate) fn model() -> &'static ElementModel {
    ElementModel::global()
}

/// The FHIR type of a node: its type code, and the definition that describes its children.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeType {
    /// The FHIR type name (`Period`, `dateTime`, `Patient`, `BackboneElement`), if known.
    pub code: Option<&'static str>,
    /// The definition of its children: the type's own, or a backbone element's.
    pub definition: Option<&'static TypeDefinition>,
    /// For a `code`, the code system its element's binding implies.
    pub code_system: Option<&'static str>,
}

impl NodeType {
    /// A node the element model does not describe (an element it does not know).
    pub const UNKNOWN: NodeType = NodeType {
        code: None,
        definition: None,
        code_system: None,
    };

    /// The type of a resource, from its `resourceType`.
    pub fn of_resource(value: &Value) -> NodeType {
        value
            .get("resourceType")
            .and_then(Value::as_str)
            .and_then(|name| model().type_definition(name))
            .filter(|definition| definition.kind() == TypeKind::Resource)
            .map_or(NodeType::UNKNOWN, |definition| NodeType {
                code: Some(definition.name()),
                definition: Some(definition),
                code_system: None,
            })
    }

    /// The type of a value of `element` under its JSON name for `code`.
    fn of_element(
        element: &'static ElementDefinition,
        code: &'static str,
        value: &Value,
    ) -> NodeType {
        if matches!(code, "Resource" | "DomainResource") {
            // Contained resources, Bundle entries, Parameters: the resource says its type.
            return NodeType::of_resource(value);
        }
        NodeType {
            code: Some(code),
            definition: model().definition_of(element, code),
            code_system: element.code_system(),
        }
    }

    /// The type called `name`, as a caller hands it back to `evaluate_on` (`None` for names of
    /// backbone structures, which only their position in a resource identifies).
    pub fn named(name: &str) -> Option<NodeType> {
        let definition = model().type_definition(name)?;
        if definition.kind() == TypeKind::Backbone || definition.is_abstract() {
            return None;
        }
        Some(NodeType {
            code: Some(definition.name()),
            definition: Some(definition),
            code_system: None,
        })
    }
}

/// A part of the input JSON and its type. Arrays are never nodes: their items are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node<'a> {
    pub value: &'a Value,
    pub ty: NodeType,
}

impl<'a> Node<'a> {
    /// A resource at the root of an evaluation (or a contained one).
    pub fn resource(value: &'a Value) -> Node<'a> {
        Node {
            value,
            ty: NodeType::of_resource(value),
        }
    }

    /// Appends the children called `name` (an element name; for a choice element, the name
    /// without `[x]`, which finds whichever typed variant is present).
    pub fn push_children(&self, name: &str, out: &mut Vec<Val<'a>>) {
        let Some(object) = self.value.as_object() else {
            return;
        };
        if let Some(definition) = self.ty.definition {
            if let Some(element) = definition.element(name) {
                if element.is_choice() {
                    for (key, value) in object {
                        if key.len() > name.len()
                            && key.starts_with(name)
                            && let Some(child) = definition.child(key)
                            && ptr::eq(child.element, element)
                        {
                            push_values(value, element, child.type_code, out);
                        }
                    }
                } else if let (Some(value), Some(code)) =
                    (object.get(name), element.types().first())
                {
                    push_values(value, element, code, out);
                }
                return;
            }
            // A choice element by its JSON name (`valueQuantity`), which FHIRPath tools accept.
            if let Some(child) = definition.child(name) {
                if let Some(value) = object.get(name) {
                    push_values(value, child.element, child.type_code, out);
                }
                return;
            }
        }
        // Not in the model: still reachable, but its type is unknown (not guessed from JSON).
        if let Some(value) = object.get(name) {
            for item in items_of(value) {
                out.push(Val::Node(Node {
                    value: item,
                    ty: NodeType::UNKNOWN,
                }));
            }
        }
    }

    /// The type of `target`, a node somewhere inside this one, found by identity.
    pub fn locate(&self, target: &Value) -> Option<NodeType> {
        if ptr::eq(self.value, target) {
            return Some(self.ty);
        }
        let object = self.value.as_object()?;
        for (key, value) in object {
            let child = self.ty.definition.and_then(|d| d.child(key));
            for item in items_of(value) {
                let ty = match child {
                    Some(child) => NodeType::of_element(child.element, child.type_code, item),
                    None => NodeType::UNKNOWN,
                };
                if let Some(found) = (Node { value: item, ty }).locate(target) {
                    return Some(found);
                }
            }
        }
        None
    }
}

/// The items of a JSON value: an array's elements (nulls skipped), or the value itself.
fn items_of(value: &Value) -> impl Iterator<Item = &Value> {
    let items: &[Value] = match value {
        Value::Array(items) => items,
        other => std::slice::from_ref(other),
    };
    items.iter().filter(|item| !item.is_null())
}

fn push_values<'a>(
    value: &'a Value,
    element: &'static ElementDefinition,
    code: &'static str,
    out: &mut Vec<Val<'a>>,
) {
    for item in items_of(value) {
        out.push(Val::Node(Node {
            value: item,
            ty: NodeType::of_element(element, code, item),
        }));
    }
}

/// A type named in `is`, `as` or `ofType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TypeSpecifier {
    /// A FHIR type (`Quantity`, `dateTime`, `Patient`, `FHIR.Period`).
    Fhir(&'static str),
    /// A FHIRPath system type (`DateTime`, `System.String`).
    System(SystemType),
}

/// The FHIRPath system types a FHIR primitive maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SystemType {
    Boolean,
    String,
    Integer,
    Decimal,
    Date,
    DateTime,
    Time,
}

impl SystemType {
    fn named(name: &str) -> Option<SystemType> {
        Some(match name {
            "Boolean" => SystemType::Boolean,
            "String" => SystemType::String,
            "Integer" => SystemType::Integer,
            "Decimal" => SystemType::Decimal,
            "Date" => SystemType::Date,
            "DateTime" => SystemType::DateTime,
            "Time" => SystemType::Time,
            _ => return None,
        })
    }

    /// The system type a FHIR primitive type stands for (`instant` is a `DateTime`).
    pub fn of_fhir(code: &str) -> Option<SystemType> {
        Some(match code {
            "boolean" => SystemType::Boolean,
            "string" | "code" | "id" | "markdown" | "uri" | "url" | "canonical" | "oid"
            | "uuid" | "base64Binary" | "xhtml" => SystemType::String,
            "integer" | "positiveInt" | "unsignedInt" => SystemType::Integer,
            "decimal" => SystemType::Decimal,
            "date" => SystemType::Date,
            "dateTime" | "instant" => SystemType::DateTime,
            "time" => SystemType::Time,
            _ => return None,
        })
    }
}

impl TypeSpecifier {
    /// Resolves a possibly qualified type name (`Quantity`, `FHIR.Quantity`, `System.String`,
    /// and `DateTime`, which is no FHIR type but the system type R4 definitions mean by it).
    pub fn resolve(qualifier: Option<&str>, name: &str) -> Result<TypeSpecifier, String> {
        let fhir = || {
            model()
                .type_definition(name)
                .filter(|definition| definition.kind() != TypeKind::Backbone)
                .map(|definition| TypeSpecifier::Fhir(definition.name()))
        };
        let system = || SystemType::named(name).map(TypeSpecifier::System);
        let resolved = match qualifier {
            Some("FHIR") => fhir(),
            Some("System") => system(),
            Some(other) => return Err(format!("unknown type namespace `{other}`")),
            None => fhir().or_else(system),
        };
        resolved.ok_or_else(|| format!("unknown type `{name}`"))
    }

    /// Whether `item` is of this type. FHIR types match exactly, or through an abstract
    /// ancestor (`Resource`, `DomainResource`); a concrete base does not make a match, so
    /// `canonical` is no `uri` and `Age` no `Quantity`, as in the R4 reference engine.
    pub fn matches(&self, item: &Val<'_>) -> bool {
        match (self, item) {
            (TypeSpecifier::Fhir(name), Val::Node(node)) => {
                node.ty.code.is_some_and(|code| is_fhir_type(code, name))
            }
            (TypeSpecifier::Fhir(name), Val::Resolved { resource_type, .. }) => {
                is_fhir_type(resource_type, name)
            }
            (TypeSpecifier::Fhir(_), _) => false,
            (TypeSpecifier::System(system), Val::Node(node)) => node
                .ty
                .code
                .and_then(SystemType::of_fhir)
                .is_some_and(|of_node| of_node == *system),
            (TypeSpecifier::System(system), Val::Boolean(_)) => *system == SystemType::Boolean,
            (TypeSpecifier::System(system), Val::String(_)) => *system == SystemType::String,
            (TypeSpecifier::System(system), Val::Integer(_)) => *system == SystemType::Integer,
            (TypeSpecifier::System(system), Val::Decimal(_)) => *system == SystemType::Decimal,
            (TypeSpecifier::System(_), Val::Resolved { .. }) => false,
        }
    }
}

/// Whether a node of type `code` is a `name`: the same type, or an abstract ancestor of it.
pub(crate) fn is_fhir_type(code: &str, name: &str) -> bool {
    code == name
        || (model()
            .type_definition(name)
            .is_some_and(TypeDefinition::is_abstract)
            && model().is_subtype_of(code, name))
}
