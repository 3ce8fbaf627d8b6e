"""What an SRE relies on, checked on the running platform: the trace id follows an order
into the ledger's events and logs; every /metrics passes promtool; a real Prometheus
(Debian's package) scrapes the platform and counts the orders this test placed; the
ledger imbalance it reports is 0; consumer lag is measured from the broker.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from vitrine_runtime import metrics
from vitrine_runtime.lag import ConsumerLagMonitor, partition_lag
from vitrine_runtime.topic_admin import ensure_topics
from vitrine_schemas.money import Money
from vitrine_schemas.topics import Topic
from vitrine_stack.broker import TansuBroker
from vitrine_stack.client import PlatformClient, Seller, eventually
from vitrine_stack.platform import EmbeddedPlatform
from vitrine_stack.supervisor import free_port

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy/prometheus/rules/vitrine.rules.yml"
# No other test trades in Swedish kronor: the counters below are this module's alone.
CURRENCY = "SEK"


def tool(name: str) -> str:
    venv_tool = Path(sys.executable).parent / name
    found = str(venv_tool) if venv_tool.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make deploy-check` (it installs it)")
    return found


def traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


async def sellable_product(seller: Seller, price_minor: int) -> dict[str, Any]:
    shop = await seller.shop()
    product = await seller.product(
        shop, price=Money(amount_minor=price_minor, currency=CURRENCY), stock=100
    )
    await seller.sellable(product)
    return product


async def place_order(
    client: PlatformClient,
    product: dict[str, Any],
    quantity: int,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    order: dict[str, Any] = await client.call(
        "checkout",
        "POST",
        "/orders",
        json={
            "buyer_id": f"buyer-{uuid.uuid4().hex[:6]}",
            "lines": [{"product_id": product["product_id"], "quantity": quantity}],
            "attribution": {
                "source": "creator_tagged",
                "creator_id": f"creator-{uuid.uuid4().hex[:6]}",
                "video_id": "video-observability",
            },
        },
        headers={"Idempotency-Key": str(uuid.uuid4()), **(headers or {})},
        expect=201,
    )
    return order


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    return next((v.decode() for k, v in record.headers or () if k == name), None)


def records_of(
    records: list[ConsumerRecord[bytes, bytes]], order_id: str, event_type: str
) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        r
        for r in records
        if header(r, "event-type") == event_type
        and json.loads(r.value or b"{}").get("data", {}).get("order_id") == order_id
    ]


def has_event(
    order_id: str, event_type: str
) -> Callable[[list[ConsumerRecord[bytes, bytes]]], bool]:
    return lambda records: bool(records_of(records, order_id, event_type))


# --- trace context ------------------------------------------------------------------------


@pytest.mark.e2e
async def test_trace_id_follows_an_order_into_ledger_events_and_logs(
    platform: EmbeddedPlatform, client: PlatformClient, seller: Seller
) -> None:
    product = await sellable_product(seller, 12_500)
    trace_id, parent = traceparent()
    response = await client["checkout"].post(
        "/orders",
        json={
            "buyer_id": "buyer-trace",
            "lines": [{"product_id": product["product_id"], "quantity": 1}],
            "attribution": {"source": "none"},
        },
        headers={"Idempotency-Key": str(uuid.uuid4()), "traceparent": parent},
    )
    assert response.status_code == 201, response.text
    order_id = response.json()["order_id"]
    # The answer continues the caller's trace (same trace id, a span of its own).
    assert response.headers["traceparent"].split("-")[1] == trace_id

    # The refund continues the same flow: the caller sends the same trace context.
    refund = await client["checkout"].post(
        f"/orders/{order_id}/refunds",
        json={},
        headers={"Idempotency-Key": str(uuid.uuid4()), "traceparent": parent},
    )
    assert refund.status_code in (200, 201), refund.text

    for topic, event_type in (
        ("orders", "order.placed"),
        ("orders", "order.refunded"),
        ("commissions", "commission.accrued"),
        ("commissions", "commission.reversed"),
    ):
        records = await client.read_topic(topic, has_event(order_id, event_type), timeout_s=60)
        (record,) = records_of(records, order_id, event_type)
        envelope = json.loads(record.value or b"{}")
        assert envelope["correlation_id"] == trace_id, event_type
        assert header(record, "correlation-id") == trace_id, event_type
        assert (header(record, "traceparent") or "").split("-")[1] == trace_id, event_type

    def traced_lines() -> list[dict[str, Any]]:
        lines = []
        for line in platform.log_path("commission").read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("correlation_id") == trace_id and entry.get("order_id") == order_id:
                lines.append(entry)
        return lines

    async def both_postings_logged() -> set[str] | None:
        # The ledger's log lines of both postings carry the trace id, whichever path
        # (one event at a time or a batch) the consumer took.
        events = {str(entry.get("event")) for entry in traced_lines()}
        return events if {"sale_booked", "refund_booked"} <= events else None

    await eventually(both_postings_logged, timeout_s=30, what="commission's traced log lines")


# --- /metrics -----------------------------------------------------------------------------


@pytest.mark.e2e
async def test_every_service_exposition_passes_promtool(
    platform: EmbeddedPlatform, client: PlatformClient
) -> None:
    promtool = tool("promtool")
    for name in platform.service_names:
        response = await client[name].get("/metrics")
        assert response.status_code == 200, name
        assert "vitrine_http_requests_total" in response.text or name == "detector"
        result = await asyncio.to_thread(
            subprocess.run,
            [promtool, "check", "metrics"],
            input=response.text,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


# --- a real Prometheus --------------------------------------------------------------------


class Prometheus:
    """Debian's Prometheus server as a child process, scraping the platform every second."""

    def __init__(self, data_dir: Path, targets: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": "vitrine",
                    "static_configs": [
                        {"targets": [url.split("://", 1)[1]], "labels": {"service": name}}
                        for name, url in targets.items()
                    ],
                }
            ],
        }
        self.config_path = data_dir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = data_dir / "prometheus.log"
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Prometheus:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - starts and returns at once
                [
                    tool("prometheus"),
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.http = httpx.AsyncClient(base_url=self.url, timeout=10)

        async def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
            return (await self.http.get("/-/ready")).status_code == 200

        await eventually(ready, timeout_s=60, what="prometheus ready")
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()
        if self.process is not None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait, 10)

    async def query(self, promql: str) -> list[dict[str, Any]]:
        response = await self.http.get("/api/v1/query", params={"query": promql})
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def value(self, promql: str) -> float | None:
        result = await self.query(promql)
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])


