"""Named datasets: their files, pinned hashes and mirrors; fetch and load them.

    >>> from mnistnet.datasets import load_split
    >>> split = load_split("mnist-sample", "test")      # bundled, offline
    >>> split.images.shape, split.labels.shape
    ((2000, 28, 28), (2000,))

Datasets (the registry :data:`DATASETS`):

``mnist``, ``fashion-mnist``
    Downloaded with pooch into a data directory, verified against pinned
    sha256 hashes. A file is accepted when either the hash of the official
    ``.gz`` or the hash of its decompressed IDX content matches, so
    recompressed copies (Debian's) and plain IDX files are accepted too.
``mnist-sample``
    10,000 real MNIST training digits shipped inside the package: train is
    the first 8,000, test the last 2,000. No data directory, no network.
``idx``
    Bring your own: a directory (``data_dir``, required) holding the four
    files under the official names, gzipped or not. Their structure is
    checked and their hashes computed, not pinned.

Where the files live: ``data_dir`` when given (the files sit directly in
it); otherwise ``$MNISTNET_DATA_DIR/<dataset>/``, else
``pooch.os_cache("mnistnet")/<dataset>/``. Mirrors tried, in order: the
``mirrors`` argument, ``$MNISTNET_MIRROR`` (space-separated), the built-in ones.
"""

import contextlib
import hashlib
import importlib.resources
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mnistnet import fileio, idx
from mnistnet.errors import DatasetError, DownloadError, IdxFormatError

ENV_DATA_DIR = "MNISTNET_DATA_DIR"
ENV_MIRROR = "MNISTNET_MIRROR"

#: Seconds to wait for a connection, then between bytes. Short connect: offline
#: the whole mirror list must fail in seconds, not minutes.
TIMEOUT = (5, 30)
CHUNK_SIZE = 1 << 16

ROLES = ("train-images", "train-labels", "test-images", "test-labels")
OFFICIAL_NAMES = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "test-images": "t10k-images-idx3-ubyte",
    "test-labels": "t10k-labels-idx1-ubyte",
}

DIGITS = tuple("0123456789")
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

OFFLINE_HINT = (
    "To work offline use the bundled digits (the mnist-sample dataset), or a data directory "
    "that already holds the files."
)


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset, as the registry knows it."""

    role: str  # one of ROLES
    name: str  # file name on the mirrors, e.g. "train-images-idx3-ubyte.gz"
    sha256: str | None = None  # of the official .gz; None: not pinned
    content_sha256: str | None = None  # of the decompressed IDX bytes

    @property
    def pinned(self):
        return self.sha256 is not None or self.content_sha256 is not None

    def local_names(self):
        """Names accepted on disk: the official one, gzipped or plain."""
        plain = self.name.removesuffix(".gz")
        return (plain + ".gz", plain)


@dataclass(frozen=True)
class SplitSpec:
    """Which files hold a split, and which rows of them (``start:stop``)."""

    images: str  # role
    labels: str  # role
    start: int = 0
    stop: int | None = None


STANDARD_SPLITS = (
    ("train", SplitSpec("train-images", "train-labels")),
    ("test", SplitSpec("test-images", "test-labels")),
)


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: files, mirrors, class names, splits."""

    name: str
    files: tuple[FileSpec, ...]
    mirrors: tuple[str, ...] = ()
    classes: tuple[str, ...] = DIGITS
    splits: tuple[tuple[str, SplitSpec], ...] = STANDARD_SPLITS
    bundled: bool = False  # the files ship inside the package
    description: str = ""

    def file(self, role):
        for spec in self.files:
            if spec.role == role:
                return spec
        raise DatasetError(f"dataset {self.name} has no {role} file")

    def split(self, name):
        splits = dict(self.splits)
        if name not in splits:
            raise DatasetError(
                f"dataset {self.name} has no split {name!r} (choose from {', '.join(splits)})"
            )
        return splits[name]


def _files(hashes):
    """FileSpecs for the four official names from {role: (gz sha256, content sha256)}."""
    return tuple(FileSpec(role, OFFICIAL_NAMES[role] + ".gz", *hashes[role]) for role in hashes)


