"""FHIR R4 façade.

Logical ids follow FHIR's rule, ``[A-Za-z0-9\\-\\.]{1,64}``: the R4B models (``fhir.resources``) allow 255 characters
unless told otherwise before they are imported, which this package does first.
"""

import fhir_core.constraints

fhir_core.constraints.TYPES_ID_MAX_LENGTH = 64
