#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kerneldoc.py - man pages and an HTML reference from iovm's public headers.

The kernel-doc comments of include/iovm/*.h are the one source of the
reference: this script parses them, refuses any that is malformed, and
writes one man page per function (section 3), one per header, iovm(3) for
the umbrella header and iovm(1) for the command, plus an HTML reference.

    kerneldoc.py check HEADER...
        parse and check; print every fault as FILE:LINE: ... and exit 1
        when there is one
    kerneldoc.py list HEADER...
        the public functions, one a line
    kerneldoc.py build --man DIR --html DIR [--version V] [--umbrella H]
                       [--iovm PROGRAM --cmd-doc FILE] HEADER...
        write the man pages under DIR/man1 and DIR/man3 and the HTML
        reference under DIR (both directories made anew)

What a comment must be (anything else is a fault, never a silent skip):

    /**
     * iovm_name() - what it does, one paragraph.
     * @param: its meaning; continuation lines follow
     * @a, @b: one text for two parameters
     *
     * The description: paragraphs, and lists whose items start with "- ".
     *
     * Thread safety: one paragraph.
     *
     * Return: one paragraph (required unless the function returns void).
     */
    IOVM_API int iovm_name(...);

Every IOVM_API declaration has such a comment right above it, naming it;
every @name in a comment is a parameter of the prototype; every
"iovm_x()" a comment mentions is a public function. "/** typedef NAME -
..." documents a typedef, "/** DOC: FILE - ..." a file. Standard library
only: it runs wherever meson's python3 does.
"""

import html
import os
import re
import shutil
import subprocess
import sys
import tempfile

# ---------------------------------------------------------------- parsing


class DocError(Exception):
    pass


class Errors:
    def __init__(self):
        self.list = []

    def add(self, path, line, msg):
        self.list.append(f"{path}:{line}: {msg}")


class Param:
    def __init__(self, before, name, after):
        self.before = before  # "struct iovm_ctx *"
        self.name = name      # "ctx"; None for "void" or "..."
        self.after = after    # ")(void *arg, ...)" for a function pointer


class Func:
    def __init__(self):
        self.name = ""
        self.ret = ""
        self.params = []
        self.pdocs = []       # [(names, [lines])]
        self.summary = ""
        self.desc = []        # lines
        self.thread = []      # lines of "Thread safety:"
        self.ret_doc = []     # lines of "Return:"
        self.line = 0
        self.header = None

    def param_names(self):
        return [p.name for p in self.params if p.name]


class Typedef:
    def __init__(self):
        self.name = ""
        self.summary = ""
        self.desc = []
        self.params = []      # of a function pointer type
        self.line = 0
        self.header = None


class Header:
    def __init__(self, path):
        self.path = path
        self.base = os.path.basename(path)          # "mem.h"
        parent = os.path.basename(os.path.dirname(path))
        self.include = f"{parent}/{self.base}" if parent == "iovm" else self.base
        stem = self.base[:-2] if self.base.endswith(".h") else self.base
        self.stem = "iovm" if self.include == "iovm.h" else "iovm_" + stem
        self.summary = ""
        self.desc = []
        self.funcs = []
        self.declared = []     # every IOVM_API function, documented or not
        self.typedefs = []
        self.definitions = ""  # the header's code, less functions and boilerplate
        self.page = ""         # man page name, set by assign_pages()
        self.alias = None      # a shorter man page name, where free
        self.html = ""


KNOWN_SECTIONS = {"thread safety": "thread", "return": "ret", "returns": "ret"}
SECTION_RE = re.compile(r"^(thread safety|returns?)\s*:\s*(.*)$", re.I)
PARAM_DOC_RE = re.compile(r"^@(\w+(?:\s*,\s*@\w+)*)\s*:\s*(.*)$")
FUNC_REF_RE = re.compile(r"\b(iovm_[a-z0-9_]+)\(\)")
AT_REF_RE = re.compile(r"(?<![\w@])@(\w+)")
PROTO_RE = re.compile(r"^IOVM_API\s+(.*?)\b(iovm_[a-z0-9_]+)\s*\((.*)\)\s*;$", re.S)


def strip_comment(body):
    """The lines of a comment's text, without the leading " * "."""
    lines = body.split("\n")
    out = []
    for i, raw in enumerate(lines):
        s = raw
        if i == 0:
            s = re.sub(r"^/\*\*?", "", s)
        if i == len(lines) - 1 or s.rstrip().endswith("*/"):
            s = re.sub(r"\s*\*/\s*$", "", s)
        s = re.sub(r"^\s*\* ?", "", s) if i > 0 else s.strip()
        out.append(s.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


def split_params(s):
    """Split a parameter list on its top-level commas."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def parse_param(p):
    p = " ".join(p.split())
    if p in ("void", "..."):
        return Param(p, None, "")
    m = re.match(r"^(.*\(\s*\*\s*)(\w+)(\s*\).*)$", p)
    if m:
        return Param(m.group(1), m.group(2), m.group(3))
    m = re.match(r"^(.*?)(\w+)(\s*(?:\[[^\]]*\])*)$", p)
    if not m or not m.group(1).strip():
        raise DocError(f"cannot find the name of parameter '{p}'")
    return Param(m.group(1), m.group(2), m.group(3))


def parse_prototype(decl):
    decl = " ".join(decl.split())
    m = PROTO_RE.match(decl)
    if not m:
        raise DocError(f"cannot parse the declaration '{decl}'")
    ret = m.group(1).strip()
    params = [parse_param(p) for p in split_params(m.group(3))]
    if not params:
        raise DocError(f"{m.group(2)}() has an empty parameter list: write (void)")
    return ret, m.group(2), params


def split_sections(lines):
    """Split a comment's text after the summary: parameter descriptions,
    the description, and the sections. Returns (pdocs, desc, sections)
    where pdocs and sections keep the line offset of their start."""
    pdocs, desc, sections = [], [], {}
    cur = None  # ("param", entry) or ("section", key)
    for off, ln in lines:
        m = PARAM_DOC_RE.match(ln)
        s = SECTION_RE.match(ln)
        if m and not sections and not any(l.strip() for l in desc):
            names = [n.strip().lstrip("@") for n in m.group(1).split(",")]
            entry = (names, [m.group(2)] if m.group(2) else [], off)
            pdocs.append(entry)
            cur = ("param", entry)
            continue
        if m:
            raise DocError(f"@{m.group(1)}: a parameter described after the description or a section "
                           f"(line {off}): parameters come right after the summary")
        if s:
            key = KNOWN_SECTIONS[s.group(1).lower()]
            if key in sections:
                raise DocError(f"a second '{s.group(1)}:' section")
            sections[key] = (off, [s.group(2)] if s.group(2) else [])
            cur = ("section", key)
            continue
        if cur and cur[0] == "param":
            if not ln.strip():
                cur = None
                continue
            cur[1][1].append(ln.strip())
            continue
        if cur and cur[0] == "section":
            sections[cur[1]][1].append(ln)
            continue
        desc.append(ln)
    while desc and not desc[0].strip():
        desc.pop(0)
    while desc and not desc[-1].strip():
        desc.pop()
    for key in list(sections):
        off, body = sections[key]
        while body and not body[-1].strip():
            body.pop()
        sections[key] = (off, body)
    return pdocs, desc, sections


def take_summary(lines, what):
    """The first paragraph after "NAME - " and the rest of the lines."""
    first = lines[0]
    m = re.match(what, first)
    if not m:
        return None
    summary = [first[m.end():].strip()]
    i = 1
    while i < len(lines) and lines[i].strip() and not PARAM_DOC_RE.match(lines[i]) \
            and not SECTION_RE.match(lines[i]):
        summary.append(lines[i].strip())
        i += 1
    return m, " ".join(s for s in summary if s), i


def next_statement(text, pos):
    """The code from pos to the end of the next top-level statement."""
    depth, i = 0, pos
    while i < len(text):
        ch = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = len(text) if j < 0 else j + 2
            continue
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        elif ch == ";" and depth == 0:
            return text[pos:i + 1]
        i += 1
    return text[pos:]


def parse_header(path, errors):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    h = Header(path)

    # The file comment: the first comment after the SPDX line.
    m = re.match(r"\s*/\* SPDX-License-Identifier: [^*]*\*/\s*(/\*\*?.*?\*/)", text, re.S)
    if not m:
        errors.add(path, 1, "no file comment after the SPDX line ('/*\\n * iovm/x.h - what it is')")
    else:
        lines = strip_comment(m.group(1))
        got = take_summary(lines, r"^(?:DOC:\s*)?(\S+)\s+-\s+") if lines else None
        if not got:
            errors.add(path, line_of(text, m.start(1)),
                       f"the file comment does not start with '{h.include} - what it is'")
        else:
            mm, h.summary, i = got
            if mm.group(1) != h.include:
                errors.add(path, line_of(text, m.start(1)),
                           f"the file comment names '{mm.group(1)}', not '{h.include}'")
            h.desc = lines[i:]
            while h.desc and not h.desc[0].strip():
                h.desc.pop(0)
    file_comment_span = (m.start(1), m.end(1)) if m else (0, 0)

    # Every /** comment, and what follows it.
    consumed = []  # spans left out of the definitions
    documented = {}
    faulty = set()  # functions whose comment is at fault: reported once
    for cm in re.finditer(r"/\*\*(?!/).*?\*/", text, re.S):
        if cm.start() == file_comment_span[0]:
            continue
        ln0 = line_of(text, cm.start())
        lines = strip_comment(cm.group(0))
        if not lines:
            errors.add(path, ln0, "an empty /** comment")
            continue
        follow_pos = cm.end()
        ws = re.match(r"\s*", text[follow_pos:]).end()
        stmt_pos = follow_pos + ws
        stmt = next_statement(text, stmt_pos)
        name = None
        try:
            if re.match(r"^DOC:", lines[0]):
                errors.add(path, ln0, "a DOC: comment other than the file comment: the reference has no place for it")
                continue
            if re.match(r"^typedef\s", lines[0]):
                got = take_summary(lines, r"^typedef\s+(\w+)\s+-\s+")
                if not got:
                    raise DocError("a typedef comment must start 'typedef NAME - what it is'")
                mm, summary, i = got
                td = Typedef()
                td.name, td.summary, td.line, td.header = mm.group(1), summary, ln0, h
                if not stmt.startswith("typedef") or not re.search(r"\b%s\b" % re.escape(td.name), stmt):
                    raise DocError(f"typedef {td.name}: the comment is not followed by its typedef")
                fp = re.match(r"typedef\s+(.*?)\(\s*\*\s*\w+\s*\)\s*\((.*)\)\s*;$", " ".join(stmt.split()))
                if fp:
                    td.params = [parse_param(p) for p in split_params(fp.group(2))]
                pdocs, td.desc, sections = split_sections([(ln0 + k, l) for k, l in enumerate(lines[i:], i)])
                if pdocs or sections:
                    raise DocError(f"typedef {td.name}: parameters and sections belong to functions")
                check_refs(td, [td.summary] + td.desc, {p.name for p in td.params if p.name})
                h.typedefs.append(td)
                consumed.append((cm.start(), cm.end()))
                continue
            got = take_summary(lines, r"^(\w+)\(\)\s+-\s+")
            if not got:
                raise DocError("a /** comment must start 'iovm_name() - what it does' "
                               "(or 'typedef NAME - ', or be the file's 'DOC:')")
            mm, summary, i = got
            name = mm.group(1)
            if not summary:
                raise DocError(f"{name}(): no summary after ' - '")
            if not stmt.startswith("IOVM_API"):
                raise DocError(f"{name}(): the comment is not followed by an IOVM_API declaration")
            fn = Func()
            fn.ret, fn.name, fn.params = parse_prototype(stmt)
            if fn.name != name:
                raise DocError(f"the comment names {name}() but documents {fn.name}()")
            fn.summary, fn.line, fn.header = summary, ln0, h
            pdocs, fn.desc, sections = split_sections([(ln0 + k, l) for k, l in enumerate(lines[i:], i)])
            names = fn.param_names()
            seen = set()
            for pnames, ptext, _ in pdocs:
                for n in pnames:
                    if n not in names:
                        raise DocError(f"{name}(): @{n} is not a parameter of the prototype "
                                       f"({', '.join(names) or 'void'})")
                    if n in seen:
                        raise DocError(f"{name}(): @{n} is described twice")
                    seen.add(n)
                if not " ".join(ptext).strip():
                    raise DocError(f"{name}(): @{pnames[0]} has no description")
            fn.pdocs = [(n, t) for n, t, _ in pdocs]
            if "thread" not in sections:
                raise DocError(f"{name}(): no 'Thread safety:' section")
            if "ret" not in sections and fn.ret != "void":
                raise DocError(f"{name}(): no 'Return:' section (it returns {fn.ret})")
            if "ret" in sections and fn.ret == "void":
                raise DocError(f"{name}(): a 'Return:' section for a function returning void")
            for key, label in (("thread", "Thread safety"), ("ret", "Return")):
                if key not in sections:
                    continue
                off, body = sections[key]
                if not " ".join(body).strip():
                    raise DocError(f"{name}(): an empty '{label}:' section")
                if any(not l.strip() for l in body):
                    raise DocError(f"{name}(): the '{label}:' section runs over more than one "
                                   f"paragraph: put the description before the sections")
            fn.thread = sections.get("thread", (0, []))[1]
            fn.ret_doc = sections.get("ret", (0, []))[1]
            check_refs(fn, [fn.summary] + fn.desc + fn.thread + fn.ret_doc +
                       [l for _, t in fn.pdocs for l in t], set(names))
            if name in documented:
                raise DocError(f"{name}() is documented twice")
            documented[name] = fn
            h.funcs.append(fn)
            consumed.append((cm.start(), stmt_pos + len(stmt)))
        except DocError as e:
            errors.add(path, ln0, str(e))
            if name:
                faulty.add(name)

    # Every IOVM_API declaration is documented.
    for dm in re.finditer(r"^IOVM_API\b", text, re.M):
        stmt = next_statement(text, dm.start())
        try:
            _, name, _ = parse_prototype(stmt)
        except DocError as e:
            errors.add(path, line_of(text, dm.start()), str(e))
            continue
        h.declared.append(name)
        if name in documented or name in faulty:
            continue
        before = text[:dm.start()].rstrip()
        hint = ""
        if before.endswith("*/"):
            start = before.rfind("/*")
            if not before.startswith("/**", start):
                hint = " (the comment above it is a plain /* comment: kernel-doc starts with /**)"
        errors.add(path, line_of(text, dm.start()), f"{name}(): no kernel-doc comment{hint}")

    h.definitions = definitions(text, consumed, file_comment_span)
    return h


def check_refs(item, lines, params):
    """@names must be parameters; the text is checked again against the
    functions once every header is read."""
    text = " ".join(lines)
    for n in AT_REF_RE.findall(text):
        if n not in params:
            what = f"{item.name}()" if isinstance(item, Func) else item.name
            raise DocError(f"{what}: @{n} in the text is not a parameter "
                           f"({', '.join(sorted(params)) or 'none'})")


def definitions(text, consumed, file_span):
    """The header as a reader wants it beside the functions: its types,
    constants and their comments, without the functions (documented on
    their own), the include guard, includes and the C++ brackets."""
    spans = sorted(consumed + [file_span])
    out, pos = [], 0
    for a, b in spans:
        out.append(text[pos:a])
        pos = max(pos, b)
    out.append(text[pos:])
    code = "".join(out)
    code = re.sub(r"^/\* SPDX-License-Identifier:.*?\*/\n", "", code, flags=re.M)
    code = re.sub(r"^#if(?:def)? (?:defined\()?__cplusplus.*?^#endif[^\n]*\n", "", code, flags=re.M | re.S)
    code = re.sub(r"^#ifndef IOVM_\w*_H\n#define IOVM_\w*_H\n", "", code, flags=re.M)
    code = re.sub(r"^#endif /\* IOVM_\w*_H \*/\n?", "", code, flags=re.M)
    code = re.sub(r"^#include <[^>]*>\n", "", code, flags=re.M)
    code = code.expandtabs(8)
    code = "\n".join(l.rstrip() for l in code.split("\n"))
    code = re.sub(r"\n{3,}", "\n\n", code).strip("\n")
    return code


def cross_check(headers, errors):
    """Every iovm_x() a comment mentions is a public function."""
    funcs = {n for h in headers for n in h.declared}
    for h in headers:
        items = [(h.path, 1, "the file comment", [h.summary] + h.desc)]
        for f in h.funcs:
            items.append((h.path, f.line, f"{f.name}()", [f.summary] + f.desc + f.thread + f.ret_doc +
                          [l for _, t in f.pdocs for l in t]))
        for t in h.typedefs:
            items.append((h.path, t.line, t.name, [t.summary] + t.desc))
        for path, line, what, lines in items:
            for ref in FUNC_REF_RE.findall(" ".join(lines)):
                if ref not in funcs:
                    errors.add(path, line, f"{what}: mentions {ref}(), which no header declares")


def parse_all(paths, umbrella=None):
    errors = Errors()
    headers = [parse_header(p, errors) for p in paths]
    extra = parse_header(umbrella, errors) if umbrella else None
    all_h = headers + ([extra] if extra else [])
    cross_check(all_h, errors)
    if extra and (extra.funcs or extra.typedefs):
        errors.add(umbrella, 1, "the umbrella header declares functions of its own")
    if errors.list:
        raise SystemExit("\n".join(errors.list) + f"\nkerneldoc.py: {len(errors.list)} fault(s) in the kernel-doc comments")
    names = [f.name for h in headers for f in h.funcs]
    if not names:
        raise SystemExit("kerneldoc.py: no IOVM_API function found: nothing to document")
    return headers, extra


def assign_pages(headers):
    funcs = {f.name for h in headers for f in h.funcs}
    for h in headers:
        # The canonical name cannot collide with a function's: iovm_version.h
        # beside iovm_version(). The short one is an alias where it is free.
        h.page = h.stem + ".h"
        h.alias = h.stem if h.stem not in funcs else None
        h.html = h.stem + ".html"


# ---------------------------------------------------------------- text blocks

def blocks(lines):
    """Paragraphs and lists: [("p", text)] and [("ul", [text, ...])]."""
    out, para, items, cur_indent = [], [], None, 0

    def flush_para():
        nonlocal para
        if para:
            out.append(("p", " ".join(para)))
            para = []

    def flush_list():
        nonlocal items
        if items is not None:
            out.append(("ul", [" ".join(i) for i in items]))
            items = None

    for ln in lines:
        if not ln.strip():
            flush_para()
            flush_list()
            continue
        indent = len(ln) - len(ln.lstrip())
        m = re.match(r"^(\s*)- (.*)$", ln)
        if m:
            flush_para()
            if items is None:
                items = []
            items.append([m.group(2).strip()])
            cur_indent = len(m.group(1))
            continue
        if items is not None and indent > cur_indent:
            items[-1].append(ln.strip())
            continue
        flush_list()
        para.append(ln.strip())
    flush_para()
    flush_list()
    return out


# ---------------------------------------------------------------- roff

def roff_escape(s):
    s = s.replace("\\", "\\e")
    # A hyphen that starts a word is a minus: -EINVAL, --help, -1.
    s = re.sub(r"(?<![\w.\\])(-+)(?=[\w\[|])", lambda m: "\\-" * len(m.group(1)), s)
    return s


def roff_line(s):
    """One line of roff text: never a request by accident."""
    if s[:1] in (".", "'"):
        return "\\&" + s
    return s


def roff_inline(s):
    s = roff_escape(s)
    s = re.sub(r"\b([A-Za-z_]\w*)\(\)", r"\\fB\1\\fP()", s)
    s = re.sub(r"\b([a-z_]\w*)\(([1-8])\)", r"\\fB\1\\fP(\2)", s)
    s = AT_REF_RE.sub(r"\\fI\1\\fP", s)
    return s


def roff_blocks(lines, out):
    for i, (kind, val) in enumerate(blocks(lines)):
        if kind == "p":
            if i:
                out.append(".PP")
            out.append(roff_line(roff_inline(val)))
        else:
            for item in val:
                out.append(".IP \\(bu 2")
                out.append(roff_line(roff_inline(item)))
    return out


def roff_quote(s):
    return '"' + s.replace('"', '\\(dq') + '"'


def roff_code(code, out):
    out.append(".PP")
    out.append(".nf")
    out.append(".RS 4")
    for ln in code.split("\n"):
        s = ln.replace("\\", "\\e").replace("-", "\\-")
        out.append(roff_line(s) if s else "")
    out.append(".RE")
    out.append(".fi")


def proto_lines(f, width=72):
    """The prototype cut into lines: [[(text, is_name)...], ...]."""
    head = f"{f.ret}{'' if f.ret.endswith('*') else ' '}{f.name}("
    segs = []
    for i, p in enumerate(f.params):
        tail = ", " if i < len(f.params) - 1 else ");"
        if p.name is None:
            segs.append([(p.before + tail, False)])
        else:
            segs.append([(p.before, False), (p.name, True), (p.after + tail, False)])
    lines, cur, col = [], [(head, False)], len(head)
    for seg in segs:
        n = sum(len(t) for t, _ in seg)
        if col + len(seg[-1][0].rstrip()) - len(seg[-1][0]) + n > width and col > len(head):
            cur[-1] = (cur[-1][0].rstrip(), cur[-1][1])
            lines.append(cur)
            cur, col = [(" " * len(head), False)], len(head)
        cur.extend(seg)
        col += n
    lines.append(cur)
    return lines


def roff_proto(f, out):
    for line in proto_lines(f):
        # .BI alternates bold and italic, bold first: names are italic.
        args = []
        for text, is_name in line:
            want = 1 if is_name else 0
            if args and (len(args) - 1) % 2 == want:
                args[-1] += text
                continue
            if len(args) % 2 != want:
                args.append("")
            args.append(text)
        out.append(".BI " + " ".join(roff_quote(a.replace("-", "\\-")) for a in args))


def th(name, sec, version, title):
    date = ""
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde and sde.isdigit():
        import time
        date = time.strftime("%Y-%m-%d", time.gmtime(int(sde)))
    # No hyphenation, no justification: identifiers stay whole, and lists
    # of them do not stretch the spaces between.
    return (f'.TH {roff_quote(name.upper())} {sec} {roff_quote(date)} {roff_quote("iovm " + version)} '
            f'{roff_quote(title)}\n.nh\n.ad l')


def name_line(s):
    """A summary for NAME: no final full stop."""
    return s[:-1] if s.endswith(".") and not s.endswith("..") else s


def sentence(s):
    """A section's text as a sentence: "safe." becomes "Safe."."""
    m = re.match(r"^([a-z]+)\b(?![_(])", s)
    return s[:1].upper() + s[1:] if m else s


def see_also(names, out):
    out.append(".SH SEE ALSO")
    parts = [f".BR {n} ({s})" for n, s in names]
    for i, p in enumerate(parts):
        out.append(p + ("," if i < len(parts) - 1 else ""))


def man_function(f, headers, version):
    h = f.header
    out = [f'.\\" Generated by scripts/kerneldoc.py from {h.include}: edit the header, not this page.',
           th(f.name, 3, version, "iovm Library Functions"), ".SH NAME",
           roff_line(f"{f.name} \\- {roff_inline(name_line(f.summary))}"), ".SH SYNOPSIS", ".nf",
           f".B #include <{h.include}>", ".PP"]
    roff_proto(f, out)
    out += [".fi", ".PP", "Link with", ".I \\-liovm", "(pkg-config iovm).", ".SH DESCRIPTION"]
    if f.pdocs:
        for names, text in f.pdocs:
            out.append(".TP")
            out.append(".I " + ", ".join(names) if len(names) == 1 else
                       ".IR " + " \", \" ".join(names))
            out.append(roff_line(roff_inline(" ".join(text))))
        out.append(".PP")
    if f.desc:
        roff_blocks(f.desc, out)
    elif not f.pdocs:
        out.append(roff_line(roff_inline(f.summary[:1].upper() + f.summary[1:])))
    out += [".SH THREAD SAFETY", roff_line(roff_inline(sentence(" ".join(l.strip() for l in f.thread))))]
    if f.ret_doc:
        out += [".SH RETURN VALUE", roff_line(roff_inline(sentence(" ".join(l.strip() for l in f.ret_doc))))]
    others = [(g.name, 3) for g in h.funcs if g is not f]
    refs = []
    funcs = {g.name: g for hh in headers for g in hh.funcs}
    for r in FUNC_REF_RE.findall(" ".join([f.summary] + f.desc + f.thread + f.ret_doc +
                                         [l for _, t in f.pdocs for l in t])):
        if r in funcs and funcs[r].header is not h and (r, 3) not in refs:
            refs.append((r, 3))
    see_also([(h.page, 3)] + others + refs, out)
    return "\n".join(out) + "\n"


def man_header(h, headers, version):
    out = [f'.\\" Generated by scripts/kerneldoc.py from {h.include}: edit the header, not this page.',
           th(h.page, 3, version, "iovm Library Functions"), ".SH NAME",
           roff_line(f"{h.page} \\- {roff_inline(name_line(h.summary))}"), ".SH SYNOPSIS", ".nf",
           f".B #include <{h.include}>"]
    for f in h.funcs:
        out.append(".PP")
        roff_proto(f, out)
    out += [".fi", ".SH DESCRIPTION"]
    if h.desc:
        roff_blocks(h.desc, out)
    else:
        out.append(roff_line(roff_inline(h.summary[:1].upper() + h.summary[1:])))
    if h.funcs:
        out.append(".SH FUNCTIONS")
        for f in h.funcs:
            out += [".TP", f".BR {f.name} (3)", roff_line(roff_inline(f.summary))]
    if h.typedefs:
        out.append(".SH TYPES")
        for t in h.typedefs:
            out += [".TP", f".B {t.name}", roff_line(roff_inline(t.summary))]
            for kind, val in blocks(t.desc):
                out.append(".IP")
                out.append(roff_line(roff_inline(val if kind == "p" else " ".join(val))))
    if h.definitions.strip():
        out += [".SH DEFINITIONS", f"The types and constants of", f".IR {h.include} ,",
                "as the header has them:"]
        roff_code(h.definitions, out)
    see_also([("iovm", 3)] + [(o.page, 3) for o in headers if o is not h], out)
    return "\n".join(out) + "\n"


def man_umbrella(u, headers, version):
    out = [f'.\\" Generated by scripts/kerneldoc.py from {u.include}: edit the header, not this page.',
           th("iovm", 3, version, "iovm Library Functions"), ".SH NAME",
           roff_line(f"iovm \\- {roff_inline(name_line(u.summary))}"), ".SH SYNOPSIS", ".nf",
           f".B #include <{u.include}>", ".fi", ".PP", "Link with", ".I \\-liovm",
           "(pkg-config iovm).", ".SH DESCRIPTION"]
    roff_blocks(u.desc, out)
    out.append(".PP")
    out.append(roff_line(f"{roff_escape(u.include)} includes every header below; each has a page "
                         "that lists its functions, and each function a page of its own."))
    out.append(".SH HEADERS")
    for h in headers:
        out += [".TP", f".BR {h.page} (3)", roff_line(roff_inline(h.summary))]
    see_also([("iovm", 1)] + [(h.page, 3) for h in headers], out)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- HTML

CSS = """
body { font-family: sans-serif; max-width: 58em; margin: 1em auto; padding: 0 1em;
       line-height: 1.45; color: #1d1d1d; background: #fff; }
nav { font-size: 0.9em; border-bottom: 1px solid #ccc; padding-bottom: 0.4em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; border-bottom: 1px solid #ddd; margin-top: 2em; }
h3 { font-size: 1.1em; margin-top: 2em; } h4 { font-size: 1em; margin-bottom: 0.2em; }
pre, code { font-family: monospace; font-size: 0.95em; }
pre { background: #f6f6f6; border: 1px solid #e2e2e2; padding: 0.5em; overflow-x: auto; }
section.fn { border-top: 1px solid #eee; }
.purpose { font-style: italic; }
dl.params dt { font-family: monospace; font-style: italic; } dl.params dd { margin-bottom: 0.4em; }
table.index td { vertical-align: top; padding: 0.15em 0.6em 0.15em 0; }
a { color: #0645ad; text-decoration: none; } a:hover { text-decoration: underline; }
var { font-family: monospace; }
"""


def html_inline(s, funcs, here):
    s = html.escape(s, quote=False)

    def fref(m):
        n = m.group(1)
        f = funcs.get(n)
        if not f:
            return f"<code>{n}()</code>"
        href = ("" if f.header.html == here else f.header.html) + "#" + n
        return f'<a href="{href}"><code>{n}()</code></a>'
    s = re.sub(r"\b(iovm_[a-z0-9_]+)\(\)", fref, s)
    s = re.sub(r"\b(?<!>)([A-Za-z_]\w*)\(\)(?!</code>)", r"<code>\1()</code>", s)
    s = AT_REF_RE.sub(r"<var>\1</var>", s)
    return s


def html_blocks(lines, funcs, here):
    out = []
    for kind, val in blocks(lines):
        if kind == "p":
            out.append(f"<p>{html_inline(val, funcs, here)}</p>")
        else:
            out.append("<ul>" + "".join(f"<li>{html_inline(i, funcs, here)}</li>" for i in val) + "</ul>")
    return "\n".join(out)


def html_page(title, body, version):
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n"
            f'<meta name="generator" content="scripts/kerneldoc.py">\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n"
            f'<nav><a href="index.html">iovm {html.escape(version)} reference</a></nav>\n'
            f"{body}\n</body>\n</html>\n")


