# One HTTPS GET with the firmware's HTTP client, run to completion, for
# tests/test_uplink_tls.py.
#   https_get.py BASE_URL PATH   ->   @@JSON {"state", "status", "body", "error"}
import sys
import json
from ykt.net import httpc

c = httpc.HttpClient(sys.argv[1], timeout_ms=4000)
c.start("GET", sys.argv[2])
c.run(2000000)
print("@@JSON " + json.dumps({"state": c.state, "status": c.status, "body": bytes(c.body).decode(),
                              "error": c.error}))
