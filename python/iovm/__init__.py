# SPDX-License-Identifier: MIT
"""Python bindings of iovm, the DMA memory layer for user-space drivers.

    import iovm

    with iovm.open("page_size=4K") as ctx:
        buf = ctx.alloc(4096)
        buf[:5] = b"hello"
        print(hex(buf.pa), ctx.xlate(buf, 100).contig)

Two layers:

- `iovm.raw`: every IOVM_API function of include/iovm/*.h, by its C name,
  with ctypes argument and return types, and the public structs mirrored
  (`iovm.Desc`, `iovm.ZoneInfo`...). A call that fails raises IovmError.
- Objects: Context (from open() or attach()), DmaBuffer, Zone,
  CommonBuffer, Pool, Domain, Device, Queue, MR, Rcache, CachedMR, Guest,
  DeviceServer, RemoteQueue, Subscription. Each frees what it holds on
  close() or when it is garbage collected; each holds what it was made
  from (a buffer its context, a queue its device, an MR its domain), so
  that nothing is freed under it. Context.close() closes everything made
  from it; memory views of its buffers handed out are released then, but
  slices taken from them are not: do not use them after.

Errors are IovmError (an OSError): .errno, .strerror, and .detail, what
iovm_error_detail() said.

The library is libiovm.so.0: IOVM_LIBRARY names it, else the newest
build directory of the source tree this package sits in, else the
system's.
"""

import ctypes
import enum
import errno as _errno
import itertools
import os as _os
import time as _time
import weakref

from ctypes import byref, c_bool, c_size_t, c_uint, c_uint32, c_uint64, c_void_p

from . import constants
from ._lib import (IovmError, raw, lib, path as library_path, BINDINGS, STRUCTS,
                   PA, HPA, IOVA, GPA, CtxInfo, HugepagePool, IommuGroup, SysInfo,
                   PhysArenaStats, PhysPoolStats, PhysStats, Xlate, ZoneInfo, MemEvent,
                   MemListStats, MemStats, IovaRange, DomainAttr, Fault, DomainStats,
                   MrInfo, MrKeys, MrPinning, RcacheAttr, RcacheStats, RegStats, IovaWindow, DeviceInfo,
                   DeviceVerbs, Desc, Sge, Completion, Cqe, QueueAttr, QueueStats,
                   GuestBank, GuestAttr, GuestInfo, ShareParams, ShareInfo,
                   ShareDomainParams, DeviceServerInfo, LOG_FN, ZONE_WALK_FN,
                   MEM_EVENT_FN, FAULT_FN, RQUEUE_FAULT_FN, MemMapOps, MEM_MAP_NOTIFY_FN,
                   MEM_MAP_CONTIGUOUS_FN)

# The IOVM_* constants, under their C names and without the prefix
# (iovm.IOVM_DMA_ZERO is iovm.DMA_ZERO).
for _name in dir(constants):
    if _name.startswith("IOVM_"):
        globals()[_name] = getattr(constants, _name)
        globals()[_name[5:]] = getattr(constants, _name)
del _name


def _enum(tag, cls_name):
    names = constants.ENUMS[tag]
    prefix = _os.path.commonprefix(list(names))
    prefix = prefix[:prefix.rfind("_") + 1]
    return enum.IntEnum(cls_name, [(n[len(prefix):], getattr(constants, n)) for n in names],
                        module=__name__)


LogLevel = _enum("iovm_log_level", "LogLevel")
MemEventType = _enum("iovm_mem_event_type", "MemEventType")
DomainType = _enum("iovm_domain_type", "DomainType")
FaultReason = _enum("iovm_fault_reason", "FaultReason")
FaultStage = _enum("iovm_fault_stage", "FaultStage")
DeviceKind = _enum("iovm_device_kind", "DeviceKind")
IommuApi = _enum("iovm_iommu_api", "IommuApi")
Op = _enum("iovm_op", "Op")
Status = _enum("iovm_status", "Status")
GuestPlacement = _enum("iovm_guest_placement", "GuestPlacement")


# ---------------------------------------------------------------- macros

def dma_boundary(shift):
    """IOVM_DMA_BOUNDARY(shift): must not cross a multiple of 2**shift."""
    return (int(shift) << 8) & 0xffffffff


def dma_node(node):
    """IOVM_DMA_NODE(n): on NUMA node n."""
    return ((int(node) + 1) << 16) & 0xffffffff


def version_encode(major, minor, patch):
    """IOVM_VERSION_ENCODE()."""
    return major * 10000 + minor * 100 + patch


# ---------------------------------------------------------------- functions without a context

def _s(b):
    return b.decode("utf-8", "replace") if b is not None else None


def _b(s):
    if s is None:
        return None
    return s if isinstance(s, bytes) else str(s).encode()


def strerror(err):
    """iovm_strerror(): a description of an errno (negative or positive)."""
    return _s(raw.iovm_strerror(int(err)))


def error_detail():
    """iovm_error_detail() of this thread."""
    return _s(raw.iovm_error_detail())


def version():
    """(the library's version string, its IOVM_VERSION_ENCODE number)."""
    n = c_uint()
    s = raw.iovm_version(byref(n))
    return _s(s), n.value


def log_set_level(level):
    raw.iovm_log_set_level(int(level))


_log_handler = None


def log_set_handler(fn):
    """Send the library's log messages to fn(level: LogLevel, msg: str),
    from any thread; None restores stderr."""
    global _log_handler
    if fn is None:
        raw.iovm_log_set_handler(ctypes.cast(None, LOG_FN), None)
        _log_handler = None
        return

    def cb(_arg, level, msg):
        try:
            fn(LogLevel(level) if level in LogLevel._value2member_map_ else level, _s(msg))
        except Exception:  # never unwind into C
            pass
    handler = LOG_FN(cb)
    raw.iovm_log_set_handler(handler, None)
    _log_handler = handler


def opts_help():
    """iovm_opts_help(): the options open() takes, one per line."""
    return _s(raw.iovm_opts_help())


def size_parse(s):
    """iovm_size_parse(): "64K" -> 65536."""
    v = c_uint64()
    raw.iovm_size_parse(_b(s), byref(v))
    return v.value


def sysinfo():
    """What the machine offers (iovm_sysinfo_get()), as a SysInfo copy."""
    p = ctypes.POINTER(SysInfo)()
    raw.iovm_sysinfo_get(byref(p))
    try:
        out = SysInfo()
        ctypes.pointer(out)[0] = p[0]
        return out
    finally:
        raw.iovm_sysinfo_free(p)


