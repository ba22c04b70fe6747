#!/usr/bin/env python3
"""A minimal OCI image built from Debian's busybox-static, for the live CRI tests.

    oci_image.py tar OUT NAME [PAD_MIB]        # an OCI layout archive for `ctr images import`
    oci_image.py push HOST:PORT REPO TAG PAD_MIB  # pushed to a registry over plain HTTP

The layer holds /bin/busybox and the applets the tests run, plus PAD_MIB MiB of random
bytes (incompressible: a slow pull stays slow) when asked. Deterministic except the pad.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request

APPLETS = ["sh", "sleep", "seq", "cat", "true"]
CMD = ["/bin/sh", "-c", "while :; do sleep 3600; done"]


def layer(pad_mib):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d in ["bin", "tmp", "proc", "sys", "dev", "etc"]:
            i = tarfile.TarInfo(d)
            i.type, i.mode = tarfile.DIRTYPE, 0o755
            t.addfile(i)
        with open("/bin/busybox", "rb") as f:
            data = f.read()
        i = tarfile.TarInfo("bin/busybox")
        i.size, i.mode = len(data), 0o755
        t.addfile(i, io.BytesIO(data))
        for a in APPLETS:
            i = tarfile.TarInfo(f"bin/{a}")
            i.type, i.linkname = tarfile.SYMTYPE, "busybox"
            t.addfile(i)
        if pad_mib:
            pad = os.urandom(pad_mib << 20)
            i = tarfile.TarInfo("pad")
            i.size = len(pad)
            t.addfile(i, io.BytesIO(pad))
    diff = raw.getvalue()
    gz = gzip.compress(diff, compresslevel=1, mtime=0)
    return diff, gz


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def image(pad_mib):
    diff, gz = layer(pad_mib)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": CMD, "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(diff)]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(gz),
                    "size": len(gz)}],
    }).encode()
    return config, gz, manifest


def oci_tar(out, name, pad_mib):
    config, gz, manifest = image(pad_mib)
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
                       "size": len(manifest),
                       "annotations": {"io.containerd.image.name": name,
                                       "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]}}],
    }).encode()
    with tarfile.open(out, "w") as t:
        def add(path, data):
            i = tarfile.TarInfo(path)
            i.size = len(data)
            t.addfile(i, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for b in (config, gz, manifest):
            add("blobs/sha256/" + sha(b).split(":", 1)[1], b)


def push(host, repo, tag, pad_mib):
    config, gz, manifest = image(pad_mib)
    base = f"http://{host}/v2/{repo}"
    for b in (config, gz):
        r = urllib.request.urlopen(urllib.request.Request(f"{base}/blobs/uploads/", method="POST", data=b""))
        loc = r.headers["Location"]
        if loc.startswith("/"):
            loc = f"http://{host}{loc}"
        sep = "&" if "?" in loc else "?"
        urllib.request.urlopen(urllib.request.Request(
            f"{loc}{sep}digest={sha(b)}", method="PUT", data=b,
            headers={"Content-Type": "application/octet-stream"}))
    urllib.request.urlopen(urllib.request.Request(
        f"{base}/manifests/{tag}", method="PUT", data=manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))
    print(sha(gz), len(gz), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "tar":
        oci_tar(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    elif sys.argv[1] == "push":
        push(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