def html_proto(f):
    parts = []
    for line in proto_lines(f):
        parts.append("".join(f"<var>{html.escape(t)}</var>" if is_name else html.escape(t)
                             for t, is_name in line))
    return "<pre class=\"proto\">" + "\n".join(parts) + "</pre>"


def html_header(h, headers, funcs, version):
    here = h.html
    b = [f"<h1>{html.escape(h.include)}</h1>",
         f'<p class="purpose">{html_inline(h.summary, funcs, here)}</p>',
         f"<pre>#include &lt;{html.escape(h.include)}&gt;</pre>",
         html_blocks(h.desc, funcs, here)]
    if h.funcs:
        b.append('<h2 id="functions">Functions</h2>\n<table class="index">')
        for f in h.funcs:
            b.append(f'<tr><td><a href="#{f.name}"><code>{f.name}()</code></a></td>'
                     f"<td>{html_inline(f.summary, funcs, here)}</td></tr>")
        b.append("</table>")
    for f in h.funcs:
        b.append(f'<section class="fn" id="{f.name}">')
        b.append(f'<h3><a href="#{f.name}">{f.name}()</a></h3>')
        b.append(f'<p class="purpose">{html_inline(f.summary, funcs, here)}</p>')
        b.append(html_proto(f))
        if f.pdocs:
            b.append('<dl class="params">')
            for names, text in f.pdocs:
                b.append(f"<dt>{', '.join(names)}</dt><dd>{html_inline(' '.join(text), funcs, here)}</dd>")
            b.append("</dl>")
        b.append(html_blocks(f.desc, funcs, here))
        b.append(f"<h4>Thread safety</h4>\n<p>{html_inline(sentence(' '.join(l.strip() for l in f.thread)), funcs, here)}</p>")
        if f.ret_doc:
            b.append(f"<h4>Return</h4>\n<p>{html_inline(sentence(' '.join(l.strip() for l in f.ret_doc)), funcs, here)}</p>")
        b.append("</section>")
    if h.typedefs:
        b.append('<h2 id="types">Types</h2>')
        for t in h.typedefs:
            b.append(f'<section class="fn" id="{t.name}"><h3><a href="#{t.name}">{t.name}</a></h3>')
            b.append(f'<p class="purpose">{html_inline(t.summary, funcs, here)}</p>')
            b.append(html_blocks(t.desc, funcs, here) + "</section>")
    if h.definitions.strip():
        b.append('<h2 id="definitions">Definitions</h2>')
        b.append(f"<p>The types and constants of <code>{html.escape(h.include)}</code>, as the header has them:</p>")
        b.append(f"<pre>{html.escape(h.definitions)}</pre>")
    return html_page(f"{h.include} - iovm", "\n".join(b), version)


