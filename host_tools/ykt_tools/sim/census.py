"""The heap census a device reports (simhw/vhw/heapcensus.py), as text for
`ykt sim --heap-report` and `ykt run --heap-report`."""


def format_census(name, c, out):
    """Print a census as text (the `ykt sim --heap-report` table)."""
    if "error" in c:
        out("== heap census %s: %s (measured %d B)" % (name, c["error"], c["measured_bytes"]))
        return
    out("== heap census %s at the live high-water mark: measured %d B, walked %d B (%s), not reached %d B"
        % (name, c["measured_bytes"], c["walked_bytes"], c["estimate"], c["unwalked_bytes"]))
    if c.get("burst_bytes"):
        out("   + up to %d B allocated within one loop step (transient, garbage included); by part: %s"
            % (c["burst_bytes"], ", ".join("%s %d" % kv for kv in (c.get("transients") or {}).items())))
    out("   by kind:   " + ", ".join("%s %d" % kv for kv in c["by_kind"].items()))
    out("   top ten holders (holder, kind, bytes):")
    for h, k, v in c["top"]:
        out("     %-40s %-16s %7d" % (h, k, v))
    out("   largest objects:")
    for p, k, v in c["big"]:
        out("     %-60s %-16s %7d" % (p[:60], k, v))
