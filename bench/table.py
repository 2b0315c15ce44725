"""Prints the benchmark's markdown table: medians per cell and server, with ratios to rfc6455.

usage: table.py RESULTS_TSV
"""
import collections
import statistics
import sys

rows = collections.defaultdict(list)  # (cell, server) -> [dict]
order_cells, order_servers = [], []
for line in open(sys.argv[1]):
    round_, cell, server, result = line.rstrip("\n").split("\t")
    if cell not in order_cells:
        order_cells.append(cell)
    if server not in order_servers:
        order_servers.append(server)
    if result == "FAILED":
        continue
    fields = dict(kv.split("=", 1) for kv in result.split()[1:])
    rows[(cell, server)].append(fields)


def median(cell, server, key):
    values = [float(r[key]) for r in rows.get((cell, server), []) if key in r]
    return statistics.median(values) if values else None


def fmt(value, digits=0):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


print("| cell | server | rate (median) | server CPU | server µs per message | messages per server CPU-second | rfc6455's lead per CPU-second | bound by |")
print("|---|---|---|---|---|---|---|---|")
for cell in order_cells:
    if cell.startswith("idle"):
        continue
    per_msg_key = "server_us_per_delivery" if cell.startswith("broadcast") else "server_us_per_msg"
    rate_key = "deliveries_per_sec" if cell.startswith("broadcast") else "messages_per_sec"
    ours = median(cell, "rfc6455", per_msg_key)
    for server in order_servers:
        if (cell, server) not in rows and not any(c == cell and s == server for c, s in rows):
            continue
        rate = median(cell, server, rate_key)
        cpu = median(cell, server, "server_cpu_pct")
        us = median(cell, server, per_msg_key)
        gen = median(cell, server, "loadgen_cpu_pct")
        per_cpu = 1e6 / us if us else None
        lead = (us / ours) if (ours and us) else None
        bound = "server" if (cpu or 0) >= 90 else ("load generator" if (gen or 0) >= 90 else "neither (latency)")
        unit = " deliveries/s" if cell.startswith("broadcast") else " msg/s"
        print(f"| {cell} | {server} | {fmt(rate)}{unit} | {fmt(cpu)}% | {fmt(us, 3)} | {fmt(per_cpu)} | "
              f"{'—' if server == 'rfc6455' else fmt(lead, 2) + '×'} | {bound} |")

idle = [c for c in order_cells if c.startswith("idle")]
if idle:
    print()
    print("| cell | server | bytes of server RSS per open connection (median) |")
    print("|---|---|---|")
    for cell in idle:
        for server in order_servers:
            value = median(cell, server, "bytes_per_connection")
            if value is not None:
                print(f"| {cell} | {server} | {fmt(value)} |")
