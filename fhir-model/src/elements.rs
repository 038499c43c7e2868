//! The FHIR R4 element model: which elements every resource and data type has, and their types.
//!
//! Code that walks resource JSON needs to know what it is looking at: the FHIRPath evaluator
//! types every node it returns (`Observation.effectiveDateTime` is a `dateTime`, a search index
//! is chosen by that type), and `_summary` needs each element's `isSummary` flag. JSON alone
//! cannot tell a `code` from a `string`, or which `valueXxx` property belongs to `value[x]`, so
//! this model comes from the official StructureDefinitions, condensed by
//! `schemas/tools/import_fhir_definitions.py` into `schemas/fhir/elements.json`, embedded in the
//! binary and parsed once per process on first use.
//!
//! Types are looked up by name: a primitive (`dateTime`), a complex data type (`Period`), a
//! resource (`Observation`), or the path of a backbone element (`Observation.component`), which
//! is how nested structures are named. Choice elements (`effective[x]`) are found by their
//! name without the suffix (`effective`) or by any of their JSON names (`effectiveDateTime`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;
use thiserror::Error;

const ELEMENTS_JSON: &str = include_str!("../../schemas/fhir/elements.json");

static MODEL: LazyLock<ElementModel> = LazyLock::new(|| {
    ElementModel::from_json(ELEMENTS_JSON)
        .unwrap_or_else(|error| panic!("the embedded FHIR element model is invalid: {error}"))
});

/// What kind of structure a [`TypeDefinition`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeKind {
    /// `string`, `dateTime`, `code`, ...: a single value in JSON.
    PrimitiveType,
    /// `Period`, `CodeableConcept`, `Quantity`, ...
    ComplexType,
    /// A resource, including the abstract `Resource` and `DomainResource`.
    Resource,
    /// An element defined inline in a resource or data type (`Observation.component`); its
    /// type code is `BackboneElement` or `Element`.
    Backbone,
}

/// The maximum number of times an element may repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaxCardinality {
    /// At most this many (`"1"`; `"0"` for an element a type has ruled out).
    Count(u32),
    /// `"*"`: any number, an array in JSON.
    Unbounded,
}

/// One element of a type, as its StructureDefinition snapshot defines it.
#[derive(Debug)]
pub struct ElementDefinition {
    name: String,
    path: String,
    types: Vec<String>,
    choice: bool,
    min: u32,
    max: MaxCardinality,
    summary: bool,
    children: Option<String>,
    system: Option<String>,
}

impl ElementDefinition {
    /// The element name without any `[x]` suffix (`effective` for `effective[x]`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The element path as the StructureDefinition writes it (`Observation.effective[x]`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The allowed type codes: one for most elements, every alternative for a choice element.
    pub fn types(&self) -> &[String] {
        &self.types
    }

    /// Whether this is a choice element (`value[x]`), whose JSON name carries the type.
    pub fn is_choice(&self) -> bool {
        self.choice
    }

    /// The minimum cardinality.
    pub fn min(&self) -> u32 {
        self.min
    }

    /// The maximum cardinality.
    pub fn max(&self) -> MaxCardinality {
        self.max
    }

    /// Whether the element can repeat (is a JSON array).
    pub fn is_many(&self) -> bool {
        !matches!(self.max, MaxCardinality::Count(0 | 1))
    }

    /// Whether the element is part of the summary view (`isSummary`, used by `_summary=true`).
    pub fn is_summary(&self) -> bool {
        self.summary
    }

    /// For an element of type `code`, the code system of the value set it is bound to, when
    /// that value set draws every code from one system (`Patient.gender`:
    /// `http://hl7.org/fhir/administrative-gender`): the system its codes implicitly belong to.
    pub fn code_system(&self) -> Option<&str> {
        self.system.as_deref()
    }

    /// For an element defined inline (a backbone element, or a content reference such as
    /// `Questionnaire.item.item`), the name of the [`TypeDefinition`] that holds its children.
    pub fn backbone(&self) -> Option<&str> {
        self.children.as_deref()
    }

