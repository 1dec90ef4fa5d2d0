"""Where a scenario's files are: beside the scenario, or in the real-data folder.

The data folder comes from ``--data DIR`` or the ``CARBONFED_DATA`` environment variable (read
by the CLI, never here). A relative data path resolves against it; a missing folder or file is
one ``InputError`` saying what is missing and how to point at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sites.errors import InputError

DATA_ENV = "CARBONFED_DATA"
HOW_TO_POINT = f"pass --data DIR or set {DATA_ENV} to the data folder (e.g. ../shared/data)"


@dataclass(frozen=True)
class DataPaths:
    source: str  # the scenario, as error messages name it
    base_dir: Path  # relative paths of plain CSV signals resolve here
    data_dir: Path | None = None

    def data_file(self, path: Path | str, field: str) -> Path:
        """An existing file: absolute as given, relative under the data folder."""
        path = Path(path)
        if not path.is_absolute():
            if self.data_dir is None:
                raise InputError(self.source, field,
                                 f"needs the data folder for '{path}': {HOW_TO_POINT}")
            if not self.data_dir.is_dir():
                raise InputError(self.source, field,
                                 f"data folder {self.data_dir} does not exist: {HOW_TO_POINT}")
            path = self.data_dir / path
        return self.existing_file(path, field)

    def existing_file(self, path: Path, field: str) -> Path:
        """``path`` if it is a file; a directory or nothing there is a one-line error."""
        if path.is_dir():
            raise InputError(self.source, field, f"{path} is a directory, not a file")
        if not path.is_file():
            raise InputError(self.source, field, f"no such data file: {path}")
        return path