def uffd_feature_name(bit):
    return _s(raw.iovm_uffd_feature_name(bit))


def fault_reason_name(reason):
    return _s(raw.iovm_fault_reason_name(int(reason)))


def status_name(status):
    return _s(raw.iovm_status_name(int(status)))


def _copy(struct):
    return type(struct).from_buffer_copy(struct)


def address_of(obj, offset=0):
    """The address of obj's memory (plus offset): a DmaBuffer, Zone,
    CommonBuffer, writable Python buffer (bytearray, mmap, array) or an
    int address. A Python buffer is not kept: keep obj alive and unmoved
    (a bytearray not resized) while the address is in use."""
    if isinstance(obj, int):
        return obj + offset
    if hasattr(obj, "_address"):
        return obj._address() + offset
    c = (ctypes.c_char * 0).from_buffer(obj) if _buflen(obj) == 0 else ctypes.c_char.from_buffer(obj)
    try:
        return ctypes.addressof(c) + offset
    finally:
        del c


def _size_t(n):
    """n, checked to be a size: ctypes would cut a larger int to 64 bits
    silently, and the object would believe in bytes it does not have."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError("a size must be an int, not %s" % type(n).__name__)
    if n < 0 or n >= 1 << 64:
        raise OverflowError("size %d is not a size_t" % n)
    return n


def _bounds(size, length, offset):
    """(offset, length) of a range of a buffer of size bytes, checked."""
    n = size - offset if length is None else length
    if not isinstance(offset, int) or not isinstance(n, int):
        raise TypeError("offset and length are ints")
    if offset < 0 or n < 0 or offset + n > size:
        raise ValueError("[%d, +%d) is not inside the %d bytes" % (offset, n, size))
    return offset, n


def _view_of(address, size):
    return memoryview((ctypes.c_ubyte * size).from_address(address)).cast("B")


def _buflen(obj):
    with memoryview(obj) as m:
        return m.nbytes


def _span(obj, length=None, offset=0):
    """(address, length, what keeps the memory) of obj, for the calls that
    take a range."""
    if isinstance(obj, int):
        if length is None:
            raise TypeError("an address needs a length")
        return obj + offset, length, None
    if hasattr(obj, "_address"):
        n = obj._length() - offset if length is None else length
        return obj._address() + offset, n, obj
    n = _buflen(obj)
    keep = (ctypes.c_char * n).from_buffer(obj)   # a writable buffer, held: it cannot move
    n = n - offset if length is None else length
    return ctypes.addressof(keep) + offset, n, keep


# ---------------------------------------------------------------- resources

class _Resource:
    """Something iovm made, freed once: by close(), by its context's
    close(), or when it is garbage collected (its finalizer holds the C
    handle, never the object)."""

    _kind = "resource"
    _views = ()

    def _release_views(self):
        """Let go of the memoryviews handed out: a view must not outlive its memory."""
        for m in self._views:
            try:
                m.release()
            except Exception:
                pass
        self._views = []

    def _setup(self, ctx, ptr, destroy=None, args=None, keep=()):
        self._ctx = ctx
        self._ptr = ptr
        if destroy:
            self._fin = weakref.finalize(self, _gc_destroy, ctx._state if ctx else None,
                                         destroy, *(args if args is not None else (ptr,)), *keep)
        else:
            self._fin = None
        if ctx is not None and ctx is not self:
            ctx._register(self)

    @property
    def closed(self):
        return self._ptr is None

    def _handle(self):
        if self._ptr is None:
            raise ValueError("%s is closed" % type(self).__name__)
        if self._ctx is not None and self._ctx is not self and self._ctx._ptr is None:
            raise ValueError("the context of this %s is closed" % type(self).__name__)
        return self._ptr

    def _forget(self):
        """The C object is gone (closed here, or with its context)."""
        if self._fin is not None:
            self._fin.detach()
        self._ptr = None

    def _close_with(self, fn, *args):
        if self._ptr is None:
            return
        state = self._ctx._state if self._ctx is not None else None
        if state is not None and not state.here():
            self._forget()  # a forked child's copy: the parent's to free
            return
        if self._ctx is not None and self._ctx is not self and self._ctx._ptr is None:
            self._ptr = None
            return
        fn(*args)
        self._forget()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self._ptr is None else "%#x" % self._ptr
        return "<iovm.%s %s>" % (type(self).__name__, state)


class _CtxState:
    """What the finalizers of a context's resources share: whether it is
    open. A resource's finalizer frees nothing once the context is closed
    (iovm_close() took it all)."""
    __slots__ = ("open", "pid", "__weakref__")

    def __init__(self):
        self.open = True
        self.pid = _os.getpid()

    def here(self):
        """Whether this process made the context: a forked child holds a
        copy of the parent's objects and must free nothing of them (the
        heap's memory may be shared with the parent)."""
        return self.pid == _os.getpid()


def _gc_destroy(state, destroy, *args):
    if state is not None and (not state.open or not state.here()):
        return
    try:
        getattr(raw, destroy)(*[a for a in args if not isinstance(a, _Keep)])
    except Exception:  # at garbage collection or exit: nothing to tell
        pass


class _Keep:
    """Something a finalizer holds only to keep it alive (a callback)."""
    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj


def open(opts=""):  # noqa: A001 - iovm.open, as iovm_open
    """iovm_open(): a new Context. opts: "key=value,..." (see opts_help());
    None takes them from the IOVM_OPTS environment variable."""
    return Context(opts)


def attach(name, opts=""):
    """iovm_attach(): a Context on the share `name` of another process."""
    return Context(opts, attach=name)


