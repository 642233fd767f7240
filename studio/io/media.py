"""Media on disk: probe image and video files, read pixels, add files and folders to a project.

Images are probed from their header with Pillow (no full decode, so adding 10,000 files is quick) and
read with OpenCV, which applies EXIF orientation the way cameras intend; widths and heights recorded
are those of the upright image. Videos go through OpenCV's VideoCapture.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from studio.core.errors import CancelledError, MediaError
from studio.core.types import IMAGE_SUFFIXES, VIDEO_SUFFIXES, Media, MediaInfo
from studio.db.project import Project

# FFmpeg (inside OpenCV) prints its own complaints about a broken video on stderr; the MediaError raised
# here already says what is wrong, in one line. Read once, when OpenCV first opens a video.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
# Pillow warns (several lines on stderr) for images between once and twice its pixel bound; probe()
# refuses them itself with one MediaError line (see _bomb_checked).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

Progress = Callable[[int, int], None]
"""Called with (done, total) as work proceeds."""
CancelCheck = Callable[[], bool]
"""Returns True once the user asked to stop."""

_EXIF_ORIENTATION = 0x0112
_ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_NOT_AN_IMAGE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, ImportError)
"""What Pillow raises for a file that is not a readable image. ImportError: once ultralytics is imported
it patches Image.open to load an optional HEIF plugin on an unidentified file, and raises
ModuleNotFoundError when that plugin is not installed."""
_JPEG_END = b"\xff\xd9"
_JPEG_TAIL_BYTES = 1 << 20
"""Camera apps may append data after a JPEG's end marker; it must lie within this many last bytes."""


def media_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def probe(path: Path | str) -> MediaInfo:
    """Size, kind and (for video) frame count and fps of a file; MediaError if it is not readable media."""
    path = Path(path)
    kind = media_kind(path)
    if kind is None:
        raise MediaError(f"{path}: not a supported image or video type ({path.suffix or 'no extension'})")
    info = _regular_file_stat(path)
    if kind == "image":
        width, height = _probe_image(path, info.st_size)
        return MediaInfo(str(path), "image", width, height, info.st_size, info.st_mtime_ns)
    width, height, frames, fps = _probe_video(path)
    return MediaInfo(str(path), "video", width, height, info.st_size, info.st_mtime_ns, frames, fps)


def _regular_file_stat(path: Path) -> os.stat_result:
    """The file's stat, or MediaError: missing, unreadable, or not a regular file (a FIFO named x.jpg
    would block every reader forever)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise MediaError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "invalid file name"
        raise MediaError(f"{path}: cannot read ({reason})") from None
    if not stat.S_ISREG(info.st_mode):
        raise MediaError(f"{path}: not a regular file")
    return info


def _probe_image(path: Path, size_bytes: int) -> tuple[int, int]:
    try:
        with _bomb_checked(path), Image.open(path) as image:
            width, height = image.size
            _check_pixels(width, height, path)
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
            _check_complete(image, path, size_bytes)
    except _NOT_AN_IMAGE as exc:
        raise MediaError(f"{path}: not a readable image ({_one_line(exc)})") from exc
    if orientation in _ROTATED_ORIENTATIONS:
        width, height = height, width
    return width, height


@contextmanager
def _bomb_checked(where: object) -> Iterator[None]:
    """Pillow's decompression-bomb checks as a MediaError for that one file, so `add --skip-bad` skips
    it and adds the rest. Pillow raises DecompressionBombError past twice Image.MAX_IMAGE_PIXELS and only
    warns between once and twice; the warning is silenced (module level, thread-safe) and the same bound
    checked here, since decoding such an image would make Studio allocate gigabytes."""
    try:
        yield
    except Image.DecompressionBombError:
        raise MediaError(_bomb_message(where)) from None


def _check_pixels(width: int, height: int, where: object) -> None:
    if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
        raise MediaError(_bomb_message(where))


def _bomb_message(where: object) -> str:
    return f"{where}: image declares more than {Image.MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?)"


def image_size(source: Path | bytes, where: str) -> tuple[int, int]:
    """(width, height) of an image file or of encoded image bytes, read from its header only (upright,
    as probe() reports it); MediaError when it is not a readable image or declares a bomb's size."""
    try:
        opened = io.BytesIO(source) if isinstance(source, bytes) else source
        with _bomb_checked(where), Image.open(opened) as image:
            width, height = image.size
            _check_pixels(width, height, where)
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except _NOT_AN_IMAGE:
        raise MediaError(f"{where}: not a readable image") from None
    return (height, width) if orientation in _ROTATED_ORIENTATIONS else (width, height)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _check_complete(image: Image.Image, path: Path, size_bytes: int) -> None:
    """Reject truncated files without decoding big images (adding 10,000 photos must stay quick).

    A JPEG's compressed data cannot contain its end marker (0xFF bytes are stuffed), so a file cut short
    has none after its scan data begins; decoding a 12 MP JPEG even at 1/8 scale costs ~50 ms. PNG's
    verify() checks every chunk's CRC. Other formats are rare and cheap enough to decode.
    """
    if image.format in ("JPEG", "MPO"):
        scan_start = image.tile[0][2] if image.tile else 0
        with path.open("rb") as file:
            file.seek(max(scan_start, size_bytes - len(_JPEG_END)))
            if file.read() == _JPEG_END:  # the usual case: the marker ends the file
                return
            file.seek(max(scan_start, size_bytes - _JPEG_TAIL_BYTES))
            if _JPEG_END not in file.read():
                raise MediaError(f"{path}: truncated JPEG (no end-of-image marker)")
    elif image.format == "PNG":
        with Image.open(path) as fresh:  # verify() must come first after open; reading EXIF came before
            fresh.verify()
    else:
        image.load()


