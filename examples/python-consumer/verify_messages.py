#!/usr/bin/env python3
"""Verify latchkey device-signed messages, written from docs/protocol.md alone.

An independent consumer of protocol.md §Signed messages: Python 3 with PyJWT and cryptography
(Debian: python3-jwt, python3-cryptography) and the standard library, nothing of latchkey's own.

Input, one JSON object per line on stdin: {"topic": "...", "payload": "<base64 of the MQTT payload>"}.
Output, one JSON object per line on stdout, in the same order:
  {"ok": true, "deviceId", "topic", "seq", "iat", "kid", "body": "<base64 of the message bytes>"}
  {"ok": false, "code": "<the refusal code of protocol.md §Verifying a message>"}

Key histories come from GET /v1/devices/{id}/keys (api.md §Key history), authenticated as a
service account with an API token signed by its own key (protocol.md §Service-account API tokens):

  verify_messages.py --url http://127.0.0.1:8080 --service lake --key lake.key.pem < messages.jsonl

or from a file holding {"<deviceId>": {"keys": [...]}, ...} in the same shape (--keys-file).
"""
import argparse
import base64
import binascii
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import jwt  # PyJWT
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

MESSAGE_TYP = "latchkey-message+jwt"  # protocol.md §Signed messages, Format: typ
ALLOWED_HEADER = {"alg", "typ", "kid"}
MAX_BYTES = 262144  # the broker's default maxPacketSize (protocol.md §Limits)
CLOCK_TOLERANCE_S = 300
WINDOW = 1024  # protocol.md §Verifying a message, step 8
MAX_SAFE = 2**53 - 1
DEVICE_ID = r"[A-Za-z][A-Za-z0-9._-]{2,63}"  # protocol.md §Device ids
B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class Refused(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def b64url_decode(segment, code):
    """Unpadded, canonical base64url (protocol.md §The connect token): no padding, no stray
    characters, no impossible length, zero unused bits in the last character."""
    unused = {0: 0, 1: -1, 2: 4, 3: 2}[len(segment) % 4]
    if unused < 0 or not B64URL.match(segment):
        raise Refused(code)
    if unused > 0 and ALPHABET.index(segment[-1]) & ((1 << unused) - 1):
        raise Refused(code)
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def strict_json_object(data, code):
    """UTF-8 JSON exactly, an object: no byte-order mark, no member name given twice."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise Refused(code)

    def no_duplicates(pairs):
        names = [name for name, _ in pairs]
        if len(names) != len(set(names)):
            raise Refused(code)
        return dict(pairs)

    def no_constants(_name):  # NaN, Infinity: not JSON
        raise Refused(code)

    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError):
        raise Refused(code)
    if not isinstance(value, dict):
        raise Refused(code)
    return value


def device_of_topic(topic):
    """Step 1: a device -> cloud topic (protocol.md §Topics), and its device."""
    m = re.fullmatch(r"devices/(%s)/(telemetry(?:/[^/]+)*|state|replies/[^/]+)" % DEVICE_ID, topic)
    if m is None or "+" in topic or "#" in topic or "\x00" in topic:
        raise Refused("topic_mismatch")
    return m.group(1)


def natural(value):
    """A non-negative integer below 2^53 (JSON true/false and 1.0 are not)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SAFE


class KeyHistory:
    """Key histories by device, fetched once per device per run."""

    def __init__(self, url=None, service=None, key_pem=None, audience="latchkey", keys_file=None):
        self.url, self.service, self.audience = url, service, audience
        self.key = load_pem_private_key(key_pem, password=None) if key_pem else None
        self.cache = {}
        if keys_file is not None:
            with open(keys_file, encoding="utf-8") as f:
                for device_id, history in json.load(f).items():
                    self.cache[device_id] = history["keys"]

    def api_token(self):
        """protocol.md §Service-account API tokens: aud <audience>:api, exp - iat <= 300 s."""
        now = int(time.time())
        claims = {"sub": "svc:" + self.service, "aud": self.audience + ":api", "iat": now, "exp": now + 300}
        return jwt.encode(claims, self.key, algorithm="ES256")

    def keys_of(self, device_id):
        if device_id not in self.cache and self.url is not None:
            request = urllib.request.Request(
                self.url.rstrip("/") + "/v1/devices/" + urllib.parse.quote(device_id, safe="") + "/keys",
                headers={"Authorization": "Bearer " + self.api_token(), "Accept": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    self.cache[device_id] = json.load(response)["keys"]
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise
                self.cache[device_id] = None
        return self.cache.get(device_id)


class Replay:
    """Step 8: per device the highest seq accepted and which of the WINDOW below it were seen."""

    def __init__(self):
        self.top, self.seen = {}, {}

    def accept(self, device_id, seq):
        top = self.top.get(device_id)
        if top is None or seq > top:
            self.top[device_id] = seq
            seen = {s for s in self.seen.get(device_id, set()) if seq - s < WINDOW}
            seen.add(seq)
            self.seen[device_id] = seen
            return True
        if top - seq >= WINDOW or seq in self.seen[device_id]:
            return False
        self.seen[device_id].add(seq)
        return True


def verify(topic, message, keys, replay, audience, now_ms):
    """protocol.md §Verifying a message, steps 1 to 8, in that order."""
    device_id = device_of_topic(topic)  # 1
    if len(message) == 0:
        raise Refused("message_malformed")
    if len(message) > MAX_BYTES:
        raise Refused("message_too_large")  # 2
    try:
        text = message.decode("ascii")
    except UnicodeDecodeError:
        raise Refused("message_malformed")
    parts = text.split(".")
    if len(parts) != 3 or parts[0] == "":
        raise Refused("message_malformed")
    header = strict_json_object(b64url_decode(parts[0], "message_malformed"), "message_malformed")
    claims_bytes = b64url_decode(parts[1], "message_malformed")
    b64url_decode(parts[2], "message_malformed")

    if header.get("alg") != "ES256":  # 3
        raise Refused("alg_not_allowed")
    if not set(header) <= ALLOWED_HEADER:
        raise Refused("header_forbidden")
    typ = header.get("typ")
    if not isinstance(typ, str) or not typ.isascii() or typ.lower() != MESSAGE_TYP:
        raise Refused("header_invalid")
    kid = header.get("kid")
    if kid is not None and not (isinstance(kid, str) and 1 <= len(kid) <= 128):
        raise Refused("header_invalid")

    history = keys.keys_of(device_id)  # 4
    if history is None:
        raise Refused("unknown_principal")
    if kid is not None:
        candidates = [k for k in history if k["kid"] == kid]
    else:
        candidates = list(history)
    if not candidates:
        raise Refused("unknown_credential")

    signer = None  # 5
    for credential in candidates:
        try:
            public_key = load_pem_public_key(credential["publicKey"].encode("ascii"))
            jwt.PyJWS().decode_complete(text, key=public_key, algorithms=["ES256"])
            signer = credential
            break
        except jwt.InvalidTokenError:
            continue
    if signer is None:
        raise Refused("signature_invalid")

    claims = strict_json_object(claims_bytes, "message_malformed")  # 6
    for name in ("sub", "aud", "iat", "topic", "seq", "body"):
        if name not in claims:
            raise Refused("claim_missing")
    if not all(isinstance(claims[n], str) for n in ("sub", "aud", "topic", "body")):
        raise Refused("claim_invalid")
    if not natural(claims["iat"]) or not natural(claims["seq"]):
        raise Refused("claim_invalid")
    body = b64url_decode(claims["body"], "claim_invalid")
    if claims["aud"] != audience + ":message":
        raise Refused("audience_mismatch")
    if claims["sub"] != device_id:
        raise Refused("subject_mismatch")
    if claims["topic"] != topic:
        raise Refused("topic_mismatch")
    iat = claims["iat"]
    if iat * 1000 > now_ms + CLOCK_TOLERANCE_S * 1000:
        raise Refused("message_issued_in_future")

    start = iat * 1000  # 7: [iat, iat + 1) s overlaps [createdAt, removedAt), before expiresAt
    if signer.get("createdAt") is not None and start + 1000 <= signer["createdAt"]:
        raise Refused("credential_not_yet_valid")
    if signer.get("removedAt") is not None and start >= signer["removedAt"]:
        raise Refused("credential_removed")
    if signer.get("expiresAt") is not None and start >= signer["expiresAt"]:
        raise Refused("credential_expired")

    if not replay.accept(device_id, claims["seq"]):  # 8
        raise Refused("message_replayed")
    return {"ok": True, "deviceId": device_id, "topic": topic, "seq": claims["seq"], "iat": iat, "kid": signer["kid"],
            "body": base64.b64encode(body).decode("ascii")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="the provisioning API, e.g. http://127.0.0.1:8080")
    parser.add_argument("--service", help="the service account name")
    parser.add_argument("--key", help="the service account's private key, PEM")
    parser.add_argument("--keys-file", help="key histories as JSON instead of the API")
    parser.add_argument("--audience", default="latchkey")
    args = parser.parse_args()
    key_pem = None
    if args.keys_file is None:
        if not (args.url and args.service and args.key):
            parser.error("give --url, --service and --key, or --keys-file")
        with open(args.key, "rb") as f:
            key_pem = f.read()
    keys = KeyHistory(args.url, args.service, key_pem, args.audience, args.keys_file)
    replay = Replay()
    for line in sys.stdin:
        if not line.strip():
            continue
        item = json.loads(line)
        try:
            message = base64.b64decode(item["payload"], validate=True)
            result = verify(item["topic"], message, keys, replay, args.audience, int(time.time() * 1000))
        except Refused as refused:
            result = {"ok": False, "code": refused.code}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
