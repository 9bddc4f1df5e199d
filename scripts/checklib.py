"""What scripts/compose-check.py and scripts/clients-check.py share: running
commands, the processes of a stack and waiting for them."""

import signal
import shutil
import socket
import subprocess
import time
import urllib.request


class CheckFailed(Exception):
    """A check that did not pass; the message says what to look at."""


def run(args, **kwargs):
    """Runs a command; fails with its output if it fails."""
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise CheckFailed(
            f"{' '.join(map(str, args))} exited with {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result.stdout


class Stack:
    """The processes started so far, each logging to a file under `logs`,
    stopped in reverse order."""

    def __init__(self, logs, log):
        self.processes = []
        self.logs = logs
        self.log = log
        shutil.rmtree(self.logs, ignore_errors=True)
        self.logs.mkdir(parents=True)

    def start(self, name, args, env=None):
        log_file = open(self.logs / f"{name}.log", "a")
        process = subprocess.Popen(args, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append((name, process))
        return process

    def check_running(self):
        for name, process in self.processes:
            if process.poll() is not None:
                raise CheckFailed(f"{name} exited with {process.returncode}")

    def stop_one(self, name):
        """Stops the process started as `name` and forgets it."""
        for entry in list(self.processes):
            if entry[0] == name:
                self._stop(*entry)
                self.processes.remove(entry)

    def stop(self):
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in reversed(self.processes):
            self._stop(name, process)

    def _stop(self, name, process):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.log(f"{name} did not stop after SIGTERM; killing it")
            process.kill()
            process.wait()

    def dump_logs(self):
        for name, _ in self.processes:
            lines = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
            print(f"--- {name} (last 40 lines of {self.logs / (name + '.log')})")
            print("\n".join(lines[-40:]))


def wait_until(what, check, timeout=60, stack=None):
    """Calls `check` every half second until it returns something true."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        if stack:
            stack.check_running()
        try:
            result = check()
            if result:
                return result
        except (OSError, CheckFailed, ValueError, KeyError) as error:
            last_error = error
        time.sleep(0.5)
    raise CheckFailed(f"timed out waiting for {what}" + (f": {last_error}" if last_error else ""))


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


def tcp_open(address, port):
    with socket.create_connection((address, port), timeout=2):
        return True


def free_port():
    """A loopback port that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