def html_index(u, headers, funcs, version, have_cmd):
    b = [f"<h1>iovm {html.escape(version)}</h1>"]
    if u:
        b.append(f'<p class="purpose">{html_inline(u.summary, funcs, "index.html")}</p>')
        b.append(html_blocks(u.desc, funcs, "index.html"))
        b.append(f"<pre>#include &lt;{html.escape(u.include)}&gt;</pre>")
    if have_cmd:
        b.append('<p>The command: <a href="iovm.1.html"><code>iovm</code>(1)</a>.</p>')
    b.append('<h2 id="headers">Headers</h2>\n<table class="index">')
    for h in headers:
        b.append(f'<tr><td><a href="{h.html}"><code>{html.escape(h.include)}</code></a></td>'
                 f"<td>{html_inline(h.summary, funcs, 'index.html')}</td></tr>")
    b.append("</table>")
    b.append('<h2 id="all">Functions</h2>\n<table class="index">')
    for name in sorted(funcs):
        f = funcs[name]
        b.append(f'<tr><td><a href="{f.header.html}#{name}"><code>{name}()</code></a></td>'
                 f"<td>{html_inline(f.summary, funcs, 'index.html')}</td></tr>")
    b.append("</table>")
    return html_page("iovm reference", "\n".join(b), version)


