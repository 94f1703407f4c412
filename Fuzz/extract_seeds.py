#!/usr/bin/env python3
"""Extracts decoder seeds from capture files: one file per frame, byte 0 = link-type selector.

    Fuzz/extract_seeds.py OUTDIR CAPTURE [CAPTURE ...]

The selector is the index in FuzzDecoder's `linkTypes` table; frames of other link types are
skipped. Reads classic pcap (either byte order, us or ns) and pcapng (SHB, IDB, EPB, SPB and
obsolete packet blocks; any number of sections). A damaged file yields the frames before the
damage. Output files are named by the SHA-1 of their content, as libFuzzer names them, so
duplicates collapse. Standard library only.
"""
import hashlib
import os
import struct
import sys

# Must match `linkTypes` in Sources/FuzzDecoder/FuzzDecoder.swift.
SELECTOR = {1: 0, 101: 1, 113: 2, 276: 3, 228: 4, 229: 5, 0: 6, 108: 7}
MAX_FRAMES_PER_FILE = 200
MAX_FRAME = 4096


def pcap_frames(data):
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    else:
        return
    if len(data) < 24:
        return
    link = struct.unpack(order + "I", data[20:24])[0] & 0xFFFF
    offset = 24
    while offset + 16 <= len(data):
        captured = struct.unpack(order + "I", data[offset + 8:offset + 12])[0]
        if offset + 16 + captured > len(data):
            return
        yield link, data[offset + 16:offset + 16 + captured]
        offset += 16 + captured


def pcapng_frames(data):
    offset = 0
    order = "<"
    links = []
    while offset + 12 <= len(data):
        if data[offset:offset + 4] == b"\x0a\x0d\x0d\x0a":  # SHB: byte order from its magic
            magic = data[offset + 8:offset + 12]
            if magic == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif magic == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                return
            links = []
        block_type, length = struct.unpack(order + "II", data[offset:offset + 8])
        if length < 12 or length % 4 or offset + length > len(data):
            return
        body = data[offset + 8:offset + length - 4]
        if block_type == 1 and len(body) >= 2:  # IDB
            links.append(struct.unpack(order + "H", body[:2])[0])
        elif block_type == 6 and len(body) >= 20:  # EPB
            interface, _, _, captured = struct.unpack(order + "IIII", body[:16])
            if interface < len(links) and 20 + captured <= len(body):
                yield links[interface], body[20:20 + captured]
        elif block_type == 3 and len(body) >= 4 and links:  # SPB: interface 0
            original = struct.unpack(order + "I", body[:4])[0]
            yield links[0], body[4:4 + min(original, len(body) - 4)]
        elif block_type == 2 and len(body) >= 20:  # obsolete Packet Block
            interface, _, _, _, captured = struct.unpack(order + "HHIII", body[:16])
            if interface < len(links) and 20 + captured <= len(body):
                yield links[interface], body[20:20 + captured]
        offset += length


def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        return pcapng_frames(data)
    return pcap_frames(data)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    written = 0
    for path in argv[2:]:
        count = 0
        try:
            for link, frame in frames(path):
                selector = SELECTOR.get(link)
                if selector is None or not frame:
                    continue
                seed = bytes([selector]) + frame[:MAX_FRAME]
                name = os.path.join(out, hashlib.sha1(seed).hexdigest())
                if not os.path.exists(name):
                    with open(name, "wb") as f:
                        f.write(seed)
                    written += 1
                count += 1
                if count >= MAX_FRAMES_PER_FILE:
                    break
        except (struct.error, OSError) as error:
            print(f"{path}: {error}", file=sys.stderr)
    print(f"{written} new seeds in {out}")


if __name__ == "__main__":
    main(sys.argv)
