# SPDX-License-Identifier: MIT
"""Registration of Python's own memory: a bytearray and an mmap'ed
buffer as MRs a device reaches, their invalidation when the memory is
unmapped, on-demand and implicit registrations, and the registration
cache."""

import errno
import mmap
import time
import unittest

import iovm

PAGE = 4096
RW = iovm.ACCESS_LOCAL_READ | iovm.ACCESS_LOCAL_WRITE


def private_map(n):
    """Anonymous private memory, as malloc's: Python's mmap.mmap(-1, n)
    is MAP_SHARED, which the memory monitor cannot watch (iovm/reg.h)."""
    return mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


class RegBase(unittest.TestCase):
    def setUp(self):
        self.ctx = iovm.open("page_size=4K")
        self.dom = self.ctx.domain()
        self.dev = self.ctx.device()
        self.dev.attach(self.dom)
        self.q = self.dev.queue(depth=16)
        # A heap buffer the device reaches through the same domain.
        self.heap = self.ctx.alloc(4 * PAGE, PAGE)
        self.heap_iova = self.dom.map_ptr(self.heap)

    def tearDown(self):
        self.ctx.close()

    def monitored_or_skip(self, mr):
        if not mr.info().monitored:
            raise unittest.SkipTest("the memory monitor does not run here (no userfaultfd)")


class TestRegister(RegBase):
    def test_bytearray(self):
        ba = bytearray(b"\x00" * (2 * PAGE))
        mr = self.dom.register(ba)
        info = mr.info()
        self.assertEqual(info.addr, iovm.address_of(ba))
        self.assertEqual((info.len, info.pages), (2 * PAGE, 2 if info.addr % PAGE == 0 else 3))
        self.assertTrue(info.valid)
        self.assertNotEqual(mr.lkey, 0)
        with self.assertRaises(BufferError):
            ba.extend(b"x")     # held while registered: it cannot move
        # The device writes into the bytearray through the MR's IOVA.
        self.heap.write(bytes(range(256)) * 16)
        c = self.q.run(op=iovm.Op.COPY, src=self.heap_iova, dst=mr.iova(ba, 100, offset=10),
                       len=100, tag=1)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(bytes(ba[10:110]), bytes(range(100)))
        self.assertEqual(bytes(ba[:10]), bytes(10))
        # And keyed: the application's addresses, in the MR its key names.
        c = self.q.run(op=iovm.Op.COPY, flags=iovm.DESC_KEYED, src=self.heap_iova,
                       dst=iovm.address_of(ba, 1000), dst_key=info.lkey, len=50, tag=2)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(bytes(ba[1000:1050]), bytes(range(50)))
        self.assertEqual(self.ctx.reg_stats().mrs, 1)
        mr.dereg()
        ba.extend(b"x")         # released with the registration
        c = self.q.run(op=iovm.Op.COPY, flags=iovm.DESC_KEYED, src=self.heap_iova,
                       dst=iovm.address_of(ba, 1000), dst_key=info.lkey, len=50, tag=3)
        self.assertEqual(c.status, iovm.Status.KEY)

    def test_mmap_invalidated_on_munmap(self):
        m = private_map(4 * PAGE)
        m[:5] = b"mmap!"
        addr = iovm.address_of(m)
        mr = self.dom.register(addr, 4 * PAGE)
        self.monitored_or_skip(mr)
        iova = mr.iova()
        c = self.q.run(op=iovm.Op.COPY, src=iova, dst=self.heap_iova, len=5, tag=1)
        self.assertEqual((c.status, self.heap.read(5)), (iovm.Status.SUCCESS, b"mmap!"))
        before = self.ctx.reg_stats()
        m.close()               # munmap(2): the monitor invalidates the MR before it returns
        info = mr.info()
        self.assertFalse(info.valid)
        self.assertEqual(info.valid_pages, 0)
        after = self.ctx.reg_stats()
        self.assertGreater(after.events_unmap, before.events_unmap)
        self.assertGreaterEqual(after.invalidated_pages, before.invalidated_pages + 4)
        c = self.q.run(op=iovm.Op.COPY, src=iova, dst=self.heap_iova, len=5, tag=2)
        self.assertEqual(c.status, iovm.Status.PAGE_FAULT)
        mr.dereg()

    def test_on_demand_and_advise(self):
        m = private_map(64 * PAGE)
        addr = iovm.address_of(m)
        mr = self.dom.register(addr, 64 * PAGE, on_demand=True)
        info = mr.info()
        self.assertTrue(info.on_demand)
        self.assertEqual(info.valid_pages, 0)
        mr.advise(addr, 16 * PAGE, write=True)
        self.assertGreater(mr.info().valid_pages, 0)
        self.assertGreater(self.ctx.reg_stats().odp_prefetched_bytes, 0)
        self.heap.write(b"odp!")
        c = self.q.run(op=iovm.Op.COPY, src=self.heap_iova, dst=mr.iova(addr + 40 * PAGE, 4),
                       len=4, tag=1)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(m[40 * PAGE:40 * PAGE + 4], b"odp!")
        with self.assertRaises(iovm.IovmError) as cm:
            mr.advise(addr, 128 * PAGE)
        self.assertEqual(cm.exception.errno, errno.ERANGE)
        mr.dereg()
        m.close()

    def test_register_async(self):
        m = private_map(64 * PAGE)
        addr = iovm.address_of(m)
        mr = self.dom.register_async(addr + 100, 60 * PAGE, threads=2, chunk_shift=16)
        self.assertTrue(mr.wait())
        self.assertTrue(mr.wait(addr + 100, PAGE, timeout_ms=0))
        usable, p = mr.ready()
        self.assertTrue(usable)
        self.assertTrue(p.done)
        self.assertEqual(p.pinned, 61 * PAGE)
        self.assertEqual(p.prefix, 61 * PAGE)
        self.heap.write(b"async")
        c = self.q.run(op=iovm.Op.COPY, src=self.heap_iova, dst=mr.iova(addr + 40 * PAGE, 5), len=5, tag=3)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(m[40 * PAGE:40 * PAGE + 5], b"async")
        with self.assertRaises(iovm.IovmError) as cm:
            mr.wait(addr, 128 * PAGE)
        self.assertEqual(cm.exception.errno, errno.ERANGE)
        mr.dereg()
        m.close()

    def test_implicit(self):
        ba = bytearray(3 * PAGE)
        try:
            mr = self.dom.register_implicit()
        except iovm.IovmError as e:
            if e.errno == errno.EOPNOTSUPP:
                self.skipTest("no memory monitor: %s" % e)
            raise
        self.assertTrue(mr.info().implicit)
        self.heap.write(b"implicit")
        c = self.q.run(op=iovm.Op.COPY, flags=iovm.DESC_KEYED, src=self.heap_iova,
                       dst=iovm.address_of(ba, PAGE), dst_key=mr.lkey, len=8, tag=1)
        self.assertEqual(c.status, iovm.Status.SUCCESS, iovm.status_name(c.status))
        self.assertEqual(bytes(ba[PAGE:PAGE + 8]), b"implicit")
        self.assertGreaterEqual(mr.info().children, 1)
        # iovm's engine: the one key, for all of user space
        k = mr.keys(ba, 8, offset=PAGE)
        self.assertEqual((k.lkey, k.rkey), (mr.lkey, mr.rkey))
        self.assertLessEqual(k.addr, iovm.address_of(ba))
        with self.assertRaises(iovm.IovmError) as cm:
            mr.keys(ba, 0)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        with self.assertRaises(iovm.IovmError) as cm:
            mr.iova(ba)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        mr.dereg()


