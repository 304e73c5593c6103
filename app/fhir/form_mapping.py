"""Compile a third-party Questionnaire into a ``FormMap``: which of its items ask which instrument item, and what
each of its answers means.

An item maps to an instrument item by, in this order:
1. the explicit mapping extension ``urn:compassion-outcomes:fhir:item-map`` on the item, whose ``valueCoding`` is
   ``{system: urn:compassion-outcomes:item, code: "<instrument>.<item number>"}`` (code ``unscored`` to ignore the
   item) or ``{system: urn:compassion-outcomes:score, code: "<instrument>.<score key>"}`` for a total;
2. the server's list of published forms without codes (``app.fhir.known_forms``);
3. its ``code``: the instrument items' LOINC codes, a score's LOINC code (a total), or our own item/score codes.
Never by position or wording. Every answerable item must map, the form must ask every scored item of one
instrument, and each answer option must mean one option of its item: by its LOINC answer code, by our answer code,
or by its weight (``ordinalValue`` or SDC 4's ``itemWeight``). A weight that contradicts the instrument's scoring
is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.fhir import codes
from app.fhir.errors import Issue, UnprocessableResource
from app.fhir.known_forms import KnownForm, known_form
from app.fhir.schemas import AnswerKey, FormMap, MappedItem
from app.instruments.registry import InstrumentRegistry
from app.scoring.definition import InstrumentDefinition, Item, ResponseOption

UNANSWERABLE_TYPES = frozenset({"group", "display"})


@dataclass(frozen=True)
class Target:
    """What one form item asks: an instrument item, a score (declared total), or nothing to score."""

    instrument: str | None
    number: str | None = None
    score: str | None = None


UNSCORED = Target(instrument=None)


@dataclass(frozen=True)
class FormItem:
    link_id: str
    path: str
    data: dict[str, Any]


@dataclass(frozen=True)
class CompiledForm:
    form: FormMap
    warnings: list[Issue] = field(default_factory=list)


@dataclass
class _Compiler:
    registry: InstrumentRegistry
    root: str
    contained: list[dict[str, Any]]
    known: KnownForm | None
    issues: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    def fail(self, code: Any, diagnostics: str, path: str) -> None:
        self.issues.append(Issue(code, diagnostics, (path,)))


def compile_form(
    data: dict[str, Any],
    registry: InstrumentRegistry,
    *,
    root: str = "Questionnaire",
    contained: list[dict[str, Any]] | None = None,
) -> CompiledForm:
    """Map a (structurally valid) Questionnaire onto one instrument, or raise 422 with one issue per problem.

    ``contained`` holds the resources ``#id`` references resolve against (a contained form's siblings).
    """
    known = known_form([data.get("url"), *_list_of_str(data.get("derivedFrom"))])
    compiler = _Compiler(registry, root, contained if contained is not None else _dicts(data.get("contained")), known)
    ignored: list[str] = []
    targets: dict[str, tuple[FormItem, list[Target]]] = {}
    for form_item in _walk(data.get("item"), root):
        if form_item.data.get("type") in UNANSWERABLE_TYPES:
            ignored.append(form_item.link_id)
            continue
        candidates = _candidates(compiler, form_item)
        if candidates is None:
            continue
        if not candidates:
            compiler.fail(
                "not-supported",
                f"item {form_item.link_id!r} has no code of a known instrument item: add its LOINC code, or the "
                f"{codes.ITEM_MAP_EXTENSION} extension (code 'unscored' to ignore it)",
                form_item.path,
            )
            continue
        targets[form_item.link_id] = (form_item, candidates)
    definition = _instrument(compiler, data, targets) if not compiler.issues else None
    if definition is None or compiler.issues:
        raise UnprocessableResource("the Questionnaire does not map onto one instrument", issues=compiler.issues)
    form = _form_map(compiler, definition, targets, ignored)
    if compiler.issues:
        raise UnprocessableResource(
            f"the Questionnaire does not map onto {definition.short_name}", issues=compiler.issues
        )
    return CompiledForm(form=form, warnings=compiler.warnings)


def _walk(items: Any, parent: str) -> Iterator[FormItem]:
    for index, item in enumerate(_dicts(items)):
        path = f"{parent}.item[{index}]"
        link_id = item.get("linkId")
        if isinstance(link_id, str):
            yield FormItem(link_id=link_id, path=path, data=item)
        yield from _walk(item.get("item"), path)


def _candidates(compiler: _Compiler, form_item: FormItem) -> list[Target] | None:
    """Possible targets of one answerable item; ``None`` once an explicit mapping has been reported invalid."""
    explicit = [
        extension.get("valueCoding")
        for extension in _dicts(form_item.data.get("extension"))
        if extension.get("url") == codes.ITEM_MAP_EXTENSION
    ]
    if explicit:
        target = _explicit_target(compiler, explicit[0], form_item)
        return None if target is None else [target]
    if compiler.known is not None and form_item.link_id in compiler.known.items:
        return [Target(compiler.known.instrument, number=compiler.known.items[form_item.link_id])]
    found: list[Target] = []
    for coding in _dicts(form_item.data.get("code")):
        found.extend(_coded_targets(compiler.registry, coding.get("system"), coding.get("code")))
    return found


def _explicit_target(compiler: _Compiler, coding: Any, form_item: FormItem) -> Target | None:
    path = f"{form_item.path}.extension"
    system = coding.get("system") if isinstance(coding, dict) else None
    code = coding.get("code") if isinstance(coding, dict) else None
    if system == codes.ITEM_SYSTEM and code == codes.UNSCORED_ITEM:
        return UNSCORED
    targets = (
        _coded_targets(compiler.registry, system, code) if system in (codes.ITEM_SYSTEM, codes.SCORE_SYSTEM) else []
    )
    if len(targets) != 1:
        compiler.fail(
            "code-invalid",
            f"the {codes.ITEM_MAP_EXTENSION} extension of item {form_item.link_id!r} must carry a valueCoding "
            f"{codes.ITEM_SYSTEM}|<instrument>.<item number> (or 'unscored') or "
            f"{codes.SCORE_SYSTEM}|<instrument>.<score>; got {system}|{code}",
            path,
        )
        return None
    return targets[0]


def _coded_targets(registry: InstrumentRegistry, system: Any, code: Any) -> list[Target]:
    if not isinstance(code, str):
        return []
    found: list[Target] = []
    for definition in registry.definitions.values():
        if system == codes.LOINC:
            found.extend(Target(definition.id, number=item.number) for item in definition.items if item.loinc == code)
            found.extend(Target(definition.id, score=spec.key) for spec in definition.scores if spec.loinc == code)
        elif system == codes.ITEM_SYSTEM:
            found.extend(
                Target(definition.id, number=item.number)
                for item in definition.items
                if codes.item_code(definition.id, item.number) == code
            )
        elif system == codes.SCORE_SYSTEM:
            found.extend(
                Target(definition.id, score=spec.key)
                for spec in definition.scores
                if codes.score_code(definition.id, spec.key) == code
            )
    return found


def _instrument(
    compiler: _Compiler, data: dict[str, Any], targets: dict[str, tuple[FormItem, list[Target]]]
) -> InstrumentDefinition | None:
    """The one instrument every mapped item can belong to (the form's panel code settles a tie)."""
    per_item = [
        {target.instrument for target in candidates if target.instrument}
        for _item, candidates in targets.values()
        if candidates != [UNSCORED]
    ]
    if not per_item:
        compiler.fail(
            "not-supported",
            "no item of this Questionnaire maps to an instrument item: add LOINC item codes or the "
            f"{codes.ITEM_MAP_EXTENSION} extension",
            f"{compiler.root}.item",
        )
        return None
    common = set.intersection(*per_item)
    if len(common) > 1:
        panels = {coding.get("code") for coding in _dicts(data.get("code")) if coding.get("system") == codes.LOINC}
        common = {
            instrument for instrument in common if compiler.registry.definitions[instrument].loinc_panel in panels
        } or common
    if len(common) != 1:
        found = sorted(set().union(*per_item))
        compiler.fail(
            "business-rule",
            f"the items map to {'several' if common else 'different'} instruments ({', '.join(found)}); "
            "a form must ask the items of exactly one instrument",
            f"{compiler.root}.item",
        )
        return None
    return compiler.registry.definitions[common.pop()]


def _form_map(
    compiler: _Compiler,
    definition: InstrumentDefinition,
    targets: dict[str, tuple[FormItem, list[Target]]],
    ignored: list[str],
) -> FormMap:
    items: dict[str, MappedItem] = {}
    totals: list[str] = []
    seen: dict[str, str] = {}
    by_number = {item.number: item for item in definition.items}
    for link_id, (form_item, candidates) in targets.items():
        target = next((t for t in candidates if t.instrument in (definition.id, None)), UNSCORED)
        if target.instrument is None:
            ignored.append(link_id)
        elif target.score is not None:
            (totals if target.score == definition.primary_score else ignored).append(link_id)
        elif target.number is not None:
            if target.number in seen:
                compiler.fail(
                    "duplicate",
                    f"items {seen[target.number]!r} and {link_id!r} both ask {definition.short_name} item "
                    f"{target.number}",
                    form_item.path,
                )
                continue
            seen[target.number] = link_id
            answers = _answers(compiler, definition, by_number[target.number], form_item)
            items[link_id] = MappedItem(link_id=link_id, item=target.number, answers=tuple(answers))
    missing = [item.number for item in definition.scored_items if item.number not in seen]
    if missing:
        compiler.fail(
            "required",
            f"the form does not ask {definition.short_name} item(s) {', '.join(missing)}, so it cannot be scored",
            f"{compiler.root}.item",
        )
    return FormMap(instrument=definition.id, items=items, totals=tuple(totals), ignored=tuple(ignored))


@dataclass(frozen=True)
class _Offered:
    """One answer the form offers, before it is matched to an option of the instrument."""

    kind: str
    system: str | None
    code: str
    weight: Decimal | None
    path: str


def _answers(compiler: _Compiler, definition: InstrumentDefinition, item: Item, form_item: FormItem) -> list[AnswerKey]:
    offered = _offered(compiler, form_item)
    options = definition.options_for(item)
    if offered is None:
        if all(option.loinc for option in options):
            compiler.warnings.append(
                Issue(
                    "informational",
                    f"the answers of item {form_item.link_id!r} are not in the form "
                    f"({form_item.data.get('answerValueSet')}); they are matched by their LOINC answer codes",
                    (form_item.path,),
                    "warning",
                )
            )
            return [AnswerKey(system=codes.LOINC, code=str(o.loinc), value=o.value) for o in options]
        compiler.fail(
            "not-supported",
            f"cannot see the answers of item {form_item.link_id!r}: its answerValueSet "
            f"{form_item.data.get('answerValueSet')!r} is not contained in the form; list answerOption or contain it",
            form_item.path,
        )
        return []
    keys = []
    for answer in offered:
        option = _option_for(compiler, definition, item, answer)
        if option is not None:
            kind = "integer" if answer.kind == "integer" else "coding"
            keys.append(AnswerKey(kind=kind, system=answer.system, code=answer.code, value=option.value))
    return keys


def _offered(compiler: _Compiler, form_item: FormItem) -> list[_Offered] | None:
    """The form's answers for an item, or ``None`` when they live in a ValueSet the form does not contain."""
    if "answerOption" in form_item.data:
        return [
            offered
            for index, option in enumerate(_dicts(form_item.data["answerOption"]))
            if (offered := _answer_option(compiler, option, f"{form_item.path}.answerOption[{index}]")) is not None
        ]
    reference = form_item.data.get("answerValueSet")
    if not isinstance(reference, str):
        return []
    value_set = _contained_value_set(compiler.contained, reference)
    if value_set is None:
        return None
    return list(_value_set_answers(value_set, f"{form_item.path}.answerValueSet"))


def _answer_option(compiler: _Compiler, option: dict[str, Any], path: str) -> _Offered | None:
    weight = _weight(option.get("extension"))
    coding = option.get("valueCoding")
    if isinstance(coding, dict) and isinstance(coding.get("code"), str):
        return _Offered("coding", _system(coding), coding["code"], weight or _weight(coding.get("extension")), path)
    integer = option.get("valueInteger")
    if isinstance(integer, int) and not isinstance(integer, bool):
        return _Offered("integer", None, str(integer), weight if weight is not None else Decimal(integer), path)
    compiler.fail("not-supported", "only valueCoding and valueInteger answer options can be scored", path)
    return None


def _contained_value_set(contained: list[dict[str, Any]], reference: str) -> dict[str, Any] | None:
    for resource in contained:
        if resource.get("resourceType") != "ValueSet":
            continue
        if reference == f"#{resource.get('id')}" or reference.partition("|")[0] == resource.get("url"):
            return resource
    return None


def _value_set_answers(value_set: dict[str, Any], path: str) -> Iterator[_Offered]:
    for include in _dicts(_dict(value_set.get("compose")).get("include")):
        system = include.get("system") if isinstance(include.get("system"), str) else None
        for concept in _dicts(include.get("concept")):
            if isinstance(concept.get("code"), str):
                yield _Offered("coding", system, concept["code"], _weight(concept.get("extension")), path)
    for contains in _dicts(_dict(value_set.get("expansion")).get("contains")):
        if isinstance(contains.get("code"), str):
            yield _Offered("coding", _system(contains), contains["code"], _weight(contains.get("extension")), path)


def _option_for(
    compiler: _Compiler, definition: InstrumentDefinition, item: Item, answer: _Offered
) -> ResponseOption | None:
    options = definition.options_for(item)
    by_code = _coded_option(definition, item, answer)
    if by_code is not None:
        if item.scored and answer.weight is not None and answer.weight != by_code.numeric_score:
            compiler.fail(
                "business-rule",
                f"the form weighs answer {answer.code!r} {answer.weight}, but {definition.short_name} item "
                f"{item.number} scores it {by_code.numeric_score}",
                answer.path,
            )
            return None
        return by_code
    if answer.weight is None:
        compiler.fail(
            "code-invalid",
            f"answer {answer.code!r} of {definition.short_name} item {item.number} has neither a code of the "
            "instrument nor a weight (ordinalValue or itemWeight)",
            answer.path,
        )
        return None
    matches = [option for option in options if option.numeric_score == answer.weight]
    if len(matches) != 1:
        compiler.fail(
            "code-invalid",
            f"answer {answer.code!r} weighs {answer.weight}, which is "
            f"{'no' if not matches else 'more than one'} option of {definition.short_name} item {item.number} "
            f"(scores {sorted({option.numeric_score for option in options})})",
            answer.path,
        )
        return None
    return matches[0]


def _coded_option(definition: InstrumentDefinition, item: Item, answer: _Offered) -> ResponseOption | None:
    """The option an answer's code names: a LOINC answer code (system LOINC or none), or our own answer code."""
    if answer.kind != "coding":
        return None
    options = definition.options_for(item)
    if answer.system in (None, codes.LOINC):
        found = next((option for option in options if option.loinc == answer.code), None)
        if found is not None:
            return found
    if answer.system == codes.answer_system(definition.id, item.option_set):
        return next((option for option in options if str(option.value) == answer.code), None)
    return None


def _weight(extensions: Any) -> Decimal | None:
    for extension in _dicts(extensions):
        if extension.get("url") in codes.WEIGHT_EXTENSIONS:
            for key in ("valueDecimal", "valueInteger"):
                value = extension.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return Decimal(str(value))
    return None


def _system(coding: dict[str, Any]) -> str | None:
    system = coding.get("system")
    return system if isinstance(system, str) else None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list_of_str(value: Any) -> list[str]:
    return [entry for entry in value if isinstance(entry, str)] if isinstance(value, list) else []
