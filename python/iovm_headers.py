# SPDX-License-Identifier: MIT
"""Read iovm's public headers (include/iovm/*.h) the way the Python bindings
need them: the IOVM_API prototypes, the object-like IOVM_* macros, the
enums and the struct definitions.

Not part of the installed package: the tests use it to hold the bindings
to the headers (tests/python/test_headers.py), and it writes
python/iovm/constants.py:

    python3 python/iovm_headers.py include/iovm > python/iovm/constants.py

It understands the C the headers are written in, not C at large: one
declaration per prototype, no macros inside prototypes, no nested
function-pointer parameters beyond one level.
"""

import os
import re
import sys

UINT64_MAX = (1 << 64) - 1

# The order of include/iovm.h: base first, so that a macro may use those
# of the headers before it.
HEADER_ORDER = ["base.h", "version.h", "ctx.h", "os.h", "phys.h", "mem.h",
                "iommu.h", "reg.h", "dev.h", "guest.h", "mp.h"]


def headers(incdir):
    """The public headers, in include order, as (name, text)."""
    names = sorted(f for f in os.listdir(incdir) if f.endswith(".h"))
    order = [n for n in HEADER_ORDER if n in names] + \
        [n for n in names if n not in HEADER_ORDER]
    out = []
    for n in order:
        with open(os.path.join(incdir, n), encoding="utf-8") as f:
            out.append((n, f.read()))
    return out


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _join_continuations(text):
    return text.replace("\\\n", " ")


def split_params(params):
    """Split a parameter list at top-level commas."""
    out, depth, cur = [], 0, ""
    for ch in params:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    if out == ["void"]:
        return []
    return out


def param_type(decl):
    """The type of one parameter declaration, without its name:
    'const struct iovm_zone **zone' -> 'const struct iovm_zone **';
    'int (*fn)(void *arg, const struct iovm_zone *z)' -> 'int (*)(void *arg, ...)'."""
    decl = " ".join(decl.split())
    m = re.match(r"^(.*)\(\s*\*\s*\w*\s*\)\s*\((.*)\)$", decl)
    if m:
        return "%s(*)(%s)" % (m.group(1).strip() + " ", m.group(2))
    m = re.match(r"^(.*?)(\w+)$", decl)
    if m and m.group(1).strip() and m.group(2) not in ("int", "char", "void", "bool"):
        return " ".join(m.group(1).replace("*", " * ").split())
    return " ".join(decl.replace("*", " * ").split())


def normalize_type(t):
    """'const  struct iovm_zone * *' -> 'struct iovm_zone **', 'const' dropped."""
    t = t.replace("*", " * ")
    words = [w for w in t.split() if w != "const"]
    base = " ".join(w for w in words if w != "*")
    stars = words.count("*")
    return base + (" " + "*" * stars if stars else "")


def prototypes(incdir):
    """{name: (header, return type, [parameter types])} of every IOVM_API function."""
    out = {}
    for hname, text in headers(incdir):
        text = strip_comments(_join_continuations(text))
        for m in re.finditer(r"\bIOVM_API\s+([^;{}#]*?)\b(iovm_\w+)\s*\(", text):
            ret = normalize_type(m.group(1))
            # The parameters: up to the matching parenthesis.
            i, depth = m.end(), 1
            while depth:
                if text[i] == "(":
                    depth += 1
                elif text[i] == ")":
                    depth -= 1
                i += 1
            params = [param_type(p) for p in split_params(text[m.end():i - 1])]
            out[m.group(2)] = (hname, ret, params)
    return out


def _c_expr_to_py(expr):
    expr = expr.strip()
    expr = re.sub(r"\(\s*(?:uint\d+_t|int\d+_t|unsigned|int|size_t)\s*\)", "", expr)
    expr = re.sub(r"\b(0x[0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", expr)
    # <stdint.h>'s constant macros: the value, whatever its width.
    expr = re.sub(r"\b(?:U?INT(?:8|16|32|64|MAX)_C)\s*\(\s*([^()]*?)\s*\)", r"(\1)", expr)
    return expr


