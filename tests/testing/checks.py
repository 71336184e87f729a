"""The Python end-to-end tests' verdicts: each check prints an ok: or
FAILED: line as it happens, and finish() exits non-zero if any failed."""
import sys

_failures = []


def check(ok, what):
    print(("ok: " if ok else "FAILED: ") + what, flush=True)
    if not ok:
        _failures.append(what)


def finish(passed_line=None):
    """Exits with the count of failed checks, or prints `passed_line`."""
    if _failures:
        sys.exit(f"{len(_failures)} check(s) failed")
    if passed_line:
        print(passed_line)
