"""Shipped change parameters: exactly the defaults of scoring-decisions.md ("Reliable change and clinical
significance"), each with its citation. No other instrument has defaults: a clinic supplies them, with a citation.
"""

from __future__ import annotations

from app.clinical.change import CutoffType, Method, Parameters

JACOBSON_TRUAX_1991 = (
    "Jacobson NS, Truax P. Clinical significance: a statistical approach to defining meaningful change in "
    "psychotherapy research. J Consult Clin Psychol. 1991;59(1):12-19. doi:10.1037/0022-006X.59.1.12"
)
KROENKE_2001_ALPHA = (
    "Kroenke K, Spitzer RL, Williams JBW. The PHQ-9: validity of a brief depression severity measure. "
    "J Gen Intern Med. 2001;16(9):606-613 (Cronbach's alpha 0.89)."
)
NHS_TALKING_THERAPIES_INTAKE = (
    "NHS Talking Therapies 2022-23 intake PHQ-9 mean 15.4 (SD 5.5), as quoted at "
    "http://www.cbtwatch.com/tag/no-justification-for-nhs-talking-theapies/"
)
NHS_TALKING_THERAPIES_CONVENTION = (
    "NHS Talking Therapies (IAPT) convention, quoting the IAPT manual: a reduction of 6 or more on the PHQ-9 "
    "(4 or more on the GAD-7) is reliable improvement; caseness is PHQ-9 >= 10, GAD-7 >= 8. As quoted at "
    "http://www.cbtwatch.com/tag/no-justification-for-nhs-talking-theapies/"
)
PHQ9_RESPONSE_REMISSION = (
    "PHQ-9 response is a reduction of 50 % or more; remission is a PHQ-9 below 5. "
    "http://ps.psychiatryonline.org/doi/full/10.1176/appi.ps.201900295"
)

_PHQ9_OUTCOMES = {"response_reduction": PHQ9_RESPONSE_REMISSION, "remission_below": PHQ9_RESPONSE_REMISSION}

DEFAULTS: dict[tuple[str, str, Method], Parameters] = {
    ("phq9", "total", Method.JACOBSON_TRUAX): Parameters(
        method=Method.JACOBSON_TRUAX,
        source="default",
        reliability=0.89,
        clinical_mean=15.4,
        clinical_sd=5.5,
        cutoff_type=CutoffType.CASENESS,
        caseness_cutoff=10,
        response_reduction=0.5,
        remission_below=5,
        citations={
            "method": JACOBSON_TRUAX_1991,
            "reliability": KROENKE_2001_ALPHA,
            "clinical_mean": NHS_TALKING_THERAPIES_INTAKE,
            "clinical_sd": NHS_TALKING_THERAPIES_INTAKE,
            "caseness_cutoff": NHS_TALKING_THERAPIES_CONVENTION,
            **_PHQ9_OUTCOMES,
        },
    ),
    ("phq9", "total", Method.FIXED_THRESHOLD): Parameters(
        method=Method.FIXED_THRESHOLD,
        source="default",
        minimum_change=6,
        cutoff_type=CutoffType.CASENESS,
        caseness_cutoff=10,
        response_reduction=0.5,
        remission_below=5,
        citations={
            "minimum_change": NHS_TALKING_THERAPIES_CONVENTION,
            "caseness_cutoff": NHS_TALKING_THERAPIES_CONVENTION,
            **_PHQ9_OUTCOMES,
        },
    ),
    ("gad7", "total", Method.FIXED_THRESHOLD): Parameters(
        method=Method.FIXED_THRESHOLD,
        source="default",
        minimum_change=4,
        cutoff_type=CutoffType.CASENESS,
        caseness_cutoff=8,
        citations={
            "minimum_change": NHS_TALKING_THERAPIES_CONVENTION,
            "caseness_cutoff": NHS_TALKING_THERAPIES_CONVENTION,
        },
    ),
}
