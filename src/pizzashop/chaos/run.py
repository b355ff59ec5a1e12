"""`pizzashop chaos`: the whole shop under load and random faults, then its invariants checked.

A three-node cluster of its own, two instances of each service (the pantry's too), customers
ordering and cancelling, main toppings scarce and restocked now and then; faults drawn from
`random.Random(seed)` for `duration` seconds; then the faults stop, the shop drains, and the
topics and the read model are checked (checks.py, and stock.py for the pantry's).
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pizzashop.chaos.checks import Verdict, check
from pizzashop.chaos.evidence import FinalStatuses, gather
from pizzashop.chaos.faults import Injector, draw_faults
from pizzashop.chaos.instances import ServiceInstances
from pizzashop.chaos.load import Customers, Restocking
from pizzashop.chaos.own_cluster import own_cluster, own_cluster_settings
from pizzashop.chaos.report import (
    ChaosReport,
    faults_by_kind,
    longest,
    longest_by_kind,
    median_order_seconds,
    recoveries,
)
from pizzashop.config import Settings
from pizzashop.kafka.cluster import LocalKafka
from pizzashop.kafka.lag import admin_client, group_lag
from pizzashop.menu import MAIN_TOPPINGS
from pizzashop.readmodel.store import open_readmodel
from pizzashop.readmodel.views import OrderViews

log = logging.getLogger("pizzashop.chaos")

NODES = 3
HEARTBEAT = 0.1  # the run's loop: look after the instances, inject what is due
SHOP_UP_TIMEOUT = 180.0
RESTOCK_EVERY = 4.0  # seconds between one restock and the next
FAULTS_OVER_TIMEOUT = 120.0


@dataclass(frozen=True)
class ChaosPlan:
    seed: int
    duration: float = 120.0  # seconds of load and faults
    rate: float = 4.0  # orders a second
    cancel_share: float = 0.2
    # 0.1: an order takes 1.2 to 2.5 s through the kitchen, so cancels meet every stage.
    time_scale: float = 0.1
    # Real seconds without progress before the watchdog marks an order stuck: longer than a
    # pause or a node restart normally holds an order, so a mark means a real stall.
    stuck_after: float = 40.0
    fault_gap: tuple[float, float] = (2.0, 7.0)  # seconds between one fault and the next
    # The share of the orders expected for each main topping that its stock holds at the
    # start, and that restocks bring as the run goes: some orders sell out, some restocks
    # come in time for the next.
    scarcity: float = 0.5
    drain_timeout: float = 300.0
    state_dir: Path | None = None  # None: a folder of its own, removed after a clean run


def run_chaos(settings: Settings, plan: ChaosPlan, say: Callable[[str], None]) -> ChaosReport:
    state_dir = plan.state_dir or Path(tempfile.mkdtemp(prefix="pizzashop-chaos-"))
    settings = own_cluster_settings(settings, state_dir, NODES, plan.time_scale).replace(
        stuck_after=plan.stuck_after, pantry_stock=scarce_main_toppings(plan)
    )
    say(f"chaos run, seed {plan.seed}, in {state_dir}")
    with own_cluster(settings, NODES) as (settings, kafka):
        report = ChaosRun(settings, plan, kafka, say).run()
    report.state_dir = str(state_dir)
    if report.passed and plan.state_dir is None:
        shutil.rmtree(state_dir, ignore_errors=True)
        report.state_dir = ""
    return report


def scarce_main_toppings(plan: ChaosPlan) -> tuple[tuple[str, int], ...]:
    wanted = plan.rate / len(MAIN_TOPPINGS) * plan.duration  # orders for each, roughly
    return tuple((topping, max(1, round(wanted * plan.scarcity))) for topping in MAIN_TOPPINGS)


def restocking(plan: ChaosPlan) -> Restocking:
    """One main topping at a time: about `scarcity` of what the customers ask for."""
    return Restocking(
        MAIN_TOPPINGS, RESTOCK_EVERY, max(1, round(plan.rate * RESTOCK_EVERY * plan.scarcity))
    )


class ChaosRun:
    def __init__(
        self, settings: Settings, plan: ChaosPlan, kafka: LocalKafka, say: Callable[[str], None]
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.say = say
        self.started = time.monotonic()
        self.instances = ServiceInstances(settings, settings.state_dir / "logs")
        self.customers = Customers(
            settings,
            random.Random(f"{plan.seed}-customers"),
            plan.rate,
            plan.cancel_share,
            # Within the time an order takes: some cancels come first, some in the oven,
            # some too late.
            cancel_within=30 * plan.time_scale,
            restocking=restocking(plan),
        )
        self.injector = Injector(settings, kafka, self.instances, self.customers.burst, self.clock)
        self.violations: list[str] = []

    def clock(self) -> float:
        """Seconds since the faults began."""
        return time.monotonic() - self.started

    def run(self) -> ChaosReport:
        self.instances.start_all()
        final_statuses = FinalStatuses(self.settings)
        final_statuses.start()
        try:
            self.customers.start()
            self._wait_for_the_first_order(final_statuses)
            self.started = time.monotonic()
            self._inject_faults()
            self._let_the_faults_end()
            faults_over = self.clock()
            self.customers.stop()
            self._drain(final_statuses)
            drained_in = self.clock() - faults_over
            self.violations += self.injector.close()
            verdict = check(gather(self.settings, self.customers.placed, self.injector.poison))
        finally:
            self.customers.stop()
            self.instances.stop_all()
            final_statuses.stop()
        self.violations += self.instances.unexpected_exits
        return self._report(verdict, final_statuses.final_at, drained_in)

    def _report(
        self, verdict: Verdict, final_at: Mapping[str, float], drained_in: float
    ) -> ChaosReport:
        placed, happened = self.customers.placed, self.injector.happened
        recovered = recoveries(happened, placed.accepted_at, final_at, self.started)
        return ChaosReport(
            seed=self.plan.seed,
            duration=self.plan.duration,
            rate=self.plan.rate,
            cancel_share=self.plan.cancel_share,
            faults=[f"{h.began:7.1f}s  {h.fault}" for h in happened],
            faults_by_kind=faults_by_kind(happened),
            accepted=len(placed.accepted_at),
            cancels_sent=len(placed.cancels_sent),
            retries=placed.retries,
            orders_in_log=verdict.orders_in_log,
            delivered=verdict.delivered,
            cancelled=verdict.cancelled,
            sold_out=verdict.sold_out,
            stock=verdict.stock,
            lost=len(verdict.lost),
            duplicated=len(verdict.duplicated),
            stuck_marks=verdict.stuck_marks,
            poison_written=len(self.injector.poison),
            poison_parked=verdict.poison_parked,
            median_order_seconds=median_order_seconds(placed.accepted_at, final_at),
            longest_recovery=longest(recovered),
            longest_recovery_by_kind=longest_by_kind(recovered),
            drained_in=drained_in,
            wedged_restarts=len(self.instances.wedged_restarts),
            violations=self.violations + verdict.violations,
        )

    def _wait_for_the_first_order(self, final_statuses: FinalStatuses) -> None:
        """The faults begin once the shop works: its first order is final."""
        deadline = time.monotonic() + SHOP_UP_TIMEOUT
        while not final_statuses.final_at:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the shop finished no order within {SHOP_UP_TIMEOUT:g}s")
            self.instances.look_after()
            time.sleep(HEARTBEAT)
        self.say(f"the shop is up ({len(self.customers.placed.accepted_at)} orders so far)")

    def _inject_faults(self) -> None:
        faults = draw_faults(random.Random(self.plan.seed), NODES, self.plan.fault_gap)
        wait, fault = next(faults)
        due = self.clock() + wait
        while self.clock() < self.plan.duration:
            self.instances.look_after()
            self.injector.look_after()
            if self.clock() >= due and self.injector.can_do(fault):
                self.injector.do(fault)
                wait, fault = next(faults)
                due = self.clock() + wait
            time.sleep(HEARTBEAT)
        self.customers.stop_ordering()
        self.say(f"{self.clock():7.1f}s  no more faults or orders; letting the shop drain")

    def _let_the_faults_end(self) -> None:
        """Paused instances resumed, killed ones back, the node up again."""
        deadline = time.monotonic() + FAULTS_OVER_TIMEOUT
        while not self.injector.all_over() and time.monotonic() < deadline:
            self.instances.look_after()
            self.injector.look_after()
            time.sleep(HEARTBEAT)
        if not self.injector.all_over():
            self.violations.append(f"the faults were not over {FAULTS_OVER_TIMEOUT:g}s later")

    def _drain(self, final_statuses: FinalStatuses) -> None:
        """Until every accepted order is final in the read model and no group lags, or the
        drain's deadline (then what is left shows as violations)."""
        deadline = time.monotonic() + self.plan.drain_timeout
        admin = admin_client(self.settings)
        read_model = open_readmodel(self.settings.readmodel_url)
        unfinished = set(self.customers.placed.accepted_at)
        lag: dict[str, int] = {}
        try:
            while time.monotonic() < deadline:
                self.instances.look_after()
                # The statuses seen on the topic first: the read model is asked only about those.
                unfinished = {
                    o
                    for o in unfinished
                    if o not in final_statuses.final_at or not _final_in(read_model.orders, o)
                }
                lag = _total_lag(self.settings, admin)
                if not unfinished and lag and not any(lag.values()):
                    return
                time.sleep(0.5)  # the shop works meanwhile; look again
        finally:
            read_model.close()
        self.violations.append(
            f"not drained within {self.plan.drain_timeout:g}s: {len(unfinished)} orders not "
            f"final, lag {lag}"
        )


def _final_in(orders: OrderViews, order_id: str) -> bool:
    view = orders.get_order(order_id)
    return view is not None and view.status.is_final


def _total_lag(settings: Settings, admin: AdminClient) -> dict[str, int]:
    try:
        lag = group_lag(settings, admin)
    except KafkaException:
        return {}  # a partition between leaders: ask again
    return {service: sum(behind.values()) for service, behind in lag.items()}
