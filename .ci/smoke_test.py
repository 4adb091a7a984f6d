"""Smoke test of an installed wheel, run from outside the source tree by ``make wheel-check``.

It checks that the installed package (not the checkout) is imported, that it ships its type marker
and its command line, and that a small detection runs end to end and finds a planted sequence.
"""

import subprocess
import sys
from pathlib import Path

import quantities as pq

import convseq_neo
from convseq_neo.synthetic.generate import sequence_recording

package = Path(convseq_neo.__file__).resolve().parent
assert "site-packages" in package.parts, f"imported the checkout, not the wheel: {package}"
assert (package / "py.typed").is_file(), "py.typed is missing from the wheel"
version = subprocess.run([sys.executable, "-m", "convseq_neo", "--version"], capture_output=True, text=True,
                         check=True).stdout.strip()
assert version == f"convseq_neo {convseq_neo.__version__}", version

recording = sequence_recording(n_neurons=40, n_patterns=1, members_per_pattern=12, duration=60 * pq.s,
                               bin_size=5 * pq.ms, rate=2 * pq.Hz, lag_step=10 * pq.ms, n_occurrences=20,
                               participation=0.9, jitter=3 * pq.ms, random_state=0)
result = convseq_neo.detect(recording.spiketrains, bin_size=5 * pq.ms, width=200 * pq.ms, n_patterns=1,
                            random_state=0, device="cpu", max_epochs=300, n_surrogates=50, n_folds=3)
found = len(result.occurrences)
assert found >= 10, f"the smoke detection found {found} occurrences of 20 planted"
print(f"wheel smoke test passed: {version} from {package}, {found} of 20 planted occurrences found")