def _eval(expr, env):
    py = _c_expr_to_py(expr)
    if not re.fullmatch(r"[\w\s()<>+\-*|&~^]*", py):
        raise ValueError("not an integer expression: %r" % expr)
    return eval(py, {"__builtins__": {}}, env)  # noqa: S307 - headers of this tree, checked above


def constants(incdir):
    """The object-like IOVM_* macros and the enumerators of the headers, in
    order, as [(header, name, value, kind)], kind being 'define', 'string'
    or the enum's tag ('iovm_op'). Macros of compound literals of an
    address type (IOVM_IOVA_ANY) give the address. Include guards, IOVM_API
    and function-like macros are left out (the package has its own of the
    latter)."""
    env = {"UINT64_MAX": UINT64_MAX}
    out = []
    for hname, text in headers(incdir):
        guard = "IOVM_%s_H" % hname[:-2].upper()
        text = _join_continuations(strip_comments(text))
        pos = 0
        items = []
        for m in re.finditer(r"^[ \t]*#[ \t]*define[ \t]+(IOVM_\w+)(\(?)([^\n]*)$", text, re.M):
            items.append((m.start(), "define", m))
        for m in re.finditer(r"\benum\s+(\w+)\s*\{(.*?)\}", text, re.S):
            items.append((m.start(), "enum", m))
        for pos, what, m in sorted(items, key=lambda x: x[0]):
            if what == "define":
                name, paren, value = m.group(1), m.group(2), m.group(3).strip()
                if paren or name in (guard, "IOVM_API") or not value:
                    continue
                if value.startswith('"'):
                    env[name] = value.strip('"')
                    out.append((hname, name, env[name], "string"))
                    continue
                lit = re.fullmatch(r"IOVM_(?:PA|HPA|IOVA|GPA)\((.*)\)", value)
                if lit:
                    value = lit.group(1)
                if re.fullmatch(r"IOVM_VERSION_ENCODE\((.*)\)", value):
                    args = split_params(value[len("IOVM_VERSION_ENCODE("):-1])
                    a, b, c = (_eval(x, env) for x in args)
                    env[name] = a * 10000 + b * 100 + c
                else:
                    env[name] = _eval(value, env)
                out.append((hname, name, env[name], "define"))
            else:
                tag, body = m.group(1), m.group(2)
                nxt = 0
                for item in split_params(body):
                    if not item:
                        continue
                    if "=" in item:
                        name, val = (s.strip() for s in item.split("=", 1))
                        nxt = _eval(val, env)
                    else:
                        name = item.strip()
                    env[name] = nxt
                    out.append((hname, name, nxt, tag))
                    nxt += 1
    return out


def structs(incdir):
    """{tag: header} of every struct the headers define (with a body),
    'iovm_pa' for the typedef'd address types included."""
    out = {}
    for hname, text in headers(incdir):
        text = strip_comments(text)
        for m in re.finditer(r"\bstruct\s+(iovm_\w+)\s*\{", text):
            out[m.group(1)] = hname
    return out


def render_constants(incdir):
    lines = [
        "# SPDX-License-Identifier: MIT",
        "# Generated by python/iovm_headers.py from include/iovm/*.h: do not edit.",
        "# tests/python/test_headers.py fails when it is stale; regenerate with",
        "#   python3 python/iovm_headers.py include/iovm > python/iovm/constants.py",
        "",
    ]
    enums = {}
    last = None
    for hname, name, value, kind in constants(incdir):
        if hname != last:
            lines.append("")
            lines.append("# iovm/%s" % hname)
            last = hname
        if kind == "string":
            lines.append("%s = %r" % (name, value))
        elif value >= 1 << 16:
            lines.append("%s = %#x" % (name, value))
        else:
            lines.append("%s = %d" % (name, value))
        if kind not in ("define", "string"):
            enums.setdefault(kind, []).append(name)
    lines.append("")
    lines.append("# The enumerators of each enum, by its tag.")
    lines.append("ENUMS = {")
    for tag, names in enums.items():
        lines.append("    %r: (" % tag)
        for n in names:
            lines.append("        %r," % n)
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: iovm_headers.py INCLUDE_DIR/iovm\n")
        return 2
    sys.stdout.write(render_constants(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
