"""Text for people: the summaries and tables the CLI prints when `--json` is not given.

The bodies stay `dict[str, Any]`, read defensively (`.get`, defaults), not typed after
`api.models`: they are JSON from another process, maybe a newer or older daemon, whose fields
must not crash the CLI (the models forbid extra fields; a second declaration would drift)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..jobs.states import OpState
from ..util.units import human_duration, human_size


def status(body: dict[str, Any]) -> str:
    store = body.get("store", {})
    docker = body.get("docker", {})
    lines = [
        f"nosana-cache {body.get('version')}, up {human_duration(body.get('uptime_seconds', 0))}"
    ]
    limit = f", max {human_size(store['max_size'])}" if store.get("max_size") else ""
    lines.append(
        f"store    {store.get('path')}: free {human_size(store.get('fs_free_bytes', 0))}"
        f" (keeps {human_size(store.get('min_free', 0))}){limit}"
    )
    if docker.get("reachable"):
        gpu = ", GPU" if docker.get("has_gpu") else ", no GPU"
        lines.append(
            f"docker   {docker.get('host')}: engine {docker.get('version')}"
            f" (API {docker.get('api_version')}){gpu}"
        )
    else:
        lines.append(f"docker   {docker.get('host')}: unreachable: {docker.get('error')}")
    fence = body.get("fence") or {}
    if fence:
        mode = f"docker.fence = {fence.get('mode')}"
        lines.append(f"fence    {fence.get('state')} ({mode}): {fence.get('detail')}")
    if body.get("hub_listener"):
        lines.append(_hub_listener(body["hub_listener"]))
    market = body.get("market") or {}
    if market.get("address"):
        readiness = "ready" if market.get("ready") else f"{market.get('missing')} item(s) not ready"
        error = f"; last fetch failed: {market['last_error']}" if market.get("last_error") else ""
        lines.append(
            f"market   {market['address']}: {market.get('items')} required, {readiness}{error}"
        )
    else:
        lines.append("market   none")
    lines.append(_site(body.get("site") or {}))
    lines.append(_registry(body.get("registry") or {}))
    lines += _node(body.get("node") or {})
    in_flight = body.get("transfers", {}).get("in_flight", 0)
    lines.append(
        f"entries  {store.get('entries', 0)} ({_states(store)}), {store.get('blobs', 0)} blobs, "
        f"{human_size(store.get('bytes_used', 0))}; {in_flight} transfer(s) in flight"
    )
    return "\n".join(lines)


def _hub_listener(hub: dict[str, Any]) -> str:
    """Where job containers reach the Hub endpoint; not being bound is a warning: jobs then
    download from the Hub themselves, which nothing else would show."""
    state = hub.get("state")
    if state == "bound":
        return (
            f"hub      job containers' listener on {hub.get('address')} ({hub.get('source')}):"
            f" HF_ENDPOINT={hub.get('url')}"
        )
    if state == "unbound":
        return f"hub      WARNING: job containers' listener not bound: {hub.get('detail')}"
    return f"hub      {state}: {hub.get('detail')}"


def _registry(registry: dict[str, Any]) -> str:
    if not registry.get("enabled"):
        return "registry off (registry.mirror = false)"
    if registry.get("state") != "up":
        return f"registry down: {registry.get('error')}"
    line = f"registry up: engines pull through http://{registry.get('address')}"
    pulls = registry.get("pulls") or []
    if not pulls:
        return line
    last = pulls[0]
    sources = ", ".join(
        f"{human_size(last.get(f'bytes_from_{source}', 0))} {source}"
        for source in ("upstream", "site", "store")
    )
    rate = human_size(int(last.get("rate_bytes_per_s", 0)))
    return (
        f"{line}; last pull {last.get('image')} ({last.get('state')}): "
        f"{sources}, {rate}/s ({len(pulls)} recent)"
    )


def _node(node: dict[str, Any]) -> list[str]:
    """The engine socket, and the node's recent resource requests (newest first, five)."""
    if not node.get("enabled"):
        return ["node     off (node.socket unset)"]
    recent = node.get("recent") or []
    lines = [f"node     socket {node.get('socket')} -> {node.get('engine')}; {len(recent)} recent"]
    for request in recent[:5]:
        saved = request.get("saved_seconds")
        saved_text = f", saved ~{saved:.1f}s" if saved else ""
        error = f": {request['error']}" if request.get("error") else ""
        lines.append(
            f"  {request.get('at')} {request.get('outcome'):6} {request.get('source')}"
            f" {human_size(request.get('bytes', 0))} in {request.get('seconds')}s"
            f"{saved_text}{error}"
        )
    return lines


