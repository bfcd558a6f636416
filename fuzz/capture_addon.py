"""mitmproxy addon of fuzz/capture.sh: records every request that passes through the proxy.

Each request is appended, once its answer (or failure) is known, to the JSON-lines file named
by $CAPTURE_LOG: the client it came from (the text of the file $CAPTURE_TAG when the request
arrived, "CLIENT" or "CLIENT:LABEL"), method, path with query, the headers the seed writer
looks at, the body exactly as sent (base64) and the answer's status (null when none came).
fuzz/capture_seeds.py turns the log into seed files.
"""

import base64
import json
import os

HEADERS = ("content-type", "authorization", "user-agent")


def _tag():
    try:
        with open(os.environ["CAPTURE_TAG"], encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


class Recorder:
    def request(self, flow):
        flow.metadata["capture_tag"] = _tag()

    def response(self, flow):
        self._write(flow, flow.response.status_code)

    def error(self, flow):
        self._write(flow, None)

    def _write(self, flow, status):
        req = flow.request
        record = {
            "tag": flow.metadata.get("capture_tag", ""),
            "method": req.method,
            "path": req.path,
            "headers": {h: req.headers[h] for h in HEADERS if h in req.headers},
            "body": base64.b64encode(req.raw_content or b"").decode(),
            "status": status,
        }
        with open(os.environ["CAPTURE_LOG"], "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


addons = [Recorder()]
