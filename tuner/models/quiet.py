"""Import TensorFlow without its C++ start-up lines (oneDNN, CUDA probing) on the terminal.

TensorFlow logs those through absl before ``TF_CPP_MIN_LOG_LEVEL`` applies, straight to file
descriptor 2, so the only way to keep them out of the live view is to point that descriptor
elsewhere while TensorFlow starts. Whatever it printed is shown if the import fails.
"""

from __future__ import annotations

import os
import sys
import tempfile


def import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device probing logs too; do it now
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
