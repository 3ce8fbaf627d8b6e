"""What kind of CPU a benchmark ran on, in one line beside its figures.

The networks' speed here depends less on the clock than on which instruction sets the CPU
has: OpenVINO computes the embedder in bfloat16 only where bf16 is native (AVX512-BF16,
AMX) and runs the detector's INT8 kernels several times faster with VNNI. The same
bench on two 2-core machines of this workplace gave 0.58 and 0.39 of pure decoding; a
figure without its CPU kind cannot be compared with another.

``ONEDNN_MAX_CPU_ISA=AVX2`` runs the networks with the kernels an AVX2-only CPU would use
(:mod:`vitrine_runtime.isa`; decoding, numpy and the clock are unchanged): a figure
measured so says it.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from vitrine_runtime.isa import isa_cap

# cpuinfo flag -> how the figures' notes name it, in the order they are printed.
NOTABLE_FLAGS = (
    ("avx2", "AVX2"),
    ("avx512f", "AVX-512"),
    ("avx512_bf16", "bf16"),
    ("avx512_vnni", "VNNI"),
    ("avx_vnni", "AVX-VNNI"),
    ("amx_bf16", "AMX"),
)
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True, slots=True)
class CpuKind:
    model: str
    cores: int
    features: tuple[str, ...]  # the NOTABLE_FLAGS names it has, in their order
    known: bool = True  # False where the flags could not be read (not Linux)
    isa_cap: str | None = None  # ONEDNN_MAX_CPU_ISA's value, where one is set

    def describe(self) -> str:
        """E.g. ``AMD EPYC, 2 cores: AVX2 (no AVX-512, bf16, VNNI, AVX-VNNI, AMX)``."""
        return self._instruction_sets() + (
            f"; networks' kernels capped at {self.isa_cap} (ONEDNN_MAX_CPU_ISA)"
            if self.isa_cap
            else ""
        )

    def _instruction_sets(self) -> str:
        head = f"{self.model}, {self.cores} cores"
        if not self.known:
            return f"{head}: instruction sets unknown"
        if not self.features:
            return f"{head}: none of " + ", ".join(name for _, name in NOTABLE_FLAGS)
        missing = [name for _, name in NOTABLE_FLAGS if name not in self.features]
        lacks = f" (no {', '.join(missing)})" if missing else ""
        return f"{head}: {', '.join(self.features)}{lacks}"


def cpu_kind(cpuinfo: str | None = None, environ: Mapping[str, str] | None = None) -> CpuKind:
    """This machine's CPU kind; ``cpuinfo`` is the text of /proc/cpuinfo (read if None),
    ``environ`` the environment oneDNN will read (``os.environ`` if None)."""
    kind = _cpu_kind(cpuinfo)
    return replace(kind, isa_cap=isa_cap(environ))


def _cpu_kind(cpuinfo: str | None) -> CpuKind:
    cores = os.cpu_count() or 1
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text()
        except OSError:
            return CpuKind(platform.processor() or platform.machine(), cores, (), known=False)
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:  # the first processor stands for all
            fields[key.strip()] = value.strip()
    if "flags" not in fields:
        return CpuKind(fields.get("model name") or platform.machine(), cores, (), known=False)
    flags = set(fields["flags"].split())
    features = tuple(name for flag, name in NOTABLE_FLAGS if flag in flags)
    return CpuKind(fields.get("model name") or platform.machine(), cores, features)