    /// The JSON property name of this element when it holds a value of `type_code`
    /// (`valueQuantity` for `value[x]` and `Quantity`; the plain name for other elements).
    pub fn json_name(&self, type_code: &str) -> Cow<'_, str> {
        if self.choice {
            Cow::Owned(format!("{}{}", self.name, capitalise(type_code)))
        } else {
            Cow::Borrowed(&self.name)
        }
    }
}

/// An element found by its JSON property name, with the type that name implies.
#[derive(Debug, Clone, Copy)]
pub struct Child<'m> {
    /// The element definition (`effective[x]` for `effectiveDateTime`).
    pub element: &'m ElementDefinition,
    /// The type of the value under that JSON name (`dateTime`).
    pub type_code: &'m str,
}

/// A primitive type, complex data type, resource or backbone element and its elements.
#[derive(Debug)]
pub struct TypeDefinition {
    name: String,
    kind: TypeKind,
    base: Option<String>,
    is_abstract: bool,
    elements: Vec<ElementDefinition>,
    /// Element name without `[x]` -> index into `elements`.
    by_name: HashMap<String, usize>,
    /// Every JSON property name -> (index into `elements`, index into its types).
    by_json_name: HashMap<String, (usize, usize)>,
}

impl TypeDefinition {
    /// The type name, or the element path for a backbone element (`Observation.component`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What kind of type this is.
    pub fn kind(&self) -> TypeKind {
        self.kind
    }

    /// The type this one specialises (`DomainResource` for `Observation`, `Quantity` for `Age`,
    /// `BackboneElement` for a backbone element); `None` for `Element` and `Resource`.
    pub fn base(&self) -> Option<&str> {
        self.base.as_deref()
    }

    /// Whether the type is abstract (`Resource`, `DomainResource`, `Element`, `BackboneElement`).
    pub fn is_abstract(&self) -> bool {
        self.is_abstract
    }

    /// The elements in definition order (inherited ones such as `id` and `extension` included).
    /// Primitive types have none: FHIRPath and search see their value.
    pub fn elements(&self) -> &[ElementDefinition] {
        &self.elements
    }

    /// The element called `name`, with or without the `[x]` of a choice element
    /// (`effective` and `effective[x]` both find `Observation.effective[x]`).
    pub fn element(&self, name: &str) -> Option<&ElementDefinition> {
        let name = name.strip_suffix("[x]").unwrap_or(name);
        self.by_name.get(name).map(|&index| &self.elements[index])
    }

    /// The element a JSON property belongs to, and the type its name implies
    /// (`effectiveDateTime` -> `effective[x]`, `dateTime`; `status` -> `status`, `code`).
    /// The bare name of a choice element (`effective`) is not a JSON property: `None`.
    pub fn child(&self, json_name: &str) -> Option<Child<'_>> {
        let &(element, type_index) = self.by_json_name.get(json_name)?;
        let element = &self.elements[element];
        Some(Child {
            element,
            type_code: &element.types[type_index],
        })
    }
}

/// The element model of every R4 resource and data type.
#[derive(Debug)]
pub struct ElementModel {
    fhir_version: String,
    types: HashMap<String, TypeDefinition>,
}

/// The element model text is not what `import_fhir_definitions.py` writes.
#[derive(Debug, Error)]
pub enum ElementModelError {
    /// Not JSON, or not shaped like the model.
    #[error("not a valid element model document: {0}")]
    Json(#[from] serde_json::Error),
    /// A type whose `kind` is none of the known ones.
    #[error("type {type_name}: unknown kind '{kind}'")]
    UnknownKind { type_name: String, kind: String },
    /// A `max` that is neither a number nor `*`.
    #[error("element {path}: invalid max cardinality '{max}'")]
    InvalidMax { path: String, max: String },
    /// An element without any type code.
    #[error("element {path}: no type")]
    NoType { path: String },
}

impl ElementModel {
    /// The model embedded from `schemas/fhir/elements.json`, parsed on first use.
    pub fn global() -> &'static ElementModel {
        &MODEL
    }

