# SPDX-License-Identifier: MIT
"""Scaffolding shared by podwire's Python test programs.

    RUN = pwtest.Run("pw-something-")    # a temporary directory, removed at exit
    fail = RUN.fail                      # counts, prints func:line: FAIL: ...
    d = pwtest.Daemon(RUN, [prog, ...], "name")   # logged, killed at exit
    pwtest.wait_for(lambda: ..., timeout=20)
    sys.exit(1 if RUN.failures else 0)
"""
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


class Run:
    """One test program: a temporary directory, the processes it started
    (killed at exit) and its failures (printed as func:line)."""

    def __init__(self, prefix):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.procs = []
        self.failures = 0
        atexit.register(self.cleanup)

    def track(self, p):
        self.procs.append(p)
        return p

    def fail(self, what):
        self.failures += 1
        f = sys._getframe(1)
        print("%s:%d: FAIL: %s" % (f.f_code.co_name, f.f_lineno, what), file=sys.stderr)

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_for(cond, timeout=20.0, step=0.1):
    """cond()'s first true value within timeout seconds, else its last value."""
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


class Daemon:
    """A program started with its stderr in RUN.tmp/NAME-N.log, stdout discarded."""

    def __init__(self, run, argv, name):
        self.log = os.path.join(run.tmp, "%s-%d.log" % (name, len(run.procs)))
        self.p = run.track(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                            stderr=open(self.log, "w")))

    def text(self):
        with open(self.log) as f:
            return f.read()

    def stop(self, timeout=15):
        """SIGTERM; the exit status (None if it had to be killed)."""
        if self.p.poll() is not None:
            return self.p.returncode
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None