class TestRcache(RegBase):
    def test_hits_misses_and_invalidation(self):
        rc = self.dom.rcache(max_regions=64)
        ba = bytearray(2 * PAGE)
        with rc.get(ba) as mr:
            self.assertTrue(mr.info().valid)
            iova = mr.iova(ba)
        mr2 = rc.get(ba)
        st = rc.stats()
        self.assertEqual((st.misses, st.hits), (1, 1))
        with self.assertRaises(iovm.IovmError) as cm:
            iovm.raw.iovm_mr_dereg(mr2._ptr)    # the cache's: put it back
        self.assertEqual(cm.exception.errno, errno.EBUSY)
        self.assertEqual(mr2.iova(ba), iova)
        mr2.put()
        own = self.dom.register(bytearray(PAGE))
        with self.assertRaises(iovm.IovmError) as cm:
            iovm.raw.iovm_rcache_put(rc._ptr, own._ptr)     # not the cache's
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        own.dereg()

        m = private_map(4 * PAGE)
        addr = iovm.address_of(m)
        cached = rc.get(addr, 4 * PAGE)
        if not cached.info().monitored:
            self.skipTest("the memory monitor does not run here (no userfaultfd)")
        cached.put()
        misses = rc.stats().misses
        m.close()               # munmap(2) of a region the cache keeps
        m2 = private_map(4 * PAGE)
        again = rc.get(iovm.address_of(m2), 4 * PAGE)
        self.assertEqual(rc.stats().misses, misses + 1, "memory unmapped is never a hit")
        # The counters follow the monitor, which may still be at it.
        deadline = time.monotonic() + 10
        while rc.stats().invalidations_unmap < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertGreaterEqual(rc.stats().invalidations_unmap, 1)
        again.put()
        with self.assertRaises(iovm.IovmError) as cm:
            self.dom.close()
        self.assertEqual(cm.exception.errno, errno.EBUSY)    # the cache uses the domain
        rc.close()
        self.assertTrue(rc.closed)
        m2.close()


if __name__ == "__main__":
    unittest.main()
