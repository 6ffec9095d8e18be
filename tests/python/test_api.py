# SPDX-License-Identifier: MIT
"""Bad input to every binding: each that can fail raises IovmError with
the errno its kernel-doc names (and a detail where the library leaves
one); each that cannot gives what its kernel-doc says for odd input.
A binding missing from these tables fails test_tables_cover_every_binding."""

import ctypes
import errno
import unittest
from ctypes import byref, c_bool, c_size_t, c_uint, c_uint32, c_uint64, c_void_p

import iovm
from iovm import raw, _lib
from iovm import PA, IOVA, GPA

E = errno
NULL = None
_P = ctypes.POINTER


def out():
    return c_void_p()


# name: (expected errno, call(f)) - f is the fixture (TestBadInput).
BAD = {
    "iovm_log_set_level": (E.EINVAL, lambda f: raw.iovm_log_set_level(99)),
    "iovm_size_parse": (E.EINVAL, lambda f: raw.iovm_size_parse(b"12 Q", byref(c_uint64()))),
    "iovm_open": (E.EINVAL, lambda f: raw.iovm_open(b"no_such_option=1", byref(out()))),
    "iovm_ctx_info": (E.EINVAL, lambda f: raw.iovm_ctx_info(NULL, byref(iovm.CtxInfo()))),
    "iovm_sysinfo_get": (E.EINVAL, lambda f: raw.iovm_sysinfo_get(NULL)),
    "iovm_phys_stats": (E.EINVAL, lambda f: raw.iovm_phys_stats(f.ctx._ptr, NULL)),
    "iovm_pool_create": (E.EINVAL, lambda f: raw.iovm_pool_create(f.ctx._ptr, b"p", 4097, 4096, 1,
                                                                  byref(out()))),
    "iovm_pool_lookup": (E.ENOENT, lambda f: raw.iovm_pool_lookup(f.ctx._ptr, b"no-pool", byref(out()))),
    "iovm_pool_destroy": (E.EINVAL, lambda f: raw.iovm_pool_destroy(NULL)),
    "iovm_dma_alloc": (E.EINVAL, lambda f: raw.iovm_dma_alloc(f.ctx._ptr, 0, 0, 0)),
    "iovm_dma_zalloc": (E.EINVAL, lambda f: raw.iovm_dma_zalloc(f.ctx._ptr, 64, 3, 0)),
    "iovm_dma_realloc": (E.EINVAL, lambda f: raw.iovm_dma_realloc(f.ctx._ptr, f.foreign, 64, 0, 0)),
    "iovm_dma_free": (E.EINVAL, lambda f: raw.iovm_dma_free(f.ctx._ptr, f.foreign)),
    "iovm_dma_size": (E.EINVAL, lambda f: raw.iovm_dma_size(f.ctx._ptr, f.foreign)),
    "iovm_dma_trim": (E.EINVAL, lambda f: raw.iovm_dma_trim(NULL, 0)),
    "iovm_dma_xlate": (E.ENOENT, lambda f: raw.iovm_dma_xlate(f.ctx._ptr, f.foreign, byref(iovm.Xlate()))),
    "iovm_dma_pa": (E.ENOENT, lambda f: raw.iovm_dma_pa(f.ctx._ptr, NULL, byref(PA()))),
    "iovm_dma_ptr": (E.ENOENT, lambda f: raw.iovm_dma_ptr(f.ctx._ptr, PA(1 << 50))),
    "iovm_zone_reserve": (E.EINVAL, lambda f: raw.iovm_zone_reserve(f.ctx._ptr, b"", 64, 0, 0,
                                                                    byref(_P(iovm.ZoneInfo)()))),
    "iovm_zone_lookup": (E.ENOENT, lambda f: raw.iovm_zone_lookup(f.ctx._ptr, b"no-zone",
                                                                  byref(_P(iovm.ZoneInfo)()))),
    "iovm_zone_free": (E.EINVAL, lambda f: raw.iovm_zone_free(f.ctx._ptr, NULL)),
    "iovm_zone_walk": (E.EINVAL, lambda f: raw.iovm_zone_walk(NULL, iovm.ZONE_WALK_FN(lambda a, z: 0),
                                                              NULL)),
    "iovm_cbuf_alloc": (E.EINVAL, lambda f: raw.iovm_cbuf_alloc(f.ctx._ptr, 512 << 20, 0, byref(out()))),
    "iovm_cbuf_free": (E.EINVAL, lambda f: raw.iovm_cbuf_free(NULL)),
    "iovm_cbuf_ptr": (E.EINVAL, lambda f: raw.iovm_cbuf_ptr(NULL)),
    "iovm_cbuf_pages": (E.EINVAL, lambda f: raw.iovm_cbuf_pages(NULL, NULL, 0, byref(c_uint()))),
    "iovm_dma_sync_for_device": (E.ENOENT, lambda f: raw.iovm_dma_sync_for_device(f.ctx._ptr, f.foreign, 64)),
    "iovm_dma_sync_for_cpu": (E.EINVAL, lambda f: raw.iovm_dma_sync_for_cpu(NULL, f.foreign, 64)),
    "iovm_mem_event_subscribe": (E.EINVAL, lambda f: raw.iovm_mem_event_subscribe(
        f.ctx._ptr, ctypes.cast(None, iovm.MEM_EVENT_FN), NULL, byref(out()))),
    "iovm_mem_event_unsubscribe": (E.EINVAL, lambda f: raw.iovm_mem_event_unsubscribe(f.ctx._ptr, NULL)),
    "iovm_mem_stats": (E.EINVAL, lambda f: raw.iovm_mem_stats(NULL, byref(iovm.MemStats()))),
    "iovm_mem_map_alloc": (E.EINVAL, lambda f: raw.iovm_mem_map_alloc(NULL, 0, None, NULL, byref(c_void_p()))),
    "iovm_mem_map_free": (E.EINVAL, lambda f: raw.iovm_mem_map_free(None)),
    "iovm_mem_map_set_translation": (E.EINVAL, lambda f: raw.iovm_mem_map_set_translation(NULL, 0, 1 << 21, 0)),
    "iovm_mem_map_clear_translation": (E.EINVAL, lambda f: raw.iovm_mem_map_clear_translation(NULL, 0, 1 << 21)),
    "iovm_mem_map_translate": (E.EINVAL, lambda f: raw.iovm_mem_map_translate(NULL, 0, None)),
    "iovm_mem_register": (E.EINVAL, lambda f: raw.iovm_mem_register(f.ctx._ptr, NULL, 1 << 21)),
    "iovm_mem_unregister": (E.EINVAL, lambda f: raw.iovm_mem_unregister(f.ctx._ptr, NULL, 1 << 21)),
    "iovm_vtophys": (E.EINVAL, lambda f: raw.iovm_vtophys(NULL, NULL, None)),
    "iovm_pa_is_host": (E.EINVAL, lambda f: raw.iovm_pa_is_host(NULL, PA(0))),
    "iovm_domain_create": (E.EINVAL, lambda f: raw.iovm_domain_create(
        f.ctx._ptr, byref(iovm.DomainAttr(dma_bits=20)), byref(out()))),
    "iovm_domain_destroy": (E.EINVAL, lambda f: raw.iovm_domain_destroy(NULL)),
    "iovm_domain_map": (E.EINVAL, lambda f: raw.iovm_domain_map(f.dom._ptr, byref(IOVA(iovm.ADDR_INVALID)),
                                                                PA(0x123), 4096, iovm.MAP_READ)),
    "iovm_domain_map_gpa": (E.EOPNOTSUPP, lambda f: raw.iovm_domain_map_gpa(
        f.dom._ptr, byref(IOVA(iovm.ADDR_INVALID)), GPA(0), 4096, iovm.MAP_READ)),
    "iovm_domain_map_pages": (E.EINVAL, lambda f: raw.iovm_domain_map_pages(
        NULL, byref(IOVA(iovm.ADDR_INVALID)), (PA * 1)(), 1, iovm.MAP_READ)),
    "iovm_domain_map_ptr": (E.ENOENT, lambda f: raw.iovm_domain_map_ptr(f.dom._ptr, f.foreign_page, 4096,
                                                                        iovm.MAP_READ, byref(IOVA()))),
    "iovm_domain_unmap": (E.ENOENT, lambda f: raw.iovm_domain_unmap(f.dom._ptr, IOVA(1 << 40), 4096)),
    "iovm_domain_flush": (E.EINVAL, lambda f: raw.iovm_domain_flush(NULL)),
    "iovm_dma_iova": (E.ENOENT, lambda f: raw.iovm_dma_iova(f.dom._ptr, f.foreign, byref(IOVA()))),
    "iovm_domain_translate": (E.ENOENT, lambda f: raw.iovm_domain_translate(
        f.dom._ptr, IOVA(1 << 40), byref(PA()), byref(c_uint32()))),
    "iovm_domain_read_dirty": (E.EINVAL, lambda f: raw.iovm_domain_read_dirty(
        f.dom._ptr, IOVA(1 << 30), 0, False, byref(c_bool()), byref(c_bool()))),
    "iovm_domain_set_fault_handler": (E.EINVAL, lambda f: raw.iovm_domain_set_fault_handler(
        NULL, ctypes.cast(None, iovm.FAULT_FN), NULL)),
    "iovm_domain_fault_pop": (E.EAGAIN, lambda f: raw.iovm_domain_fault_pop(f.dom._ptr, byref(iovm.Fault()))),
    "iovm_domain_stats": (E.EINVAL, lambda f: raw.iovm_domain_stats(f.dom._ptr, NULL)),
    "iovm_mr_reg": (E.EINVAL, lambda f: raw.iovm_mr_reg(f.dom._ptr, NULL, 0, iovm.ACCESS_LOCAL_READ,
                                                        byref(out()))),
    "iovm_mr_advise": (E.EINVAL, lambda f: raw.iovm_mr_advise(NULL, f.foreign, 64, 0)),
    "iovm_mr_dereg": (E.EINVAL, lambda f: raw.iovm_mr_dereg(NULL)),
    "iovm_mr_query": (E.EINVAL, lambda f: raw.iovm_mr_query(NULL, byref(iovm.MrInfo()))),
    "iovm_mr_iova": (E.EINVAL, lambda f: raw.iovm_mr_iova(NULL, f.foreign, 1, byref(IOVA()))),
    "iovm_mr_keys": (E.EINVAL, lambda f: raw.iovm_mr_keys(NULL, f.foreign, 1, byref(iovm.MrKeys()))),
    "iovm_mr_reg_async": (E.EINVAL, lambda f: raw.iovm_mr_reg_async(f.dom._ptr, f.foreign, 64,
                                                                    iovm.ACCESS_ON_DEMAND, 0, byref(out()))),
    "iovm_mr_wait": (E.EINVAL, lambda f: raw.iovm_mr_wait(NULL, f.foreign, 64, 0)),
    "iovm_mr_ready": (E.EINVAL, lambda f: raw.iovm_mr_ready(NULL, byref(iovm.MrPinning()))),
    "iovm_rcache_create": (E.EINVAL, lambda f: raw.iovm_rcache_create(NULL, NULL, byref(out()))),
    "iovm_rcache_destroy": (E.EINVAL, lambda f: raw.iovm_rcache_destroy(NULL)),
    "iovm_rcache_get": (E.EINVAL, lambda f: raw.iovm_rcache_get(
        f.rcache._ptr, f.foreign, 64, iovm.ACCESS_ON_DEMAND, byref(out()))),
    "iovm_rcache_put": (E.EINVAL, lambda f: raw.iovm_rcache_put(f.rcache._ptr, NULL)),
    "iovm_rcache_stats": (E.EINVAL, lambda f: raw.iovm_rcache_stats(NULL, byref(iovm.RcacheStats()))),
    "iovm_reg_stats": (E.EINVAL, lambda f: raw.iovm_reg_stats(NULL, byref(iovm.RegStats()))),
    "iovm_device_open": (E.ENODEV, lambda f: raw.iovm_device_open(f.ctx._ptr, b"no-such-device", byref(out()))),
    "iovm_device_close": (E.EINVAL, lambda f: raw.iovm_device_close(NULL)),
    "iovm_device_attach": (E.EINVAL, lambda f: raw.iovm_device_attach(f.dev2._ptr, f.dom._ptr,
                                                                      iovm.PASID_MAX + 1)),
    "iovm_device_detach": (E.ENOENT, lambda f: raw.iovm_device_detach(f.dev._ptr, 77)),
    "iovm_device_fault_pop": (E.EAGAIN, lambda f: raw.iovm_device_fault_pop(f.dev._ptr, byref(iovm.Fault()))),
    "iovm_device_query": (E.EINVAL, lambda f: raw.iovm_device_query(NULL, byref(iovm.DeviceInfo()))),
    "iovm_device_verbs": (E.EOPNOTSUPP, lambda f: raw.iovm_device_verbs(f.dev._ptr, byref(iovm.DeviceVerbs()))),
    "iovm_device_bar": (E.EOPNOTSUPP, lambda f: raw.iovm_device_bar(f.dev._ptr, 0, byref(c_void_p()),
                                                                    byref(c_size_t()))),
    "iovm_device_config_read": (E.EOPNOTSUPP, lambda f: raw.iovm_device_config_read(
        f.dev._ptr, 0, ctypes.create_string_buffer(4), 4)),
    "iovm_device_config_write": (E.EOPNOTSUPP, lambda f: raw.iovm_device_config_write(
        f.dev._ptr, 4, ctypes.create_string_buffer(4), 2)),
    "iovm_device_msi": (E.EOPNOTSUPP, lambda f: raw.iovm_device_msi(f.dev._ptr, -1)),
    "iovm_queue_create": (E.EINVAL, lambda f: raw.iovm_queue_create(
        f.dev._ptr, byref(iovm.QueueAttr(depth=3, flags=iovm.QUEUE_POLLED)), byref(out()))),
    "iovm_queue_destroy": (E.EINVAL, lambda f: raw.iovm_queue_destroy(NULL)),
    "iovm_queue_submit": (E.EINVAL, lambda f: raw.iovm_queue_submit(f.queue._ptr, NULL)),
    "iovm_queue_process": (E.EINVAL, lambda f: raw.iovm_queue_process(NULL, 1)),
    "iovm_queue_reap": (E.EINVAL, lambda f: raw.iovm_queue_reap(NULL, (iovm.Cqe * 1)(), 1)),
    "iovm_queue_stats": (E.EINVAL, lambda f: raw.iovm_queue_stats(f.queue._ptr, NULL)),
    "iovm_guest_create": (E.EINVAL, lambda f: raw.iovm_guest_create(
        f.ctx._ptr, byref(iovm.GuestAttr(size=4097, page_size=4096)), byref(out()))),
    "iovm_guest_destroy": (E.EINVAL, lambda f: raw.iovm_guest_destroy(NULL)),
    "iovm_guest_shutdown": (E.EINVAL, lambda f: raw.iovm_guest_shutdown(NULL)),
    "iovm_guest_start": (E.EINVAL, lambda f: raw.iovm_guest_start(NULL)),
    "iovm_guest_reboot": (E.EINVAL, lambda f: raw.iovm_guest_reboot(NULL)),
    "iovm_guest_info": (E.EINVAL, lambda f: raw.iovm_guest_info(NULL, byref(iovm.GuestInfo()))),
    "iovm_guest_banks": (E.EINVAL, lambda f: raw.iovm_guest_banks(NULL, NULL, 0, byref(c_uint()))),
    "iovm_guest_ptr": (E.EINVAL, lambda f: raw.iovm_guest_ptr(NULL, GPA(0), NULL)),
    "iovm_guest_stage2": (E.EINVAL, lambda f: raw.iovm_guest_stage2(NULL, byref(out()))),
    "iovm_guest_assign": (E.EINVAL, lambda f: raw.iovm_guest_assign(NULL, f.dev._ptr, 0, 0)),
    "iovm_guest_unassign": (E.EINVAL, lambda f: raw.iovm_guest_unassign(NULL, f.dev._ptr, 0)),
    "iovm_guest_domain_create": (E.EINVAL, lambda f: raw.iovm_guest_domain_create(NULL, NULL, byref(out()))),
    "iovm_share": (E.EINVAL, lambda f: raw.iovm_share(f.ctx._ptr, b"a/b", NULL)),
    "iovm_attach": (E.ENOENT, lambda f: raw.iovm_attach(b"iovm-py-no-such-share", b"", byref(out()))),
    "iovm_share_info": (E.ENOENT, lambda f: raw.iovm_share_info(f.ctx._ptr, byref(iovm.ShareInfo()))),
    "iovm_share_reap": (E.ENOENT, lambda f: raw.iovm_share_reap(f.ctx._ptr)),
    "iovm_share_check": (E.ENOENT, lambda f: raw.iovm_share_check(f.ctx._ptr)),
    "iovm_share_domain_create": (E.ENOENT, lambda f: raw.iovm_share_domain_create(
        f.ctx._ptr, b"d", NULL, byref(out()))),
    "iovm_share_domain_open": (E.ENOENT, lambda f: raw.iovm_share_domain_open(f.ctx._ptr, b"d", byref(out()))),
    "iovm_device_serve": (E.ENOENT, lambda f: raw.iovm_device_serve(f.ctx._ptr, b"iovm-py-srv", 0,
                                                                    byref(out()))),
    "iovm_device_server_info": (E.EINVAL, lambda f: raw.iovm_device_server_info(
        NULL, byref(iovm.DeviceServerInfo()))),
    "iovm_device_server_stop": (E.EINVAL, lambda f: raw.iovm_device_server_stop(NULL)),
    "iovm_rqueue_open": (E.ENOENT, lambda f: raw.iovm_rqueue_open(f.ctx._ptr, b"iovm-py-srv", 0, byref(out()))),
    "iovm_rqueue_map": (E.EINVAL, lambda f: raw.iovm_rqueue_map(NULL, f.foreign_page, 4096, iovm.MAP_READ,
                                                                byref(IOVA()))),
    "iovm_rqueue_unmap": (E.EINVAL, lambda f: raw.iovm_rqueue_unmap(NULL, IOVA(0), 4096)),
    "iovm_rqueue_map_mr": (E.EINVAL, lambda f: raw.iovm_rqueue_map_mr(NULL, NULL, iovm.MAP_READ, byref(IOVA()))),
    "iovm_rqueue_unmap_mr": (E.EINVAL, lambda f: raw.iovm_rqueue_unmap_mr(NULL, NULL)),
    "iovm_rqueue_submit": (E.EINVAL, lambda f: raw.iovm_rqueue_submit(NULL, byref(iovm.Desc()))),
    "iovm_rqueue_reap": (E.EINVAL, lambda f: raw.iovm_rqueue_reap(NULL, (iovm.Cqe * 1)(), 1)),
    "iovm_rqueue_set_fault_handler": (E.EINVAL, lambda f: raw.iovm_rqueue_set_fault_handler(
        NULL, ctypes.cast(None, iovm.RQUEUE_FAULT_FN), NULL)),
    "iovm_rqueue_close": (E.EINVAL, lambda f: raw.iovm_rqueue_close(NULL)),
}

