"""An app instance that buys shadow labels, then hangs until killed (its label calls still in flight).

    python labeller.py CONFIG_JSON REQUESTS
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from router import Router, RouterConfig

router = Router(RouterConfig.from_dict(json.loads(sys.argv[1])))
for i in range(int(sys.argv[2])):  # each answer is served at once; its label's calls go on in the background
    router.complete([{"role": "user", "content": f"question {i}"}], tenant="acme")
print("sent", flush=True)
time.sleep(600)
