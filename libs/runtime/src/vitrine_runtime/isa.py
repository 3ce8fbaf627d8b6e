"""Which instruction sets the inference engines may use, when the environment caps them.

oneDNN, inside OpenVINO's CPU plugin, reads ``ONEDNN_MAX_CPU_ISA`` (older name
``DNNL_MAX_CPU_ISA``) once and then uses no kernel above the level it names, whatever the
CPU has. Uses: measuring on a modern CPU what an AVX2-only one would do
(``ONEDNN_MAX_CPU_ISA=AVX2``: the networks' kernels, not the clock or the caches), and
working around a CPU whose newer units misbehave (ultralytics sets it on Windows VMs that
fault on AMX).

OpenVINO, however, chooses bfloat16 inference from CPUID, not from that cap: on a CPU with
native bf16 and ``ONEDNN_MAX_CPU_ISA=AVX2``, compiling a model with the default precision
fails ("Supported primitive descriptors list is empty", the detector's INT8 model) or
crashes the process (segmentation fault, the catalog's network in bf16; both seen with
OpenVINO 2026.4 on a Xeon with AMX). So where the cap rules bf16 out, the services ask
for float32 explicitly: :func:`bf16_allowed`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["ISA_CAP_VARIABLES", "bf16_allowed", "isa_cap"]

ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")

# oneDNN's levels whose kernels OpenVINO's bf16 inference cannot run on. AVX2_VNNI_2 has
# bf16 conversions, but OpenVINO does not infer in bf16 there: float32 is the safe ask.
_LEVELS_WITHOUT_BF16 = frozenset(
    {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
)
# No cap: oneDNN 3's DEFAULT, and ALL, its value before.
_NO_CAP = frozenset({"", "DEFAULT", "ALL"})


def isa_cap(environ: Mapping[str, str] | None = None) -> str | None:
    """The level oneDNN's kernels are capped at by the environment, upper case, or None
    where nothing caps them (unset, empty, ``DEFAULT`` or ``ALL``). Read as oneDNN reads
    it: its own name first, case aside, spaces not trimmed."""
    env = os.environ if environ is None else environ
    for name in ISA_CAP_VARIABLES:
        if name in env:
            value = env[name].upper()
            return None if value.strip() in _NO_CAP else value
    return None


def bf16_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """False where the cap leaves oneDNN no bf16 kernels: ask OpenVINO for f32 then."""
    return isa_cap(environ) not in _LEVELS_WITHOUT_BF16
