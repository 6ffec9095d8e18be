# SPDX-License-Identifier: MIT
"""The raw layer: libiovm.so.0 loaded with ctypes, the public structs
mirrored, and every IOVM_API function declared with its argument and
return types.

Every function of the raw layer raises IovmError where the C function
reports an error (a negative errno, or NULL / 0 with errno set, as its
kernel-doc says), so that scripts calling `iovm.raw.iovm_...` directly
cannot miss one; the other results come back unchanged.
tests/python/test_headers.py holds BINDINGS to the prototypes of
include/iovm/*.h and the structs to the C compiler's layout.
"""

import ctypes
import ctypes.util
import glob
import os
import threading

from ctypes import (POINTER, CFUNCTYPE, Structure, Union, c_bool, c_char,
                    c_char_p, c_int, c_int64, c_size_t, c_uint, c_uint8,
                    c_uint16, c_uint32, c_uint64, c_void_p)

from . import constants as C


# ---------------------------------------------------------------- errors

class IovmError(OSError):
    """An iovm call failed: .errno is the (positive) errno, .strerror
    iovm_strerror()'s text, .detail what iovm_error_detail() said on the
    calling thread right after the failure, .function the C function."""

    def __init__(self, err, function="", detail=""):
        err = abs(int(err))
        msg = _strerror(err)
        super().__init__(err, msg)
        self.function = function
        self.detail = detail

    def __str__(self):
        s = "[Errno %d] %s" % (self.errno, self.strerror)
        if self.detail:
            return s + ": " + self.detail   # the detail names the call
        if self.function:
            return "%s: %s" % (self.function, s)
        return s

    def __reduce__(self):
        return (type(self), (self.errno, self.function, self.detail))


def _strerror(err):
    try:
        s = lib.iovm_strerror(-err)
        return s.decode("utf-8", "replace") if s else os.strerror(err)
    except Exception:  # the library is not loaded yet, or is going away
        return os.strerror(err)


# ---------------------------------------------------------------- loading

def _candidates():
    env = os.environ.get("IOVM_LIBRARY")
    if env:
        return [env]
    out = []
    # Run from the source tree (python/iovm/ beside meson.build): the
    # newest libiovm.so.0 of a build directory there.
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.dirname(os.path.dirname(here))
    if os.path.exists(os.path.join(top, "meson.build")) and \
            os.path.exists(os.path.join(top, "include", "iovm.h")):
        built = glob.glob(os.path.join(top, "*", "libiovm.so.0"))
        built.sort(key=lambda p: os.path.getmtime(p), reverse=True)
        out += built
    found = ctypes.util.find_library("iovm")
    if found:
        out.append(found)
    out.append("libiovm.so.0")  # ld.so's own search (LD_LIBRARY_PATH, an ldconfig not yet run)
    return out


def _load():
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path, use_errno=True), path
        except OSError as e:
            errors.append("%s: %s" % (path, e))
    raise ImportError("iovm: cannot load libiovm.so.0 (set IOVM_LIBRARY to its path): "
                      + "; ".join(errors))


lib, path = _load()


# ---------------------------------------------------------------- structs

class _Struct(Structure):
    """A mirrored struct: `_c_name_` is its C type, for the layout test."""

    def __repr__(self):
        parts = []
        for name, _t in _all_fields(type(self)):
            v = getattr(self, name)
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            elif isinstance(v, ctypes.Array):
                v = "[%d]" % len(v)
            parts.append("%s=%r" % (name, v))
        return "%s(%s)" % (type(self).__name__, ", ".join(parts))

    def as_dict(self):
        out = {}
        for name, _t in _all_fields(type(self)):
            v = getattr(self, name)
            if isinstance(v, _Struct):
                v = v.as_dict()
            elif isinstance(v, ctypes.Array):
                v = [x.as_dict() if isinstance(x, _Struct) else x for x in v]
            out[name] = v
        return out


def _all_fields(cls):
    """The fields of a struct, those of its anonymous members inlined."""
    anon = getattr(cls, "_anonymous_", ())
    for f in cls._fields_:
        if f[0] in anon:
            yield from _all_fields(f[1])
        else:
            yield f[0], f[1]


STRUCTS = {}  # C tag ("iovm_zone") -> class


def _struct(tag, c_name=None):
    def deco(cls):
        cls._c_name_ = c_name or "struct " + tag
        STRUCTS[tag] = cls
        return cls
    return deco


class _Addr(_Struct):
    _fields_ = [("addr", c_uint64)]

    def __int__(self):
        return self.addr

    __index__ = __int__

    def __eq__(self, other):
        if isinstance(other, _Addr):
            return type(self) is type(other) and self.addr == other.addr
        return NotImplemented

    def __hash__(self):
        return hash((type(self).__name__, self.addr))

    def __repr__(self):
        return "%s(%#x)" % (type(self).__name__, self.addr)