DATASETS = {
    "mnist": DatasetSpec(
        name="mnist",
        description="MNIST, 60,000 + 10,000 handwritten digits (LeCun, Cortes, Burges; "
        "CC BY-SA 3.0)",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        files=_files(
            {
                "train-images": (
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                ),
                "train-labels": (
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                ),
                "test-images": (
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                ),
                "test-labels": (
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                ),
            }
        ),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        description="Fashion-MNIST, 60,000 + 10,000 Zalando article images (MIT)",
        classes=FASHION_CLASSES,
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        ),
        files=_files(
            {
                "train-images": (
                    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                ),
                "train-labels": (
                    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                ),
                "test-images": (
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                ),
                "test-labels": (
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                ),
            }
        ),
    ),
    "mnist-sample": DatasetSpec(
        name="mnist-sample",
        description="the first 10,000 MNIST training digits, bundled: train 8,000, test 2,000",
        bundled=True,
        files=_files(
            {
                "train-images": (
                    "11a772a6dc925b05dd399880865d80fdc378f1482a27072a7fe2c10be2367eda",
                    "2889698e6bc3614913e76901316712919d1998fc2b44512451bfe65bc1e668b1",
                ),
                "train-labels": (
                    "4e8b4ac90e302aa725dd50c14268e8630d3941e30cf889ea15dfa1a6dedf8665",
                    "651e38e2ac0632f5113ec18f1df4977117f953197819034009971a6675a0df78",
                ),
            }
        ),
        splits=(
            ("train", SplitSpec("train-images", "train-labels", 0, 8000)),
            ("test", SplitSpec("train-images", "train-labels", 8000, 10000)),
        ),
    ),
    "idx": DatasetSpec(
        name="idx",
        description="your own files in a data directory, official names, gz or plain (not pinned)",
        files=_files({role: (None, None) for role in ROLES}),
    ),
}


