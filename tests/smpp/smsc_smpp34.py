"""An SMSC built on the PyPI package smpp34 (code rivr did not write), for
interop tests of rivr's SMPP client.

Usage: smsc_smpp34.py LOGFILE [--hex-ids] [--mo-stdin]
Prints "listening on 127.0.0.1:PORT" on its first line, accepts every
submit_sm, appends "accepted id=.. dest=.. dc=.. esm=.. sm=HEX" to LOGFILE
and then "text dest=.. TEXT" (the decoded text, for two-way SMS tests),
and, when a receipt is requested, sends a delivery receipt (Appendix B text
plus receipted_message_id / message_state TLVs) on the same session.

With --mo-stdin it reads commands from stdin, one per line:
"mo FROM TO TEXT..." sends TEXT (UCS-2 when it is not ASCII) as a
mobile-originated deliver_sm from FROM to TO on the first session that can
receive, waits for its answer and logs "mo from=.. to=.. status=N".
"""

import asyncio
import socket
import sys

import smpp34


def free_port():
    # smpp34.Server takes a fixed port; take a free one from the kernel.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def receipt(esme, ev, msg_id):
    await asyncio.sleep(0.05)
    text = (
        f"id:{msg_id} sub:001 dlvrd:001 submit date:2601010000 "
        f"done date:2601010000 stat:DELIVRD err:000 text:"
    ).encode()
    await esme.deliver_sm(
        ev.source_addr or "rivr",
        text,
        source_addr=ev.destination_addr,
        esm_class=0x04,
        tlvs=[
            smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, msg_id.encode() + b"\0"),
            smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, bytes([2])),
        ],
    )


def decoded(ev):
    sm = ev.short_message
    if ev.esm_class & 0x40 and sm:
        sm = sm[1 + sm[0]:]
    if ev.data_coding == 8:
        return sm.decode("utf-16-be", "replace")
    return sm.decode("latin-1")


async def mo_commands(sessions, log):
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        parts = line.rstrip("\n").split(" ", 3)
        if len(parts) < 4 or parts[0] != "mo":
            log.write(f"bad command {line!r}\n")
            continue
        _, src, dst, text = parts
        esme = next((e for e in sessions.values() if e.can_receive), None)
        if esme is None:
            log.write(f"mo from={src} to={dst} status=no-session\n")
            continue
        if text.isascii():
            sm, dc = text.encode("ascii"), 0
        else:
            sm, dc = text.encode("utf-16-be"), 8
        resp = await esme.deliver_sm(
            dst, sm, source_addr=src, source_addr_ton=1, source_addr_npi=1, data_coding=dc
        )
        log.write(f"mo from={src} to={dst} status={resp.command_status}\n")


async def main():
    log_path = sys.argv[1]
    mo_stdin = "--mo-stdin" in sys.argv[2:]
    port = free_port()
    server = smpp34.Server(host="127.0.0.1", port=port, system_id="pysmsc")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    sessions = {}
    next_id = 0xA000
    tasks = set()
    with open(log_path, "a", buffering=1) as log:
        if mo_stdin:
            t = asyncio.ensure_future(mo_commands(sessions, log))
            tasks.add(t)
        while True:
            ev = await server.next()
            if isinstance(ev, smpp34.Esme):
                sessions[ev.session_id] = ev
                log.write(f"binds {len(sessions)}\n")
            elif isinstance(ev, smpp34.SubmitSmEvent):
                next_id += 1
                msg_id = f"{next_id:x}"
                key = next((t.value.decode() for t in ev.tlvs if t.tag == 0x1401), "-")
                ev.accept(message_id=msg_id)
                log.write(
                    f"accepted id={msg_id} key={key} dest={ev.destination_addr} "
                    f"dc={ev.data_coding} esm={ev.esm_class} sm={ev.short_message.hex()}\n"
                )
                log.write(f"text dest={ev.destination_addr} {decoded(ev)}\n")
                esme = sessions.get(ev.session_id)
                if esme is not None and ev.registered_delivery & 3:
                    t = asyncio.ensure_future(receipt(esme, ev, msg_id))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
            elif isinstance(ev, smpp34.Unbound):
                sessions.pop(ev.session_id, None)


if __name__ == "__main__":
    asyncio.run(main())
