"""examples/tour.py (the README's short tour) runs offline and shows what it claims."""

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tour.py"


def test_tour_runs_and_each_claim_holds(tmp_path):
    r = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, cwd=tmp_path,
                       env=dict(os.environ, PYTHONUNBUFFERED="1"), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    out = r.stdout
    assert "numpy: 36 files, classes ['class_0', 'class_1', 'class_2']" in out
    assert "first batch (16, 64, 64, 3) float32" in out
    assert "epoch 0 twice identical: True" in out
    assert "url: memory://tour lists 36 files" in out and "same batches as the local folder: True" in out
    assert "'batches': 2" in out and "the resumed dataset's first batch is the 3rd: True" in out
    assert "TensorFlow imported: False" in out
