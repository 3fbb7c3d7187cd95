"""Put tierwise in front of any app: the gateway, called with the real openai client.

Runs offline as written: OFFLINE = True starts a local OpenAI-compatible server that plays the three
tiers. Set it to False (and OPENAI_API_KEY) for the default models; in production run
`tierwise serve --config tierwise.yaml` and point your apps' base_url at it.
"""

import hashlib
import socket
import threading
import time

import openai
import uvicorn

from router import RouterConfig
from router.serve import create_app
from router.testing import LocalOpenAIServer

OFFLINE = True
KEY = "tw-acme-example-key"  # the gateway stores only its SHA-256

provider = LocalOpenAIServer(responder=lambda model, _messages: f"answered by {model}").start() if OFFLINE else None
tiers = [{"name": name, "models": [{"model": f"openai/{name}-model", "api_base": provider.url, "api_key": "local",
                                   "input_cost_per_token": price, "output_cost_per_token": price}]}
         for name, price in (("small", "0.0000001"), ("flash", "0.000001"), ("frontier", "0.00001"))] if provider else None
config = RouterConfig.from_dict({
    **({"tiers": tiers} if tiers else {}),
    "ledger": "sqlite://:memory:",
    "gateway": {"keys": {"acme": [hashlib.sha256(KEY.encode()).hexdigest()]}},
})

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
threading.Thread(target=server.run, daemon=True).start()
while not server.started:
    time.sleep(0.05)

client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY)  # the only change an app makes
for model in ("tierwise", "tierwise/frontier"):
    raw = client.chat.completions.with_raw_response.create(model=model, messages=[{"role": "user", "content": "Hi there!"}])
    resp = raw.parse()
    print(f"{model}: {resp.choices[0].message.content!r} tier={raw.headers['x-tierwise-tier']} "
          f"cost=${raw.headers['x-tierwise-cost-usd']}")
server.should_exit = True
if provider:
    provider.stop()