@_struct("iovm_pa", "iovm_pa_t")
class PA(_Addr):
    pass


@_struct("iovm_hpa", "iovm_hpa_t")
class HPA(_Addr):
    pass


@_struct("iovm_iova", "iovm_iova_t")
class IOVA(_Addr):
    pass


@_struct("iovm_gpa", "iovm_gpa_t")
class GPA(_Addr):
    pass


@_struct("iovm_ctx_info")
class CtxInfo(_Struct):
    _fields_ = [
        ("page_size", c_uint64),
        ("page_size_fallback", c_bool),
        ("mem_limit", c_uint64),
        ("numa_node", c_int),
        ("host_pa", c_bool),
        ("host_pa_readable", c_bool),
        ("release_delay_ms", c_uint32),
        ("host_pa_only", c_bool),
    ]


@_struct("iovm_hugepage_pool")
class HugepagePool(_Struct):
    _fields_ = [
        ("page_size", c_uint64),
        ("node", c_int),
        ("total", c_uint64),
        ("free", c_uint64),
    ]


@_struct("iovm_iommu_group")
class IommuGroup(_Struct):
    _fields_ = [
        ("id", c_uint),
        ("nr_devices", c_uint),
        ("devices", (c_char * 16) * C.IOVM_INFO_MAX_GROUP_DEVICES),
    ]


@_struct("iovm_sysinfo")
class SysInfo(_Struct):
    _fields_ = [
        ("kernel", c_char * 64),
        ("root", c_bool),
        ("base_page_size", c_uint64),
        ("phys_addr_bits", c_uint),
        ("nr_cpus_online", c_uint),
        ("nr_nodes", c_uint),
        ("nodes", c_int * C.IOVM_INFO_MAX_NODES),
        ("node_cpus", c_uint * C.IOVM_INFO_MAX_NODES),
        ("numa_policy", c_bool),
        ("nr_page_sizes", c_uint),
        ("page_sizes", c_uint64 * C.IOVM_INFO_MAX_SIZES),
        ("nr_pools", c_uint),
        ("pools", HugepagePool * (C.IOVM_INFO_MAX_SIZES * (C.IOVM_INFO_MAX_NODES + 1))),
        ("pagemap", c_int),
        ("uffd", c_bool),
        ("uffd_via", c_char * 32),
        ("uffd_features", c_uint64),
        ("uffd_error", c_int),
        ("nr_iommu_groups", c_uint),
        ("iommu_groups_truncated", c_bool),
        ("groups", IommuGroup * C.IOVM_INFO_MAX_GROUPS),
        ("vfio", c_bool),
        ("iommufd", c_bool),
        ("nr_vfio_groups", c_uint),
        ("nr_vfio_cdevs", c_uint),
        ("nr_vfio_pci", c_uint),
        ("vfio_pci", (c_char * 16) * C.IOVM_INFO_MAX_VFIO_DEVICES),
    ]


@_struct("iovm_phys_arena_stats")
class PhysArenaStats(_Struct):
    _fields_ = [
        ("page_size", c_uint64),
        ("node", c_int),
        ("nr_banks", c_uint),
        ("total", c_uint64),
        ("free", c_uint64),
        ("largest_free_run", c_uint64),
        ("free_blocks", c_uint64 * C.IOVM_PHYS_ORDERS),
    ]


@_struct("iovm_phys_pool_stats")
class PhysPoolStats(_Struct):
    _fields_ = [
        ("name", c_char * 32),
        ("page_size", c_uint64),
        ("nr_ranges", c_uint),
        ("total", c_uint64),
        ("free", c_uint64),
        ("largest_free_run", c_uint64),
    ]


@_struct("iovm_phys_stats")
class PhysStats(_Struct):
    _fields_ = [
        ("host_pa", c_bool),
        ("limit", c_uint64),
        ("total", c_uint64),
        ("free", c_uint64),
        ("nr_banks", c_uint),
        ("banks_added", c_uint64),
        ("banks_released", c_uint64),
        ("grow_failures", c_uint64),
        ("nr_arenas", c_uint),
        ("arenas", PhysArenaStats * C.IOVM_PHYS_MAX_ARENAS),
        ("nr_pools", c_uint),
        ("pools", PhysPoolStats * C.IOVM_PHYS_MAX_POOLS),
    ]


@_struct("iovm_dma_xlate")
class Xlate(_Struct):
    _fields_ = [
        ("pa", PA),
        ("hpa", HPA),
        ("contig", c_size_t),
        ("hpa_contig", c_size_t),
        ("page_size", c_uint64),
        ("node", c_int),
        ("flags", c_uint32),
    ]


@_struct("iovm_zone")
class ZoneInfo(_Struct):
    _fields_ = [
        ("name", c_char * C.IOVM_ZONE_NAMESIZE),
        ("va", c_void_p),
        ("pa", PA),
        ("hpa", HPA),
        ("len", c_size_t),
        ("align", c_size_t),
        ("page_size", c_uint64),
        ("node", c_int),
        ("flags", c_uint32),
        ("pa_flags", c_uint32),
    ]