def _site(site: dict[str, Any]) -> str:
    upstream = human_size(site.get("bytes_from_upstream", 0))
    if not site.get("store"):
        return f"site     none; {upstream} from upstream"
    state = site.get("state")
    if state == "down":
        state = f"down: {site.get('last_error')}"
    pending = site.get("uploads_pending", 0)
    return (
        f"site     {site['store']}: {state}; {human_size(site.get('bytes_from_site', 0))} "
        f"from it, {upstream} from upstream, {human_size(site.get('bytes_uploaded', 0))} "
        f"uploaded ({pending} entr{'y' if pending == 1 else 'ies'} to upload)"
    )


def _states(store: dict[str, Any]) -> str:
    states = store.get("entries_by_state") or {}
    return ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns, two spaces apart; numbers right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: list[str]) -> str:
        out = []
        for cell, width in zip(cells, widths, strict=True):
            numeric = cell[:1].isdigit() and cell.replace(" ", "").replace(".", "").isalnum()
            out.append(cell.rjust(width) if numeric else cell.ljust(width))
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def relative(iso: str | None, now: float) -> str:
    """`in 3h 12m`, `5m 2s ago`, or `-`."""
    if not iso:
        return "-"
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    delta = moment - now
    return f"in {human_duration(delta)}" if delta >= 0 else f"{human_duration(delta)} ago"


def resources(body: dict[str, Any], now: float) -> str:
    entries = body.get("resources", [])
    if not entries:
        return "no cached resources"
    rows = []
    for e in entries:
        state = e["state"]
        if state in ("downloading", "pending") and e["progress"]["bytes_total"]:
            state += f" {100 * e['progress']['bytes_done'] // e['progress']['bytes_total']}%"
        flags = ",".join(f for f, on in (("pinned", e["pinned"]), ("in use", e["in_use"])) if on)
        rows.append(
            [
                e["id"][:12],
                e["type"],
                e["source"],
                state,
                human_size(e["size_bytes"]),
                str(e["file_count"]),
                relative(e["expires_at"], now),
                str(e["hits"]),
                flags or "-",
            ]
        )
    headers = ["ID", "TYPE", "SOURCE", "STATE", "SIZE", "FILES", "EXPIRES", "HITS", "HELD"]
    return table(headers, rows)


def resource(e: dict[str, Any], now: float) -> str:
    lines = [
        f"id           {e['id']}",
        f"type         {e['type']}",
        f"source       {e['source']}",
        f"state        {e['state']}" + (f": {e['error']}" if e.get("error") else ""),
        f"version      {e.get('version') or '-'}",
        f"size         {human_size(e['size_bytes'])} in {e['file_count']} files",
        f"downloaded   {e.get('downloaded_at') or '-'}",
        f"expires      {relative(e.get('expires_at'), now)}",
        f"pinned       {', '.join(e['pinned_by']) or 'no'}",
        f"in use       {e['leases']} lease(s)",
        f"hits         {e['hits']}",
        f"path         {e.get('path') or '-'}",
    ]
    for f in e.get("files") or []:
        lines.append(f"  {human_size(f['size']):>10}  {f['path']}")
    return "\n".join(lines)


def pulled(e: dict[str, Any]) -> str:
    return (
        f"{e['state']}: {e['source']} → {e['id'][:12]}, {human_size(e['size_bytes'])} in "
        f"{e['file_count']} files at {e.get('path') or '-'}"
    )


def jobs(body: dict[str, Any], now: float) -> str:
    records = body.get("jobs", [])
    if not records:
        return "no jobs"
    rows = []
    for j in records:
        ops = j["ops"]
        done = sum(1 for o in ops if o["state"] == OpState.COMPLETED)
        rows.append(
            [
                j["id"],
                j["state"],
                f"{done}/{len(ops)}",
                relative(j["created_at"], now),
                (j.get("error") or "")[:60],
            ]
        )
    return table(["ID", "STATE", "OPS", "CREATED", "ERROR"], rows)


