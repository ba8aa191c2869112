"""An OTLP/HTTP backend over TLS that requires a client certificate, verified by OpenSSL (Python's
ssl module) against a CA, as an independent check of what the gateway presents.

  tls_backend.py --cert SERVER.pem --key SERVER.key --ca CA.pem

Prints {"port": N} once listening on 127.0.0.1, then one line per request:
{"path": ..., "client_cert_version": V, "client_subject": ...}. Answers 200 with an empty
ExportTraceServiceResponse.
"""

import argparse
import http.server
import json
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        cert = self.connection.getpeercert()
        subject = dict(x[0] for x in cert.get("subject", ())) if cert else {}
        line = {
            "path": self.path,
            "client_cert_version": cert.get("version") if cert else None,
            "client_subject": subject.get("commonName"),
        }
        print(json.dumps(line), flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True)
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=args.ca)
    context.load_cert_chain(certfile=args.cert, keyfile=args.key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