class Context(_Resource):
    """An iovm context: its physical address space, DMA heap, domains,
    devices and registrations. A context manager: closed on exit."""

    def __init__(self, opts="", attach=None):
        self._state = _CtxState()
        self._registry = {}
        self._seq = itertools.count()
        p = c_void_p()
        if attach is not None:
            raw.iovm_attach(_b(attach), _b(opts), byref(p))
        else:
            raw.iovm_open(_b(opts), byref(p))
        self._ptr = p.value
        self._ctx = self
        self._fin = weakref.finalize(self, _ctx_close, self._state, p.value, self._registry)

    def _register(self, res):
        key = next(self._seq)
        self._registry[key] = weakref.ref(res)
        weakref.finalize(res, self._registry.pop, key, None)

    def close(self):
        """Close everything made from this context, then the context."""
        if self._ptr is None:
            return
        self._fin()
        self._ptr = None

    def _address(self):
        raise TypeError("a Context is not memory")

    # -- configuration and statistics

    def info(self):
        i = CtxInfo()
        raw.iovm_ctx_info(self._handle(), byref(i))
        return i

    def mem_stats(self):
        s = MemStats()
        raw.iovm_mem_stats(self._handle(), byref(s))
        return s

    def phys_stats(self):
        s = PhysStats()
        raw.iovm_phys_stats(self._handle(), byref(s))
        return s

    def reg_stats(self):
        s = RegStats()
        raw.iovm_reg_stats(self._handle(), byref(s))
        return s

    # -- DMA memory

    def alloc(self, size, align=0, flags=0):
        """iovm_dma_alloc(): a DmaBuffer of size bytes."""
        p = raw.iovm_dma_alloc(self._handle(), _size_t(size), _size_t(align), flags)
        return DmaBuffer(self, p, size)

    def zalloc(self, size, align=0, flags=0):
        p = raw.iovm_dma_zalloc(self._handle(), _size_t(size), _size_t(align), flags)
        return DmaBuffer(self, p, size)

    def buffer(self, data, align=0, flags=0):
        """A DmaBuffer holding a copy of data."""
        data = memoryview(data).cast("B")
        buf = self.alloc(max(len(data), 1), align, flags)
        buf.write(data)
        return buf

    def xlate(self, obj, offset=0):
        """iovm_dma_xlate() of obj (a DmaBuffer, Zone, CommonBuffer or an
        address) at offset: an Xlate (.pa, .hpa, .contig, .page_size, .node)."""
        x = Xlate()
        raw.iovm_dma_xlate(self._handle(), address_of(obj, offset), byref(x))
        return x

    def pa(self, obj, offset=0):
        """iovm_dma_pa(): the physical address, an int."""
        pa = PA()
        raw.iovm_dma_pa(self._handle(), address_of(obj, offset), byref(pa))
        return pa.addr

    def ptr(self, pa):
        """iovm_dma_ptr(): the address at which physical address pa is mapped."""
        return raw.iovm_dma_ptr(self._handle(), PA(int(pa)))

    def dma_size(self, obj):
        return raw.iovm_dma_size(self._handle(), address_of(obj))

    def trim(self, all=False):  # noqa: A002
        """iovm_dma_trim(): bytes given back."""
        return raw.iovm_dma_trim(self._handle(), constants.IOVM_TRIM_ALL if all else 0)

    def sync_for_device(self, obj, length=None, offset=0):
        a, n, _k = _span(obj, length, offset)
        raw.iovm_dma_sync_for_device(self._handle(), a, n)

    def sync_for_cpu(self, obj, length=None, offset=0):
        a, n, _k = _span(obj, length, offset)
        raw.iovm_dma_sync_for_cpu(self._handle(), a, n)

    # -- zones and common buffers

    def zone_reserve(self, name, size, align=0, flags=0):
        """iovm_zone_reserve(): a Zone; .created says whether it is new."""
        z = ctypes.POINTER(ZoneInfo)()
        r = raw.iovm_zone_reserve(self._handle(), _b(name), size, align, flags, byref(z))
        return Zone(self, z, created=(r == 0))

    def zone_lookup(self, name):
        z = ctypes.POINTER(ZoneInfo)()
        raw.iovm_zone_lookup(self._handle(), _b(name), byref(z))
        return Zone(self, z, created=False)

    def zones(self):
        """iovm_zone_walk(): a copy of each zone's description."""
        out = []

        def cb(_arg, z):
            out.append(_copy(z[0]))
            return 0
        raw.iovm_zone_walk(self._handle(), ZONE_WALK_FN(cb), None)
        return out

    def cbuf(self, size, noncoherent=False):
        """iovm_cbuf_alloc(): a CommonBuffer."""
        p = c_void_p()
        raw.iovm_cbuf_alloc(self._handle(), size,
                            constants.IOVM_CBUF_NONCOHERENT if noncoherent else 0, byref(p))
        return CommonBuffer(self, p.value, size)

    def subscribe(self, fn):
        """iovm_mem_event_subscribe(): fn(MemEvent) for every commit and
        release of heap pages, on the allocating thread with the heap's
        lock held (it must not allocate). It returns None or 0, or a
        negative errno to refuse a commit. A Subscription."""
        return Subscription(self, fn)

    # -- physical memory

    def pool_create(self, name, size, page_size=0, max_ranges=1):
        p = c_void_p()
        raw.iovm_pool_create(self._handle(), _b(name), size, page_size, max_ranges, byref(p))
        return Pool(self, p.value, owned=True)

    def pool_lookup(self, name):
        p = c_void_p()
        raw.iovm_pool_lookup(self._handle(), _b(name), byref(p))
        return Pool(self, p.value, owned=False)

    # -- IOMMU, devices, guests

    def domain(self, type=DomainType.MANAGED, flags=0, dma_bits=0, flush_batch=0,  # noqa: A002
               flush_timeout_us=0, fault_queue=0, reserved=None):
        """iovm_domain_create(): a Domain. reserved: [(start, len), ...]."""
        attr, keep = _domain_attr(type, flags, dma_bits, flush_batch, flush_timeout_us,
                                  fault_queue, reserved)
        p = c_void_p()
        raw.iovm_domain_create(self._handle(), byref(attr), byref(p))
        del keep
        return Domain(self, p.value, owner=self)

    def device(self, spec="sw"):
        """iovm_device_open(): a Device ("sw": the software DMA engine)."""
        p = c_void_p()
        raw.iovm_device_open(self._handle(), _b(spec), byref(p))
        return Device(self, p.value)

    def guest(self, size=0, flags=0, page_size=0, placement=GuestPlacement.AUTO, pool=None,
              banks=None, min_chunk=0, below=0, max_banks=0):
        """iovm_guest_create(): a Guest. banks: [(pa, len), ...] with
        placement BANKS."""
        attr = GuestAttr(size=size, flags=flags, page_size=page_size, placement=int(placement),
                         pool=pool._handle() if pool is not None else None,
                         min_chunk=min_chunk, below=below, max_banks=max_banks)
        arr = None
        if banks:
            arr = (GuestBank * len(banks))(*[GuestBank(pa=PA(int(a)), len=n) for a, n in banks])
            attr.banks = ctypes.cast(arr, ctypes.POINTER(GuestBank))
            attr.nr_banks = len(banks)
        p = c_void_p()
        raw.iovm_guest_create(self._handle(), byref(attr), byref(p))
        return Guest(self, p.value, pool)

    # -- sharing with other processes

    def share(self, name, heap_size=0, page_size=0, group=-1):
        """iovm_share(): share this context's DMA heap under name."""
        params = ShareParams(heap_size=heap_size, page_size=page_size, group=group)
        raw.iovm_share(self._handle(), _b(name), byref(params))

    def share_info(self):
        i = ShareInfo()
        raw.iovm_share_info(self._handle(), byref(i))
        return i

    def share_reap(self):
        return raw.iovm_share_reap(self._handle())

    def share_check(self):
        raw.iovm_share_check(self._handle())

    def share_domain(self, name, iova_size=0, tables=0, flags=0, flush_batch=0,
                     flush_timeout_us=0):
        """iovm_share_domain_create(): a shared Domain, this process's view."""
        params = ShareDomainParams(iova_size=iova_size, tables=tables, flags=flags,
                                   flush_batch=flush_batch, flush_timeout_us=flush_timeout_us)
        p = c_void_p()
        raw.iovm_share_domain_create(self._handle(), _b(name), byref(params), byref(p))
        return Domain(self, p.value, owner=self)

    def share_domain_open(self, name):
        p = c_void_p()
        raw.iovm_share_domain_open(self._handle(), _b(name), byref(p))
        return Domain(self, p.value, owner=self)

    def serve(self, name, workers=0):
        """iovm_device_serve(): serve this context's software engine to the
        share's other processes. A DeviceServer."""
        p = c_void_p()
        raw.iovm_device_serve(self._handle(), _b(name), workers, byref(p))
        return DeviceServer(self, p.value)

    def rqueue(self, name, depth=0):
        """iovm_rqueue_open(): a RemoteQueue on the device process name."""
        p = c_void_p()
        raw.iovm_rqueue_open(self._handle(), _b(name), depth, byref(p))
        return RemoteQueue(self, p.value)


