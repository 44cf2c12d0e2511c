#!/usr/bin/env python3
"""Generates tiny.json: 12 two-choice questions ("which number is larger?") as a JSON array of
{"question", "answer"} records, for fast end-to-end tests. Answers are computed, so they are
correct by construction; half are (A), half (B). Deterministic.

Usage: python3 gen_tiny.py > tiny.json
"""
import json
import random
import sys


def main():
    rng = random.Random(7)
    records = []
    for i in range(12):
        a, b = rng.sample(range(2, 100), 2)
        big, small = max(a, b), min(a, b)
        first, second = (big, small) if i % 2 == 0 else (small, big)
        answer = "(A)" if first > second else "(B)"
        records.append({
            "question": f"Which number is larger?\nOptions:\n(A) {first}\n(B) {second}",
            "answer": answer,
        })
    rng.shuffle(records)
    json.dump(records, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
