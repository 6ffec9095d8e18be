#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The reference keeps its promises (suite "docs").

    test_docs.py SOURCE_ROOT BUILD_ROOT MAN_DIR HTML_DIR IOVM_PROGRAM CC...

 - every IOVM_API function of include/iovm/*.h, as grep finds them (more
   than 100, one per declaration), has a man page with its sections, and
   a section in its header's HTML page under an anchor of its name; no
   page is left of a function that is gone;
 - every kernel-doc comment parses, and scripts/kerneldoc.py refuses
   malformed ones loudly (each fault below is planted in a header of its
   own and must be named, while the same header without it passes);
 - groff -man -ww -z warns of nothing on any page (skipped, saying so,
   where groff is not installed);
 - the HTML is self-contained: every link resolves to a page and anchor
   of its own, nothing is fetched from elsewhere;
 - iovm(1) has every command and option `iovm --help` lists;
 - every iovm_*() docs/*.md write is a function of the headers, every
   other iovm_* name is in the headers, every IOVM_* name in the sources;
   every C example there that is a whole file using <iovm.h> compiles
   (CC, -Werror); docs/porting.md and docs/concepts.md cover what they
   promise;
 - `make install` puts the pages under share/man and share/doc/iovm/html.
"""

import glob
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

failures = []
checks = 0


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        failures.append(msg)
    return cond


def main():
    if len(sys.argv) < 7:
        print(__doc__, file=sys.stderr)
        return 2
    src, build, man, html_dir, iovm = sys.argv[1:6]
    cc = sys.argv[6:]
    kerneldoc = os.path.join(src, "scripts", "kerneldoc.py")
    headers = sorted(glob.glob(os.path.join(src, "include", "iovm", "*.h")))

    funcs, by_header, void_funcs = grep_functions(headers)
    print(f"{len(funcs)} IOVM_API functions in {len(headers)} headers")
    check(len(funcs) > 100, f"only {len(funcs)} IOVM_API functions found: the grep is wrong")

    generator(kerneldoc, headers, src, funcs)
    malformed(kerneldoc)
    pages = man_pages(man, funcs, by_header, void_funcs, headers)
    groff(man, pages)
    html_reference(html_dir, funcs, by_header)
    iovm_1(man, iovm)
    markdown(src, headers, funcs, by_header)
    examples(src, cc)
    install(build)

    if failures:
        for f in failures:
            print("FAIL: " + f)
        print(f"{len(failures)} of {checks} checks failed")
        return 1
    print(f"all {checks} checks passed")
    return 0


def grep_functions(headers):
    """The public functions as a plain grep sees them, independent of the
    generator: one name per IOVM_API line but the macro's definition."""
    funcs, by_header, void_funcs = [], {}, set()
    for h in headers:
        base = os.path.basename(h)
        by_header[base] = []
        with open(h, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.startswith("IOVM_API"):
                    if "IOVM_API" in line and "#define IOVM_API" not in line:
                        check(False, f"{base}:{n}: IOVM_API not at the start of a line")
                    continue
                names = re.findall(r"\b(iovm_[a-z0-9_]+)\s*\(", line)
                if not check(len(names) == 1, f"{base}:{n}: not one function name in '{line.strip()}'"):
                    continue
                funcs.append(names[0])
                by_header[base].append(names[0])
                if re.match(r"^IOVM_API\s+void\s+iovm_", line):
                    void_funcs.add(names[0])
    check(len(funcs) == len(set(funcs)), "a function is declared twice")
    return sorted(set(funcs)), by_header, void_funcs


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


def generator(kerneldoc, headers, src, funcs):
    r = run([sys.executable, kerneldoc, "check", "--umbrella",
             os.path.join(src, "include", "iovm.h")] + headers)
    check(r.returncode == 0, f"kerneldoc.py check fails on the headers:\n{r.stdout}{r.stderr}")
    r = run([sys.executable, kerneldoc, "list"] + headers)
    listed = sorted(r.stdout.split())
    check(r.returncode == 0 and listed == funcs,
          f"kerneldoc.py list differs from grep: only grep {sorted(set(funcs) - set(listed))}, "
          f"only kerneldoc {sorted(set(listed) - set(funcs))}")


GOOD = """/* SPDX-License-Identifier: MIT */
/*
 * iovm/fix.h - a header for the test.
 */
