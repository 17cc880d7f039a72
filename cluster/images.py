#!/usr/bin/env python3
"""Container images for the test bed, built with podman (there is no Docker engine here).

This module owns every podman call the project makes (`podman()`), the engine config they
use, and the images: a Debian base and the images built on it, each cached by its inputs.

- Registries are unreachable from the test bed, so the base image is made from Debian
  packages with mmdebstrap (python3.11, its venv module, CA certificates) and imported as
  `localhost/harness-base:<key>`. Images the project ships (the reference harness) are built
  from their own Dockerfiles on top of it by passing `BASE_IMAGE`; their public default
  (`python:3.11-slim`) stays untouched.
- pip inside a build reaches PyPI through this machine's network, whose TLS is signed by a
  private CA: the host's CA bundle is handed to the build as the optional `pip_cert` secret,
  which the Dockerfiles read. A secret, not a COPY, so it never lands in a layer.
- Every podman call runs with a project-local engine config (`CONTAINERS_CONF`, never /etc):
  crun cannot set rlimits or use this machine's cgroup layout, runc can
  (local-cluster-recipe.md §12).
- Keys: the base by its suite and package list; a built image by every file of its context
  the build can see (after `.dockerignore`), its Dockerfile and its base. A warm run builds
  nothing; a file lock keeps concurrent sessions from building the same thing twice.

Stdlib only, so that `localcluster.py` (any python3) can import it.

Usage: images.py base | build <context> <repository> | harness
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatchcase
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness-operator"))
IMAGES_DIR = CACHE / "images"
ENGINE_CONF = CACHE / "podman" / "containers.conf"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SUITE = "bookworm"
BASE_PACKAGES = ("python3.11", "python3.11-venv", "ca-certificates")
BASE_REPOSITORY = "localhost/harness-base"
HARNESS_REPOSITORY = "localhost/harness-app"
HARNESS_CONTEXT = ROOT / "examples" / "harness-app"
BUILD_TIMEOUT_SECONDS = 1800
ENGINE_CONFIG = """\
[containers]
default_ulimits = []
[engine]
runtime = "runc"
"""


def log(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


def engine_env() -> dict[str, str]:
    """The environment of every podman call: our engine config, nothing else changed."""
    if not ENGINE_CONF.exists() or ENGINE_CONF.read_text() != ENGINE_CONFIG:
        ENGINE_CONF.parent.mkdir(parents=True, exist_ok=True)
        tmp = ENGINE_CONF.with_name(f".{ENGINE_CONF.name}.{os.getpid()}")
        tmp.write_text(ENGINE_CONFIG)
        tmp.replace(ENGINE_CONF)  # atomic: a concurrent podman call never reads half a file
    return {**os.environ, "CONTAINERS_CONF": str(ENGINE_CONF)}


def podman(
    *args: str, check: bool = True, timeout: float | None = 120, capture: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run podman with the project's engine config; raise with its stderr on failure."""
    proc = subprocess.run(
        ["podman", *args],
        env=engine_env(),
        capture_output=capture,
        stdin=subprocess.DEVNULL,
        text=True,
        check=False,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or "").strip() or f"exit status {proc.returncode}"
        raise RuntimeError(f"podman {' '.join(args[:2])} failed: {detail}")
    return proc


