//! The clinical vocabulary the generator draws from: real codes (LOINC, SNOMED CT, RxNorm, CVX,
//! DICOM modalities) with their displays, units and reference ranges, so that generated data
//! searches and reads like a hospital's.

pub const LOINC: &str = "http://loinc.org";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub const CVX: &str = "http://hl7.org/fhir/sid/cvx";
pub const UCUM: &str = "http://unitsofmeasure.org";

pub const GIVEN_FEMALE: &[&str] = &[
    "Amira", "Beatrice", "Chloe", "Dalia", "Elena", "Fatima", "Grace", "Hana", "Ines", "Jun",
    "Keiko", "Leila", "Maya", "Nadia", "Olivia", "Priya", "Rosa", "Sofia", "Tamar", "Yara",
];
pub const GIVEN_MALE: &[&str] = &[
    "Aarav", "Bruno", "Carlos", "Dmitri", "Emeka", "Felix", "Gabriel", "Hamza", "Ivan", "Jonas",
    "Kenji", "Liam", "Mateo", "Nikhil", "Omar", "Pavel", "Rafael", "Samuel", "Tomas", "Yusuf",
];
pub const FAMILY: &[&str] = &[
    "Abara",
    "Becker",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Umarov",
    "Valdez",
    "Walsh",
    "Xu",
    "Yilmaz",
    "Zhou",
];
pub const CITIES: &[(&str, &str)] = &[
    ("Springfield", "MA"),
    ("Riverton", "WY"),
    ("Fairview", "TN"),
    ("Lakewood", "CO"),
    ("Madison", "WI"),
];

/// Wards of the demo hospital: (id, name, beds).
pub const WARDS: &[(&str, &str, usize)] = &[
    ("ward-a", "Ward A (Acute Medicine)", 12),
    ("ward-b", "Ward B (Surgery)", 10),
    ("ward-c", "Ward C (Respiratory)", 8),
];

/// (SNOMED code, display)
pub const CONDITIONS: &[(&str, &str)] = &[
    ("38341003", "Hypertensive disorder"),
    ("44054006", "Diabetes mellitus type 2"),
    ("195967001", "Asthma"),
    ("13645005", "Chronic obstructive lung disease"),
    ("49436004", "Atrial fibrillation"),
    ("233604007", "Pneumonia"),
    ("68566005", "Urinary tract infectious disease"),
    ("84114007", "Heart failure"),
    ("431855005", "Chronic kidney disease stage 1"),
    ("35489007", "Depressive disorder"),
];

/// Why inpatients are admitted: (SNOMED code, display).
pub const ADMISSION_REASONS: &[(&str, &str)] = &[
    ("233604007", "Pneumonia"),
    ("91302008", "Sepsis"),
    ("84114007", "Heart failure"),
    ("195967001", "Asthma"),
    ("74400008", "Appendicitis"),
    ("125605004", "Fracture of bone"),
];

/// (RxNorm code, display)
pub const MEDICATIONS: &[(&str, &str)] = &[
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("860975", "metformin hydrochloride 500 MG Oral Tablet"),
    ("895994", "fluticasone propionate 0.044 MG/ACTUAT Inhaler"),
    ("197361", "amlodipine 5 MG Oral Tablet"),
    ("308182", "amoxicillin 250 MG Oral Capsule"),
    ("855332", "warfarin sodium 5 MG Oral Tablet"),
    ("313782", "acetaminophen 325 MG Oral Tablet"),
    ("198211", "simvastatin 40 MG Oral Tablet"),
];

/// (SNOMED code, display) of substances.
pub const ALLERGIES: &[(&str, &str)] = &[
    ("764146007", "Penicillin"),
    ("91935009", "Allergy to peanut"),
    ("300916003", "Latex allergy"),
    ("418689008", "Allergy to grass pollen"),
];

/// (CVX code, display)
pub const VACCINES: &[(&str, &str)] = &[
    ("140", "Influenza, seasonal, injectable, preservative free"),
    (
        "208",
        "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose",
    ),
    ("113", "Td (adult) preservative free"),
    ("33", "pneumococcal polysaccharide vaccine, 23 valent"),
];

