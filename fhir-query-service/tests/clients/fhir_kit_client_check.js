// Reads, searches and pages through the server with the `fhir-kit-client` npm package, as a
// JavaScript FHIR app would. Prints what it saw as JSON for the Rust test.
//
// Usage: node fhir_kit_client_check.js <fhir base> <patient id> <access token>

const Client = require('fhir-kit-client');

async function main() {
  const [baseUrl, patientId, bearerToken] = process.argv.slice(2);
  const client = new Client({ baseUrl, bearerToken });
  const capability = await client.capabilityStatement();
  const patient = await client.read({ resourceType: 'Patient', id: patientId });
  const observations = [];
  let page = await client.search({
    resourceType: 'Observation',
    searchParams: { subject: `Patient/${patientId}`, _count: 10, _sort: '-date' },
  });
  while (page) {
    for (const entry of page.entry || []) observations.push(entry.resource.id);
    // nextPage resolves the `next` link; it returns undefined on the last page.
    page = await client.nextPage(page);
  }
  const history = await client.resourceHistory({ resourceType: 'Patient', id: patientId });
  console.log(JSON.stringify({
    fhirVersion: capability.fhirVersion,
    family: patient.name[0].family,
    observations,
    historyEntries: (history.entry || []).length,
  }));
}

main().catch((error) => {
  console.error(error && error.response ? JSON.stringify(error.response.data) : error);
  process.exit(1);
});
