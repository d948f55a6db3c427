#!/usr/bin/env python3
"""Writes the layer_extract fuzzer's seeds into DIR: small tar layers (generated here rather than
checked in as binaries), each prefixed with the fuzzer's option byte
(bit 0 overlay whiteouts, bits 1-2 compression 0 none/1 gzip/2 zstd, bit 3 devices, bit 4 owners)."""
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile

OVERLAY, GZIP, ZSTD, DEVICES, OWNERS = 1, 2, 4, 8, 16


def entry(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, link="", uid=0, gid=0, mtime=1700000000,
          pax=None, dev=(0, 0)):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    info.uid, info.gid, info.mtime = uid, gid, mtime
    info.devmajor, info.devminor = dev
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if pax:
        info.pax_headers = pax
    return info, data


def tar(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if info.size else None)
    # Drop the record padding: the entries, then the two zero blocks that end an archive.
    body = buf.getvalue().rstrip(b"\0")
    return body + b"\0" * (-len(body) % 512 + 1024)


D, F, L, H = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
SEEDS = {
    "basic": tar([entry("./", D, mode=0o755), entry("etc/", D, mode=0o755),
                  entry("etc/hostname", data=b"kiste\n"), entry("bin/", D),
                  entry("bin/sh", data=b"#!/bin/sh\n", mode=0o755),
                  entry("bin/ash", L, link="sh"), entry("bin/busybox", H, link="bin/sh"),
                  entry("run/fifo", tarfile.FIFOTYPE, mode=0o600),
                  entry("empty", data=b""), entry("setuid", data=b"x", mode=0o4755)]),
    "whiteouts": tar([entry("a/", D), entry("a/.wh.gone"), entry("a/.wh..wh..opq"),
                      entry("a/kept", data=b"k"), entry(".wh.b"), entry("b/", D),
                      entry("c/.wh..wh..opq"), entry("c/new", data=b"n")]),
    "escapes": tar([entry("../outside", data=b"x"), entry("/abs/file", data=b"y"),
                    entry("up", L, link="../../.."), entry("up/escaped", data=b"z"),
                    entry("root", L, link="/"), entry("root/etc/passwd", data=b"p"),
                    entry("hl", H, link="../../etc/shadow"), entry("hl2", H, link="root"),
                    entry("a/../../b/./c//d", data=b"q")]),
    "dangling": tar([entry("link", L, link="made/below"), entry("link/file", data=b"f"),
                     entry("abs", L, link="/x/y"), entry("abs/z/file", data=b"g"),
                     entry("loop", L, link="loop"), entry("loop/x", data=b"h")]),
    "replace": tar([entry("p", data=b"file"), entry("p/", D), entry("p/q", data=b"1"),
                    entry("d/", D, mode=0), entry("d/inner", data=b"2"), entry("d", data=b"now a file"),
                    entry("dup", data=b"1"), entry("dup", data=b"2")]),
    "pax_long": tar([entry("x" * 200 + "/" + "y" * 150, data=b"long"),
                     entry("s", L, link="t" * 300),
                     entry("xattr", data=b"v", pax={"SCHILY.xattr.user.k": "v",
                                                     "SCHILY.xattr.trusted.overlay.opaque": "y",
                                                     "SCHILY.xattr.security.capability": "\x01"}),
                     entry("times", data=b"", pax={"mtime": "-1.5", "atime": "99999999999.999999999"}),
                     entry("big_ids", data=b"", uid=2**31, gid=65534)]),
    "gnu_long": tar([entry("g" * 180 + "/n", data=b"gnu"), entry("gl", L, link="h" * 200)],
                    fmt=tarfile.GNU_FORMAT),
    "devices": tar([entry("dev/", D), entry("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
                    entry("dev/sda", tarfile.BLKTYPE, mode=0o660, dev=(8, 0)),
                    entry("dev/.wh.old")]),
    "ustar": tar([entry("u/file", data=b"u" * 1000), entry("u/dir/", D)], fmt=tarfile.USTAR_FORMAT),
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, body in SEEDS.items():
        variants = {"": (0, body), ".overlay": (OVERLAY | DEVICES | OWNERS, body),
                    ".gz": (GZIP, gzip.compress(body, mtime=0))}
        if shutil.which("zstd"):
            variants[".zst"] = (ZSTD, subprocess.run(["zstd", "-q", "-c"], input=body,
                                                     stdout=subprocess.PIPE, check=True).stdout)
        for suffix, (opt, data) in variants.items():
            with open(os.path.join(out, f"tar_{name}{suffix}"), "wb") as f:
                f.write(bytes([opt]) + data)


if __name__ == "__main__":
    main()