def image_exists(reference: str) -> bool:
    return podman("image", "exists", reference, check=False).returncode == 0


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """An exclusive lock across processes (two test sessions building the same image)."""
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    with (IMAGES_DIR / f".{name}.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _key(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def base_key() -> str:
    return _key(SUITE, *BASE_PACKAGES)


def ensure_base_image() -> str:
    """A Debian bookworm minbase with Python 3.11, as `localhost/harness-base:<key>`."""
    key = base_key()
    reference = f"{BASE_REPOSITORY}:{key}"
    if image_exists(reference):
        return reference
    with _locked(f"base-{key}"):
        if image_exists(reference):  # built by someone else while we waited
            return reference
        tar = IMAGES_DIR / f"base-{SUITE}-{key}.tar"
        if not tar.exists():
            log(f"building the base image from Debian packages ({', '.join(BASE_PACKAGES)})")
            started = time.monotonic()
            # mmdebstrap picks the output format from the name, so keep `.tar` last.
            partial = tar.with_name(f"{tar.stem}.partial-{os.getpid()}.tar")
            try:
                subprocess.run(
                    [
                        "mmdebstrap",
                        "--quiet",
                        "--variant=minbase",
                        f"--include={','.join(BASE_PACKAGES)}",
                        SUITE,
                        str(partial),
                    ],
                    check=True,
                    stdin=subprocess.DEVNULL,
                    timeout=BUILD_TIMEOUT_SECONDS,
                )
                partial.rename(tar)
            finally:
                partial.unlink(missing_ok=True)
            log(f"base tar in {time.monotonic() - started:.0f}s")
        podman("import", "--quiet", str(tar), reference, timeout=600)
    return reference


def _dockerignore(context: Path) -> list[str]:
    ignore = context / ".dockerignore"
    if not ignore.exists():
        return []
    lines = (line.strip() for line in ignore.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _pattern_matches(pattern: str, relative: str) -> bool:
    """Whether a `.dockerignore` pattern matches a path or one of its parent directories
    (a pattern naming a directory covers everything under it). `**/` also matches no
    directory at all, as in Docker."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    globs = [pattern]
    while globs[-1].startswith("**/"):
        globs.append(globs[-1][3:])
    return any(fnmatchcase(c, g) for c in candidates for g in globs)


def included(relative: str, patterns: list[str]) -> bool:
    """Whether a context file reaches the build under these `.dockerignore` patterns: the
    last matching pattern wins and `!` re-includes (simplified: `*` also crosses `/`)."""
    keep = True
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.removeprefix("!").strip().strip("/").removeprefix("./")
        if pattern and _pattern_matches(pattern, relative):
            keep = negate
    return keep


def context_key(context: Path, base: str, dockerfile: Path | None = None) -> str:
    """A hash of every file the build can see, the Dockerfile and the base image."""
    dockerfile = dockerfile or context / "Dockerfile"
    patterns = _dockerignore(context)
    digest = hashlib.sha256(base.encode() + b"\0")
    # The Dockerfile and .dockerignore shape the build even when they exclude themselves.
    for name, path in (("<dockerfile>", dockerfile), ("<ignore>", context / ".dockerignore")):
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b""))
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        relative = path.relative_to(context).as_posix()
        if included(relative, patterns):
            digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def build_image(context: Path, repository: str, base: str, dockerfile: Path | None = None) -> str:
    """`<repository>:<key>` built from `context` on `base`; skipped when it exists."""
    reference = f"{repository}:{context_key(context, base, dockerfile)}"
    if image_exists(reference):
        return reference
    with _locked(f"build-{reference.replace('/', '_').replace(':', '_')}"):
        if image_exists(reference):
            return reference
        log(f"building {reference}")
        started = time.monotonic()
        # Host network: the build's pip reaches PyPI the way this machine does.
        args = ["build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}"]
        if CA_BUNDLE.exists():
            args += ["--secret", f"id=pip_cert,src={CA_BUNDLE}"]
        if dockerfile is not None:
            args += ["--file", str(dockerfile)]
        podman(*args, "--tag", reference, str(context), timeout=BUILD_TIMEOUT_SECONDS)
        log(f"built {reference} in {time.monotonic() - started:.0f}s")
    return reference


def tag_image(source: str, target: str) -> None:
    """Give `source` the extra name `target` (e.g. the name a pod template uses)."""
    podman("tag", source, target)


def harness_image() -> str:
    """The reference harness (examples/harness-app) on the local base image."""
    return build_image(HARNESS_CONTEXT, HARNESS_REPOSITORY, ensure_base_image())


def operator_image() -> str:
    """The operator (this repository's Dockerfile) on the local base image."""
    return build_image(ROOT, "localhost/harness-operator", ensure_base_image())


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    started = time.monotonic()
    if command == "base" and len(argv) == 2:
        print(ensure_base_image())
    elif command == "build" and len(argv) == 4:
        print(build_image(Path(argv[2]).resolve(), argv[3], ensure_base_image()))
    elif command == "harness" and len(argv) == 2:
        print(harness_image())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    log(f"done in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
