#!/usr/bin/env python3
"""Makes a corpus of 4 KiB pages from real memory and files, for zpaged's tests
and benchmarks.

Output, in --out:
  pages.bin     the pages, back to back (a multiple of 4096 bytes)
  manifest.tsv  one line a page: index, kind, source

Kinds and where they come from:
  core     pages of a core dump (gcore) of a running Python process that holds a
           realistic heap: objects, strings, JSON text, interpreter state
  library  4 KiB-aligned chunks of shared libraries under /usr/lib
  text     chunks of text: documentation, licences, headers
  zero     all-zero pages
  same     one random 8-byte word repeated
  random   bytes from os.urandom (incompressible)

The same --seed gives the same selection of pages from the same machine.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time

PAGE = 4096

# Share of each kind in a corpus; core dominates, as it would for a VM.
MIX = {"core": 0.50, "library": 0.18, "text": 0.14, "zero": 0.08,
       "same": 0.04, "random": 0.06}

HEAP_PROGRAM = r"""
import json, random, sys, time
random.seed(7)
words = open('/usr/share/common-licenses/GPL-3').read().split()
heap = [{'id': i, 'name': 'user%d' % i,
         'bio': ' '.join(random.choice(words) for _ in range(12)),
         'tags': [random.choice(words) for _ in range(4)],
         'score': random.random(), 'visits': list(range(i % 17))}
        for i in range(120000)]
text = json.dumps(heap[:30000])
numbers = [random.getrandbits(32) for _ in range(300000)]
print('ready', flush=True)
time.sleep(120)
"""


def log(msg):
    print(f"make_corpus: {msg}", file=sys.stderr, flush=True)


def pages_of_file(path, rng, want):
    """Up to `want` distinct random page-aligned pages of one file."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return []
    slots = size // PAGE
    if slots == 0:
        return []
    picks = rng.sample(range(slots), min(want, slots))
    out = []
    with open(path, "rb") as f:
        for slot in sorted(picks):
            f.seek(slot * PAGE)
            out.append(f.read(PAGE))
    return out


def core_pages(rng, want, workdir):
    """Pages from a core dump of a live process with a realistic heap."""
    proc = subprocess.Popen([sys.executable, "-c", HEAP_PROGRAM],
                            stdout=subprocess.PIPE, text=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("heap process did not start")
        prefix = os.path.join(workdir, "core")
        log(f"dumping process {proc.pid} with gcore")
        subprocess.run(["gcore", "-o", prefix, str(proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        path = f"{prefix}.{proc.pid}"
        log(f"core dump is {os.path.getsize(path) >> 20} MiB")
        # Skip the ELF header and notes: the segments follow them.
        pages = pages_of_file(path, rng, want * 2)[2:]
        return pages[:want]
    finally:
        proc.kill()
        proc.wait()


def stream_pages(paths, want):
    """Pages cut from the files read one after another, as a page cache of
    small text files would hold them."""
    out, buf = [], bytearray()
    for path in paths:
        try:
            with open(path, "rb") as f:
                buf += f.read(64 * PAGE)
        except OSError:
            continue
        while len(buf) >= PAGE and len(out) < want:
            out.append(bytes(buf[:PAGE]))
            del buf[:PAGE]
        if len(out) >= want:
            break
    return out


# Already-compressed files are not text, whatever their names say.
COMPRESSED = (".gz", ".xz", ".bz2", ".zst", ".lz4", ".zip")


def files_under(roots, suffixes, rng, limit):
    found = []
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for name in names:
                if name.endswith(COMPRESSED):
                    continue
                if any(s in name for s in suffixes):
                    path = os.path.join(dirpath, name)
                    if os.path.isfile(path) and not os.path.islink(path):
                        found.append(path)
    rng.shuffle(found)
    return found[:limit]


def chunks_from(paths, rng, want):
    out = []
    per_file = max(1, want // max(1, len(paths)) + 1)
    for path in paths:
        out.extend(pages_of_file(path, rng, per_file))
        if len(out) >= want:
            break
    return out[:want]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--pages", type=int, default=20000,
                        help="pages in the corpus (default 20000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    want = {kind: max(1, int(args.pages * share)) for kind, share in MIX.items()}
    want["core"] += args.pages - sum(want.values())
    os.makedirs(args.out, exist_ok=True)
    start = time.time()
    log(f"making {args.pages} pages in {args.out}")

    corpus = []  # (kind, source, bytes)
    with tempfile.TemporaryDirectory() as workdir:
        for page in core_pages(rng, want["core"], workdir):
            corpus.append(("core", "gcore", page))
    log(f"core: {sum(1 for c in corpus if c[0] == 'core')} pages")

    libs = files_under(["/usr/lib/x86_64-linux-gnu", "/usr/lib"], [".so"],
                       rng, 1500)
    for page in chunks_from(libs, rng, want["library"]):
        corpus.append(("library", "usr-lib", page))
    texts = files_under(["/usr/share/doc", "/usr/share/common-licenses",
                         "/usr/include"], [".h", ".txt", "copyright", "GPL",
                                           "README", ".md"], rng, 3000)
    for page in stream_pages(texts, want["text"]):
        corpus.append(("text", "usr-share", page))
    log(f"library and text: {len(corpus)} pages so far")

    for _ in range(want["zero"]):
        corpus.append(("zero", "generated", bytes(PAGE)))
    for _ in range(want["same"]):
        corpus.append(("same", "generated", os.urandom(8) * (PAGE // 8)))
    # Top up with random pages if any source came up short.
    while len(corpus) < args.pages:
        corpus.append(("random", "urandom", os.urandom(PAGE)))

    rng.shuffle(corpus)
    with open(os.path.join(args.out, "pages.bin"), "wb") as pages, \
            open(os.path.join(args.out, "manifest.tsv"), "w") as manifest:
        for index, (kind, source, page) in enumerate(corpus):
            assert len(page) == PAGE
            pages.write(page)
            manifest.write(f"{index}\t{kind}\t{source}\n")
    counts = {k: sum(1 for c in corpus if c[0] == k) for k in MIX}
    log(f"wrote {len(corpus)} pages in {time.time() - start:.1f}s: {counts}")


if __name__ == "__main__":
    main()
