"""Prints the benchmark's markdown tables: medians per cell and server, with ratios to rfc6455
(messages and deliveries, with the user-space part of the server's time; the fairness cells'
innocent round trips; idle memory), and with an older rfc6455 in the run (BASELINE), the ratio of
the two builds round by round.

A server whose replies were wrong in any round (MISMATCH: an echo that differs from what was sent,
a broadcast message out of order) gets a MISMATCH row and no figures; one that failed every round
gets a FAILED row. Rounds that failed are left out of the medians and counted in the row.

usage: table.py RESULTS_TSV
"""
import collections
import statistics
import sys

rows = collections.defaultdict(list)  # (cell, server) -> [dict], one per measured round
outcomes = collections.defaultdict(collections.Counter)  # (cell, server) -> RESULT/FAILED/MISMATCH
mismatches = []  # (cell, server, what the load generator saw)
order_cells, order_servers = [], []
for line in open(sys.argv[1]):
    round_, cell, server, result = line.rstrip("\n").split("\t")
    if cell not in order_cells:
        order_cells.append(cell)
    if server not in order_servers:
        order_servers.append(server)
    kind = result.split(" ", 1)[0]
    outcomes[(cell, server)][kind] += 1
    if kind == "MISMATCH":
        mismatches.append((cell, server, result.split(" ", 1)[1] if " " in result else ""))
    elif kind == "RESULT":
        rows[(cell, server)].append(dict(kv.split("=", 1) for kv in result.split()[1:]) | {"round": round_})


# rfc6455 first, then the older build when BASELINE adds one, then the peers in the order they ran.
order_servers.sort(key=lambda s: {"rfc6455": 0, "rfc6455-old": 1}.get(s, 2))


def median(cell, server, key):
    if outcomes[(cell, server)]["MISMATCH"]:
        return None  # wrong replies make every figure meaningless
    values = [float(r[key]) for r in rows.get((cell, server), []) if key in r]
    return statistics.median(values) if values else None


def user_us(cell, server, key):
    """The median over rounds of the user-space part of the time per message or delivery."""
    if outcomes[(cell, server)]["MISMATCH"]:
        return None
    values = [float(r[key]) * float(r["server_user_share"])
              for r in rows.get((cell, server), []) if key in r and "server_user_share" in r]
    return statistics.median(values) if values else None


def round_pairs(cell, key):
    """(rfc6455-old's figures, rfc6455's figures) of each round in which both were measured."""
    by_round = {}
    for server in ("rfc6455-old", "rfc6455"):
        for r in rows.get((cell, server), []):
            if key in r and float(r[key]) > 0:
                by_round.setdefault(r["round"], {})[server] = {key: float(r[key])}
    return [(pair["rfc6455-old"], pair["rfc6455"]) for pair in by_round.values() if len(pair) == 2]


def fmt(value, digits=0):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def verdict(cell, server):
    """MISMATCH or FAILED with the rounds it covers, or None for a row with figures."""
    counts = outcomes[(cell, server)]
    rounds = sum(counts.values())
    if counts["MISMATCH"]:
        return f"MISMATCH in {counts['MISMATCH']} of {rounds} rounds"
    if not counts["RESULT"]:
        return f"FAILED in {rounds} of {rounds} rounds"
    return None


def failed_note(cell, server):
    counts = outcomes[(cell, server)]
    return f" ({counts['FAILED']} of {sum(counts.values())} rounds FAILED)" if counts["FAILED"] else ""


message_cells = [c for c in order_cells if not c.startswith(("idle", "fairness"))]
if message_cells:
    print("| cell | server | rate (median) | server CPU | server µs per message | of which user space | messages per server CPU-second | rfc6455's lead per CPU-second | bound by |")
    print("|---|---|---|---|---|---|---|---|---|")
