#!/usr/bin/env python3
"""Benchmark: `masqctl who` over a full connection-tracking table vs `grep` on the same file.

Generates a /proc/net/nf_conntrack style table of 262,144 entries (nf_conntrack_max of a big
node): TCP (ESTABLISHED, TIME_WAIT, CLOSE_WAIT …) and UDP from 250 pods, masqueraded to the node
address with translated ports, some IPv6, some ICMP and a few lines of other protocols; one
entry is the connection looked for. Then times, in the same run:

* `masqctl --version`: the CLI's start;
* `masqctl who NODE_IP:PORT --to DST:443 --conntrack FILE -o json` (whole process: start-up,
  read, every line validated, search, JSON);
* `grep -F 'dst=NODE_IP sport=443 dport=PORT' FILE` (finds the line, validates nothing).

Prints each command's median and best time over N interleaved rounds, who's time beyond the
CLI's start (median of the rounds' differences; the bound: under 2 s) and the ratio who / grep.

    python3 bench/who.py [--entries 262144] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import statistics

from timing import rounds

NODE_IP = "10.40.0.4"
HUB = "10.42.1.10"
TCP_STATES = [("ESTABLISHED", 431999), ("TIME_WAIT", 120), ("CLOSE_WAIT", 60), ("SYN_SENT", 120), ("FIN_WAIT", 120)]


def generate(entries: int, seed: int = 17) -> tuple[str, int]:
    """The table's text and the translated port of the one connection ``who`` looks for."""
    rnd = random.Random(seed)
    pods = [f"10.40.{i // 250}.{i % 250 + 5}" for i in range(250)]
    dests = [HUB, "10.42.1.11", "168.63.129.16", "20.50.2.9", "13.107.42.14", "10.0.0.10"]
    used: set[int] = set()
    lines = []
    target_at = entries // 2
    target_port = 0
    for n in range(entries):
        kind = rnd.random()
        pod = rnd.choice(pods)
        sport = rnd.randint(32768, 60999)
        if n == target_at:
            state, timeout = "ESTABLISHED", 431000
            port = 51234
            while port in used:
                port += 1
            target_port = port
            lines.append(f"ipv4     2 tcp      6 {timeout} {state} src=10.40.0.9 dst={HUB} sport=51234 dport=443 "
                         f"src={HUB} dst={NODE_IP} sport=443 dport={port} [ASSURED] mark=0 zone=0 use=2")
            used.add(port)
            continue
        if kind < 0.70:
            state, top = rnd.choice(TCP_STATES)
            dst = rnd.choice(dests)
            port = rnd.randint(1024, 65535)
            used.add(port) if dst == HUB else None
            lines.append(f"ipv4     2 tcp      6 {rnd.randint(1, top)} {state} src={pod} dst={dst} sport={sport} "
                         f"dport=443 src={dst} dst={NODE_IP} sport=443 dport={port} [ASSURED] mark=0 zone=0 use=2")
        elif kind < 0.93:
            dst = rnd.choice(dests)
            unrep = "[UNREPLIED] " if rnd.random() < 0.3 else ""
            lines.append(f"ipv4     2 udp      17 {rnd.randint(1, 120)} src={pod} dst={dst} sport={sport} dport=53 "
                         f"{unrep}src={dst} dst={NODE_IP} sport=53 dport={rnd.randint(1024, 65535)} mark=0 zone=0 use=2")
        elif kind < 0.98:
            a = f"fd00:0040:0000:0000:0000:0000:0000:{n % 65536:04x}"
            lines.append(f"ipv6     10 tcp      6 {rnd.randint(1, 431999)} ESTABLISHED src={a} "
                         f"dst=2603:1000:0004:0000:0000:0000:0000:0001 sport={sport} dport=443 "
                         f"src=2603:1000:0004:0000:0000:0000:0000:0001 dst={a} sport=443 dport={sport} [ASSURED] "
                         "mark=0 zone=0 use=2")
        elif kind < 0.995:
            ident = rnd.randint(0, 65535)
            lines.append(f"ipv4     2 icmp     1 {rnd.randint(1, 30)} src={pod} dst=8.8.8.8 type=8 code=0 id={ident} "
                         f"src=8.8.8.8 dst={NODE_IP} type=0 code=0 id={ident} mark=0 zone=0 use=2")
        else:
            lines.append(f"ipv4     2 gre      47 {rnd.randint(1, 180)} timeout=180, stream_timeout=180 src={pod} "
                         f"dst=20.50.2.9 srckey=0x0 dstkey=0x0 src=20.50.2.9 dst={NODE_IP} srckey=0x0 dstkey=0x0 "
                         "mark=0 zone=0 use=2")
    return "\n".join(lines) + "\n", target_port


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=262_144)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    text, port = generate(args.entries)
    cli = [sys.executable, "-m", "masqctl.cli.main"]
    with tempfile.TemporaryDirectory(prefix="masqctl-bench-") as tmp:
        path = os.path.join(tmp, "nf_conntrack")
        with open(path, "w") as fh:
            fh.write(text)
        who = cli + ["who", f"{NODE_IP}:{port}", "--to", f"{HUB}:443", "--conntrack", path, "-o", "json"]
        check = subprocess.run(who, capture_output=True, text=True)
        doc = json.loads(check.stdout)
        if check.returncode != 0 or not doc["exact"] or doc["matches"][0]["orig_src"] != "10.40.0.9":
            raise SystemExit(f"who did not find the connection: {check.stdout[:500]} {check.stderr[:500]}")
        r_start, r_who, r_grep = rounds([
            cli + ["--version"],
            who,
            ["grep", "-F", f"dst={NODE_IP} sport=443 dport={port} ", path]], args.repeat)

    med = statistics.median
    beyond = med(w - s for w, s in zip(r_who, r_start))
    size = len(text.encode())
    print(f"table: {args.entries} entries, {size / 1e6:.1f} MB; {args.repeat} rounds; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("                                    median    best")
    for label, ts in (("masqctl --version (start)", r_start), ("masqctl who … --conntrack -o json", r_who),
                      ("grep -F on the same file", r_grep)):
        print(f"{label:34s} {med(ts):7.3f} s {min(ts):7.3f} s")
    print(f"who beyond start (median)          {beyond:7.3f} s   (bound 2 s)")
    print(f"ratio who / grep (medians): {med(r_who) / med(r_grep):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
