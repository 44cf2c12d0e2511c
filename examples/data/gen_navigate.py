#!/usr/bin/env python3
"""Generates navigate.json: a small BIG-Bench-Hard-format reasoning task in the style of
"navigate" (do these moves bring you back to the start?). Every target is computed by
simulating the moves, so it is correct by construction. Deterministic: same seed, same file.

Usage: python3 gen_navigate.py [N] > navigate.json   (default N = 50)
"""
import json
import random
import sys

QUESTION = "If you follow these instructions, do you return to the starting point?"
OPTIONS = "Options:\n- Yes\n- No"
# Facing directions as unit vectors: north, east, south, west.
HEADINGS = [(0, 1), (1, 0), (0, -1), (-1, 0)]


def steps(n):
    return f"Take {n} step{'s' if n != 1 else ''}"


def face_forward_moves(rng, back_home):
    """Moves relative to a fixed facing: forward/backward/left/right."""
    moves = []
    x = y = 0
    for _ in range(rng.randint(2, 5)):
        d = rng.choice(["forward", "backward", "left", "right"])
        n = rng.randint(1, 10)
        moves.append(f"{steps(n)} {d}.")
        dx, dy = {"forward": (0, n), "backward": (0, -n), "left": (-n, 0), "right": (n, 0)}[d]
        x, y = x + dx, y + dy
    if back_home:
        # Undo the displacement with explicit moves, in a random order.
        fixes = []
        if x:
            fixes.append(f"{steps(abs(x))} {'left' if x > 0 else 'right'}.")
        if y:
            fixes.append(f"{steps(abs(y))} {'backward' if y > 0 else 'forward'}.")
        rng.shuffle(fixes)
        moves += fixes
        x = y = 0
    return ["Always face forward."] + moves, (x, y)


def turning_moves(rng, back_home):
    """Moves with turns: the heading changes, steps go the way you face."""
    h = 0
    x = y = 0
    moves = []
    for _ in range(rng.randint(3, 6)):
        kind = rng.random()
        if kind < 0.35:
            turn = rng.choice(["Turn left.", "Turn right.", "Turn around."])
            h = (h + {"Turn left.": 3, "Turn right.": 1, "Turn around.": 2}[turn]) % 4
            moves.append(turn)
        else:
            n = rng.randint(1, 9)
            moves.append(f"{steps(n)}.")
            x, y = x + HEADINGS[h][0] * n, y + HEADINGS[h][1] * n
    if back_home and (x or y):
        # Face back towards the start along each axis and walk it off.
        for axis, dist in (("x", x), ("y", y)):
            if not dist:
                continue
            want = (1 if dist < 0 else 3) if axis == "x" else (0 if dist < 0 else 2)
            delta = (want - h) % 4
            if delta:
                moves.append({1: "Turn right.", 2: "Turn around.", 3: "Turn left."}[delta])
                h = want
            moves.append(f"{steps(abs(dist))}.")
        x = y = 0
    return moves, (x, y)


def example(rng, back_home):
    make = face_forward_moves if rng.random() < 0.5 else turning_moves
    moves, end = make(rng, back_home)
    answer = "Yes" if end == (0, 0) else "No"
    return {"input": f"{QUESTION} {' '.join(moves)}\n{OPTIONS}", "target": answer}


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    rng = random.Random(20240613)
    examples = [example(rng, back_home=(i % 2 == 0)) for i in range(n)]
    rng.shuffle(examples)
    json.dump({"examples": examples}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
