"""Which model: a small value the picker returns, recent models store and history records.

A model is not always a file: it can be the starter (unpacked on first use), a file in a
Hugging Face repository, or a model served over HTTP. `ModelRef` says which, and turns into a
short string for the settings file and the history database (`to_text`/`from_text`):

    /models/x.gguf                          a local file (a plain path, as older files have)
    starter:                                the bundled starter model
    hf:owner/repo/file.gguf                 a file of a Hugging Face repository
    server:http://host:8080/v1#model-id     a model on an OpenAI-compatible server
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

RefKind = Literal["file", "starter", "hub", "server"]


def normalize_endpoint(url: str) -> str:
    """The API base URL: http:// added when no scheme is given, /v1 when no path is (every
    server this app knows serves the API there), no trailing slash. Raises ValueError."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if not parts.netloc:
        raise ValueError(f"{url!r} is not a server address (expected e.g. http://host:8080/v1).")
    try:
        port = parts.port  # ValueError when not a number from 0 to 65535
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"{url!r} has no usable port: a port is a number from 1 to 65535.")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass(frozen=True)
class ModelRef:
    kind: RefKind
    path: Path | None = None
    """kind "file": the GGUF file (absolute, links kept: an HF cache path links to a blob)."""
    repo: str = ""
    """kind "hub": owner/name."""
    filename: str = ""
    """kind "hub": the file in the repository."""
    endpoint: str = ""
    """kind "server": the API base URL, e.g. http://host:8080/v1."""
    model_id: str = ""
    """kind "server": the model's id on that server."""

    @classmethod
    def file(cls, path: Path | str) -> ModelRef:
        return cls("file", path=Path(os.path.abspath(Path(path).expanduser())))

    @classmethod
    def starter(cls) -> ModelRef:
        return cls("starter")

    @classmethod
    def hub(cls, repo: str, filename: str) -> ModelRef:
        return cls("hub", repo=repo, filename=filename)

    @classmethod
    def server(cls, endpoint: str, model_id: str = "") -> ModelRef:
        """Raises ValueError for an address that is not one; model_id "": the server's only model."""
        return cls("server", endpoint=normalize_endpoint(endpoint), model_id=model_id)

    @property
    def is_local(self) -> bool:
        """Runs in this process through llama.cpp (a file, the starter, a downloaded hub file)."""
        return self.kind != "server"

    def to_text(self) -> str:
        if self.kind == "file":
            return str(self.path)
        if self.kind == "starter":
            return "starter:"
        if self.kind == "hub":
            return f"hf:{self.repo}/{self.filename}"
        return f"server:{self.endpoint}#{self.model_id}"

    @classmethod
    def from_text(cls, text: str) -> ModelRef:
        """The inverse of to_text; raises ValueError for text that is none of the forms."""
        if not text:
            raise ValueError("an empty model reference")
        if text == "starter:":
            return cls.starter()
        if text.startswith("hf:"):
            owner, _, rest = text[3:].partition("/")
            name, _, filename = rest.partition("/")
            if not (owner and name and filename):
                raise ValueError(f"{text!r} is not hf:owner/repo/file")
            return cls.hub(f"{owner}/{name}", filename)
        if text.startswith("server:"):
            endpoint, _, model_id = text[7:].rpartition("#")
            if not endpoint:
                raise ValueError(f"{text!r} is not server:URL#model")
            return cls.server(endpoint, model_id)
        return cls.file(text)

    def label(self) -> str:
        """For a person: the file name, repo/file, or model at host."""
        if self.kind == "file":
            assert self.path is not None
            return self.path.name
        if self.kind == "starter":
            return "the starter model"
        if self.kind == "hub":
            return f"{self.repo}/{self.filename}"
        return f"{self.model_id or 'the model'} at {self.endpoint}"
