"""A papermill engine that starts the kernel with a run's own environment variables.

Setting ``os.environ`` would leak one run's settings into another when runs share a
process (Dask workers run several at once); the engine hands the environment to the
kernel it starts instead.
"""

from __future__ import annotations

from typing import Any

ENGINE_NAME = "titan"
_registered = False


def register_engine() -> str:
    """Register the engine with papermill once; return its name."""
    global _registered
    if _registered:
        return ENGINE_NAME
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    class KernelEnvironmentEngine(NBClientEngine):
        """nbclient execution whose kernel starts with ``kernel_env`` as its environment."""

        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: float | None = None,
            kernel_env: dict[str, str] | None = None,
            **kwargs: Any,
        ) -> Any:
            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final_kwargs = merge_kwargs(
                safe_kwargs,
                timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            client = PapermillNotebookClient(nb_man, **final_kwargs)
            if kernel_env is None:
                return client.execute()
            return client.execute(env=kernel_env)

    papermill_engines.register(ENGINE_NAME, KernelEnvironmentEngine)
    _registered = True
    return ENGINE_NAME
