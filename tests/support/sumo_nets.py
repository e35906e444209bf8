"""Small SUMO networks and demand generated on the fly for tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from simulation.sumo_home import sumo_binary


def grid(tmp: Path, *, n: int = 2, tls: bool = True, name: str = "grid") -> Path:
    net = tmp / f"{name}.net.xml"
    cmd = [
        sumo_binary("netgenerate"),
        "--grid",
        f"--grid.number={n}",
        "--grid.length=150",
        "--grid.attach-length=100",
        "--default.lanenumber=1",
        "--no-turnarounds=true",
        "-o",
        str(net),
    ]
    if tls:
        cmd += ["--default-junction-type=traffic_light", "--tls.default-type=static"]
    subprocess.run(cmd, check=True, capture_output=True)
    return net


def flows(tmp: Path, net: Path, *, veh_h: float = 200.0, end_s: float = 300.0, name: str = "flows") -> Path:
    """Straight-through flows from every fringe entry, motorcycles and cars."""
    import sumolib

    sn = sumolib.net.readNet(str(net))
    entries = [e for e in sn.getEdges() if len(e.getFromNode().getIncoming()) <= 1]
    lines = [
        "<routes>",
        '    <vType id="motorcycle" vClass="motorcycle" length="1.9" width="0.7" minGap="1.0"/>',
        '    <vType id="car" vClass="passenger"/>',
        '    <vType id="bus" vClass="bus" personNumber="30"/>',
    ]
    k = 0
    for e in sorted(entries, key=lambda x: x.getID()):
        # Follow the straightest continuation to the fringe.
        edge, path = e, [e.getID()]
        while True:
            outs = [o for o in edge.getOutgoing() if o.getToNode() != edge.getFromNode()]
            if not outs:
                break
            fx, fy = edge.getFromNode().getCoord()
            tx, ty = edge.getToNode().getCoord()
            d = (tx - fx, ty - fy)

            def straight(o, d=d):  # type: ignore[no-untyped-def]
                ox, oy = o.getFromNode().getCoord()
                px, py = o.getToNode().getCoord()
                return -(d[0] * (px - ox) + d[1] * (py - oy))

            edge = min(outs, key=straight)
            path.append(edge.getID())
            if len(path) > 20:
                break
        for vt, share in (("motorcycle", 0.7), ("car", 0.25), ("bus", 0.05)):
            lines.append(
                f'    <flow id="f{k}" type="{vt}" begin="0" end="{end_s:g}" vehsPerHour="{veh_h * share:.1f}" '
                f'route="r{k // 3}"/>'
            )
            k += 1
        lines.insert(4, f'    <route id="r{(k - 1) // 3}" edges="{" ".join(path)}"/>')
    lines.append("</routes>")
    out = tmp / f"{name}.rou.xml"
    out.write_text("\n".join(lines) + "\n")
    return out


def plain(
    d: Path,
    nodes: str,
    edges: str,
    *,
    name: str = "n",
    connections: str | None = None,
    options: tuple[str, ...] = ("--no-turnarounds",),
) -> Path:
    """``d/<name>.net.xml`` built by netconvert from plain XML (nodes and edges, connections if given).

    Tests reproduce one network feature each (a 0.2-m lane, a joined light, a crossing) in a few
    lines of plain XML; this is the one place that writes the files and calls netconvert.
    """
    (d / "n.nod.xml").write_text(nodes)
    (d / "n.edg.xml").write_text(edges)
    cmd = [sumo_binary("netconvert"), "-n", str(d / "n.nod.xml"), "-e", str(d / "n.edg.xml")]
    if connections is not None:
        (d / "n.con.xml").write_text(connections)
        cmd += ["-x", str(d / "n.con.xml")]
    net = d / f"{name}.net.xml"
    subprocess.run([*cmd, "-o", str(net), *options], check=True, capture_output=True)
    return net
