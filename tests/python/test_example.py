# SPDX-License-Identifier: MIT
"""examples/python/dma_copy.py runs against this build and prints the
CRC-32C of what it copied."""

import os
import re
import subprocess
import sys
import unittest

from test_dma import crc32c

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class TestExample(unittest.TestCase):
    def test_dma_copy(self):
        r = subprocess.run([sys.executable, os.path.join(TOP, "examples", "python", "dma_copy.py")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"CRC-32C (0x[0-9a-f]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        data = bytes(i * 7 & 0xff for i in range(64 * 1024))
        self.assertEqual(int(m.group(1), 16), crc32c(data))
        self.assertIn("copied 4096 bytes into a registered bytearray", r.stdout)


if __name__ == "__main__":
    unittest.main()
