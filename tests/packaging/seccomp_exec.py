"""Run a command under the seccomp filter a systemd unit would give it.

Run by Debian's /usr/bin/python3 (python3-seccomp). The allow list is what
`SystemCallFilter=@system-service` then `SystemCallFilter=~@privileged @resources`
leave, expanded by `systemd-analyze syscall-filter` itself; any other system
call kills the process (stricter than the units' SystemCallErrorNumber=EPERM,
so a forbidden call cannot go unnoticed). socket(2) is limited to the families
of `RestrictAddressFamilies=` and fails with EAFNOSUPPORT for others, as
systemd does.

usage: seccomp_exec.py --families AF_INET,AF_INET6,AF_UNIX -- COMMAND [ARGS...]
"""

import argparse
import errno
import os
import socket
import subprocess
import sys

import seccomp

ALLOW = "@system-service"
DENY = ("@privileged", "@resources")
REFUSED = ("@chown",)
"""Denied calls answered EPERM, as the units' SystemCallErrorNumber=EPERM answers them, instead
of killing: SQLite, when it runs as root, hands its journal files to the database file's owner
with fchown and carries on when refused (under DynamicUser= it is not root and never asks)."""


def expand(group, seen=None):
    """The system call names in a systemd syscall group, sub-groups expanded."""
    seen = set() if seen is None else seen
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", group],
                         check=True, capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        if item.startswith("@"):
            if item not in seen:
                seen.add(item)
                names |= expand(item, seen)
        else:
            names.add(item)
    return names


def allowed_syscalls():
    names = expand(ALLOW)
    for group in DENY:
        names -= expand(group)
    return names


def build_filter(families):
    flt = seccomp.SyscallFilter(defaction=seccomp.KILL_PROCESS)
    for name in sorted(allowed_syscalls() - {"socket"}):
        try:
            flt.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError):
            pass  # a name this kernel or libseccomp does not know on this architecture
    for name in sorted(set().union(*(expand(group) for group in REFUSED)) - allowed_syscalls()):
        try:
            flt.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError):
            pass
    for family in families:
        flt.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, family))
    for family in range(1, 64):
        if family not in families:
            flt.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.EQ, family))
    return flt


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--families", required=True)
    parser.add_argument("--print-allowed", action="store_true")
    parser.add_argument("command", nargs="*")
    args = parser.parse_args()
    if args.print_allowed:
        print("\n".join(sorted(allowed_syscalls())))
        return 0
    families = [int(getattr(socket, name)) for name in args.families.split(",")]
    build_filter(families).load()
    os.execvp(args.command[0], args.command)


if __name__ == "__main__":
    sys.exit(main())
