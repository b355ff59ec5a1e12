"""The pantry's guarantee, checked on what its topics hold after a chaos run: every ingredient
counted exactly once.

For each ingredient: start + restocked = used + reserved + left, where `restocked` counts
each restock id in `pizza-pantry` once (however often it was sent), `used` counts the
reservations (the pantry's answers on `pizza-reserved`) whose pizza was assembled, `reserved`
those neither assembled nor released, and `left` is the last level on `pizza-stock`. No level
below zero; every order decided once; every reservation ended once, used by its assembly or
released, never both; no pizza assembled without one.

Plain data in, problems out, like checks.py: no broker here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field

from pizzashop.contract import ReservationDecided, ReservationEnded, Restock, StockLevel
from pizzashop.contract.pantry import PantryEvent


@dataclass
class StockVerdict:
    reserved: int = 0  # orders whose ingredients were reserved
    used: int = 0  # reservations ended used: the pizza was assembled
    released: int = 0  # reservations ended released: cancelled before assembly
    sold_out: int = 0  # orders the pantry was short for
    restocks: int = 0  # restock ids in pizza-pantry
    restocks_sent_twice: int = 0  # of those, how many the log holds more than once
    ingredients: int = 0  # ingredients whose stock was checked
    problems: list[str] = field(default_factory=list)


@dataclass
class _Reservation:
    decided: list[ReservationDecided] = field(default_factory=list)
    ended: list[ReservationEnded] = field(default_factory=list)


def check_stock(
    events: Iterable[PantryEvent],
    start: Callable[[str], int],
    restocks_sent: Mapping[str, tuple[str, int]],
    assembled: Set[str],
) -> StockVerdict:
    """`events`: the pantry's records in each partition's order; `restocks_sent`: each restock
    the broker acknowledged (id: ingredient, amount); `assembled`: orders in pizza-assembled."""
    verdict = StockVerdict()
    reservations: dict[str, _Reservation] = defaultdict(_Reservation)
    restocks: dict[str, list[Restock]] = defaultdict(list)
    levels: dict[str, list[int]] = defaultdict(list)
    for event in events:
        match event:
            case ReservationDecided():
                reservations[event.order_id].decided.append(event)
            case ReservationEnded():
                reservations[event.order_id].ended.append(event)
            case Restock():
                restocks[event.restock_id].append(event)
            case StockLevel():
                levels[event.ingredient].append(event.left)
    verdict.problems += _restock_problems(restocks, restocks_sent, verdict)
    ledger = _ledger(reservations, assembled, verdict)
    verdict.problems += _balance_problems(ledger, restocks, levels, start, verdict)
    return verdict


def _restock_problems(
    restocks: Mapping[str, list[Restock]],
    sent: Mapping[str, tuple[str, int]],
    verdict: StockVerdict,
) -> list[str]:
    verdict.restocks = len(restocks)
    verdict.restocks_sent_twice = sum(1 for copies in restocks.values() if len(copies) > 1)
    return [
        f"restock {restock_id}: acknowledged but not in pizza-pantry"
        for restock_id in sorted(set(sent) - set(restocks))
    ]


@dataclass
class _Ledger:
    used: Counter[str] = field(default_factory=Counter)
    reserved: Counter[str] = field(default_factory=Counter)  # reserved, not yet ended
    problems: list[str] = field(default_factory=list)


def _ledger(
    reservations: Mapping[str, _Reservation], assembled: Set[str], verdict: StockVerdict
) -> _Ledger:
    ledger = _Ledger()
    for order_id in sorted(assembled - set(reservations)):
        ledger.problems.append(f"{order_id}: assembled without its ingredients reserved")
    for order_id, reservation in sorted(reservations.items()):
        problems = _reservation_problems(reservation, order_id in assembled)
        ledger.problems += [f"{order_id}: {problem}" for problem in problems]
        if not reservation.decided:
            continue
        decision = reservation.decided[0]
        if not decision.reserved:
            verdict.sold_out += 1
            continue
        verdict.reserved += 1
        # As the pantry counted it: a release put the stock back, whatever else went wrong.
        ends = reservation.ended
        if ends and not ends[0].used:
            verdict.released += 1
        elif ends or order_id in assembled:
            verdict.used += 1
            ledger.used.update(decision.ingredients)
        else:
            ledger.reserved.update(decision.ingredients)
    return ledger


def _reservation_problems(reservation: _Reservation, assembled: bool) -> list[str]:
    """A reservation ends used by its assembly (a "use" ask's record says the same, and is
    not a second end), or released by the pantry: never both, and once."""
    decided, ended = reservation.decided, reservation.ended
    if not decided:
        return [f"a reservation ended ({len(ended)} times) that the pantry never decided"]
    if len(decided) > 1:
        return [f"decided {len(decided)} times by the pantry"]
    if not decided[0].reserved:
        if assembled:
            return [f"assembled, yet the pantry was sold out of {decided[0].sold_out}"]
        return [f"sold out, yet its reservation ended {len(ended)} times"] if ended else []
    if len(ended) > 1:
        return [f"its reservation ended {len(ended)} times"]
    if ended and ended[0].used != assembled:
        how = "used" if ended[0].used else "released"
        return [f"its reservation was {how}, yet it was {'' if assembled else 'not '}assembled"]
    if not ended and not assembled:  # checked once the shop has drained: every order is final
        return ["its ingredients are still reserved"]
    return []


def _balance_problems(
    ledger: _Ledger,
    restocks: Mapping[str, list[Restock]],
    levels: Mapping[str, list[int]],
    start: Callable[[str], int],
    verdict: StockVerdict,
) -> list[str]:
    restocked: Counter[str] = Counter()
    for copies in restocks.values():
        restocked[copies[0].ingredient] += copies[0].amount
    problems = list(ledger.problems)
    ingredients = sorted({*restocked, *ledger.used, *ledger.reserved, *levels})
    verdict.ingredients = len(ingredients)
    for ingredient in ingredients:
        seen = levels.get(ingredient, [])
        if any(left < 0 for left in seen):
            problems.append(f"{ingredient}: a level below zero ({min(seen)})")
        left = seen[-1] if seen else start(ingredient)
        came, went = start(ingredient) + restocked[ingredient], ledger.used[ingredient]
        held = ledger.reserved[ingredient]
        if came != went + held + left:
            problems.append(
                f"{ingredient}: start + restocked = {came}, but used + reserved + left = "
                f"{went} + {held} + {left} = {went + held + left}"
            )
    return problems