@_struct("iovm_mem_event")
class MemEvent(_Struct):
    _fields_ = [
        ("type", c_int),
        ("va", c_void_p),
        ("len", c_size_t),
        ("page_size", c_uint64),
        ("node", c_int),
    ]


@_struct("iovm_mem_list_stats")
class MemListStats(_Struct):
    _fields_ = [
        ("page_size", c_uint64),
        ("node", c_int),
        ("va_span", c_uint64),
        ("committed", c_uint64),
        ("idle", c_uint64),
        ("in_use", c_uint64),
        ("commits", c_uint64),
        ("decommits", c_uint64),
    ]


@_struct("iovm_mem_stats")
class MemStats(_Struct):
    _fields_ = [
        ("committed", c_uint64),
        ("idle", c_uint64),
        ("in_use", c_uint64),
        ("commits", c_uint64),
        ("decommits", c_uint64),
        ("allocs", c_uint64),
        ("frees", c_uint64),
        ("cache_hits", c_uint64),
        ("zeroed", c_uint64),
        ("zero_known", c_uint64),
        ("nr_zones", c_uint),
        ("oracle_sync_errors", c_uint64),
        ("nr_lists", c_uint),
        ("lists", MemListStats * C.IOVM_MEM_MAX_LISTS),
    ]


@_struct("iovm_iova_range")
class IovaRange(_Struct):
    _fields_ = [
        ("start", IOVA),
        ("len", c_uint64),
    ]


@_struct("iovm_domain_attr")
class DomainAttr(_Struct):
    _fields_ = [
        ("type", c_int),
        ("flags", c_uint32),
        ("dma_bits", c_uint),
        ("flush_batch", c_uint),
        ("flush_timeout_us", c_uint),
        ("fault_queue", c_uint),
        ("reserved", POINTER(IovaRange)),
        ("nr_reserved", c_uint),
    ]


@_struct("iovm_fault")
class Fault(_Struct):
    _fields_ = [
        ("iova", IOVA),
        ("pasid", c_uint32),
        ("access", c_uint32),
        ("reason", c_int),
        ("device", c_uint32),
        ("seq", c_uint64),
        ("stage", c_int),
        ("gpa", GPA),
    ]


@_struct("iovm_domain_stats")
class DomainStats(_Struct):
    _fields_ = [
        ("type", c_int),
        ("flags", c_uint32),
        ("iova_allocated", c_uint64),
        ("iova_free", c_uint64),
        ("iova_cached", c_uint64),
        ("iova_largest_gap", c_uint64),
        ("iova_fragmentation", c_uint),
        ("leaves_4k", c_uint64),
        ("leaves_2m", c_uint64),
        ("leaves_1g", c_uint64),
        ("tables", c_uint64),
        ("splits", c_uint64),
        ("strict_invalidations", c_uint64),
        ("flushes", c_uint64),
        ("flushed_unmaps", c_uint64),
        ("pending_unmaps", c_uint64),
        ("faults", c_uint64),
        ("faults_dropped", c_uint64),
        ("oracle_checks", c_uint64),
        ("oracle_stale", c_uint64),
        ("oracle_violations", c_uint64),
    ]


@_struct("iovm_mr_info")
class MrInfo(_Struct):
    _fields_ = [
        ("addr", c_void_p),
        ("len", c_size_t),
        ("iova", IOVA),
        ("lkey", c_uint32),
        ("rkey", c_uint32),
        ("access", c_uint32),
        ("monitored", c_bool),
        ("on_demand", c_bool),
        ("implicit", c_bool),
        ("valid", c_bool),
        ("pages", c_uint64),
        ("valid_pages", c_uint64),
        ("huge_leaves", c_uint64),
        ("children", c_uint64),
    ]


@_struct("iovm_mr_keys")
class MrKeys(_Struct):
    _fields_ = [
        ("lkey", c_uint32),
        ("rkey", c_uint32),
        ("addr", c_void_p),
        ("len", c_size_t),
    ]


@_struct("iovm_mr_pinning")
class MrPinning(_Struct):
    _fields_ = [
        ("bytes", c_uint64),
        ("pinned", c_uint64),
        ("prefix", c_uint64),
        ("chunks", c_uint32),
        ("chunks_done", c_uint32),
        ("threads", c_uint32),
        ("error", c_int),
        ("done", c_bool),
    ]


@_struct("iovm_rcache_attr")
class RcacheAttr(_Struct):
    _fields_ = [
        ("max_regions", c_size_t),
        ("max_bytes", c_size_t),
    ]