# ---------------------------------------------------------------- iovm(1)

def run_help(prog, args):
    try:
        r = subprocess.run([prog] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SystemExit(f"kerneldoc.py: cannot run {prog} {' '.join(args)}: {e}")
    if r.returncode != 0 or not r.stdout.strip():
        raise SystemExit(f"kerneldoc.py: '{os.path.basename(prog)} {' '.join(args)}' exited "
                         f"{r.returncode} with {'no output' if not r.stdout.strip() else 'output'}:\n{r.stderr}")
    return r.stdout


def parse_usage(text):
    """'usage: ...' and its indented continuation lines, then the rest."""
    lines = text.rstrip("\n").split("\n")
    if not lines[0].startswith("usage: "):
        raise SystemExit(f"kerneldoc.py: --help output does not start with 'usage: ':\n{text}")
    usage = [lines[0][len("usage: "):].strip()]
    i = 1
    while i < len(lines) and lines[i].startswith(" ") and lines[i].strip():
        usage.append(lines[i].strip())
        i += 1
    return " ".join(usage), lines[i:]


def help_sections(lines):
    """[(title, [lines])]: a line without indent that ends in ':' starts one."""
    secs = [("", [])]
    for ln in lines:
        if ln and not ln[0].isspace() and ln.rstrip().endswith(":"):
            secs.append((ln.rstrip()[:-1], []))
        else:
            secs[-1][1].append(ln)
    return [(t, b) for t, b in secs if t or any(l.strip() for l in b)]


def parse_options(body):
    """The options table of iovm_opts_help(): '  name  values  what it does'.
    A values column too wide for its field runs into the description with
    one space: the column where the others' descriptions start says where
    it ends."""
    rows, starts = [], {}
    for ln in body:
        m = re.match(r"^\s+(\S+)\s{2,}(\S.*?)\s{2,}(\S.*)$", ln)
        if m:
            starts[m.start(3)] = starts.get(m.start(3), 0) + 1
    col = max(starts, key=starts.get) if starts else None
    for ln in body:
        if not ln.strip():
            continue
        m = re.match(r"^\s+(\S+)\s{2,}(\S.*?)\s{2,}(\S.*)$", ln)
        if m:
            rows.append((m.group(1), m.group(2).strip(), m.group(3).strip()))
            continue
        m = re.match(r"^\s+(\S+)\s+(.*)$", ln)
        if m and col:
            rest_at = m.start(2)
            cut = ln.find(" ", col - 1)
            if cut > rest_at:
                rows.append((m.group(1), ln[rest_at:cut].strip(), ln[cut:].strip()))
                continue
        if m:
            rows.append((m.group(1), "", m.group(2).strip()))
            continue
        raise SystemExit(f"kerneldoc.py: cannot read the option line '{ln}' of iovm --help")
    return rows


def read_iovm(prog):
    top = run_help(prog, ["--help"])
    usage, rest = parse_usage(top)
    cmds, opts, extra = [], [], []
    for title, body in help_sections(rest):
        if title.startswith("commands"):
            for ln in body:
                if not ln.strip():
                    continue
                m = re.match(r"^\s+(\S+)\s+(.*)$", ln)
                if not m:
                    raise SystemExit(f"kerneldoc.py: cannot read the command line '{ln}' of iovm --help")
                cmds.append({"name": m.group(1), "summary": m.group(2).strip()})
        elif title.startswith("options"):
            opts = parse_options(body)
            opts_title = title
        else:
            extra.append((title, body))
    if not cmds:
        raise SystemExit("kerneldoc.py: iovm --help lists no command (under 'commands:')")
    if not opts:
        raise SystemExit("kerneldoc.py: iovm --help lists no option (under 'options ...:')")
    for c in cmds:
        text = run_help(prog, [c["name"], "--help"])
        cu, crest = parse_usage(text)
        if not (cu + " ").startswith(f"iovm {c['name']} ") and cu != f"iovm {c['name']}":
            raise SystemExit(f"kerneldoc.py: 'iovm {c['name']} --help' gives the usage '{cu}'")
        c["usage"] = cu
        c["text"] = crest
    return {"usage": usage, "cmds": cmds, "opts": opts, "opts_title": opts_title, "extra": extra}


def help_blocks(lines):
    """Free --help text: paragraphs, and '  --opt ARG   what' rows."""
    out, para = [], []
    for ln in lines + [""]:
        m = re.match(r"^\s+(\S.*?)\s{2,}(\S.*)$", ln)
        if not ln.strip() or m:
            if para:
                out.append(("p", " ".join(para)))
                para = []
            if m:
                out.append(("dt", (m.group(1).strip(), m.group(2).strip())))
            continue
        if re.match(r"^\S.*:$", ln):
            out.append(("h", ln.strip()[:-1]))
            continue
        para.append(ln.strip())
    return out


def read_cmd_doc(path):
    """docs/iovm.1.txt: SECTION lines in capitals, text, @PLACEHOLDER@ lines."""
    with open(path, encoding="utf-8") as f:
        lines = [l.rstrip("\n") for l in f if not l.startswith("#")]
    secs, cur = [], None
    for ln in lines:
        if re.match(r"^[A-Z][A-Z ]+$", ln):
            cur = (ln, [])
            secs.append(cur)
        elif cur is None:
            if ln.strip():
                raise SystemExit(f"kerneldoc.py: {path}: text before the first SECTION line: '{ln}'")
        else:
            cur[1].append(ln)
    names = [s[0] for s in secs]
    for need in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS"):
        if need not in names:
            raise SystemExit(f"kerneldoc.py: {path}: no {need} section")
    text = "\n".join(lines)
    for ph in ("@SYNOPSIS@", "@COMMANDS@", "@OPTIONS@"):
        if text.count(ph) != 1:
            raise SystemExit(f"kerneldoc.py: {path}: {ph} must appear once")
    return secs


def cmd_doc_blocks(lines):
    """Paragraphs, '- ' lists, and lines indented 4 as examples."""
    out, cur = [], []
    for ln in lines + [""]:
        if ln.startswith("    ") and ln.strip():
            if cur:
                out += [(k, v) for k, v in blocks(cur)]
                cur = []
            if out and out[-1][0] == "pre":
                out[-1] = ("pre", out[-1][1] + [ln[4:]])
            else:
                out.append(("pre", [ln[4:]]))
        elif ln.strip() in ("@SYNOPSIS@", "@COMMANDS@", "@OPTIONS@"):
            if cur:
                out += blocks(cur)
                cur = []
            out.append(("ph", ln.strip()))
        else:
            cur.append(ln)
    if cur:
        out += blocks(cur)
    return out


def check_examples(doc, iovm):
    names = {c["name"] for c in iovm["cmds"]}
    for title, body in doc:
        for kind, val in cmd_doc_blocks(body):
            if kind != "pre":
                continue
            for ln in val:
                m = re.match(r"^(?:\$ )?(?:\S+=\S+ )*iovm (\S+)", ln)
                if m and not m.group(1).startswith("-") and m.group(1) not in names:
                    raise SystemExit(f"kerneldoc.py: the example '{ln}' of iovm(1) runs a command "
                                     f"that iovm --help does not list")


def man_iovm(doc, iovm, version):
    out = ['.\\" Generated by scripts/kerneldoc.py from docs/iovm.1.txt and the --help of iovm.',
           th("iovm", 1, version, "User Commands")]
    for title, body in doc:
        out.append(".SH " + title)
        if title == "NAME":
            out.append(roff_line(roff_escape(" ".join(l.strip() for l in body if l.strip()))
                                 .replace(" - ", " \\- ", 1)))
            continue
        first = True
        for kind, val in cmd_doc_blocks(body):
            if kind == "ph" and val == "@SYNOPSIS@":
                for i, u in enumerate([iovm["usage"]] + [c["usage"] for c in iovm["cmds"]]):
                    words = u.split(" ", 1 if i == 0 else 2)
                    out.append(".SY " + roff_quote(" ".join(words[:1 if i == 0 else 2])))
                    if len(words) > (1 if i == 0 else 2):
                        out.append(roff_line(roff_escape(words[-1])))
                    out.append(".YS")
            elif kind == "ph" and val == "@COMMANDS@":
                for c in iovm["cmds"]:
                    out += [f".SS {c['name']}", f'.B "iovm {c["name"]}"']
                    tail = c["usage"][len("iovm " + c["name"]):].strip()
                    if tail:
                        out.append(roff_line(roff_escape(tail)))
                    out.append(".PP")
                    out.append(roff_line(roff_inline(c["summary"])))
                    for k, v in help_blocks(c["text"]):
                        if k == "p" and v == c["summary"]:
                            continue
                        if k == "p":
                            out += [".PP", roff_line(roff_inline(v))]
                        elif k == "h":
                            out += [".PP", ".B " + roff_quote(roff_escape(v))]
                        else:
                            out += [".TP", ".B " + roff_quote(roff_escape(v[0])),
                                    roff_line(roff_inline(v[1]))]
            elif kind == "ph" and val == "@OPTIONS@":
                for name, values, what in iovm["opts"]:
                    out.append(".TP")
                    if values:
                        out.append(f".BI {roff_quote(name + '=')} {roff_quote(roff_escape(values))}")
                    else:
                        out.append(f".B {name}")
                    out.append(roff_line(roff_inline(what)))
                for title2, body2 in iovm["extra"]:
                    out += [".SS " + roff_quote(roff_escape(title2))]
                    for k, v in help_blocks(body2):
                        if k == "dt":
                            out += [".TP", ".B " + roff_quote(roff_escape(v[0])), roff_line(roff_inline(v[1]))]
                        elif k == "h":
                            out += [".PP", ".B " + roff_quote(roff_escape(v))]
                        else:
                            out += [".PP", roff_line(roff_inline(v))]
            elif kind == "pre":
                out += [".PP", ".nf", ".RS 4"]
                out += [roff_line(l.replace("\\", "\\e").replace("-", "\\-")) for l in val]
                out += [".RE", ".fi"]
            elif kind == "ul":
                for item in val:
                    out += [".IP \\(bu 2", roff_line(roff_inline(item))]
            else:
                if not first:
                    out.append(".PP")
                out.append(roff_line(roff_inline(val)))
            first = False
    return "\n".join(out) + "\n"


def html_iovm(doc, iovm, funcs, version):
    b = ["<h1>iovm(1)</h1>"]
    here = "iovm.1.html"
    for title, body in doc:
        if title == "NAME":
            b.append(f'<p class="purpose">{html.escape(" ".join(l.strip() for l in body if l.strip()))}</p>')
            continue
        b.append(f'<h2 id="{title.lower().replace(" ", "-")}">{html.escape(title.title())}</h2>')
        for kind, val in cmd_doc_blocks(body):
            if kind == "ph" and val == "@SYNOPSIS@":
                b.append("<pre>" + "\n".join(html.escape(u) for u in
                                             [iovm["usage"]] + [c["usage"] for c in iovm["cmds"]]) + "</pre>")
            elif kind == "ph" and val == "@COMMANDS@":
                for c in iovm["cmds"]:
                    b.append(f'<h3 id="{c["name"]}"><a href="#{c["name"]}">iovm {html.escape(c["name"])}</a></h3>')
                    b.append(f"<pre>{html.escape(c['usage'])}</pre>")
                    b.append(f"<p>{html_inline(c['summary'], funcs, here)}</p>")
                    for k, v in help_blocks(c["text"]):
                        if k == "p" and v == c["summary"]:
                            continue
                        if k == "dt":
                            b.append(f"<dl><dt><code>{html.escape(v[0])}</code></dt><dd>{html_inline(v[1], funcs, here)}</dd></dl>")
                        elif k == "h":
                            b.append(f"<h4>{html.escape(v)}</h4>")
                        else:
                            b.append(f"<p>{html_inline(v, funcs, here)}</p>")
            elif kind == "ph" and val == "@OPTIONS@":
                b.append('<table class="index">')
                for name, values, what in iovm["opts"]:
                    b.append(f'<tr id="opt-{html.escape(name)}"><td><code>{html.escape(name)}</code></td>'
                             f"<td><code>{html.escape(values)}</code></td><td>{html_inline(what, funcs, here)}</td></tr>")
                b.append("</table>")
                for title2, body2 in iovm["extra"]:
                    b.append(f"<h3>{html.escape(title2)}</h3>")
                    b.append("<pre>" + html.escape("\n".join(body2)) + "</pre>")
            elif kind == "pre":
                b.append("<pre>" + html.escape("\n".join(val)) + "</pre>")
            elif kind == "ul":
                b.append("<ul>" + "".join(f"<li>{html_inline(i, funcs, here)}</li>" for i in val) + "</ul>")
            else:
                b.append(f"<p>{html_inline(val, funcs, here)}</p>")
    return html_page("iovm(1)", "\n".join(b), version)


# ---------------------------------------------------------------- output

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def replace_dir(tmp, final):
    """Put a freshly made directory in place of the old one (no page of a
    function since removed survives)."""
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.rename(tmp, final)


def build(args):
    opts = {"--man": None, "--html": None, "--version": "0", "--umbrella": None,
            "--iovm": None, "--cmd-doc": None}
    paths, i = [], 0
    while i < len(args):
        if args[i] in opts:
            if i + 1 >= len(args):
                raise SystemExit(f"kerneldoc.py: {args[i]} needs a value")
            opts[args[i]] = args[i + 1]
            i += 2
        else:
            paths.append(args[i])
            i += 1
    if not opts["--man"] or not opts["--html"] or not paths:
        raise SystemExit("usage: kerneldoc.py build --man DIR --html DIR [--version V] "
                         "[--umbrella H] [--iovm PROG --cmd-doc FILE] HEADER...")
    if bool(opts["--iovm"]) != bool(opts["--cmd-doc"]):
        raise SystemExit("kerneldoc.py: --iovm and --cmd-doc go together")
    headers, umbrella = parse_all(paths, opts["--umbrella"])
    assign_pages(headers)
    version = opts["--version"]
    funcs = {f.name: f for h in headers for f in h.funcs}

    iovm = doc = None
    if opts["--iovm"]:
        iovm = read_iovm(opts["--iovm"])
        doc = read_cmd_doc(opts["--cmd-doc"])
        check_examples(doc, iovm)

    man_dir, html_dir = opts["--man"], opts["--html"]
    man_tmp = tempfile.mkdtemp(prefix=".man.", dir=os.path.dirname(os.path.abspath(man_dir)))
    html_tmp = tempfile.mkdtemp(prefix=".html.", dir=os.path.dirname(os.path.abspath(html_dir)))
    try:
        for h in headers:
            for f in h.funcs:
                write(os.path.join(man_tmp, "man3", f.name + ".3"), man_function(f, headers, version))
            write(os.path.join(man_tmp, "man3", h.page + ".3"), man_header(h, headers, version))
            if h.alias:
                write(os.path.join(man_tmp, "man3", h.alias + ".3"), f".so man3/{h.page}.3\n")
            write(os.path.join(html_tmp, h.html), html_header(h, headers, funcs, version))
        if umbrella:
            write(os.path.join(man_tmp, "man3", "iovm.3"), man_umbrella(umbrella, headers, version))
        if iovm:
            write(os.path.join(man_tmp, "man1", "iovm.1"), man_iovm(doc, iovm, version))
            write(os.path.join(html_tmp, "iovm.1.html"), html_iovm(doc, iovm, funcs, version))
        write(os.path.join(html_tmp, "index.html"), html_index(umbrella, headers, funcs, version, bool(iovm)))
        for d in (man_tmp, html_tmp):
            os.chmod(d, 0o755)
        replace_dir(man_tmp, man_dir)
        replace_dir(html_tmp, html_dir)
    finally:
        for d in (man_tmp, html_tmp):
            if os.path.isdir(d):
                shutil.rmtree(d)
    n = sum(len(h.funcs) for h in headers)
    print(f"kerneldoc.py: {n} functions of {len(headers)} headers -> {man_dir}, {html_dir}")


def main(argv):
    if len(argv) < 2 or argv[1] not in ("check", "list", "build"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if argv[1] == "build":
        build(argv[2:])
        return 0
    args = argv[2:]
    umbrella = None
    if "--umbrella" in args:
        i = args.index("--umbrella")
        if i + 1 >= len(args):
            print("kerneldoc.py: --umbrella needs a header", file=sys.stderr)
            return 2
        umbrella = args[i + 1]
        args = args[:i] + args[i + 2:]
    if not args:
        print("kerneldoc.py: no header given", file=sys.stderr)
        return 2
    headers, _ = parse_all(args, umbrella)
    if argv[1] == "list":
        for h in headers:
            for f in h.funcs:
                print(f.name)
    else:
        n = sum(len(h.funcs) for h in headers)
        print(f"kerneldoc.py: {n} functions, {sum(len(h.typedefs) for h in headers)} typedefs "
              f"in {len(headers)} headers: every comment parses")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
