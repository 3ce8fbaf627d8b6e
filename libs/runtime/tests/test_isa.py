"""Reading oneDNN's ISA cap, so that OpenVINO is not asked for bf16 it cannot compute."""

from __future__ import annotations

import pytest

from vitrine_runtime.isa import bf16_allowed, isa_cap


@pytest.mark.parametrize(
    ("environ", "cap"),
    [
        ({}, None),
        ({"ONEDNN_MAX_CPU_ISA": ""}, None),
        ({"ONEDNN_MAX_CPU_ISA": "all"}, None),
        ({"ONEDNN_MAX_CPU_ISA": "default"}, None),
        ({"ONEDNN_MAX_CPU_ISA": "avx2"}, "AVX2"),
        ({"DNNL_MAX_CPU_ISA": "AVX512_CORE_VNNI"}, "AVX512_CORE_VNNI"),
        # oneDNN reads its own name first, as here.
        ({"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "ALL"}, "AVX2"),
    ],
)
def test_the_cap_is_read_from_either_name(environ: dict[str, str], cap: str | None) -> None:
    assert isa_cap(environ) == cap


@pytest.mark.parametrize("level", ["AVX2", "avx2_vnni", "AVX512_CORE", "AVX512_CORE_VNNI", "SSE41"])
def test_levels_without_bf16_arithmetic_rule_it_out(level: str) -> None:
    assert not bf16_allowed({"ONEDNN_MAX_CPU_ISA": level})


@pytest.mark.parametrize("level", ["AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX10_1_512_AMX"])
def test_levels_with_bf16_allow_it(level: str) -> None:
    assert bf16_allowed({"ONEDNN_MAX_CPU_ISA": level})


@pytest.mark.parametrize("environ", [{}, {"ONEDNN_MAX_CPU_ISA": "DEFAULT"}])
def test_no_cap_allows_it(environ: dict[str, str]) -> None:
    assert bf16_allowed(environ)
