"""Signs in to the server the way a SMART app does, with the `fhirclient` package (SMART on FHIR's
Python client), then reads, searches and pages as a FHIR tool builder would. Prints what it saw
as JSON for the Rust test.

The standalone launch: fhirclient finds the authorization endpoints in the server's
CapabilityStatement and builds the authorize URL (with PKCE); the user's part (the sign-in page,
the consent page with its patient picker) is played here with `requests`, as a browser would;
fhirclient then exchanges the code for a token and sends it with every request.

Usage: fhirclient_check.py <fhir base> <patient id> <client id> <redirect uri> <user> <password>
"""

import html
import json
import re
import sys
from urllib.parse import urljoin

import requests
from fhirclient import client
from fhirclient.models.bundle import Bundle
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    if found is None:
        raise SystemExit(f"no hidden field {name} in:\n{page}")
    return html.unescape(found.group(1))


def sign_in(authorize_url: str, user: str, password: str, family: str) -> tuple[str, list[str]]:
    """Plays the user's part; the redirect the app receives, and the scopes the consent page
    listed."""
    browser = requests.Session()
    page = browser.get(authorize_url)
    page.raise_for_status()
    request_id = hidden(page.text, "request")
    signed_in = browser.post(
        urljoin(authorize_url, "/auth/login"),
        data={
            "request": request_id,
            "csrf": hidden(page.text, "csrf"),
            "username": user,
            "password": password,
        },
        allow_redirects=False,
    )
    if signed_in.status_code != 303:
        raise SystemExit(f"sign-in answered {signed_in.status_code}: {signed_in.text}")
    # The consent page's patient picker: search by name, pick the one found.
    consent_url = urljoin(authorize_url, signed_in.headers["Location"])
    consent = browser.get(consent_url, params={"q": family})
    consent.raise_for_status()
    scopes = re.findall(r"<li>([^<]*)</li>", consent.text)
    patients = re.findall(r'name="patient" value="([^"]*)"', consent.text)
    if len(patients) != 1:
        raise SystemExit(f"the picker found {patients} for {family}:\n{consent.text}")
    decided = browser.post(
        urljoin(authorize_url, "/auth/consent"),
        data={
            "request": request_id,
            "csrf": hidden(consent.text, "csrf"),
            "patient": patients[0],
            "decision": "allow",
        },
        allow_redirects=False,
    )
    if decided.status_code != 303:
        raise SystemExit(f"consent answered {decided.status_code}: {decided.text}")
    return decided.headers["Location"], scopes


def main() -> None:
    base, patient_id, client_id, redirect, user, password = sys.argv[1:7]
    smart = client.FHIRClient(
        settings={
            "app_id": client_id,
            "api_base": base,
            "redirect_uri": redirect,
            "scope": "launch/patient openid fhirUser patient/*.rs",
        }
    )
    callback, scopes = sign_in(smart.authorize_url, user, password, "Clientson")
    smart.handle_callback(callback)
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
                "patientInContext": smart.patient_id,
                "consentScopes": scopes,
                "family": patient.name[0].family,
                "birthDate": patient.birthDate.isostring,
                "observations": observations,
                "historyEntries": len(history.entry or []),
            }
        )
    )


if __name__ == "__main__":
    main()
