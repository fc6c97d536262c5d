"""The PyPI smpplib client (code rivr did not write) against rivr's SMSC
simulator: bind transceiver, submit GSM-7, UCS-2 and a 3-part concatenated
text, and wait for a delivery receipt for every part.

Usage: client_smpplib.py PORT
Prints one "ok ..." line and exits 0 when every part was accepted and every
receipt arrived and names an accepted id; exits 1 otherwise.
"""

import sys
import time

import smpplib.client
import smpplib.consts
import smpplib.gsm


def main():
    port = int(sys.argv[1])
    accepted = set()
    receipts = set()
    errors = []

    client = smpplib.client.Client("127.0.0.1", port, timeout=1, allow_unknown_opt_params=True)

    def sent(pdu):
        if pdu.status != 0:
            errors.append(f"submit status {pdu.status}")
        else:
            mid = pdu.message_id
            accepted.add(mid.decode() if isinstance(mid, bytes) else mid)

    def received(pdu):
        if getattr(pdu, "esm_class", 0) & 0x04:
            sm = pdu.short_message
            text = sm.decode() if isinstance(sm, bytes) else sm
            rid = text.split("id:", 1)[1].split(" ", 1)[0]
            if "stat:DELIVRD" not in text:
                errors.append(f"receipt {text!r}")
            receipts.add(rid)

    client.set_message_sent_handler(sent)
    client.set_message_received_handler(received)
    client.connect()
    client.bind_transceiver(system_id="rivrsim", password="pw")

    texts = [
        "Hello from smpplib {€} [GSM-7]",
        "Привет из smpplib — UCS-2",
        "Three part message. " * 20,  # 400 GSM characters: 3 parts
    ]
    parts_sent = 0
    for text in texts:
        parts, coding, esm_class = smpplib.gsm.make_parts(text)
        for part in parts:
            client.send_message(
                source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                source_addr="smpplib",
                dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                destination_addr="15550001",
                short_message=part,
                data_coding=coding,
                esm_class=esm_class,
                registered_delivery=True,
            )
            parts_sent += 1

    deadline = time.time() + 15
    while time.time() < deadline and (len(accepted) < parts_sent or len(receipts) < parts_sent):
        try:
            client.read_once()
        except smpplib.exceptions.ConnectionError:
            break
    try:
        client.unbind()
        client.disconnect()
    except Exception:
        pass
    ok = parts_sent == 5 and len(accepted) == parts_sent and receipts == accepted and not errors
    print(f"{'ok' if ok else 'FAIL'} parts={parts_sent} accepted={len(accepted)} receipts={len(receipts)} errors={errors}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
