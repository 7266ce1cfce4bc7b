"""The files each dataset needs, where elubench looks for them, and whether they are there and
intact: the one table of expected files and checksums. `elubench data` lists it, and `elubench
run` checks it before anything trains (`require`), so a missing, truncated or corrupt file is one
message naming the file, its expected MD5 and the two fixes, never a crash inside torchvision.

The files are exactly those torchvision's loaders read under the data folder:

* MNIST reads the uncompressed IDX files of ``MNIST/raw/``. torchvision itself checks only that
  they exist (its ``MNIST.resources`` MD5s are those of the ``.gz`` downloads), so the MD5s and
  sizes here are elubench's own, of the uncompressed files; the IDX format fixes the sizes (a
  16-byte header and 28 x 28 bytes per image; an 8-byte header and 1 byte per label).
* CIFAR-10/100 read the pickled batches of ``cifar-10-batches-py/`` / ``cifar-100-python/`` and
  their ``meta`` file, whose MD5s torchvision checks itself; they are read from its class
  attributes (``train_list``, ``test_list``, ``meta``) at run time, not copied. Their sizes are
  not fixed by the format, so only the MD5 is checked.

Pure Python (hashlib); torchvision (and with it torch) is imported only for a CIFAR dataset's
checksums, and for a download.
"""

from __future__ import annotations

import hashlib
import sys
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from elubench.core.errors import DataError
from elubench.core.paths import resolve_data_dir
from elubench.spec.data_section import DATASETS, Data

OK, MISSING, WRONG_MD5, WRONG_SIZE, UNREADABLE = (
    "ok",
    "missing",
    "wrong checksum",
    "wrong size",
    "unreadable",
)


@dataclass(frozen=True)
class Expected:
    """One file a dataset's loader reads: its name in the dataset's folder, its MD5, and its
    size in bytes where the format fixes it (None: only the MD5 is checked)."""

    name: str
    md5: str
    size: int | None = None


MNIST_FOLDER = "MNIST/raw"  # torchvision: <root>/<class name>/raw
MNIST_FILES = (
    Expected("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb", 16 + 60_000 * 28 * 28),
    Expected("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624", 8 + 60_000),
    Expected("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea", 16 + 10_000 * 28 * 28),
    Expected("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637", 8 + 10_000),
)


def expected_files(dataset: str) -> tuple[str, tuple[Expected, ...]]:
    """The folder (relative to the data folder) and the files a torchvision dataset's loader
    reads there."""
    if dataset == "mnist":
        return MNIST_FOLDER, MNIST_FILES
    from torchvision import datasets  # imports torch: only for CIFAR

    cls = getattr(datasets, str(DATASETS[dataset].torchvision))
    listed = [*cls.train_list, *cls.test_list, (cls.meta["filename"], cls.meta["md5"])]
    return cls.base_folder, tuple(Expected(name, md5) for name, md5 in listed)


