"""`titan lambdas`: package the Chalice app for deployment, or serve it locally.

``titan lambdas package`` vendors exactly what the Lambda imports into ``lambdas/vendor/``
(``titan_lib`` core, stores, exceptions and config; aws-lambda-powertools with jmespath and
typing_extensions), runs ``chalice package`` for SAM (CloudFormation) and Terraform, adds
API Gateway responses so gateway-level errors (401, 403, 404) use the one error body,
and checks the zip: no numpy, pandas, polars, pyarrow, scipy, statsmodels or vectorbt,
at most 5 MB. ``titan lambdas local`` serves the app like ``chalice local`` with those
same gateway responses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from titan_lib.exceptions import ParameterError, RunFailedError

PackageFormat = Literal["sam", "terraform"]
MAX_ZIP_BYTES = 5 * 1024 * 1024
FORBIDDEN_PACKAGES = frozenset(
    {"numpy", "pandas", "polars", "pyarrow", "scipy", "statsmodels", "vectorbt", "numba"}
)
LAMBDA_TITAN_MODULES = ("__init__.py", "py.typed", "exceptions.py", "config.py", "core", "stores")
VENDORED_DISTRIBUTIONS = ("aws_lambda_powertools", "jmespath", "typing_extensions")
GATEWAY_ERRORS: dict[str, tuple[str, str]] = {
    "UNAUTHORIZED": ("401", "unauthorized"),
    "ACCESS_DENIED": ("403", "forbidden"),
    "MISSING_AUTHENTICATION_TOKEN": ("404", "not_found"),
    "THROTTLED": ("429", "rate_limited"),
    "DEFAULT_4XX": ("", "bad_request"),
    "DEFAULT_5XX": ("", "gateway_error"),
}


def project_dir() -> Path:
    """The Chalice project: ``$TITAN_LAMBDAS_DIR`` or ``lambdas/`` of this checkout."""
    configured = os.environ.get("TITAN_LAMBDAS_DIR")
    path = Path(configured) if configured else Path(__file__).resolve().parents[2] / "lambdas"
    if not (path / "app.py").is_file() or not (path / ".chalice" / "config.json").is_file():
        raise ParameterError(f"{path} is not the Chalice project (no app.py/.chalice/config.json)")
    return path


def _copy_tree(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(
            source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyi")
        )
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def vendor(project: Path) -> Path:
    """Fill ``<project>/vendor`` with the modules the Lambda imports; return the folder."""
    import importlib.util

    target = project / "vendor"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    titan_root = Path(__file__).resolve().parents[1]
    for name in LAMBDA_TITAN_MODULES:
        _copy_tree(titan_root / name, target / "titan_lib" / name)
    for dist in VENDORED_DISTRIBUTIONS:
        spec = importlib.util.find_spec(dist)
        if spec is None or spec.origin is None:
            raise ParameterError(f"{dist} is not installed; it is vendored into the Lambda")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        _copy_tree(source, target / source.name)
    return target


def gateway_responses() -> dict[str, Any]:
    """API Gateway responses rendering gateway errors as ``{"error": {...}}``."""
    responses: dict[str, Any] = {}
    for kind, (status, code) in GATEWAY_ERRORS.items():
        template = (
            '{"error": {"code": "' + code + '", "message": $context.error.messageString, '
            '"details": {"request_id": "$context.requestId"}}}'
        )
        entry: dict[str, Any] = {
            "responseTemplates": {"application/json": template},
            "responseParameters": {"gatewayresponse.header.Content-Type": "'application/json'"},
        }
        if status:
            entry["statusCode"] = status
        responses[kind] = entry
    return responses


def _patch_sam(path: Path) -> None:
    template = json.loads(path.read_text())
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    body["x-amazon-apigateway-gateway-responses"] = gateway_responses()
    path.write_text(json.dumps(template, indent=2) + "\n")


def _patch_terraform(path: Path) -> None:
    template = json.loads(path.read_text())
    swagger = json.loads(template["locals"]["chalice_api_swagger"])
    swagger["x-amazon-apigateway-gateway-responses"] = gateway_responses()
    template["locals"]["chalice_api_swagger"] = json.dumps(swagger)
    path.write_text(json.dumps(template, indent=2) + "\n")


@dataclass(frozen=True)
class PackageReport:
    """What ``package`` built: the output folders, the zip and its size in bytes."""

    outputs: dict[str, Path]
    zip_path: Path
    zip_bytes: int
    top_level: tuple[str, ...]


def check_zip(path: Path) -> tuple[int, tuple[str, ...]]:
    """Size and top-level entries of a deployment zip; refuse heavy libraries and > 5 MB."""
    with zipfile.ZipFile(path) as archive:
        top = tuple(sorted({name.split("/", 1)[0] for name in archive.namelist()}))
    heavy = sorted(
        n for n in top if n.split(".", 1)[0].split("-", 1)[0].lower() in FORBIDDEN_PACKAGES
    )
    size = path.stat().st_size
    if heavy:
        raise RunFailedError(f"deployment zip {path} holds {', '.join(heavy)}", {"heavy": heavy})
    if size > MAX_ZIP_BYTES:
        raise RunFailedError(f"deployment zip {path} is {size / 1e6:.2f} MB (> 5 MB)")
    return size, top


def package(
    out: Path, stage: str = "dev", formats: tuple[PackageFormat, ...] = ("sam", "terraform")
) -> PackageReport:
    """Vendor, run ``chalice package`` per format into ``out/<format>``, patch and check."""
    project = project_dir()
    vendor(project)
    chalice = shutil.which("chalice", path=str(Path(sys.executable).parent)) or shutil.which(
        "chalice"
    )
    if chalice is None:
        raise ParameterError("the chalice command is not installed")
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    outputs: dict[str, Path] = {}
    for fmt in formats:
        target = out.resolve() / fmt
        shutil.rmtree(target, ignore_errors=True)
        args = [chalice, "package", "--stage", stage]
        args += ["--pkg-format", "cloudformation" if fmt == "sam" else "terraform", str(target)]
        done = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise RunFailedError(f"chalice package ({fmt}) failed: " + " | ".join(tail))
        if fmt == "sam":
            _patch_sam(target / "sam.json")
        else:
            _patch_terraform(target / "chalice.tf.json")
        outputs[fmt] = target
    zip_path = next(iter(outputs.values())) / "deployment.zip"
    size, top = check_zip(zip_path)
    return PackageReport(outputs=outputs, zip_path=zip_path, zip_bytes=size, top_level=top)


def local_server(host: str = "127.0.0.1", port: int = 8000, stage: str = "dev") -> Any:
    """A ``chalice local`` server whose gateway errors use the one error body.

    Returns the chalice ``LocalDevServer``; call ``serve_forever()`` (and ``shutdown()``
    from another thread).
    """
    from chalice.cli.factory import CLIFactory
    from chalice.local import (
        ChaliceRequestHandler,
        LocalDevServer,
        LocalGatewayException,
        ThreadedHTTPServer,
    )

    class Server(ThreadedHTTPServer):
        request_queue_size = 128  # bursts of concurrent clients are not reset

    project = project_dir()
    sys.path.insert(0, str(project))
    factory = CLIFactory(str(project))
    config = factory.create_config_obj(chalice_stage_name=stage)
    app_obj = config.chalice_app

    class GatewayResponses(ChaliceRequestHandler):
        """Renders local gateway errors the way the packaged gateway responses do."""

        def _send_error_response(self, error: LocalGatewayException) -> None:
            code = {401: "unauthorized", 403: "forbidden"}.get(error.CODE, "gateway_error")
            body = error.body or b"{}"
            try:
                doc = json.loads(body)
            except ValueError:
                doc = {}
            if not (isinstance(doc, dict) and "error" in doc):
                message = (
                    str(doc.get("message") or doc.get("Message") or "")
                    if isinstance(doc, dict)
                    else ""
                )
                if error.CODE == 403 and (
                    "Missing Authentication Token" in message
                    or "Authorization header requires" in message  # never echo the token
                ):
                    error.CODE, code, message = 404, "not_found", "no such route"
                doc = {"error": {"code": code, "message": message or code, "details": {}}}
                error.body = json.dumps(doc).encode()
            error.headers = {**error.headers, "Content-Type": "application/json"}
            super()._send_error_response(error)

    from chalice.local import CustomLocalChalice, LocalChalice

    if not isinstance(app_obj, LocalChalice):  # thread-local current_request, as chalice local
        CustomLocalChalice.__bases__ = (LocalChalice, app_obj.__class__)
        app_obj.__class__ = CustomLocalChalice
    return LocalDevServer(
        app_obj, config, host, port, handler_cls=GatewayResponses, server_cls=Server
    )


def register(app: typer.Typer) -> None:
    """Add the ``lambdas`` command group."""
    group = typer.Typer(help="Package or serve the Chalice signal and execution API.")
    app.add_typer(group, name="lambdas")

    @group.command("package")
    def package_command(
        out: Annotated[Path, typer.Option(help="Output folder.")] = Path("dist/lambdas"),
        stage: Annotated[str, typer.Option(help="Chalice stage (dev, prod).")] = "dev",
        fmt: Annotated[
            list[str] | None, typer.Option("--format", help="sam and/or terraform (repeatable).")
        ] = None,
    ) -> None:
        """Build the deployment artefacts (SAM and Terraform) with `chalice package`."""
        fmt = fmt or ["sam", "terraform"]
        bad = [f for f in fmt if f not in ("sam", "terraform")]
        if bad:
            raise ParameterError(f"unknown format(s) {', '.join(bad)}; use sam or terraform")
        report = package(out, stage, tuple(fmt))  # type: ignore[arg-type]
        for name, folder in report.outputs.items():
            typer.echo(f"{name}: {folder}")
        typer.echo(f"zip: {report.zip_path} ({report.zip_bytes / 1e6:.2f} MB)")
        if "sam" in report.outputs:
            typer.echo(
                "deploy: sam deploy --template-file "
                f"{report.outputs['sam'] / 'sam.json'} --stack-name titan-{stage} "
                "--capabilities CAPABILITY_IAM --resolve-s3"
            )

    @group.command("local")
    def local_command(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port.")] = 8000,
        stage: Annotated[str, typer.Option(help="Chalice stage.")] = "dev",
    ) -> None:
        """Serve the API locally (like `chalice local`, with the gateway error bodies)."""
        server = local_server(host, port, stage)
        typer.echo(f"serving on http://{host}:{port}")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            server.shutdown()
