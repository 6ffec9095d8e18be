# SPDX-License-Identifier: MIT
"""SPDK's memory maps (iovm/memmap.h) from Python: a map told of memory
registered and unregistered, translations set, cleared and looked up with
their contiguous length, vtophys of registered memory, and whether a PA is
the host's."""

import ctypes
import mmap
import unittest
from ctypes import byref, c_uint64, c_void_p

import iovm
from iovm import raw, PA

G = 1 << 21  # the maps' granule


class TestMemMap(unittest.TestCase):
    def setUp(self):
        self.ctx = iovm.open("page_size=4K")
        self.events = []

    def tearDown(self):
        self.ctx.close()

    def _aligned(self, n):
        """n granules of private memory, 2 MiB aligned, touched."""
        m = mmap.mmap(-1, (n + 1) * G, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        base = ctypes.addressof(ctypes.c_char.from_buffer(m))
        addr = (base + G - 1) & ~(G - 1)
        ctypes.memset(addr, 0x5A, n * G)
        return m, addr

    def test_register_translate_vtophys(self):
        events = self.events

        def notify(cb_ctx, mp, action, vaddr, size):
            events.append((action, vaddr, size))
            return 0

        def contiguous(cb_ctx, t1, t2):
            return 1 if t2 == t1 + G else 0

        ops = iovm.MemMapOps(iovm.MEM_MAP_NOTIFY_FN(notify), iovm.MEM_MAP_CONTIGUOUS_FN(contiguous))
        m, addr = self._aligned(4)
        mp = c_void_p()
        raw.iovm_mem_map_alloc(self.ctx._ptr, 0xDEAD, byref(ops), None, byref(mp))
        raw.iovm_mem_register(self.ctx._ptr, addr, 4 * G)
        self.assertIn((iovm.MEM_MAP_NOTIFY_REGISTER, addr, 4 * G), events)
        # vtophys of registered memory: contiguous over the registration.
        size = c_uint64(4 * G)
        pa = raw.iovm_vtophys(self.ctx._ptr, addr + 100, byref(size))
        self.assertEqual(size.value, 4 * G - 100)
        self.assertEqual(raw.iovm_pa_is_host(self.ctx._ptr, PA(pa)), 0)
        # Translations: set, looked up with their contiguous length, cleared.
        raw.iovm_mem_map_set_translation(mp, addr, G, 0x100000)
        raw.iovm_mem_map_set_translation(mp, addr + G, G, 0x100000 + G)
        size = c_uint64(2 * G)
        # As SPDK: the translation of the granule, without the offset.
        self.assertEqual(raw.iovm_mem_map_translate(mp, addr + 7, byref(size)), 0x100000)
        self.assertEqual(size.value, 2 * G - 7)
        raw.iovm_mem_map_clear_translation(mp, addr + G, G)
        size = c_uint64(G)
        self.assertEqual(raw.iovm_mem_map_translate(mp, addr + G, byref(size)), 0xDEAD)
        with self.assertRaises(iovm.IovmError) as e:
            raw.iovm_mem_map_set_translation(mp, addr + 1, G, 0)
        self.assertEqual(e.exception.errno, 22)
        raw.iovm_mem_unregister(self.ctx._ptr, addr, 4 * G)
        self.assertIn((iovm.MEM_MAP_NOTIFY_UNREGISTER, addr, 4 * G), events)
        raw.iovm_mem_map_free(byref(mp))
        self.assertFalse(mp.value)
        del m

    def test_pa_is_host_of_dma_memory(self):
        buf = self.ctx.alloc(4096)
        host = raw.iovm_pa_is_host(self.ctx._ptr, PA(buf.pa))
        self.assertIn(host, (0, 1))
        self.assertEqual(bool(host), bool(buf.xlate().flags & iovm.XLATE_PA_REAL))


if __name__ == "__main__":
    unittest.main()