struct iovm_ctx;

/**
 * typedef iovm_fix_fn - a callback of @arg.
 */
typedef int (*iovm_fix_fn)(void *arg);

/**
 * iovm_fix_one() - one function.
 * @ctx: the context
 * @n: how many
 *
 * What it does, with @n, beside iovm_fix_two().
 *
 * Thread safety: safe.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_fix_one(struct iovm_ctx *ctx, unsigned n);

/**
 * iovm_fix_two() - another.
 *
 * Thread safety: safe.
 */
IOVM_API void iovm_fix_two(void);
"""

# (what is planted, the text that replaces GOOD's, what the fault report must say)
FAULTS = [
    ("an @param not in the prototype", (" * @n: how many\n", " * @n: how many\n * @m: not there\n"),
     "@m is not a parameter"),
    ("a function without a comment", ("/**\n * iovm_fix_two() - another.\n *\n * Thread safety: safe.\n */\n", ""),
     "iovm_fix_two(): no kernel-doc comment"),
    ("a plain /* comment", ("/**\n * iovm_fix_two()", "/*\n * iovm_fix_two()"),
     "plain /* comment"),
    ("a comment naming another function", (" * iovm_fix_two() - another.", " * iovm_fix_three() - another."),
     "names iovm_fix_three() but documents iovm_fix_two()"),
    ("no Thread safety", (" * What it does, with @n, beside iovm_fix_two().\n *\n * Thread safety: safe.\n",
                          " * What it does, with @n, beside iovm_fix_two().\n"),
     "no 'Thread safety:' section"),
    ("no Return for an int", (" *\n * Return: 0, or -EINVAL.\n", "\n"), "no 'Return:' section"),
    ("a Return for a void function", (" * iovm_fix_two() - another.\n *\n * Thread safety: safe.\n",
                                      " * iovm_fix_two() - another.\n *\n * Thread safety: safe.\n *\n * Return: 0.\n"),
     "a 'Return:' section for a function returning void"),
    ("an @name in the text that is no parameter", ("What it does, with @n,", "What it does, with @count,"),
     "@count in the text is not a parameter"),
    ("a mention of a function no header has", ("beside iovm_fix_two().", "beside iovm_fix_gone()."),
     "mentions iovm_fix_gone(), which no header declares"),
    ("a parameter described twice", (" * @n: how many\n", " * @n: how many\n * @n: again\n"),
     "@n is described twice"),
    ("a section over two paragraphs", (" * Thread safety: safe.\n *\n * Return: 0, or -EINVAL.",
                                       " * Thread safety: safe.\n *\n * More description.\n *\n * Return: 0, or -EINVAL."),
     "runs over more than one paragraph"),
    ("a comment of no known form", ("/**\n * iovm_fix_one() - one function.", "/**\n * one function."),
     "must start 'iovm_name() - what it does'"),
    ("a comment without a summary", (" * iovm_fix_one() - one function.", " * iovm_fix_one()"),
     "must start 'iovm_name() - what it does'"),
    ("no file comment", ("/*\n * iovm/fix.h - a header for the test.\n */\n", ""),
     "no file comment after the SPDX line"),
    ("a parameter described after the description", (" * What it does, with @n, beside iovm_fix_two().\n",
                                                      " * What it does, with @n, beside iovm_fix_two().\n *\n * @ctx: late\n"),
     "a parameter described after the description"),
    ("a typedef comment over another declaration", ("typedef int (*iovm_fix_fn)(void *arg);", "struct iovm_fix_x;"),
     "is not followed by its typedef"),
]


def malformed(kerneldoc):
    tmp = tempfile.mkdtemp()
    try:
        os.makedirs(os.path.join(tmp, "iovm"))
        path = os.path.join(tmp, "iovm", "fix.h")
        with open(path, "w") as f:
            f.write(GOOD)
        r = run([sys.executable, kerneldoc, "check", path])
        check(r.returncode == 0, f"the well-formed fixture is refused:\n{r.stdout}{r.stderr}")
        for what, (old, new), says in FAULTS:
            if not check(GOOD.count(old) == 1, f"fixture '{what}': its text is not in the good header once"):
                continue
            with open(path, "w") as f:
                f.write(GOOD.replace(old, new))
            r = run([sys.executable, kerneldoc, "check", path])
            out = r.stdout + r.stderr
            check(r.returncode != 0 and says in out and "Traceback" not in out,
                  f"kerneldoc.py does not refuse {what} (exit {r.returncode}, wanted '{says}'):\n{out}")
            # And build refuses it too, writing nothing.
            r = run([sys.executable, kerneldoc, "build", "--man", os.path.join(tmp, "man"),
                     "--html", os.path.join(tmp, "html"), path])
            check(r.returncode != 0 and not os.path.exists(os.path.join(tmp, "man")),
                  f"kerneldoc.py build goes on with {what}")
        print(f"kerneldoc.py refuses each of {len(FAULTS)} malformed comments")
    finally:
        shutil.rmtree(tmp)


def man_pages(man, funcs, by_header, void_funcs, headers):
    man3 = os.path.join(man, "man3")
    expected = set()
    for base, fl in by_header.items():
        stem = "iovm_" + base[:-2]
        hpage = stem + ".h"
        expected.add(hpage + ".3")
        for fn in fl:
            expected.add(fn + ".3")
            path = os.path.join(man3, fn + ".3")
            if not check(os.path.isfile(path), f"{fn}(): no man page {path}"):
                continue
            with open(path, encoding="utf-8") as f:
                t = f.read()
            for sec in ("NAME", "SYNOPSIS", "DESCRIPTION", "THREAD SAFETY", "SEE ALSO"):
                check(f"\n.SH {sec}\n" in t, f"{fn}(3): no {sec} section")
            check(re.search(r"^\.SH NAME\n%s \\- \S" % re.escape(fn), t, re.M),
                  f"{fn}(3): NAME is not '{fn} - summary'")
            check(f".B #include <iovm/{base}>" in t, f"{fn}(3): no #include <iovm/{base}>")
            check(re.search(r'^\.BI ".*%s\(' % re.escape(fn), t, re.M), f"{fn}(3): no prototype")
            check(("\n.SH RETURN VALUE\n" in t) == (fn not in void_funcs),
                  f"{fn}(3): a RETURN VALUE section {'missing' if fn not in void_funcs else 'for void'}")
            check(f".BR {hpage} (3)" in t, f"{fn}(3): SEE ALSO lacks {hpage}(3)")
            for other in fl:
                if other != fn:
                    check(f".BR {other} (3)" in t, f"{fn}(3): SEE ALSO lacks {other}(3)")
        path = os.path.join(man3, hpage + ".3")
        if check(os.path.isfile(path), f"{base}: no header page {hpage}(3)"):
            with open(path, encoding="utf-8") as f:
                t = f.read()
            for fn in fl:
                check(f".BR {fn} (3)" in t, f"{hpage}(3) does not list {fn}()")
        if stem in funcs:
            check(open(os.path.join(man3, stem + ".3")).read().find(".so ") < 0,
                  f"{stem}(3) is an alias, not the function's page")
        else:
            expected.add(stem + ".3")
            alias = os.path.join(man3, stem + ".3")
            check(os.path.isfile(alias) and open(alias).read() == f".so man3/{hpage}.3\n",
                  f"{stem}(3) is not an alias of {hpage}(3)")
    expected.add("iovm.3")
    if check(os.path.isfile(os.path.join(man3, "iovm.3")), "no iovm(3)"):
        t = open(os.path.join(man3, "iovm.3")).read()
        for base in by_header:
            check(f".BR iovm_{base[:-2]}.h (3)" in t, f"iovm(3) does not list iovm_{base[:-2]}.h(3)")
    have = set(os.listdir(man3)) if os.path.isdir(man3) else set()
    check(have == expected, f"man3 pages: missing {sorted(expected - have)}, stale {sorted(have - expected)}")
    check(os.listdir(os.path.join(man, "man1")) == ["iovm.1"], "man1 holds other than iovm.1")
    pages = [os.path.join("man3", p) for p in sorted(have)] + ["man1/iovm.1"]
    print(f"{len(pages)} man pages: {len(funcs)} functions, {len(by_header)} headers "
          f"(and {len(have) - len(funcs) - len(by_header) - 1} short aliases), iovm(3), iovm(1)")
    return pages


def groff(man, pages):
    if not shutil.which("groff"):
        print("SKIP groff -man -ww -z: groff is not installed (apt-get install groff-base)")
        return
    bad = 0
    for p in pages:
        r = run(["groff", "-man", "-ww", "-z", p], cwd=man)
        if not check(r.returncode == 0 and not r.stderr.strip(), f"groff warns on {p}:\n{r.stderr}"):
            bad += 1
    r = run(["groff", "-man", "-Tutf8", os.path.join("man3", "iovm_dma_alloc.3")], cwd=man)
    check(r.returncode == 0 and "iovm_dma_alloc" in r.stdout, "iovm_dma_alloc(3) does not format")
    print(f"groff -man -ww -z: {len(pages) - bad} of {len(pages)} pages without a warning")


class Page(html.parser.HTMLParser):
    VOID = {"meta", "br", "hr", "img", "link", "input", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.hrefs, self.stack, self.errors, self.srcs = set(), [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            if a["id"] in self.ids:
                self.errors.append(f"id {a['id']} twice")
            self.ids.add(a["id"])
        if "href" in a:
            self.hrefs.append(a["href"])
        for k in ("src", "srcset", "data", "action"):
            if k in a:
                self.srcs.append(a[k])
        if tag in ("script", "link", "iframe", "img", "object", "embed"):
            self.errors.append(f"<{tag}>: the reference loads nothing")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
        else:
            self.stack.pop()


def html_reference(html_dir, funcs, by_header):
    pages = {}
    for p in sorted(os.listdir(html_dir)):
        if not p.endswith(".html"):
            check(False, f"html/{p}: not a page (the reference is self-contained pages)")
            continue
        with open(os.path.join(html_dir, p), encoding="utf-8") as f:
            text = f.read()
        parser = Page()
        parser.feed(text)
        parser.close()
        pages[p] = parser
        check(not parser.errors and not parser.stack,
              f"html/{p}: {parser.errors[:3]} {'unclosed ' + str(parser.stack) if parser.stack else ''}")
        check(not parser.srcs, f"html/{p}: loads {parser.srcs[:3]}")
        style = "".join(re.findall(r"<style>(.*?)</style>", text, re.S))
        check(style and not re.search(r"@import|url\(", style), f"html/{p}: its style loads something")
    if not check("index.html" in pages, "no html/index.html"):
        return
    for base, fl in by_header.items():
        page = f"iovm_{base[:-2]}.html"
        if not check(page in pages, f"no html/{page} for {base}"):
            continue
        check(f"{page}" in pages["index.html"].hrefs, f"index.html does not link {page}")
        for fn in fl:
            check(fn in pages[page].ids, f"html/{page}: no anchor {fn}")
            check(f"{page}#{fn}" in pages["index.html"].hrefs, f"index.html does not link {page}#{fn}")
    n = 0
    for p, parser in pages.items():
        for href in parser.hrefs:
            n += 1
            if not check(not re.match(r"^[a-z]+:|^//", href), f"html/{p}: a link out, {href}"):
                continue
            target, _, anchor = href.partition("#")
            target = target or p
            if check(target in pages, f"html/{p}: link to a page that is not there, {href}") and anchor:
                check(anchor in pages[target].ids, f"html/{p}: link to an anchor that is not there, {href}")
    print(f"HTML: {len(pages)} pages, {n} links, every one resolves; "
          f"{sum(len(fl) for fl in by_header.values())} function anchors")


def iovm_1(man, iovm):
    r = run([iovm, "--help"])
    if not check(r.returncode == 0, "iovm --help fails"):
        return
    path = os.path.join(man, "man1", "iovm.1")
    if not check(os.path.isfile(path), "no iovm(1)"):
        return
    page = open(path, encoding="utf-8").read()
    plain = page.replace("\\-", "-").replace("\\e", "\\")
    cmds, opts, where = [], [], None
    for ln in r.stdout.split("\n"):
        if ln and not ln[0].isspace():
            where = "cmds" if ln.startswith("commands") else "opts" if ln.startswith("options") else None
            continue
        m = re.match(r"^\s+(\S+)", ln)
        if m and where == "cmds":
            cmds.append(m.group(1))
        elif m and where == "opts":
            opts.append(m.group(1))
    check(len(cmds) >= 5 and len(opts) >= 10, f"iovm --help: {len(cmds)} commands, {len(opts)} options?")
    for c in cmds:
        check(f"\n.SS {c}\n" in page, f"iovm(1) has no section for the command {c}")
        u = run([iovm, c, "--help"]).stdout.split("\n")
        usage = [u[0][len("usage: "):]]
        for ln in u[1:]:
            if not ln.startswith(" ") or not ln.strip():
                break
            usage.append(ln)
        for w in " ".join(usage).split():
            check(w in plain, f"iovm(1): the usage of {c} lacks '{w}'")
    for o in opts:
        check(re.search(r'^\.BI? "?%s=?"?' % re.escape(o), page, re.M), f"iovm(1) lacks the option {o}")
    print(f"iovm(1): {len(cmds)} commands and {len(opts)} options, as iovm --help lists them")


_tree_words = None


def tree_words(src):
    """Every word of the sources beyond the headers: an IOVM_* name a
    document gives may be an environment variable, a macro of the
    library's own, a symbol version node."""
    global _tree_words
    if _tree_words is None:
        _tree_words = set()
        paths = [os.path.join(src, f) for f in ("Makefile", "meson.build", "meson_options.txt")]
        for d in ("src", "tools", "tests", "scripts", "bench", "examples", "debian"):
            for root, _, files in os.walk(os.path.join(src, d)):
                if "corpus" in root:
                    continue
                paths += [os.path.join(root, f) for f in files]
        for p in paths:
            try:
                with open(p, encoding="utf-8", errors="ignore") as f:
                    _tree_words |= set(re.findall(r"\bIOVM_\w+", f.read()))
            except OSError:
                pass
    return _tree_words


