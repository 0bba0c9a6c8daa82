"""`titan lambdas`: package the Chalice app for deployment, bootstrap its tables, serve it.

``titan lambdas package`` vendors exactly what the Lambda imports into ``lambdas/vendor/``
(``titan_lib`` core, stores, exceptions and config; aws-lambda-powertools with jmespath and
typing_extensions), runs ``chalice package`` for SAM (CloudFormation) and Terraform, adds
API Gateway responses so gateway-level errors (401, 403, 404) use the one error body,
and checks the zip: no numpy, pandas, polars, pyarrow, scipy, statsmodels or vectorbt,
at most 5 MB. The templates also create what the app uses (store bucket, ledger table,
model-events topic), name its secrets' SSM parameters and grant each function only what
it uses, every name a parameter (:mod:`titan_lib.cli.lambda_resources`).
``titan lambdas bootstrap`` creates the bucket and the ledger table without a stack (a dev
account, or a moto server). ``titan lambdas local`` serves the app like ``chalice local``
with those same gateway responses, and its WebSocket API on the same port at ``/ws``
(:mod:`titan_lib.cli.local_websockets`).
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

from titan_lib.cli.lambda_resources import bootstrap, complete_sam, complete_terraform
from titan_lib.cli.local_websockets import LocalWebsocketGateway
from titan_lib.cli.options import STORE_OPTION
from titan_lib.core.http_errors import bearer_challenge
from titan_lib.core.push.gateway import use_local_sender
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
GATEWAY_CHALLENGE = bearer_challenge(
    "invalid_token", "the bearer token is missing, malformed, expired or not trusted"
)


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
    """Fill ``<project>/vendor`` with the modules the Lambda imports; return the folder.

    Also rewrites ``chalicelib/notebook_catalog.json`` from the project's notebooks, so
    the packaged API validates jobs against the notebooks as they are now.
    """
    import importlib.util

    from titan_lib.runner.jobs import write_notebook_catalog

    write_notebook_catalog(project / "chalicelib" / "notebook_catalog.json", project.parent)

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
    """API Gateway responses rendering gateway errors as ``{"error": {...}}``.

    The 401 (UNAUTHORIZED: no token, or the authorizer refused it) also carries
    ``WWW-Authenticate`` (:data:`GATEWAY_CHALLENGE`): a gateway response header is a
    fixed value, so it names ``invalid_token`` without the particular reason.
    """
    responses: dict[str, Any] = {}
    for kind, (status, code) in GATEWAY_ERRORS.items():
        template = (
            '{"error": {"code": "' + code + '", "message": $context.error.messageString, '
            '"details": {"request_id": "$context.requestId"}}}'
        )
        parameters = {"gatewayresponse.header.Content-Type": "'application/json'"}
        if status == "401":
            parameters["gatewayresponse.header.WWW-Authenticate"] = f"'{GATEWAY_CHALLENGE}'"
        entry: dict[str, Any] = {
            "responseTemplates": {"application/json": template},
            "responseParameters": parameters,
        }
        if status:
            entry["statusCode"] = status
        responses[kind] = entry
    return responses


def _patch_sam(path: Path, stage: str) -> None:
    template = complete_sam(json.loads(path.read_text()), stage)
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    body["x-amazon-apigateway-gateway-responses"] = gateway_responses()
    path.write_text(json.dumps(template, indent=2) + "\n")


def _patch_terraform(path: Path, stage: str) -> None:
    template = complete_terraform(json.loads(path.read_text()), stage)
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
            _patch_sam(target / "sam.json", stage)
        else:
            _patch_terraform(target / "chalice.tf.json", stage)
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
        ForbiddenError,
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
    gateway = LocalWebsocketGateway(app_obj, f"{host}:{port}")  # ws://HOST:PORT/ws
    use_local_sender(gateway)

    class GatewayResponses(ChaliceRequestHandler):
        """Renders local gateway errors the way the packaged gateway responses do."""

        def _generic_handle(self) -> None:
            if gateway.serve(self):  # a WebSocket upgrade or a management API call
                return
            try:
                super()._generic_handle()
            except UnicodeEncodeError:
                # chalice echoes the Authorization header of a request to an unknown route
                # as ASCII; a non-ASCII header must still get the route's 404
                if getattr(self, "_headers_buffer", None):
                    raise  # a response was already being written
                self._send_error_response(
                    ForbiddenError({}, b'{"message": "Missing Authentication Token"}')
                )

        # http.server dispatches on these names; chalice bound them to its own handler
        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = (  # noqa: N815
            _generic_handle
        )

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            """http.server's own refusals (header line too long, too many headers, a bad
            request line) in the one error body instead of its HTML page."""
            reason = message or self.responses.get(code, ("error",))[0]
            body = json.dumps(
                {"error": {"code": "bad_request", "message": reason, "details": {}}}
            ).encode()
            self.log_error("code %d, message %s", code, reason)
            self.send_response(code)
            self.send_header("Connection", "close")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if getattr(self, "command", None) != "HEAD":
                self.wfile.write(body)

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
                if error.CODE == 401:
                    message = "no bearer token was sent (Authorization: Bearer <token>)"
                doc = {"error": {"code": code, "message": message or code, "details": {}}}
                error.body = json.dumps(doc).encode()
            error.headers = {**error.headers, "Content-Type": "application/json"}
            if error.CODE == 401 and "WWW-Authenticate" not in error.headers:
                # chalice's own 401 (no Authorization header): RFC 6750 sends no error code
                error.headers["WWW-Authenticate"] = bearer_challenge()
            super()._send_error_response(error)

    from chalice.local import CustomLocalChalice, LocalChalice

    if not isinstance(app_obj, LocalChalice):  # thread-local current_request, as chalice local
        CustomLocalChalice.__bases__ = (LocalChalice, app_obj.__class__)
        app_obj.__class__ = CustomLocalChalice
    return LocalDevServer(
        app_obj, config, host, port, handler_cls=GatewayResponses, server_cls=Server
    )


lambdas_app = typer.Typer(help="Package or serve the Chalice signal and execution API.")


@lambdas_app.command("package")
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
            "--capabilities CAPABILITY_IAM --resolve-s3 "
            "--parameter-overrides StoreBucketName=<bucket>"
        )


@lambdas_app.command("bootstrap")
def bootstrap_command(
    store: Annotated[str, typer.Option(help="Store URI, s3://<bucket>[/<prefix>].")],
    ledger: Annotated[str, typer.Option(help="Ledger URI, dynamodb://<table>.")],
) -> None:
    """Create the store bucket and the ledger table if missing (idempotent)."""
    steps = bootstrap(store, ledger)
    for step in steps:
        typer.echo(step.describe())
    if all(step.action == "unchanged" for step in steps):
        typer.echo("nothing to change")


@lambdas_app.command("publish-documents")
def publish_documents_command(
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """Write the read API's serving documents that are missing or stale (idempotent)."""
    from titan_lib.data.serving_documents import backfill_documents
    from titan_lib.stores import open_store

    opened = open_store(store)
    written = backfill_documents(opened)
    typer.echo(
        f"serving documents written in {opened.uri}: {written['prices']} prices, "
        f"{written['scans']} scans, {written['runs']} runs"
    )


@lambdas_app.command("local")
def local_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    stage: Annotated[str, typer.Option(help="Chalice stage.")] = "dev",
) -> None:
    """Serve the API locally (like `chalice local`, with the gateway error bodies)."""
    server = local_server(host, port, stage)
    typer.echo(f"serving on http://{host}:{port} (WebSocket API: ws://{host}:{port}/ws)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.shutdown()


def register(app: typer.Typer) -> None:
    """Add the ``lambdas`` command group."""
    app.add_typer(lambdas_app, name="lambdas")
