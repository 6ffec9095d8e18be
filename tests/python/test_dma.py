# SPDX-License-Identifier: MIT
"""Contexts, DMA memory, zones, common buffers, memory events, pools,
domains, devices, queues and guests through the Python objects, with
good input; and a DMA round trip through the software engine whose bytes
are checked here."""

import ctypes
import errno
import os
import unittest

import iovm

PAGE = 4096


def crc32c(data, crc=0):
    """CRC-32C bit by bit, as tests/dev/crc32c_ref.h."""
    crc ^= 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82f63b78 if crc & 1 else crc >> 1
    return crc ^ 0xffffffff


def pattern(n, seed=1):
    return bytes((i * 131 + seed * 7 + (i >> 8)) & 0xff for i in range(n))


class TestContext(unittest.TestCase):
    def test_open_and_info(self):
        with iovm.open("page_size=4K,release_delay_ms=7") as ctx:
            info = ctx.info()
            self.assertEqual(info.page_size, PAGE)
            self.assertEqual(info.release_delay_ms, 7)
            self.assertFalse(ctx.closed)
        self.assertTrue(ctx.closed)
        ctx.close()     # twice: nothing
        with self.assertRaises(ValueError):
            ctx.info()

    def test_opts_from_environment(self):
        old = os.environ.get("IOVM_OPTS")
        os.environ["IOVM_OPTS"] = "page_size=4K,release_delay_ms=3"
        try:
            with iovm.open(None) as ctx:
                self.assertEqual(ctx.info().release_delay_ms, 3)
        finally:
            if old is None:
                del os.environ["IOVM_OPTS"]
            else:
                os.environ["IOVM_OPTS"] = old

    def test_stats(self):
        with iovm.open("page_size=4K") as ctx:
            b = ctx.alloc(100000)
            m = ctx.mem_stats()
            self.assertGreaterEqual(m.in_use, 100000)
            self.assertGreaterEqual(m.committed, m.in_use)
            p = ctx.phys_stats()
            self.assertGreater(p.total, 0)
            self.assertGreaterEqual(p.nr_banks, 1)
            r = ctx.reg_stats()
            self.assertEqual(r.mrs, 0)
            b.free()
            self.assertGreaterEqual(ctx.trim(all=True), 0)
            self.assertIn("committed", m.as_dict())


