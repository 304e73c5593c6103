"""The FHIRPath a form filler evaluates to show an instrument's total exactly as the server scores it: the SDC
``calculatedExpression`` of the Questionnaire's read-only total item.

The expression is plain FHIRPath (``where``, ``select``, ``iif``, ``combine``, ``count``, ``sum``), so LHC-Forms,
Smart Forms and fhirpathpy all evaluate it; fhirpathpy has none of SDC's own functions (``answers()``,
``ordinal()``, ``weight()``). Each answer's code is mapped to its score explicitly, one map per option set, and a
reverse-keyed item's code straight to its reversed score (the option set's minimum + maximum − score, as the scorer
reverses). The options' ``ordinalValue`` stays the option's own score: the reversal belongs to a score, not to an
answer (an SCS negative item counts reversed in the total and unreversed in its subscale).

The result is the server's, operation for operation: a sum of integers; a mean as that sum divided by the number of
items; PHQ-9's proration as sum × items ÷ answered; and no value where the server has none (an item missing that
the instrument's rule does not allow). Only item rules (``sum``, ``mean``) get an expression: a total that is a
mean or sum of other scores would need them as items of their own, and an instrument without a single total
(FSCRS) has no total item at all.
"""

from __future__ import annotations

from collections.abc import Callable

from app.scoring.definition import InstrumentDefinition, MissingPolicy, ResponseOption, Rule

OptionCode = Callable[[str, ResponseOption], str]
"""(option set, option) → the code the Questionnaire gives the option (``LA6568-5``, ``3``)."""


def total_expression(definition: InstrumentDefinition, option_code: OptionCode) -> str | None:
    """The FHIRPath of the instrument's primary score over a response (``%resource``), or None when one expression
    cannot give the server's score (see the module docstring)."""
    if definition.primary_score is None:
        return None
    spec = definition.score(definition.primary_score)
    if spec.rule not in (Rule.SUM, Rule.MEAN) or spec.missing is None:
        return None
    items = {item.number: item for item in definition.items}
    groups: dict[tuple[str, bool], list[str]] = {}
    for number in spec.items:
        groups.setdefault((items[number].option_set, number in spec.reverse_items), []).append(number)
    parts = [
        _scores_of(numbers, definition.option_sets[option_set], option_set, reverse, option_code)
        for (option_set, reverse), numbers in groups.items()
    ]
    weights = parts[0] + "".join(f".combine({part})" for part in parts[1:])
    n = len(spec.items)
    count, total = f"{weights}.count()", f"{weights}.sum()"
    complete = total if spec.rule is Rule.SUM else f"{total} / {n}"
    if spec.missing.policy is MissingPolicy.PRORATE and spec.missing.max_missing > 0:
        prorated = f"iif({count} >= {n - spec.missing.max_missing}, {total} * {n} / {count}, {{}})"
        return f"iif({count} = {n}, {complete}, {prorated})"
    return f"iif({count} = {n}, {complete}, {{}})"


def _scores_of(
    numbers: list[str],
    options: tuple[ResponseOption, ...],
    option_set: str,
    reverse: bool,
    option_code: OptionCode,
) -> str:
    """The scores of the answers to these items (one option set, all reversed or none), one per answer given."""
    scores = [option.numeric_score for option in options]
    reversal = min(scores) + max(scores)
    mapped = "{}"
    for option in reversed(options):
        score = reversal - option.numeric_score if reverse else option.numeric_score
        mapped = f"iif($this = {_literal(option_code(option_set, option))}, {score}, {mapped})"
    link_ids = " | ".join(_literal(number) for number in numbers)
    return f"%resource.item.where(linkId in ({link_ids})).answer.valueCoding.code.select({mapped})"


def _literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"