@_struct("iovm_rcache_stats")
class RcacheStats(_Struct):
    _fields_ = [
        ("hits", c_uint64),
        ("misses", c_uint64),
        ("raced", c_uint64),
        ("uncached", c_uint64),
        ("evictions", c_uint64),
        ("invalidations_unmap", c_uint64),
        ("invalidations_remove", c_uint64),
        ("invalidations_remap", c_uint64),
        ("invalidations_overflow", c_uint64),
        ("regions", c_uint64),
        ("bytes", c_uint64),
    ]


@_struct("iovm_reg_stats")
class RegStats(_Struct):
    _fields_ = [
        ("mrs", c_uint64),
        ("registered", c_uint64),
        ("deregistered", c_uint64),
        ("locked_bytes", c_uint64),
        ("monitor_events", c_uint64),
        ("events_unmap", c_uint64),
        ("events_remove", c_uint64),
        ("events_remap", c_uint64),
        ("events_fork", c_uint64),
        ("invalidated_pages", c_uint64),
        ("odp_faults", c_uint64),
        ("odp_fault_retries", c_uint64),
        ("odp_pinned_bytes", c_uint64),
        ("odp_evicted_bytes", c_uint64),
        ("odp_prefetched_bytes", c_uint64),
        ("pin_budget", c_uint64),
        ("ring_overflows", c_uint64),
        ("generation", c_uint64),
        ("monitor", c_bool),
    ]


class IovaWindow(_Struct):
    """The anonymous struct of iovm_device_info.iova_ranges[]."""
    _fields_ = [
        ("start", c_uint64),
        ("last", c_uint64),
    ]


@_struct("iovm_device_info")
class DeviceInfo(_Struct):
    _fields_ = [
        ("kind", c_int),
        ("iommu_api", c_int),
        ("iommu_group", c_int),
        ("iova_pgsizes", c_uint64),
        ("nr_iova_ranges", c_uint),
        ("iova_ranges", IovaWindow * C.IOVM_DEVICE_MAX_RANGES),
        ("dma_avail", c_int64),
        ("kernel_mappings", c_uint64),
        ("kernel_maps", c_uint64),
        ("kernel_unmaps", c_uint64),
        ("kernel_splits", c_uint64),
        ("unattached_faults", c_uint64),
        ("unattached_faults_dropped", c_uint64),
    ]


@_struct("iovm_device_verbs")
class DeviceVerbs(_Struct):
    _fields_ = [
        ("context", c_void_p),
        ("pd", c_void_p),
        ("odp", c_bool),
        ("odp_implicit", c_bool),
        ("fork_safe", c_bool),
        ("name", c_char * C.IOVM_VERBS_NAME_MAX),
    ]


class _DescKeys(Structure):
    _fields_ = [
        ("src_key", c_uint32),
        ("dst_key", c_uint32),
    ]


class _DescU(Union):
    _anonymous_ = ("_keys",)
    _fields_ = [
        ("dst2", c_uint64),
        ("_keys", _DescKeys),
    ]


@_struct("iovm_desc")
class Desc(_Struct):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("op", c_uint8),
        ("flags", c_uint8),
        ("sg_count", c_uint16),
        ("pasid", c_uint32),
        ("src", c_uint64),
        ("dst", c_uint64),
        ("completion", c_uint64),
        ("len", c_uint32),
        ("crc_seed", c_uint32),
        ("pattern", c_uint64),
        ("_u", _DescU),
        ("tag", c_uint64),
    ]


@_struct("iovm_sge")
class Sge(_Struct):
    _fields_ = [
        ("iova", c_uint64),
        ("len", c_uint32),
        ("key", c_uint32),
    ]


@_struct("iovm_completion")
class Completion(_Struct):
    _fields_ = [
        ("status", c_uint8),
        ("result", c_uint8),
        ("fault_access", c_uint8),
        ("fault_reason", c_uint8),
        ("bytes_completed", c_uint32),
        ("fault_addr", c_uint64),
        ("crc", c_uint32),
        ("rsvd", c_uint32),
        ("mismatch", c_uint64),
    ]


@_struct("iovm_cqe")
class Cqe(_Struct):
    _fields_ = [
        ("tag", c_uint64),
        ("bytes_completed", c_uint32),
        ("status", c_uint8),
        ("phase", c_uint8),
        ("rsvd", c_uint16),
    ]


@_struct("iovm_queue_attr")
class QueueAttr(_Struct):
    _fields_ = [
        ("depth", c_uint),
        ("flags", c_uint32),
        ("cpu", c_uint),
        ("sq_addr", c_uint64),
        ("cq_addr", c_uint64),
    ]


@_struct("iovm_queue_stats")
class QueueStats(_Struct):
    _fields_ = [
        ("submitted", c_uint64),
        ("completed", c_uint64),
        ("bytes", c_uint64),
        ("faults", c_uint64),
        ("fault_retries", c_uint64),
        ("errors", c_uint64),
        ("iotlb_hits", c_uint64),
        ("iotlb_misses", c_uint64),
        ("ring_faults", c_uint64),
        ("bus_faults", c_uint64),
        ("page_requests", c_uint64),
    ]