/// A laboratory test: LOINC code, display, UCUM unit, reference range, and the mean and spread
/// of generated values.
pub struct Lab {
    pub code: &'static str,
    pub display: &'static str,
    pub unit: &'static str,
    pub low: f64,
    pub high: f64,
    pub mean: f64,
    pub spread: f64,
    pub decimals: usize,
}

pub const LABS: &[Lab] = &[
    Lab {
        code: "718-7",
        display: "Hemoglobin [Mass/volume] in Blood",
        unit: "g/dL",
        low: 12.0,
        high: 17.5,
        mean: 13.5,
        spread: 2.0,
        decimals: 1,
    },
    Lab {
        code: "6690-2",
        display: "Leukocytes [#/volume] in Blood by Automated count",
        unit: "10*3/uL",
        low: 4.0,
        high: 11.0,
        mean: 8.5,
        spread: 3.5,
        decimals: 1,
    },
    Lab {
        code: "2951-2",
        display: "Sodium [Moles/volume] in Serum or Plasma",
        unit: "mmol/L",
        low: 135.0,
        high: 145.0,
        mean: 139.0,
        spread: 4.0,
        decimals: 0,
    },
    Lab {
        code: "2823-3",
        display: "Potassium [Moles/volume] in Serum or Plasma",
        unit: "mmol/L",
        low: 3.5,
        high: 5.1,
        mean: 4.2,
        spread: 0.6,
        decimals: 1,
    },
    Lab {
        code: "2160-0",
        display: "Creatinine [Mass/volume] in Serum or Plasma",
        unit: "mg/dL",
        low: 0.6,
        high: 1.3,
        mean: 1.0,
        spread: 0.4,
        decimals: 2,
    },
    Lab {
        code: "2339-0",
        display: "Glucose [Mass/volume] in Blood",
        unit: "mg/dL",
        low: 70.0,
        high: 99.0,
        mean: 98.0,
        spread: 25.0,
        decimals: 0,
    },
    Lab {
        code: "1988-5",
        display: "C reactive protein [Mass/volume] in Serum or Plasma",
        unit: "mg/L",
        low: 0.0,
        high: 5.0,
        mean: 8.0,
        spread: 10.0,
        decimals: 1,
    },
];

/// A vital sign: LOINC code, display, UCUM unit.
pub struct Vital {
    pub code: &'static str,
    pub display: &'static str,
    pub unit: &'static str,
}

pub const RESPIRATORY_RATE: Vital = Vital {
    code: "9279-1",
    display: "Respiratory rate",
    unit: "/min",
};
pub const HEART_RATE: Vital = Vital {
    code: "8867-4",
    display: "Heart rate",
    unit: "/min",
};
pub const OXYGEN_SATURATION: Vital = Vital {
    code: "59408-5",
    display: "Oxygen saturation in Arterial blood by Pulse oximetry",
    unit: "%",
};
pub const BODY_TEMPERATURE: Vital = Vital {
    code: "8310-5",
    display: "Body temperature",
    unit: "Cel",
};
pub const BLOOD_PRESSURE: Vital = Vital {
    code: "85354-9",
    display: "Blood pressure panel with all children optional",
    unit: "mm[Hg]",
};
pub const SYSTOLIC: Vital = Vital {
    code: "8480-6",
    display: "Systolic blood pressure",
    unit: "mm[Hg]",
};
pub const DIASTOLIC: Vital = Vital {
    code: "8462-4",
    display: "Diastolic blood pressure",
    unit: "mm[Hg]",
};
/// Level of consciousness (ACVPU), coded in SNOMED CT.
pub const CONSCIOUSNESS: Vital = Vital {
    code: "67775-7",
    display: "Level of responsiveness",
    unit: "",
};
/// Inspired oxygen: on air or on supplemental oxygen.
pub const INHALED_OXYGEN: Vital = Vital {
    code: "3151-8",
    display: "Inhaled oxygen flow rate",
    unit: "L/min",
};

/// (SNOMED code, display) of ACVPU levels.
pub const ALERT: (&str, &str) = ("248234008", "Mentally alert");
pub const NEW_CONFUSION: (&str, &str) = ("130987000", "Acute confusion");

/// (DICOM modality, SNOMED body site code, display)
pub const IMAGING: &[(&str, &str, &str)] = &[
    ("CR", "51185008", "Thoracic structure"),
    ("CT", "69536005", "Head structure"),
    ("US", "113345001", "Abdominal structure"),
];