def _ctx_close(state, ptr, registry):
    """Close a context: first what must go before iovm_close() (remote
    queues, device servers), then forget everything else, which
    iovm_close() destroys top down. In a forked child, only forget."""
    objs = [r() for _k, r in sorted(registry.items())]
    objs = [o for o in objs if o is not None]
    if not state.here():
        for o in objs:
            o._release_views()
            o._forget()
        state.open = False
        return
    for o in reversed(objs):
        if o._kind in ("rqueue", "devserver") and o._ptr is not None:
            try:
                o.close()
            except Exception:
                o._forget()
    for o in reversed(objs):
        o._release_views()
        o._forget()
    state.open = False
    try:
        raw.iovm_close(ptr)
    except Exception:
        pass


class DmaBuffer(_Resource):
    """DMA memory from the heap. buf[i], buf[a:b] and buf.view (a
    memoryview) reach the bytes; buf.addr is its address, buf.pa its
    physical address, buf.iova(domain) its IOVA."""

    _kind = "buffer"

    def __init__(self, ctx, ptr, size):
        self.size = size
        self._views = []
        self._setup(ctx, ptr, "iovm_dma_free", (ctx._ptr, ptr))

    def _address(self):
        return self._handle()

    def _length(self):
        return self.size

    @property
    def addr(self):
        return self._handle()

    def __len__(self):
        return self.size

    @property
    def view(self):
        """A memoryview of the buffer's bytes (released when it is freed)."""
        m = _view_of(self._handle(), self.size)
        self._views.append(m)
        return m

    def __getitem__(self, i):
        # A view of its own, let go at once: indexing keeps nothing.
        with _view_of(self._handle(), self.size) as v:
            r = v[i]
            return bytes(r) if isinstance(r, memoryview) else r

    def __setitem__(self, i, val):
        with _view_of(self._handle(), self.size) as v:
            v[i] = val

    def read(self, length=None, offset=0):
        offset, n = _bounds(self.size, length, offset)
        return ctypes.string_at(self._handle() + offset, n)

    def write(self, data, offset=0):
        data = memoryview(data).cast("B")
        if offset < 0 or offset + len(data) > self.size:
            raise ValueError("write past the buffer")
        ctypes.memmove(self._handle() + offset, bytes(data), len(data))

    def fill(self, byte, length=None, offset=0):
        offset, n = _bounds(self.size, length, offset)
        ctypes.memset(self._handle() + offset, byte, n)

    def as_struct(self, cls, offset=0):
        """A ctypes structure of type cls over the buffer's bytes at offset
        (a Completion, say); it keeps the buffer alive."""
        if offset + ctypes.sizeof(cls) > self.size:
            raise ValueError("the structure runs past the buffer")
        s = cls.from_address(self._handle() + offset)
        s._iovm_buffer = self
        return s

    @property
    def pa(self):
        return self._ctx.pa(self)

    def xlate(self, offset=0):
        return self._ctx.xlate(self, offset)

    def iova(self, domain, offset=0):
        """iovm_dma_iova(): its IOVA in domain (one that follows the heap,
        or a VA or identity domain)."""
        return domain.iova(self, offset)

    @property
    def usable_size(self):
        return raw.iovm_dma_size(self._ctx._handle(), self._handle())

    def realloc(self, size, align=0, flags=0):
        """iovm_dma_realloc(): resize; the address may change (views of
        the old memory are released)."""
        p = raw.iovm_dma_realloc(self._ctx._handle(), self._handle(), _size_t(size), _size_t(align), flags)
        self._release_views()
        self._fin.detach()
        self._ptr = p
        self.size = size
        self._fin = weakref.finalize(self, _gc_destroy, self._ctx._state, "iovm_dma_free",
                                     self._ctx._ptr, p)

    def free(self):
        self._release_views()
        self._close_with(raw.iovm_dma_free, self._ctx._ptr, self._ptr)

    close = free


class Zone(_Resource):
    """A named zone: physically contiguous, zeroed at creation. Not freed
    when the object goes (zones are found again by name): free() frees it."""

    _kind = "zone"

    def __init__(self, ctx, zp, created):
        self._zp = zp
        self.created = created
        self._setup(ctx, ctypes.addressof(zp.contents))

    @property
    def info(self):
        self._handle()
        return _copy(self._zp[0])

    name = property(lambda self: _s(self.info.name))
    va = property(lambda self: self.info.va)
    pa = property(lambda self: self.info.pa.addr)
    size = property(lambda self: self.info.len)

    def _address(self):
        self._handle()
        return self._zp[0].va

    def _length(self):
        return self._zp[0].len

    def __len__(self):
        return self._length()

    @property
    def view(self):
        """A memoryview of the zone (released when it is freed)."""
        m = _view_of(self._address(), self._length())
        self._views = list(self._views) + [m]
        return m

    def free(self):
        self._release_views()
        self._close_with(raw.iovm_zone_free, self._ctx._ptr, self._zp)

    close = free