@_struct("iovm_guest_bank")
class GuestBank(_Struct):
    _fields_ = [
        ("gpa", GPA),
        ("pa", PA),
        ("hpa", HPA),
        ("len", c_uint64),
    ]


@_struct("iovm_guest_attr")
class GuestAttr(_Struct):
    _fields_ = [
        ("size", c_uint64),
        ("flags", c_uint32),
        ("page_size", c_uint64),
        ("placement", c_int),
        ("pool", c_void_p),
        ("banks", POINTER(GuestBank)),
        ("nr_banks", c_uint),
        ("min_chunk", c_uint64),
        ("below", c_uint64),
        ("max_banks", c_uint),
    ]


@_struct("iovm_guest_info")
class GuestInfo(_Struct):
    _fields_ = [
        ("size", c_uint64),
        ("flags", c_uint32),
        ("page_size", c_uint64),
        ("running", c_bool),
        ("from_pool", c_bool),
        ("nr_banks", c_uint),
        ("ram", c_void_p),
        ("starts", c_uint64),
    ]


@_struct("iovm_share_params")
class ShareParams(_Struct):
    _fields_ = [
        ("heap_size", c_uint64),
        ("page_size", c_uint64),
        ("group", c_int64),
    ]


@_struct("iovm_share_info")
class ShareInfo(_Struct):
    _fields_ = [
        ("name", c_char * C.IOVM_SHARE_NAMESIZE),
        ("owner", c_bool),
        ("owner_pid", c_int),
        ("heap_pa", PA),
        ("heap_va", c_void_p),
        ("heap_size", c_uint64),
        ("heap_free", c_uint64),
        ("cached", c_uint64),
        ("page_size", c_uint64),
        ("blocks", c_uint64),
        ("processes", c_uint),
        ("zones", c_uint),
        ("attaches", c_uint64),
        ("recoveries", c_uint64),
        ("reaped", c_uint64),
        ("reaped_blocks", c_uint64),
        ("domain_held", c_uint64),
    ]


@_struct("iovm_share_domain_params")
class ShareDomainParams(_Struct):
    _fields_ = [
        ("iova_size", c_uint64),
        ("tables", c_uint32),
        ("flags", c_uint32),
        ("flush_batch", c_uint32),
        ("flush_timeout_us", c_uint32),
    ]


@_struct("iovm_device_server_info")
class DeviceServerInfo(_Struct):
    _fields_ = [
        ("clients", c_uint),
        ("opened", c_uint64),
        ("descriptors", c_uint64),
        ("torn_down", c_uint64),
        ("refused", c_uint64),
    ]


# ---------------------------------------------------------------- callbacks

LOG_FN = CFUNCTYPE(None, c_void_p, c_int, c_char_p)
ZONE_WALK_FN = CFUNCTYPE(c_int, c_void_p, POINTER(ZoneInfo))
MEM_EVENT_FN = CFUNCTYPE(c_int, c_void_p, POINTER(MemEvent))
FAULT_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, POINTER(Fault))
RQUEUE_FAULT_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_uint32)
MEM_MAP_NOTIFY_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_int, c_void_p, c_size_t)
MEM_MAP_CONTIGUOUS_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, c_uint64)


@_struct("iovm_mem_map_ops")
class MemMapOps(_Struct):
    _fields_ = [
        ("notify", MEM_MAP_NOTIFY_FN),
        ("are_contiguous", MEM_MAP_CONTIGUOUS_FN),
    ]

# The function-pointer typedefs of the headers, for the checker.
CALLBACKS = {
    "iovm_log_fn": LOG_FN,
    "iovm_mem_event_fn": MEM_EVENT_FN,
    "iovm_fault_fn": FAULT_FN,
    "iovm_rqueue_fault_fn": RQUEUE_FAULT_FN,
    "iovm_mem_map_notify_cb": MEM_MAP_NOTIFY_FN,
    "iovm_mem_map_contiguous_cb": MEM_MAP_CONTIGUOUS_FN,
}


# ---------------------------------------------------------------- functions

# How a function says it failed:
#   NEG   a negative errno (int or int64_t);
#   NULL  NULL, with errno set;
#   ZERO  0, with errno set (iovm_dma_size());
#   ALL1  IOVM_ADDR_INVALID (all ones), with errno set (translations);
#   None  it cannot fail (names, versions, no-ops, iovm_close()).
NEG, NULL, ZERO, ALL1 = "neg", "null", "zero", "all1"

_p = POINTER
_vp = c_void_p
_pp = _p(c_void_p)   # struct iovm_x ** of an opaque struct

