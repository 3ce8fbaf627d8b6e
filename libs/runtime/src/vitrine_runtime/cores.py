"""Who gets the CPU cores in a process that runs an inference engine.

The catalog runs a network (OpenVINO or PyTorch) that already uses every core, and
around it small numpy steps: a 3x3 colour matrix over a batch's pixels, a
matcher head over a few crops. numpy hands those to OpenBLAS, whose worker threads then
*spin* for a while waiting for more work. On a 2-core machine they spin on the cores
the network's next forward pass and Pillow's decoders want: measured on an AVX2-only
EPYC, a crop's network pass took 13.2 ms after a head projection and 6.7 ms without
OpenBLAS threads, and the whole embedding 17.3 ms against 9.8 (bench/matcher).
None of these matrix products is large enough to gain from a second thread. (The
detector runs no threaded BLAS in its hot path: bench-detector gave the same figures
with and without the cap, so it does not call this.)
"""

from __future__ import annotations

import threading

from threadpoolctl import ThreadpoolController

__all__ = ["limit_blas_threads"]

_lock = threading.Lock()


def limit_blas_threads(threads: int = 1) -> list[str]:
    """Cap numpy's BLAS (OpenBLAS, MKL or BLIS, as loaded) at ``threads`` for the whole
    process; returns the libraries it capped (paths), for the start-up log.

    Process-wide on purpose: the spinning threads belong to the BLAS library, not to
    the caller, so a cap scoped to one call would leave every other one spinning.
    PyTorch's own intra-op threads (``torch.set_num_threads``) are not touched.
    """
    if threads < 1:
        raise ValueError(f"BLAS needs at least one thread, not {threads}")
    import numpy  # noqa: F401 - loads the BLAS numpy uses, so the controller finds it

    with _lock:
        blas = ThreadpoolController().select(user_api="blas")
        blas.limit(limits=threads)
        return [str(info["filepath"]) for info in blas.info()]
