#!/usr/bin/env python3
"""A FUSE filesystem that answers INIT and nothing else: the real "dead FUSE server".

Usage: fuse_never_answers.py MOUNTPOINT

Opens /dev/fuse, mounts it at MOUNTPOINT with mount(2) (no libfuse needed), answers the
kernel's FUSE_INIT, then reads every later request and never replies. A process that then
stats a file under the mount waits in request_wait_answer(); once it is sent SIGKILL it
sleeps uninterruptibly (state D, SIGKILL pending) until the connection is aborted. Killing
this daemon closes /dev/fuse, which aborts the connection and frees every waiter; so does
writing 1 to /sys/fs/fuse/connections/<dev>/abort, after which this daemon exits quietly.

Prints "mounted" when the mount is up and "request OPCODE" for each request it swallows.
"""
import ctypes
import os
import struct
import sys

FUSE_INIT = 26
IN_HEADER = struct.Struct("<IIQQIIIHH")  # len opcode unique nodeid uid gid pid extlen pad
OUT_HEADER = struct.Struct("<IiQ")  # len error unique


def main():
    mnt = sys.argv[1]
    fd = os.open("/dev/fuse", os.O_RDWR)
    libc = ctypes.CDLL(None, use_errno=True)
    opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0".encode()
    if libc.mount(b"node-doctor-test", mnt.encode(), b"fuse.node-doctor-test", 0, opts) != 0:
        e = ctypes.get_errno()
        sys.exit(f"mount: {os.strerror(e)}")
    print("mounted", flush=True)
    while True:
        try:
            buf = os.read(fd, 1 << 17)
        except OSError:  # ENODEV: the connection was aborted (fusectl) or unmounted
            return
        _, opcode, unique, *_ = IN_HEADER.unpack_from(buf)
        if opcode == FUSE_INIT:
            major, minor = struct.unpack_from("<II", buf, IN_HEADER.size)
            # fuse_init_out: major minor max_readahead flags max_background
            # congestion_threshold max_write time_gran max_pages map_alignment flags2
            # max_stack_depth unused[6]  (64 bytes)
            init_out = struct.pack("<IIIIHHIIHHII24x", 7, min(minor, 31), 0, 0, 16, 12, 4096, 1, 1, 0, 0, 0)
            os.write(fd, OUT_HEADER.pack(OUT_HEADER.size + len(init_out), 0, unique) + init_out)
        else:
            print(f"request {opcode}", flush=True)


if __name__ == "__main__":
    main()
