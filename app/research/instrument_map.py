"""From the generator's latent scores to item answers on real instruments (the "display mapping" of §5.2).

The constructs map to the instruments ``change-analytics.md`` §5.1 names: D → PHQ-9 (``phq9.total``), F → Fears of
Compassion Scales, compassion from others (``fcs_from_others.total``), S → SCS-SF (``scs_sf.total``).

Each latent Y becomes a target score ``centre + scale·Y``, rounded to the nearest score the instrument can produce
and clipped to its range: the PHQ-9 map is §5.2's ``clip(round(16 + 2.5·Y_D), 0, 27)``. §5.2 only says "similar maps"
for the other two, so their constants are ours, chosen to centre each on its scale's midpoint with about ±5 latent
units across the range, and are **not norms**: FCS-FO total = clip(round(26 + 5·Y_F), 0, 52); SCS-SF mean =
clip(round(12·(3 + 0.4·Y_S))/12, 1, 5). Unstandardised effects on these scales are therefore γ·k_outcome/k_predictor,
and rounding and clipping add bias, so recovery is asserted on the latent scores.

The target is then spread over the score's items as evenly as possible (every item gets ⌊s/n⌋ above the lowest
option, and s mod n of them one more, starting at an item that rotates with patient and week), and reverse-keyed
items are answered as (lowest + highest option − keyed score). Scoring the answers with the real definition gives the
target exactly, and every answer is one of the item's options. Unscored items (PHQ-9 item 10) are left unanswered.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.scoring.definition import InstrumentDefinition, Rule


@dataclass(frozen=True)
class DisplayMap:
    construct: str
    instrument: str
    score: str
    centre: float
    scale: float


DISPLAY_MAPS = (
    DisplayMap(construct="D", instrument="phq9", score="total", centre=16.0, scale=2.5),
    DisplayMap(construct="F", instrument="fcs_from_others", score="total", centre=26.0, scale=5.0),
    DisplayMap(construct="S", instrument="scs_sf", score="total", centre=3.0, scale=0.4),
)


def target_score(definition: InstrumentDefinition, display: DisplayMap, latent: float) -> float:
    """The score the answers will produce: rounded to the instrument's grid and clipped to its range."""
    spec = definition.score(display.score)
    per_item = 1 if spec.rule is Rule.SUM else len(spec.items)
    grid = round((display.centre + display.scale * latent) * per_item)
    clipped = min(max(grid, spec.minimum * per_item), spec.maximum * per_item)
    return clipped / per_item if spec.rule is Rule.MEAN else clipped


def answers_for(
    definition: InstrumentDefinition, display: DisplayMap, latent: float, *, rotate: int = 0
) -> dict[str, int]:
    spec = definition.score(display.score)
    if spec.rule not in (Rule.SUM, Rule.MEAN):
        raise ValueError(f"{definition.id}.{spec.key} is not an item score")
    items = {item.number: item for item in definition.items}
    options = [option.numeric_score for option in definition.options_for(items[spec.items[0]])]
    lowest, highest = min(options), max(options)
    count = len(spec.items)
    target = target_score(definition, display, latent)
    keyed_sum = round(target * count) if spec.rule is Rule.MEAN else round(target)
    base, extra = divmod(keyed_sum - lowest * count, count)
    answers = {}
    for position, number in enumerate(spec.items):
        keyed = lowest + base + (1 if (position - rotate) % count < extra else 0)
        answers[number] = lowest + highest - keyed if number in spec.reverse_items else keyed
    return answers
