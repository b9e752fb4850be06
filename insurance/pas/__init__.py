"""Electronic prior authorization with payers that speak HL7 Da Vinci Prior Authorization
Support (PAS): the FHIR documents we send and how we read what comes back (`fhir`)."""
