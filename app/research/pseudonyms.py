"""Pseudonymous patient ids for research exports (``ecosystem.md`` §3, "Pseudonymisation").

``patient_id = base32(HMAC-SHA256(project key, "<clinic id>:<patient id>"))[:16]``, lower case. The project key is
itself ``HMAC-SHA256(RESEARCH_PSEUDONYM_KEY, "project:salt:<salt>")``, the salt being random and stored with the
research project (``research.projects.pseudonymiser``): one server secret, one key per project and no key at rest,
so two projects' exports cannot be joined on the pseudonym, and neither can be reversed without the server secret.
80 bits of output make an accidental collision negligible (≈ 10⁻¹⁴ for 100,000 patients).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

PSEUDONYM_LENGTH = 16


def project_key(secret: str, project: str) -> bytes:
    return hmac.new(secret.encode(), f"project:{project}".encode(), hashlib.sha256).digest()


class Pseudonymiser:
    """Maps internal patient ids to one project's pseudonyms (an HMAC each; the last one is remembered, since
    exports come patient by patient)."""

    def __init__(self, *, secret: str, project: str, clinic_id: uuid.UUID) -> None:
        self._key = project_key(secret, project)
        self._clinic = str(clinic_id)
        self._last: tuple[uuid.UUID, str] | None = None

    def __call__(self, patient_id: uuid.UUID) -> str:
        if self._last is not None and self._last[0] == patient_id:
            return self._last[1]
        digest = hmac.new(self._key, f"{self._clinic}:{patient_id}".encode(), hashlib.sha256).digest()
        pseudonym = base64.b32encode(digest).decode().lower()[:PSEUDONYM_LENGTH]
        self._last = (patient_id, pseudonym)
        return pseudonym
