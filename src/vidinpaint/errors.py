"""User errors at the command line: one line ``vidinpaint-<cmd>: error: ...`` on stderr and exit
status 1, never a traceback. ``HYDRA_FULL_ERROR=1`` shows the traceback (for bug reports).

Every entry point is built the same way::

    @hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
    @errors.one_line_errors(COMMAND)      # errors raised by the run
    def hydra_main(cfg): ...

    def main() -> None:
        errors.run_command(COMMAND, hydra_main)   # errors in the overrides (Hydra's composition)
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from hydra.errors import HydraException, InstantiationException, MissingConfigException
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

if TYPE_CHECKING:
    from torch import Tensor

Task = TypeVar("Task", bound=Callable[..., Any])

# set (with HYDRA_FULL_ERROR=1) by run_command so that Hydra hands config errors on unformatted;
# DDP ranks started as subprocesses inherit both and still report one line
OWN_FULL_ERROR = "VIDINPAINT_ONE_LINE_ERRORS"


class UserError(ValueError):
    """Bad input from the user (a path, data, a checkpoint, an option value)."""


# what bad input raises across the package: ValueError is the convention for bad values
# (UserError, VideoReadError, SourceError and omegaconf's interpolation errors are ValueErrors);
# Lightning's MisconfigurationException for trainer options (trainer=gpu without a GPU)
USER_ERRORS = (
    ValueError,
    MisconfigurationException,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    MissingMandatoryValue,
)


def check_choice(name: str, value: Any, choices: Iterable[Any], error: type = ValueError) -> None:
    """One line (``error``, a ValueError by default) unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise error(f"{name} must be one of {choices}, got {value!r}")


def check_video_mask(video: Tensor, mask: Tensor, channels: int | None = 3) -> None:
    """A ValueError unless ``video`` is ``T,C,H,W`` (``C == channels`` unless None) and
    ``mask`` is ``T,1,H,W`` of the same ``T``, ``H``, ``W``."""
    if video.ndim != 4 or (channels is not None and video.shape[1] != channels):
        shape = f"T,{channels if channels is not None else 'C'},H,W"
        raise ValueError(f"video must be {shape}, got {tuple(video.shape)}")
    expected = (video.shape[0], 1, *video.shape[-2:])
    if tuple(mask.shape) != expected:
        raise ValueError(f"mask must be T,1,H,W = {expected}, got {tuple(mask.shape)}")


def debugging() -> bool:
    """The user asked for tracebacks (``HYDRA_FULL_ERROR=1``)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1" and not os.environ.get(OWN_FULL_ERROR)


def root_cause(err: BaseException) -> BaseException:
    """The error behind Hydra's wrapper for errors raised while instantiating a config."""
    while isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    return err


def one_line(err: BaseException) -> str:
    """The root cause of an error as one line. Hydra's config errors spread their message over
    lines (a hint, the options of a group): those are joined; others keep their first line."""
    err = root_cause(err)
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if isinstance(err, MissingConfigException):
        return f"{lines[0]} (options: {', '.join(err.options)})" if err.options else lines[0]
    if isinstance(err, HydraException) and not isinstance(err, InstantiationException):
        text = " ".join(lines)
        cause = err.__cause__
        if isinstance(cause, OmegaConfBaseException):
            text += f" ({str(cause).strip().splitlines()[0]})"
        return text
    return lines[0] if lines else type(err).__name__


def is_user_error(err: BaseException) -> bool:
    return isinstance(root_cause(err), USER_ERRORS)


def one_line_errors(command: str) -> Callable[[Task], Task]:
    """Decorates a Hydra task function: a user error it raises ends the process with one line
    ``<command>: error: <message>`` and exit status 1 (the traceback with ``HYDRA_FULL_ERROR=1``).
    Other exceptions (bugs) propagate with their traceback."""

    def decorate(task: Task) -> Task:
        @functools.wraps(task)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return task(*args, **kwargs)
            except Exception as err:
                if debugging() or not is_user_error(err):
                    raise
                sys.exit(f"{command}: error: {one_line(err)}")

        return run  # type: ignore[return-value]

    return decorate


def raised_in_job(err: BaseException) -> bool:
    """The error came from the task function (below Hydra's ``run_job``), not the config."""
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "run_job":
            return True
        tb = tb.tb_next
    return False


def run_command(command: str, hydra_main: Callable[[], Any]) -> Any:
    """Runs a ``@hydra.main`` function so that errors in the command line's overrides (an
    unknown group option or key, a syntax error) are one line too, not Hydra's report."""
    if debugging():
        return hydra_main()
    saved = {name: os.environ.get(name) for name in ("HYDRA_FULL_ERROR", OWN_FULL_ERROR)}
    os.environ.update({"HYDRA_FULL_ERROR": "1", OWN_FULL_ERROR: "1"})
    try:
        return hydra_main()
    except (HydraException, OmegaConfBaseException) as err:
        if raised_in_job(err):
            raise
        sys.exit(f"{command}: error: {one_line(err)}")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
