"""The one error hierarchy of jetforge.

Usage and definition errors exit 2; failures of builds, tests, pushes and runs exit 1.
Exceptions carry data; their message is built in ``__str__`` so callers can inspect fields.
"""

from __future__ import annotations

import signal

TYPE_CHECKING = False  # typing's own, without importing typing (start-up time)
if TYPE_CHECKING:
    from pathlib import Path


class JetforgeError(Exception):
    """Root of every error jetforge raises on purpose."""

    exit_code = 1

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(JetforgeError):
    """Bad arguments, bad definitions or a missing tool: the user must change something."""

    exit_code = 2


class DefinitionError(UsageError):
    """A package definition is malformed; names the file and, when known, the line."""

    def __init__(self, path: Path | str, problem: str, line: int | None = None) -> None:
        from pathlib import Path  # here, not at the top: --help needs no pathlib

        super().__init__(problem)
        self.path = Path(path)
        self.problem = problem
        self.line = line

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.problem}"

    def __reduce__(self) -> tuple[type[DefinitionError], tuple[Path, str, int | None]]:
        return type(self), (self.path, self.problem, self.line)  # kept by the index


class AliasBombError(DefinitionError):
    """A YAML file whose aliases expand it beyond any package file's need: an error even
    where a file that is not valid YAML is only passed over (a jc directory's YAML files)."""


class UnknownPackageError(UsageError):
    """A requested name matches no package."""

    def __init__(self, name: str, suggestions: tuple[str, ...] = (), broken: str = "") -> None:
        super().__init__(name)
        self.name = name
        self.suggestions = suggestions
        self.broken = broken

    def __str__(self) -> str:
        if self.broken:
            return f"package '{self.name}' cannot be read: {self.broken}"
        hint = f" (did you mean {', '.join(self.suggestions)}?)" if self.suggestions else ""
        return f"unknown package '{self.name}'{hint}; 'jetforge list' shows what exists"


class NoMatchError(UsageError):
    """Patterns of ``list`` that match no package: each with the closest names, or with
    how many variants it matches that are unavailable on this platform."""

    def __init__(self, misses: tuple[tuple[str, tuple[str, ...], int], ...]) -> None:
        super().__init__(", ".join(pattern for pattern, _, _ in misses))
        self.misses = misses

    def __str__(self) -> str:
        parts = []
        for pattern, suggestions, unavailable in self.misses:
            if unavailable:
                parts.append(
                    f"no package available on this platform matches '{pattern}' "
                    f"({unavailable} unavailable here: 'jetforge list --all' shows why)"
                )
            else:
                hint = f" (did you mean {', '.join(suggestions)}?)" if suggestions else ""
                parts.append(f"no package matches '{pattern}'{hint}")
        return "; ".join(parts)


class ResolutionError(UsageError):
    """The requested packages cannot form one chain; ``reasons`` are prose lines."""

    def __init__(self, summary: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(summary)
        self.summary = summary
        self.reasons = reasons

    def __str__(self) -> str:
        return "; ".join((self.summary, *self.reasons))


class PlatformError(UsageError):
    """An unknown target or an override that cannot be parsed."""


class EngineUnavailableError(UsageError):
    """The container engine is not installed or its daemon is not running."""

    def __init__(self, engine: str, problem: str, remedy: str) -> None:
        super().__init__(problem)
        self.engine = engine
        self.problem = problem
        self.remedy = remedy

    def __str__(self) -> str:
        return f"{self.engine}: {self.problem}; {self.remedy}"


class FailureError(JetforgeError):
    """Something ran and failed (a build, a test, a push or a run): exit 1."""


class OutputError(FailureError):
    """The command's results could not be written to its standard output (closed, on a
    full device, or failing otherwise); what the command did is kept."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem

    def __str__(self) -> str:
        return f"cannot write the results to standard output: {self.problem}"


class RegistryError(FailureError):
    """A registry could not be reached or refused a request."""

    def __init__(self, registry: str, problem: str) -> None:
        super().__init__(problem)
        self.registry = registry
        self.problem = problem

    def __str__(self) -> str:
        return f"registry {self.registry}: {self.problem}"


class StageFailedError(FailureError):
    """One stage of a chain failed to build or test."""

    def __init__(
        self,
        stage: str,
        step: str,
        command: str,
        log_path: Path | None,
        tail: tuple[str, ...] = (),
        resume: str = "",
    ) -> None:
        super().__init__(stage)
        self.stage = stage
        self.step = step
        self.command = command
        self.log_path = log_path
        self.tail = tail
        self.resume = resume

    def __str__(self) -> str:
        log = f" (log: {self.log_path})" if self.log_path else ""
        return f"stage {self.stage} failed in {self.step}{log}"


class TerminatedError(KeyboardInterrupt):
    """SIGTERM or SIGHUP (terminal closed, connection dropped) arrived: handled like
    Ctrl-C (the running step is stopped, its containers removed, the processes jetforge
    started ended), then the command exits 128 + the signal's number: 143 or 129."""

    def __init__(self, number: int = signal.SIGTERM) -> None:
        super().__init__(number)
        self.number = number

    @property
    def exit_code(self) -> int:
        """The shell's code for a command ended by this signal."""
        return 128 + self.number

    @property
    def reason(self) -> str:
        """What happened, in the words of the line jetforge prints."""
        return "hung up" if self.number == signal.SIGHUP else "terminated"


class LockfileError(UsageError):
    """A lockfile entry that is not what jetforge writes: ``entry`` is its place in the
    JSON (``stages[2].installed.python[5].name``), ``problem`` what is wrong and what would
    be valid; ``path`` and ``option`` (``--locked``) name the file once it is known."""

    def __init__(self, entry: str, problem: str, path: Path | str = "", option: str = "") -> None:
        super().__init__(problem)
        self.entry = entry
        self.problem = problem
        self.path = str(path)
        self.option = option

    def __str__(self) -> str:
        where = "".join(f"{part}: " for part in (self.option, self.path) if part)
        return f"{where}{self.entry}: {self.problem}"