@dataclass(frozen=True)
class FileInfo:
    """One verified file.

    ``verified`` is True when a pinned hash matched (of the file or of its
    decompressed content); False for ``idx`` files, whose hashes are
    computed, not pinned.
    """

    role: str  # "train-images" | "train-labels" | "test-images" | "test-labels"
    name: str  # file name on disk
    path: str
    size: int  # bytes on disk
    sha256: str  # of the file as on disk
    content_sha256: str  # of the decompressed IDX bytes
    verified: bool

    def to_dict(self):
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset as arrays, with the files it came from."""

    dataset: str
    split: str  # "train" | "test"
    images: np.ndarray = field(repr=False)  # (n, 28, 28) uint8
    labels: np.ndarray = field(repr=False)  # (n,) uint8
    files: tuple[FileInfo, ...] = ()  # the two files it came from


def get_spec(dataset, registry=None):
    """The :class:`DatasetSpec` named ``dataset``; DatasetError when unknown."""
    registry = DATASETS if registry is None else registry
    try:
        return registry[dataset]
    except KeyError:
        raise DatasetError(
            f"unknown dataset {dataset!r} (choose from {', '.join(registry)})"
        ) from None


def class_names(dataset, registry=None):
    """The 10 class names of ``dataset``, index = label."""
    return list(get_spec(dataset, registry).classes)


def resolve_data_dir(dataset, data_dir=None, registry=None):
    """The directory holding (or to receive) the files of ``dataset``.

    ``data_dir`` when given, else ``$MNISTNET_DATA_DIR/<dataset>``, else
    ``pooch.os_cache("mnistnet")/<dataset>``. A bundled dataset lives in the
    package and ignores ``data_dir``; ``idx`` requires it. Creates nothing.
    """
    spec = get_spec(dataset, registry)
    if spec.bundled:
        return Path(str(importlib.resources.files("mnistnet") / "data" / spec.name))
    if data_dir is not None:
        return Path(data_dir).expanduser().absolute()
    if not any(f.pinned for f in spec.files):
        raise DatasetError(
            f"dataset {spec.name} needs a data directory holding "
            + ", ".join(f.name.removesuffix(".gz") for f in spec.files)
            + " (gz or plain)",
            setting="data_dir",
        )
    root = os.environ.get(ENV_DATA_DIR)
    if root:
        return Path(root).expanduser().absolute() / spec.name
    import pooch  # lazy: keeps `import mnistnet.datasets` light

    return Path(pooch.os_cache("mnistnet")) / spec.name


def resolve_mirrors(dataset, mirrors=(), registry=None):
    """Base URLs to try, in order: ``mirrors``, ``$MNISTNET_MIRROR``, built-in."""
    spec = get_spec(dataset, registry)
    env = os.environ.get(ENV_MIRROR, "").split()
    return list(dict.fromkeys([*mirrors, *env, *spec.mirrors]))


def fetch(dataset, data_dir=None, mirrors=(), progress=None, *, report=None, registry=None):
    """Make sure every file of ``dataset`` is on disk and verified; download what is missing.

    Parameters
    ----------
    dataset : str
        A name in the registry: "mnist", "fashion-mnist", "mnist-sample", "idx".
    data_dir : str or path-like, optional
        Directory of the files; see :func:`resolve_data_dir`.
    mirrors : sequence of str
        Base URLs tried before ``$MNISTNET_MIRROR`` and the built-in mirrors.
    progress : callable, optional
        Shows downloads as they go (the command line hands in a rich bar;
        the data layer draws nothing itself). ``progress(name, url)`` is
        called before each download attempt and returns that attempt's bar:
        a context manager around the transfer (exited with the exception if
        the transfer failed) that pooch's ``HTTPDownloader`` drives as its
        ``progressbar`` (``total``, ``update(n)``, ``reset()``, ``close()``).
    report : callable, optional
        Called with one line of text per download attempt and per failed
        attempt (for logs, when there is no progress bar).
    registry : mapping, optional
        Name -> DatasetSpec; defaults to :data:`DATASETS` (tests pass their own).

    Returns
    -------
    list of FileInfo
        In registry order (four files; two for mnist-sample).
    """
    spec = get_spec(dataset, registry)
    directory = resolve_data_dir(dataset, data_dir, registry)
    roles = [f.role for f in spec.files]
    loaded = _obtain(spec, roles, directory, mirrors, progress, report, registry)
    if not any(f.pinned for f in spec.files):
        # Not pinned: check the structure instead (all of it, pairs included).
        for _, split in spec.splits:
            _arrays(spec, split, loaded)
    return [info for info, _ in loaded.values()]


def load_split(
    dataset, split, data_dir=None, mirrors=(), progress=None, *, report=None, registry=None
):
    """Load one split as uint8 arrays, fetching its two files if missing.

    Parameters are those of :func:`fetch`, plus ``split``: "train" or "test".
    Only the split's own two files are fetched.

    Returns
    -------
    Split
        ``images`` of shape (n, 28, 28) uint8, ``labels`` of shape (n,) uint8
        in 0..9, and the :class:`FileInfo` of the two files.
    """
    spec = get_spec(dataset, registry)
    split_spec = spec.split(split)
    directory = resolve_data_dir(dataset, data_dir, registry)
    roles = list(dict.fromkeys([split_spec.images, split_spec.labels]))
    loaded = _obtain(spec, roles, directory, mirrors, progress, report, registry)
    images, labels = _arrays(spec, split_spec, loaded)
    files = tuple(loaded[role][0] for role in roles)
    return Split(dataset=spec.name, split=split, images=images, labels=labels, files=files)


def _arrays(spec, split_spec, loaded):
    """Parse and check the images and labels of one split from ``loaded`` content."""
    images_info, images_bytes = loaded[split_spec.images]
    labels_info, labels_bytes = loaded[split_spec.labels]
    images = idx.as_images(idx.parse_content(images_bytes, images_info.path), images_info.path)
    labels = idx.as_labels(idx.parse_content(labels_bytes, labels_info.path), labels_info.path)
    idx.check_pair(images, labels, images_info.path, labels_info.path)
    stop = len(images) if split_spec.stop is None else split_spec.stop
    if stop > len(images):
        raise DatasetError(
            f"{images_info.path}: {spec.name} needs {stop:,} samples, the file has {len(images):,}"
        )
    rows = slice(split_spec.start, stop)
    return images[rows], labels[rows]


def _obtain(spec, roles, directory, mirrors, progress, report, registry):
    """{role: (FileInfo, decompressed content)} for ``roles``, downloading what is missing."""
    found = {role: _find_local(directory, spec.file(role)) for role in roles}
    missing = [role for role in roles if found[role] is None]
    if missing and (spec.bundled or not any(spec.file(r).pinned for r in missing)):
        if not directory.is_dir():
            raise DatasetError(f"{spec.name}: data directory {directory} does not exist")
        names = ", ".join(spec.file(r).name.removesuffix(".gz") + "[.gz]" for r in missing)
        raise DatasetError(f"{spec.name}: {directory} lacks {names}")
    urls = resolve_mirrors(spec.name, mirrors, registry) if missing else []
    loaded = {}
    for role in roles:
        file_spec = spec.file(role)
        if found[role] is not None:
            loaded[role] = _verify_local(spec, file_spec, found[role])
        else:
            loaded[role] = _download(spec, file_spec, directory, urls, progress, report)
    return loaded


def _find_local(directory, file_spec):
    for name in file_spec.local_names():
        path = directory / name
        if path.is_file():
            return path
    return None


def _inspect(file_spec, path, raw):
    """Hash ``raw`` (the bytes of ``path``); return (FileInfo, content, why it failed or None)."""
    content = idx.decompress(raw, str(path))
    sha = hashlib.sha256(raw).hexdigest()
    content_sha = sha if content is raw else hashlib.sha256(content).hexdigest()
    verified = sha == file_spec.sha256 or content_sha == file_spec.content_sha256
    problem = None
    if file_spec.pinned and not verified:
        kind = idx.describe_bytes(content)
        if kind:
            problem = f"got {kind}"
        else:
            expected = " or ".join(
                h[:12] + "..." for h in (file_spec.sha256, file_spec.content_sha256) if h
            )
            problem = f"sha256 mismatch: got {sha[:12]}..., expected {expected}"
    info = FileInfo(
        role=file_spec.role,
        name=path.name,
        path=str(path),
        size=len(raw),
        sha256=sha,
        content_sha256=content_sha,
        verified=verified,
    )
    return info, content, problem


def _verify_local(spec, file_spec, path):
    try:
        raw = idx.read_file(path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    info, content, problem = _inspect(file_spec, path, raw)
    if problem:
        # Someone else's file (or a user's directory): report it, never delete it.
        raise DatasetError(
            f"{path}: does not match the pinned hashes of {spec.name} {file_spec.name}: "
            f"{problem}. Is it another dataset's file? Check which dataset was asked for. "
            "If it is a damaged copy, delete it to download it again; the idx dataset uses "
            "it without the hash check.",
            setting="dataset",
        )
    return info, content


def _download(spec, file_spec, directory, urls, progress, report):
    """Try each mirror in turn; keep the first file that verifies. Raise DownloadError."""
    # Remember what we create, to remove it again if nothing gets downloaded.
    created = [d for d in (directory, *directory.parents) if not d.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(
            f"cannot create data directory {directory}: {exc.strerror or exc}"
        ) from None
    failures = []
    for base in urls:
        url = base.rstrip("/") + "/" + file_spec.name
        if report is not None:
            report(f"Downloading {url}")
        try:
            return _try_mirror(file_spec, url, directory, progress)
        except _MirrorFailed as exc:
            failures.append((base, exc.problem))
            if report is not None:
                report(f"  failed: {exc.problem}")
        except OSError as exc:  # the temporary file: its folder is not writable
            raise DatasetError(f"cannot write to {directory}: {exc.strerror or exc}") from None
    for empty in created:  # deepest first
        try:
            empty.rmdir()
        except OSError:
            break
    lines = [f"could not download {file_spec.name} of {spec.name} from any mirror:"]
    lines += [f"  {base}: {why}" for base, why in failures] or ["  (no mirrors configured)"]
    lines.append(OFFLINE_HINT)
    raise DownloadError("\n".join(lines), setting="data_dir")


class _MirrorFailed(Exception):
    """One mirror did not deliver a file that verifies; ``problem`` says why."""

    def __init__(self, problem):
        super().__init__(problem)
        self.problem = problem


def _try_mirror(file_spec, url, directory, progress):
    """Download ``url`` into ``directory`` and keep it if it verifies: (FileInfo, content).

    The file is written to a hidden temporary name and renamed only once it
    verifies, so the directory never holds a partial or a wrong file.
    """
    with fileio.temporary_path(directory / file_spec.name) as tmp:
        tmp = Path(tmp)
        try:
            with _bar(progress, file_spec.name, url) as bar:
                _fetch_url(url, tmp, bar)
            raw = idx.read_file(tmp)
            info, content, problem = _inspect(file_spec, tmp, raw)
        except IdxFormatError:  # corrupt gzip
            problem = "got corrupt gzip data"
        except Exception as exc:  # every mirror failure is reported by the caller
            problem = _describe_error(exc)
        if problem:
            raise _MirrorFailed(problem)
        # Name it by what it is: a server may have gunzipped it on the way.
        name = file_spec.local_names()[0 if raw[:2] == idx.GZIP_MAGIC else 1]
        final = directory / name
        fileio.move_into_place(tmp, final)
    return FileInfo(**{**info.to_dict(), "name": name, "path": str(final)}), content


def _bar(progress, label, url):
    """The progress bar of one download attempt, a context manager (False: no bar)."""
    return contextlib.nullcontext(False) if progress is None else progress(label, url)


def _fetch_url(url, output, bar):
    """Download ``url`` to ``output`` with a pooch downloader (no retries, short timeout).

    ``bar`` is what pooch's HTTPDownloader takes as ``progressbar``.
    """
    import pooch

    protocol = url.split("://", 1)[0].lower() if "://" in url else ""
    if protocol in ("http", "https"):
        downloader = pooch.HTTPDownloader(progressbar=bar, chunk_size=CHUNK_SIZE, timeout=TIMEOUT)
    elif protocol == "ftp":
        downloader = pooch.FTPDownloader(timeout=TIMEOUT[0])
    else:
        raise ValueError(f"unsupported URL scheme {protocol or url!r}")
    downloader(url, str(output), None)


def _describe_error(exc):
    """A short reason for a failed download, for the one-message mirror listing."""
    import requests  # pooch's own dependency

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason or ''}".rstrip()
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = str(exc)
    if isinstance(exc, requests.ConnectionError):
        if "Failed to resolve" in text or "Name or service not known" in text:
            return "cannot resolve host name (offline?)"
        if "Connection refused" in text:
            return "connection refused"
        if "Network is unreachable" in text:
            return "network unreachable (offline?)"
        return "cannot connect"
    if isinstance(exc, ValueError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
