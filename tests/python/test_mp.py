# SPDX-License-Identifier: MIT
"""Sharing with other processes: a share attached from a Python
subprocess (the same zone, the same physical addresses, memory the child
keeps surviving its exit), shared domains, and the software engine
served to client processes through remote queues."""

import json
import os
import subprocess
import sys
import textwrap
import unittest

import iovm
from iovm import _lib

PAGE = 4096
HEAP = 8 << 20


def share_name(what):
    return "iovm-py-%s-%d" % (what, os.getpid())


def run_child(code, *args, timeout=60):
    """Run Python code in a new process with this one's environment (so
    the same library); return its stdout lines but the trace, which is
    merged into this process's (tests/python/run.py counts the calls)."""
    prologue = textwrap.dedent("""\
        import atexit, json, sys
        import iovm
        from iovm import _lib
        def _dump():
            if _lib.TRACE is not None:
                print("TRACE " + json.dumps({k: sorted(v) for k, v in _lib.TRACE.items()}), flush=True)
        atexit.register(_dump)
        """)
    r = subprocess.run([sys.executable, "-c", prologue + textwrap.dedent(code)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    lines = []
    for line in r.stdout.splitlines():
        if line.startswith("TRACE "):
            if _lib.TRACE is not None:
                for k, v in json.loads(line[6:]).items():
                    _lib.TRACE.setdefault(k, set()).update(v)
        else:
            lines.append(line)
    if r.returncode:
        raise AssertionError("the child failed (%d):\n%s\n%s" % (r.returncode, r.stdout, r.stderr[-3000:]))
    return lines


class TestShare(unittest.TestCase):
    def test_attach_from_subprocess(self):
        name = share_name("share")
        with iovm.open("page_size=4K") as owner:
            owner.share(name, heap_size=HEAP, page_size=PAGE)
            info = owner.share_info()
            self.assertTrue(info.owner)
            self.assertEqual(iovm._s(info.name), name)
            self.assertEqual(info.owner_pid, os.getpid())
            z = owner.zone_reserve("py-zone", 2 * PAGE)
            z.view[:11] = b"from parent"
            out = run_child("""
                name, want_pa = sys.argv[1], int(sys.argv[2])
                with iovm.attach(name, "page_size=4K") as ctx:
                    info = ctx.share_info()
                    assert not info.owner and info.processes >= 2, info
                    z = ctx.zone_lookup("py-zone")
                    assert z.pa == want_pa, (hex(z.pa), hex(want_pa))
                    assert bytes(z.view[:11]) == b"from parent"
                    z.view[100:110] = b"from child"
                    kept = ctx.alloc(PAGE_, 0, iovm.DMA_KEEP)
                    kept.write(b"kept by the share")
                    gone = ctx.alloc(PAGE_)
                    ctx.share_check()
                    print(kept.pa, gone.pa, ctx.pa(z))
                """.replace("PAGE_", str(PAGE)), name, z.pa)
            kept_pa, gone_pa, child_zone_pa = (int(x) for x in out[-1].split())
            self.assertEqual(child_zone_pa, z.pa, "a PA is the same in every process")
            self.assertEqual(bytes(z.view[100:110]), b"from child")
            # The child closed: what it kept is the share's, here at its PA.
            p = owner.ptr(kept_pa)
            self.assertEqual(iovm._lib.ctypes.string_at(p, 17), b"kept by the share")
            info = owner.share_info()
            self.assertGreaterEqual(info.attaches, 1)
            self.assertEqual(info.processes, 1)
            self.assertGreaterEqual(owner.share_reap(), 0)
            owner.share_check()
            with self.assertRaises(iovm.IovmError) as cm:
                owner.share(name + "x")
            self.assertEqual(cm.exception.errno, iovm._errno.EBUSY)

    def test_attach_in_process(self):
        name = share_name("same")
        with iovm.open("page_size=4K") as owner:
            owner.share(name, heap_size=HEAP, page_size=PAGE)
            with iovm.attach(name, "page_size=4K") as other:
                b = other.alloc(PAGE, PAGE)
                b.write(b"shared heap")
                self.assertEqual(iovm._lib.ctypes.string_at(owner.ptr(b.pa), 11), b"shared heap")
                self.assertFalse(other.share_info().owner)

    def test_shared_domain(self):
        name = share_name("dom")
        with iovm.open("page_size=4K") as owner:
            owner.share(name, heap_size=HEAP, page_size=PAGE)
            dom = owner.share_domain("sd0")
            buf = owner.alloc(PAGE, PAGE, iovm.DMA_KEEP)
            iova = dom.map_ptr(buf)
            self.assertEqual(dom.translate(iova)[0], buf.pa)
            with self.assertRaises(iovm.IovmError) as cm:
                owner.share_domain_open("sd0")
            self.assertEqual(cm.exception.errno, iovm._errno.EBUSY)   # one view per process
            out = run_child("""
                with iovm.attach(sys.argv[1], "page_size=4K") as ctx:
                    d = ctx.share_domain_open("sd0")
                    print(d.translate(int(sys.argv[2]))[0])
                    d.close()
                """, name, iova)
            self.assertEqual(int(out[-1]), buf.pa)
            dom.unmap(iova, PAGE)
            dom.close()     # the last view: the domain goes with it
            with self.assertRaises(iovm.IovmError) as cm:
                owner.share_domain_open("sd0")
            self.assertEqual(cm.exception.errno, iovm._errno.ENOENT)


class TestDeviceServer(unittest.TestCase):
    def test_remote_queue(self):
        name, dev = share_name("srv"), share_name("engine")
        with iovm.open("page_size=4K") as owner:
            owner.share(name, heap_size=HEAP, page_size=PAGE)
            srv = owner.serve(dev, workers=1)
            with iovm.attach(name, "page_size=4K") as cl:
                q = cl.rqueue(dev, depth=16)
                self.assertNotEqual(q.pasid, 0)
                a = cl.buffer(bytes(range(256)) * 32, PAGE)
                b = cl.zalloc(8192, PAGE)
                ia, ib = q.map(a, perm=iovm.MAP_READ), q.map(b)
                c = q.run(op=iovm.Op.COPY, src=ia, dst=ib, len=8192, tag=1)
                self.assertEqual(c.status, iovm.Status.SUCCESS)
                self.assertEqual(b.read(), a.read())
                # The client's own memory, through a registration.
                own = bytearray(4 * PAGE)
                mr = cl.domain().register(own)
                io = q.map_mr(mr)
                c = q.run(op=iovm.Op.COPY, src=ia, dst=io + 8, len=100, tag=2)
                self.assertEqual(c.status, iovm.Status.SUCCESS)
                self.assertEqual(bytes(own[8:108]), bytes(range(100)))
                q.unmap_mr(mr)
                mr.dereg()
                q.set_fault_handler(lambda addr, access: -iovm._errno.EFAULT)
                q.set_fault_handler(None)
                q.unmap(ia, 8192)
                c = q.run(op=iovm.Op.COPY, src=ia, dst=ib, len=64, tag=3)
                self.assertEqual(c.status, iovm.Status.PAGE_FAULT)
                self.assertGreaterEqual(srv.info().descriptors, 3)
                self.assertGreaterEqual(srv.info().clients, 1)
                q.close()
            # A client in another process.
            out = run_child("""
                with iovm.attach(sys.argv[1], "page_size=4K") as ctx:
                    q = ctx.rqueue(sys.argv[2], 8)
                    a = ctx.buffer(b"remote engine!" * 300, 4096)
                    b = ctx.zalloc(4096, 4096)
                    c = q.run(op=iovm.Op.COPY, src=q.map(a, 4096), dst=q.map(b), len=4096, tag=9)
                    print(c.status, b.read(14).decode())
                    q.close()
                """, name, dev)
            self.assertEqual(out[-1], "%d remote engine!" % iovm.Status.SUCCESS)
            srv.stop()
            self.assertTrue(srv.closed)

    def test_context_close_stops_server_and_queues(self):
        """Closing the owner closes its server and remote queues first, as
        iovm_close() needs."""
        name, dev = share_name("srv2"), share_name("engine2")
        owner = iovm.open("page_size=4K")
        owner.share(name, heap_size=HEAP, page_size=PAGE)
        srv = owner.serve(dev)
        client = iovm.attach(name, "page_size=4K")
        q = client.rqueue(dev, 8)
        client.close()
        self.assertTrue(q.closed)
        owner.close()
        self.assertTrue(srv.closed)


if __name__ == "__main__":
    unittest.main()
