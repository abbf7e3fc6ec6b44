#!/usr/bin/env python3
"""Creates the resources a schemathesis run needs to get past "not found", on a fresh
Concord server, and writes a schemathesis.toml that pins each operation's path ids to
them. Used by scripts/schemathesis.sh; standard library only.

usage: schemathesis-seed.py BASE_URL FUZZER_TOKEN CONFIG_OUT
"""

import json
import sys
import urllib.request


def call(base, method, path, token=None, body=None, scheme="Bearer"):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"{scheme} {token}")
    with urllib.request.urlopen(request) as response:
        text = response.read()
        return json.loads(text) if text else None


def main():
    base, fuzzer, out = sys.argv[1], sys.argv[2], sys.argv[3]
    other = call(base, "POST", "/auth/register", body={"username": "other", "password": "correct-horse-42"})
    other_token, other_id = other["access_token"], other["user"]["id"]

    server = call(base, "POST", "/servers", fuzzer, {"name": "Fuzzed", "is_public": True})["id"]
    doomed_server = call(base, "POST", "/servers", fuzzer, {"name": "Doomed"})["id"]
    # A server of someone else, public: the fuzzer may join and leave it.
    foreign = call(base, "POST", "/servers", other_token, {"name": "Foreign", "is_public": True})["id"]

    def channel(name, kind):
        return call(base, "POST", f"/servers/{server}/channels", fuzzer, {"name": name, "type": kind})["id"]

    text, doomed_channel, voice = channel("general", "text"), channel("doomed", "text"), channel("voice", "voice")
    call(base, "POST", f"/channels/{voice}/voice", fuzzer)

    def message(content):
        return call(base, "POST", f"/channels/{text}/messages", fuzzer, {"content": content})["id"]

    kept, doomed_message = message("hello"), message("doomed")
    dm = call(base, "POST", "/dm-channels", fuzzer, {"user_id": other_id})["id"]

    def bot(name):
        return call(base, "POST", "/bots", fuzzer, {"name": name})

    kept_bot, doomed_bot, connecting_bot = bot("Kept")["bot"]["id"], bot("Doomed")["bot"]["id"], bot("Connector")

    pins = {
        "users_profile": {"user_id": other_id},
        "servers_get_one": {"id": server},
        "servers_update": {"id": server},
        "servers_members": {"id": server},
        "servers_remove": {"id": doomed_server},
        "servers_join": {"id": foreign},
        "servers_leave": {"id": foreign},
        "channels_create": {"id": server},
        "channels_list": {"id": server},
        "channels_get_one": {"id": server, "channel_id": text},
        "channels_update": {"id": server, "channel_id": text},
        "channels_remove": {"id": server, "channel_id": doomed_channel},
        "channels_ack": {"channel_id": text},
        "messages_list": {"channel_id": text},
        "messages_create": {"channel_id": text},
        "messages_get_one": {"channel_id": text, "message_id": kept},
        "messages_edit": {"message_id": kept},
        "messages_remove": {"message_id": doomed_message},
        "voice_participants": {"channel_id": voice},
        "voice_join": {"channel_id": voice},
        "voice_update": {"channel_id": voice},
        "voice_leave": {"channel_id": voice},
        "dms_messages": {"id": dm},
        "dms_send": {"id": dm},
        "dms_ack": {"id": dm},
        "bots_fetch": {"id": kept_bot},
        "bots_update": {"id": kept_bot},
        "bots_regenerate": {"id": kept_bot},
        "bots_revoke": {"id": doomed_bot},
    }
    lines = ["# Written by scripts/schemathesis-seed.py for one run; not kept.", ""]
    for operation, params in pins.items():
        lines.append("[[operations]]")
        lines.append(f'include-operation-id = "{operation}"')
        pairs = ", ".join(f'"path.{name}" = "{value}"' for name, value in params.items())
        lines.append(f"parameters = {{ {pairs} }}")
        lines.append("")
    # The token exchange wants the bot's own token, not the fuzzer's JWT.
    lines.append("[[operations]]")
    lines.append('include-operation-id = "bots_connect"')
    lines.append(f'headers = {{ Authorization = "Bot {connecting_bot["token"]}" }}')
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
