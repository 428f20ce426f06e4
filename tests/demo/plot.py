"""The demo's PNG: the receiver's goodput over time above a lane showing the sender's active
path, with the faults as vertical markers. matplotlib (Debian's python3-matplotlib) on the Agg
backend: no display needed."""

PATH_COLORS = {
    "relay via wifi": "#8c8c8c",
    "direct wifi": "#1f77b4",
    "direct cell": "#d62728",
    "direct lo": "#1f77b4",
}
RELAY_COLORS = ["#8c8c8c", "#b0a090", "#a0a0c0"]
OTHER_COLORS = ["#2ca02c", "#9467bd", "#ff7f0e", "#17becf"]


def _color(label, seen):
    if label in PATH_COLORS:
        return PATH_COLORS[label]
    if label not in seen:
        pool = RELAY_COLORS if label.startswith("relay") else OTHER_COLORS
        used = [c for c in seen.values() if c in pool]
        seen[label] = pool[len(used) % len(pool)]
    return seen[label]


def write_png(path, title, goodput, segments, markers, end_s, pace_mbit=None):
    """goodput: [(t_end_s, interval_s, mbit_s)]; segments: [(t0_s, t1_s, label)] of the
    active path; markers: [(t_s, text, color)] vertical lines (faults, completion)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, lane) = plt.subplots(2, 1, sharex=True, figsize=(11, 5.6),
                                    gridspec_kw={"height_ratios": [4, 1.1], "hspace": 0.08})
    # Goodput as a step line: each value holds over the interval that ends at its time.
    xs, ys = [], []
    for t_end, interval, mbit in goodput:
        xs += [t_end - interval, t_end]
        ys += [mbit, mbit]
    if xs:
        top.plot(xs, ys, color="#222222", linewidth=1.4, label="goodput at the receiver "
                 "(250 ms intervals)")
        top.fill_between(xs, ys, color="#222222", alpha=0.08, linewidth=0)
    if pace_mbit:
        top.axhline(pace_mbit, color="#777777", linestyle=":", linewidth=1,
                    label=f"sender's pace ({pace_mbit:g} Mbit/s)")
    peak = max([y for y in ys] + [pace_mbit or 0, 1])
    top.set_ylim(0, peak * 1.25)
    top.set_ylabel("goodput (Mbit/s)")
    top.set_title(title, fontsize=11)
    top.grid(True, alpha=0.3)

    seen = {}
    narrow_row = 0
    for t0, t1, label in segments:
        color = _color(label, seen)
        top.axvspan(t0, t1, color=color, alpha=0.10, linewidth=0)
        # A path held for a moment (the relay before the direct path) still gets a visible
        # sliver, and its name and duration above the lane.
        width = max(t1 - t0, 0.004 * max(end_s, 1e-3))
        lane.broken_barh([(t0, width)], (0.05, 0.6), facecolors=color, edgecolor="white",
                         linewidth=0.5)
        if t1 - t0 > 0.06 * max(end_s, 1e-3):
            lane.text((t0 + t1) / 2, 0.35, label, ha="center", va="center", color="white",
                      fontsize=9, fontweight="bold", clip_on=True)
        else:
            lane.text(t0, 0.68 + 0.16 * (narrow_row % 2), f"{label} {(t1 - t0) * 1000:.0f} ms",
                      ha="left", va="bottom", color=color, fontsize=7.5, clip_on=True)
            narrow_row += 1
    lane.set_ylim(0, 1.05)
    lane.set_yticks([])
    lane.set_ylabel("active\npath", rotation=0, ha="right", va="center")
    lane.set_xlabel("seconds since the sender asked for the session")
    lane.set_xlim(0, end_s)

    for t, text, color in markers:
        for ax in (top, lane):
            ax.axvline(t, color=color, linestyle="--", linewidth=1.2)
        top.annotate(text, (t, peak * 1.22), xytext=(3, 0), textcoords="offset points",
                     ha="left", va="top", fontsize=8.5, color=color, rotation=0)

    # A legend entry per path (the lane's colors) plus the goodput lines.
    from matplotlib.patches import Patch
    handles, labels = top.get_legend_handles_labels()
    for label in dict.fromkeys(label for _, _, label in segments):
        handles.append(Patch(color=_color(label, seen), alpha=0.6))
        labels.append(label)
    top.legend(handles, labels, loc="lower left", fontsize=8, ncol=2, framealpha=0.9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
