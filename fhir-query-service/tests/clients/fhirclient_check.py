"""Reads, searches and pages through the server with the `fhirclient` package (SMART on FHIR's
Python client), as a FHIR tool builder would. Prints what it saw as JSON for the Rust test.

Usage: fhirclient_check.py <fhir base> <patient id>
"""

import json
import sys

from fhirclient import client
from fhirclient.models.bundle import Bundle
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient


def main() -> None:
    base, patient_id = sys.argv[1], sys.argv[2]
    smart = client.FHIRClient(settings={"app_id": "wardline-test", "api_base": base})
    patient = Patient.read(patient_id, smart.server)
    search = Observation.where(
        struct={"subject": f"Patient/{patient_id}", "_count": "10", "_sort": "date"}
    )
    # perform_resources_iter follows the Bundle's `next` links.
    observations = [o.id for o in search.perform_resources_iter(smart.server)]
    history = Bundle.read_from(f"Patient/{patient_id}/_history", smart.server)
    print(
        json.dumps(
            {
                "family": patient.name[0].family,
                "birthDate": patient.birthDate.isostring,
                "observations": observations,
                "historyEntries": len(history.entry or []),
            }
        )
    )


if __name__ == "__main__":
    main()
