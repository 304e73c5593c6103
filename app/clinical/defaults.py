"""Shipped change parameters: exactly the defaults of scoring-decisions.md ("Reliable change and clinical
significance"), each with its citation and its evidence. No other instrument has defaults: a clinic supplies them,
with a citation.

The evidence counts the sources the references (``instruments-sources.md`` §4.2, §4.7, §6.5;
``change-analytics.md`` §3.2; ``clinical-feedback.md``) give for each value, and says which kind of reliability the
Jacobson–Truax default is: Cronbach's α (internal consistency), where Jacobson & Truax used test–retest reliability.
"""

from __future__ import annotations

from app.clinical.change import CutoffType, Evidence, Method, Parameters, ReliabilityKind

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

_IAPT = "NHS Talking Therapies (IAPT manual), as quoted at cbtwatch.com (change-analytics.md §3.2)"
_PSYCHIATRIC_SERVICES = "ps.psychiatryonline.org, doi:10.1176/appi.ps.201900295 (change-analytics.md §3.2)"
_INTAKE = Evidence(
    sources=("NHS Talking Therapies 2022-23 intake, as quoted at cbtwatch.com (change-analytics.md §3.2)",),
    confirmed=False,
    note="instruments-sources.md §4.7: UNCONFIRMED (1 source), not re-read.",
)
_PHQ9_CASENESS = Evidence(
    sources=(
        "Kroenke 2001: 10 or more, sensitivity and specificity 88 % for major depression (instruments-sources.md §4.2)",
        "NHS Data Dictionary: 10 or above is clinically significant (instruments-sources.md §4.2)",
        _IAPT,
    ),
    confirmed=True,
)
_PHQ9_OUTCOME_EVIDENCE = {
    "response_reduction": Evidence(
        sources=(_PSYCHIATRIC_SERVICES, "HEDIS DRR-E summary, ncqa.org: 50 % or more below the index score"),
        confirmed=True,
    ),
    "remission_below": Evidence(
        sources=(
            _PSYCHIATRIC_SERVICES,
            "CMS159 (Depression Remission at Twelve Months): the last PHQ-9 below 5",
            "HEDIS DRR-E summary, ncqa.org: the most recent PHQ-9 below 5",
        ),
        confirmed=True,
    ),
}

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
        evidence={
            "reliability": Evidence(
                sources=("Kroenke 2001, as quoted at oskarflygare.com (instruments-sources.md §4.7)",),
                confirmed=False,
                reliability_kind=ReliabilityKind.INTERNAL_CONSISTENCY,
                note=(
                    "Cronbach's alpha, one readable source (instruments-sources.md §4.7: UNCONFIRMED). Jacobson & "
                    "Truax used test-retest reliability; the references' only PHQ-9 test-retest value (r = 0.737 "
                    "over 2 weeks, one Chinese sample with major depression) is not the default."
                ),
            ),
            "clinical_mean": _INTAKE,
            "clinical_sd": _INTAKE,
            "caseness_cutoff": _PHQ9_CASENESS,
            **_PHQ9_OUTCOME_EVIDENCE,
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
        evidence={
            "minimum_change": Evidence(
                sources=(_IAPT,),
                confirmed=False,
                note=(
                    "Agrees with the Jacobson-Truax threshold of the defaults (5.06, so 6 points; change-analytics.md "
                    "§3.2): a derivation, not a second source."
                ),
            ),
            "caseness_cutoff": _PHQ9_CASENESS,
            **_PHQ9_OUTCOME_EVIDENCE,
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
        evidence={
            "minimum_change": Evidence(sources=(_IAPT,), confirmed=False),
            "caseness_cutoff": Evidence(sources=(_IAPT,), confirmed=False),
        },
    ),
}