# Bindings that cannot fail: what odd input gives. name: (call, check(result)).
ODD = {
    "iovm_strerror": (lambda f: raw.iovm_strerror(-99999), lambda r: isinstance(r, bytes) and r),
    "iovm_error_detail": (lambda f: raw.iovm_error_detail(), lambda r: isinstance(r, bytes)),
    "iovm_log_set_handler": (lambda f: raw.iovm_log_set_handler(ctypes.cast(None, iovm.LOG_FN), NULL),
                             lambda r: r == 0),
    "iovm_opts_help": (lambda f: raw.iovm_opts_help(), lambda r: b"page_size" in r),
    "iovm_version": (lambda f: raw.iovm_version(NULL), lambda r: r.count(b".") == 2),
    "iovm_close": (lambda f: raw.iovm_close(NULL), lambda r: r == 0),
    "iovm_sysinfo_free": (lambda f: raw.iovm_sysinfo_free(NULL), lambda r: r is None),
    "iovm_uffd_feature_name": (lambda f: raw.iovm_uffd_feature_name(63), lambda r: r is None),
    "iovm_fault_reason_name": (lambda f: raw.iovm_fault_reason_name(99), lambda r: r == b"unknown fault reason"),
    "iovm_status_name": (lambda f: raw.iovm_status_name(-1), lambda r: r == b"unknown status"),
    "iovm_device_id": (lambda f: raw.iovm_device_id(NULL), lambda r: r == 0),
    "iovm_rqueue_pasid": (lambda f: raw.iovm_rqueue_pasid(NULL), lambda r: r == 0),
}


class TestBadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ctx = iovm.open("page_size=4K")
        cls.dom = cls.ctx.domain(flags=iovm.DOMAIN_FOLLOW_HEAP)
        cls.dev = cls.ctx.device("sw")
        cls.dev.attach(cls.dom)
        cls.dev2 = cls.ctx.device("sw")
        cls.queue = cls.dev.queue(depth=8)
        cls.rcache = cls.dom.rcache()
        # Memory iovm does not own: a ctypes buffer, and a page-aligned address in it.
        cls._foreign = ctypes.create_string_buffer(3 * 4096)
        cls.foreign = ctypes.addressof(cls._foreign) + 64
        cls.foreign_page = (ctypes.addressof(cls._foreign) + 4095) & ~4095

    @classmethod
    def tearDownClass(cls):
        cls.ctx.close()

    def test_tables_cover_every_binding(self):
        for name, (_r, _a, how) in _lib.BINDINGS.items():
            if how is None:
                self.assertIn(name, ODD, "%s cannot fail: give it a row in ODD" % name)
            else:
                self.assertIn(name, BAD, "%s can fail: give it a row in BAD" % name)
        self.assertEqual(set(BAD) | set(ODD), set(_lib.BINDINGS))

    def test_bad_input_raises(self):
        for name, (err, call) in sorted(BAD.items()):
            with self.subTest(function=name):
                with self.assertRaises(iovm.IovmError) as cm:
                    call(self)
                e = cm.exception
                self.assertIsInstance(e, OSError)
                self.assertEqual(e.errno, err, "%s: %s (expected %s)" % (name, e, errno.errorcode[err]))
                self.assertEqual(e.function, name)
                self.assertEqual(e.strerror, iovm.strerror(err))
                if err == E.EINVAL:     # every -EINVAL names the check that failed
                    self.assertTrue(e.detail, "%s: -EINVAL without a detail" % name)

    def test_odd_input(self):
        for name, (call, check) in sorted(ODD.items()):
            with self.subTest(function=name):
                self.assertTrue(check(call(self)), name)

    def test_error_carries_detail(self):
        with self.assertRaises(iovm.IovmError) as cm:
            iovm.open("page_size=3K")
        e = cm.exception
        self.assertEqual(e.errno, errno.EINVAL)
        self.assertIn("page_size", e.detail)
        self.assertIn("page_size", str(e))
        self.assertIsInstance(e, OSError)
        # The detail is the failed call's, not a later one's: a call that
        # succeeds starts empty.
        iovm.size_parse("4K")
        self.assertEqual(iovm.error_detail(), "")

    def test_error_pickles(self):
        import pickle
        e = iovm.IovmError(errno.ENOENT, "iovm_zone_lookup", "no zone")
        e2 = pickle.loads(pickle.dumps(e))
        self.assertEqual((e2.errno, e2.function, e2.detail), (errno.ENOENT, "iovm_zone_lookup", "no zone"))