def _probe_video(path: Path) -> tuple[int, int, int, float]:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise MediaError(f"{path}: not a readable video")
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
        ok, _ = capture.read()
        if not ok or width <= 0 or height <= 0:
            raise MediaError(f"{path}: video has no decodable frames")
        # The count comes from the container's header: a file cut short (a copy interrupted) still claims
        # every frame, and some containers store no count at all. Decoding the last frame checks it.
        if frames > 1:
            capture.set(cv2.CAP_PROP_POS_FRAMES, frames - 1)
            if capture.grab():
                return width, height, frames, fps
        counted = _count_frames(path)
        if counted < frames - 1:  # an estimated count may be one off; more than that is a truncation
            raise MediaError(f"{path}: video is truncated (its header says {frames} frames, {counted} decode)")
        return width, height, max(counted, 1), fps
    finally:
        capture.release()


def _count_frames(path: Path) -> int:
    """Frames that decode, counted from the start (a fresh capture: seeking past a cut leaves it lost)."""
    capture = cv2.VideoCapture(str(path))
    try:
        counted = 0
        while capture.grab():
            counted += 1
        return counted
    finally:
        capture.release()


def read_image(path: Path | str) -> np.ndarray:
    """Decode an image file as an upright BGR uint8 array (H, W, 3)."""
    _regular_file_stat(Path(path))
    data = np.fromfile(str(path), dtype=np.uint8)
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None  # applies EXIF orientation
    except cv2.error:  # some decoders assert instead of returning None
        image = None
    if image is None:
        raise MediaError(f"{path}: cannot decode image (corrupt or unsupported)")
    return image


def read_frame(path: Path | str, index: int) -> np.ndarray:
    """Frame `index` (0-based) of a video as BGR uint8 (H, W, 3)."""
    if index < 0:
        raise MediaError(f"{path}: frame {index} does not exist (frames count from 0)")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise MediaError(f"{path}: not a readable video")
        if index > 0:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if not ok or frame is None:
            raise MediaError(f"{path}: frame {index} cannot be decoded (past the end or truncated video)")
        return frame
    finally:
        capture.release()


