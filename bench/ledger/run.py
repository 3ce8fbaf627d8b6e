"""`make bench-ledger`: how fast the ledger posts, against the broker and end to end.

One run on an embedded platform (Tansu in memory, PostgreSQL, checkout and commission as
their own processes, as in `make up`):

1. Ledger: N `order.placed` events are produced to `orders` first. The raw consume rate
   of that topic with aiokafka and no processing is measured, then commission starts
   (`--commission-replicas`, 2 by default: processes of one consumer group sharing the
   topic's 4 partitions, as a Deployment's pods do) and the rate at which it posts them
   to the ledger (transactions committed, counted in PostgreSQL) is measured from its
   first posting to its last. Ratio = posting / raw.
2. End to end: M orders through checkout's HTTP API from C concurrent keep-alive
   connections; each order's latency runs from the start of its POST to the
   `commission.accrued` event of its posting on the `commissions` topic (the broker
   timestamp the relay's producer stamped), i.e. until the accrual is visible.

Targets (issue 4): ledger >= 5,000 events/s and >= 0.25 of the raw consume rate; end to
end >= 1,000 orders/s with p99 < 1 s. The figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import (
    Attribution,
    AttributionSource,
    OrderLine,
    OrderPlaced,
    ProductStatus,
    ProductUpserted,
    ShopKind,
)
from vitrine_schemas.money import Money
from vitrine_stack.platform import EmbeddedPlatform

TARGET_LEDGER_EPS = 5000
TARGET_RATIO = 0.25
TARGET_E2E_OPS = 1000
TARGET_P99_S = 1.0


class CpuMeter:
    """CPU seconds the platform's processes spend (other jobs share the two cores, so
    wall-clock rates alone would hide where the time goes)."""

    def __init__(self, platform: EmbeddedPlatform) -> None:
        self.platform = platform
        self.start: dict[str, float] = {}

    def sample(self) -> dict[str, float]:
        pids: dict[str, int | None] = {
            name: process.pid if process.running else None
            for name, process in self.platform.services.items()
        }
        pids["postgres"] = self.platform.postgres.pid if self.platform.postgres else None
        pids["tansu"] = self.platform.broker.pid if self.platform.broker else None
        pids["bench"] = os.getpid()
        used: dict[str, float] = {}
        for name, pid in pids.items():
            if pid is None:
                continue
            try:
                root = psutil.Process(pid)
                procs = [root] if name == "bench" else [root, *root.children(recursive=True)]
                used[name] = sum(sum(p.cpu_times()[:2]) for p in procs)
            except psutil.Error:
                continue
        return used

    def __enter__(self) -> CpuMeter:
        self.start = self.sample()
        return self

    def __exit__(self, *_: object) -> None:
        self.used = _since(self.start, self.sample())

    def per(self, count: int) -> str:
        return _per(self.used, count)


def _per(used: dict[str, float], count: int) -> str:
    parts = [f"{k} {v / count * 1e6:.0f}" for k, v in sorted(used.items()) if v > 0.01]
    return ", ".join(parts) + " CPU-µs each"


def _since(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    return {k: end[k] - start.get(k, 0.0) for k in end}


def order_event(n: int) -> Envelope[OrderPlaced]:
    currency, price = [("EUR", 1999), ("JPY", 1500), ("KWD", 12345)][n % 3]
    unit = Money(amount_minor=price, currency=currency)
    quantity = 1 + n % 3
    order = OrderPlaced(
        order_id=f"bench-{n:07d}-{uuid.uuid4().hex[:6]}",
        buyer_id=f"buyer-{n % 997}",
        shop_id=f"shop-{n % 50}",
        seller_id=f"seller-{n % 50}",
        shop_kind=ShopKind.THIRD_PARTY,
        lines=[
            OrderLine(
                product_id=f"p-{n % 200}",
                title="Bench product",
                quantity=quantity,
                unit_price=unit,
                commission_bps=1000 + n % 2000,
            )
        ],
        total=Money(amount_minor=price * quantity, currency=currency),
        platform_fee_bps=500,
        attribution=Attribution(
            source=AttributionSource.CREATOR_TAGGED,
            creator_id=f"creator-{n % 300}",
            video_id=f"v-{n % 1000}",
        ),
        placed_at=datetime.now(UTC),
    )
    return Envelope.wrap(order, producer="checkout")


async def prefill(bootstrap: str, count: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=10, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        sends = []
        for n in range(count):
            envelope = order_event(n)
            sends.append(
                await producer.send(
                    "orders",
                    envelope.to_bytes(),
                    key=envelope.partition_key.encode(),
                    headers=[(k, v.encode()) for k, v in envelope.headers().items()],
                )
            )
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, count: int) -> tuple[float, float]:
    """(events/s from the first record to the last, seconds including the group join)."""
    consumer = AIOKafkaConsumer(
        "orders",
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,  # as the commission consumer's batches
    )
    started = time.perf_counter()
    await consumer.start()
    seen, first = 0, 0.0
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            if batch and not first:
                first = time.perf_counter()
            seen += sum(len(records) for records in batch.values())
            if batch:
                await consumer.commit()  # as a consumer that keeps its place would
        last = time.perf_counter()
    finally:
        await consumer.stop()
    return (count - 0) / max(last - first, 1e-9), last - started


async def ledger_rate(
    platform: EmbeddedPlatform, count: int, meter: CpuMeter
) -> tuple[float, float, float, str]:
    """Start commission on the pre-filled topic; (events/s first to last posting, seconds
    from the first posting, seconds from process start, CPU per event first to last
    posting: without the processes' start-up)."""
    conn = await asyncpg.connect(platform.database_url)
    try:
        started = time.perf_counter()
        # Every replica at once, as a Deployment's pods start; they share the group.
        start = asyncio.gather(
            *(platform.start_service(name) for name in platform.replica_names("commission"))
        )
        first_at, first_count = 0.0, 0
        cpu_at_first: dict[str, float] = {}
        while True:
            try:
                posted = await conn.fetchval(
                    "SELECT count(*) FROM commission.transactions WHERE order_id LIKE 'bench-%'"
                )
            except asyncpg.UndefinedTableError:
                posted = 0
            now = time.perf_counter()
            if posted and not first_at:
                first_at, first_count = now, posted
                cpu_at_first = meter.sample()
            if posted >= count:
                break
            if now - started > 600:
                raise TimeoutError(f"commission posted {posted} of {count} in 600 s")
            await asyncio.sleep(0.05)
        await start
    finally:
        await conn.close()
    steady = _per(_since(cpu_at_first, meter.sample()), max(count - first_count, 1))
    rate = (count - first_count) / max(now - first_at, 1e-9)
    return rate, now - first_at, now - started, steady


# --- end to end --------------------------------------------------------------------------


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client: the load generator shares the two cores with
    the system under test, so it must cost little per request."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{head}\r\n".encode()
            + body
        )
        status_line, _, rest = (await self.reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
        length = 0
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def accruals(
    bootstrap: str, seen: dict[str, float], ready: asyncio.Event, stop: asyncio.Event
) -> None:
    """Record, per order, the broker timestamp of its commission.accrued event."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition("commissions", p) for p in range(4)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        ready.set()
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if dict(record.headers or ()).get("event-type") == b"commission.accrued":
                        seen.setdefault(record.key.decode(), record.timestamp / 1000)
    finally:
        await consumer.stop()


async def end_to_end(
    platform: EmbeddedPlatform, orders: int, concurrency: int, warmup: int, catalog: int
) -> dict[str, float]:
    products = [
        ProductUpserted(
            product_id=f"bench-p{n}",
            shop_id="bench-shop",
            seller_id="bench-seller",
            shop_kind=ShopKind.THIRD_PARTY,
            title=f"Bench product {n}",
            price=Money(amount_minor=1000 + n, currency="EUR"),
            stock=10**9,
            stock_version=1,
            commission_bps=1500,
            status=ProductStatus.ACTIVE,
            version=1,
            image_count=0,
        )
        for n in range(catalog)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=platform.bootstrap_servers, acks="all")
    await producer.start()
    for product in products:
        envelope = Envelope.wrap(product, producer="catalog")
        await producer.send(
            "products",
            envelope.to_bytes(),
            key=product.product_id.encode(),
            headers=[(k, v.encode()) for k, v in envelope.headers().items()],
        )
    await producer.flush()
    await producer.stop()
    url = platform.service_url("checkout")
    host, port = url.removeprefix("http://").split(":")
    async with httpx.AsyncClient(base_url=url, trust_env=False) as http:
        deadline = time.monotonic() + 120
        for product in products:  # checkout sells them once it consumed the snapshots
            while (await http.get(f"/products/{product.product_id}")).status_code != 200:
                if time.monotonic() > deadline:
                    raise TimeoutError("checkout did not list the bench products")
                await asyncio.sleep(0.2)

    seen: dict[str, float] = {}
    posted: dict[str, float] = {}
    http_latency: list[float] = []
    ready, stop = asyncio.Event(), asyncio.Event()
    reader = asyncio.create_task(accruals(platform.bootstrap_servers, seen, ready, stop))
    await ready.wait()
    counter = iter(range(warmup + orders))

    async def client() -> None:
        http = RawHttp(host, int(port))
        try:
            for n in counter:
                body = _order_body(n, products)
                began = time.time()
                status, payload = await http.post("/orders", body, _key())
                if status != 201:
                    raise RuntimeError(f"POST /orders -> {status}: {payload[:300]!r}")
                if n >= warmup:
                    order_id = json.loads(payload)["order_id"]
                    posted[order_id] = began
                    http_latency.append(time.time() - began)
        finally:
            await http.close()

    # Warm-up orders are placed first by the same clients; only later ones are measured.
    started = time.time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    http_done = time.time()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if all(order_id in seen for order_id in posted):
            break
        await asyncio.sleep(0.1)
    stop.set()
    await reader
    latencies = sorted(seen[o] - posted[o] for o in posted if o in seen)
    first_post = min(posted.values())
    last_accrual = max(seen[o] for o in posted if o in seen)
    return {
        "orders": len(posted),
        "missing": len(posted) - len(latencies),
        "throughput": len(latencies) / (last_accrual - first_post),
        "http_throughput": len(posted) / (http_done - first_post),
        "p50": _quantile(latencies, 0.50),
        "p99": _quantile(latencies, 0.99),
        "max": latencies[-1],
        "http_p50": _quantile(sorted(http_latency), 0.50),
        "http_p99": _quantile(sorted(http_latency), 0.99),
        "wall": time.time() - started,
    }


def _order_body(n: int, products: Sequence[ProductUpserted]) -> bytes:
    product = products[n % len(products)]
    return json.dumps(
        {
            "buyer_id": f"buyer-{n}",
            "lines": [{"product_id": product.product_id, "quantity": 1 + n % 2}],
            "attribution": {
                "source": "creator_tagged",
                "creator_id": f"creator-{n % 100}",
                "video_id": f"v-{n % 500}",
            },
        }
    ).encode()


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "BELOW TARGET"


async def run(args: argparse.Namespace) -> int:
    if args.data_dir is None:
        with tempfile.TemporaryDirectory(prefix="vitrine-bench-ledger-") as scratch:
            return await measure(args, Path(scratch))
    return await measure(args, Path(args.data_dir))


async def measure(args: argparse.Namespace, data: Path) -> int:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"bench-ledger: {os.cpu_count()} CPUs, load average {load}, data in {data}", flush=True)
    platform = EmbeddedPlatform(
        data,
        services=["checkout", "commission"],
        fresh=True,
        use_env=False,
        broker_storage="memory",
        replicas={"commission": args.commission_replicas},
    )
    async with platform:
        # Commission starts later, on a pre-filled topic; its schema exists already.
        for name in platform.replica_names("commission"):
            await platform.stop_service(name)
        t0 = time.perf_counter()
        await prefill(platform.bootstrap_servers, args.events)
        print(
            f"  pre-filled `orders` with {args.events} order.placed events"
            f" in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        raw_rate, raw_wall = await raw_consume(platform.bootstrap_servers, args.events)
        with CpuMeter(platform) as ledger_cpu:
            ledger, ledger_s, ledger_wall, steady = await ledger_rate(
                platform, args.events, ledger_cpu
            )
        ratio = ledger / raw_rate
        print(
            f"ledger ({args.events} order.placed events pre-filled on `orders`,"
            f" {args.commission_replicas} commission replica(s)):\n"
            f"  raw consume, aiokafka, no processing:  {raw_rate:>9,.0f} events/s"
            f"  ({raw_wall:.1f} s with the group join)\n"
            f"  commission posting to the ledger:      {ledger:>9,.0f} events/s"
            f"  ({ledger_s:.1f} s first to last posting; {ledger_wall:.1f} s from process"
            f" start)   [{_verdict(ledger >= TARGET_LEDGER_EPS)}: >= {TARGET_LEDGER_EPS:,}]\n"
            f"  ratio posting / raw consume:           {ratio:>9.3f}"
            f"   [{_verdict(ratio >= TARGET_RATIO)}: >= {TARGET_RATIO}]\n"
            f"  cpu per event: {ledger_cpu.per(args.events)} (with start-up)\n"
            f"  cpu per event while posting: {steady}",
            flush=True,
        )
        with CpuMeter(platform) as e2e_cpu:
            e2e = await end_to_end(
                platform, args.orders, args.concurrency, args.warmup, args.products
            )
        print(
            f"end to end ({e2e['orders']:.0f} orders, checkout HTTP -> ledger ->"
            f" commission.accrued, {args.concurrency} concurrent clients):\n"
            f"  throughput:        {e2e['throughput']:>7,.0f} orders/s"
            f"   [{_verdict(e2e['throughput'] >= TARGET_E2E_OPS)}: >= {TARGET_E2E_OPS:,}]\n"
            f"  latency p50 / p99: {e2e['p50'] * 1000:>7.0f} / {e2e['p99'] * 1000:.0f} ms"
            f" (max {e2e['max'] * 1000:.0f} ms)"
            f"   [{_verdict(e2e['p99'] < TARGET_P99_S)}: p99 < {TARGET_P99_S:.0f} s]\n"
            f"  checkout HTTP alone: {e2e['http_throughput']:,.0f} orders/s,"
            f" p50 {e2e['http_p50'] * 1000:.0f} ms, p99 {e2e['http_p99'] * 1000:.0f} ms;"
            f" accruals missing: {e2e['missing']:.0f}\n"
            f"  cpu per order: {e2e_cpu.per(int(e2e['orders']) + args.warmup)}",
            flush=True,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=30_000, help="pre-filled order.placed")
    parser.add_argument("--orders", type=int, default=5_000, help="end-to-end orders")
    parser.add_argument("--concurrency", type=int, default=32, help="HTTP connections")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured orders first")
    parser.add_argument("--products", type=int, default=500, help="catalog the orders buy from")
    parser.add_argument(
        "--commission-replicas",
        type=int,
        default=2,
        help="commission processes in one consumer group (`orders` has 4 partitions)",
    )
    parser.add_argument("--data-dir", help="default: a new temporary directory")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
