"""Hugging Face dataset folders: parquet files (a hub snapshot, any split) or `save_to_disk`
output (Arrow files).

The image is a `datasets.Image` column ({bytes, path} struct), a list of them, or a base64
string (HuggingFaceM4/MMBench). Several image columns can be named (BLINK's image_1..image_4).
Files are read in record batches of one column, so memory stays bounded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ssl4rl.errors import UserError
from ssl4rl.sources.common import MAX_FILE_BYTES, RawItem, as_path, from_base64, from_bytes, read_file
from ssl4rl.sources.remote import RemoteFile

LIKELY_IMAGE_COLUMNS = ("image", "images", "img", "image_base64", "decoded_image")
BATCH_ROWS = 32


def data_files(root: Path) -> list[Path]:
    """Parquet files, else Arrow files of `save_to_disk` (datasets' cache files excluded)."""
    if root.is_file():
        return [root]
    parquet = sorted(root.rglob("*.parquet"))
    if parquet:
        return parquet
    return sorted(p for p in root.rglob("*.arrow") if not p.name.startswith("cache-"))


def _is_image_type(arrow_type: pa.DataType) -> bool:
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        arrow_type = arrow_type.value_type
    return pa.types.is_struct(arrow_type) and arrow_type.get_field_index("bytes") >= 0


def _holds_images(arrow_type: pa.DataType) -> bool:
    """A column that can hold encoded images: Image structs, bytes, base64 text, or lists of them."""
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        arrow_type = arrow_type.value_type
    return (
        _is_image_type(arrow_type)
        or pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
        or pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
        or pa.types.is_null(arrow_type)
    )  # fmt: skip


def _input(file):
    """What pyarrow reads: a local path, or a remote file's own handle (ssl4rl.sources.remote)."""
    return file.arrow_file() if isinstance(file, RemoteFile) else file


def _random_access(file):
    return file.arrow_file() if isinstance(file, RemoteFile) else pa.memory_map(str(file))


def parquet_rows(file) -> int:
    return pq.ParquetFile(_input(file)).metadata.num_rows


def _schema(file: Path) -> pa.Schema:
    if file.suffix == ".parquet":
        return pq.read_schema(_input(file))
    with _random_access(file) as source:
        return _open_arrow(source).schema


def _open_arrow(source):
    try:
        return pa.ipc.open_stream(source)  # what `save_to_disk` writes
    except pa.ArrowInvalid:
        source.seek(0)
        return pa.ipc.open_file(source)


def _batches(file: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    if file.suffix == ".parquet":
        yield from pq.ParquetFile(_input(file)).iter_batches(batch_size=BATCH_ROWS, columns=columns)
        return
    with _random_access(file) as source:
        reader = _open_arrow(source)
        batches = reader if isinstance(reader, pa.ipc.RecordBatchStreamReader) else (
            reader.get_batch(i) for i in range(reader.num_record_batches)
        )
        for batch in batches:
            yield batch.select(columns)


class HFSource:
    kind = "hf"

    def __init__(self, path: Path, image_columns: list[str] | None = None, max_bytes: int = MAX_FILE_BYTES, files: list[Path] | None = None):
        """`files`: the parquet/Arrow files of a glob (`DIR/*.parquet`), ids relative to `path`."""
        self.path, self.max_bytes = as_path(path), max_bytes
        self.files = list(files) if files is not None else data_files(self.path)
        if not self.files:
            raise UserError(f"{self.path}: no .parquet or .arrow files")
        try:
            schemas = {file: _schema(file) for file in self.files}
        except (pa.ArrowException, OSError) as error:
            raise UserError(f"{self.path}: cannot read dataset files ({error})") from None
        first = schemas[self.files[0]]
        self.image_columns = image_columns or self._guess_columns(first)
        for file, schema in schemas.items():
            missing = [c for c in self.image_columns if c not in schema.names]
            if missing:
                raise UserError(f"{file}: no image column {', '.join(map(repr, missing))} (columns: {', '.join(schema.names)})")
            for name in self.image_columns:
                if not _holds_images(schema.field(name).type):
                    raise UserError(f"{file}: column {name!r} holds {schema.field(name).type}, not images; name the image column with --image-column")

    def _guess_columns(self, schema: pa.Schema) -> list[str]:
        for name in LIKELY_IMAGE_COLUMNS:
            if name in schema.names:
                return [name]
        typed = [field.name for field in schema if _is_image_type(field.type)]
        if typed:
            return typed
        raise UserError(f"{self.files[0]}: no image column found (columns: {', '.join(schema.names)}); name it with --image-column")

    def _relative(self, file: Path) -> str:
        return file.name if self.path.is_file() else file.relative_to(self.path).as_posix()

    def __iter__(self) -> Iterator[RawItem]:
        for file in self.files:
            try:
                yield from self._file_images(file)
            except (pa.ArrowException, OSError):  # a damaged file: counted, and the next file is read
                yield RawItem(f"{self._relative(file)}:", None, "unreadable-file")

    def _file_images(self, file: Path) -> Iterator[RawItem]:
        row = 0
        prefix = self._relative(file)
        for batch in _batches(file, self.image_columns):
            columns = [batch.column(name).to_pylist() for name in self.image_columns]
            for values in zip(*columns):
                if all(value is None or value == [] for value in values):  # a row without any image is
                    # counted; with several columns, a null in one of them is normal (BLINK's image_3)
                    yield RawItem(f"{prefix}:{row}", None, "missing-image")
                for name, value in zip(self.image_columns, values):
                    tag = f"{prefix}:{row}" if len(self.image_columns) == 1 else f"{prefix}:{row}:{name}"
                    if value is not None:
                        yield from self._images(tag, value, file.parent)
                row += 1

    def _images(self, tag: str, value, folder: Path) -> Iterator[RawItem]:
        if value is None:  # inside a list of images
            yield RawItem(tag, None, "missing-image")
        elif isinstance(value, list):
            for k, item in enumerate(value):
                yield from self._images(f"{tag}/{k}", item, folder)
        elif isinstance(value, dict):
            if value.get("bytes"):
                yield from_bytes(tag, value["bytes"], self.max_bytes)
            elif isinstance(value.get("path"), str) and value["path"]:
                path = Path(value["path"])
                path = path if path.is_absolute() else folder / path
                yield read_file(tag, path, self.max_bytes) if path.is_file() else RawItem(tag, None, "missing-image")
            else:
                yield RawItem(tag, None, "missing-image")
        elif isinstance(value, (bytes, bytearray)):
            yield from_bytes(tag, value, self.max_bytes)
        else:
            yield from_base64(tag, value, self.max_bytes)
