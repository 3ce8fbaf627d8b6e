from collections.abc import Iterator

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from vitrine_runtime.cores import limit_blas_threads


@pytest.fixture
def blas() -> Iterator[ThreadpoolController]:
    """numpy's BLAS, with its thread count put back after the test."""
    controller = ThreadpoolController().select(user_api="blas")
    before = {info["filepath"]: info["num_threads"] for info in controller.info()}
    yield controller
    for library in controller.lib_controllers:
        library.set_num_threads(before[library.filepath])


def test_caps_the_blas_numpy_uses(blas: ThreadpoolController) -> None:
    if not blas.lib_controllers:
        pytest.fail("numpy loaded no BLAS that threadpoolctl can see")
    for library in blas.lib_controllers:
        library.set_num_threads(2)
    if {info["num_threads"] for info in blas.info()} != {2}:
        pytest.fail("this BLAS keeps one thread whatever it is told: nothing to cap")

    capped = limit_blas_threads()

    assert capped == [library.filepath for library in blas.lib_controllers]
    assert [info["num_threads"] for info in blas.info()] == [1] * len(capped)
    # numpy still computes, on the caller's thread.
    assert np.allclose(np.ones((64, 64)) @ np.ones((64, 64)), 64.0)


def test_takes_a_larger_cap(blas: ThreadpoolController) -> None:
    limit_blas_threads(2)
    assert {info["num_threads"] for info in blas.info()} == {2}


def test_refuses_zero_threads() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        limit_blas_threads(0)
