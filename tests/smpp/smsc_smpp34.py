"""An SMSC built on the PyPI package smpp34 (code rivr did not write), for
interop tests of rivr's SMPP client.

Usage: smsc_smpp34.py LOGFILE [--hex-ids] [--mo-stdin]
       smsc_smpp34.py LOGFILE --fields [--refuse-binds] [--throttle-all]
                      [--no-schedule]
Prints "listening on 127.0.0.1:PORT" on its first line, accepts every
submit_sm, appends "accepted id=.. dest=.. dc=.. esm=.. sm=HEX" to LOGFILE
and then "text dest=.. TEXT" (the decoded text, for two-way SMS tests),
and, when a receipt is requested, sends a delivery receipt (Appendix B text
plus receipted_message_id / message_state TLVs) on the same session.

With --mo-stdin it reads commands from stdin, one per line:
"mo FROM TO TEXT..." sends TEXT (UCS-2 when it is not ASCII) as a
mobile-originated deliver_sm from FROM to TO on the first session that can
receive, waits for its answer and logs "mo from=.. to=.. status=N".

With --fields (or any option after it) it runs a plain asyncio SMSC whose
submit_sm are decoded by smpp34.decode (the server class does not expose
schedule_delivery_time / validity_period) and logs, per accepted part,
"accepted t=UNIXTIME id=.. key=.. dest=.. src=.. ston=.. snpi=..
sched=.. valid=..". --refuse-binds answers every bind with ESME_RBINDFAIL;
--throttle-all answers every submit_sm with ESME_RTHROTTLED; --no-schedule
refuses a submit_sm with a schedule_delivery_time (ESME_RINVSCHED), as an
SMSC without scheduling does. Binds are counted by kind (bind_tx, bind_rx,
bind_trx). No receipts are sent in this mode.
"""

import asyncio
import socket
import struct
import sys
import time

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


ESME_RBINDFAIL = 0x0D
ESME_RTHROTTLED = 0x58
ESME_RINVSCHED = 0x61
ESME_RINVCMDID = 0x03


def pdu(command_id, status, seq, body=b""):
    return struct.pack(">IIII", 16 + len(body), command_id, status, seq) + body


async def fields_main(log_path, opts):
    counters = {"binds": 0, "bind_rx": 0, "bind_tx": 0, "bind_trx": 0,
                "bind_refused": 0, "throttled": 0, "sched_refused": 0}
    state = {"next_id": 0xB000}
    log = open(log_path, "a", buffering=1)

    def count(name):
        counters[name] += 1
        log.write(f"{name} {counters[name]}\n")

    async def session(reader, writer):
        peer = writer.get_extra_info("peername")
        bound = False
        try:
            while True:
                head = await reader.readexactly(16)
                length, cid, _status, seq = struct.unpack(">IIII", head)
                if length < 16 or length > 65536:
                    break
                body = await reader.readexactly(length - 16)
                if cid in (0x1, 0x2, 0x9):
                    if "--refuse-binds" in opts:
                        count("bind_refused")
                        writer.write(pdu(cid | 0x80000000, ESME_RBINDFAIL, seq, b"pysmsc\0"))
                    else:
                        count("binds")
                        count({0x1: "bind_rx", 0x2: "bind_tx", 0x9: "bind_trx"}[cid])
                        bound = True
                        log.write(f"session t={time.time():.3f} bound peer={peer[1]}\n")
                        writer.write(pdu(cid | 0x80000000, 0, seq, b"pysmsc\0"))
                elif cid == 0x15:
                    writer.write(pdu(0x80000015, 0, seq))
                elif cid == 0x6:
                    writer.write(pdu(0x80000006, 0, seq))
                    await writer.drain()
                    break
                elif cid == 0x4:
                    sm = smpp34.decode(head + body)
                    if "--throttle-all" in opts:
                        count("throttled")
                        writer.write(pdu(0x80000004, ESME_RTHROTTLED, seq))
                    elif "--no-schedule" in opts and sm.schedule_delivery_time:
                        count("sched_refused")
                        writer.write(pdu(0x80000004, ESME_RINVSCHED, seq))
                    else:
                        state["next_id"] += 1
                        msg_id = f"{state['next_id']:x}"
                        key = next((t.value.decode() for t in sm.tlvs if t.tag == 0x1401), "-")
                        log.write(
                            f"accepted t={time.time():.3f} id={msg_id} key={key} "
                            f"dest={sm.destination_addr} src={sm.source_addr} "
                            f"ston={sm.source_addr_ton} snpi={sm.source_addr_npi} "
                            f"sched={sm.schedule_delivery_time or '-'} "
                            f"valid={sm.validity_period or '-'} dc={sm.data_coding} "
                            f"esm={sm.esm_class} sm={sm.short_message.hex()}\n"
                        )
                        writer.write(pdu(0x80000004, 0, seq, msg_id.encode() + b"\0"))
                elif cid & 0x80000000:
                    pass  # deliver_sm_resp, generic_nack: nothing to answer
                else:
                    writer.write(pdu(0x80000000, ESME_RINVCMDID, seq))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if bound:
                log.write(f"session t={time.time():.3f} closed peer={peer[1]}\n")
            writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    extra = [a for a in sys.argv[2:] if a not in ("--hex-ids", "--mo-stdin")]
    if extra:
        asyncio.run(fields_main(sys.argv[1], extra))
    else:
        asyncio.run(main())