def markdown(src, headers, funcs, by_header):
    text = ""
    for h in headers:
        text += open(h, encoding="utf-8").read()
    words = set(re.findall(r"\b\w+\b", text))
    structs = set(re.findall(r"\bstruct (iovm_\w+)", text))
    man_names = set(funcs) | {"iovm"}
    for base in by_header:
        man_names |= {f"iovm_{base[:-2]}.h", f"iovm_{base[:-2]}"}
    mds = sorted(glob.glob(os.path.join(src, "docs", "*.md")))
    check(len(mds) >= 2, "docs/*.md: fewer than two documents")
    nfunc = nname = 0
    for md in mds:
        name = os.path.relpath(md, src)
        body = open(md, encoding="utf-8").read()
        for m in re.finditer(r"\b(iovm_[a-z0-9_]+)\s*\((?![1-8]\))", body):
            nfunc += 1
            check(m.group(1) in funcs, f"{name}: {m.group(1)}() is no function of include/iovm/*.h")
        for m in re.finditer(r"\b(iovm[a-z0-9_.]*)\(([1-8])\)", body):
            check(m.group(1) in man_names, f"{name}: {m.group(1)}({m.group(2)}) is no page of the reference")
        for m in re.finditer(r"\bstruct (iovm_[a-z0-9_]+)", body):
            check(m.group(1) in structs, f"{name}: struct {m.group(1)} is in no header")
        for m in re.finditer(r"\b(iovm_[a-z0-9_]*[a-z0-9])\b(?!\s*\()(?!\.h)(?!_?\*)", body):
            nname += 1
            check(m.group(1) in words, f"{name}: {m.group(1)} is in no header")
        for m in re.finditer(r"\b(IOVM_[A-Z0-9_]*[A-Z0-9])\b(?!_?\*)", body):
            nname += 1
            check(m.group(1) in words or m.group(1) in tree_words(src),
                  f"{name}: {m.group(1)} is nowhere in the headers, src/, tools/, tests/ or the build files")
    check(nfunc > 30, f"docs/*.md name only {nfunc} iovm functions")
    print(f"docs/*.md: {nfunc} function names and {nname} other names checked against the headers")

    porting = open(os.path.join(src, "docs", "porting.md"), encoding="utf-8").read()
    for peer in ("rte_malloc", "rte_zmalloc", "rte_free", "rte_memzone_reserve", "rte_memzone_lookup",
                 "rte_mem_virt2iova", "rte_mem_virt2phy", "rte_extmem_register", "rte_vfio_container_dma_map",
                 "spdk_dma_malloc", "spdk_zmalloc", "spdk_vtophys", "spdk_mem_map_alloc",
                 "spdk_mem_map_set_translation", "spdk_mem_map_translate", "spdk_mem_register",
                 "iommu_map_vaddr", "iommu_unmap_vaddr", "vfn_pci_open",
                 "ibv_reg_mr", "lkey", "rkey", "ibv_advise_mr", "ibv_dereg_mr", "ODP"):
        check(re.search(r"\b%s\b" % re.escape(peer), porting), f"docs/porting.md does not map {peer}")
    concepts = open(os.path.join(src, "docs", "concepts.md"), encoding="utf-8").read()
    for word in ("bank", "arena", "granule", "slot", "span", "section", "gate", "epoch", "window",
                 "block", "domain", "PASID", "zone", "common buffer", "share", "journal"):
        check(re.search(r"^\| \*\*%s\*\*" % re.escape(word), concepts, re.M | re.I),
              f"docs/concepts.md: the glossary has no entry '{word}'")
    for addr in ("PA", "host PA", "IOVA", "GPA", "lkey"):
        check(re.search(r"\b%s\b" % re.escape(addr), concepts), f"docs/concepts.md does not explain {addr}")