# name: (restype, [argtypes], how it fails)
BINDINGS = {
    # base.h
    "iovm_strerror": (c_char_p, [c_int], None),
    "iovm_error_detail": (c_char_p, [], None),
    "iovm_log_set_level": (c_int, [c_int], NEG),
    "iovm_log_set_handler": (c_int, [LOG_FN, _vp], None),  # returns 0
    "iovm_opts_help": (c_char_p, [], None),
    "iovm_size_parse": (c_int, [c_char_p, _p(c_uint64)], NEG),
    # version.h
    "iovm_version": (c_char_p, [_p(c_uint)], None),
    # ctx.h
    "iovm_open": (c_int, [c_char_p, _pp], NEG),
    "iovm_close": (c_int, [_vp], None),  # returns 0
    "iovm_ctx_info": (c_int, [_vp, _p(CtxInfo)], NEG),
    # os.h
    "iovm_sysinfo_get": (c_int, [_p(_p(SysInfo))], NEG),
    "iovm_sysinfo_free": (None, [_p(SysInfo)], None),
    "iovm_uffd_feature_name": (c_char_p, [c_uint], None),
    # phys.h
    "iovm_phys_stats": (c_int, [_vp, _p(PhysStats)], NEG),
    "iovm_pool_create": (c_int, [_vp, c_char_p, c_uint64, c_uint64, c_uint, _pp], NEG),
    "iovm_pool_lookup": (c_int, [_vp, c_char_p, _pp], NEG),
    "iovm_pool_destroy": (c_int, [_vp], NEG),
    # mem.h
    "iovm_dma_alloc": (c_void_p, [_vp, c_size_t, c_size_t, c_uint32], NULL),
    "iovm_dma_zalloc": (c_void_p, [_vp, c_size_t, c_size_t, c_uint32], NULL),
    "iovm_dma_realloc": (c_void_p, [_vp, _vp, c_size_t, c_size_t, c_uint32], NULL),
    "iovm_dma_free": (c_int, [_vp, _vp], NEG),
    "iovm_dma_size": (c_size_t, [_vp, _vp], ZERO),
    "iovm_dma_trim": (c_int64, [_vp, c_uint32], NEG),
    "iovm_dma_xlate": (c_int, [_vp, _vp, _p(Xlate)], NEG),
    "iovm_dma_pa": (c_int, [_vp, _vp, _p(PA)], NEG),
    "iovm_dma_ptr": (c_void_p, [_vp, PA], NULL),
    "iovm_zone_reserve": (c_int, [_vp, c_char_p, c_size_t, c_size_t, c_uint32, _p(_p(ZoneInfo))], NEG),
    "iovm_zone_lookup": (c_int, [_vp, c_char_p, _p(_p(ZoneInfo))], NEG),
    "iovm_zone_free": (c_int, [_vp, _p(ZoneInfo)], NEG),
    "iovm_zone_walk": (c_int, [_vp, ZONE_WALK_FN, _vp], NEG),
    "iovm_cbuf_alloc": (c_int, [_vp, c_size_t, c_uint32, _pp], NEG),
    "iovm_cbuf_free": (c_int, [_vp], NEG),
    "iovm_cbuf_ptr": (c_void_p, [_vp], NULL),
    "iovm_cbuf_pages": (c_int, [_vp, _p(PA), c_uint, _p(c_uint)], NEG),
    "iovm_dma_sync_for_device": (c_int, [_vp, _vp, c_size_t], NEG),
    "iovm_dma_sync_for_cpu": (c_int, [_vp, _vp, c_size_t], NEG),
    "iovm_mem_event_subscribe": (c_int, [_vp, MEM_EVENT_FN, _vp, _pp], NEG),
    "iovm_mem_map_alloc": (c_int, [_vp, c_uint64, _p(MemMapOps), _vp, _pp], NEG),
    "iovm_mem_map_free": (c_int, [_pp], NEG),
    "iovm_mem_map_set_translation": (c_int, [_vp, c_uint64, c_uint64, c_uint64], NEG),
    "iovm_mem_map_clear_translation": (c_int, [_vp, c_uint64, c_uint64], NEG),
    "iovm_mem_map_translate": (c_uint64, [_vp, c_uint64, _p(c_uint64)], ALL1),
    "iovm_mem_register": (c_int, [_vp, _vp, c_size_t], NEG),
    "iovm_mem_unregister": (c_int, [_vp, _vp, c_size_t], NEG),
    "iovm_vtophys": (c_uint64, [_vp, _vp, _p(c_uint64)], ALL1),
    "iovm_pa_is_host": (c_int, [_vp, PA], NEG),
    "iovm_mem_event_unsubscribe": (c_int, [_vp, _vp], NEG),
    "iovm_mem_stats": (c_int, [_vp, _p(MemStats)], NEG),
    # iommu.h
    "iovm_domain_create": (c_int, [_vp, _p(DomainAttr), _pp], NEG),
    "iovm_domain_destroy": (c_int, [_vp], NEG),
    "iovm_domain_map": (c_int, [_vp, _p(IOVA), PA, c_size_t, c_uint32], NEG),
    "iovm_domain_map_gpa": (c_int, [_vp, _p(IOVA), GPA, c_size_t, c_uint32], NEG),
    "iovm_domain_map_pages": (c_int, [_vp, _p(IOVA), _p(PA), c_uint, c_uint32], NEG),
    "iovm_domain_map_ptr": (c_int, [_vp, _vp, c_size_t, c_uint32, _p(IOVA)], NEG),
    "iovm_domain_unmap": (c_int, [_vp, IOVA, c_size_t], NEG),
    "iovm_domain_flush": (c_int, [_vp], NEG),
    "iovm_dma_iova": (c_int, [_vp, _vp, _p(IOVA)], NEG),
    "iovm_domain_translate": (c_int, [_vp, IOVA, _p(PA), _p(c_uint32)], NEG),
    "iovm_domain_read_dirty": (c_int, [_vp, IOVA, c_size_t, c_bool, _p(c_bool), _p(c_bool)], NEG),
    "iovm_fault_reason_name": (c_char_p, [c_int], None),
    "iovm_domain_set_fault_handler": (c_int, [_vp, FAULT_FN, _vp], NEG),
    "iovm_domain_fault_pop": (c_int, [_vp, _p(Fault)], NEG),
    "iovm_domain_stats": (c_int, [_vp, _p(DomainStats)], NEG),
    # reg.h
    "iovm_mr_reg": (c_int, [_vp, _vp, c_size_t, c_uint32, _pp], NEG),
    "iovm_mr_advise": (c_int, [_vp, _vp, c_size_t, c_uint32], NEG),
    "iovm_mr_dereg": (c_int, [_vp], NEG),
    "iovm_mr_query": (c_int, [_vp, _p(MrInfo)], NEG),
    "iovm_mr_iova": (c_int, [_vp, _vp, c_size_t, _p(IOVA)], NEG),
    "iovm_mr_keys": (c_int, [_vp, _vp, c_size_t, _p(MrKeys)], NEG),
    "iovm_mr_reg_async": (c_int, [_vp, _vp, c_size_t, c_uint32, c_uint32, _pp], NEG),
    "iovm_mr_wait": (c_int, [_vp, _vp, c_size_t, c_int], NEG),
    "iovm_mr_ready": (c_int, [_vp, _p(MrPinning)], NEG),
    "iovm_rcache_create": (c_int, [_vp, _p(RcacheAttr), _pp], NEG),
    "iovm_rcache_destroy": (c_int, [_vp], NEG),
    "iovm_rcache_get": (c_int, [_vp, _vp, c_size_t, c_uint32, _pp], NEG),
    "iovm_rcache_put": (c_int, [_vp, _vp], NEG),
    "iovm_rcache_stats": (c_int, [_vp, _p(RcacheStats)], NEG),
    "iovm_reg_stats": (c_int, [_vp, _p(RegStats)], NEG),
    # dev.h
    "iovm_device_open": (c_int, [_vp, c_char_p, _pp], NEG),
    "iovm_device_close": (c_int, [_vp], NEG),
    "iovm_device_id": (c_uint32, [_vp], None),
    "iovm_device_attach": (c_int, [_vp, _vp, c_uint32], NEG),
    "iovm_device_detach": (c_int, [_vp, c_uint32], NEG),
    "iovm_device_fault_pop": (c_int, [_vp, _p(Fault)], NEG),
    "iovm_device_query": (c_int, [_vp, _p(DeviceInfo)], NEG),
    "iovm_device_verbs": (c_int, [_vp, _p(DeviceVerbs)], NEG),
    "iovm_device_bar": (c_int, [_vp, c_uint, _p(c_void_p), _p(c_size_t)], NEG),
    "iovm_device_config_read": (c_int, [_vp, c_uint, _vp, c_uint], NEG),
    "iovm_device_config_write": (c_int, [_vp, c_uint, _vp, c_uint], NEG),
    "iovm_device_msi": (c_int, [_vp, c_int], NEG),
    "iovm_status_name": (c_char_p, [c_int], None),
    "iovm_queue_create": (c_int, [_vp, _p(QueueAttr), _pp], NEG),
    "iovm_queue_destroy": (c_int, [_vp], NEG),
    "iovm_queue_submit": (c_int, [_vp, _p(Desc)], NEG),
    "iovm_queue_process": (c_int, [_vp, c_uint], NEG),
    "iovm_queue_reap": (c_int, [_vp, _p(Cqe), c_uint], NEG),
    "iovm_queue_stats": (c_int, [_vp, _p(QueueStats)], NEG),
    # guest.h
    "iovm_guest_create": (c_int, [_vp, _p(GuestAttr), _pp], NEG),
    "iovm_guest_destroy": (c_int, [_vp], NEG),
    "iovm_guest_shutdown": (c_int, [_vp], NEG),
    "iovm_guest_start": (c_int, [_vp], NEG),
    "iovm_guest_reboot": (c_int, [_vp], NEG),
    "iovm_guest_info": (c_int, [_vp, _p(GuestInfo)], NEG),
    "iovm_guest_banks": (c_int, [_vp, _p(GuestBank), c_uint, _p(c_uint)], NEG),
    "iovm_guest_ptr": (c_void_p, [_vp, GPA, _p(c_size_t)], NULL),
    "iovm_guest_stage2": (c_int, [_vp, _pp], NEG),
    "iovm_guest_assign": (c_int, [_vp, _vp, c_uint32, c_uint32], NEG),
    "iovm_guest_unassign": (c_int, [_vp, _vp, c_uint32], NEG),
    "iovm_guest_domain_create": (c_int, [_vp, _p(DomainAttr), _pp], NEG),
    # mp.h
    "iovm_share": (c_int, [_vp, c_char_p, _p(ShareParams)], NEG),
    "iovm_attach": (c_int, [c_char_p, c_char_p, _pp], NEG),
    "iovm_share_info": (c_int, [_vp, _p(ShareInfo)], NEG),
    "iovm_share_reap": (c_int, [_vp], NEG),
    "iovm_share_check": (c_int, [_vp], NEG),
    "iovm_share_domain_create": (c_int, [_vp, c_char_p, _p(ShareDomainParams), _pp], NEG),
    "iovm_share_domain_open": (c_int, [_vp, c_char_p, _pp], NEG),
    "iovm_device_serve": (c_int, [_vp, c_char_p, c_uint, _pp], NEG),
    "iovm_device_server_info": (c_int, [_vp, _p(DeviceServerInfo)], NEG),
    "iovm_device_server_stop": (c_int, [_vp], NEG),
    "iovm_rqueue_open": (c_int, [_vp, c_char_p, c_uint, _pp], NEG),
    "iovm_rqueue_pasid": (c_uint32, [_vp], None),
    "iovm_rqueue_map": (c_int, [_vp, _vp, c_size_t, c_uint32, _p(IOVA)], NEG),
    "iovm_rqueue_unmap": (c_int, [_vp, IOVA, c_size_t], NEG),
    "iovm_rqueue_map_mr": (c_int, [_vp, _vp, c_uint32, _p(IOVA)], NEG),
    "iovm_rqueue_unmap_mr": (c_int, [_vp, _vp], NEG),
    "iovm_rqueue_submit": (c_int, [_vp, _p(Desc)], NEG),
    "iovm_rqueue_reap": (c_int, [_vp, _p(Cqe), c_uint], NEG),
    "iovm_rqueue_set_fault_handler": (c_int, [_vp, RQUEUE_FAULT_FN, _vp], NEG),
    "iovm_rqueue_close": (c_int, [_vp], NEG),
}