def file_md5(path: Path) -> str:
    """The MD5 of a file, read in 1 MiB chunks (MNIST's 55 MB: about 0.1 s)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class FileStatus:
    """One expected file (or, for an image folder, a folder) as found."""

    name: str  # relative to the dataset's folder
    path: Path
    md5: str | None  # expected; None for an image folder's train/ and val/
    size: int | None  # expected, where the format fixes it
    status: str  # OK, MISSING, WRONG_MD5, WRONG_SIZE or UNREADABLE
    found_md5: str | None = None
    found_size: int | None = None
    reason: str = ""  # why it could not be read

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path),
            "md5": self.md5,
            "size": self.size,
            "status": self.status,
            "found_md5": self.found_md5,
            "found_size": self.found_size,
        }


def check_file(expected: Expected, folder: Path) -> FileStatus:
    """Whether one file is there with the right size and MD5 (the MD5 is not computed for a file
    of the wrong size: it cannot be right)."""
    path = folder / expected.name
    status = FileStatus(expected.name, path, expected.md5, expected.size, MISSING)
    try:
        if not path.is_file():
            return status
        status.found_size = path.stat().st_size
        if expected.size is not None and status.found_size != expected.size:
            status.status = WRONG_SIZE
            return status
        status.found_md5 = file_md5(path)
    except OSError as exc:
        status.status, status.reason = UNREADABLE, exc.strerror or str(exc)
        return status
    status.status = OK if status.found_md5 == expected.md5 else WRONG_MD5
    return status


@dataclass
class DatasetStatus:
    """One dataset some specs need: where its files go and how each was found."""

    dataset: str
    needed_by: list[str] = field(default_factory=list)  # the specs (files) that need it
    data_dir: Path | None = None  # the data folder its files were looked for under
    folder: Path | None = None  # where its files go; None: it needs none
    files: list[FileStatus] = field(default_factory=list)
    note: str = ""  # why it needs no files
    downloaded: bool = False  # fetched by this call (--download)

    @property
    def ok(self) -> bool:
        return all(f.status == OK for f in self.files)

    @property
    def bad(self) -> list[FileStatus]:
        return [f for f in self.files if f.status != OK]

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "needed_by": self.needed_by,
            "ready": self.ok,
            "folder": None if self.folder is None else str(self.folder),
            "note": self.note,
            "downloaded": self.downloaded,
            "files": [f.to_dict() for f in self.files],
        }


def dataset_status(data: Data, data_dir: Path | None = None) -> DatasetStatus:
    """How a spec's dataset (spec.Data) stands: every file it needs, looked for under the data
    folder (`data_dir`, else $ELUBENCH_DATA_DIR, else the cache's) and checked."""
    if DATASETS[data.dataset].no_files:
        return DatasetStatus(data.dataset, note=DATASETS[data.dataset].no_files)
    if data.dataset == "imagefolder":  # the user's own folder: train/ and val/ must be there
        root = Path(data.imagefolder_section().root).expanduser().absolute()
        files = [
            FileStatus(part, root / part, None, None, OK if (root / part).is_dir() else MISSING)
            for part in ("train", "val")
        ]
        return DatasetStatus(
            "imagefolder",
            folder=root,
            files=files,
            note="your folder (data.imagefolder.root); no checksums",
        )
    root, _ = resolve_data_dir(data_dir)
    relative, expected = expected_files(data.dataset)
    folder = root / relative
    return DatasetStatus(
        data.dataset, data_dir=root, folder=folder, files=[check_file(e, folder) for e in expected]
    )


def _key(data: Data) -> tuple:
    """What makes two specs' datasets the same files: the name (one data folder per call), or
    an image folder's root."""
    if data.dataset == "imagefolder":
        return ("imagefolder", str(Path(data.imagefolder_section().root).expanduser().absolute()))
    return (data.dataset,)


def survey(specs: list[tuple[str, Data]], data_dir: Path | None = None) -> list[DatasetStatus]:
    """Every dataset the specs (label, spec.Data) need, once each in the order first needed,
    with the specs that need it."""
    found: dict[tuple, DatasetStatus] = {}
    for label, data in specs:
        key = _key(data)
        if key not in found:
            found[key] = dataset_status(data, data_dir)
        found[key].needed_by.append(label)
    return list(found.values())


def fetch(status: DatasetStatus) -> DatasetStatus:
    """Download a torchvision dataset whose files are missing, through torchvision's own
    download (elubench.data.sources), into its data folder, and check it again. A dataset with a
    damaged file is left as it is: torchvision keeps a file that is there (MNIST does not look
    inside), and elubench deletes nothing of the user's; `problem` then says to delete it."""
    damaged = [f for f in status.bad if f.status != MISSING]
    if status.ok or DATASETS[status.dataset].torchvision is None or damaged:
        return status
    from elubench.data.sources import download_torchvision

    # a torchvision dataset's status names its data folder and its own folder (dataset_status)
    assert status.data_dir is not None and status.folder is not None, status.dataset
    try:
        with redirect_stdout(
            sys.stderr
        ):  # torchvision prints its progress: keep --json's stdout clean
            download_torchvision(status.dataset, status.data_dir)
    except DataError as exc:  # the network, a mirror, the disk: one message, and the other fix
        exc.hint = f"check the network, or {_copy(status)}"
        exc.args = (exc.render(),)
        raise
    _, expected = expected_files(status.dataset)
    return DatasetStatus(
        status.dataset,
        status.needed_by,
        status.data_dir,
        status.folder,
        [check_file(e, status.folder) for e in expected],
        status.note,
        True,
    )


def problem(statuses: list[DatasetStatus]) -> DataError | None:
    """The one message for the first dataset not ready, naming one file (a damaged one before a
    missing one), its expected MD5, what was found, and the fixes: --download or copying the
    files into the named folder; None when every dataset is ready."""
    bad = [s for s in statuses if not s.ok]
    if not bad:
        return None
    status = bad[0]
    # a damaged file first: --download fetches the missing ones, but never replaces it
    first = next((f for f in status.bad if f.status != MISSING), status.bad[0])
    if status.dataset == "imagefolder":
        return DataError(
            f"no folder {first.path}",
            hint="imagefolder.root must hold train/<class>/ and val/<class>/",
        )
    others = sum(len(s.bad) for s in bad) - 1
    more = f"; {others} more file{'s' * (others > 1)} not ready" if others else ""
    expected = f"expected MD5 {first.md5}" + (f", {first.size:,} bytes" if first.size else "")
    if first.status == MISSING:
        message = (
            f"{status.dataset} was not found in {status.data_dir}: {first.path} is missing "
            f"({expected}){more}"
        )
    else:
        state = "cannot be read" if first.status == UNREADABLE else "is damaged"
        message = (
            f"{status.dataset} in {status.data_dir} {state}: {first.path} {_found(first)}; "
            f"{expected}{more}"
        )
    if status.downloaded:
        message += " (just downloaded: the download itself is wrong)"
    fetch_it = f"elubench fetches {status.dataset} through torchvision into {status.data_dir}"
    present = [str(f.path) for f in status.bad if f.status != MISSING]
    if present:  # --download fetches only what is missing; elubench deletes nothing of yours
        download = f"delete {', '.join(present)}, then pass --download ({fetch_it})"
    else:
        download = f"pass --download ({fetch_it})"
    return DataError(message, hint=f"{download}, or {_copy(status)}")


def _found(file: FileStatus) -> str:
    """What was found where a file was expected, in words."""
    if file.status == WRONG_MD5:
        return f"has MD5 {file.found_md5}"
    if file.status == WRONG_SIZE:
        return f"is {file.found_size:,} bytes (truncated, or another file)"
    if file.status == UNREADABLE:
        return f"cannot be read ({file.reason})"
    return "is missing"


def _copy(status: DatasetStatus) -> str:
    """The other fix: the files by hand, into the folder named exactly."""
    return f"copy the files into {status.folder}/ (`elubench data SPEC` lists them with their MD5s)"


def require(data: Data, data_dir: Path | None = None, download: bool = False) -> None:
    """DataError (the message `elubench data` ends with) unless the spec's dataset is there and
    intact; with `download`, a dataset whose files are missing is fetched first."""
    status = dataset_status(data, data_dir)
    if download:
        status = fetch(status)
    error = problem([status])
    if error is not None:
        raise error


@dataclass
class Survey:
    """What `elubench data` reports: the data folder, the rule that chose it, every dataset."""

    data_dir: Path
    origin: str  # --data-dir, $ELUBENCH_DATA_DIR or the default
    datasets: list[DatasetStatus]

    def require(self) -> None:
        """DataError, the one message for the first dataset not ready (`problem`)."""
        error = problem(self.datasets)
        if error is not None:
            raise error

    def to_dict(self) -> dict:
        return {
            "data_dir": str(self.data_dir),
            "data_dir_from": self.origin,
            "ready": all(s.ok for s in self.datasets),
            "datasets": [s.to_dict() for s in self.datasets],
        }


def survey_specs(
    paths: list[Path], overrides: list[str], data_dir: Path | None = None, download: bool = False
) -> Survey:
    """`elubench data`: the datasets the spec files need (with --set applied), each once, checked;
    with `download`, those with missing files fetched first. A spec's mistake names its file."""
    from elubench.spec.loader import load_spec, naming, unique_paths

    paths, _ = unique_paths(paths)
    specs = []
    for path in paths:
        with naming(path if len(paths) > 1 else None):
            specs.append((str(path), load_spec(path, overrides).data))
    datasets = survey(specs, data_dir)
    if download:
        datasets = [fetch(status) for status in datasets]
    return Survey(*resolve_data_dir(data_dir), datasets)