for cell in message_cells:
    per_msg_key = "server_us_per_delivery" if cell.startswith("broadcast") else "server_us_per_msg"
    rate_key = "deliveries_per_sec" if cell.startswith("broadcast") else "messages_per_sec"
    ours = median(cell, "rfc6455", per_msg_key)
    for server in order_servers:
        if (cell, server) not in outcomes:
            continue
        bad = verdict(cell, server)
        if bad:
            print(f"| {cell} | {server} | **{bad}** | — | — | — | — | — | — |")
            continue
        rate = median(cell, server, rate_key)
        user = user_us(cell, server, per_msg_key)
        cpu = median(cell, server, "server_cpu_pct")
        us = median(cell, server, per_msg_key)
        gen = median(cell, server, "loadgen_cpu_pct")
        per_cpu = 1e6 / us if us else None
        lead = (us / ours) if (ours and us) else None
        bound = "server" if (cpu or 0) >= 90 else ("load generator" if (gen or 0) >= 90 else "neither (latency)")
        unit = " deliveries/s" if cell.startswith("broadcast") else " msg/s"
        lead_text = "—" if server == "rfc6455" else (fmt(lead, 2) + "×" if lead else "n/a")
        print(f"| {cell} | {server} | {fmt(rate)}{unit}{failed_note(cell, server)} | {fmt(cpu)}% | {fmt(us, 3)} | "
              f"{fmt(user, 3)} | {fmt(per_cpu)} | {lead_text} | {bound} |")

paired = [c for c in message_cells if (c, "rfc6455") in rows and (c, "rfc6455-old") in rows]
if paired:
    print()
    print("rfc6455 against rfc6455-old round by round (both measured in each round, a minute apart at most,")
    print("so their ratio moves less with the machine than the ratio of the medians above):")
    print()
    print("| cell | rounds | rfc6455's lead per CPU-second over rfc6455-old: median | lowest | highest |")
    print("|---|---|---|---|---|")
    for cell in paired:
        per_msg_key = "server_us_per_delivery" if cell.startswith("broadcast") else "server_us_per_msg"
        ratios = sorted(old[per_msg_key] / new[per_msg_key]
                        for old, new in round_pairs(cell, per_msg_key))
        if ratios:
            print(f"| {cell} | {len(ratios)} | {statistics.median(ratios):.2f}× | {ratios[0]:.2f}× | {ratios[-1]:.2f}× |")

fairness = [c for c in order_cells if c.startswith("fairness")]
if fairness:
    if message_cells:
        print()
    print("| cell | server | innocent round trip p50 | p99 | longest | innocent round trips | flood MB/s | "
          "flood messages, reconnects | server CPU | p99 relative to rfc6455 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cell in fairness:
        ours = median(cell, "rfc6455", "innocent_p99_us")
        for server in order_servers:
            if (cell, server) not in outcomes:
                continue
            bad = verdict(cell, server)
            if bad:
                print(f"| {cell} | {server} | **{bad}** | — | — | — | — | — | — | — |")
                continue
            p50, p99, longest = (median(cell, server, f"innocent_{k}_us") for k in ("p50", "p99", "max"))
            trips = median(cell, server, "innocent_round_trips")
            flood = median(cell, server, "flood_bytes_per_sec")
            messages = median(cell, server, "flood_messages")
            reconnects = median(cell, server, "flood_reconnects")
            cpu = median(cell, server, "server_cpu_pct")
            ratio = "—" if server == "rfc6455" else (fmt(p99 / ours, 2) + "×" if (ours and p99) else "n/a")
            mb = fmt(flood / 1e6, 1) if flood is not None else "n/a"
            print(f"| {cell} | {server} | {fmt(p50)} µs | {fmt(p99)} µs | {fmt(longest)} µs | "
                  f"{fmt(trips)}{failed_note(cell, server)} | {mb} | {fmt(messages)}, {fmt(reconnects)} | "
                  f"{fmt(cpu)}% | {ratio} |")
    print()
    print("A round trip still unanswered when the window ends counts with what it had waited by then.")

idle = [c for c in order_cells if c.startswith("idle")]
if idle:
    if message_cells or fairness:
        print()
    print("| cell | server | bytes of server RSS per open connection (median) |")
    print("|---|---|---|")
    for cell in idle:
        for server in order_servers:
            if (cell, server) not in outcomes:
                continue
            bad = verdict(cell, server)
            value = median(cell, server, "bytes_per_connection")
            print(f"| {cell} | {server} | {f'**{bad}**' if bad else fmt(value) + failed_note(cell, server)} |")

if mismatches:
    print()
    print("MISMATCH: the load generator received replies that differ from what was sent:")
    for cell, server, what in mismatches:
        print(f"- {cell}, {server}: {what}")
