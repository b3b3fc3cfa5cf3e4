"""A stand-in on 127.0.0.1 for the open-access services `review fulltext find` asks:
Unpaywall's REST API (`/unpaywall/<doi>`), PubMed Central's ID converter
(`/pmc/idconv/v1.0/`) and OA web service (`/pmc/oa/oa.fcgi`), in their real reply shapes,
and the files they point to (`/files/<name>`) with scripted faults."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# What a file address does: serve the PDF; 404; an HTML landing page with status 200; stop
# half way through a declared length (every time, or only the first time); drip the bytes
# slower than the client's deadline; redirect to itself for ever.
BEHAVIOURS = ("pdf", "404", "html", "truncated", "truncated-once", "drip", "loop")


@dataclass
class FakeOpenAccess:
    """`unpaywall`: DOI → file names offered as url_for_pdf (best first); `pmc`: PMID or DOI
    → (PMCID, file name or None when not in the open-access subset); `files`: name →
    (behaviour, bytes)."""

    unpaywall: dict[str, list[str]] = field(default_factory=dict)
    pmc: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    drip_seconds: float = 0.5
    unpaywall_down: bool = False  # every Unpaywall request answered 503
    hits: Counter = field(default_factory=Counter)
    emails: list[str] = field(default_factory=list)
    base: str = ""

    def start(self) -> ThreadingHTTPServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def reply(self, status: int, body: bytes, kind: str, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                fake.hits[parts.path] += 1
                if parts.path.startswith("/unpaywall/") and fake.unpaywall_down:
                    self.reply(503, b"Service Unavailable", "text/plain")
                elif parts.path.startswith("/unpaywall/"):
                    fake.emails.append(query.get("email", ""))
                    doi = urllib.parse.unquote(parts.path.removeprefix("/unpaywall/"))
                    if doi not in fake.unpaywall:
                        self.reply(404, json.dumps({"error": True, "message": f"'{doi}' "
                                                    "is not a valid doi"}).encode(),
                                   "application/json")
                        return
                    locations = [{"url_for_pdf": f"{fake.base}/files/{name}",
                                  "url": f"{fake.base}/landing/{name}", "host_type": "publisher"}
                                 for name in fake.unpaywall[doi]]
                    self.reply(200, json.dumps({
                        "doi": doi, "is_oa": bool(locations),
                        "best_oa_location": locations[0] if locations else None,
                        "oa_locations": locations}).encode(), "application/json")
                elif parts.path == "/pmc/idconv/v1.0/":
                    found = fake.pmc.get(query.get("ids", ""))
                    records = [{"pmcid": found[0], "pmid": query["ids"]}] if found else \
                        [{"pmid": query.get("ids", ""), "status": "error",
                          "errmsg": "invalid article id"}]
                    self.reply(200, json.dumps({"status": "ok", "records": records}).encode(),
                               "application/json")
                elif parts.path == "/pmc/oa/oa.fcgi":
                    pmcid = query.get("id", "")
                    names = [name for pmc, name in fake.pmc.values() if pmc == pmcid and name]
                    if names:
                        body = (f'<OA><records returned-count="1"><record id="{pmcid}">'
                                f'<link format="tgz" href="{fake.base}/files/{pmcid}.tar.gz"/>'
                                f'<link format="pdf" href="{fake.base}/files/{names[0]}"/>'
                                "</record></records></OA>")
                    else:
                        body = (f'<OA><error code="idIsNotOpenAccess">identifier \'{pmcid}\' '
                                "is not Open Access</error></OA>")
                    self.reply(200, body.encode(), "text/xml")
                elif parts.path.startswith("/files/"):
                    self.serve_file(parts.path.removeprefix("/files/"))
                else:
                    self.reply(404, b"not found", "text/plain")

            def serve_file(self, name: str) -> None:
                behaviour, data = fake.files.get(name, ("404", b""))
                if behaviour == "truncated-once":
                    behaviour = "truncated" if fake.hits[f"/files/{name}"] == 1 else "pdf"
                if behaviour == "pdf":
                    self.reply(200, data, "application/pdf")
                elif behaviour == "html":
                    self.reply(200, b"<!DOCTYPE html><html><body>Sign in to read the "
                                    b"article</body></html>", "text/html")
                elif behaviour == "loop":
                    self.send_response(302)
                    self.send_header("Location", f"/files/{name}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif behaviour == "truncated":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/pdf")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                elif behaviour == "drip":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/pdf")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    try:
                        for start in range(0, len(data), 256):
                            self.wfile.write(data[start:start + 256])
                            self.wfile.flush()
                            time.sleep(fake.drip_seconds)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                else:
                    self.reply(404, b"not found", "text/plain")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.base = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server
