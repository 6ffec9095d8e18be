# SPDX-License-Identifier: MIT
"""The bindings against the headers: every IOVM_API prototype has a
binding with the same argument count and types, every public struct a
mirror with the C compiler's layout, and every IOVM_* constant the C
value. A function, struct or constant added to include/iovm/*.h without
its binding fails here."""

import ctypes
import os
import shlex
import shutil
import subprocess
import tempfile
import unittest
from ctypes import POINTER, c_bool, c_char_p, c_int, c_int64, c_size_t, c_uint, c_uint32, c_uint64, c_void_p

import iovm
import iovm_headers
from iovm import _lib

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INCLUDE = os.environ.get("IOVM_INCLUDE", os.path.join(TOP, "include"))
INCDIR = os.path.join(INCLUDE, "iovm")

SCALARS = {
    "int": c_int, "unsigned": c_uint, "uint32_t": c_uint32, "uint64_t": c_uint64,
    "int64_t": c_int64, "size_t": c_size_t, "bool": c_bool,
}
ADDR_TYPES = {"iovm_pa_t": "iovm_pa", "iovm_hpa_t": "iovm_hpa", "iovm_iova_t": "iovm_iova",
              "iovm_gpa_t": "iovm_gpa"}

# Public structs with no mirror, and why.
UNMIRRORED = {}


def _fnptr_typedefs():
    """{typedef name: (return type, [parameter types])} of the headers'
    function-pointer typedefs."""
    import re
    out = {}
    for _h, text in iovm_headers.headers(INCDIR):
        text = iovm_headers.strip_comments(text)
        for m in re.finditer(r"typedef\s+([^;()]*?)\(\s*\*\s*(\w+)\s*\)\s*\(([^;]*)\)\s*;", text):
            out[m.group(2)] = (iovm_headers.normalize_type(m.group(1)),
                               [iovm_headers.param_type(p) for p in iovm_headers.split_params(m.group(3))])
    return out


FNPTRS = _fnptr_typedefs()


def expected_type(ctype):
    """The ctypes type a binding must use for a C type of the headers."""
    t = iovm_headers.normalize_type(ctype)
    if t == "void":
        return None
    if t in SCALARS:
        return SCALARS[t]
    if t.startswith("enum "):
        return c_int
    if t in ADDR_TYPES:
        return _lib.STRUCTS[ADDR_TYPES[t]]
    if t in FNPTRS:
        return ("fnptr",) + FNPTRS[t]
    if "(*)" in ctype:
        ret, params = ctype.split("(*)", 1)
        return ("fnptr", iovm_headers.normalize_type(ret),
                [iovm_headers.param_type(p) for p in iovm_headers.split_params(params.strip()[1:-1])])
    base, _, stars = t.partition(" *")
    stars = "*" + stars
    n = stars.count("*")
    if n == 1:
        if base == "char":
            return c_char_p
        if base == "void":
            return c_void_p
        if base in SCALARS:
            return POINTER(SCALARS[base])
        if base in ADDR_TYPES:
            return POINTER(_lib.STRUCTS[ADDR_TYPES[base]])
        if base.startswith("struct "):
            tag = base[len("struct "):]
            return POINTER(_lib.STRUCTS[tag]) if tag in _lib.STRUCTS else c_void_p
    if n == 2:
        if base == "void":
            return POINTER(c_void_p)
        if base.startswith("struct "):
            tag = base[len("struct "):]
            return POINTER(POINTER(_lib.STRUCTS[tag])) if tag in _lib.STRUCTS else POINTER(c_void_p)
    raise AssertionError("no rule for C type %r" % ctype)


