"""Write names.json: what the strict CuPy stand-in may offer, read from real CuPy wheels.

Run it with the Python of each CuPy version to take part (the cupy-cudaNNx wheels import
without a GPU), then merge; only names present in every version are kept, so code that
passes on the stand-in runs on each of them:

    python -m venv /tmp/cupy13 && /tmp/cupy13/bin/pip install cupy-cuda12x==13.6.0
    python -m venv /tmp/cupy14 && /tmp/cupy14/bin/pip install cupy-cuda12x==14.2.0
    /tmp/cupy13/bin/python -I tests/standin/make_names.py dump /tmp/cupy13.json   # -I: not the stand-in beside it
    /tmp/cupy14/bin/python -I tests/standin/make_names.py dump /tmp/cupy14.json
    python tests/standin/make_names.py merge /tmp/cupy13.json /tmp/cupy14.json
"""

import json
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parent / "names.json"


def public(obj) -> list[str]:
    return sorted(n for n in dir(obj) if not n.startswith("_") or (n.startswith("__") and n.endswith("__")))


def dump(path: str) -> None:
    import cupy
    import cupyx

    names = {
        "version": cupy.__version__,
        "cupy": public(cupy),
        "ndarray": public(cupy.ndarray),
        "random": public(cupy.random),
        "random.Generator": public(cupy.random.Generator),
        "cupyx": public(cupyx),
        "ufunc": public(cupy.add),
        "cuda": public(cupy.cuda),
        "cuda.Stream": public(cupy.cuda.Stream),
        "cuda.Graph": public(cupy.cuda.Graph),
        "cuda.MemoryPool": public(cupy.cuda.MemoryPool),
        "cuda.Event": public(cupy.cuda.Event),
    }
    Path(path).write_text(json.dumps(names, indent=1))


def merge(*paths: str) -> None:
    tables = [json.loads(Path(p).read_text()) for p in paths]
    merged = {"versions": [t["version"] for t in tables]}
    for key in tables[0]:
        if key != "version":
            merged[key] = sorted(set.intersection(*(set(t[key]) for t in tables)))
    TARGET.write_text(json.dumps(merged, indent=1) + "\n")
    print(f"wrote {TARGET}: CuPy {', '.join(merged['versions'])}")


if __name__ == "__main__":
    {"dump": dump, "merge": merge}[sys.argv[1]](*sys.argv[2:])