def iter_frames(path: Path | str, frames: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR frame) for increasing frame indices, decoding sequentially and seeking only over gaps.

    The one way jobs walk a video (prediction, tracking): one open capture, memory flat in the video's length.
    """
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise MediaError(f"{path}: not a readable video")
        position = 0
        for index in frames:
            if index < position - 1 or index < 0:
                raise MediaError(f"{path}: frames must be read in increasing order (got {index} after {position - 1})")
            if index > position:
                capture.set(cv2.CAP_PROP_POS_FRAMES, index)
                position = index
            ok, frame = capture.read()
            if not ok or frame is None:
                raise MediaError(f"{path}: frame {index} cannot be decoded (past the end or truncated video)")
            position += 1
            yield index, frame
    finally:
        capture.release()


def read_media(project: Project, media: Media, frame: int = 0) -> np.ndarray:
    """Pixels of an image, or of one frame of a video, as BGR uint8 (H, W, 3)."""
    path = project.resolve(media)
    return read_image(path) if media.kind == "image" else read_frame(path, frame)


def iter_media_files(paths: Iterable[Path | str], problems: list[str] | None = None) -> Iterator[Path]:
    """Files named directly, and supported media found recursively in folders, in a stable order.

    A sub-folder that cannot be listed (no permission, a path too long for the system) is a MediaError,
    or, with a `problems` list, noted there and passed over: never skipped silently.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path, onerror=lambda exc: _unlisted(exc, problems)):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    candidate = Path(dirpath) / name
                    if media_kind(candidate) is not None:
                        yield candidate
        elif path.exists() or path.is_symlink():
            yield path
        else:
            raise MediaError(f"{path}: no such file or folder")


def _unlisted(exc: OSError, problems: list[str] | None) -> None:
    reason = "path too long" if exc.errno == errno.ENAMETOOLONG else (exc.strerror or "cannot list")
    name = str(exc.filename)
    if len(name) > 160:  # a path too long for the system is too long for a message line as well
        name = f"{name[:60]}…{name[-60:]}"
    message = f"{name}: folder not read ({reason})"
    if problems is None:
        raise MediaError(message)
    problems.append(message)


@dataclass
class AddReport:
    added: list[Media] = field(default_factory=list)
    already_present: int = 0
    failed: list[str] = field(default_factory=list)
    """One message per file that could not be added (only with skip_bad)."""


def add_paths(
    project: Project,
    paths: Iterable[Path | str],
    *,
    skip_bad: bool = False,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    batch_size: int = 500,
    first_batch_size: int = 100,
    on_batch: Callable[[list[Media]], None] | None = None,
) -> AddReport:
    """Add image/video files and folders (recursively) to a project.

    Without `skip_bad`, a bad file stops the whole add before anything is stored: files are probed
    first (a cancel then adds nothing), then stored in batches of `batch_size` (a cancel keeps the
    batches already stored). With `skip_bad`, bad files are reported and the rest are added, batch by
    batch as they are probed, the first batch small: a window listing the project shows the first
    images of a 10,000-image folder at once instead of after every file was read. `on_batch` is called
    with each stored batch.
    """
    report = AddReport()
    files: dict[str, Path] = {}  # by stored path: a file named twice, or inside a folder also named, is added once
    for raw in paths:
        try:
            found = list(iter_media_files([raw], report.failed if skip_bad else None))
        except MediaError as exc:
            if not skip_bad:
                raise
            report.failed.append(str(exc))
            continue
        for path in found:
            files.setdefault(project.stored_path(path), path)
    known = {m.path for m in project.list_media()} if files else set()
    pending: list[MediaInfo] = []

    def store(infos: list[MediaInfo]) -> None:
        if cancel is not None and cancel():
            raise CancelledError(f"cancelled: {len(report.added)} of {len(files)} files were added")
        stored = project.add_media(infos)
        report.added.extend(stored)
        if on_batch is not None:
            on_batch(stored)

    for done, (stored_path, path) in enumerate(files.items(), 1):
        if cancel is not None and cancel():
            raise CancelledError(
                f"cancelled while reading files ({done - 1} of {len(files)}); "
                + (f"{len(report.added)} were added" if skip_bad else "nothing was added")
            )
        if stored_path in known:
            report.already_present += 1
        else:
            try:
                pending.append(probe(path))
            except MediaError as exc:
                if not skip_bad:
                    raise
                report.failed.append(str(exc))
        if skip_bad and len(pending) >= (batch_size if report.added else first_batch_size):
            store(pending)
            pending = []
        if progress is not None:
            progress(done, len(files))
    for start in range(0, len(pending), batch_size):
        store(pending[start : start + batch_size])
    return report
