"""Settings for the libraries we drive, applied once before heavy work.

diffusers, transformers and peft print progress bars and warnings meant for script writers; our users see
our own progress. bitsandbytes (which peft imports) warns that it could not fetch a kernel from a model hub.
"""

from __future__ import annotations

import logging
import os
import warnings


def quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="Could not find a config file", module="peft")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
