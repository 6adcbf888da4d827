"""The report's summary table and its sections on links (issue 19): the link's self-check,
cold downloads on each profile, the service job, CPU per GiB, and a site store.

report.py calls `summary(results)` first and `sections(results, images)` after it; each
section has one plot. Every figure names the profile it was taken on and who served it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.profiles import profile as link_profile

MB = 1024 * 1024
Panel = tuple[str, dict[str, dict[str, float]]]


def _plot(path: Path, title: str, panels: list[Panel], columns: int = 1) -> None:
    """Horizontal bars (median, min to max), one panel per entry, the daemon in green."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = -(-len(panels) // columns)
    bars = max(len(times) for _, times in panels)
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(7 * columns, 0.6 + rows * (0.6 + 0.4 * bars)),
        squeeze=False,
    )
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    for axis, (name, times) in zip(axes.flat, panels, strict=False):
        names = list(times)
        medians = [times[n]["median_s"] for n in names]
        low = [times[n]["median_s"] - times[n]["min_s"] for n in names]
        high = [times[n]["max_s"] - times[n]["median_s"] for n in names]
        colors = ["#2b7a3d" if n.startswith("daemon") else "#8a8a8a" for n in names]
        axis.barh(range(len(names)), medians, xerr=[low, high], color=colors, capsize=3)
        axis.set_yticks(range(len(names)), [n[:40] for n in names], fontsize=8)
        axis.invert_yaxis()
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("median, s (bars: min to max)", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _table(times: dict[str, dict[str, float]], extra: dict[str, dict[str, Any]]) -> str:
    """Times with min and max, and per-contender columns (CPU, connections)."""
    heads = list(extra)
    rows = [
        "| contender | median | min | max | runs |" + "".join(f" {h} |" for h in heads),
        "|---|---|---|---|---|" + "---|" * len(heads),
    ]
    for name, t in times.items():
        cells = "".join(f" {extra[h].get(name, '')} |" for h in heads)
        rows.append(
            f"| {name} | {t['median_s']:.2f} s | {t['min_s']:.2f} s | {t['max_s']:.2f} s | "
            f"{t['runs']} |{cells}"
        )
    return "\n".join(rows)


def _transfers(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k.removeprefix("transfers_"): v for k, v in results.items() if k.startswith("transfers_")
    }


def _best_peer(times: dict[str, dict[str, float]]) -> tuple[str, float]:
    peers = {
        n: t["median_s"]
        for n, t in times.items()
        if n != "daemon" and "curl" not in n and "+ sync" not in n  # references, not peers
    }
    name = min(peers, key=lambda n: peers[n])
    return name, peers[name]


def summary(results: dict[str, Any]) -> str:
    """One screen: each question, the daemon's figure, what it is against, the target."""
    rows = ["| question | link | daemon | against | ratio | target |", "|---|---|---|---|---|---|"]
    for name, t in _transfers(results).items():
        for kind in ("hf", "s3"):
            r = t[kind]
            ours = r["times"]["daemon"]["median_s"]
            peer, theirs = _best_peer(r["times"])
            share = ""
            if "fraction_of_link" in r:
                flowing = r["fraction_of_link_while_transferring"]
                share = (
                    f", {r['fraction_of_link']:.0%} of the link ({flowing:.0%} while bytes flow)"
                )
                if "link_ceiling" in r:
                    share += f"; any client's best: {r['link_ceiling']['fraction_of_link']:.0%}"
            rows.append(
                f"| cold {kind.upper()} download ({r['bytes'] // MB} MiB) | {name} | {ours:.2f} s"
                f"{share} | fastest peer: {peer}, {theirs:.2f} s | **{theirs / ours:.2f}x** | "
                f"{'90% of the link' if share else 'faster than every peer'} |"
            )
    job = results.get("service_job")
    if job and "times" in job:
        ours = next(v for k, v in job["times"].items() if k.startswith("daemon"))["median_s"]
        rows.append(
            f"| service job, cold, to ready | {job['profile']} | {ours:.2f} s | (a) Nosana's "
            f"node's way / (b) peers in parallel | **{job['speedup_vs_a']}x** / "
            f"**{job['speedup_vs_b']}x** | 3x / 1.5x |"
        )
    c = results.get("cpu")
    if c and "core_seconds_per_gib" in c:
        per = c["core_seconds_per_gib"]
        rows.append(
            f"| CPU of a cold fetch | {c['profile']} | {per['daemon']} core-s/GiB | curl + "
            f"sha256sum: {per['curl + sha256sum']} core-s/GiB | **{c['daemon_over_c_tools']}x** "
            f"| as little as the profile allows |"
        )
    warm = results.get("warm_job_start")
    if warm and "times" in warm:
        ours = warm["times"]["daemon (POST /v1/jobs?wait=true)"]["median_s"]
        ratio = warm["daemon_over_docker_run"]
        rows.append(
            f"| warm job start | loopback | {ours:.2f} s | plain docker run | **{ratio}x** its "
            "time | under 1.2x |"
        )
    site = results.get("site_store", {})
    if "speedup_b_vs_a" in site:
        ours = site["times"]["B: cold, A's entries in the site store"]["median_s"]
        rows.append(
            f"| node B's cold job, A's downloads in the site store | {site['link']} | "
            f"{ours:.2f} s | node A (empty site store) / node C (none) | "
            f"**{site['speedup_b_vs_a']}x** / **{site['speedup_b_vs_c']}x** | faster |"
        )
    hub = results.get("hub", {})
    if "warm_speedup" in hub:
        warm, cold = (
            hub["times"]["daemon warm"]["median_s"],
            hub["times"]["daemon cold"]["median_s"],
        )
        rows.append(
            f"| a job's container downloads its model (/hf) | {hub.get('profile', 'loopback')} "
            f"| warm {warm:.2f} s, cold {cold:.2f} s | straight from the hub, "
            f"{hub['times']['upstream']['median_s']:.2f} s | **{hub['warm_speedup']}x** warm, "
            f"{hub['cold_over_upstream']}x the time cold | faster warm |"
        )
    return "\n".join(rows)


def sections(results: dict[str, Any], images: Path) -> str:
    """The link, downloads, service job and CPU sections, their plots written to `images`."""
    parts = [_links(results, images), _downloads(results, images)]
    parts += [_service(results, images), _cpu(results, images), _site(results)]
    return "\n\n".join(p for p in parts if p)


def _links(results: dict[str, Any], images: Path) -> str:
    checks = {
        k.removeprefix("link_check_"): v for k, v in results.items() if k.startswith("link_check_")
    }
    if not checks:
        return ""
    lines = [
        "## The links",
        "",
        "Each profile is a link emulator in its own process (bench/link.py: round-trip time, a "
        "new connection's TCP and TLS 1.3 round trips, TCP's slow start and window, a cap per "
        "connection and one for all), checked with curl before it is used:",
        "",
        "| profile | RTT | per connection | in all | first byte, new / reused connection | "
        "one connection | N connections (measured / expected) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, c in checks.items():
        p = link_profile(name)
        many = ", ".join(
            f"{n}: {v['mib_s']} / {v['expected_mib_s']} MiB/s" for n, v in c["connections"].items()
        )
        lines.append(
            f"| {name} | {p.rtt * 1000:.0f} ms | {p.per_connection / MB:.0f} MiB/s | "
            f"{p.aggregate / MB:.0f} MiB/s | {c['first_byte_new_connection_ms']['measured']} / "
            f"{c['first_byte_reused_connection_ms']['measured']} ms (expected "
            f"{c['first_byte_new_connection_ms']['expected']} / "
            f"{c['first_byte_reused_connection_ms']['expected']}) | "
            f"{c['one_connection_mib_s']['mib_s']} MiB/s ({c['one_connection_mib_s']['ratio']:.0%} "
            f"of the model) | {many} |"
        )
    lines.append("")
    lines.append(
        "Expected rates include slow start (a new connection's window doubles each RTT from 10 "
        "segments); the relay's own cost is listed in the results (`relay_cpu_seconds_per_gib`)."
    )
    return "\n".join(lines)


def _downloads(results: dict[str, Any], images: Path) -> str:
    transfers = _transfers(results)
    if not transfers:
        return ""
    panels: list[Panel] = []
    text = ["## Cold downloads on each link", ""]
    for name, t in transfers.items():
        files = ", ".join(str(s) for s in t["files_mib"])
        text += [
            f"### {name}",
            "",
            f"LFS files of {files} MiB (plus small ones). {t['served_by']}.",
            "",
        ]
        for kind, label in (("hf", "HF repo"), ("s3", "S3 prefix")):
            r = t[kind]
            extra = {
                "core-s/GiB": r["core_seconds_per_gib"],
                "connections": r.get("connections_used", {}),
            }
            share = (
                f"; {r['fraction_of_link']:.1%} of the link's aggregate cap over the whole wait, "
                f"{r['fraction_of_link_while_transferring']:.1%} from first byte to last "
                f"({r['daemon_busy_s']} s){_ceiling(r)}"
                if "fraction_of_link" in r
                else f"; {r['fraction_of_machine_limit']:.0%} of the machine's limit"
            )
            text += [
                f"{label} ({r['bytes'] // MB} MiB): the daemon {r['daemon_mib_s']} MiB/s{share}.",
                "",
                _table(r["times"], extra),
                "",
            ]
            panels.append((f"{label}, {name}", r["times"]))
    _plot(images / "cold-downloads.png", "Cold downloads, by link", panels, columns=2)
    text.append("![cold downloads](img/cold-downloads.png)")
    return "\n".join(text)


def _ceiling(r: dict[str, Any]) -> str:
    """What any client could reach on this link, with the daemon's connections."""
    c = r.get("link_ceiling")
    if c is None:
        return ""
    return (
        f". The best any client can do here with {c['connections']} connections is "
        f"{c['best_s']} s, {c['fraction_of_link']:.1%} of the cap: the round trips before the "
        "first byte and TCP's slow start are paid whoever asks (bench/profiles.py `best_seconds`)"
    )


def _service(results: dict[str, Any], images: Path) -> str:
    job = results.get("service_job")
    if not job or "times" not in job:
        return ""
    _plot(
        images / "service-job.png",
        f"Service job, cold, to ready ({job['profile']})",
        [("", job["times"])],
    )
    sizes = ", ".join(str(s) for s in job["files_mib"])
    return "\n".join(
        [
            "## Time-to-ready of a service job, cold",
            "",
            f"On `{job['profile']}`: a container that reads its model (an HF repo and an S3 prefix "
            f"of {sizes} MiB files each) and then serves HTTP "
            "(busybox httpd), from submit to the first 200 on its published port; nothing on the "
            f"host at the start. {job['served_by']}.",
            "",
            _table(job["times"], {}),
            "",
            f"**{job['speedup_vs_a']}x** faster than Nosana's node's way (target 3x), "
            f"**{job['speedup_vs_b']}x** than the peers' parallel defaults (target 1.5x).",
            "",
            "![service job](img/service-job.png)",
        ]
    )


def _cpu(results: dict[str, Any], images: Path) -> str:
    c = results.get("cpu")
    if not c or "core_seconds_per_gib" not in c:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per = c["core_seconds_per_gib"]
    kinds = c["where_the_daemon_spends"].get("by_kind", {})
    figure, axis = plt.subplots(figsize=(8, 2.4))
    left = 0.0
    for kind, share in kinds.items():
        axis.barh([0], [share * per["daemon"]], left=left, label=kind)
        left += share * per["daemon"]
    axis.barh([1], [per["curl + sha256sum"]], color="#8a8a8a")
    axis.set_yticks([0, 1], ["daemon", "curl + sha256sum"])
    axis.set_xlabel("core-seconds per GiB (daemon: split by its profile)")
    axis.legend(fontsize=7, ncol=3, loc="upper right")
    figure.tight_layout()
    figure.savefig(images / "cpu.png", dpi=110)
    plt.close(figure)
    frames = c["where_the_daemon_spends"].get("top_frames", {})
    rows = ["| where (py-spy, top of stack) | share |", "|---|---|"]
    rows += [f"| `{frame}` | {share:.1%} |" for frame, share in frames.items()]
    return "\n".join(
        [
            "## CPU per GiB, and where the daemon's goes",
            "",
            f"A cold fetch of {c['bytes'] // MB} MiB on {c['profile']}: the daemon "
            f"**{per['daemon']} core-seconds per GiB** (receive, hash, verify, write, index), "
            f"curl writing the same files plus sha256sum over them {per['curl + sha256sum']} "
            "(coreutils' sha256sum uses no SHA instructions; OpenSSL's, which the daemon's "
            "hashlib uses, does).",
            "",
            "\n".join(rows),
            "",
            "![cpu](img/cpu.png)",
        ]
    )


def _site(results: dict[str, Any]) -> str:
    r = results.get("site_store", {})
    if "times" not in r:
        return ""
    lines = ["## A site store", "", f"Link: {r.get('link', '')}.", "", _table(r["times"], {}), ""]
    if "b_bytes_from_site" in r:
        lines.append(
            f"Node B took {r['b_bytes_from_site'] // MB} MiB from the site store and "
            f"{r['b_bytes_from_upstream'] // MB} MiB from upstream; A's upload after its "
            f"job took {r['upload_after_a_s']['median_s']:.2f} s (not on any job's path)."
        )
    return "\n".join(lines)
