#!/usr/bin/env python3
"""Draws the add-on's icon.png (128x128) and logo.png (250x100) with the standard library only:
a sun over a solar panel, and on the logo the name in a 5x7 pixel font. Run from the
repository root: python3 tools/addon-images.py"""
import struct
import zlib

SCALE = 4  # supersampling: shapes are drawn at 4x and averaged down, for smooth edges

SKY = (29, 53, 87, 255)
SUN = (255, 183, 3, 255)
PANEL = (69, 123, 157, 255)
GRID = (168, 218, 220, 255)
TEXT = (29, 53, 87, 255)
CLEAR = (0, 0, 0, 0)

GLYPHS = {  # 5x7, rows top to bottom
    "i": ["00100", "00000", "01100", "00100", "00100", "00100", "01110"],
    "n": ["00000", "00000", "10110", "11001", "10001", "10001", "10001"],
    "v": ["00000", "00000", "10001", "10001", "10001", "01010", "00100"],
    "e": ["00000", "00000", "01110", "10001", "11111", "10000", "01110"],
    "r": ["00000", "00000", "10110", "11001", "10000", "10000", "10000"],
    "t": ["01000", "01000", "11100", "01000", "01000", "01001", "00110"],
    "m": ["00000", "00000", "11010", "10101", "10101", "10001", "10001"],
    "o": ["00000", "00000", "01110", "10001", "10001", "10001", "01110"],
    "-": ["00000", "00000", "00000", "11111", "00000", "00000", "00000"],
}


def canvas(w, h, colour):
    return [[colour] * (w * SCALE) for _ in range(h * SCALE)]


def fill(img, inside, colour):
    for y, row in enumerate(img):
        for x in range(len(row)):
            if inside((x + 0.5) / SCALE, (y + 0.5) / SCALE):
                row[x] = colour


def rounded_rect(x0, y0, x1, y1, r):
    def inside(x, y):
        cx = min(max(x, x0 + r), x1 - r)
        cy = min(max(y, y0 + r), y1 - r)
        return x0 <= x <= x1 and y0 <= y <= y1 and (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    return inside


def circle(cx, cy, r):
    return lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def ray(cx, cy, r0, r1, k, n):
    import math
    a = 2 * math.pi * k / n
    dx, dy = math.cos(a), math.sin(a)

    def inside(x, y):
        t = (x - cx) * dx + (y - cy) * dy
        d = abs(-(x - cx) * dy + (y - cy) * dx)
        return r0 <= t <= r1 and d <= 1.6
    return inside


def panel(x0, y0, w, h, slant):
    """A parallelogram panel with a 4x3 cell grid, leaning back by `slant`."""
    def uv(x, y):
        v = (y - y0) / h
        u = (x - x0 - slant * (1 - v)) / w
        return u, v

    def body(x, y):
        u, v = uv(x, y)
        return 0 <= u <= 1 and 0 <= v <= 1

    def lines(x, y):
        u, v = uv(x, y)
        if not (0 <= u <= 1 and 0 <= v <= 1):
            return False
        return min(abs(u * 4 - round(u * 4)) * w / 4, abs(v * 3 - round(v * 3)) * h / 3) < 1.0
    return body, lines


def sun_and_panel(img, ox, oy, size):
    s = size / 128
    cx, cy = ox + 84 * s, oy + 40 * s
    for k in range(8):
        fill(img, ray(cx, cy, 22 * s, 32 * s, k, 8), SUN)
    fill(img, circle(cx, cy, 17 * s), SUN)
    body, lines = panel(ox + 14 * s, oy + 66 * s, 78 * s, 42 * s, 18 * s)
    fill(img, body, PANEL)
    fill(img, lines, GRID)


def text(img, x0, y0, word, px):
    for i, ch in enumerate(word):
        for r, bits in enumerate(GLYPHS[ch]):
            for c, bit in enumerate(bits):
                if bit == "1":
                    x, y = x0 + (i * 6 + c) * px, y0 + r * px
                    fill(img, lambda a, b, x=x, y=y: x <= a < x + px and y <= b < y + px, TEXT)


def downsample(img):
    h, w = len(img) // SCALE, len(img[0]) // SCALE
    out = []
    for y in range(h):
        row = []
        for x in range(w):
            px = [img[y * SCALE + j][x * SCALE + i] for j in range(SCALE) for i in range(SCALE)]
            alpha = sum(p[3] for p in px)
            if alpha == 0:
                row.append(CLEAR)
                continue
            row.append(tuple(round(sum(p[k] * p[3] for p in px) / alpha) for k in range(3))
                       + (round(alpha / len(px)),))
        out.append(row)
    return out


def png(path, img):
    raw = b"".join(b"\0" + b"".join(bytes(p) for p in row) for row in img)
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", len(img[0]), len(img), 8, 6, 0, 0, 0)  # 8-bit RGBA
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
                + chunk(b"IEND", b""))


icon = canvas(128, 128, CLEAR)
fill(icon, rounded_rect(0, 0, 128, 128, 22), SKY)
sun_and_panel(icon, 0, 0, 128)
png("ha/inverter_monitor/icon.png", downsample(icon))

logo = canvas(250, 100, CLEAR)
fill(logo, rounded_rect(4, 4, 96, 96, 16), SKY)
sun_and_panel(logo, 4, 4, 92)
text(logo, 106, 24, "inverter", 3)
text(logo, 106, 56, "monitor", 3)
png("ha/inverter_monitor/logo.png", downsample(logo))