class CommonBuffer(_Resource):
    """A common buffer (iovm_cbuf_alloc()): 4 KiB pages scattered in
    physical memory, virtually contiguous."""

    _kind = "cbuf"

    def __init__(self, ctx, ptr, size):
        self.size = size
        self._setup(ctx, ptr, "iovm_cbuf_free")

    def _address(self):
        return raw.iovm_cbuf_ptr(self._handle())

    def _length(self):
        return self.size

    def __len__(self):
        return self.size

    @property
    def addr(self):
        return self._address()

    @property
    def view(self):
        """A memoryview of the buffer (released when it is freed)."""
        m = _view_of(self._address(), self.size)
        self._views = list(self._views) + [m]
        return m

    def pages(self):
        """The physical address of each 4 KiB page, in order."""
        n = c_uint()
        raw.iovm_cbuf_pages(self._handle(), None, 0, byref(n))
        arr = (PA * max(n.value, 1))()
        raw.iovm_cbuf_pages(self._handle(), arr, n.value, byref(n))
        return [arr[i].addr for i in range(n.value)]

    def close(self):
        self._release_views()
        self._close_with(raw.iovm_cbuf_free, self._ptr)

    free = close


class Subscription(_Resource):
    _kind = "subscription"

    def __init__(self, ctx, fn):
        def cb(_arg, ev):
            try:
                r = fn(_copy(ev[0]))
            except Exception:
                return -_errno.EIO
            return int(r or 0)
        cfn = MEM_EVENT_FN(cb)
        p = c_void_p()
        raw.iovm_mem_event_subscribe(ctx._handle(), cfn, None, byref(p))
        self._cfn = cfn
        self._setup(ctx, p.value, "iovm_mem_event_unsubscribe", (ctx._ptr, p.value),
                    keep=(_Keep(cfn),))

    def close(self):
        self._close_with(raw.iovm_mem_event_unsubscribe, self._ctx._ptr, self._ptr)

    unsubscribe = close


class Pool(_Resource):
    _kind = "pool"

    def __init__(self, ctx, ptr, owned):
        self._setup(ctx, ptr, "iovm_pool_destroy" if owned else None)

    def close(self):
        self._close_with(raw.iovm_pool_destroy, self._ptr)

    destroy = close


def _domain_attr(type, flags, dma_bits, flush_batch, flush_timeout_us,  # noqa: A002
                 fault_queue, reserved):
    attr = DomainAttr(type=int(type), flags=flags, dma_bits=dma_bits, flush_batch=flush_batch,
                      flush_timeout_us=flush_timeout_us, fault_queue=fault_queue)
    arr = None
    if reserved is not None:
        arr = (IovaRange * max(len(reserved), 1))(
            *[IovaRange(start=IOVA(int(s)), len=n) for s, n in reserved])
        attr.reserved = ctypes.cast(arr, ctypes.POINTER(IovaRange))
        attr.nr_reserved = len(reserved)
    return attr, arr


def _iova_in(iova):
    return IOVA(constants.IOVM_ADDR_INVALID if iova is None else int(iova))


_RW = constants.IOVM_MAP_READ | constants.IOVM_MAP_WRITE


class Domain(_Resource):
    """An IO address space (iovm_domain_create()), a guest's stage 2, a
    nested stage 1, or a shared domain."""

    _kind = "domain"

    def __init__(self, ctx, ptr, owner, owned=True):
        self._owner = owner          # what must outlive it: the context, or a guest
        self._fault_cb = None
        self._setup(ctx, ptr, "iovm_domain_destroy" if owned else None)
        self._owned = owned

    def close(self):
        if not self._owned:
            self._forget()
            return
        self._close_with(raw.iovm_domain_destroy, self._ptr)

    destroy = close

    def map(self, pa, length, perm=_RW, iova=None):
        """iovm_domain_map(): map physical memory; the IOVA (an int)."""
        v = _iova_in(iova)
        raw.iovm_domain_map(self._handle(), byref(v), PA(int(pa)), length, perm)
        return v.addr

    def map_gpa(self, gpa, length, perm=_RW, iova=None):
        v = _iova_in(iova)
        raw.iovm_domain_map_gpa(self._handle(), byref(v), GPA(int(gpa)), length, perm)
        return v.addr

    def map_pages(self, pages, perm=_RW, iova=None):
        """iovm_domain_map_pages(): 4 KiB pages (physical addresses) at
        consecutive IOVAs."""
        v = _iova_in(iova)
        arr = (PA * max(len(pages), 1))(*[PA(int(p)) for p in pages])
        raw.iovm_domain_map_pages(self._handle(), byref(v), arr, len(pages), perm)
        return v.addr

    def map_ptr(self, obj, length=None, perm=_RW, offset=0):
        """iovm_domain_map_ptr(): map heap memory by its address."""
        a, n, _k = _span(obj, length, offset)
        v = IOVA()
        raw.iovm_domain_map_ptr(self._handle(), a, n, perm, byref(v))
        return v.addr

    def unmap(self, iova, length):
        raw.iovm_domain_unmap(self._handle(), IOVA(int(iova)), length)

    def flush(self):
        raw.iovm_domain_flush(self._handle())

    def iova(self, obj, offset=0):
        """iovm_dma_iova(): the IOVA of heap memory, interior addresses too."""
        v = IOVA()
        raw.iovm_dma_iova(self._handle(), address_of(obj, offset), byref(v))
        return v.addr

    def translate(self, iova):
        """iovm_domain_translate(): (pa, perm) that iova maps to."""
        pa, perm = PA(), c_uint32()
        raw.iovm_domain_translate(self._handle(), IOVA(int(iova)), byref(pa), byref(perm))
        return pa.addr, perm.value

    def read_dirty(self, iova, length, clear=False):
        """(accessed, dirty) of [iova, iova+length)."""
        a, d = c_bool(), c_bool()
        raw.iovm_domain_read_dirty(self._handle(), IOVA(int(iova)), length, clear,
                                   byref(a), byref(d))
        return a.value, d.value

    def set_fault_handler(self, fn):
        """fn(Fault) -> 0 when resolved (the access is retried) or a
        negative errno; called on the device's thread. None removes it."""
        if fn is None:
            raw.iovm_domain_set_fault_handler(self._handle(), ctypes.cast(None, FAULT_FN), None)
            self._fault_cb = None
            return

        def cb(_arg, _dom, f):
            try:
                return int(fn(_copy(f[0])) or 0)
            except Exception:
                return -_errno.EIO
        cfn = FAULT_FN(cb)
        raw.iovm_domain_set_fault_handler(self._handle(), cfn, None)
        self._fault_cb = cfn

    def fault_pop(self):
        """The oldest fault recorded, or None."""
        f = Fault()
        try:
            raw.iovm_domain_fault_pop(self._handle(), byref(f))
        except IovmError as e:
            if e.errno == _errno.EAGAIN:
                return None
            raise
        return f

    def stats(self):
        s = DomainStats()
        raw.iovm_domain_stats(self._handle(), byref(s))
        return s

    def register(self, obj, length=None, access=None, on_demand=False, offset=0):
        """iovm_mr_reg(): register memory (a writable Python buffer, held
        while registered, or an address and length). access defaults to
        local read and write. An MR."""
        if access is None:
            access = constants.IOVM_ACCESS_LOCAL_READ | constants.IOVM_ACCESS_LOCAL_WRITE
        if on_demand:
            access |= constants.IOVM_ACCESS_ON_DEMAND
        a, n, keep = _span(obj, length, offset)
        p = c_void_p()
        raw.iovm_mr_reg(self._handle(), a, n, access, byref(p))
        return MR(self, p.value, keep)

    def register_async(self, obj, length=None, access=None, threads=0, chunk_shift=0, offset=0):
        """iovm_mr_reg_async(): register memory pinned, returning at once
        while threads pin it in chunks (threads 0: one per CPU, at most 8;
        chunk_shift 0: 32 MiB chunks). An MR: wait() for the part to use."""
        if access is None:
            access = constants.IOVM_ACCESS_LOCAL_READ | constants.IOVM_ACCESS_LOCAL_WRITE
        a, n, keep = _span(obj, length, offset)
        p = c_void_p()
        flags = (threads & 0xff) | ((chunk_shift & 0x3f) << 8)
        raw.iovm_mr_reg_async(self._handle(), a, n, access, flags, byref(p))
        return MR(self, p.value, keep)

    def register_implicit(self, access=None):
        """An implicit on-demand registration of the whole address space."""
        if access is None:
            access = constants.IOVM_ACCESS_LOCAL_READ | constants.IOVM_ACCESS_LOCAL_WRITE
        p = c_void_p()
        raw.iovm_mr_reg(self._handle(), None, ctypes.c_size_t(-1).value,
                        access | constants.IOVM_ACCESS_ON_DEMAND, byref(p))
        return MR(self, p.value, None)

    def rcache(self, max_regions=0, max_bytes=0):
        """iovm_rcache_create(): an Rcache."""
        attr = RcacheAttr(max_regions=max_regions, max_bytes=max_bytes)
        p = c_void_p()
        raw.iovm_rcache_create(self._handle(), byref(attr), byref(p))
        return Rcache(self, p.value)


