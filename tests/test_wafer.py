"""Hardware presets and files, the mesh and its XY routes, home placement and HBM capacity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from waferview.errors import InputError
from waferview.models import get_model
from waferview.wafer.hardware import load_hardware
from waferview.wafer.mesh import Mesh
from waferview.wafer.homes import capacity, home_dies


def test_presets_carry_the_design_figures():
    for name, (w, h) in {"5x5": (5, 5), "8x3": (8, 3)}.items():
        hw = load_hardware(name)
        assert (hw.width, hw.height, hw.num_dies, hw.name) == (w, h, w * h, name)
        assert hw.die_tflops == 1000 and hw.hbm_gb == 80 and hw.hbm_bytes_per_ns == 3350
        assert hw.link_bytes_per_ns == 1741 and hw.hop_latency_ns == 200 and hw.request_header_bytes == 16
        assert hw.hbm_latency_ns == 300 and hw.hbm_reserved_fraction == 0.1 and hw.llc_mb == 64
        assert hw.link_efficiency == 0.9 and hw.hbm_eff("qwen3") == 0.9 and hw.hbm_eff("llama4") == 0.85
        assert hw.usable_hbm_bytes == 72_000_000_000


def test_compute_efficiency_table_follows_the_authors_calibration():
    hw = load_hardware("8x3")
    assert [hw.compute_eff("qwen3", b) for b in (128, 129, 256, 257, 1024, 2048, 4096, 4097, 16384)] == \
        [0.70, 0.60, 0.60, 0.70, 0.70, 0.69, 0.71, 0.70, 0.70]
    assert [hw.compute_eff("deepseek", b) for b in (1, 128, 256, 512, 1024, 1025)] == [0.5, 0.5, 0.53, 0.68, 0.70, 0.69]
    assert hw.compute_eff("kimi", 16384) == 0.69
    assert [hw.compute_eff("llama4", b) for b in (256, 512, 1024, 4096)] == [0.65, 0.72, 0.70, 0.65]


def test_any_shape_uses_the_preset_figures():
    hw = load_hardware("3x2")
    assert (hw.width, hw.height, hw.name, hw.die_tflops) == (3, 2, "3x2", 1000)


def test_hardware_file_overrides_fields(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"width": 4, "height": 2, "link_bytes_per_ns": 900.0,
                                "compute_efficiency": {"default": [[None, 0.6]]}}))
    hw = load_hardware(str(path))
    assert (hw.name, hw.width, hw.height, hw.link_bytes_per_ns, hw.hbm_gb) == ("mine", 4, 2, 900.0, 80.0)
    assert hw.compute_eff("qwen3", 4096) == 0.6
    # a preset written back out loads as the same hardware
    copy = tmp_path / "copy.json"
    copy.write_text(load_hardware("8x3").to_json())
    assert load_hardware(str(copy)) == load_hardware("8x3")


@pytest.mark.parametrize("spec, message", [
    ("0x3", "--mesh 0x3: width and height must be at least 1"),
    ("5", "--mesh '5': expected 5x5, 8x3, WxH"),
    ("100x100", "at most 4096 are supported"),
])
def test_bad_mesh_names(spec, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_hardware(spec)


@pytest.mark.parametrize("fields, message", [
    ({"link_bytes_per_ns": -5}, "link_bytes_per_ns must be a positive number, got -5"),
    ({"hbm_bytes_per_ns": 0}, "hbm_bytes_per_ns must be a positive number, got 0"),
    ({"width": 0}, "mesh 0x5: width and height must be at least 1"),
    ({"width": 2.5}, "width must be an integer, got 2.5"),
    ({"hop_latency_ns": -1}, "hop_latency_ns must be a number >= 0, got -1"),
    ({"hbm_reserved_fraction": 1.0}, "hbm_reserved_fraction must be in [0, 1), got 1.0"),
    ({"bandwidth": 3}, "unknown field(s) bandwidth"),
    ({"compute_efficiency": {"qwen3": [[None, 1.5]]}},
     "compute_efficiency['qwen3']: efficiency must be in (0, 1], got 1.5"),
])
def test_bad_hardware_files_name_the_file_and_the_field(tmp_path, fields, message):
    path = tmp_path / "hw.json"
    path.write_text(json.dumps(fields))
    with pytest.raises(InputError) as err:
        load_hardware(str(path))
    assert str(err.value).startswith(f"{path}: {message}")
    assert "\n" not in str(err.value)


def test_unreadable_hardware_files(tmp_path):
    with pytest.raises(InputError, match="hardware file not found"):
        load_hardware(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a readable JSON hardware file"):
        load_hardware(str(bad))
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="one JSON object"):
        load_hardware(str(bad))


def test_mesh_links_and_xy_routes():
    mesh = Mesh(3, 2)   # dies 0 1 2 / 3 4 5
    assert mesh.num_dies == 6 and mesh.num_links == 2 * (2 * 2 + 3 * 1)   # 7 undirected neighbour pairs
    assert [tuple(l) for l in mesh.links[:3]] == [(0, 1), (0, 3), (1, 0)]
    route = [tuple(mesh.links[i]) for i in mesh.xy_route(5, 0)]
    assert route == [(5, 4), (4, 3), (3, 0)]       # x first, then y
    route = [tuple(mesh.links[i]) for i in mesh.xy_route(0, 5)]
    assert route == [(0, 1), (1, 2), (2, 5)]
    assert mesh.distance(0, 5) == 3 and mesh.distance(2, 3) == 3 and mesh.distance(4, 4) == 0
    assert [tuple(mesh.links[i]) for i in mesh.route(5, 0, "yx")] == [(5, 2), (2, 1), (1, 0)]   # y first
    assert list(mesh.links[mesh.nbr_offsets[4]:mesh.nbr_offsets[5], 1]) == [1, 3, 5]
    assert mesh.link_index(4, 3) == 10 and tuple(mesh.links[10]) == (4, 3) and mesh.link_index(0, 4) == -1
    one = Mesh(1, 1)
    assert one.num_links == 0 and one.links.shape == (0, 2)


def test_home_placement_blocks_then_round_robin():
    assert home_dies(10, 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 0, 1]
    assert home_dies(3, 4).tolist() == [0, 1, 2]
    assert home_dies(8, 1).tolist() == [0] * 8
    home = home_dies(128, 25)   # Qwen on 5x5: 5 each, 3 leftovers to dies 0..2
    assert np.bincount(home).tolist() == [6, 6, 6] + [5] * 22
    assert home[:6].tolist() == [0, 0, 0, 0, 0, 1] and home[125:].tolist() == [0, 1, 2]


def test_capacity_qwen_fits_kimi_does_not():
    hw = load_hardware("5x5")
    qwen = get_model("qwen3")
    cap = capacity(qwen, hw, home_dies(qwen.num_experts, hw.num_dies))
    assert cap.fits_in_hbm and cap.note(qwen, hw) is None
    # die 3 holds 5 experts x 94 layers x 37,748,736 bytes; the rest of 72 GB is copy space
    assert cap.copy_slots[3] == (72_000_000_000 - 5 * 94 * qwen.expert_bytes) // qwen.expert_bytes == 1437
    kimi = get_model("kimi")
    for name in ("5x5", "8x3"):
        hw = load_hardware(name)
        cap = capacity(kimi, hw, home_dies(kimi.num_experts, hw.num_dies))
        assert not cap.fits_in_hbm
        assert cap.copy_slots.min() == 0
        assert "do not fit the usable HBM" in cap.note(kimi, hw)


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (5, 1), (3, 2), (5, 5), (8, 3), (7, 9)])
@pytest.mark.parametrize("order", ["xy", "yx"])
def test_kernel_routes_equal_the_python_definition(shape, order):
    from waferview.wafer import routes

    mesh = Mesh(*shape)
    tables = mesh.tables(order)
    buf = routes.route_buffer(mesh)
    D = mesh.num_dies
    for a in range(D):
        for b in range(D):
            n = routes.route_into(tables, a, b, buf)
            assert list(buf[:n]) == mesh.route(a, b, order)
            assert routes.distance(tables, a, b) == mesh.distance(a, b) == n
            if mesh.distance(a, b) == 1:
                assert routes.link_index(tables, a, b) == mesh.link_index(a, b)
    bytes_on = np.zeros(mesh.num_links, dtype=np.int64)
    routes.add_route_bytes(tables.nbr_offsets, tables.die_x, tables.die_y, tables.width, tables.route_order,
                           0, D - 1, 7, bytes_on)
    assert sorted(np.flatnonzero(bytes_on).tolist()) == sorted(mesh.route(0, D - 1, order))


def reference_neighbour_pairs(w: int, h: int) -> list[tuple[int, int]]:
    """Directed links as the mesh defines them: every die to each neighbour, by source then destination id."""
    pairs = []
    for a in range(w * h):
        x, y = a % w, a // w
        for nx, ny in ((x, y - 1), (x - 1, y), (x + 1, y), (x, y + 1)):   # ascending destination ids
            if 0 <= nx < w and 0 <= ny < h:
                pairs.append((a, ny * w + nx))
    return pairs


def reference_route(w: int, a: int, b: int, order: str) -> list[tuple[int, int]]:
    """The hops (from die, to die) of the dimension-order route a -> b: all of the first axis, then the other."""
    x, y, bx, by = a % w, a // w, b % w, b // w
    hops = []
    for axis in order:
        while (x, y)[axis == "y"] != (bx, by)[axis == "y"]:
            nx = x + (bx > x) - (bx < x) if axis == "x" else x
            ny = y + (by > y) - (by < y) if axis == "y" else y
            hops.append((y * w + x, ny * w + nx))
            x, y = nx, ny
    return hops


@pytest.mark.parametrize("order", ["xy", "yx"])
def test_big_mesh_routes_equal_the_plain_python_definition_with_tables_linear_in_dies(order):
    from waferview.wafer import routes

    w = h = 48
    mesh = Mesh(w, h)
    tables = mesh.tables(order)
    D, n_links = mesh.num_dies, mesh.num_links
    assert [tuple(p) for p in mesh.links.tolist()] == reference_neighbour_pairs(w, h)
    # nothing dies x dies: every table is a few entries per die or per link (a 64x64 table would be 128 MB)
    assert tables.dist.size == 0
    table_bytes = sum(getattr(tables, f).nbytes for f in ("nbr_offsets", "dist", "die_x", "die_y"))
    assert table_bytes + mesh.links.nbytes <= 32 * (D + n_links)
    rng = np.random.default_rng(48)
    pairs = [(int(a), int(b)) for a, b in rng.integers(0, D, size=(300, 2))]
    pairs += [(0, D - 1), (D - 1, 0), (w - 1, D - w), (5, 5), (0, 1), (w, 0)]   # corners, a die to itself
    buf = routes.route_buffer(mesh)
    for a, b in pairs:
        expected = reference_route(w, a, b, order)
        n = routes.route_into(tables, a, b, buf)
        assert [tuple(mesh.links[i]) for i in buf[:n]] == expected, (a, b)
        assert routes.distance(tables, a, b) == len(expected) == abs(a % w - b % w) + abs(a // w - b // w)
        nbytes = np.zeros(n_links, dtype=np.int64)
        routes.add_route_bytes(tables.nbr_offsets, tables.die_x, tables.die_y, tables.width, tables.route_order,
                               a, b, 3, nbytes)
        assert sorted(tuple(mesh.links[i]) for i in np.flatnonzero(nbytes)) == sorted(expected)
        assert set(nbytes[nbytes > 0].tolist()) <= {3}
        for src, dst in expected:
            assert routes.link_index(tables, src, dst) == mesh.link_index(src, dst)