    /// Parses a model in the format of `schemas/fhir/elements.json`.
    pub fn from_json(text: &str) -> Result<Self, ElementModelError> {
        let raw: RawModel = serde_json::from_str(text)?;
        let mut types = HashMap::with_capacity(raw.types.len());
        for (name, raw_type) in raw.types {
            let definition = TypeDefinition::from_raw(&name, raw_type)?;
            types.insert(name, definition);
        }
        Ok(ElementModel {
            fhir_version: raw.fhir_version,
            types,
        })
    }

    /// The FHIR version the model describes (`4.0.1`).
    pub fn fhir_version(&self) -> &str {
        &self.fhir_version
    }

    /// The definition of a type (`Period`), resource (`Patient`) or backbone element
    /// (`Observation.component`).
    pub fn type_definition(&self, name: &str) -> Option<&TypeDefinition> {
        self.types.get(name)
    }

    /// Every type, resource and backbone element, in no particular order.
    pub fn types(&self) -> impl Iterator<Item = &TypeDefinition> {
        self.types.values()
    }

    /// The element `name` (with or without `[x]`) of the type or backbone element `type_name`.
    pub fn element(&self, type_name: &str, name: &str) -> Option<&ElementDefinition> {
        self.type_definition(type_name)?.element(name)
    }

    /// The type codes of an element: `element_types("Observation", "effective")` is
    /// `["dateTime", "Period", "Timing", "instant"]`.
    pub fn element_types(&self, type_name: &str, name: &str) -> Option<&[String]> {
        self.element(type_name, name).map(ElementDefinition::types)
    }

    /// The element of `type_name` a JSON property belongs to, with the type its name implies
    /// (`child("Observation", "effectiveDateTime")` is `effective[x]` as a `dateTime`).
    pub fn child(&self, type_name: &str, json_name: &str) -> Option<Child<'_>> {
        self.type_definition(type_name)?.child(json_name)
    }

    /// The definition describing the children of a value of `element` with type `type_code`:
    /// the backbone element for inline structures, otherwise the type itself (`None` for types
    /// the model does not describe).
    pub fn definition_of(
        &self,
        element: &ElementDefinition,
        type_code: &str,
    ) -> Option<&TypeDefinition> {
        match element.backbone() {
            Some(backbone) => self.type_definition(backbone),
            None => self.type_definition(type_code),
        }
    }

    /// Whether `name` is a concrete resource type (not `Resource` or `DomainResource`).
    pub fn is_resource_type(&self, name: &str) -> bool {
        self.type_definition(name)
            .is_some_and(|t| t.kind == TypeKind::Resource && !t.is_abstract)
    }

    /// Whether `type_name` is `ancestor` or specialises it, following `base` links
    /// (`Patient` is a `DomainResource` and a `Resource`; `Age` is a `Quantity`).
    pub fn is_subtype_of(&self, type_name: &str, ancestor: &str) -> bool {
        let mut current = Some(type_name);
        // The chain is at most a handful long; the bound only guards against a cyclic file.
        for _ in 0..16 {
            match current {
                Some(name) if name == ancestor => return true,
                Some(name) => current = self.type_definition(name).and_then(TypeDefinition::base),
                None => return false,
            }
        }
        false
    }
}

impl TypeDefinition {
    fn from_raw(name: &str, raw: RawType) -> Result<Self, ElementModelError> {
        let kind = match raw.kind.as_str() {
            "primitive-type" => TypeKind::PrimitiveType,
            "complex-type" => TypeKind::ComplexType,
            "resource" => TypeKind::Resource,
            "backbone" => TypeKind::Backbone,
            _ => {
                return Err(ElementModelError::UnknownKind {
                    type_name: name.to_owned(),
                    kind: raw.kind,
                });
            }
        };
        let mut elements = Vec::with_capacity(raw.elements.len());
        let mut by_name = HashMap::with_capacity(raw.elements.len());
        let mut by_json_name = HashMap::with_capacity(raw.elements.len());
        for (index, raw_element) in raw.elements.into_iter().enumerate() {
            let element = ElementDefinition::from_raw(name, raw_element)?;
            for (type_index, type_code) in element.types.iter().enumerate() {
                by_json_name.insert(
                    element.json_name(type_code).into_owned(),
                    (index, type_index),
                );
            }
            by_name.insert(element.name.clone(), index);
            elements.push(element);
        }
        Ok(TypeDefinition {
            name: name.to_owned(),
            kind,
            base: raw.base,
            is_abstract: raw.is_abstract,
            elements,
            by_name,
            by_json_name,
        })
    }
}