class MR(_Resource):
    """A memory registration."""

    _kind = "mr"

    def __init__(self, domain, ptr, keep):
        self.domain = domain
        self._keep = keep
        self._setup(domain._ctx, ptr, "iovm_mr_dereg")

    def close(self):
        self._close_with(raw.iovm_mr_dereg, self._ptr)
        self._keep = None

    dereg = close

    def info(self):
        i = MrInfo()
        raw.iovm_mr_query(self._handle(), byref(i))
        return i

    query = info
    lkey = property(lambda self: self.info().lkey)
    rkey = property(lambda self: self.info().rkey)

    def iova(self, obj=None, length=1, offset=0):
        """iovm_mr_iova(): the IOVA of an address inside the MR (its start
        by default)."""
        a = self.info().addr if obj is None else address_of(obj)
        v = IOVA()
        raw.iovm_mr_iova(self._handle(), (a or 0) + offset, length, byref(v))
        return v.addr

    def keys(self, obj, length=1, offset=0):
        """iovm_mr_keys(): the keys that reach an address inside the MR, and
        the range they reach (an implicit MR's child, on a verbs device
        without implicit ODP)."""
        k = MrKeys()
        raw.iovm_mr_keys(self._handle(), address_of(obj) + offset, length, byref(k))
        return k

    def wait(self, obj=None, length=None, timeout_ms=-1, offset=0):
        """iovm_mr_wait(): whether the part (the whole MR by default) is
        usable within timeout_ms (-1: as long as it takes); raises the
        error that stopped the pinning."""
        if obj is None:
            i = self.info()
            a, n = i.addr + offset, (i.len - offset if length is None else length)
        else:
            a, n, _k = _span(obj, length, offset)
        try:
            raw.iovm_mr_wait(self._handle(), a, n, timeout_ms)
        except IovmError as e:
            if e.errno == _errno.ETIMEDOUT:
                return False
            raise
        return True

    def ready(self):
        """iovm_mr_ready(): (usable whole, MrPinning); raises the error
        that stopped the pinning."""
        p = MrPinning()
        try:
            raw.iovm_mr_ready(self._handle(), byref(p))
        except IovmError as e:
            if e.errno == _errno.EINPROGRESS:
                return False, p
            raise
        return True, p

    def advise(self, obj=None, length=None, write=False, offset=0):
        """iovm_mr_advise(): prefetch (on-demand MRs)."""
        if obj is None:
            i = self.info()
            a, n = i.addr + offset, (i.len - offset if length is None else length)
        else:
            a, n, _k = _span(obj, length, offset)
        raw.iovm_mr_advise(self._handle(), a, n, constants.IOVM_ADVISE_WRITE if write else 0)


class Rcache(_Resource):
    """A registration cache."""

    _kind = "rcache"

    def __init__(self, domain, ptr):
        self.domain = domain
        self._setup(domain._ctx, ptr, "iovm_rcache_destroy")

    def close(self):
        self._close_with(raw.iovm_rcache_destroy, self._ptr)

    destroy = close

    def get(self, obj, length=None, access=None, offset=0):
        """iovm_rcache_get(): a CachedMR, held until put() (or close, or
        its collection)."""
        if access is None:
            access = constants.IOVM_ACCESS_LOCAL_READ | constants.IOVM_ACCESS_LOCAL_WRITE
        a, n, keep = _span(obj, length, offset)
        p = c_void_p()
        raw.iovm_rcache_get(self._handle(), a, n, access, byref(p))
        return CachedMR(self, p.value, keep)

    def stats(self):
        s = RcacheStats()
        raw.iovm_rcache_stats(self._handle(), byref(s))
        return s