PEER_HEADER = re.compile(r"#include <(rte_|spdk/|infiniband/|rdma/|vfn/)")
FUNC_DEF = re.compile(r"^[A-Za-z_][^\n;=]*\([^;]*\)\s*\n\{", re.M)


def examples(src, cc):
    """Every C block of docs/*.md that is a whole file using iovm (it
    includes <iovm.h> and defines functions) compiles. Fragments, and
    peers' code (DPDK's, SPDK's), are left alone."""
    n = 0
    for md in sorted(glob.glob(os.path.join(src, "docs", "*.md"))):
        body = open(md, encoding="utf-8").read()
        for m in re.finditer(r"^```c\n(.*?)^```$", body, re.M | re.S):
            code = m.group(1)
            if "iovm_" not in code or PEER_HEADER.search(code):
                continue
            if "#include <iovm.h>" not in code or not FUNC_DEF.search(code):
                continue  # a fragment, which may lean on the one before it
            n += 1
            r = run(cc + ["-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function",
                          "-fsyntax-only", "-I", os.path.join(src, "include"), "-x", "c", "-"], input=code)
            line = body[:m.start(1)].count("\n") + 1
            check(r.returncode == 0, f"{os.path.relpath(md, src)}:{line}: the example does not compile:\n{r.stderr}")
    check(n >= 2, f"docs/*.md: only {n} iovm examples to compile")
    print(f"docs/*.md: {n} iovm examples compiled")


def install(build):
    r = run(["meson", "introspect", build, "--installed"])
    if not check(r.returncode == 0, f"meson introspect --installed fails: {r.stderr}"):
        return
    inst = json.loads(r.stdout)
    man_to = [v for k, v in inst.items() if k.endswith(os.path.join("docs", "man"))]
    html_to = [v for k, v in inst.items() if k.endswith(os.path.join("docs", "html"))]
    check(len(man_to) == 1 and man_to[0].endswith(os.path.join("share", "man")),
          f"the man pages install into {man_to}, not <prefix>/share/man (man1/, man3/)")
    check(len(html_to) == 1 and html_to[0].endswith(os.path.join("share", "doc", "iovm", "html")),
          f"the HTML installs into {html_to}, not <prefix>/share/doc/iovm/html")


if __name__ == "__main__":
    sys.exit(main())
