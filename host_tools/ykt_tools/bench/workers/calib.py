# pystone rate of this interpreter: calib.py PYSTONE_PATH LOOPS -> @@JSON {"pystones": N}
import sys
import json

sys.path.insert(0, sys.argv[1].rsplit("/", 1)[0])
import pystone  # noqa: E402

benchtime, rate = pystone.pystones(int(sys.argv[2]))
print("@@JSON " + json.dumps({"pystones": rate, "seconds": benchtime}))
