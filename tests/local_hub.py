"""A Hugging Face hub on 127.0.0.1 for the tests: it answers the requests huggingface_hub
makes for ``hf_hub_download`` (``HEAD`` / ``GET /{repo}/resolve/{revision}/{file}``) and
``list_repo_files`` (``GET /api/models/{repo}/tree/{revision}``) as the hub does: the commit in
``X-Repo-Commit``, the file's sha256 as its ``ETag``, and errors as status codes with the
hub's ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``), a private
repository answering 401 without its token. Repositories have commits, branches and tags, so
revisions can be pinned. Every request is recorded (``requests``).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class Repo:
    def __init__(self, token: str | None = None) -> None:
        self.commits: dict[str, dict[str, bytes]] = {}
        self.refs: dict[str, str] = {}
        self.token = token

    def commit(self, files: dict[str, bytes], branch: str = 'main', tag: str | None = None) -> str:
        """A new commit on ``branch`` that adds (or replaces) ``files``; its id."""
        parent = self.refs.get(branch)
        tree = {**self.commits.get(parent, {}), **files}
        digest = hashlib.sha1(repr((parent, sorted(
            (k, hashlib.sha256(v).hexdigest()) for k, v in tree.items()))).encode())
        sha = digest.hexdigest()
        self.commits[sha] = tree
        self.refs[branch] = sha
        if tag:
            self.refs[tag] = sha
        return sha

    def commit_folder(self, folder: str, **kwargs) -> str:
        """A commit of every file in ``folder`` (what ``save_pretrained`` wrote)."""
        files = {}
        for root, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                with open(path, 'rb') as f:
                    files[os.path.relpath(path, folder)] = f.read()
        return self.commit(files, **kwargs)

    def resolve(self, revision: str) -> str | None:
        return self.refs.get(revision) or (revision if revision in self.commits else None)


class LocalHub:
    """``LocalHub.start()`` serves in a daemon thread; ``url`` is its endpoint."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.server: ThreadingHTTPServer | None = None

    @classmethod
    def start(cls) -> LocalHub:
        hub = cls()
        handler = type('Handler', (_Handler,), {'hub': hub})
        hub.server = ThreadingHTTPServer(('127.0.0.1', 0), handler)
        threading.Thread(target=hub.server.serve_forever, daemon=True).start()
        return hub

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.server.server_address[1]}'

    def repo(self, repo_id: str, token: str | None = None) -> Repo:
        """The repository ``repo_id``, made empty on first use."""
        return self.repos.setdefault(repo_id, Repo(token))


class _Handler(BaseHTTPRequestHandler):
    hub: LocalHub
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        path = urlparse(self.path).path
        self.hub.requests.append((self.command, path))
        parts = [unquote(p) for p in path.strip('/').split('/')]
        if parts[:2] == ['api', 'models'] and len(parts) >= 6 and parts[4] == 'tree':
            repo_id, revision = '/'.join(parts[2:4]), parts[5]
            self._tree(repo_id, revision, body)
        elif len(parts) >= 5 and parts[2] == 'resolve':
            repo_id, revision, filename = '/'.join(parts[:2]), parts[3], '/'.join(parts[4:])
            self._resolve(repo_id, revision, filename, body)
        else:
            self._error(404, None, f'no route {path}', body)

    def _commit(self, repo_id: str, revision: str, body: bool) -> tuple[str, dict] | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, 'RepoNotFound', 'Repository not found', body)
            return None
        if repo.token and self.headers.get('Authorization') != f'Bearer {repo.token}':
            self._error(401, 'RepoNotFound', 'Repository not found', body)
            return None
        sha = repo.resolve(revision)
        if sha is None:
            self._error(404, 'RevisionNotFound', 'Invalid rev id: ' + revision, body)
            return None
        return sha, repo.commits[sha]

    def _resolve(self, repo_id: str, revision: str, filename: str, body: bool) -> None:
        found = self._commit(repo_id, revision, body)
        if found is None:
            return
        sha, files = found
        if filename not in files:
            self._error(404, 'EntryNotFound', f'{filename} does not exist on "{revision}"', body)
            return
        data = files[filename]
        self._send(200, data if body else None, {
            'X-Repo-Commit': sha, 'ETag': f'"{hashlib.sha256(data).hexdigest()}"',
            'Content-Length': str(len(data)), 'Content-Type': 'application/octet-stream'})

    def _tree(self, repo_id: str, revision: str, body: bool) -> None:
        found = self._commit(repo_id, revision, body)
        if found is None:
            return
        _, files = found
        listing = [dict(type='file', path=name, size=len(data),
                        oid=hashlib.sha1(data).hexdigest()) for name, data in sorted(files.items())]
        data = json.dumps(listing).encode()
        self._send(200, data if body else None, {'Content-Type': 'application/json',
                                                 'Content-Length': str(len(data))})

    def _error(self, status: int, code: str | None, message: str, body: bool) -> None:
        data = json.dumps({'error': message}).encode()
        headers = {'Content-Type': 'application/json', 'Content-Length': str(len(data)),
                   'X-Error-Message': message}
        if code:
            headers['X-Error-Code'] = code
        self._send(status, data if body else None, headers)

    def _send(self, status: int, data: bytes | None, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if data is not None:
            self.wfile.write(data)