class CachedMR(MR):
    """An MR held from a registration cache."""

    _kind = "cached_mr"

    def __init__(self, cache, ptr, keep):
        self.cache = cache
        self.domain = cache.domain
        self._keep = keep
        self._setup(cache._ctx, ptr, "iovm_rcache_put", (cache._ptr, ptr))

    def put(self):
        self._close_with(raw.iovm_rcache_put, self.cache._ptr, self._ptr)
        self._keep = None

    close = put
    dereg = put


class Device(_Resource):
    """A device: the software DMA engine ("sw"), a VFIO or a verbs device."""

    _kind = "device"

    def __init__(self, ctx, ptr):
        self._domains = {}      # pasid -> Domain: attached, kept alive
        self._guests = {}       # pasid -> Guest assigned to
        self._setup(ctx, ptr, "iovm_device_close")

    def close(self):
        self._close_with(raw.iovm_device_close, self._ptr)
        self._domains.clear()

    @property
    def id(self):
        return raw.iovm_device_id(self._handle())

    def attach(self, domain, pasid=constants.IOVM_PASID_NONE):
        raw.iovm_device_attach(self._handle(), domain._handle(), pasid)
        self._domains[pasid] = domain

    def detach(self, pasid=constants.IOVM_PASID_NONE):
        raw.iovm_device_detach(self._handle(), pasid)
        self._domains.pop(pasid, None)

    def fault_pop(self):
        f = Fault()
        try:
            raw.iovm_device_fault_pop(self._handle(), byref(f))
        except IovmError as e:
            if e.errno == _errno.EAGAIN:
                return None
            raise
        return f

    def query(self):
        i = DeviceInfo()
        raw.iovm_device_query(self._handle(), byref(i))
        return i

    info = query

    def verbs(self):
        v = DeviceVerbs()
        raw.iovm_device_verbs(self._handle(), byref(v))
        return v

    def bar(self, bar):
        """(address, length) of PCI BAR bar, mapped."""
        p, n = c_void_p(), c_size_t()
        raw.iovm_device_bar(self._handle(), bar, byref(p), byref(n))
        return p.value, n.value

    def config_read(self, off, length):
        buf = ctypes.create_string_buffer(max(length, 1))
        raw.iovm_device_config_read(self._handle(), off, buf, length)
        return int.from_bytes(buf.raw[:length], "little")

    def config_write(self, off, value, length):
        buf = ctypes.create_string_buffer(int(value).to_bytes(length, "little"), max(length, 1))
        raw.iovm_device_config_write(self._handle(), off, buf, length)

    def msi(self, eventfd):
        raw.iovm_device_msi(self._handle(), eventfd)

    def queue(self, depth=0, polled=True, cpu=None, sq_addr=None, cq_addr=None):
        """iovm_queue_create(): a Queue of the engine; polled (run by
        Queue.process() on the calling thread) unless polled=False."""
        flags = constants.IOVM_QUEUE_POLLED if polled else 0
        attr = QueueAttr(depth=depth)
        if cpu is not None:
            flags |= constants.IOVM_QUEUE_CPU
            attr.cpu = cpu
        if sq_addr is not None or cq_addr is not None:
            flags |= constants.IOVM_QUEUE_RINGS_AT
            attr.sq_addr = int(sq_addr or 0)
            attr.cq_addr = int(cq_addr or 0)
        attr.flags = flags
        p = c_void_p()
        raw.iovm_queue_create(self._handle(), byref(attr), byref(p))
        return Queue(self, p.value, polled)


def _desc(desc, fields):
    if desc is None:
        desc = Desc(**{k: int(v) for k, v in fields.items()})
    elif fields:
        raise TypeError("give a Desc or its fields, not both")
    return desc


class _QueueOps:
    def run(self, desc=None, timeout=10.0, **fields):
        """Submit one descriptor and wait for its completion: its Cqe.
        Other completions reaped meanwhile are kept for reap()."""
        desc = _desc(desc, fields)
        self.submit(desc)
        deadline = _time.monotonic() + timeout
        while True:
            if getattr(self, "polled", False):
                self.process(1)
            for c in self.reap(64):
                if c.tag == desc.tag:
                    return c
                self._pending.append(c)
            if _time.monotonic() > deadline:
                raise TimeoutError("no completion for tag %d" % desc.tag)
            if not getattr(self, "polled", False):
                _time.sleep(0.0005)


class Queue(_Resource, _QueueOps):
    """A queue of a device's engine."""

    _kind = "queue"

    def __init__(self, device, ptr, polled):
        self.device = device
        self.polled = polled
        self._pending = []
        self._setup(device._ctx, ptr, "iovm_queue_destroy")

    def close(self):
        self._close_with(raw.iovm_queue_destroy, self._ptr)

    destroy = close

    def submit(self, desc=None, **fields):
        """iovm_queue_submit() of a Desc, or of its fields:
        q.submit(op=iovm.Op.COPY, src=..., dst=..., len=4096, tag=1)."""
        raw.iovm_queue_submit(self._handle(), byref(_desc(desc, fields)))

    def process(self, budget=1 << 30):
        """iovm_queue_process(): run descriptors here (polled queues)."""
        return raw.iovm_queue_process(self._handle(), budget)

    def reap(self, max=16):  # noqa: A002
        """iovm_queue_reap(): a list of Cqe."""
        out, self._pending = self._pending[:max], self._pending[max:]
        if len(out) < max:
            arr = (Cqe * (max - len(out)))()
            n = raw.iovm_queue_reap(self._handle(), arr, max - len(out))
            out += [_copy(arr[i]) for i in range(n)]
        return out

    def stats(self):
        s = QueueStats()
        raw.iovm_queue_stats(self._handle(), byref(s))
        return s


