"""Tables of the fhir domain (none yet)."""