@pytest.fixture
async def prometheus(platform: EmbeddedPlatform, tmp_path: Path) -> AsyncIterator[Prometheus]:
    targets = {name: platform.service_url(name) for name in platform.service_names}
    async with Prometheus(tmp_path, targets) as server:
        yield server


async def until(probe: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 90) -> None:
    async def check() -> bool:
        return await probe()

    await eventually(check, timeout_s=timeout_s, every_s=0.5, what=what)


@pytest.mark.e2e
@pytest.mark.slow
async def test_prometheus_counts_the_orders_placed_and_sees_a_balanced_ledger(
    platform: EmbeddedPlatform,
    client: PlatformClient,
    seller: Seller,
    prometheus: Prometheus,
) -> None:
    async def all_targets_up() -> bool:
        up = await prometheus.query('up{job="vitrine"}')
        return len(up) == len(platform.service_names) and all(r["value"][1] == "1" for r in up)

    await until(all_targets_up, "every service scraped")
    orders = f'sum(vitrine_orders_placed_total{{currency="{CURRENCY}"}})'
    gmv = f'sum(vitrine_gmv_minor_total{{currency="{CURRENCY}"}})'
    orders_before = await prometheus.value(orders) or 0.0
    gmv_before = await prometheus.value(gmv) or 0.0

    price = 4_990
    product = await sellable_product(seller, price)
    quantities = [1, 3, 2, 1, 5]
    placed = [await place_order(client, product, q) for q in quantities]
    assert all(o["total"]["currency"] == CURRENCY for o in placed)

    async def counted() -> bool:
        return await prometheus.value(orders) == orders_before + len(quantities)

    await until(counted, f"Prometheus to count {len(quantities)} {CURRENCY} orders")
    assert await prometheus.value(gmv) == gmv_before + price * sum(quantities)

    # The ledger is checked by the commission service on its own timer: no one reads
    # the trial balance here, and the gauge must still appear, at 0, for this currency.
    imbalance = f'vitrine_ledger_imbalance_minor{{service="commission", currency="{CURRENCY}"}}'

    async def ledger_checked() -> bool:
        return await prometheus.value(imbalance) is not None

    await until(ledger_checked, f"the ledger imbalance gauge for {CURRENCY}")
    assert await prometheus.value(imbalance) == 0
    assert await prometheus.value("max(abs(vitrine_ledger_imbalance_minor))") == 0
    assert await prometheus.value("max(vitrine_ledger_imbalanced_transactions)") == 0

    # Commission consumed every order: its group's lag on `orders`, read from the broker.
    lag = 'sum(vitrine_consumer_lag_messages{service="commission", topic="orders"})'

    async def caught_up() -> bool:
        return await prometheus.value(lag) == 0

    await until(caught_up, "commission's lag on orders to reach 0")

    # The alert rules load and evaluate against real series without errors, and the
    # ledger alert is quiet.
    rules = (await prometheus.http.get("/api/v1/rules")).json()["data"]["groups"]
    evaluated = [r for group in rules for r in group["rules"]]
    assert evaluated
    assert all(r["health"] != "err" for r in evaluated), [
        (r["name"], r.get("lastError")) for r in evaluated if r["health"] == "err"
    ]
    assert await prometheus.query('ALERTS{alertname="VitrineLedgerImbalance"}') == []


