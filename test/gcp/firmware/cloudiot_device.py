#!/usr/bin/python3
"""A Cloud IoT Core device written the way Google's Python sample (cloudiot_mqtt_example.py) wrote
one: paho-mqtt 1.x and PyJWT, both from Debian's packages, nothing from latchkey. The tests drive it
over stdin/stdout with JSON lines:

  stdin  {"op": "connect"} | {"op": "publish", "topic", "payload" (base64), "qos"}
         {"op": "subscribe", "topic", "qos"} | {"op": "unsubscribe", "topic"} | {"op": "disconnect"}
  stdout {"event": "connack", "rc"} | {"event": "suback", "mid", "granted"} | {"event": "puback", "mid"}
         {"event": "message", "topic", "payload" (base64), "qos", "dup"} | {"event": "disconnect", "rc"}
         {"event": "published", "mid"} | {"event": "token", "token"} (with --print-token, then exit)
"""
import argparse
import base64
import datetime
import json
import ssl
import sys
import threading

import jwt
import paho.mqtt.client as mqtt

out_lock = threading.Lock()


def emit(**event):
    with out_lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def create_jwt(project_id, private_key_file, algorithm, lifetime_seconds):
    """As the sample: iat now, exp after the lifetime (20 minutes there), aud the project; no sub."""
    now = datetime.datetime.now(tz=datetime.timezone.utc)
    token = {
        "iat": now,
        "exp": now + datetime.timedelta(seconds=lifetime_seconds),
        "aud": project_id,
    }
    with open(private_key_file, "r") as f:
        private_key = f.read()
    return jwt.encode(token, private_key, algorithm=algorithm)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca-certs", required=True)
    parser.add_argument("--project-id", required=True)
    parser.add_argument("--cloud-region", required=True)
    parser.add_argument("--registry-id", required=True)
    parser.add_argument("--device-id", required=True, help="the id (or numId) in the client id")
    parser.add_argument("--private-key-file", required=True)
    parser.add_argument("--algorithm", choices=("RS256", "ES256"), required=True)
    parser.add_argument("--jwt-lifetime", type=int, default=20 * 60)
    parser.add_argument("--print-token", action="store_true")
    args = parser.parse_args()

    password = create_jwt(args.project_id, args.private_key_file, args.algorithm, args.jwt_lifetime)
    if args.print_token:
        emit(event="token", token=password)
        return

    client_id = "projects/{}/locations/{}/registries/{}/devices/{}".format(
        args.project_id, args.cloud_region, args.registry_id, args.device_id
    )
    client = mqtt.Client(client_id=client_id)
    # The sample: the username is ignored by the bridge; the password is the JWT.
    client.username_pw_set(username="unused", password=password)
    client.tls_set(ca_certs=args.ca_certs, tls_version=ssl.PROTOCOL_TLSv1_2)

    def on_connect(c, userdata, flags, rc):
        emit(event="connack", rc=rc)
        if rc != 0:
            c.disconnect()

    def on_disconnect(c, userdata, rc):
        emit(event="disconnect", rc=rc)

    def on_publish(c, userdata, mid):
        emit(event="puback", mid=mid)

    def on_subscribe(c, userdata, mid, granted_qos):
        emit(event="suback", mid=mid, granted=list(granted_qos))

    def on_message(c, userdata, message):
        emit(
            event="message",
            topic=message.topic,
            payload=base64.b64encode(message.payload).decode("ascii"),
            qos=message.qos,
            dup=bool(message.dup),
        )

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_publish = on_publish
    client.on_subscribe = on_subscribe
    client.on_message = on_message

    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "connect":
            client.connect(args.host, args.port)
            client.loop_start()
        elif op == "publish":
            info = client.publish(cmd["topic"], base64.b64decode(cmd["payload"]), qos=cmd.get("qos", 1))
            emit(event="published", mid=info.mid)
        elif op == "subscribe":
            client.subscribe(cmd["topic"], qos=cmd.get("qos", 1))
        elif op == "unsubscribe":
            client.unsubscribe(cmd["topic"])
        elif op == "disconnect":
            client.disconnect()
            client.loop_stop()
            emit(event="closed")
            return


if __name__ == "__main__":
    main()