class TestPrototypes(unittest.TestCase):
    protos = iovm_headers.prototypes(INCDIR)

    def test_found_the_headers(self):
        self.assertGreater(len(self.protos), 100, "the headers' prototypes were not found")

    def test_every_function_is_bound(self):
        missing = sorted(set(self.protos) - set(_lib.BINDINGS))
        self.assertEqual(missing, [], "IOVM_API functions without a binding in python/iovm/_lib.py")
        extra = sorted(set(_lib.BINDINGS) - set(self.protos))
        self.assertEqual(extra, [], "bindings of functions the headers do not declare")
        for name in self.protos:
            self.assertTrue(hasattr(iovm.raw, name), name)

    def _check_type(self, where, ctype, got):
        want = expected_type(ctype)
        if isinstance(want, tuple):   # a function pointer: a CFUNCTYPE of the same signature
            self.assertTrue(isinstance(got, type) and issubclass(got, ctypes._CFuncPtr),
                            "%s: %s wants a CFUNCTYPE, the binding has %r" % (where, ctype, got))
            _f, ret, params = want
            self.assertEqual(len(got._argtypes_), len(params),
                             "%s: %s has %d parameters, the CFUNCTYPE %d" % (
                                 where, ctype, len(params), len(got._argtypes_)))
            self._check_type(where + " (its return)", ret, got._restype_)
            for i, (p, g) in enumerate(zip(params, got._argtypes_)):
                self._check_type("%s (its argument %d)" % (where, i + 1), p, g)
            return
        self.assertIs(got, want, "%s: C type %r wants %r, the binding has %r" % (where, ctype, want, got))

    def test_argument_counts_and_types(self):
        for name, (hname, ret, params) in sorted(self.protos.items()):
            if name not in _lib.BINDINGS:
                continue
            with self.subTest(function=name):
                restype, argtypes, _how = _lib.BINDINGS[name]
                self.assertEqual(len(argtypes), len(params),
                                 "%s (iovm/%s): %d parameters, the binding has %d" % (
                                     name, hname, len(params), len(argtypes)))
                self._check_type(name + " return", ret, restype)
                for i, (p, a) in enumerate(zip(params, argtypes)):
                    self._check_type("%s argument %d" % (name, i + 1), p, a)
                fn = getattr(iovm.raw, name)
                self.assertEqual(list(fn.argtypes), list(argtypes))

    def test_failure_conventions(self):
        """How each binding detects failure agrees with its return type."""
        for name, (restype, _a, how) in _lib.BINDINGS.items():
            if how == _lib.NEG:
                self.assertIn(restype, (c_int, c_int64), name)
            elif how == _lib.NULL:
                self.assertIs(restype, c_void_p, name)
            elif how == _lib.ZERO:
                self.assertIs(restype, c_size_t, name)


class TestConstants(unittest.TestCase):
    def test_constants_module_is_current(self):
        with open(os.path.join(TOP, "python", "iovm", "constants.py"), encoding="utf-8") as f:
            have = f.read()
        self.assertEqual(have, iovm_headers.render_constants(INCDIR),
                         "python/iovm/constants.py is stale: python3 python/iovm_headers.py "
                         "include/iovm > python/iovm/constants.py")

    def test_every_constant_exported(self):
        for _h, name, value, _k in iovm_headers.constants(INCDIR):
            self.assertEqual(getattr(iovm, name), value, name)
            self.assertEqual(getattr(iovm, name[len("IOVM_"):]), value, name)

    def test_enums(self):
        self.assertEqual(iovm.Op.COPY, iovm.IOVM_OP_COPY)
        self.assertEqual(iovm.Status.PAGE_FAULT, iovm.IOVM_STATUS_PAGE_FAULT)
        self.assertEqual(iovm.DomainType.VA, iovm.IOVM_DOMAIN_VA)
        self.assertEqual(iovm.FaultStage.ONLY, iovm.IOVM_STAGE_ONLY)
        for tag, names in iovm.constants.ENUMS.items():
            self.assertTrue(names, tag)


class TestStructs(unittest.TestCase):
    def test_every_struct_mirrored(self):
        for tag, hname in iovm_headers.structs(INCDIR).items():
            if tag in UNMIRRORED:
                continue
            self.assertIn(tag, _lib.STRUCTS, "struct %s (iovm/%s) has no mirror" % (tag, hname))


def _members(cls, prefix=""):
    """(C member path, ctypes offset, size, type) of each field, the
    anonymous ones inlined, arrays of unnamed structs entered."""
    anon = getattr(cls, "_anonymous_", ())
    for f in cls._fields_:
        name, typ = f[0], f[1]
        fld = getattr(cls, name)
        if name in anon:
            for path, off, size, t in _members(typ, prefix):
                yield path, fld.offset + off, size, t
            continue
        yield prefix + name, fld.offset, fld.size, typ
        if issubclass(typ, ctypes.Array) and issubclass(typ._type_, ctypes.Structure) \
                and typ._type_ not in _lib.STRUCTS.values():
            for path, off, size, t in _members(typ._type_, prefix + name + "[1]."):
                yield path, fld.offset + ctypes.sizeof(typ._type_) + off, size, t