# --- consumer lag, against a real broker --------------------------------------------------


def test_partition_lag_counts_from_the_start_when_nothing_was_committed() -> None:
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    assert partition_lag({a: 10, b: 4}, {a: 7}) == {a: 3, b: 4}
    assert partition_lag({a: 10}, {a: 12}) == {a: 0}  # a stale end offset is not negative


async def test_lag_monitor_reads_committed_offsets_from_the_broker(tmp_path: Path) -> None:
    async with TansuBroker(log_path=tmp_path / "tansu.log") as broker:
        servers = broker.bootstrap_servers
        topic = f"lag-{uuid.uuid4().hex[:6]}"
        await ensure_topics(servers, [Topic(topic, "k", 2, 3_600_000, "lag test")])
        producer = AIOKafkaProducer(bootstrap_servers=servers)
        await producer.start()
        try:
            for partition, count in ((0, 7), (1, 3)):
                for _ in range(count):
                    await producer.send_and_wait(topic, b"x", partition=partition)
        finally:
            await producer.stop()

        monitor = ConsumerLagMonitor(servers, "lag-group", [topic])
        try:
            p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
            assert await monitor.measure() == {p0: 7, p1: 3}
            member = AIOKafkaConsumer(
                bootstrap_servers=servers, group_id="lag-group", enable_auto_commit=False
            )
            await member.start()
            try:
                member.assign([p0, p1])
                await member.commit({p0: 5, p1: 3})
            finally:
                await member.stop()
            assert await monitor.measure() == {p0: 2, p1: 0}
            gauge = metrics.CONSUMER_LAG.labels(topic, "0")._value.get()
            assert gauge == 2
        finally:
            await monitor.stop()


async def test_periodic_gauge_survives_a_failing_refresh() -> None:
    calls: list[float] = []

    async def refresh() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise ConnectionError("database away")

    gauge = metrics.PeriodicGauge("test", refresh, interval_s=0.01)
    await gauge.start()
    try:
        await eventually(lambda: asyncio.sleep(0, len(calls) >= 3), timeout_s=5)
    finally:
        await gauge.stop()
    assert len(calls) >= 3
