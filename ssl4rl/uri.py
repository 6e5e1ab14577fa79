"""pyarrow.fs URIs (`s3://bucket/dir`, `gs://...`, `hdfs://...`, `file:///abs/dir`) as sources and
outputs: which arguments are URIs, their filesystem, and how they are shown.

A URI is read and written through `pyarrow.fs.FileSystem.from_uri`, so credentials and
endpoints come from wherever pyarrow takes them (environment, config files, the URI's query).
What is shown in messages and written to manifests drops the URI's user part and query, so a
secret given in the URI never reaches a file.
"""

from __future__ import annotations

import re

from ssl4rl.errors import UserError

_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(?:[^@/?]*@)?([^?]*)")


def is_uri(text: str | None) -> bool:
    """`scheme://...`: plain paths (relative, absolute, `C:\\...`) are not URIs."""
    return bool(text) and _URI.match(str(text)) is not None


def shown(uri: str) -> str:
    """The URI without credentials or query, trailing slashes dropped.

    >>> shown("s3://KEY:SECRET@bucket/dir/?endpoint_override=localhost:9000")
    's3://bucket/dir'
    """
    scheme, rest = _URI.match(uri).groups()
    return f"{scheme}://{rest.rstrip('/') or '/'}"


def scheme_of(uri: str) -> str:
    return _URI.match(uri).group(1).lower()


def filesystem(uri: str):
    """(pyarrow filesystem, path inside it) of a URI, or one line saying why not."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise UserError(f"{shown(uri)}: cannot open this URI with pyarrow.fs ({first_line(error)})") from None
    return fs, path.rstrip("/") or "/"


def is_local(fs) -> bool:
    """A `file://` URI: the local disk, where renames are atomic and a lock file works."""
    import pyarrow.fs as pafs

    return isinstance(fs, pafs.LocalFileSystem)


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