# Which bindings were called, and how they came out: for the tests'
# coverage check (tests/python/run.py), when IOVM_PY_TRACE is set.
TRACE = {} if os.environ.get("IOVM_PY_TRACE") else None
_trace_lock = threading.Lock()


def _record(name, outcome):
    with _trace_lock:
        TRACE.setdefault(name, set()).add(outcome)


def _detail():
    d = lib.iovm_error_detail()
    return d.decode("utf-8", "replace") if d else ""


def _make_errcheck(name, how):
    def check(result, func, args):
        err = 0
        if how == NEG:
            if result < 0:
                err = -result
        elif how == NULL:
            if not result:
                err = ctypes.get_errno() or 22
        elif how == ZERO:
            if result == 0:
                err = ctypes.get_errno() or 22
        elif how == ALL1:
            # All ones may be an answer (a map whose default it is): an error only with errno set.
            if result == 0xFFFFFFFFFFFFFFFF:
                err = ctypes.get_errno()
        if TRACE is not None:
            _record(name, "error" if err else "ok")
        if err:
            raise IovmError(err, name, _detail())
        return result
    return check


class _ClearErrno:
    """A function that says failure with errno beside a value that may also
    be an answer: errno is cleared before each call, so that what it holds
    after is the call's."""

    def __init__(self, fn):
        self._fn = fn

    def __call__(self, *args):
        ctypes.set_errno(0)
        return self._fn(*args)

    def __getattr__(self, name):
        return getattr(self._fn, name)


class _Raw:
    """The C functions, by name: `iovm.raw.iovm_dma_alloc(ctx, 4096, 0, 0)`."""

    def __init__(self):
        for name, (restype, argtypes, how) in BINDINGS.items():
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
            fn.errcheck = _make_errcheck(name, how)
            setattr(self, name, _ClearErrno(fn) if how == ALL1 else fn)

    def __dir__(self):
        return list(BINDINGS)


raw = _Raw()