class TestBuffers(unittest.TestCase):
    def setUp(self):
        self.ctx = iovm.open("page_size=4K")

    def tearDown(self):
        self.ctx.close()

    def test_bytes(self):
        buf = self.ctx.alloc(10000, 64)
        self.assertEqual(len(buf), 10000)
        self.assertEqual(buf.addr % 64, 0)
        self.assertGreaterEqual(buf.usable_size, 10000)
        data = pattern(10000)
        buf.write(data)
        self.assertEqual(buf.read(), data)
        self.assertEqual(bytes(buf.view), data)
        buf[10:14] = b"abcd"
        self.assertEqual(bytes(buf[8:16]), data[8:10] + b"abcd" + data[14:16])
        buf.fill(0x5a, 100, 200)
        self.assertEqual(buf.read(100, 200), b"\x5a" * 100)
        self.assertEqual(ctypes.string_at(buf.addr + 200, 100), b"\x5a" * 100)
        with self.assertRaises(ValueError):
            buf.write(b"x" * 10, 9995)
        z = self.ctx.zalloc(5000)
        self.assertEqual(z.read(), bytes(5000))
        c = self.ctx.buffer(b"hello")
        self.assertEqual(c.read(), b"hello")

    def test_realloc_and_free(self):
        buf = self.ctx.alloc(100)
        buf.write(pattern(100))
        v = buf.view
        buf.realloc(50000)
        self.assertEqual(buf.read(100), pattern(100))
        with self.assertRaises(ValueError):
            v[0]        # the view of the old memory was released
        buf.free()
        self.assertTrue(buf.closed)
        with self.assertRaises(ValueError):
            buf.addr
        buf.free()      # twice: nothing

    def test_xlate_interior_pointers(self):
        """xlate and pa of interior pointers agree with the base's, within
        the contiguous run it reports, and ptr() inverts pa()."""
        buf = self.ctx.alloc(5 * PAGE, PAGE, iovm.DMA_CONTIG)
        base = buf.xlate()
        self.assertEqual(base.pa.addr, buf.pa)
        self.assertGreaterEqual(base.contig, 5 * PAGE)
        self.assertEqual(base.page_size, PAGE)
        for off in (0, 1, 63, PAGE - 1, PAGE, 3 * PAGE + 17, 5 * PAGE - 1):
            x = self.ctx.xlate(buf, off)
            self.assertEqual(x.pa.addr, base.pa.addr + off, off)
            self.assertEqual(x.contig, base.contig - off, off)
            self.assertEqual(self.ctx.pa(buf, off), base.pa.addr + off)
            self.assertEqual(self.ctx.pa(buf.addr + off), base.pa.addr + off)
            self.assertEqual(self.ctx.ptr(base.pa.addr + off), buf.addr + off)
        # A scattered buffer: every page translates, each to its own frame.
        s = self.ctx.alloc(3 * PAGE, PAGE)
        for off in range(0, 3 * PAGE, PAGE // 2):
            x = s.xlate(off)
            self.assertEqual(self.ctx.ptr(x.pa.addr), s.addr + off)
            self.assertEqual(x.contig, max(self.ctx.xlate(s, off - (off % PAGE)).contig - off % PAGE, 0))

    def test_flags(self):
        b = self.ctx.alloc(PAGE, 0, iovm.dma_boundary(12))
        self.assertEqual(b.addr >> 12, (b.addr + PAGE - 1) >> 12)
        z = self.ctx.alloc(64, 0, iovm.DMA_ZERO | iovm.DMA_PAGE_4K)
        self.assertEqual(z.read(), bytes(64))
        self.assertEqual(z.xlate().page_size, PAGE)

    def test_as_struct(self):
        buf = self.ctx.zalloc(64, 32)
        c = buf.as_struct(iovm.Completion)
        c.crc = 0x12345678
        self.assertEqual(buf.read(4, 16), (0x12345678).to_bytes(4, "little"))
        with self.assertRaises(ValueError):
            buf.as_struct(iovm.Completion, 40)


class TestZones(unittest.TestCase):
    def test_zones(self):
        with iovm.open("page_size=4K") as ctx:
            z = ctx.zone_reserve("ring0", 3 * PAGE, PAGE)
            self.assertTrue(z.created)
            self.assertEqual(z.name, "ring0")
            self.assertEqual(len(z), 3 * PAGE)
            self.assertEqual(bytes(z.view), bytes(3 * PAGE))
            self.assertEqual(ctx.xlate(z).contig >= 3 * PAGE, True)
            self.assertEqual(ctx.pa(z), z.pa)
            z.view[:4] = b"ring"
            again = ctx.zone_reserve("ring0", 2 * PAGE)
            self.assertFalse(again.created)
            self.assertEqual((again.pa, bytes(again.view[:4])), (z.pa, b"ring"))
            self.assertEqual(ctx.zone_lookup("ring0").va, z.va)
            ctx.zone_reserve("ring1", 64)
            self.assertEqual(sorted(iovm._s(i.name) for i in ctx.zones()), ["ring0", "ring1"])
            with self.assertRaises(iovm.IovmError) as cm:
                ctx.zone_reserve("ring0", 16 * PAGE)
            self.assertEqual(cm.exception.errno, errno.EEXIST)
            z.free()
            with self.assertRaises(iovm.IovmError) as cm:
                ctx.zone_lookup("ring0")
            self.assertEqual(cm.exception.errno, errno.ENOENT)


class TestCommonBuffers(unittest.TestCase):
    def test_cbuf(self):
        with iovm.open("page_size=4K") as ctx:
            cb = ctx.cbuf(3 * PAGE)
            pages = cb.pages()
            self.assertEqual(len(pages), 3)
            self.assertTrue(all(p % PAGE == 0 for p in pages))
            cb.view[:3] = b"abc"
            self.assertEqual(ctypes.string_at(cb.addr, 3), b"abc")
            dom = ctx.domain()
            iova = dom.map_pages(pages)
            for i, p in enumerate(pages):
                self.assertEqual(dom.translate(iova + i * PAGE), (p, iovm.MAP_READ | iovm.MAP_WRITE))
            dom.unmap(iova, 3 * PAGE)
            nc = ctx.cbuf(PAGE, noncoherent=True)
            ctx.sync_for_device(nc)
            ctx.sync_for_cpu(nc, 64)
            nc.close()
            cb.close()
            self.assertTrue(cb.closed)


class TestMemEvents(unittest.TestCase):
    def test_subscribe(self):
        with iovm.open("page_size=4K") as ctx:
            keep = ctx.alloc(3 * PAGE)
            events = []
            sub = ctx.subscribe(lambda ev: events.append((ev.type, ev.va, ev.len)))
            self.assertTrue(events, "committed memory is replayed as COMMIT events")
            self.assertTrue(all(t == iovm.MemEventType.COMMIT for t, _v, _n in events))
            self.assertTrue(any(va <= keep.addr < va + n for _t, va, n in events))
            n = len(events)
            big = ctx.alloc(1 << 20)
            self.assertGreater(len(events), n)
            sub.unsubscribe()
            m = len(events)
            big.free()
            ctx.trim(all=True)
            self.assertEqual(len(events), m)

    def test_refused_commit(self):
        """A subscriber's negative errno refuses a commit: the replay at
        subscription, and an allocation that needs new pages."""
        with iovm.open("page_size=4K") as ctx:
            ctx.alloc(64)
            with self.assertRaises(iovm.IovmError) as cm:
                ctx.subscribe(lambda ev: -errno.ENOSPC)
            self.assertEqual(cm.exception.errno, errno.ENOSPC)
            refuse = []
            with ctx.subscribe(lambda ev: -errno.ENOSPC if refuse else 0):
                refuse.append(1)
                with self.assertRaises(iovm.IovmError) as cm:
                    ctx.alloc(8 << 20)
                self.assertIn(cm.exception.errno, (errno.ENOSPC, errno.ENOMEM))


class TestDomains(unittest.TestCase):
    def setUp(self):
        self.ctx = iovm.open("page_size=4K")

    def tearDown(self):
        self.ctx.close()

    def test_managed_map_translate_unmap(self):
        dom = self.ctx.domain(dma_bits=39, reserved=[(0x10000000, 0x100000)])
        buf = self.ctx.alloc(2 * PAGE, PAGE)
        iova = dom.map(buf.pa, 2 * PAGE, iovm.MAP_READ)
        self.assertFalse(0x10000000 <= iova < 0x10100000)
        self.assertEqual(dom.translate(iova + PAGE), (buf.pa + PAGE, iovm.MAP_READ))
        with self.assertRaises(iovm.IovmError) as cm:
            dom.map(buf.pa, PAGE, iovm.MAP_READ, iova=iova)
        self.assertEqual(cm.exception.errno, errno.EEXIST)
        dom.unmap(iova, 2 * PAGE)
        with self.assertRaises(iovm.IovmError) as cm:
            dom.translate(iova)
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        iova2 = dom.map_ptr(buf, perm=iovm.MAP_READ)
        self.assertEqual(dom.translate(iova2)[0], buf.pa)
        st = dom.stats()
        self.assertEqual(st.type, iovm.DomainType.MANAGED)
        self.assertGreaterEqual(st.leaves_4k, 2)
        dom.unmap(iova2, 2 * PAGE)
        dom.close()
        self.assertTrue(dom.closed)

    def test_identity_and_va(self):
        buf = self.ctx.alloc(PAGE, PAGE)
        ident = self.ctx.domain(iovm.DomainType.IDENTITY)
        self.assertEqual(ident.iova(buf, 5), buf.pa + 5)
        va = self.ctx.domain(iovm.DomainType.VA)
        iova = va.map_ptr(buf)
        self.assertEqual(iova, buf.addr)
        self.assertEqual(va.translate(buf.addr)[0], buf.pa)

    def test_deferred_flush(self):
        dom = self.ctx.domain(flags=iovm.DOMAIN_DEFERRED, flush_batch=64)
        buf = self.ctx.alloc(PAGE, PAGE)
        iova = dom.map(buf.pa, PAGE)
        flushed = dom.stats().flushed_unmaps
        dom.unmap(iova, PAGE)
        # Queued, unless the flush timer (10 ms) took it already: on a
        # loaded machine it may have run between the two calls.
        st = dom.stats()
        self.assertGreaterEqual(st.pending_unmaps + st.flushed_unmaps - flushed, 1)
        dom.flush()
        self.assertEqual(dom.stats().pending_unmaps, 0)

    def test_follow_heap(self):
        dom = self.ctx.domain(flags=iovm.DOMAIN_FOLLOW_HEAP)
        buf = self.ctx.alloc(3 * PAGE)
        base = buf.iova(dom)
        for off in (0, 1, PAGE, 3 * PAGE - 1):
            iova = dom.iova(buf, off)
            self.assertEqual(dom.translate(iova & ~(PAGE - 1))[0], self.ctx.pa(buf, off) & ~(PAGE - 1))
            if self.ctx.xlate(buf).contig > off:
                self.assertEqual(iova, base + off)


class TestEngine(unittest.TestCase):
    """The software DMA engine: descriptors through the IOMMU, the bytes
    checked here."""

    N = 3 * PAGE + 123

    def setUp(self):
        self.ctx = iovm.open("page_size=4K")
        self.dom = self.ctx.domain(flags=iovm.DOMAIN_FOLLOW_HEAP)
        self.dev = self.ctx.device("sw")
        self.dev.attach(self.dom)
        self.q = self.dev.queue(depth=16)
        self.src = self.ctx.buffer(pattern(self.N))
        self.dst = self.ctx.zalloc(self.N)
        self.rec = self.ctx.zalloc(64, 32)

    def tearDown(self):
        self.ctx.close()

    def io(self, buf, off=0):
        return buf.iova(self.dom, off)

    def test_copy_fill_compare_crc(self):
        q, src, dst = self.q, self.src, self.dst
        c = q.run(op=iovm.Op.COPY, src=self.io(src), dst=self.io(dst), len=self.N, tag=1)
        self.assertEqual((c.status, c.bytes_completed), (iovm.Status.SUCCESS, self.N))
        self.assertEqual(dst.read(), src.read())
        # An interior IOVA: bytes 1000.. of the source, to 17.. of the destination.
        c = q.run(op=iovm.Op.COPY, src=self.io(src, 1000), dst=self.io(dst, 17), len=500, tag=2)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(dst.read(500, 17), src.read(500, 1000))

        c = q.run(op=iovm.Op.FILL, dst=self.io(dst), len=self.N, pattern=0x0123456789abcdef, tag=3)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        want = (0x0123456789abcdef).to_bytes(8, "little") * (self.N // 8 + 1)
        self.assertEqual(dst.read(), want[:self.N])

        c = q.run(op=iovm.Op.COMPARE_PATTERN, src=self.io(dst), len=self.N & ~7,
                  pattern=0x0123456789abcdef, flags=iovm.DESC_COMPLETION,
                  completion=self.io(self.rec), tag=4)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(self.rec.as_struct(iovm.Completion).result, 0)

        dst.write(src.read())
        dst[2000] = src[2000] ^ 0xff
        c = q.run(op=iovm.Op.COMPARE, src=self.io(src), dst=self.io(dst), len=self.N,
                  flags=iovm.DESC_COMPLETION, completion=self.io(self.rec), tag=5)
        rec = self.rec.as_struct(iovm.Completion)
        self.assertEqual((rec.status, rec.result, rec.mismatch), (iovm.Status.SUCCESS, 1, 2000))

        c = q.run(op=iovm.Op.CRC32C, src=self.io(src), len=self.N, crc_seed=0x1234,
                  flags=iovm.DESC_COMPLETION, completion=self.io(self.rec), tag=6)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(self.rec.as_struct(iovm.Completion).crc, crc32c(src.read(), 0x1234))

        dst.fill(0)
        c = q.run(op=iovm.Op.COPY_CRC, src=self.io(src), dst=self.io(dst), len=self.N,
                  flags=iovm.DESC_COMPLETION, completion=self.io(self.rec), tag=7)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(dst.read(), src.read())
        self.assertEqual(self.rec.as_struct(iovm.Completion).crc, crc32c(src.read()))

        dst2 = self.ctx.zalloc(PAGE)
        c = q.run(op=iovm.Op.DUALCAST, src=self.io(src), dst=self.io(dst), dst2=self.io(dst2),
                  len=PAGE, tag=8)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(dst2.read(), src.read(PAGE))

        st = q.stats()
        self.assertEqual((st.submitted, st.completed), (8, 8))
        self.assertGreaterEqual(st.bytes, 4 * self.N)
        acc, dirty = self.dom.read_dirty(self.io(dst2) & ~(PAGE - 1), PAGE, clear=True)
        self.assertTrue(acc and dirty)
        self.assertEqual(self.dom.read_dirty(self.io(dst2) & ~(PAGE - 1), PAGE), (False, False))

    def test_gather_and_batch(self):
        pieces = [self.ctx.buffer(pattern(1000, s)) for s in (1, 2, 3)]
        sgl = self.ctx.zalloc(3 * ctypes.sizeof(iovm.Sge), 8)
        arr = (iovm.Sge * 3).from_address(sgl.addr)
        for i, p in enumerate(pieces):
            arr[i] = iovm.Sge(iova=self.io(p), len=1000)
        c = self.q.run(op=iovm.Op.GATHER, src=self.io(sgl), sg_count=3, dst=self.io(self.dst),
                       len=3000, tag=9)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(self.dst.read(3000), b"".join(p.read() for p in pieces))

        batch = self.ctx.zalloc(2 * ctypes.sizeof(iovm.Desc), 64)
        d = (iovm.Desc * 2).from_address(batch.addr)
        d[0] = iovm.Desc(op=iovm.Op.FILL, dst=self.io(self.dst), len=64, pattern=0x4141414141414141)
        d[1] = iovm.Desc(op=iovm.Op.COPY, src=self.io(self.dst), dst=self.io(self.dst, 64), len=64)
        c = self.q.run(op=iovm.Op.BATCH, src=self.io(batch), len=2, tag=10)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(self.dst.read(128), b"A" * 128)

    def test_worker_queue(self):
        q = self.dev.queue(depth=8, polled=False)
        c = q.run(op=iovm.Op.COPY, src=self.io(self.src), dst=self.io(self.dst), len=self.N, tag=11)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(self.dst.read(), self.src.read())
        with self.assertRaises(iovm.IovmError) as cm:
            q.process(1)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        q.close()

    def test_submit_process_reap(self):
        for tag in range(4):
            self.q.submit(iovm.Desc(op=iovm.Op.NOOP, tag=100 + tag))
        self.assertEqual(self.q.process(), 4)
        cqes = self.q.reap(16)
        self.assertEqual([c.tag for c in cqes], [100, 101, 102, 103])
        self.assertEqual(self.q.reap(), [])

    def test_faults(self):
        lone = self.ctx.alloc(PAGE, PAGE)
        lone.fill(0x11)
        dom = self.ctx.domain()
        dev = self.ctx.device()
        dev.attach(dom)
        q = dev.queue(depth=8)
        iova = dom.map(lone.pa, PAGE, iovm.MAP_READ)
        c = q.run(op=iovm.Op.FILL, dst=iova, len=64, tag=1)
        self.assertEqual(c.status, iovm.Status.PAGE_FAULT)
        self.assertEqual(lone.read(64), b"\x11" * 64)
        f = dom.fault_pop()
        self.assertEqual((f.reason, f.access, f.iova.addr), (iovm.FaultReason.PERMISSION,
                                                              iovm.MAP_WRITE, iova))
        self.assertEqual(f.device, dev.id)
        self.assertIsNone(dom.fault_pop())
        # A handler that maps what faulted, for a descriptor that blocks on faults.
        seen = []

        def handler(fault):
            seen.append(fault.iova.addr)
            dom.unmap(iova, PAGE)
            dom.map(lone.pa, PAGE, iovm.MAP_READ | iovm.MAP_WRITE, iova=iova)
            return 0
        dom.set_fault_handler(handler)
        c = q.run(op=iovm.Op.FILL, dst=iova, len=64, pattern=0x2222222222222222,
                  flags=iovm.DESC_BLOCK_ON_FAULT, tag=2)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(seen, [iova])
        self.assertEqual(lone.read(64), b"\x22" * 64)
        dom.set_fault_handler(None)
        # No domain for the PASID: the device's own fault log.
        c = q.run(op=iovm.Op.FILL, dst=iova, len=64, pasid=9, tag=3)
        self.assertEqual(c.status, iovm.Status.PAGE_FAULT)
        f = dev.fault_pop()
        self.assertEqual((f.reason, f.pasid), (iovm.FaultReason.NO_DOMAIN, 9))
        self.assertIsNone(dev.fault_pop())
        info = dev.query()
        self.assertEqual(info.kind, iovm.DeviceKind.SW)
        self.assertEqual(info.unattached_faults, 1)
        dev.detach()
        q.close()
        dev.close()
        dom.close()


@unittest.skipUnless(os.environ.get("IOVM_VERBS_LIBRARY"),
                     "needs IOVM_VERBS_LIBRARY: meson sets it to the stand-in libibverbs of tests/dev")
class TestVerbs(unittest.TestCase):
    """A verbs device, against the stand-in libibverbs (tests/dev/fake_ibverbs.c)."""

    def test_verbs_objects(self):
        with iovm.open("page_size=4K") as ctx:
            try:
                dev = ctx.device("verbs:fake0")
            except iovm.IovmError as e:
                if e.errno == errno.EOPNOTSUPP:
                    self.skipTest("libiovm built without rdma-core's headers: %s" % e)
                raise
            v = dev.verbs()
            self.assertEqual(iovm._s(v.name), "fake0")
            self.assertTrue(v.context and v.pd)
            self.assertEqual(dev.query().kind, iovm.DeviceKind.VERBS)
            dev.close()


class TestPoolsAndGuests(unittest.TestCase):
    def setUp(self):
        self.ctx = iovm.open("page_size=4K")

    def tearDown(self):
        self.ctx.close()

    def test_pool(self):
        pool = self.ctx.pool_create("py-pool", 16 * PAGE, PAGE, 4)
        self.assertEqual(self.ctx.pool_lookup("py-pool")._ptr, pool._ptr)
        st = self.ctx.phys_stats()
        self.assertEqual(st.nr_pools, 1)
        self.assertEqual(iovm._s(st.pools[0].name), "py-pool")
        g = self.ctx.guest(8 * PAGE, page_size=PAGE, placement=iovm.GuestPlacement.POOL, pool=pool)
        self.assertTrue(g.info().from_pool)
        with self.assertRaises(iovm.IovmError) as cm:
            pool.destroy()
        self.assertEqual(cm.exception.errno, errno.EBUSY)
        g.close()
        pool.destroy()
        self.assertTrue(pool.closed)

    def test_guest(self):
        g = self.ctx.guest(16 * PAGE, page_size=PAGE)
        info = g.info()
        self.assertTrue(info.running)
        self.assertEqual(info.size, 16 * PAGE)
        banks = g.banks()
        self.assertEqual(len(banks), info.nr_banks)
        self.assertEqual(sum(b.len for b in banks), 16 * PAGE)
        p, n = g.ptr(banks[0].gpa.addr + 8)
        self.assertGreaterEqual(n, 8)
        v = g.view(banks[0].gpa.addr, 16)
        self.assertEqual(bytes(v), bytes(16))
        v[:4] = b"gpa0"
        self.assertEqual(ctypes.string_at(p - 8, 4), b"gpa0")
        s2 = g.stage2()
        self.assertEqual(s2.translate(banks[0].gpa.addr)[0], banks[0].pa.addr)
        nested = g.domain()
        iova = nested.map_gpa(banks[0].gpa.addr, PAGE)
        self.assertEqual(nested.translate(iova)[0], banks[0].pa.addr)
        dev = self.ctx.device()
        g.assign(dev)
        with self.assertRaises(iovm.IovmError) as cm:
            g.close()
        self.assertEqual(cm.exception.errno, errno.EBUSY)
        g.unassign(dev)
        g.shutdown()
        self.assertFalse(g.info().running)
        with self.assertRaises(iovm.IovmError) as cm:
            g.ptr(banks[0].gpa.addr)
        self.assertEqual(cm.exception.errno, errno.EAGAIN)
        g.start()
        g.reboot()
        self.assertEqual(bytes(g.view(banks[0].gpa.addr, 4)), bytes(4))
        s2.close()      # the guest's: closing the view frees nothing
        nested.unmap(iova, PAGE)
        nested.close()
        g.close()
        self.assertTrue(g.closed)

    @unittest.skipUnless(any(p.page_size == 2 << 20 and p.free >= 2
                             for p in list(iovm.sysinfo().pools)[:iovm.sysinfo().nr_pools]),
                         "needs two free 2 MiB hugepages")
    def test_hugepages(self):
        with iovm.open("page_size=2M") as ctx:
            try:
                b = ctx.alloc(PAGE, 0, iovm.DMA_PAGE_2M)
            except iovm.IovmError as e:
                if e.errno != errno.ENOMEM:
                    raise
                self.skipTest("the 2 MiB pages went to others meanwhile: %s" % e)
            self.assertEqual(b.xlate().page_size, 2 << 20)
            b.free()
            ctx.trim(all=True)


if __name__ == "__main__":
    unittest.main()
