"""The CPU kind printed beside benchmark figures, read from /proc/cpuinfo text."""

from __future__ import annotations

from vitrine_stack.machine import cpu_kind

AVX2_EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 ssse3 fma avx avx2 bmi2 sha_ni
bogomips\t: 4899.99

processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 ssse3 fma avx avx2 bmi2 sha_ni avx512f
"""

SAPPHIRE_RAPIDS = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C
flags\t\t: avx avx2 avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_int8 amx_tile
"""


def test_an_avx2_only_cpu_says_what_it_lacks() -> None:
    kind = cpu_kind(AVX2_EPYC, environ={})
    assert kind.model == "AMD EPYC 7B13"
    # The first processor stands for all (the second's stray avx512f is not counted).
    assert kind.features == ("AVX2",)
    assert kind.describe().endswith(": AVX2 (no AVX-512, bf16, VNNI, AVX-VNNI, AMX)")


def test_a_cpu_with_native_bf16_and_int8_lists_them_in_order() -> None:
    kind = cpu_kind(SAPPHIRE_RAPIDS, environ={})
    assert kind.features == ("AVX2", "AVX-512", "bf16", "VNNI", "AMX")
    assert kind.describe().endswith(": AVX2, AVX-512, bf16, VNNI, AMX (no AVX-VNNI)")


def test_without_flags_the_kind_is_unknown_not_empty() -> None:
    kind = cpu_kind("processor\t: 0\nmodel name\t: Something\n", environ={})
    assert not kind.known
    assert kind.describe().endswith("instruction sets unknown")


def test_this_machine_is_read() -> None:
    kind = cpu_kind()
    assert kind.cores >= 1
    assert kind.model


def test_a_cpu_with_none_of_them_says_so() -> None:
    kind = cpu_kind("processor\t: 0\nmodel name\t: Old\nflags\t\t: fpu sse2 avx\n", environ={})
    assert kind.features == ()
    assert (
        kind.describe()
        == f"Old, {kind.cores} cores: none of AVX2, AVX-512, bf16, VNNI, AVX-VNNI, AMX"
    )


def test_a_cap_on_the_networks_kernels_is_named_beside_the_cpu() -> None:
    # Figures measured with AVX-512 switched off must not pass for this CPU's own.
    kind = cpu_kind(SAPPHIRE_RAPIDS, environ={"ONEDNN_MAX_CPU_ISA": "avx2"})
    assert kind.describe().endswith(
        "(no AVX-VNNI); networks' kernels capped at AVX2 (ONEDNN_MAX_CPU_ISA)"
    )
    assert cpu_kind(SAPPHIRE_RAPIDS, environ={"DNNL_MAX_CPU_ISA": "AVX2"}).isa_cap == "AVX2"


def test_no_cap_or_all_is_no_cap() -> None:
    for environ in ({}, {"ONEDNN_MAX_CPU_ISA": "ALL"}, {"ONEDNN_MAX_CPU_ISA": " "}):
        kind = cpu_kind(SAPPHIRE_RAPIDS, environ=environ)
        assert kind.isa_cap is None
        assert "capped" not in kind.describe()
