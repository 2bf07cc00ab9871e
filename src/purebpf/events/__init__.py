"""Events from BPF programs: :class:`RingBuffer` (BPF_MAP_TYPE_RINGBUF, 5.8+),
:class:`PerfEventArray` (BPF_MAP_TYPE_PERF_EVENT_ARRAY, per-CPU perf rings) and
:class:`Poller` (several of them in one epoll wait)."""

from .perfbuf import PerfEventArray as PerfEventArray
from .poll import Poller as Poller
from .ringbuf import RingBuffer as RingBuffer

__all__ = ["PerfEventArray", "Poller", "RingBuffer"]
