# SPDX-License-Identifier: MIT
"""Run the Python bindings' tests (tests/python/test_*.py), then check
that every binding was called at least once and came out well, and that
every binding that can fail was seen failing: a function bound but never
exercised fails the run.

    IOVM_LIBRARY=build/libiovm.so.0 PYTHONPATH=python python3 tests/python/run.py [-v] [pattern]

meson runs it as the test python_bindings (suite python).
"""

import os
import sys
import unittest

os.environ["IOVM_PY_TRACE"] = "1"   # before iovm is imported: the bindings record their calls
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# Bindings a machine without the hardware cannot call with good input,
# and why. Their bad input (the software engine: -EOPNOTSUPP) is tested.
NO_GOOD_INPUT = {
    "iovm_device_bar": "a VFIO device",
    "iovm_device_config_read": "a VFIO device",
    "iovm_device_config_write": "a VFIO device",
    "iovm_device_msi": "a VFIO device with MSI",
}
if not os.environ.get("IOVM_VERBS_LIBRARY"):    # meson's test sets the stand-in of tests/dev
    NO_GOOD_INPUT["iovm_device_verbs"] = "a verbs device, or IOVM_VERBS_LIBRARY"


def main(argv):
    verbosity = 2 if "-v" in argv else 1
    args = [a for a in argv if a != "-v"]
    pattern = args[0] if args else "test_*.py"
    import iovm
    from iovm import _lib
    suite = unittest.defaultTestLoader.discover(HERE, pattern=pattern, top_level_dir=HERE)
    result = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    if not result.wasSuccessful():
        return 1
    if pattern != "test_*.py":
        return 0
    trace = _lib.TRACE
    no_ok, no_error = [], []
    for name, (_r, _a, how) in sorted(_lib.BINDINGS.items()):
        seen = trace.get(name, set())
        if "ok" not in seen and name not in NO_GOOD_INPUT:
            no_ok.append(name)
        if how is not None and "error" not in seen:
            no_error.append(name)
    print("bindings: %d; called with good input: %d; seen failing: %d of %d that can"
          % (len(_lib.BINDINGS), sum("ok" in trace.get(n, ()) for n in _lib.BINDINGS),
             sum("error" in trace.get(n, ()) for n in _lib.BINDINGS),
             sum(b[2] is not None for b in _lib.BINDINGS.values())))
    for name, why in sorted(NO_GOOD_INPUT.items()):
        print("not called with good input: %s (needs %s)" % (name, why))
    status = 0
    if no_error:
        print("FAIL: bindings never seen failing on bad input: " + " ".join(no_error))
        status = 1
    if no_ok:
        if result.skipped:
            print("note: not called with good input, with tests skipped: " + " ".join(no_ok))
        else:
            print("FAIL: bindings never called with good input: " + " ".join(no_ok))
            status = 1
    del iovm
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
