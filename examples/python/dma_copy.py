#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dma_copy.py - a DMA copy through iovm's software IOMMU and DMA engine,
from Python: a domain that follows the DMA heap, the engine attached to
it, a copy with CRC-32C by IOVA, and the same engine writing into a
bytearray registered as an MR.

    python3 examples/python/dma_copy.py

From the source tree, with a build in build/:
    IOVM_LIBRARY=build/libiovm.so.0 PYTHONPATH=python python3 examples/python/dma_copy.py
"""

import sys

import iovm

LEN = 64 * 1024


def main():
    with iovm.open("page_size=4K") as ctx:
        dom = ctx.domain(flags=iovm.DOMAIN_FOLLOW_HEAP)    # maps each heap page as it is committed
        dev = ctx.device("sw")
        dev.attach(dom)
        q = dev.queue(depth=64)                              # polled: run() works it on this thread

        src = ctx.buffer(bytes(i * 7 & 0xff for i in range(LEN)))
        dst = ctx.zalloc(LEN)
        rec = ctx.zalloc(64, 32)                             # a completion record, 32-byte aligned
        print("source at PA %#x, IOVA %#x" % (src.pa, src.iova(dom)))
        print("destination at PA %#x, IOVA %#x" % (dst.pa, dst.iova(dom)))

        cqe = q.run(op=iovm.Op.COPY_CRC, src=src.iova(dom), dst=dst.iova(dom), len=LEN,
                    flags=iovm.DESC_COMPLETION, completion=rec.iova(dom), tag=1)
        crc = rec.as_struct(iovm.Completion).crc
        if cqe.status != iovm.Status.SUCCESS or dst.read() != src.read():
            print("copy failed: %s" % iovm.status_name(cqe.status), file=sys.stderr)
            return 1
        print("copied %d bytes through the IOMMU, CRC-32C %#010x" % (cqe.bytes_completed, crc))

        # Python's own memory, registered: the device reaches it by key.
        own = bytearray(4096)
        with dom.register(own) as mr:
            cqe = q.run(op=iovm.Op.COPY, flags=iovm.DESC_KEYED, src=src.iova(dom),
                        dst=iovm.address_of(own), dst_key=mr.lkey, len=len(own), tag=2)
        if cqe.status != iovm.Status.SUCCESS or own != src.read(len(own)):
            print("keyed copy failed: %s" % iovm.status_name(cqe.status), file=sys.stderr)
            return 1
        print("copied %d bytes into a registered bytearray" % cqe.bytes_completed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