def job(j: dict[str, Any]) -> str:
    lines = [f"job {j['id']}: {j['state']}" + (f" ({j['error']})" if j.get("error") else "")]
    for op in j["ops"]:
        timings = op["timings"]
        spent = ", ".join(
            f"{name} {timings[key]:.2f}s"
            for name, key in (("prepare", "prepare_seconds"), ("run", "run_seconds"))
            if timings.get(key) is not None
        )
        code = f" exit {op['exit_code']}" if op.get("exit_code") is not None else ""
        lines.append(f"  {op['id']}: {op['state']}{code}" + (f" ({spent})" if spent else ""))
        if op.get("error"):
            lines.append(f"    error: {op['error']}")
        image = op.get("image")
        if image:
            lines.append(f"    image {image['ref']}: {'hit' if image['hit'] else 'pulled'}")
        for r in op.get("resources") or []:
            how = "hit" if r.get("hit") else f"fetched {human_size(r.get('bytes_fetched') or 0)}"
            lines.append(f"    {r.get('source')} → {r.get('target')}: {how}")
        if op.get("restarts"):
            lines.append(f"    restarted {op['restarts']} time(s)")
        lines += _service(op)
        for item in op.get("not_acted_on") or []:
            lines.append(f"    not acted on: {item}")
    return "\n".join(lines)


def _service(op: dict[str, Any]) -> list[str]:
    """An op's exposed ports: where each is, its health and its checks' last answers."""
    endpoints = op.get("endpoints") or []
    if not endpoints:
        return [f"    port {port} → {host}" for port, host in (op.get("ports") or {}).items()]
    lines = []
    ready = op["timings"].get("ready_seconds")
    if op.get("health"):
        since = f", ready in {ready:.2f}s" if ready is not None else ""
        detail = f": {op['health_detail']}" if op.get("health_detail") else ""
        lines.append(f"    service {op['health']}{since}{detail}")
    for e in endpoints:
        where = e.get("url") or e.get("address") or ("private" if e.get("private") else "-")
        lines.append(f"    port {e['port']} ({e['type']}) → {where}: {e['health']}")
        for c in e.get("checks") or []:
            seen = {True: "passed", False: "failing", None: "not run yet"}[c.get("passed")]
            answer = f" ({c['answer']})" if c.get("answer") else ""
            lines.append(
                f"      {c['check']}{' (continuous)' if c['continuous'] else ''}: {seen}{answer}"
            )
    return lines


def service_news(op: dict[str, Any], before: dict[str, Any] | None) -> str | None:
    """What changed in an op's service since `before` (its last look), in one line: ready
    with its URLs, unhealthy naming the check, healthy again; None when nothing did."""
    health, earlier = op.get("health"), (before or {}).get("health")
    if health is None or health == earlier:
        return None
    if health == "healthy" and earlier in (None, "starting"):
        ready = op["timings"].get("ready_seconds")
        urls = ", ".join(
            f"{e.get('url') or 'private'} ({e['type']})" for e in op.get("endpoints") or []
        )
        took = f" in {ready:.2f}s" if ready is not None else ""
        return f"{op['id']}: ready{took}: {urls}"
    if health == "unhealthy":
        return f"{op['id']}: unhealthy: {op.get('health_detail')}"
    if health == "healthy":
        return f"{op['id']}: healthy again"
    return None


def plan(p: dict[str, Any], now: float) -> str:
    """A dry run's answer: per op, what is cached and what would be fetched, and the mounts."""
    total = human_size(p["bytes_to_fetch"])
    fetch = f"{total} to fetch" + ("" if p["complete"] else " and more not known")
    network = ", a network of its own" if p["network"] else ""
    lines = [f"valid: {len(p['ops'])} op(s), {fetch}{network}"]
    lines += [f"  not acted on: {item}" for item in p["not_acted_on"]]
    for op in p["ops"]:
        lines.append(f"  {op['id']} ({op['type']})")
        if op["image"]:
            lines.append(f"    image {op['image']['ref']}: {_cached(op['image'], now)}")
        for r in op["resources"]:
            lines.append(f"    {r['source'] or r['type']} → {r['target']}: {_cached(r, now)}")
        for m in op["mounts"]:
            mode = "read-only" if m["read_only"] else "writable"
            lines.append(
                f"    mount {m['kind']} {m['source'] or '(once fetched)'} → {m['target']} ({mode})"
            )
        if op["ports"]:
            lines.append(f"    ports {', '.join(str(port) for port in op['ports'])}")
        lines += [f"    not acted on: {item}" for item in op["not_acted_on"]]
    return "\n".join(lines)


def _cached(item: dict[str, Any], now: float) -> str:
    if item.get("note"):
        return f"unknown ({item['note']})"
    if item["cached"]:
        expires = item.get("expires_at")
        return "cached" + (f", expires {relative(expires, now)}" if expires else "")
    known = item.get("bytes_to_fetch")
    return "not cached, " + (
        f"{human_size(known)} to fetch" if known is not None else "size unknown"
    )


def job_summary(j: dict[str, Any]) -> str:
    return job(j)