impl ElementDefinition {
    fn from_raw(owner: &str, raw: RawElement) -> Result<Self, ElementModelError> {
        let path = format!("{owner}.{}", raw.name);
        if raw.types.is_empty() {
            return Err(ElementModelError::NoType { path });
        }
        let max = match raw.max.as_deref() {
            None => MaxCardinality::Count(1),
            Some("*") => MaxCardinality::Unbounded,
            Some(text) => text.parse().map(MaxCardinality::Count).map_err(|_| {
                ElementModelError::InvalidMax {
                    path: path.clone(),
                    max: text.to_owned(),
                }
            })?,
        };
        let (name, choice) = match raw.name.strip_suffix("[x]") {
            Some(stem) => (stem.to_owned(), true),
            None => (raw.name, false),
        };
        Ok(ElementDefinition {
            name,
            path,
            types: raw.types,
            choice,
            min: raw.min,
            max,
            summary: raw.summary,
            children: raw.children,
            system: raw.system,
        })
    }
}

/// `dateTime` -> `DateTime`, as choice element names spell their types.
fn capitalise(type_code: &str) -> Cow<'_, str> {
    let mut chars = type_code.chars();
    match chars.next() {
        Some(first) if first.is_ascii_lowercase() => {
            Cow::Owned(first.to_ascii_uppercase().to_string() + chars.as_str())
        }
        _ => Cow::Borrowed(type_code),
    }
}

#[derive(Deserialize)]
struct RawModel {
    #[serde(rename = "fhirVersion")]
    fhir_version: String,
    types: HashMap<String, RawType>,
}

#[derive(Deserialize)]
struct RawType {
    kind: String,
    base: Option<String>,
    #[serde(rename = "abstract", default)]
    is_abstract: bool,
    #[serde(default)]
    elements: Vec<RawElement>,
}

