# SPDX-License-Identifier: MIT
"""Lifetimes: what holds what, what garbage collection frees and in which
order, what a context's close() does to what was made from it, and an
interpreter that exits with everything still alive."""

import gc
import unittest
import weakref

import iovm
from test_mp import run_child

PAGE = 4096


class TestLifetimes(unittest.TestCase):
    def test_buffer_keeps_context_alive(self):
        ctx = iovm.open("page_size=4K")
        ref = weakref.ref(ctx)
        state = ctx._state
        buf = ctx.alloc(PAGE)
        del ctx
        gc.collect()
        self.assertIsNotNone(ref(), "a buffer keeps its context")
        buf.write(b"still here")
        self.assertEqual(buf.read(10), b"still here")
        self.assertEqual(buf.xlate().pa.addr, buf.pa)
        del buf
        gc.collect()
        self.assertIsNone(ref(), "the context goes with its last buffer")
        self.assertFalse(state.open, "and is closed")

    def test_chain_of_objects(self):
        """A queue alone keeps its device, the device its domain, the
        domain its context: a copy still runs."""
        ctx = iovm.open("page_size=4K")
        dom = ctx.domain(flags=iovm.DOMAIN_FOLLOW_HEAP)
        dev = ctx.device()
        dev.attach(dom)
        q = dev.queue(depth=8)
        src, dst = ctx.buffer(b"x" * 64), ctx.zalloc(64)
        s, d = src.iova(dom), dst.iova(dom)
        refs = [weakref.ref(o) for o in (ctx, dom, dev)]
        state = ctx._state
        del ctx, dom, dev
        gc.collect()
        self.assertTrue(all(r() for r in refs))
        c = q.run(op=iovm.Op.COPY, src=s, dst=d, len=64, tag=1)
        self.assertEqual(c.status, iovm.Status.SUCCESS)
        self.assertEqual(dst.read(), b"x" * 64)
        del q, src, dst, c
        gc.collect()
        self.assertEqual([r() for r in refs], [None, None, None])
        self.assertFalse(state.open)

    def test_collection_frees_memory(self):
        with iovm.open("page_size=4K") as ctx:
            before = ctx.mem_stats().in_use
            bufs = [ctx.alloc(64 << 10) for _ in range(8)]
            self.assertGreaterEqual(ctx.mem_stats().in_use, before + 8 * (64 << 10))
            del bufs
            gc.collect()
            self.assertLessEqual(ctx.mem_stats().in_use, before)
            dom = ctx.domain()
            mr = dom.register(bytearray(PAGE))
            self.assertEqual(ctx.reg_stats().mrs, 1)
            del mr
            gc.collect()
            self.assertEqual(ctx.reg_stats().mrs, 0)
            dom.close()     # no MR uses it any more

    def test_close_context_under_live_objects(self):
        ctx = iovm.open("page_size=4K")
        buf = ctx.alloc(PAGE)
        view = buf.view
        dom = ctx.domain()
        dev = ctx.device()
        dev.attach(dom)
        q = dev.queue()
        mr = dom.register(bytearray(PAGE))
        z = ctx.zone_reserve("z", PAGE)
        ctx.close()
        for o in (buf, dom, dev, q, mr, z):
            self.assertTrue(o.closed, o)
        with self.assertRaises(ValueError):
            view[0]             # released: not a read of unmapped memory
        with self.assertRaises(ValueError):
            buf.read(1)
        with self.assertRaises(ValueError):
            q.submit(op=iovm.Op.NOOP)
        for o in (buf, dom, dev, q, mr, z):
            o.close()           # closing again: nothing
        del buf, dom, dev, q, mr, z
        gc.collect()

    def test_busy_close_keeps_the_object(self):
        with iovm.open("page_size=4K") as ctx:
            dom = ctx.domain()
            dev = ctx.device()
            dev.attach(dom)
            with self.assertRaises(iovm.IovmError) as cm:
                dom.close()
            self.assertEqual(cm.exception.errno, iovm._errno.EBUSY)
            self.assertFalse(dom.closed)
            dev.detach()
            dom.close()
            self.assertTrue(dom.closed)

    def test_exit_with_everything_alive(self):
        """An interpreter that exits with objects of every kind alive, in
        an order no close() would take, exits cleanly."""
        out = run_child("""
            import mmap
            dev = None
            ctx = iovm.open("page_size=4K")
            dev = ctx.device()                  # before the domain it is attached to
            dom = ctx.domain(flags=iovm.DOMAIN_FOLLOW_HEAP)
            dev.attach(dom)
            q = dev.queue(depth=4)
            q2 = dev.queue(depth=4, polled=False)
            bufs = [ctx.alloc(n) for n in (1, 4096, 1 << 20)]
            view = bufs[1].view
            rc = dom.rcache()
            held = rc.get(bytearray(4096))
            m = mmap.mmap(-1, 8192, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            mr = dom.register(iovm.address_of(m), 8192)
            sub = ctx.subscribe(lambda ev: 0)
            g = ctx.guest(16 * 4096, page_size=4096)
            s2 = g.stage2()
            cb = ctx.cbuf(8192)
            z = ctx.zone_reserve("zone", 64)
            iovm.log_set_handler(lambda level, msg: None)
            print("alive")
            """)
        self.assertEqual(out, ["alive"])


if __name__ == "__main__":
    unittest.main()
