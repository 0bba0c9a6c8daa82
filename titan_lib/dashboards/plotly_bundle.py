"""The plotly.js bundles the dashboards draw with: pinned, verified, installed beside the template.

A dashboard page loads one *partial* plotly.js bundle from the Voilà template's static
folder instead of the full 4.8 MB bundle of the ``jupyterlab-plotly`` extension: the browser
then evaluates 1.2 MB (``basic``: scatter, bar, pie) or 1.5 MB (``cartesian``: adds heatmap,
histogram, box), which is most of a page's time to interactive on a small machine. Each
notebook names the bundle it needs in its metadata (``"titan": {"plotly": "basic"}``).

The bundles are the npm packages ``plotly.js-<kind>-dist-min`` at the plotly.js version that
the pinned ``plotly`` Python package carries (a test checks the two agree). Set-up
(``make setup``, via ``python -m titan_lib.dashboards.plotly_bundle``) downloads each
tarball once, checks its sha512 against the pin below and writes the file atomically to
``<sys.prefix>/share/jupyter/voila/templates/titan/static/``. Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from titan_lib.exceptions import StoreError, TitanError

PlotlyKind = Literal["basic", "cartesian"]
PLOTLY_JS_VERSION = "4.1.1"
"""The plotly.js version inside the pinned ``plotly`` Python package."""
REGISTRY = "https://registry.npmjs.org"
REGISTRY_ENV = "TITAN_NPM_REGISTRY"
"""Environment variable overriding the npm registry URL (a mirror)."""
INSTALL_COMMAND = "make setup"
DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class PlotlyBundle:
    """One partial plotly.js bundle: its npm package, file and tarball checksum."""

    kind: PlotlyKind
    integrity: str
    """npm's ``dist.integrity`` of the package tarball (``sha512-<base64>``)."""

    @property
    def package(self) -> str:
        """The npm package name."""
        return f"plotly.js-{self.kind}-dist-min"

    @property
    def member(self) -> str:
        """The bundle's path inside the tarball."""
        return f"package/plotly-{self.kind}.min.js"

    @property
    def file_name(self) -> str:
        """The installed file name (versioned, so a new pin never reuses a cached file)."""
        return f"plotly-{self.kind}-{PLOTLY_JS_VERSION}.min.js"

    def tarball_url(self, registry: str) -> str:
        """Where npm serves the package tarball."""
        name = f"{self.package}-{PLOTLY_JS_VERSION}.tgz"
        return f"{registry.rstrip('/')}/{self.package}/-/{name}"


BUNDLES: dict[str, PlotlyBundle] = {
    b.kind: b
    for b in (
        PlotlyBundle(
            "basic",
            "sha512-1oNF8PeQx2hv/y7tqEVWKD3JGwn/MGEMQ8mL9HUwsaqG9FGy/OU5FHUHvzqbqxN4mnwZGI9abTiE775C4kkjMQ==",
        ),
        PlotlyBundle(
            "cartesian",
            "sha512-o8GrFeusncwBIxbBynRJpY4pkgVB6caM+JLpwrLYbbsO7dZ8FJ+SVN2Fr+L7kiG/Z6w4P5O0Jus/Qr5EefHVeg==",
        ),
    )
}


def static_folder(prefix: str | None = None) -> Path:
    """The titan template's static folder under ``prefix`` (default: this environment)."""
    root = Path(prefix or sys.prefix)
    return root / "share" / "jupyter" / "voila" / "templates" / "titan" / "static"


def bundle_files() -> dict[str, str]:
    """File name of each bundle, by kind (what the template loads)."""
    return {kind: b.file_name for kind, b in BUNDLES.items()}


def missing_bundles(prefix: str | None = None) -> list[str]:
    """Kinds whose bundle is not installed under ``prefix``."""
    folder = static_folder(prefix)
    return [kind for kind, b in BUNDLES.items() if not (folder / b.file_name).is_file()]


def check_installed(prefix: str | None = None) -> None:
    """Raise :class:`TitanError` naming the missing bundles and the command that installs them."""
    missing = missing_bundles(prefix)
    if missing:
        raise TitanError(
            f"the dashboards' plotly.js bundle(s) {', '.join(missing)} are not installed in "
            f"{static_folder(prefix)}; run `{INSTALL_COMMAND}`",
            {"missing": missing},
        )


def verify(data: bytes, integrity: str, source: str) -> None:
    """Check ``data`` against an npm ``sha512-<base64>`` integrity string."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise StoreError(f"unsupported integrity algorithm {algorithm!r} for {source}", {})
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise StoreError(
            f"{source} does not match its pinned sha512 (got sha512-{actual[:16]}..., "
            f"expected {integrity[:23]}...): refusing to install it",
            {"source": source},
        )


def extract(tarball: bytes, bundle: PlotlyBundle) -> bytes:
    """The bundle file out of a verified package tarball."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        try:
            member = archive.getmember(bundle.member)
        except KeyError:
            raise StoreError(f"{bundle.package} has no {bundle.member}", {}) from None
        handle = archive.extractfile(member)
        if handle is None:
            raise StoreError(f"{bundle.member} in {bundle.package} is not a file", {})
        return handle.read()


def install_bundles(prefix: str | None = None, registry: str | None = None) -> list[Path]:
    """Download, verify and install every missing bundle; returns the installed paths.

    Files are written to a temporary name and renamed, so a failed download never leaves
    a partial bundle behind.
    """
    registry = registry or os.environ.get(REGISTRY_ENV, REGISTRY)
    folder = static_folder(prefix)
    folder.mkdir(parents=True, exist_ok=True)
    installed = []
    for kind in missing_bundles(prefix):
        bundle = BUNDLES[kind]
        url = bundle.tarball_url(registry)
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                tarball = response.read()
        except OSError as exc:
            raise StoreError(f"cannot download {url}: {exc}", {"url": url}) from None
        verify(tarball, bundle.integrity, url)
        target = folder / bundle.file_name
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{bundle.file_name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(extract(tarball, bundle))
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        installed.append(target)
    return installed


def main() -> int:
    """Install the bundles into this environment (the set-up step)."""
    try:
        for path in install_bundles():
            print(f"installed {path}")
    except TitanError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
