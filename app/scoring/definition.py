"""The validated, frozen shape of an instrument definition (the files in ``scales/``).

Cross-reference checks run when a definition is loaded, so a definition that names a missing item, reverses an item
outside its range, or has unordered bands fails at start-up, never while scoring a patient's answers.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

ItemNumber = Annotated[str, Field(pattern=r"^[1-9][0-9]*$")]
Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Direction(StrEnum):
    LOWER_IS_BETTER = "lower_is_better"
    HIGHER_IS_BETTER = "higher_is_better"


class Rule(StrEnum):
    SUM = "sum"
    """Sum of the item scores (after any reversal)."""
    MEAN = "mean"
    """Mean of the item scores (after any reversal)."""
    SUM_OF_SCORES = "sum_of_scores"
    """Sum of other scores of the same instrument."""
    MEAN_OF_SCORES = "mean_of_scores"
    """Mean of other scores of the same instrument."""


class MissingPolicy(StrEnum):
    REQUIRE_ALL = "require_all"
    """Any missing item makes the score null."""
    PRORATE = "prorate"
    """Up to ``max_missing`` missing items: sum of answered × n_items / n_answered, unrounded, marked prorated."""


class Licence(Frozen):
    summary: str
    holder: str | None = None
    text_shippable: bool
    """Whether item wording may be distributed with the product; when false, definitions carry no item text."""
    terms: str | None = None


class ResponseOption(Frozen):
    value: StrictInt | StrictStr
    """What a client sends for this option (an integer, or a code such as BDI-II's ``"1a"``)."""
    score: StrictInt | None = None
    """Numeric score of the option; defaults to ``value`` when that is an integer."""
    label: str | None = None
    loinc: str | None = None

    @model_validator(mode="after")
    def _score_is_known(self) -> ResponseOption:
        if self.score is None and not isinstance(self.value, int):
            raise ValueError(f"option {self.value!r} is not an integer, so it needs an explicit score")
        return self

    @property
    def numeric_score(self) -> int:
        if self.score is not None:
            return self.score
        assert isinstance(self.value, int)  # guaranteed by the validator above
        return self.value


class Item(Frozen):
    number: ItemNumber
    text: str | None = None
    option_set: Key = "default"
    scored: bool = True
    """Unscored items (PHQ-9 item 10) are validated and stored but never summed or required."""
    loinc: str | None = None


class Band(Frozen):
    label: Key
    lower: float
    lower_inclusive: bool = True
    """Bands are half-open on their lower bound unless a source fixes the boundary the other way (SCS "above 3.5")."""


class MissingRule(Frozen):
    policy: MissingPolicy
    max_missing: int = 0
    source: str


class Score(Frozen):
    key: Key
    label: str
    rule: Rule
    items: tuple[ItemNumber, ...] = ()
    reverse_items: tuple[ItemNumber, ...] = ()
    """Items reversed (option minimum + maximum − answer) before this score is computed."""
    components: tuple[ScoreComponent, ...] = ()
    minimum: float
    maximum: float
    direction: Direction
    bands: tuple[Band, ...] = ()
    bands_note: str | None = None
    missing: MissingRule | None = None
    loinc: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Score:
        item_rule = self.rule in (Rule.SUM, Rule.MEAN)
        if item_rule and (not self.items or self.components or self.missing is None):
            raise ValueError(f"score {self.key}: an item rule needs items and a missing rule, and no components")
        if not item_rule and (not self.components or self.items or self.reverse_items):
            raise ValueError(f"score {self.key}: a composite rule needs components and no items")
        if not set(self.reverse_items) <= set(self.items):
            raise ValueError(f"score {self.key}: reverse_items must be among its items")
        if len(set(self.items)) != len(self.items):
            raise ValueError(f"score {self.key}: an item is listed twice")
        if self.missing and self.missing.policy is MissingPolicy.PRORATE and self.rule is not Rule.SUM:
            raise ValueError(f"score {self.key}: prorating is defined for sums only")
        lowers = [band.lower for band in self.bands]
        if lowers != sorted(lowers) or len(set(lowers)) != len(lowers):
            raise ValueError(f"score {self.key}: bands must be in strictly increasing order")
        if self.bands and self.bands[0].lower > self.minimum:
            raise ValueError(f"score {self.key}: the first band must start at or below the score's minimum")
        return self


class ScoreComponent(Frozen):
    score: Key
    reverse: bool = False
    """Use (minimum + maximum − value) of the component, e.g. an SCS negative subscale mean on reversed items."""


class Flag(Frozen):
    key: Key
    item: ItemNumber
    at_least: int
    """Raised when the item's score is at least this value, whatever the totals say."""
    missing_flag: Key | None = None
    """Raised instead when the item is unanswered: a risk item is never inferred or prorated."""
    note: str


class InstrumentDefinition(Frozen):
    id: Key
    version: Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]
    name: str
    short_name: str
    citation: str
    licence: Licence
    instructions: str | None = None
    timeframe: str | None = None
    loinc_panel: str | None = None
    option_sets: dict[Key, tuple[ResponseOption, ...]]
    items: tuple[Item, ...]
    scores: tuple[Score, ...]
    primary_score: Key | None = None
    """The score a client's declared total is compared with (``total`` where the instrument has one)."""
    flags: tuple[Flag, ...] = ()
    notes: tuple[str, ...] = ()
    changelog: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _cross_references(self) -> InstrumentDefinition:
        numbers = [item.number for item in self.items]
        if numbers != [str(n) for n in range(1, len(numbers) + 1)]:
            raise ValueError(f"{self.id}: items must be numbered 1..n in order")
        items = {item.number: item for item in self.items}
        for item in self.items:
            if item.option_set not in self.option_sets:
                raise ValueError(f"{self.id}: item {item.number} uses unknown option set {item.option_set!r}")
            if item.text is not None and not self.licence.text_shippable:
                raise ValueError(f"{self.id}: item {item.number} carries text, but the licence forbids shipping it")
        for name, options in self.option_sets.items():
            values = [option.value for option in options]
            if not options or len(set(values)) != len(values):
                raise ValueError(f"{self.id}: option set {name!r} is empty or repeats a value")
        keys = [score.key for score in self.scores]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{self.id}: duplicate score key")
        seen: set[str] = set()
        for score in self.scores:
            for number in score.items:
                if number not in items or not items[number].scored:
                    raise ValueError(f"{self.id}: score {score.key} names item {number}, which is not a scored item")
            for component in score.components:
                if component.score not in seen:
                    raise ValueError(f"{self.id}: score {score.key} needs {component.score} defined before it")
            seen.add(score.key)
        if self.primary_score is not None and self.primary_score not in seen:
            raise ValueError(f"{self.id}: primary score {self.primary_score} is not defined")
        for flag in self.flags:
            if flag.item not in items:
                raise ValueError(f"{self.id}: flag {flag.key} names unknown item {flag.item}")
        return self

    @property
    def scored_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.scored)

    def options_for(self, item: Item) -> tuple[ResponseOption, ...]:
        return self.option_sets[item.option_set]

    def score(self, key: str) -> Score:
        return next(score for score in self.scores if score.key == key)


Score.model_rebuild()
