"""A local HTTP server on 127.0.0.1 that answers `huggingface_hub` as the Hugging Face Hub does.

It serves `/<repo>/resolve/<revision>/<file>` (HEAD and GET, with ranges) with the Hub's headers:
`X-Repo-Commit`, the file's SHA256 as `X-Linked-Etag` and its size as `X-Linked-Size` (large files
are Git LFS objects on the Hub), and `X-Error-Code: EntryNotFound` / `RepoNotFound` for what is
not there. Point `HF_ENDPOINT` at `hub.url`.
"""

import hashlib
import http.server
import re
import threading

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)$")


class FakeHub:
    """Repositories of files, served like the Hub; `requests` lists (method, path) of every request.

    `served` maps (repo, file) to the bytes actually sent, when they must differ from the published ones
    (e.g. corrupted in transit); the headers always describe the published bytes.
    """

    def __init__(self):
        self.repos = {}
        self.served = {}
        self.requests = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub._answer(self, body=False)

            def do_GET(self):
                hub._answer(self, body=True)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, repo, file_name, data):
        self.repos.setdefault(repo, {})[file_name] = bytes(data)

    def commit(self, repo):
        return hashlib.sha1(repo.encode()).hexdigest()

    def _answer(self, handler, body):
        self.requests.append((handler.command, handler.path))
        match = _RESOLVE.match(handler.path.split("?")[0])
        files = self.repos.get(match["repo"]) if match else None
        if files is None or match["file"] not in files:
            handler.send_response(404)
            handler.send_header("X-Error-Code", "RepoNotFound" if files is None else "EntryNotFound")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        data = files[match["file"]]
        sent = self.served.get((match["repo"], match["file"]), data)
        start, end = 0, len(sent)
        ranged = re.match(r"bytes=(\d+)-(\d*)", handler.headers.get("Range", ""))
        if ranged:
            start, end = int(ranged[1]), int(ranged[2]) + 1 if ranged[2] else len(sent)
        handler.send_response(206 if ranged else 200)
        handler.send_header("X-Repo-Commit", self.commit(match["repo"]))
        handler.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
        handler.send_header("X-Linked-Size", str(len(data)))
        handler.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
        handler.send_header("Content-Length", str(end - start))
        if ranged:
            handler.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(sent)}")
        handler.end_headers()
        if body:
            handler.wfile.write(sent[start:end])

    def close(self):
        self.server.shutdown()
        self.server.server_close()
