//! The valid resources the fuzz test writes before it starts: targets for reads, updates,
//! patches and deletes, referents for references, and the originals its bodies are mutated from.
//! Their ids are fixed, so a case names the same path in every run of a seed.

use serde_json::{Value, json};

/// The seed resources, each referring only to resources before it (they are written in order).
pub fn resources() -> Vec<Value> {
    vec![
        json!({
            "resourceType": "Organization",
            "id": "fz-org",
            "active": true,
            "name": "Fuzz General Hospital",
            "identifier": [{"system": "http://example.org/org", "value": "FGH"}]
        }),
        json!({
            "resourceType": "Practitioner",
            "id": "fz-doc",
            "name": [{"family": "Grey", "given": ["Meredith"], "prefix": ["Dr"]}],
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567890"}]
        }),
        json!({
            "resourceType": "Location",
            "id": "fz-ward",
            "status": "active",
            "name": "Ward A",
            "managingOrganization": {"reference": "Organization/fz-org"},
            "position": {"longitude": -0.1276, "latitude": 51.5072, "altitude": 11.5},
            "address": {"city": "London", "country": "GB", "postalCode": "NW1 2BU"}
        }),
        json!({
            "resourceType": "Patient",
            "id": "fz-ann",
            "meta": {"tag": [{"system": "http://example.org/tags", "code": "fuzz"}]},
            "active": true,
            "identifier": [{"system": "http://example.org/mrn", "value": "MRN-0001"}],
            "name": [{"use": "official", "family": "Smith", "given": ["Ann", "Marie"]}],
            "telecom": [{"system": "phone", "value": "+44 20 7946 0000", "use": "home"}],
            "gender": "female",
            "birthDate": "1970-02-03",
            "address": [{"line": ["1 High Street"], "city": "Leeds", "postalCode": "LS1 1AA"}],
            "generalPractitioner": [{"reference": "Practitioner/fz-doc"}],
            "managingOrganization": {"reference": "Organization/fz-org"}
        }),
        json!({
            "resourceType": "Patient",
            "id": "fz-bob",
            "name": [{"family": "Jones", "given": ["Bob"]}],
            "gender": "male",
            "birthDate": "1958-11-30",
            "link": [{"other": {"reference": "Patient/fz-ann"}, "type": "seealso"}]
        }),
        json!({
            "resourceType": "Encounter",
            "id": "fz-stay",
            "status": "in-progress",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "IMP"
            },
            "subject": {"reference": "Patient/fz-ann"},
            "participant": [{"individual": {"reference": "Practitioner/fz-doc"}}],
            "period": {"start": "2024-03-01T08:00:00Z"},
            "length": {"value": 3, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"},
            "location": [{"location": {"reference": "Location/fz-ward"}}],
            "serviceProvider": {"reference": "Organization/fz-org"}
        }),
        json!({
            "resourceType": "Observation",
            "id": "fz-bp",
            "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs"
            }]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "subject": {"reference": "Patient/fz-ann"},
            "encounter": {"reference": "Encounter/fz-stay"},
            "effectiveDateTime": "2024-03-02T09:30:00+01:00",
            "performer": [{"reference": "Practitioner/fz-doc"}],
            "component": [
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "valueQuantity": {
                        "value": 128, "unit": "mmHg",
                        "system": "http://unitsofmeasure.org", "code": "mm[Hg]"
                    }
                },
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                    "valueQuantity": {
                        "value": 82, "unit": "mmHg",
                        "system": "http://unitsofmeasure.org", "code": "mm[Hg]"
                    }
                }
            ]
        }),
        json!({
            "resourceType": "Observation",
            "id": "fz-weight",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Body weight"},
            "subject": {"reference": "Patient/fz-bob"},
            "effectiveDateTime": "2024-01-15",
            "valueQuantity": {
                "value": 81.25, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"
            },
            "note": [{"text": "Weighed after breakfast"}]
        }),
        json!({
            "resourceType": "RiskAssessment",
            "id": "fz-risk",
            "status": "final",
            "subject": {"reference": "Patient/fz-ann"},
            "occurrenceDateTime": "2024-03-02",
            "prediction": [{"outcome": {"text": "Deterioration"}, "probabilityDecimal": 0.125}]
        }),
        json!({
            "resourceType": "ValueSet",
            "id": "fz-vs",
            "url": "http://example.org/fhir/ValueSet/fuzz",
            "version": "1.0.0",
            "name": "FuzzCodes",
            "status": "active",
            "compose": {"include": [{"system": "http://loinc.org", "concept": [{"code": "8480-6"}]}]}
        }),
        json!({
            "resourceType": "MolecularSequence",
            "id": "fz-seq",
            "coordinateSystem": 0,
            "patient": {"reference": "Patient/fz-ann"},
            "referenceSeq": {
                "chromosome": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/chromosome-human",
                    "code": "1"
                }]},
                "windowStart": 100,
                "windowEnd": 200
            },
            "variant": [{"start": 120, "end": 121, "observedAllele": "G", "referenceAllele": "A"}]
        }),
    ]
}