class Guest(_Resource):
    """A guest's memory and stage 2 (iovm_guest_create())."""

    _kind = "guest"

    def __init__(self, ctx, ptr, pool=None):
        self._pool = pool
        self._setup(ctx, ptr, "iovm_guest_destroy")

    def close(self):
        self._close_with(raw.iovm_guest_destroy, self._ptr)

    destroy = close

    def info(self):
        i = GuestInfo()
        raw.iovm_guest_info(self._handle(), byref(i))
        return i

    def banks(self):
        n = c_uint()
        raw.iovm_guest_banks(self._handle(), None, 0, byref(n))
        arr = (GuestBank * max(n.value, 1))()
        raw.iovm_guest_banks(self._handle(), arr, n.value, byref(n))
        return [_copy(arr[i]) for i in range(n.value)]

    def ptr(self, gpa):
        """(address, bytes contiguous from there) of guest physical gpa."""
        n = c_size_t()
        p = raw.iovm_guest_ptr(self._handle(), GPA(int(gpa)), byref(n))
        return p, n.value

    def view(self, gpa, length):
        p, n = self.ptr(gpa)
        if length > n:
            raise ValueError("the range leaves the bank")
        return memoryview((ctypes.c_ubyte * length).from_address(p)).cast("B")

    def shutdown(self):
        raw.iovm_guest_shutdown(self._handle())

    def start(self):
        raw.iovm_guest_start(self._handle())

    def reboot(self):
        raw.iovm_guest_reboot(self._handle())

    def stage2(self):
        """Its stage 2: a Domain the guest owns (closing it frees nothing)."""
        p = c_void_p()
        raw.iovm_guest_stage2(self._handle(), byref(p))
        return Domain(self._ctx, p.value, owner=self, owned=False)

    def assign(self, device, pasid=constants.IOVM_PASID_NONE, identity=False):
        raw.iovm_guest_assign(self._handle(), device._handle(), pasid,
                              constants.IOVM_ASSIGN_IDENTITY if identity else 0)
        device._guests[pasid] = self

    def unassign(self, device, pasid=constants.IOVM_PASID_NONE):
        raw.iovm_guest_unassign(self._handle(), device._handle(), pasid)
        device._guests.pop(pasid, None)

    def domain(self, dma_bits=0, fault_queue=0, reserved=None):
        """iovm_guest_domain_create(): a nested stage-1 Domain over its stage 2."""
        attr, keep = _domain_attr(DomainType.MANAGED, 0, dma_bits, 0, 0, fault_queue, reserved)
        p = c_void_p()
        raw.iovm_guest_domain_create(self._handle(), byref(attr), byref(p))
        del keep
        return Domain(self._ctx, p.value, owner=self)


class DeviceServer(_Resource):
    """iovm_device_serve(): this context's engine, served to the share."""

    _kind = "devserver"

    def __init__(self, ctx, ptr):
        self._setup(ctx, ptr, "iovm_device_server_stop")

    def info(self):
        i = DeviceServerInfo()
        raw.iovm_device_server_info(self._handle(), byref(i))
        return i

    def close(self):
        self._close_with(raw.iovm_device_server_stop, self._ptr)

    stop = close


class RemoteQueue(_Resource, _QueueOps):
    """A queue on a device process of the share (iovm_rqueue_open())."""

    _kind = "rqueue"
    polled = False

    def __init__(self, ctx, ptr):
        self._pending = []
        self._mrs = {}
        self._fault_cb = None
        self._setup(ctx, ptr, "iovm_rqueue_close")

    def close(self):
        self._close_with(raw.iovm_rqueue_close, self._ptr)
        self._mrs.clear()

    @property
    def pasid(self):
        return raw.iovm_rqueue_pasid(self._handle())

    def map(self, obj, length=None, perm=_RW, offset=0):
        a, n, _k = _span(obj, length, offset)
        v = IOVA()
        raw.iovm_rqueue_map(self._handle(), a, n, perm, byref(v))
        return v.addr

    def unmap(self, iova, length):
        raw.iovm_rqueue_unmap(self._handle(), IOVA(int(iova)), length)

    def map_mr(self, mr, perm=_RW):
        v = IOVA()
        raw.iovm_rqueue_map_mr(self._handle(), mr._handle(), perm, byref(v))
        self._mrs[id(mr)] = mr
        return v.addr

    def unmap_mr(self, mr):
        raw.iovm_rqueue_unmap_mr(self._handle(), mr._handle())
        self._mrs.pop(id(mr), None)

    def submit(self, desc=None, **fields):
        raw.iovm_rqueue_submit(self._handle(), byref(_desc(desc, fields)))

    def reap(self, max=16):  # noqa: A002
        out, self._pending = self._pending[:max], self._pending[max:]
        if len(out) < max:
            arr = (Cqe * (max - len(out)))()
            n = raw.iovm_rqueue_reap(self._handle(), arr, max - len(out))
            out += [_copy(arr[i]) for i in range(n)]
        return out

    def set_fault_handler(self, fn):
        """fn(address, access) -> 0 once the page is mapped, or a negative
        errno; None answers no page request."""
        if fn is None:
            raw.iovm_rqueue_set_fault_handler(self._handle(), ctypes.cast(None, RQUEUE_FAULT_FN),
                                              None)
            self._fault_cb = None
            return

        def cb(_arg, addr, access):
            try:
                return int(fn(addr, access) or 0)
            except Exception:
                return -_errno.EIO
        cfn = RQUEUE_FAULT_FN(cb)
        raw.iovm_rqueue_set_fault_handler(self._handle(), cfn, None)
        self._fault_cb = cfn


__all__ = [
    "IovmError", "raw", "constants", "open", "attach", "Context", "DmaBuffer", "Zone",
    "CommonBuffer", "Subscription", "Pool", "Domain", "MR", "Rcache", "CachedMR", "Device",
    "Queue", "Guest", "DeviceServer", "RemoteQueue", "Desc", "Sge", "Completion", "Cqe",
    "Op", "Status", "DomainType", "FaultReason", "FaultStage", "DeviceKind", "IommuApi",
    "LogLevel", "MemEventType", "GuestPlacement", "PA", "HPA", "IOVA", "GPA",
    "strerror", "error_detail", "version", "log_set_level", "log_set_handler", "opts_help",
    "size_parse", "sysinfo", "uffd_feature_name", "fault_reason_name", "status_name",
    "dma_boundary", "dma_node", "version_encode", "address_of", "lib", "library_path",
    "BINDINGS", "STRUCTS", "CtxInfo", "HugepagePool", "IommuGroup", "SysInfo", "PhysArenaStats",
    "PhysPoolStats", "PhysStats", "Xlate", "ZoneInfo", "MemEvent", "MemListStats", "MemStats",
    "IovaRange", "DomainAttr", "Fault", "DomainStats", "MrInfo", "MrKeys", "MrPinning", "RcacheAttr",
    "RcacheStats", "RegStats", "IovaWindow", "DeviceInfo", "DeviceVerbs", "QueueAttr", "QueueStats", "GuestBank",
    "GuestAttr", "GuestInfo", "ShareParams", "ShareInfo", "ShareDomainParams", "DeviceServerInfo",
    "LOG_FN", "ZONE_WALK_FN", "MEM_EVENT_FN", "FAULT_FN", "RQUEUE_FAULT_FN",
    "MemMapOps", "MEM_MAP_NOTIFY_FN", "MEM_MAP_CONTIGUOUS_FN",
]