class TestNoContext(unittest.TestCase):
    """The calls that take no context, with good input."""

    def test_strings(self):
        self.assertEqual(iovm.strerror(-errno.ENOENT), iovm.strerror(errno.ENOENT))
        self.assertIn("page_size", iovm.opts_help())
        v, n = iovm.version()
        self.assertEqual(v, iovm.VERSION_STRING)
        self.assertEqual(n, iovm.VERSION)
        self.assertEqual(iovm.fault_reason_name(iovm.FaultReason.PERMISSION), "permission")
        self.assertEqual(iovm.status_name(iovm.Status.SUCCESS), "success")
        self.assertIsInstance(iovm.uffd_feature_name(0), (str, type(None)))

    def test_size_parse(self):
        self.assertEqual(iovm.size_parse("4096"), 4096)
        self.assertEqual(iovm.size_parse("64K"), 65536)
        self.assertEqual(iovm.size_parse("2MiB"), 2 << 20)
        self.assertEqual(iovm.size_parse("0x10"), 16)

    def test_log(self):
        got = []
        iovm.log_set_handler(lambda level, msg: got.append((level, msg)))
        try:
            iovm.log_set_level(iovm.LogLevel.WARN)
            with self.assertRaises(iovm.IovmError):
                iovm.open("page_size=3K")
        finally:
            iovm.log_set_handler(None)
            iovm.log_set_level(iovm.LogLevel.NOTICE)
        self.assertTrue(all(isinstance(m, str) for _l, m in got))

    def test_sysinfo(self):
        s = iovm.sysinfo()
        self.assertGreater(s.base_page_size, 0)
        self.assertGreater(s.nr_cpus_online, 0)
        self.assertLessEqual(s.nr_page_sizes, iovm.INFO_MAX_SIZES)
        self.assertTrue(s.kernel)


if __name__ == "__main__":
    unittest.main()