class TestAgainstCompiler(unittest.TestCase):
    """A C program, generated from the mirrors, prints what the compiler
    says: sizes, alignments, member offsets and sizes, constants."""

    @classmethod
    def setUpClass(cls):
        cc = shlex.split(os.environ.get("IOVM_CC", "cc"))
        if not shutil.which(cc[0]):
            raise unittest.SkipTest("no C compiler (%s): set IOVM_CC" % cc[0])
        lines = ["#include <stddef.h>", "#include <stdio.h>", "#include <iovm.h>",
                 "int main(void)", "{"]
        expect = {}
        for tag, s in _lib.STRUCTS.items():
            t = s._c_name_
            lines.append('printf("size %s %%zu\\n", sizeof(%s));' % (tag, t))
            lines.append('printf("align %s %%zu\\n", _Alignof(%s));' % (tag, t))
            expect["size " + tag] = ctypes.sizeof(s)
            expect["align " + tag] = ctypes.alignment(s)
            for path, off, size, _typ in _members(s):
                lines.append('printf("offset %s.%s %%zu\\n", offsetof(%s, %s));' % (tag, path, t, path))
                lines.append('printf("msize %s.%s %%zu\\n", sizeof(((%s *)0)->%s));' % (tag, path, t, path))
                expect["offset %s.%s" % (tag, path)] = off
                expect["msize %s.%s" % (tag, path)] = size
        for _h, name, value, kind in iovm_headers.constants(INCDIR):
            if kind == "string":
                lines.append('printf("const %s %%s\\n", %s);' % (name, name))
                expect["const " + name] = value
            else:
                expr = "(%s).addr" % name if name == "IOVM_IOVA_ANY" else name
                lines.append('printf("const %s %%llu\\n", (unsigned long long)(%s));' % (name, expr))
                expect["const " + name] = value % (1 << 64)
        macros = {
            "IOVM_DMA_BOUNDARY(12)": iovm.dma_boundary(12),
            "IOVM_DMA_BOUNDARY(40)": iovm.dma_boundary(40),
            "IOVM_DMA_NODE(0)": iovm.dma_node(0),
            "IOVM_DMA_NODE(254)": iovm.dma_node(254),
            "IOVM_VERSION_ENCODE(1, 2, 3)": iovm.version_encode(1, 2, 3),
            "IOVM_PA(7).addr": iovm.PA(7).addr,
        }
        for i, (expr, value) in enumerate(macros.items()):
            lines.append('printf("macro %d %%llu\\n", (unsigned long long)(%s));' % (i, expr))
            expect["macro %d" % i] = value
        lines += ["return 0;", "}"]
        cls.macros = list(macros)
        cls.expect = expect
        with tempfile.TemporaryDirectory() as d:
            src, exe = os.path.join(d, "layout.c"), os.path.join(d, "layout")
            with open(src, "w") as f:
                f.write("\n".join(lines) + "\n")
            r = subprocess.run(cc + ["-std=c17", "-D_GNU_SOURCE", "-I" + INCLUDE, "-o", exe, src],
                               capture_output=True, text=True)
            if r.returncode:
                raise AssertionError("the layout program does not compile (a field the "
                                     "header lacks?):\n" + r.stderr[-4000:])
            out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
        cls.got = {}
        for line in out.splitlines():
            k1, k2, v = line.split(" ", 2)
            cls.got[k1 + " " + k2] = v

    def test_layout(self):
        n = 0
        for k, v in self.expect.items():
            if k.split()[0] in ("size", "align", "offset", "msize"):
                with self.subTest(what=k):
                    self.assertEqual(int(self.got[k]), v, "%s: C says %s, ctypes %d" % (k, self.got[k], v))
                n += 1
        self.assertGreater(n, 300)

    def test_constants(self):
        for k, v in self.expect.items():
            if k.startswith("const "):
                got = self.got[k] if isinstance(v, str) else int(self.got[k])
                self.assertEqual(got, v, k)

    def test_function_like_macros(self):
        for i, expr in enumerate(self.macros):
            self.assertEqual(int(self.got["macro %d" % i]), self.expect["macro %d" % i], expr)


if __name__ == "__main__":
    unittest.main()