#[derive(Deserialize)]
struct RawElement {
    name: String,
    #[serde(rename = "type")]
    types: Vec<String>,
    #[serde(default)]
    min: u32,
    max: Option<String>,
    #[serde(default)]
    summary: bool,
    children: Option<String>,
    system: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> &'static ElementModel {
        ElementModel::global()
    }

    #[test]
    fn choice_elements_are_found_by_stem_and_by_json_name() {
        let types = model().element_types("Observation", "effective").unwrap();
        assert_eq!(types, ["dateTime", "Period", "Timing", "instant"]);
        assert_eq!(
            model()
                .element("Observation", "effective[x]")
                .unwrap()
                .path(),
            "Observation.effective[x]"
        );
        let child = model().child("Observation", "effectiveDateTime").unwrap();
        assert_eq!(child.element.path(), "Observation.effective[x]");
        assert_eq!(child.type_code, "dateTime");
        assert_eq!(
            model()
                .child("Observation", "valueQuantity")
                .unwrap()
                .type_code,
            "Quantity"
        );
        assert!(model().child("Observation", "effective").is_none());
        assert!(model().child("Observation", "effectiveString").is_none());
    }

    #[test]
    fn plain_elements_have_their_type_cardinality_and_summary_flag() {
        let status = model().child("Observation", "status").unwrap();
        assert_eq!(status.type_code, "code");
        assert_eq!(status.element.min(), 1);
        assert!(status.element.is_summary());
        assert!(!status.element.is_many());
        assert_eq!(
            status.element.code_system(),
            Some("http://hl7.org/fhir/observation-status")
        );
        assert_eq!(
            model().element("Patient", "gender").unwrap().code_system(),
            Some("http://hl7.org/fhir/administrative-gender")
        );
        let category = model().element("Observation", "category").unwrap();
        assert_eq!(category.max(), MaxCardinality::Unbounded);
        assert!(category.is_many());
        assert!(!category.is_summary());
        assert_eq!(model().element_types("Patient", "id").unwrap(), ["string"]);
        assert_eq!(model().element_types("Extension", "url").unwrap(), ["uri"]);
        assert_eq!(
            model().element_types("Bundle.entry", "resource").unwrap(),
            ["Resource"]
        );
    }

    #[test]
    fn backbone_elements_are_types_named_by_their_path() {
        let component = model().element("Observation", "component").unwrap();
        assert_eq!(component.types(), ["BackboneElement"]);
        assert_eq!(component.backbone(), Some("Observation.component"));
        let definition = model().definition_of(component, "BackboneElement").unwrap();
        assert_eq!(definition.kind(), TypeKind::Backbone);
        assert_eq!(
            definition.child("valueCodeableConcept").unwrap().type_code,
            "CodeableConcept"
        );
        // Inline structures of data types are typed `Element`.
        let repeat = model().element("Timing", "repeat").unwrap();
        assert_eq!(repeat.types(), ["Element"]);
        assert_eq!(
            model().element_types("Timing.repeat", "bounds").unwrap(),
            ["Duration", "Range", "Period"]
        );
    }

    #[test]
    fn content_references_point_at_the_referenced_structure() {
        let nested = model().element("Questionnaire.item", "item").unwrap();
        assert_eq!(nested.backbone(), Some("Questionnaire.item"));
        assert_eq!(nested.types(), ["BackboneElement"]);
        assert!(nested.is_many());
        let link = model().element("Bundle.entry", "link").unwrap();
        assert_eq!(link.backbone(), Some("Bundle.link"));
    }

    #[test]
    fn type_hierarchy_follows_base_definitions() {
        assert!(model().is_subtype_of("Patient", "DomainResource"));
        assert!(model().is_subtype_of("Patient", "Resource"));
        assert!(model().is_subtype_of("Age", "Quantity"));
        assert!(model().is_subtype_of("code", "string"));
        assert!(!model().is_subtype_of("Quantity", "Age"));
        assert!(model().is_resource_type("Patient"));
        assert!(!model().is_resource_type("DomainResource"));
        assert!(!model().is_resource_type("Period"));
        let date_time = model().type_definition("dateTime").unwrap();
        assert_eq!(date_time.kind(), TypeKind::PrimitiveType);
        assert!(date_time.elements().is_empty());
    }

    #[test]
    fn every_type_code_and_backbone_reference_resolves() {
        let mut elements = 0;
        for definition in model().types() {
            for element in definition.elements() {
                elements += 1;
                for type_code in element.types() {
                    assert!(
                        model().type_definition(type_code).is_some(),
                        "{}: unknown type {type_code}",
                        element.path()
                    );
                }
                if let Some(backbone) = element.backbone() {
                    assert!(
                        model().type_definition(backbone).is_some(),
                        "{}: unknown backbone {backbone}",
                        element.path()
                    );
                }
            }
        }
        assert!(elements > 5_000, "only {elements} elements");
        let resources = model()
            .types()
            .filter(|t| model().is_resource_type(t.name()))
            .count();
        assert_eq!(resources, crate::ResourceType::all().count());
    }

    #[test]
    fn json_names_capitalise_the_type() {
        let value = model().element("Observation", "value").unwrap();
        assert_eq!(value.json_name("dateTime"), "valueDateTime");
        assert_eq!(value.json_name("Quantity"), "valueQuantity");
        assert_eq!(
            model()
                .element("Observation", "status")
                .unwrap()
                .json_name("code"),
            "status"
        );
    }

    #[test]
    fn malformed_models_are_rejected() {
        assert!(ElementModel::from_json("{}").is_err());
        let bad_kind = r#"{"fhirVersion":"4.0.1","types":{"X":{"kind":"odd"}}}"#;
        assert!(matches!(
            ElementModel::from_json(bad_kind),
            Err(ElementModelError::UnknownKind { .. })
        ));
        let bad_max = r#"{"fhirVersion":"4.0.1","types":{"X":{"kind":"complex-type","elements":[{"name":"a","type":["string"],"max":"many"}]}}}"#;
        assert!(matches!(
            ElementModel::from_json(bad_max),
            Err(ElementModelError::InvalidMax { .. })
        ));
    }
}
